package codec

import (
	"bytes"
	"errors"
	"fmt"
)

// H.264 NAL unit types used here.
const (
	nalSPS = 7
	nalPPS = 8
)

// parseAVC parses an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.3.3.1) and the first SPS in it.
func parseAVC(rec []byte) (*Video, error) {
	b := bytes.Clone(rec)
	if len(b) < 7 {
		return nil, fmt.Errorf("avc config: truncated record (%d bytes)", len(b))
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("avc config: unsupported configurationVersion %d", b[0])
	}
	v := &Video{Codec: AVC, Record: b, NALULengthSize: int(b[4]&3) + 1}
	if v.NALULengthSize == 3 {
		return nil, errors.New("avc config: invalid NALU length size 3")
	}
	p := 5
	nSPS := int(b[p] & 0x1f)
	p++
	for i := 0; i < nSPS; i++ {
		if p+2 > len(b) {
			return nil, errors.New("avc config: truncated SPS length")
		}
		n := int(b[p])<<8 | int(b[p+1])
		p += 2
		if n == 0 || p+n > len(b) {
			return nil, errors.New("avc config: truncated SPS")
		}
		if b[p]&0x1f != nalSPS {
			return nil, fmt.Errorf("avc config: SPS entry has NAL type %d", b[p]&0x1f)
		}
		v.SPS = append(v.SPS, b[p:p+n:p+n])
		p += n
	}
	if p >= len(b) {
		return nil, errors.New("avc config: truncated PPS count")
	}
	nPPS := int(b[p])
	p++
	for i := 0; i < nPPS; i++ {
		if p+2 > len(b) {
			return nil, errors.New("avc config: truncated PPS length")
		}
		n := int(b[p])<<8 | int(b[p+1])
		p += 2
		if n == 0 || p+n > len(b) {
			return nil, errors.New("avc config: truncated PPS")
		}
		if b[p]&0x1f != nalPPS {
			return nil, fmt.Errorf("avc config: PPS entry has NAL type %d", b[p]&0x1f)
		}
		v.PPS = append(v.PPS, b[p:p+n:p+n])
		p += n
	}
	// Trailing bytes (the High profile chroma/bit depth extension) are
	// ignored: the SPS says the same.
	if len(v.SPS) == 0 {
		return nil, errors.New("avc config: no SPS")
	}
	if len(v.PPS) == 0 {
		return nil, errors.New("avc config: no PPS")
	}
	si, err := parseSPS(v.SPS[0])
	if err != nil {
		return nil, fmt.Errorf("avc config: %w", err)
	}
	v.setSPS(si)
	// The codecs string takes the record's bytes: they are what the sample
	// entry declares (and equal the SPS's in every encoder seen).
	v.Codecs = fmt.Sprintf("avc1.%02x%02x%02x", b[1], b[2], b[3])
	return v, nil
}

func (v *Video) setSPS(si spsInfo) {
	v.Width, v.Height = si.width, si.height
	v.FrameRate = si.frameRate
	v.Profile, v.Level = si.profile, si.level
	v.BitDepth, v.BitDepthChroma = si.bitDepthLuma, si.bitDepthChroma
	v.ChromaFormat = si.chromaFormatIDC
	v.ColorPrimaries, v.TransferCharacteristics, v.MatrixCoefficients = si.colour.primaries, si.colour.transfer, si.colour.matrix
	v.FullRange = si.colour.fullRange
	v.Transfer = transferFrom(si.colour.transfer)
}

// avcFromKeyframe builds an avcC from the SPS and PPS NAL units of a
// keyframe in 4-byte length-prefixed form, as ffmpeg writes one.
func avcFromKeyframe(frame []byte) (*Video, error) {
	var sps, pps [][]byte
	err := eachNALU(frame, func(nal []byte) {
		switch nal[0] & 0x1f {
		case nalSPS:
			sps = append(sps, nal)
		case nalPPS:
			pps = append(pps, nal)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("avc keyframe: %w", err)
	}
	switch {
	case len(sps) == 0:
		return nil, errors.New("avc keyframe: no SPS in the frame")
	case len(pps) == 0:
		return nil, errors.New("avc keyframe: no PPS in the frame")
	case len(sps) > 31:
		return nil, fmt.Errorf("avc keyframe: %d SPS do not fit a record", len(sps))
	case len(pps) > 255:
		return nil, fmt.Errorf("avc keyframe: %d PPS do not fit a record", len(pps))
	}
	if len(sps[0]) < 4 {
		return nil, fmt.Errorf("avc keyframe: %w", errSPSTruncated)
	}
	si, err := parseSPS(sps[0])
	if err != nil {
		return nil, fmt.Errorf("avc keyframe: %w", err)
	}
	rec := []byte{1, sps[0][1], sps[0][2], sps[0][3], 0xff, 0xe0 | byte(len(sps))}
	for _, s := range sps {
		if len(s) > 0xffff {
			return nil, errors.New("avc keyframe: SPS longer than 65535 bytes")
		}
		rec = append(rec, byte(len(s)>>8), byte(len(s)))
		rec = append(rec, s...)
	}
	rec = append(rec, byte(len(pps)))
	for _, s := range pps {
		if len(s) > 0xffff {
			return nil, errors.New("avc keyframe: PPS longer than 65535 bytes")
		}
		rec = append(rec, byte(len(s)>>8), byte(len(s)))
		rec = append(rec, s...)
	}
	switch si.profile {
	case 66, 77, 88:
	default:
		// ISO/IEC 14496-15 5.3.3.1.2: the other profiles carry chroma format
		// and bit depths (and no SPS extensions here).
		rec = append(rec, 0xfc|byte(si.chromaFormatIDC), 0xf8|byte(si.bitDepthLuma-8), 0xf8|byte(si.bitDepthChroma-8), 0)
	}
	return parseAVC(rec)
}

// eachNALU calls fn for each non-empty NAL unit of a frame of 4-byte
// length-prefixed NAL units.
func eachNALU(frame []byte, fn func(nal []byte)) error {
	for p := 0; p < len(frame); {
		if len(frame)-p < 4 {
			return errors.New("truncated NALU length")
		}
		n := readLen(frame[p:], 4)
		p += 4
		if n > uint64(len(frame)-p) {
			return fmt.Errorf("NALU length %d overruns the frame (%d bytes left)", n, len(frame)-p)
		}
		if n > 0 {
			fn(frame[p : p+int(n) : p+int(n)])
		}
		p += int(n)
	}
	return nil
}

// colour is the VUI colour description (ITU-T H.273 code points).
type colour struct {
	primaries, transfer, matrix int
	fullRange                   bool
}

var unspecifiedColour = colour{primaries: 2, transfer: 2, matrix: 2}

// spsInfo is what fount needs from a sequence parameter set.
type spsInfo struct {
	profile, level               int
	chromaFormatIDC              int
	bitDepthLuma, bitDepthChroma int
	width, height                int
	frameRate                    float64 // 0 if the VUI carries no timing
	colour                       colour
}

var errSPSTruncated = errors.New("sps: truncated")

// parseSPS parses an SPS NAL unit (with its 1-byte NAL header) far enough to
// get the picture size, the VUI colour description and timing.
func parseSPS(nal []byte) (spsInfo, error) {
	si := spsInfo{colour: unspecifiedColour, bitDepthLuma: 8, bitDepthChroma: 8}
	if len(nal) < 4 {
		return si, errSPSTruncated
	}
	if nal[0]&0x1f != nalSPS {
		return si, fmt.Errorf("sps: NAL type %d", nal[0]&0x1f)
	}
	r := &bitReader{b: unescapeRBSP(nal[1:])}
	si.profile = int(r.u(8))
	r.u(8) // constraint flags
	si.level = int(r.u(8))
	if id := r.ue(); id > 31 {
		return si, fmt.Errorf("sps: seq_parameter_set_id %d out of range", id)
	}
	si.chromaFormatIDC = 1
	separateColourPlane := false
	switch si.profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		cf := r.ue()
		if cf > 3 {
			return si, fmt.Errorf("sps: chroma_format_idc %d out of range", cf)
		}
		si.chromaFormatIDC = int(cf)
		if cf == 3 {
			separateColourPlane = r.flag()
		}
		dl := r.ue()
		if dl > 6 {
			return si, fmt.Errorf("sps: bit_depth_luma_minus8 %d out of range", dl)
		}
		dc := r.ue()
		if dc > 6 {
			return si, fmt.Errorf("sps: bit_depth_chroma_minus8 %d out of range", dc)
		}
		si.bitDepthLuma, si.bitDepthChroma = int(dl)+8, int(dc)+8
		r.u(1)        // qpprime_y_zero_transform_bypass_flag
		if r.flag() { // seq_scaling_matrix_present_flag
			n := 8
			if cf == 3 {
				n = 12
			}
			for i := 0; i < n; i++ {
				if r.flag() {
					size := 16
					if i >= 6 {
						size = 64
					}
					if err := skipScalingList(r, size); err != nil {
						return si, err
					}
				}
			}
		}
	}
	if v := r.ue(); v > 12 { // log2_max_frame_num_minus4
		return si, fmt.Errorf("sps: log2_max_frame_num_minus4 %d out of range", v)
	}
	switch pocType := r.ue(); pocType {
	case 0:
		if v := r.ue(); v > 12 {
			return si, fmt.Errorf("sps: log2_max_pic_order_cnt_lsb_minus4 %d out of range", v)
		}
	case 1:
		r.u(1) // delta_pic_order_always_zero_flag
		r.se() // offset_for_non_ref_pic
		r.se() // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return si, fmt.Errorf("sps: num_ref_frames_in_pic_order_cnt_cycle %d out of range", n)
		}
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.se()
		}
	case 2:
	default:
		return si, fmt.Errorf("sps: pic_order_cnt_type %d out of range", pocType)
	}
	r.ue() // max_num_ref_frames
	r.u(1) // gaps_in_frame_num_value_allowed_flag
	wMbs := int64(r.ue()) + 1
	hMapUnits := int64(r.ue()) + 1
	frameMbsOnly := r.flag()
	if !frameMbsOnly {
		r.u(1) // mb_adaptive_frame_field_flag
	}
	r.u(1) // direct_8x8_inference_flag
	var cropL, cropR, cropT, cropB int64
	if r.flag() {
		cropL, cropR, cropT, cropB = int64(r.ue()), int64(r.ue()), int64(r.ue()), int64(r.ue())
	}
	if r.err != nil {
		return si, fmt.Errorf("sps: %w", r.err)
	}
	if wMbs > 1<<14 || hMapUnits > 1<<14 {
		return si, fmt.Errorf("sps: picture size %dx%d macroblocks out of range", wMbs, hMapUnits)
	}
	fieldFactor := int64(2)
	if frameMbsOnly {
		fieldFactor = 1
	}
	chromaArrayType := si.chromaFormatIDC
	if separateColourPlane {
		chromaArrayType = 0
	}
	cropUnitX, cropUnitY := int64(1), fieldFactor
	switch chromaArrayType {
	case 1:
		cropUnitX, cropUnitY = 2, 2*fieldFactor
	case 2:
		cropUnitX, cropUnitY = 2, fieldFactor
	case 3:
		cropUnitX, cropUnitY = 1, fieldFactor
	}
	w := wMbs*16 - cropUnitX*(cropL+cropR)
	h := fieldFactor*hMapUnits*16 - cropUnitY*(cropT+cropB)
	if w <= 0 || h <= 0 {
		return si, errors.New("sps: cropping leaves an empty picture")
	}
	si.width, si.height = int(w), int(h)

	if r.flag() { // vui_parameters_present_flag
		// A VUI we cannot read only loses the frame rate and colour; the
		// size is known.
		si.frameRate, si.colour = parseAVCVUI(r)
	}
	return si, nil
}

func skipScalingList(r *bitReader, size int) error {
	last, next := int32(8), int32(8)
	for j := 0; j < size; j++ {
		if next != 0 {
			delta := r.se()
			if delta < -128 || delta > 127 {
				return fmt.Errorf("sps: delta_scale %d out of range", delta)
			}
			next = (last + delta + 256) % 256
		}
		if next != 0 {
			last = next
		}
		if r.err != nil {
			return fmt.Errorf("sps: %w", r.err)
		}
	}
	return nil
}

// readVideoSignalType reads video_signal_type_present_flag and what it
// guards, the same in the H.264 and H.265 VUI.
func readVideoSignalType(r *bitReader) colour {
	c := unspecifiedColour
	if r.flag() { // video_signal_type_present_flag
		r.u(3) // video_format
		c.fullRange = r.flag()
		if r.flag() { // colour_description_present_flag
			c.primaries = int(r.u(8))
			c.transfer = int(r.u(8))
			c.matrix = int(r.u(8))
		}
	}
	if r.err != nil {
		return unspecifiedColour
	}
	return c
}

// parseAVCVUI reads the VUI up to timing_info and returns the frame rate (0
// if absent or unreadable) and the colour description.
func parseAVCVUI(r *bitReader) (float64, colour) {
	if r.flag() { // aspect_ratio_info_present_flag
		if r.u(8) == 255 { // Extended_SAR
			r.u(16)
			r.u(16)
		}
	}
	if r.flag() { // overscan_info_present_flag
		r.u(1)
	}
	c := readVideoSignalType(r)
	if r.flag() { // chroma_loc_info_present_flag
		r.ue()
		r.ue()
	}
	if !r.flag() { // timing_info_present_flag
		return 0, c
	}
	units := r.u(32)
	scale := r.u(32)
	if r.err != nil || units == 0 || scale == 0 {
		return 0, c
	}
	return float64(scale) / (2 * float64(units)), c
}
