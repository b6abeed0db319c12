package codec

import (
	"errors"
	"fmt"
)

// parseVPCC parses a VPCodecConfigurationRecord (VP Codec ISO Media File
// Format Binding, version 1). It takes the vpcC box payload (version 1 and
// flags, then the record) or the record alone, as some E-RTMP writers send
// it; Record is always the box payload. A vpcC carries no picture size: the
// first keyframe gives it (WithKeyframe).
func parseVPCC(rec []byte) (*Video, error) {
	body := rec
	switch {
	case len(rec) >= 12 && rec[0] == 1 && rec[1]|rec[2]|rec[3] == 0 && 12+int(rec[10])<<8|int(rec[11]) == len(rec):
		body = rec[4:]
	case len(rec) >= 8 && 8+int(rec[6])<<8|int(rec[7]) == len(rec):
	case len(rec) >= 4 && rec[0] != 1:
		return nil, fmt.Errorf("vp9 config: unsupported vpcC version %d", rec[0])
	default:
		return nil, fmt.Errorf("vp9 config: record of %d bytes is neither a vpcC payload nor a bare record", len(rec))
	}
	c := vpcc{
		profile:   int(body[0]),
		level:     int(body[1]),
		bitDepth:  int(body[2] >> 4),
		chroma:    int(body[2] >> 1 & 7),
		fullRange: body[2]&1 != 0,
		colour:    colour{primaries: int(body[3]), transfer: int(body[4]), matrix: int(body[5])},
		initData:  body[8:],
	}
	if c.profile > 3 {
		return nil, fmt.Errorf("vp9 config: profile %d out of range", c.profile)
	}
	if c.bitDepth != 8 && c.bitDepth != 10 && c.bitDepth != 12 {
		return nil, fmt.Errorf("vp9 config: bitDepth %d", c.bitDepth)
	}
	if c.chroma > 3 {
		return nil, fmt.Errorf("vp9 config: chromaSubsampling %d reserved", c.chroma)
	}
	if len(c.initData) != 0 {
		// VP9 defines no initialization data (the binding says so).
		return nil, fmt.Errorf("vp9 config: codecInitializationDataSize %d, want 0", len(c.initData))
	}
	return c.video(), nil
}

// vpcc is the content of a VPCodecConfigurationRecord.
type vpcc struct {
	profile, level, bitDepth, chroma int
	fullRange                        bool
	colour                           colour
	initData                         []byte
}

func (c *vpcc) record() []byte {
	full := byte(0)
	if c.fullRange {
		full = 1
	}
	return []byte{1, 0, 0, 0,
		byte(c.profile), byte(c.level), byte(c.bitDepth<<4|c.chroma<<1) | full,
		byte(c.colour.primaries), byte(c.colour.transfer), byte(c.colour.matrix), 0, 0}
}

func (c *vpcc) video() *Video {
	chroma := 1 // 0 and 1 are 4:2:0 with different chroma siting
	switch c.chroma {
	case 2:
		chroma = 2
	case 3:
		chroma = 3
	}
	return &Video{
		Codec:                   VP9,
		Codecs:                  fmt.Sprintf("vp09.%02d.%02d.%02d", c.profile, c.level, c.bitDepth),
		Transfer:                transferFrom(c.colour.transfer),
		Record:                  c.record(),
		Profile:                 c.profile,
		Level:                   c.level,
		BitDepth:                c.bitDepth,
		BitDepthChroma:          c.bitDepth,
		ChromaFormat:            chroma,
		ColorPrimaries:          c.colour.primaries,
		TransferCharacteristics: c.colour.transfer,
		MatrixCoefficients:      c.colour.matrix,
		FullRange:               c.fullRange,
	}
}

// vp9Header is what a VP9 keyframe's uncompressed header (VP9 spec 6.2)
// tells.
type vp9Header struct {
	profile       int
	bitDepth      int
	colorSpace    int
	fullRange     bool
	subX, subY    bool
	width, height int
}

// vp9Frames calls fn for each frame of a VP9 superframe (VP9 spec Annex
// B), or for the frame itself if it is not one, until fn returns true.
func vp9Frames(b []byte, fn func([]byte) bool) error {
	if len(b) == 0 {
		return errors.New("vp9 frame: empty")
	}
	last := b[len(b)-1]
	if last&0xe0 == 0xc0 {
		n := int(last&7) + 1
		size := int(last>>3&3) + 1
		idx := 2 + size*n
		if len(b) >= idx && b[len(b)-idx] == last {
			data := b[:len(b)-idx]
			p := len(b) - idx + 1
			for i := 0; i < n; i++ {
				fs := 0
				for j := 0; j < size; j++ {
					fs |= int(b[p+j]) << (8 * j)
				}
				p += size
				if fs > len(data) {
					return fmt.Errorf("vp9 frame: superframe frame %d of %d bytes overruns the %d bytes left", i, fs, len(data))
				}
				if fn(data[:fs]) {
					return nil
				}
				data = data[fs:]
			}
			return nil
		}
	}
	fn(b)
	return nil
}

// vp9KeyframeHeader finds the keyframe in a frame or superframe and reads
// its uncompressed header.
func vp9KeyframeHeader(b []byte) (vp9Header, error) {
	var h vp9Header
	var err error
	found := false
	ferr := vp9Frames(b, func(f []byte) bool {
		var key bool
		h, key, err = parseVP9Header(f)
		found = err == nil && key
		return err != nil || key
	})
	switch {
	case ferr != nil:
		return h, ferr
	case err != nil:
		return h, err
	case !found:
		return h, errors.New("vp9 frame: not a keyframe")
	}
	return h, nil
}

// parseVP9Header reads the uncompressed header up to the frame size and
// reports whether the frame is a keyframe; of other frames it reads nothing
// more.
func parseVP9Header(b []byte) (vp9Header, bool, error) {
	var h vp9Header
	r := &bitReader{b: b}
	if r.u(2) != 2 {
		return h, false, errors.New("vp9 frame: frame_marker is not 2")
	}
	lo := r.u(1)
	h.profile = int(r.u(1)<<1 | lo)
	if h.profile == 3 {
		r.u(1) // reserved_zero
	}
	if r.flag() { // show_existing_frame
		return h, false, r.err
	}
	if r.flag() { // frame_type: 1 is a non-key frame
		return h, false, r.err
	}
	r.u(2) // show_frame, error_resilient_mode
	if s := r.u(24); s != 0x498342 && r.err == nil {
		return h, false, fmt.Errorf("vp9 frame: frame_sync_code %06x", s)
	}
	h.bitDepth = 8
	if h.profile >= 2 {
		h.bitDepth = 10
		if r.flag() {
			h.bitDepth = 12
		}
	}
	h.colorSpace = int(r.u(3))
	if h.colorSpace != 7 { // CS_RGB
		h.fullRange = r.flag()
		if h.profile == 1 || h.profile == 3 {
			h.subX, h.subY = r.flag(), r.flag()
			r.u(1)
		} else {
			h.subX, h.subY = true, true
		}
	} else {
		h.fullRange = true
		if h.profile == 1 || h.profile == 3 {
			r.u(1)
		}
	}
	h.width, h.height = int(r.u(16))+1, int(r.u(16))+1
	if r.err != nil {
		return h, false, fmt.Errorf("vp9 frame: uncompressed header: %w", r.err)
	}
	return h, true, nil
}

// vp9Levels is the VP9 level table: level (×10), the largest picture in luma
// samples.
var vp9Levels = [...]struct{ level, maxPicture int }{
	{10, 36864}, {11, 73728}, {20, 122880}, {21, 245760}, {30, 552960}, {31, 983040},
	{40, 2228224}, {50, 8912896}, {60, 35651584},
}

// vp9FromKeyframe builds a vpcC from a keyframe: profile, bit depth,
// subsampling and range from the uncompressed header; the level from the
// picture size alone (the lowest level whose picture size it fits, as the
// sample rate is unknown); the matrix from the colour space; primaries and
// transfer unspecified, as the VP9 bitstream does not carry them.
func vp9FromKeyframe(frame []byte) (*Video, error) {
	h, err := vp9KeyframeHeader(frame)
	if err != nil {
		return nil, err
	}
	c := vpcc{profile: h.profile, bitDepth: h.bitDepth, fullRange: h.fullRange, colour: unspecifiedColour}
	switch {
	case h.subX && h.subY:
		// 4:2:0; the bitstream does not say where chroma sits. 1
		// (co-sited with luma) is what ffmpeg writes then, so a record
		// built here equals the one an ffmpeg-made sequence start carries.
		c.chroma = 1
	case h.subX:
		c.chroma = 2
	default:
		c.chroma = 3
	}
	// VP9 color_space to ITU-T H.273 matrix_coefficients.
	switch h.colorSpace {
	case 1, 3: // BT.601, SMPTE 170M
		c.colour.matrix = 6
	case 2: // BT.709
		c.colour.matrix = 1
	case 4: // SMPTE 240M
		c.colour.matrix = 7
	case 5: // BT.2020
		c.colour.matrix = 9
	case 7: // RGB
		c.colour.matrix = 0
	}
	pic := h.width * h.height
	c.level = 62
	for _, l := range vp9Levels {
		if pic <= l.maxPicture {
			c.level = l.level
			break
		}
	}
	v := c.video()
	v.Width, v.Height = h.width, h.height
	return v, nil
}
