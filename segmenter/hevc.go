package segmenter

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

// hevcConfig is a parsed HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 8.3.3.1). fount does not remux HEVC yet: the parse serves to tell an
// operator exactly what an encoder sent, and is the start of HEVC support.
type hevcConfig struct {
	profileSpace     byte   // general_profile_space
	highTier         bool   // general_tier_flag
	profileIDC       byte   // general_profile_idc
	compat           uint32 // general_profile_compatibility_flags, flag 0 in the top bit
	constraints      [6]byte
	levelIDC         byte // general_level_idc: 30 × the level number
	minSpatialSeg    uint16
	parallelismType  byte
	chromaFormat     byte
	bitDepthLuma     int
	bitDepthChroma   int
	avgFrameRate     uint16 // frames per 256 s, 0 if unspecified
	constFrameRate   byte
	temporalLayers   byte
	temporalIDNested bool
	nalLengthSize    int
	arrays           []hevcNALArray
	vps, sps, pps    [][]byte // views into arrays' NAL units
	sei              [][]byte
	spsInfo          hevcSPS
}

// hevcNALArray is one of the record's arrays of NAL units of one type.
type hevcNALArray struct {
	complete bool // array_completeness: no more of this type in the stream
	nalType  byte
	nalus    [][]byte
}

// parseHEVCConfig parses an HEVCDecoderConfigurationRecord and the first
// SPS in it. It requires a VPS, an SPS and a PPS, as a decoder does. The
// returned config owns copies of all bytes.
func parseHEVCConfig(b []byte) (*hevcConfig, error) {
	if len(b) < 23 {
		return nil, fmt.Errorf("hevc config: truncated record (%d bytes)", len(b))
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("hevc config: unsupported configurationVersion %d", b[0])
	}
	b = bytes.Clone(b)
	c := &hevcConfig{
		profileSpace:     b[1] >> 6,
		highTier:         b[1]&0x20 != 0,
		profileIDC:       b[1] & 0x1f,
		compat:           uint32(b[2])<<24 | uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5]),
		levelIDC:         b[12],
		minSpatialSeg:    uint16(b[13]&0x0f)<<8 | uint16(b[14]),
		parallelismType:  b[15] & 3,
		chromaFormat:     b[16] & 3,
		bitDepthLuma:     int(b[17]&7) + 8,
		bitDepthChroma:   int(b[18]&7) + 8,
		avgFrameRate:     uint16(b[19])<<8 | uint16(b[20]),
		constFrameRate:   b[21] >> 6,
		temporalLayers:   b[21] >> 3 & 7,
		temporalIDNested: b[21]&4 != 0,
		nalLengthSize:    int(b[21]&3) + 1,
	}
	copy(c.constraints[:], b[6:12])
	if c.nalLengthSize == 3 {
		return nil, errors.New("hevc config: invalid NALU length size 3")
	}
	nArrays := int(b[22])
	p := 23
	for i := 0; i < nArrays; i++ {
		if p+3 > len(b) {
			return nil, fmt.Errorf("hevc config: truncated array %d header", i)
		}
		a := hevcNALArray{complete: b[p]&0x80 != 0, nalType: b[p] & 0x3f}
		n := int(b[p+1])<<8 | int(b[p+2])
		p += 3
		// Each NAL unit takes at least 4 bytes (length and NAL header):
		// a count the record cannot hold is refused before allocating.
		if n > (len(b)-p)/4 {
			return nil, fmt.Errorf("hevc config: array %d claims %d NAL units in %d bytes", i, n, len(b)-p)
		}
		a.nalus = make([][]byte, 0, n)
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
			if t := nal[0] >> 1 & 0x3f; t != a.nalType {
				return nil, fmt.Errorf("hevc config: NAL unit of type %d in an array of type %d", t, a.nalType)
			}
			a.nalus = append(a.nalus, nal)
			switch a.nalType {
			case hevcNALVPS:
				c.vps = append(c.vps, nal)
			case hevcNALSPS:
				c.sps = append(c.sps, nal)
			case hevcNALPPS:
				c.pps = append(c.pps, nal)
			case hevcNALPrefixSEI, hevcNALSuffixSEI:
				c.sei = append(c.sei, nal)
			}
		}
		c.arrays = append(c.arrays, a)
	}
	// Bytes after the last array are ignored, as for AVC.
	switch {
	case len(c.vps) == 0:
		return nil, errors.New("hevc config: no VPS")
	case len(c.sps) == 0:
		return nil, errors.New("hevc config: no SPS")
	case len(c.pps) == 0:
		return nil, errors.New("hevc config: no PPS")
	}
	si, err := parseHEVCSPS(c.sps[0])
	if err != nil {
		return nil, fmt.Errorf("hevc config: %w", err)
	}
	c.spsInfo = si
	return c, nil
}

// codec returns the RFC 6381 codecs parameter (ISO/IEC 14496-15 E.3), e.g.
// "hvc1.2.4.L120.90": profile space and idc, the compatibility flags
// bit-reversed in hex, tier and level, then the constraint bytes in hex
// without trailing zero bytes.
func (c *hevcConfig) codec() string {
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
func (c *hevcConfig) effectiveProfile() int {
	if c.profileIDC != 0 || c.compat == 0 {
		return int(c.profileIDC)
	}
	return bits.LeadingZeros32(c.compat)
}

// profileName names the profile as H.265 Annex A does ("Main 10",
// "Main 4:2:2 10", ...).
func (c *hevcConfig) profileName() string {
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
func (c *hevcConfig) rextProfileName() string {
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

// hevcSPS is what fount reads from an H.265 sequence parameter set.
type hevcSPS struct {
	profileSpace, profileIDC, levelIDC int
	highTier                           bool
	id                                 int
	chromaFormatIDC                    int
	bitDepthLuma, bitDepthChroma       int
	codedWidth, codedHeight            int // pic_width/height_in_luma_samples
	width, height                      int // after the conformance window
}

// parseHEVCSPS parses an SPS NAL unit (with its 2-byte NAL header, H.265
// 7.3.2.2.1) up to the bit depths: enough for the coded and displayed size.
func parseHEVCSPS(nal []byte) (hevcSPS, error) {
	var si hevcSPS
	if len(nal) < 3 {
		return si, errors.New("hevc sps: truncated")
	}
	if t := nal[0] >> 1 & 0x3f; t != hevcNALSPS {
		return si, fmt.Errorf("hevc sps: NAL type %d", t)
	}
	r := &bitReader{b: unescapeRBSP(nal[2:])}
	r.u(4) // sps_video_parameter_set_id
	maxSubLayersMinus1 := int(r.u(3))
	r.u(1) // sps_temporal_id_nesting_flag
	if maxSubLayersMinus1 > 6 {
		return si, fmt.Errorf("hevc sps: sps_max_sub_layers_minus1 %d out of range", maxSubLayersMinus1)
	}
	// profile_tier_level(1, sps_max_sub_layers_minus1), H.265 7.3.3.
	si.profileSpace = int(r.u(2))
	si.highTier = r.flag()
	si.profileIDC = int(r.u(5))
	r.u(32) // general_profile_compatibility_flag[32]
	r.u(32) // source and constraint flags: 4 + 43 + 1 bits
	r.u(16)
	si.levelIDC = int(r.u(8))
	var subProfile, subLevel [6]bool
	for i := 0; i < maxSubLayersMinus1; i++ {
		subProfile[i] = r.flag()
		subLevel[i] = r.flag()
	}
	if maxSubLayersMinus1 > 0 {
		r.u(2 * (8 - maxSubLayersMinus1)) // reserved_zero_2bits
	}
	for i := 0; i < maxSubLayersMinus1; i++ {
		if subProfile[i] {
			r.u(32) // space, tier, idc, 24 of the compatibility flags
			r.u(32) // 8 compatibility flags, 24 constraint flags
			r.u(24) // the other 24 constraint flags
		}
		if subLevel[i] {
			r.u(8)
		}
	}
	id := r.ue()
	if r.err == nil && id > 15 {
		return si, fmt.Errorf("hevc sps: sps_seq_parameter_set_id %d out of range", id)
	}
	si.id = int(id)
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
	si.codedWidth, si.codedHeight = int(w), int(h)
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
	return si, nil
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

// HEVCInfo describes an HEVC stream by its decoder configuration record.
type HEVCInfo struct {
	Codec          string // RFC 6381, e.g. "hvc1.2.4.L120.90"
	Profile        string // "Main", "Main 10", "Main 4:2:2 10", ...
	HighTier       bool
	Level          string // "4", "5.1"
	Width, Height  int    // displayed size (after the conformance window)
	ChromaFormat   int    // chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
	BitDepthLuma   int
	BitDepthChroma int
}

// String reads like "HEVC Main 10 1920x1080 (hvc1.2.4.L120.90)".
func (i HEVCInfo) String() string {
	return fmt.Sprintf("HEVC %s %dx%d (%s)", i.Profile, i.Width, i.Height, i.Codec)
}

// DescribeHEVC parses an HEVCDecoderConfigurationRecord (the body of an
// Enhanced RTMP "hvc1" sequence start, or of an MP4 hvcC box) and describes
// the stream.
func DescribeHEVC(record []byte) (HEVCInfo, error) {
	c, err := parseHEVCConfig(record)
	if err != nil {
		return HEVCInfo{}, err
	}
	return HEVCInfo{
		Codec:          c.codec(),
		Profile:        c.profileName(),
		HighTier:       c.highTier,
		Level:          hevcLevel(c.levelIDC),
		Width:          c.spsInfo.width,
		Height:         c.spsInfo.height,
		ChromaFormat:   c.spsInfo.chromaFormatIDC,
		BitDepthLuma:   c.spsInfo.bitDepthLuma,
		BitDepthChroma: c.spsInfo.bitDepthChroma,
	}, nil
}
