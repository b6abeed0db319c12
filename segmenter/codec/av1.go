package codec

import (
	"bytes"
	"errors"
	"fmt"
)

// AV1 OBU types (AV1 spec 6.2.2).
const (
	obuSequenceHeader    = 1
	obuTemporalDelimiter = 2
)

// av1Seq is what fount reads from an AV1 sequence header OBU (AV1 spec
// 5.5) and what the av1C record repeats of it.
type av1Seq struct {
	profile        int
	level0         int // seq_level_idx[0]
	tier0          bool
	highBitDepth   bool
	twelveBit      bool
	mono           bool
	subX, subY     bool
	chromaPosition int
	bitDepth       int
	width, height  int // max_frame_width/height
	frameRate      float64
	colour         colour
}

// obu is one OBU of a low-overhead bitstream.
type obu struct {
	typ     int
	whole   []byte // header, size and payload
	payload []byte
}

// nextOBU splits the first OBU off b. An OBU without obu_has_size_field
// runs to the end of b (AV1-ISOBMFF allows that for the last OBU).
func nextOBU(b []byte) (obu, []byte, error) {
	if len(b) < 1 {
		return obu{}, nil, errors.New("obu: empty")
	}
	h := b[0]
	if h&0x80 != 0 {
		return obu{}, nil, errors.New("obu: forbidden bit set")
	}
	o := obu{typ: int(h >> 3 & 0xf)}
	p := 1
	if h&4 != 0 { // obu_extension_flag
		p++
	}
	if p > len(b) {
		return obu{}, nil, errors.New("obu: truncated header")
	}
	size := uint64(len(b) - p)
	if h&2 != 0 { // obu_has_size_field
		v, n, err := leb128(b[p:])
		if err != nil {
			return obu{}, nil, err
		}
		p += n
		if v > uint64(len(b)-p) {
			return obu{}, nil, fmt.Errorf("obu: size %d overruns the %d bytes left", v, len(b)-p)
		}
		size = v
	}
	end := p + int(size)
	o.whole, o.payload = b[:end:end], b[p:end:end]
	return o, b[end:], nil
}

// leb128 reads an unsigned LEB128 value of at most 8 bytes (AV1 spec 4.10.5).
func leb128(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < 8; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("obu: truncated leb128 size")
		}
		v |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i]&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, 0, fmt.Errorf("obu: leb128 size %d out of range", v)
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("obu: leb128 size longer than 8 bytes")
}

// parseAV1SequenceHeader parses a sequence_header_obu payload.
func parseAV1SequenceHeader(b []byte) (av1Seq, error) {
	s := av1Seq{colour: unspecifiedColour}
	r := &bitReader{b: b}
	s.profile = int(r.u(3))
	if s.profile > 2 {
		return s, fmt.Errorf("av1 sequence header: seq_profile %d out of range", s.profile)
	}
	r.u(1) // still_picture
	reduced := r.flag()
	decoderModelInfo := false
	bufferDelayLen := 0
	if reduced {
		s.level0 = int(r.u(5))
	} else {
		if r.flag() { // timing_info_present_flag
			units, scale := r.u(32), r.u(32)
			ticks := uint64(1)
			if r.flag() { // equal_picture_interval
				t := uvlc(r)
				if t >= 1<<32-1 {
					return s, errors.New("av1 sequence header: num_ticks_per_picture_minus_1 out of range")
				}
				ticks = uint64(t) + 1
			}
			if units != 0 && scale != 0 {
				s.frameRate = float64(scale) / (float64(units) * float64(ticks))
			}
			decoderModelInfo = r.flag()
			if decoderModelInfo {
				bufferDelayLen = int(r.u(5)) + 1
				r.u(32) // num_units_in_decoding_tick
				r.u(5)  // buffer_removal_time_length_minus_1
				r.u(5)  // frame_presentation_time_length_minus_1
			}
		}
		initialDisplayDelay := r.flag()
		n := int(r.u(5)) + 1 // operating_points_cnt_minus_1 + 1
		for i := 0; i < n; i++ {
			r.u(12) // operating_point_idc
			level := int(r.u(5))
			tier := false
			if level > 7 {
				tier = r.flag()
			}
			if i == 0 {
				s.level0, s.tier0 = level, tier
			}
			if decoderModelInfo && r.flag() { // decoder_model_present_for_this_op
				r.u(bufferDelayLen) // decoder_buffer_delay
				r.u(bufferDelayLen) // encoder_buffer_delay
				r.u(1)              // low_delay_mode_flag
			}
			if initialDisplayDelay && r.flag() {
				r.u(4) // initial_display_delay_minus_1
			}
		}
	}
	wBits, hBits := int(r.u(4))+1, int(r.u(4))+1
	s.width, s.height = int(r.u(wBits))+1, int(r.u(hBits))+1
	if !reduced && r.flag() { // frame_id_numbers_present_flag
		r.u(4)
		r.u(3)
	}
	r.u(3) // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
	if !reduced {
		r.u(4) // interintra, masked compound, warped motion, dual filter
		orderHint := r.flag()
		if orderHint {
			r.u(2) // enable_jnt_comp, enable_ref_frame_mvs
		}
		forceScreenContent := 2
		if !r.flag() { // seq_choose_screen_content_tools
			forceScreenContent = int(r.u(1))
		}
		if forceScreenContent > 0 && !r.flag() { // seq_choose_integer_mv
			r.u(1) // seq_force_integer_mv
		}
		if orderHint {
			r.u(3)
		}
	}
	r.u(3) // enable_superres, enable_cdef, enable_restoration
	// color_config (5.5.2)
	s.highBitDepth = r.flag()
	s.bitDepth = 8
	if s.profile == 2 && s.highBitDepth {
		s.twelveBit = r.flag()
		s.bitDepth = 10
		if s.twelveBit {
			s.bitDepth = 12
		}
	} else if s.highBitDepth {
		s.bitDepth = 10
	}
	if s.profile != 1 {
		s.mono = r.flag()
	}
	if r.flag() { // color_description_present_flag
		s.colour.primaries, s.colour.transfer, s.colour.matrix = int(r.u(8)), int(r.u(8)), int(r.u(8))
	}
	switch {
	case s.mono:
		s.colour.fullRange = r.flag()
		s.subX, s.subY = true, true
	case s.colour.primaries == 1 && s.colour.transfer == 13 && s.colour.matrix == 0: // sRGB
		s.colour.fullRange = true
	default:
		s.colour.fullRange = r.flag()
		switch s.profile {
		case 0:
			s.subX, s.subY = true, true
		case 1:
		default:
			if s.bitDepth == 12 {
				s.subX = r.flag()
				if s.subX {
					s.subY = r.flag()
				}
			} else {
				s.subX = true
			}
		}
		if s.subX && s.subY {
			s.chromaPosition = int(r.u(2))
		}
	}
	if !s.mono {
		r.u(1) // separate_uv_delta_q
	}
	r.u(1) // film_grain_params_present
	if r.err != nil {
		return s, fmt.Errorf("av1 sequence header: %w", r.err)
	}
	return s, nil
}

// uvlc reads a variable length unsigned code (AV1 spec 4.10.3).
func uvlc(r *bitReader) uint32 {
	zeros := 0
	for !r.flag() {
		if r.err != nil {
			return 0
		}
		zeros++
		if zeros >= 32 {
			return 1<<32 - 1
		}
	}
	return r.u(zeros) + (1<<uint(zeros) - 1)
}

// av1CFields are the bit-packed fields of an av1C record after its first byte.
func (s *av1Seq) av1C(configOBUs []byte) []byte {
	w := &bitWriter{}
	w.put(1, 1) // marker
	w.put(1, 7) // version
	w.put(uint32(s.profile), 3)
	w.put(uint32(s.level0), 5)
	w.putBool(s.tier0)
	w.putBool(s.highBitDepth)
	w.putBool(s.twelveBit)
	w.putBool(s.mono)
	w.putBool(s.subX)
	w.putBool(s.subY)
	w.put(uint32(s.chromaPosition), 2)
	w.put(0, 8) // reserved, initial_presentation_delay_present 0
	return append(w.b, configOBUs...)
}

// parseAV1C parses an AV1CodecConfigurationRecord (AV1-ISOBMFF 2.3.3) and
// the sequence header OBU in its configOBUs. A record without one gives a
// configuration of unknown size.
func parseAV1C(rec []byte) (*Video, error) {
	if len(rec) < 4 {
		return nil, fmt.Errorf("av1 config: truncated record (%d bytes)", len(rec))
	}
	if rec[0] != 0x81 {
		return nil, fmt.Errorf("av1 config: marker/version byte 0x%02x, want 0x81", rec[0])
	}
	b := bytes.Clone(rec)
	hdr := av1Seq{
		profile:        int(b[1] >> 5),
		level0:         int(b[1] & 0x1f),
		tier0:          b[2]&0x80 != 0,
		highBitDepth:   b[2]&0x40 != 0,
		twelveBit:      b[2]&0x20 != 0,
		mono:           b[2]&0x10 != 0,
		subX:           b[2]&0x08 != 0,
		subY:           b[2]&0x04 != 0,
		chromaPosition: int(b[2] & 3),
		colour:         unspecifiedColour,
	}
	if hdr.profile > 2 {
		return nil, fmt.Errorf("av1 config: seq_profile %d out of range", hdr.profile)
	}
	hdr.bitDepth = 8
	switch {
	case hdr.twelveBit:
		hdr.bitDepth = 12
	case hdr.highBitDepth:
		hdr.bitDepth = 10
	}
	s := hdr
	for rest := b[4:]; len(rest) > 0; {
		o, next, err := nextOBU(rest)
		if err != nil {
			return nil, fmt.Errorf("av1 config: configOBUs: %w", err)
		}
		rest = next
		if o.typ != obuSequenceHeader {
			continue
		}
		if s, err = parseAV1SequenceHeader(o.payload); err != nil {
			return nil, fmt.Errorf("av1 config: %w", err)
		}
		if s.profile != hdr.profile || s.bitDepth != hdr.bitDepth || s.level0 != hdr.level0 || s.tier0 != hdr.tier0 {
			return nil, fmt.Errorf("av1 config: record says profile %d level %d depth %d, sequence header profile %d level %d depth %d",
				hdr.profile, hdr.level0, hdr.bitDepth, s.profile, s.level0, s.bitDepth)
		}
		break
	}
	v := s.video()
	v.Record = b
	return v, nil
}

func (s *av1Seq) video() *Video {
	tier := 'M'
	if s.tier0 {
		tier = 'H'
	}
	chroma := 1
	switch {
	case s.mono:
		chroma = 0
	case !s.subX:
		chroma = 3
	case !s.subY:
		chroma = 2
	}
	return &Video{
		Codec:                   AV1,
		Codecs:                  fmt.Sprintf("av01.%d.%02d%c.%02d", s.profile, s.level0, tier, s.bitDepth),
		Width:                   s.width,
		Height:                  s.height,
		FrameRate:               s.frameRate,
		Transfer:                transferFrom(s.colour.transfer),
		Profile:                 s.profile,
		Level:                   s.level0,
		BitDepth:                s.bitDepth,
		BitDepthChroma:          s.bitDepth,
		HighTier:                s.tier0,
		ChromaFormat:            chroma,
		ColorPrimaries:          s.colour.primaries,
		TransferCharacteristics: s.colour.transfer,
		MatrixCoefficients:      s.colour.matrix,
		FullRange:               s.colour.fullRange,
	}
}

// av1FromTemporalUnit builds an av1C from the sequence header OBU of a
// temporal unit (low-overhead format, as in MP4 samples and E-RTMP coded
// frames). The configOBUs hold that OBU with its size field, as ffmpeg
// writes it.
func av1FromTemporalUnit(tu []byte) (*Video, error) {
	for rest := tu; len(rest) > 0; {
		o, next, err := nextOBU(rest)
		if err != nil {
			return nil, fmt.Errorf("av1 keyframe: %w", err)
		}
		rest = next
		if o.typ != obuSequenceHeader {
			continue
		}
		s, err := parseAV1SequenceHeader(o.payload)
		if err != nil {
			return nil, fmt.Errorf("av1 keyframe: %w", err)
		}
		v := s.video()
		v.Record = s.av1C(withSizeField(o))
		return v, nil
	}
	return nil, errors.New("av1 keyframe: no sequence header OBU in the temporal unit")
}

// withSizeField returns the OBU with obu_has_size_field set, so that it can
// be followed by others in configOBUs.
func withSizeField(o obu) []byte {
	if o.whole[0]&2 != 0 {
		return bytes.Clone(o.whole)
	}
	hl := len(o.whole) - len(o.payload)
	out := make([]byte, 0, len(o.whole)+8)
	out = append(out, o.whole[0]|2)
	out = append(out, o.whole[1:hl]...)
	for n := uint64(len(o.payload)); ; {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			out = append(out, c)
			break
		}
		out = append(out, c|0x80)
	}
	return append(out, o.payload...)
}

// ParseAV1TSDescriptor parses the body of an E-RTMP AV1
// MPEG2TSSequenceStart: the AV1 video descriptor of "Carriage of AV1 in
// MPEG-2 TS". Its drafts differ: tag 0x80 with the four record bytes, or tag
// 0x5F with a 32-bit private_data_specifier first; both are taken. The
// descriptor repeats the first four bytes of an av1C (with hdr_wcg_idc in
// the reserved bits), so the result is a configuration with that record, no
// configOBUs and no size: WithKeyframe completes it from the first
// keyframe's sequence header. Ingest should prefer an av1C SequenceStart
// when both arrive.
func ParseAV1TSDescriptor(b []byte) (*Video, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("av1 ts descriptor: truncated (%d bytes)", len(b))
	}
	tag, n := b[0], int(b[1])
	body := b[2:]
	if n > len(body) {
		return nil, fmt.Errorf("av1 ts descriptor: descriptor_length %d overruns the %d bytes left", n, len(body))
	}
	body = body[:n]
	switch {
	case tag == 0x80 && n >= 4:
	case tag == 0x5f && n >= 8:
		body = body[4:] // private_data_specifier
	default:
		return nil, fmt.Errorf("av1 ts descriptor: descriptor_tag 0x%02x with length %d", tag, n)
	}
	rec := []byte{body[0], body[1], body[2], body[3] & 0x1f} // hdr_wcg_idc is the av1C's reserved bits
	v, err := parseAV1C(rec)
	if err != nil {
		return nil, fmt.Errorf("av1 ts descriptor: %w", err)
	}
	return v, nil
}
