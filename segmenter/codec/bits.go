package codec

import "errors"

var (
	errTruncated     = errors.New("truncated")
	errGolombTooLong = errors.New("exp-Golomb code too long")
	errGolombRange   = errors.New("exp-Golomb value out of range")
)

// bitReader reads big-endian bits. Every read checks bounds; on overrun it
// latches an error and returns zeros, so that parsers check err once per
// step instead of after every field.
type bitReader struct {
	b   []byte
	pos int // bit position
	err error
}

func (r *bitReader) u(n int) uint32 {
	if r.err != nil {
		return 0
	}
	if n < 0 || n > 32 || r.pos+n > len(r.b)*8 {
		r.err = errTruncated
		return 0
	}
	var v uint32
	for i := 0; i < n; i++ {
		byt := r.b[r.pos>>3]
		bit := (byt >> (7 - uint(r.pos&7))) & 1
		v = v<<1 | uint32(bit)
		r.pos++
	}
	return v
}

func (r *bitReader) flag() bool { return r.u(1) == 1 }

// skip skips n bits (n may exceed 32).
func (r *bitReader) skip(n int) {
	if r.err != nil {
		return
	}
	if n < 0 || r.pos+n > len(r.b)*8 {
		r.err = errTruncated
		return
	}
	r.pos += n
}

// ue reads an unsigned exp-Golomb code (at most 32 bits of value).
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.u(1) == 0 {
		if r.err != nil {
			return 0
		}
		zeros++
		if zeros > 31 {
			r.err = errGolombTooLong
			return 0
		}
	}
	if zeros == 0 {
		return 0
	}
	v := uint64(1)<<uint(zeros) - 1 + uint64(r.u(zeros))
	if v > 0xFFFFFFFF {
		r.err = errGolombRange
		return 0
	}
	return uint32(v)
}

// se reads a signed exp-Golomb code.
func (r *bitReader) se() int32 {
	k := int64(r.ue())
	if k&1 == 1 {
		return int32((k + 1) / 2)
	}
	return int32(-(k / 2))
}

// unescapeRBSP removes H.264/H.265 emulation prevention bytes (00 00 03 -> 00 00).
func unescapeRBSP(nal []byte) []byte {
	out := make([]byte, 0, len(nal))
	zeros := 0
	for _, c := range nal {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// bitWriter builds the bit-packed records (av1C, vpcC, dac3, dec3).
type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) put(v uint32, bits int) *bitWriter {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.b[len(w.b)-1] |= 1 << (7 - uint(w.n%8))
		}
		w.n++
	}
	return w
}

func (w *bitWriter) putBool(v bool) {
	if v {
		w.put(1, 1)
	} else {
		w.put(0, 1)
	}
}

// readLen reads a big-endian length of size bytes.
func readLen(b []byte, size int) uint64 {
	var n uint64
	for i := 0; i < size; i++ {
		n = n<<8 | uint64(b[i])
	}
	return n
}
