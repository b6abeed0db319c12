package codec

import (
	"bytes"
	"errors"
	"fmt"
)

const flacStreamInfoLen = 34

// parseFLACHeader takes "fLaC" followed by metadata blocks (the first must
// be STREAMINFO), a bare 34-byte STREAMINFO (as ffmpeg and gortmplib send
// it over RTMP), or one STREAMINFO metadata block with its header.
func parseFLACHeader(b []byte) (*Audio, error) {
	var si []byte
	switch {
	case len(b) == flacStreamInfoLen:
		si = b
	case len(b) >= 4 && string(b[:4]) == "fLaC":
		blk, err := flacFirstBlock(b[4:])
		if err != nil {
			return nil, err
		}
		si = blk
	case len(b) >= 4 && b[0]&0x7f == 0:
		blk, err := flacFirstBlock(b)
		if err != nil {
			return nil, err
		}
		si = blk
	default:
		return nil, fmt.Errorf("flac config: %d bytes are neither \"fLaC\" and metadata blocks nor a 34-byte STREAMINFO", len(b))
	}
	return parseStreamInfo(si)
}

// flacFirstBlock returns the body of the first metadata block, which must
// be a STREAMINFO.
func flacFirstBlock(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("flac config: truncated metadata block header (%d bytes)", len(b))
	}
	if t := b[0] & 0x7f; t != 0 {
		return nil, fmt.Errorf("flac config: first metadata block has type %d, want STREAMINFO (0)", t)
	}
	n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if n != flacStreamInfoLen {
		return nil, fmt.Errorf("flac config: STREAMINFO length %d, want 34", n)
	}
	if len(b) < 4+n {
		return nil, fmt.Errorf("flac config: truncated STREAMINFO (%d bytes)", len(b)-4)
	}
	return b[4 : 4+n], nil
}

// parseStreamInfo reads a STREAMINFO block body (RFC 9639 8.2).
func parseStreamInfo(si []byte) (*Audio, error) {
	r := &bitReader{b: si}
	minBlock, maxBlock := int(r.u(16)), int(r.u(16))
	r.u(24) // minimum frame size
	r.u(24) // maximum frame size
	rate := int(r.u(20))
	ch := int(r.u(3)) + 1
	bps := int(r.u(5)) + 1
	if r.err != nil {
		return nil, fmt.Errorf("flac config: STREAMINFO: %w", r.err)
	}
	switch {
	case minBlock < 16 || maxBlock < minBlock:
		return nil, fmt.Errorf("flac config: STREAMINFO block sizes %d-%d", minBlock, maxBlock)
	case rate == 0:
		return nil, errors.New("flac config: STREAMINFO sample rate 0")
	case bps < 4:
		return nil, fmt.Errorf("flac config: STREAMINFO bits per sample %d", bps)
	}
	return &Audio{
		Codec:         FLAC,
		Codecs:        "fLaC",
		SampleRate:    rate,
		Channels:      ch,
		Config:        bytes.Clone(si),
		BitsPerSample: bps,
		MinBlockSize:  minBlock,
		MaxBlockSize:  maxBlock,
	}, nil
}

// FLACDfLa renders the payload of the dfLa box (FLAC in ISOBMFF, 3.3.2):
// version and flags 0, then the STREAMINFO as the last metadata block. It
// returns nil for other codecs.
func (a *Audio) FLACDfLa() []byte {
	if a.Codec != FLAC || len(a.Config) != flacStreamInfoLen {
		return nil
	}
	out := make([]byte, 0, 8+flacStreamInfoLen)
	out = append(out, 0, 0, 0, 0, 0x80, 0, 0, flacStreamInfoLen)
	return append(out, a.Config...)
}

var (
	errFLACSync       = errors.New("flac frame: no frame sync code")
	errFLACTruncated  = errors.New("flac frame: truncated header")
	errFLACBlockSize  = errors.New("flac frame: reserved block size code 0")
	errFLACCodedNum   = errors.New("flac frame: invalid coded frame/sample number")
	errFLACBlockLarge = errors.New("flac frame: block size above 65535")
)

// flacFrameSamples returns the block size of a FLAC frame from its header
// (RFC 9639 9.1).
func flacFrameSamples(f []byte) (int, error) {
	if len(f) < 4 {
		return 0, errFLACTruncated
	}
	if f[0] != 0xff || f[1]&0xfe != 0xf8 {
		return 0, errFLACSync
	}
	code := int(f[2] >> 4)
	switch {
	case code == 0:
		return 0, errFLACBlockSize
	case code == 1:
		return 192, nil
	case code <= 5:
		return 576 << (code - 2), nil
	case code >= 8:
		return 256 << (code - 8), nil
	}
	// 6 and 7: the size follows the coded number, minus one, in 8 or 16 bits.
	p := 4
	if p >= len(f) {
		return 0, errFLACTruncated
	}
	lead := 0
	for lead < 8 && f[p]<<lead&0x80 != 0 {
		lead++
	}
	switch {
	case lead == 1 || lead == 8:
		return 0, errFLACCodedNum
	case lead > 1:
		p += lead
	default:
		p++
	}
	if code == 6 {
		if p >= len(f) {
			return 0, errFLACTruncated
		}
		return int(f[p]) + 1, nil
	}
	if p+1 >= len(f) {
		return 0, errFLACTruncated
	}
	n := int(f[p])<<8 | int(f[p+1]) + 1
	if n > 65535 {
		return 0, errFLACBlockLarge
	}
	return n, nil
}
