// Package cctest writes CEA-608 captions into H.264 for tests: byte pairs
// with odd parity (CEA-608 §4.1), carried as ATSC A/53 cc_data
// (cc_valid 1, cc_type 0: field 1, CC1) in a GA94
// user_data_registered_itu_t_t35 SEI NAL unit, inserted into each video
// frame of an FLV file (legacy AVC tags, 4-byte NAL lengths). It is the
// encoder side of fount's caption tests; fount itself only reads captions.
package cctest

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"sort"

	"github.com/fount-live/fount/ingest/flv"
)

// Parity sets bit 7 of a 7-bit CEA-608 byte so that it has an odd number
// of ones.
func Parity(b byte) byte {
	b &= 0x7f
	if bits.OnesCount8(b)%2 == 0 {
		b |= 0x80
	}
	return b
}

// Pair is one CEA-608 byte pair, parity set.
type Pair [2]byte

// Padding is the null pair sent when there is nothing to say.
var Padding = Pair{0x80, 0x80}

func pair(a, b byte) Pair { return Pair{Parity(a), Parity(b)} }

// Control codes of data channel 1 (CC1), field 1 (CEA-608 table 51 and
// the preamble address codes of table 53). Each is sent twice, as
// decoders expect.
var (
	rcl = pair(0x14, 0x20) // resume caption loading: pop-on
	enm = pair(0x14, 0x2e) // erase non-displayed memory
	eoc = pair(0x14, 0x2f) // end of caption: swap memories, show it
	edm = pair(0x14, 0x2c) // erase displayed memory: the caption goes
	pac = pair(0x14, 0x60) // row 15, column 0, white
)

// PopOn returns the pairs of a pop-on caption showing text (basic
// characters, two a pair) on row 15.
func PopOn(text string) []Pair {
	out := []Pair{rcl, rcl, enm, enm, pac, pac}
	for i := 0; i < len(text); i += 2 {
		b := byte(0)
		if i+1 < len(text) {
			b = text[i+1]
		}
		out = append(out, Pair{Parity(text[i]), Parity(b)})
	}
	return append(out, eoc, eoc)
}

// SEI returns an H.264 SEI NAL unit (with its header, emulation
// prevention applied) holding one A/53 cc_data of the given field-1
// pairs.
func SEI(pairs ...Pair) []byte {
	cc := []byte{0xb5, 0x00, 0x31, 'G', 'A', '9', '4', 0x03, 0x40 | byte(len(pairs)), 0xff}
	for _, p := range pairs {
		cc = append(cc, 0xf8|0x04|0, p[0], p[1]) // marker bits, cc_valid, cc_type 0
	}
	cc = append(cc, 0xff) // marker_bits
	rbsp := []byte{4}     // payloadType: user_data_registered_itu_t_t35
	for n := len(cc); ; n -= 255 {
		if n < 255 {
			rbsp = append(rbsp, byte(n))
			break
		}
		rbsp = append(rbsp, 0xff)
	}
	rbsp = append(rbsp, cc...)
	rbsp = append(rbsp, 0x80) // rbsp_trailing_bits
	nal := []byte{0x06}       // nal_ref_idc 0, SEI
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			nal = append(nal, 3)
			zeros = 0
		}
		nal = append(nal, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return nal
}

// Captions returns the tags with one field-1 pair inserted into every
// coded AVC frame, as a 608 encoder sends at the frame rate: the pop-on
// caption text starting at every everyFrames-th frame, erased from the
// screen three quarters of the way to the next (so that each showing is a
// caption of its own), padding between.
// The pairs go in presentation order: cc_data belongs to its picture, and
// a decoder reads it as pictures are shown (with B-frames, not in the
// order they are coded).
func Captions(tags []flv.Tag, text string, everyFrames int) ([]flv.Tag, error) {
	cue := PopOn(text)
	if everyFrames*3/4 < len(cue) {
		return nil, errors.New("cctest: captions repeat faster than they are sent")
	}
	coded := func(g flv.Tag) bool {
		d := g.Data
		return g.Type == flv.TagVideo && len(d) >= 5 && d[0]&0x0f == flv.CodecAVC && d[1] == flv.AVCNALU
	}
	var order []int // the coded frames' tag indexes, in presentation order
	pts := make(map[int]int64)
	for i, g := range tags {
		if coded(g) {
			cts := int32(uint32(g.Data[2])<<16|uint32(g.Data[3])<<8|uint32(g.Data[4])) << 8 >> 8
			pts[i] = int64(g.Timestamp) + int64(cts)
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return pts[order[a]] < pts[order[b]] })
	shown := make(map[int]int, len(order)) // tag index → presentation rank
	for rank, i := range order {
		shown[i] = rank
	}
	out := make([]flv.Tag, len(tags))
	for i, g := range tags {
		out[i] = g
		d := g.Data
		if !coded(g) {
			continue
		}
		p := Padding
		k := shown[i] % everyFrames
		switch clear := everyFrames * 3 / 4; {
		case k < len(cue):
			p = cue[k]
		case k == clear || k == clear+1:
			p = edm
		}
		sei := SEI(p)
		nd := make([]byte, 0, len(d)+4+len(sei))
		nd = append(nd, d[:5]...)
		nd = binary.BigEndian.AppendUint32(nd, uint32(len(sei)))
		nd = append(nd, sei...)
		nd = append(nd, d[5:]...)
		out[i].Data = nd
	}
	return out, nil
}

// WriteFLV returns an FLV file (audio and video flags set) of the tags.
func WriteFLV(tags []flv.Tag) []byte {
	b := []byte{'F', 'L', 'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0}
	for _, g := range tags {
		n := len(g.Data)
		ts := g.Timestamp
		b = append(b, g.Type, byte(n>>16), byte(n>>8), byte(n), byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
		b = append(b, g.Data...)
		b = binary.BigEndian.AppendUint32(b, uint32(n+11))
	}
	return b
}
