package ertmptest

import (
	"fmt"
)

// part is one track's packet in a received message, as the test reads it.
type part struct {
	kind   Kind
	legacy bool
	track  uint8
	fourcc string
	pt     uint8 // ExHeader packet type, or legacy AVC/AAC packet type
	ft     uint8 // video frame type
	mt     int   // multitrack type, -1 if not multitrack
	cts    int32
	nanos  int // TimestampOffsetNano, -1 if absent
	data   []byte
}

// walk splits a received audio (8) or video (9) body into per-track parts,
// reading it as the E-RTMP v2 pseudo-code does. It is the tests' own,
// deliberately plain reading, independent of the writer.
func walk(typ uint8, b []byte) ([]part, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("empty body")
	}
	p := part{mt: -1, nanos: -1}
	var multitrackPT uint8
	if typ == 9 {
		p.kind = Video
		multitrackPT = 6
		p.ft = b[0] >> 4 & 7
		if b[0]&0x80 == 0 { // legacy
			if b[0]&0x0F != 7 || len(b) < 5 {
				return nil, fmt.Errorf("legacy video % x", b[:min(5, len(b))])
			}
			p.legacy, p.fourcc, p.ft, p.pt = true, "avc1", b[0]>>4, b[1]
			p.cts = int32(uint32(b[2])<<24|uint32(b[3])<<16|uint32(b[4])<<8) >> 8
			p.data = b[5:]
			return []part{p}, nil
		}
	} else {
		p.kind = Audio
		multitrackPT = 5
		switch b[0] >> 4 {
		case 9:
		case 10:
			if len(b) < 2 {
				return nil, fmt.Errorf("short AAC body")
			}
			p.legacy, p.fourcc, p.pt, p.data = true, "mp4a", b[1], b[2:]
			return []part{p}, nil
		case 2:
			p.legacy, p.fourcc, p.pt, p.data = true, ".mp3", 1, b[1:]
			return []part{p}, nil
		default:
			return nil, fmt.Errorf("sound format %d", b[0]>>4)
		}
	}
	pt := b[0] & 0x0F
	i := 1
	need := func(n int) error {
		if len(b)-i < n {
			return fmt.Errorf("body of %d bytes: need %d at %d", len(b), n, i)
		}
		return nil
	}
	for pt == 7 { // ModEx
		if err := need(1); err != nil {
			return nil, err
		}
		size := int(b[i]) + 1
		i++
		if size == 256 {
			if err := need(2); err != nil {
				return nil, err
			}
			size = int(b[i])<<8 | int(b[i+1]) + 1
			i += 2
		}
		if err := need(size + 1); err != nil {
			return nil, err
		}
		data := b[i : i+size]
		i += size
		modType := b[i] >> 4
		pt = b[i] & 0x0F
		i++
		if modType == 0 {
			if len(data) < 3 {
				return nil, fmt.Errorf("TimestampOffsetNano of %d bytes", len(data))
			}
			p.nanos = int(data[0])<<16 | int(data[1])<<8 | int(data[2])
		}
	}
	fourcc := func() (string, error) {
		if err := need(4); err != nil {
			return "", err
		}
		i += 4
		return string(b[i-4 : i]), nil
	}
	var err error
	if pt == multitrackPT {
		if err := need(1); err != nil {
			return nil, err
		}
		p.mt = int(b[i] >> 4)
		pt = b[i] & 0x0F
		i++
		if p.mt != 2 {
			if p.fourcc, err = fourcc(); err != nil {
				return nil, err
			}
		}
	} else if p.fourcc, err = fourcc(); err != nil {
		return nil, err
	}
	p.pt = pt
	var out []part
	for {
		q := p
		end := len(b)
		if p.mt >= 0 {
			if p.mt == 2 {
				if q.fourcc, err = fourcc(); err != nil {
					return nil, err
				}
			}
			if err := need(1); err != nil {
				return nil, err
			}
			q.track = b[i]
			i++
			if p.mt != 0 {
				if err := need(3); err != nil {
					return nil, err
				}
				end = i + 3 + (int(b[i])<<16 | int(b[i+1])<<8 | int(b[i+2]))
				i += 3
				if end > len(b) {
					return nil, fmt.Errorf("track size beyond the body")
				}
			}
		}
		if q.kind == Video && pt == 1 && (q.fourcc == "avc1" || q.fourcc == "hvc1") {
			if end-i < 3 {
				return nil, fmt.Errorf("no composition time")
			}
			q.cts = int32(uint32(b[i])<<24|uint32(b[i+1])<<16|uint32(b[i+2])<<8) >> 8
			i += 3
		}
		q.data = b[i:end]
		i = end
		out = append(out, q)
		if p.mt <= 0 || i == len(b) {
			break
		}
	}
	if i != len(b) {
		return nil, fmt.Errorf("%d bytes left over", len(b)-i)
	}
	return out, nil
}
