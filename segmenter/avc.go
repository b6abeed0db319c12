package segmenter

import (
	"bytes"
	"errors"
	"fmt"
)

// H.264 NAL unit types used here.
const (
	nalSlice = 1
	nalIDR   = 5
	nalSEI   = 6
	nalSPS   = 7
	nalPPS   = 8
	nalAUD   = 9
)

// avcConfig is a parsed AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1).
type avcConfig struct {
	raw            []byte
	profile        byte // AVCProfileIndication
	compat         byte // profile_compatibility
	level          byte // AVCLevelIndication
	nalLengthSize  int
	sps, pps       [][]byte
	spsInfo        spsInfo
	paramSetsAnnex []byte // SPS and PPS with 4-byte start codes, ready to insert before IDRs
}

func (c *avcConfig) codec() string {
	return fmt.Sprintf("avc1.%02x%02x%02x", c.profile, c.compat, c.level)
}

// parseAVCConfig parses an AVCDecoderConfigurationRecord. The returned config
// owns copies of all bytes.
func parseAVCConfig(b []byte) (*avcConfig, error) {
	if len(b) < 7 {
		return nil, fmt.Errorf("avc config: truncated record (%d bytes)", len(b))
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("avc config: unsupported configurationVersion %d", b[0])
	}
	c := &avcConfig{
		raw:           bytes.Clone(b),
		profile:       b[1],
		compat:        b[2],
		level:         b[3],
		nalLengthSize: int(b[4]&3) + 1,
	}
	if c.nalLengthSize == 3 {
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
		c.sps = append(c.sps, bytes.Clone(b[p:p+n]))
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
		c.pps = append(c.pps, bytes.Clone(b[p:p+n]))
		p += n
	}
	// Trailing bytes (High profile chroma/bit depth extension) are ignored.
	if len(c.sps) == 0 {
		return nil, errors.New("avc config: no SPS")
	}
	if len(c.pps) == 0 {
		return nil, errors.New("avc config: no PPS")
	}
	si, err := parseSPS(c.sps[0])
	if err != nil {
		return nil, fmt.Errorf("avc config: %w", err)
	}
	c.spsInfo = si
	for _, ps := range append(append([][]byte{}, c.sps...), c.pps...) {
		c.paramSetsAnnex = append(c.paramSetsAnnex, 0, 0, 0, 1)
		c.paramSetsAnnex = append(c.paramSetsAnnex, ps...)
	}
	return c, nil
}

// spsInfo is what fount needs from a sequence parameter set.
type spsInfo struct {
	profile, level  int
	chromaFormatIDC int
	width, height   int
	frameRate       float64 // 0 if the VUI carries no timing
}

var errSPSTruncated = errors.New("sps: truncated")

// parseSPS parses an SPS NAL unit (with its 1-byte NAL header) far enough to
// get the picture size and the VUI timing.
func parseSPS(nal []byte) (spsInfo, error) {
	var si spsInfo
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
		if d := r.ue(); d > 14 {
			return si, fmt.Errorf("sps: bit_depth_luma_minus8 %d out of range", d)
		}
		if d := r.ue(); d > 14 {
			return si, fmt.Errorf("sps: bit_depth_chroma_minus8 %d out of range", d)
		}
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
		return si, fmt.Errorf("sps: cropping leaves an empty picture")
	}
	si.width, si.height = int(w), int(h)

	if r.flag() { // vui_parameters_present_flag
		// A VUI we cannot read only loses the frame rate; size is known.
		si.frameRate = parseVUITiming(r)
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

// parseVUITiming reads the VUI up to timing_info and returns the frame rate,
// or 0 if absent or unreadable.
func parseVUITiming(r *bitReader) float64 {
	if r.flag() { // aspect_ratio_info_present_flag
		if r.u(8) == 255 { // Extended_SAR
			r.u(16)
			r.u(16)
		}
	}
	if r.flag() { // overscan_info_present_flag
		r.u(1)
	}
	if r.flag() { // video_signal_type_present_flag
		r.u(3)
		r.u(1)
		if r.flag() { // colour_description_present_flag
			r.u(8)
			r.u(8)
			r.u(8)
		}
	}
	if r.flag() { // chroma_loc_info_present_flag
		r.ue()
		r.ue()
	}
	if !r.flag() { // timing_info_present_flag
		return 0
	}
	units := r.u(32)
	scale := r.u(32)
	if r.err != nil || units == 0 || scale == 0 {
		return 0
	}
	return float64(scale) / (2 * float64(units))
}

// avccToAnnexB converts one AVCC access unit (NAL units prefixed by
// lengthSize-byte big-endian lengths) to Annex-B with 4-byte start codes,
// appending to dst[:0]. It starts the access unit with an AUD unless the frame
// has one, and inserts paramSets (Annex-B SPS+PPS) before an IDR access unit
// that does not carry its own SPS and PPS. It reports whether the access unit
// contains an IDR slice. On error dst is returned truncated to zero length.
func avccToAnnexB(dst, avcc []byte, lengthSize int, paramSets []byte) ([]byte, bool, error) {
	dst = dst[:0]
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		return dst, false, fmt.Errorf("avc frame: invalid NALU length size %d", lengthSize)
	}
	// Pass 1: validate lengths and find out what the access unit carries.
	var hasAUD, hasIDR, hasSPS, hasPPS bool
	size := 0
	for p := 0; p < len(avcc); {
		if p+lengthSize > len(avcc) {
			return dst, false, errors.New("avc frame: truncated NALU length")
		}
		n := readLen(avcc[p:], lengthSize)
		p += lengthSize
		if n > uint64(len(avcc)-p) {
			return dst, false, fmt.Errorf("avc frame: NALU length %d overruns frame (%d bytes left)", n, len(avcc)-p)
		}
		if n == 0 {
			continue
		}
		switch avcc[p] & 0x1f {
		case nalAUD:
			hasAUD = true
		case nalIDR:
			hasIDR = true
		case nalSPS:
			hasSPS = true
		case nalPPS:
			hasPPS = true
		}
		size += 4 + int(n)
		p += int(n)
	}
	needParams := hasIDR && !(hasSPS && hasPPS) && len(paramSets) > 0
	if !hasAUD {
		size += 6
	}
	if needParams {
		size += len(paramSets)
	}
	if cap(dst) < size {
		dst = make([]byte, 0, size+size/4)
	}
	if !hasAUD {
		dst = append(dst, 0, 0, 0, 1, nalAUD, 0xf0) // primary_pic_type 7: any slice type
	}
	// Pass 2: copy. Parameter sets go right after the AUD.
	for p := 0; p < len(avcc); {
		n := int(readLen(avcc[p:], lengthSize))
		p += lengthSize
		if n == 0 {
			continue
		}
		nal := avcc[p : p+n]
		p += n
		if needParams && nal[0]&0x1f != nalAUD {
			dst = append(dst, paramSets...)
			needParams = false
		}
		dst = append(dst, 0, 0, 0, 1)
		dst = append(dst, nal...)
	}
	if needParams { // access unit held nothing but an AUD
		dst = append(dst, paramSets...)
	}
	return dst, hasIDR, nil
}

func readLen(b []byte, size int) uint64 {
	var n uint64
	for i := 0; i < size; i++ {
		n = n<<8 | uint64(b[i])
	}
	return n
}
