package codec

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// H.265 NAL unit types carried in an HEVCDecoderConfigurationRecord.
const (
	hevcNALVPS       = 32
	hevcNALSPS       = 33
	hevcNALPPS       = 34
	hevcNALPrefixSEI = 39
	hevcNALSuffixSEI = 40
)

// hevcMaxLumaSize bounds pic_width/height_in_luma_samples: 16888 is
// sqrt(8 × MaxLumaPs) at level 6.2, the largest any level allows (H.265
// A.4.1); a bound also keeps the size arithmetic far from overflow.
const hevcMaxLumaSize = 16888

// hevcPTL is the general part of an HEVC profile_tier_level, as the record
// repeats it.
type hevcPTL struct {
	profileSpace byte   // general_profile_space
	highTier     bool   // general_tier_flag
	profileIDC   byte   // general_profile_idc
	compat       uint32 // general_profile_compatibility_flags, flag 0 in the top bit
	constraints  [6]byte
	levelIDC     byte // general_level_idc: 30 × the level number
}

func readPTL(b []byte) hevcPTL {
	p := hevcPTL{
		profileSpace: b[0] >> 6,
		highTier:     b[0]&0x20 != 0,
		profileIDC:   b[0] & 0x1f,
		compat:       uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]),
		levelIDC:     b[11],
	}
	copy(p.constraints[:], b[5:11])
	return p
}

// parseHEVC parses an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 8.3.3.1) and the first SPS in it. It requires a VPS, an SPS and a PPS, as
// a decoder does.
func parseHEVC(rec []byte) (*Video, error) {
	if len(rec) < 23 {
		return nil, fmt.Errorf("hevc config: truncated record (%d bytes)", len(rec))
	}
	if rec[0] != 1 {
		return nil, fmt.Errorf("hevc config: unsupported configurationVersion %d", rec[0])
	}
	b := bytes.Clone(rec)
	v := &Video{Codec: HEVC, Record: b, NALULengthSize: int(b[21]&3) + 1}
	ptl := readPTL(b[1:13])
	if v.NALULengthSize == 3 {
		return nil, errors.New("hevc config: invalid NALU length size 3")
	}
	nArrays := int(b[22])
	p := 23
	for i := 0; i < nArrays; i++ {
		if p+3 > len(b) {
			return nil, fmt.Errorf("hevc config: truncated array %d header", i)
		}
		typ := b[p] & 0x3f
		n := int(b[p+1])<<8 | int(b[p+2])
		p += 3
		// Each NAL unit takes at least 4 bytes (length and NAL header): a
		// count the record cannot hold is refused before allocating.
		if n > (len(b)-p)/4 {
			return nil, fmt.Errorf("hevc config: array %d claims %d NAL units in %d bytes", i, n, len(b)-p)
		}
		for j := 0; j < n; j++ {
			if p+2 > len(b) {
				return nil, fmt.Errorf("hevc config: truncated NAL unit length in array %d", i)
			}
			size := int(b[p])<<8 | int(b[p+1])
			p += 2
			if size < 2 || size > len(b)-p {
				return nil, fmt.Errorf("hevc config: NAL unit of %d bytes in array %d overruns the record or lacks a header", size, i)
			}
			nal := b[p : p+size : p+size]
			p += size
			if t := nal[0] >> 1 & 0x3f; t != typ {
				return nil, fmt.Errorf("hevc config: NAL unit of type %d in an array of type %d", t, typ)
			}
			switch typ {
			case hevcNALVPS:
				v.VPS = append(v.VPS, nal)
			case hevcNALSPS:
				v.SPS = append(v.SPS, nal)
			case hevcNALPPS:
				v.PPS = append(v.PPS, nal)
			}
		}
	}
	// Bytes after the last array are ignored, as for AVC.
	switch {
	case len(v.VPS) == 0:
		return nil, errors.New("hevc config: no VPS")
	case len(v.SPS) == 0:
		return nil, errors.New("hevc config: no SPS")
	case len(v.PPS) == 0:
		return nil, errors.New("hevc config: no PPS")
	}
	si, err := parseHEVCSPS(v.SPS[0])
	if err != nil {
		return nil, fmt.Errorf("hevc config: %w", err)
	}
	v.Width, v.Height = si.width, si.height
	v.FrameRate = si.frameRate
	v.Profile, v.Level = int(ptl.profileIDC), int(ptl.levelIDC)
	v.BitDepth, v.BitDepthChroma = si.bitDepthLuma, si.bitDepthChroma
	v.HighTier = ptl.highTier
	v.ChromaFormat = si.chromaFormatIDC
	v.ColorPrimaries, v.TransferCharacteristics, v.MatrixCoefficients = si.colour.primaries, si.colour.transfer, si.colour.matrix
	v.FullRange = si.colour.fullRange
	v.Transfer = transferFrom(si.colour.transfer)
	v.hevc = ptl
	v.Codecs = ptl.codecs()
	return v, nil
}

// codecs returns the RFC 6381 codecs parameter (ISO/IEC 14496-15 E.3), e.g.
// "hvc1.2.4.L120.90": profile space and idc, the compatibility flags
// bit-reversed in hex, tier and level, then the constraint bytes in hex
// without trailing zero bytes.
func (c hevcPTL) codecs() string {
	var sb strings.Builder
	sb.WriteString("hvc1.")
	if c.profileSpace > 0 {
		sb.WriteByte('A' + c.profileSpace - 1)
	}
	sb.WriteString(strconv.Itoa(int(c.profileIDC)))
	sb.WriteByte('.')
	sb.WriteString(strings.ToUpper(strconv.FormatUint(uint64(bits.Reverse32(c.compat)), 16)))
	if c.highTier {
		sb.WriteString(".H")
	} else {
		sb.WriteString(".L")
	}
	sb.WriteString(strconv.Itoa(int(c.levelIDC)))
	n := len(c.constraints)
	for n > 0 && c.constraints[n-1] == 0 {
		n--
	}
	for _, v := range c.constraints[:n] {
		fmt.Fprintf(&sb, ".%X", v)
	}
	return sb.String()
}

// effectiveProfile is general_profile_idc, or, when an encoder leaves it 0,
// the lowest profile its compatibility flags claim (H.265 A.3).
func (c hevcPTL) effectiveProfile() int {
	if c.profileIDC != 0 || c.compat == 0 {
		return int(c.profileIDC)
	}
	return bits.LeadingZeros32(c.compat)
}

// profileName names the profile as H.265 Annex A does ("Main 10",
// "Main 4:2:2 10", ...).
func (c hevcPTL) profileName() string {
	if c.profileSpace != 0 {
		return fmt.Sprintf("profile %c%d", 'A'+c.profileSpace-1, c.profileIDC)
	}
	switch p := c.effectiveProfile(); p {
	case 1:
		return "Main"
	case 2:
		return "Main 10"
	case 3:
		return "Main Still Picture"
	case 4:
		return c.rextProfileName()
	case 5:
		return "High Throughput"
	case 6:
		return "Multiview Main"
	case 7:
		return "Scalable Main"
	case 8:
		return "3D Main"
	case 9:
		return "Screen-Extended"
	case 10:
		return "Scalable Format Range Extensions"
	case 11:
		return "High Throughput Screen-Extended"
	default:
		return "profile " + strconv.Itoa(p)
	}
}

// rextProfileName derives a Format Range Extensions profile name from the
// constraint flags that follow the four source flags (H.265 A.3.5 table
// A.2): max_12bit, max_10bit, max_8bit, max_422chroma, max_420chroma,
// max_monochrome, intra, one_picture_only.
func (c hevcPTL) rextProfileName() string {
	flag := func(i int) bool { return c.constraints[i/8]>>(7-uint(i%8))&1 == 1 }
	depth := "16"
	switch {
	case flag(6):
		depth = ""
	case flag(5):
		depth = "10"
	case flag(4):
		depth = "12"
	}
	var name string
	switch {
	case flag(9):
		name = "Monochrome"
	case flag(8):
		name = "Main"
	case flag(7):
		name = "Main 4:2:2"
	default:
		name = "Main 4:4:4"
	}
	if depth != "" {
		name += " " + depth
	}
	switch {
	case flag(11):
		name += " Still Picture"
	case flag(10):
		name += " Intra"
	}
	return name
}

// hevcLevel turns general_level_idc (30 × the level) into "4" or "5.1".
func hevcLevel(idc byte) string {
	switch {
	case idc%3 != 0:
		return "level_idc " + strconv.Itoa(int(idc))
	case idc%30 == 0:
		return strconv.Itoa(int(idc / 30))
	}
	return strconv.Itoa(int(idc/30)) + "." + strconv.Itoa(int(idc%30/3))
}

// hevcSPS is what fount reads from an H.265 sequence parameter set.
type hevcSPS struct {
	maxSubLayersMinus1           int
	temporalIDNesting            bool
	chromaFormatIDC              int
	bitDepthLuma, bitDepthChroma int
	width, height                int // after the conformance window
	frameRate                    float64
	colour                       colour
}

// parseHEVCSPS parses an SPS NAL unit (with its 2-byte NAL header, H.265
// 7.3.2.2.1): the size up to the bit depths; then, if it can, on to the VUI
// for the colour description and timing. A VUI it cannot reach loses only
// those.
func parseHEVCSPS(nal []byte) (hevcSPS, error) {
	si := hevcSPS{colour: unspecifiedColour}
	if len(nal) < 3 {
		return si, errors.New("hevc sps: truncated")
	}
	if t := nal[0] >> 1 & 0x3f; t != hevcNALSPS {
		return si, fmt.Errorf("hevc sps: NAL type %d", t)
	}
	rbsp := unescapeRBSP(nal[2:])
	r := &bitReader{b: rbsp}
	r.u(4) // sps_video_parameter_set_id
	si.maxSubLayersMinus1 = int(r.u(3))
	si.temporalIDNesting = r.flag()
	if si.maxSubLayersMinus1 > 6 {
		return si, fmt.Errorf("hevc sps: sps_max_sub_layers_minus1 %d out of range", si.maxSubLayersMinus1)
	}
	// profile_tier_level(1, sps_max_sub_layers_minus1), H.265 7.3.3: the
	// general part, which the record repeats (parseHEVC reads it there).
	r.skip(96)
	var subProfile, subLevel [6]bool
	for i := 0; i < si.maxSubLayersMinus1; i++ {
		subProfile[i] = r.flag()
		subLevel[i] = r.flag()
	}
	if si.maxSubLayersMinus1 > 0 {
		r.u(2 * (8 - si.maxSubLayersMinus1)) // reserved_zero_2bits
	}
	for i := 0; i < si.maxSubLayersMinus1; i++ {
		if subProfile[i] {
			r.skip(88)
		}
		if subLevel[i] {
			r.u(8)
		}
	}
	id := r.ue()
	if r.err == nil && id > 15 {
		return si, fmt.Errorf("hevc sps: sps_seq_parameter_set_id %d out of range", id)
	}
	cf := r.ue()
	if r.err == nil && cf > 3 {
		return si, fmt.Errorf("hevc sps: chroma_format_idc %d out of range", cf)
	}
	si.chromaFormatIDC = int(cf)
	separateColourPlane := false
	if cf == 3 {
		separateColourPlane = r.flag()
	}
	w, h := r.ue(), r.ue()
	var cropL, cropR, cropT, cropB uint32
	if r.flag() { // conformance_window_flag
		cropL, cropR, cropT, cropB = r.ue(), r.ue(), r.ue(), r.ue()
	}
	dl, dc := r.ue(), r.ue()
	if r.err != nil {
		return si, fmt.Errorf("hevc sps: %w", r.err)
	}
	if w == 0 || h == 0 || w > hevcMaxLumaSize || h > hevcMaxLumaSize {
		return si, fmt.Errorf("hevc sps: coded size %dx%d out of range", w, h)
	}
	if dl > 8 || dc > 8 {
		return si, fmt.Errorf("hevc sps: bit depth minus 8 %d/%d out of range", dl, dc)
	}
	si.bitDepthLuma, si.bitDepthChroma = int(dl)+8, int(dc)+8
	// Conformance window offsets count chroma samples (H.265 7.4.3.2.1).
	subW, subH := int64(1), int64(1)
	if !separateColourPlane {
		switch cf {
		case 1:
			subW, subH = 2, 2
		case 2:
			subW = 2
		}
	}
	cw := int64(w) - subW*(int64(cropL)+int64(cropR))
	ch := int64(h) - subH*(int64(cropT)+int64(cropB))
	if cw <= 0 || ch <= 0 {
		return si, errors.New("hevc sps: conformance window leaves an empty picture")
	}
	si.width, si.height = int(cw), int(ch)
	si.frameRate, si.colour = hevcSPSTail(r, si.maxSubLayersMinus1)
	return si, nil
}

// hevcSPSTail reads the SPS from log2_max_pic_order_cnt_lsb_minus4 on to the
// VUI and returns its frame rate and colour description; on any doubt it
// returns none.
func hevcSPSTail(r *bitReader, maxSubLayersMinus1 int) (float64, colour) {
	none := unspecifiedColour
	log2MaxPOCLsb := int(r.ue()) + 4
	if log2MaxPOCLsb > 16 {
		return 0, none
	}
	first := maxSubLayersMinus1
	if r.flag() { // sps_sub_layer_ordering_info_present_flag
		first = 0
	}
	for i := first; i <= maxSubLayersMinus1; i++ {
		r.ue()
		r.ue()
		r.ue()
	}
	for range 6 { // coding and transform block sizes, hierarchy depths
		r.ue()
	}
	if r.flag() { // scaling_list_enabled_flag
		if r.flag() { // sps_scaling_list_data_present_flag
			for sizeID := 0; sizeID < 4; sizeID++ {
				step := 1
				if sizeID == 3 {
					step = 3
				}
				for m := 0; m < 6; m += step {
					if !r.flag() { // scaling_list_pred_mode_flag
						r.ue()
						continue
					}
					n := min(64, 1<<(4+2*sizeID))
					if sizeID > 1 {
						r.se()
					}
					for i := 0; i < n && r.err == nil; i++ {
						r.se()
					}
				}
			}
		}
	}
	r.u(1)        // amp_enabled_flag
	r.u(1)        // sample_adaptive_offset_enabled_flag
	if r.flag() { // pcm_enabled_flag
		r.u(8)
		r.ue()
		r.ue()
		r.u(1)
	}
	nSets := int(r.ue())
	if nSets > 64 || r.err != nil {
		return 0, none
	}
	var numDeltaPocs [64]int
	for i := 0; i < nSets; i++ {
		inter := i != 0 && r.flag()
		if inter {
			r.u(1) // delta_rps_sign
			r.ue() // abs_delta_rps_minus1
			n := 0 // in an SPS the reference is always the set before
			for j := 0; j <= numDeltaPocs[i-1]; j++ {
				used := r.flag()
				if used || r.flag() { // use_delta_flag inferred 1 when used
					n++
				}
			}
			numDeltaPocs[i] = n
		} else {
			neg, pos := r.ue(), r.ue()
			if neg > 16 || pos > 16 {
				return 0, none
			}
			for j := uint32(0); j < neg+pos; j++ {
				r.ue()
				r.u(1)
			}
			numDeltaPocs[i] = int(neg + pos)
		}
		if r.err != nil {
			return 0, none
		}
	}
	if r.flag() { // long_term_ref_pics_present_flag
		n := r.ue()
		if n > 32 {
			return 0, none
		}
		for i := uint32(0); i < n; i++ {
			r.u(log2MaxPOCLsb)
			r.u(1)
		}
	}
	r.u(1)                         // sps_temporal_mvp_enabled_flag
	r.u(1)                         // strong_intra_smoothing_enabled_flag
	if !r.flag() || r.err != nil { // vui_parameters_present_flag
		return 0, none
	}
	if r.flag() { // aspect_ratio_info_present_flag
		if r.u(8) == 255 {
			r.u(32)
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
	r.u(3)        // neutral_chroma_indication, field_seq, frame_field_info_present
	if r.flag() { // default_display_window_flag
		r.ue()
		r.ue()
		r.ue()
		r.ue()
	}
	if r.err != nil {
		return 0, none
	}
	if !r.flag() { // vui_timing_info_present_flag
		return 0, c
	}
	units, scale := r.u(32), r.u(32)
	if r.err != nil || units == 0 || scale == 0 {
		return 0, c
	}
	return float64(scale) / float64(units), c
}

// hevcFromKeyframe builds an hvcC from the VPS, SPS and PPS NAL units of a
// keyframe in 4-byte length-prefixed form, with the header fields ffmpeg
// derives from the SPS.
func hevcFromKeyframe(frame []byte) (*Video, error) {
	var sets [3][][]byte // VPS, SPS, PPS
	err := eachNALU(frame, func(nal []byte) {
		if len(nal) < 2 {
			return
		}
		if t := int(nal[0] >> 1 & 0x3f); t >= hevcNALVPS && t <= hevcNALPPS {
			sets[t-hevcNALVPS] = append(sets[t-hevcNALVPS], nal)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("hevc keyframe: %w", err)
	}
	for i, name := range []string{"VPS", "SPS", "PPS"} {
		if len(sets[i]) == 0 {
			return nil, fmt.Errorf("hevc keyframe: no %s in the frame", name)
		}
	}
	si, err := parseHEVCSPS(sets[1][0])
	if err != nil {
		return nil, fmt.Errorf("hevc keyframe: %w", err)
	}
	rbsp := unescapeRBSP(sets[1][0][2:])
	if len(rbsp) < 13 {
		return nil, errors.New("hevc keyframe: sps: truncated profile_tier_level")
	}
	rec := make([]byte, 0, 64)
	rec = append(rec, 1)
	rec = append(rec, rbsp[1:13]...) // general profile, compatibility, constraints, level
	nesting := byte(0)
	if si.temporalIDNesting {
		nesting = 4
	}
	rec = append(rec,
		0xf0, 0x00, // min_spatial_segmentation_idc 0: unknown
		0xfc,                           // parallelismType 0: unknown
		0xfc|byte(si.chromaFormatIDC),  //
		0xf8|byte(si.bitDepthLuma-8),   //
		0xf8|byte(si.bitDepthChroma-8), //
		0, 0,                           // avgFrameRate unspecified
		byte(si.maxSubLayersMinus1+1)<<3|nesting|3, // constantFrameRate 0, lengthSizeMinusOne 3
		3)
	for i, set := range sets {
		if len(set) > 0xffff {
			return nil, errors.New("hevc keyframe: too many parameter sets")
		}
		// array_completeness 1: an hvc1 sample entry holds every set.
		rec = append(rec, 0x80|byte(hevcNALVPS+i), byte(len(set)>>8), byte(len(set)))
		for _, nal := range set {
			if len(nal) > 0xffff {
				return nil, errors.New("hevc keyframe: parameter set longer than 65535 bytes")
			}
			rec = append(rec, byte(len(nal)>>8), byte(len(nal)))
			rec = append(rec, nal...)
		}
	}
	return parseHEVC(rec)
}
