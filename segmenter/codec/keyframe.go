package codec

import (
	"errors"
	"fmt"
)

// AV1 OBU types of frame headers (AV1 spec 6.2.2).
const (
	obuFrameHeader = 3
	obuFrame       = 6
)

// IsKeyframe reports whether a decoder can start at frame, for ingest
// paths whose framing does not say (RTP): a VP9 frame or superframe
// holding a frame whose uncompressed header says KEY_FRAME; an AV1
// temporal unit (low-overhead bitstream: OBUs with size fields, the last
// may have none) holding a sequence header and then a key frame that is
// not a shown existing one. An AV1 key frame without a sequence header
// before it is not one here: fount builds the configuration from that
// header. Only VP9 and AV1 are read; the error says why a frame could
// not be (a malformed header, another codec).
func IsKeyframe(id ID, frame []byte) (bool, error) {
	switch id {
	case VP9:
		key := false
		var herr error
		err := vp9Frames(frame, func(f []byte) bool {
			_, key, herr = parseVP9Header(f)
			return key || herr != nil
		})
		if err == nil {
			err = herr
		}
		return key && err == nil, err
	case AV1:
		return av1Keyframe(frame)
	}
	return false, fmt.Errorf("codec: keyframes of %v are not read from the bitstream", id)
}

// av1Keyframe reads a temporal unit's OBUs up to its first frame header.
func av1Keyframe(tu []byte) (bool, error) {
	seq, reduced := false, false
	for rest := tu; len(rest) > 0; {
		o, next, err := nextOBU(rest)
		if err != nil {
			return false, fmt.Errorf("av1 temporal unit: %w", err)
		}
		rest = next
		switch o.typ {
		case obuSequenceHeader:
			if len(o.payload) == 0 {
				return false, errors.New("av1 temporal unit: empty sequence header")
			}
			// seq_profile (3 bits), still_picture, reduced_still_picture_header.
			seq, reduced = true, o.payload[0]&0x08 != 0
		case obuFrameHeader, obuFrame:
			switch {
			case !seq:
				return false, nil
			case reduced: // a still picture: always a key frame
				return true, nil
			case len(o.payload) == 0:
				return false, errors.New("av1 temporal unit: empty frame header")
			}
			// uncompressed_header: show_existing_frame (1 bit), then
			// frame_type (2 bits), KEY_FRAME being 0.
			return o.payload[0]&0xe0 == 0, nil
		}
	}
	return false, nil
}
