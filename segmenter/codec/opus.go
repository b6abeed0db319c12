package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// parseOpusHead parses an OpusHead (RFC 7845 §5.1): "OpusHead", version,
// channel count, pre-skip (LE16), input sample rate (LE32), output gain
// (LE16), channel mapping family and, unless the family is 0, the mapping
// table. Multi-byte fields are little-endian; a header written big-endian
// (as one RTMP library does) is refused with an error that says so.
func parseOpusHead(b []byte) (*Audio, error) {
	if len(b) < 19 {
		return nil, fmt.Errorf("opus config: truncated OpusHead (%d bytes, want at least 19)", len(b))
	}
	if string(b[:8]) != "OpusHead" {
		return nil, fmt.Errorf("opus config: magic %q, want \"OpusHead\"", b[:8])
	}
	if b[8]&0xf0 != 0 {
		// RFC 7845: a major version other than 0 is incompatible.
		return nil, fmt.Errorf("opus config: unsupported version %d", b[8])
	}
	ch := int(b[9])
	if ch == 0 {
		return nil, errors.New("opus config: channel count 0")
	}
	rate := binary.LittleEndian.Uint32(b[12:])
	if rate > 768000 {
		if be := binary.BigEndian.Uint32(b[12:]); be > 0 && be <= 768000 {
			return nil, fmt.Errorf("opus config: input sample rate %d: the OpusHead is big-endian (%d Hz read so), RFC 7845 says little-endian", rate, be)
		}
		return nil, fmt.Errorf("opus config: input sample rate %d out of range", rate)
	}
	a := &Audio{
		Codec:      Opus,
		Codecs:     "opus",
		SampleRate: 48000,
		Channels:   ch,
		PreSkip:    int(binary.LittleEndian.Uint16(b[10:])),
	}
	family := b[18]
	n := 19
	switch family {
	case 0:
		if ch > 2 {
			return nil, fmt.Errorf("opus config: %d channels with mapping family 0 (at most 2)", ch)
		}
	default:
		if family == 1 && ch > 8 {
			return nil, fmt.Errorf("opus config: %d channels with mapping family 1 (at most 8)", ch)
		}
		n = 21 + ch
		if len(b) < n {
			return nil, fmt.Errorf("opus config: truncated channel mapping table (%d bytes, want %d)", len(b), n)
		}
		streams, coupled := int(b[19]), int(b[20])
		if streams == 0 || coupled > streams || streams+coupled > 255 {
			return nil, fmt.Errorf("opus config: stream count %d, coupled count %d", streams, coupled)
		}
		for i, m := range b[21:n] {
			if m != 255 && int(m) >= streams+coupled {
				return nil, fmt.Errorf("opus config: channel %d maps to stream %d of %d", i, m, streams+coupled)
			}
		}
	}
	// Bytes after the header are allowed (RFC 7845: ignored).
	a.Config = bytes.Clone(b[:n])
	return a, nil
}

// OpusDOps renders the payload of the dOps box (Opus in ISOBMFF, 4.3.2) for
// an Opus configuration: version 0 and the OpusHead fields big-endian. It
// returns nil for other codecs.
func (a *Audio) OpusDOps() []byte {
	if a.Codec != Opus || len(a.Config) < 19 {
		return nil
	}
	h := a.Config
	out := make([]byte, 0, 11+len(h)-19)
	out = append(out, 0, h[9])
	out = binary.BigEndian.AppendUint16(out, binary.LittleEndian.Uint16(h[10:]))
	out = binary.BigEndian.AppendUint32(out, binary.LittleEndian.Uint32(h[12:]))
	out = binary.BigEndian.AppendUint16(out, binary.LittleEndian.Uint16(h[16:]))
	out = append(out, h[18])
	if h[18] != 0 {
		out = append(out, h[19:]...) // stream count, coupled count, mapping: bytes
	}
	return out
}

var (
	errOpusEmpty      = errors.New("opus packet: empty (no TOC byte)")
	errOpusNoCount    = errors.New("opus packet: code 3 without a frame count byte")
	errOpusZeroFrames = errors.New("opus packet: frame count 0")
	errOpusTooLong    = errors.New("opus packet: longer than 120 ms")
)

// opusFrameSamples returns the duration of an Opus packet in 48 kHz samples
// from its TOC byte and frame count (RFC 6716 §3.1).
func opusFrameSamples(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, errOpusEmpty
	}
	config := int(p[0] >> 3)
	var per int // samples per frame at 48 kHz
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		per = [4]int{480, 960, 1920, 2880}[config&3]
	case config < 16: // Hybrid: 10, 20 ms
		per = [2]int{480, 960}[config&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		per = [4]int{120, 240, 480, 960}[config&3]
	}
	frames := 1
	switch p[0] & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0, errOpusNoCount
		}
		frames = int(p[1] & 0x3f)
		if frames == 0 {
			return 0, errOpusZeroFrames
		}
	}
	if n := per * frames; n <= 5760 {
		return n, nil
	}
	return 0, errOpusTooLong
}
