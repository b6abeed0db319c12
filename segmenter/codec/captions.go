package codec

import (
	"errors"
	"fmt"
)

// Caption data in H.264 and HEVC travels in SEI: a
// user_data_registered_itu_t_t35 message (payloadType 4) holding ATSC A/53
// user data — country code 0xB5 (USA), provider code 0x0031 (ATSC),
// user_identifier "GA94", user_data_type_code 0x03 — whose cc_data carries
// (cc_valid, cc_type, two bytes) triples: cc_type 0 and 1 are CEA-608 byte
// pairs of field 1 and 2, cc_type 2 and 3 CEA-708 DTVCC packet data
// (ATSC A/53 Part 4 §6.2.3; ANSI/SCTE 128-1 §8.1; CTA-708 §4.4).

// Captions is the set of caption services an access unit carries.
type Captions uint8

// The caption kinds, one bit each.
const (
	CEA608Field1 Captions = 1 << iota // cc_type 0: CC1/CC2 (and text T1/T2)
	CEA608Field2                      // cc_type 1: CC3/CC4
	CEA708                            // cc_type 2 or 3: DTVCC
)

// CEA608 is either field of CEA-608.
const CEA608 = CEA608Field1 | CEA608Field2

// String names the kinds, "608,708" and the like; "" for none.
func (c Captions) String() string {
	s := ""
	if c&CEA608 != 0 {
		s = "608"
	}
	if c&CEA708 != 0 {
		if s != "" {
			s += ","
		}
		s += "708"
	}
	return s
}

// SEI NAL unit types: H.264's, and HEVC's prefix and suffix SEI.
const (
	avcSEI        = 6
	hevcPrefixSEI = 39
	hevcSuffixSEI = 40
)

// FindCaptions reports the caption services (cc_data with cc_valid set) in
// the SEI of one H.264 or HEVC access unit of length-prefixed NAL units
// (lengthSize bytes each). Other codecs carry none this way: 0, nil. It
// allocates nothing; only SEI NAL units are read past their header.
func FindCaptions(id ID, frame []byte, lengthSize int) (Captions, error) {
	if id != AVC && id != HEVC {
		return 0, nil
	}
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		return 0, fmt.Errorf("%s captions: NALU length size %d", errName(id), lengthSize)
	}
	var found Captions
	for p := 0; p < len(frame); {
		if len(frame)-p < lengthSize {
			return found, fmt.Errorf("%s captions: truncated NALU length", errName(id))
		}
		n := readLen(frame[p:], lengthSize)
		p += lengthSize
		if n > uint64(len(frame)-p) {
			return found, fmt.Errorf("%s captions: NALU length %d overruns the frame (%d bytes left)", errName(id), n, len(frame)-p)
		}
		nal := frame[p : p+int(n)]
		p += int(n)
		var body []byte
		switch {
		case id == AVC && len(nal) > 1 && nal[0]&0x1f == avcSEI:
			body = nal[1:]
		case id == HEVC && len(nal) > 2 && (nal[0]>>1&0x3f == hevcPrefixSEI || nal[0]>>1&0x3f == hevcSuffixSEI):
			body = nal[2:]
		default:
			continue
		}
		c, err := seiCaptions(body)
		found |= c
		if err != nil {
			return found, fmt.Errorf("%s captions: %w", errName(id), err)
		}
	}
	return found, nil
}

func errName(id ID) string {
	if id == HEVC {
		return "hevc"
	}
	return "avc"
}

// rbsp reads the bytes of a NAL unit's payload with its emulation
// prevention bytes (0x03 after two zero bytes) taken out.
type rbsp struct {
	b     []byte
	zeros int
}

var errSEITruncated = errors.New("SEI message truncated")

func (r *rbsp) next() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	if r.zeros >= 2 && c == 3 {
		r.zeros = 0
		if len(r.b) == 0 {
			return 0, false
		}
		c = r.b[0]
		r.b = r.b[1:]
	}
	if c == 0 {
		r.zeros++
	} else {
		r.zeros = 0
	}
	return c, true
}

// more reports whether SEI messages remain: anything but the
// rbsp_trailing_bits (0x80, then any cabac_zero_words).
func (r *rbsp) more() bool {
	return len(r.b) > 0 && r.b[0] != 0x80
}

// ff reads an SEI payloadType or payloadSize: 0xFF bytes adding 255 each,
// then the last byte.
func (r *rbsp) ff() (int, error) {
	v := 0
	for i := 0; ; i++ {
		c, ok := r.next()
		if !ok {
			return 0, errSEITruncated
		}
		v += int(c)
		if c != 0xff {
			return v, nil
		}
		if i > 1<<10 { // larger than any NAL unit fount takes
			return 0, errors.New("SEI payload type or size too large")
		}
	}
}

// seiCaptions reads the SEI messages of one SEI RBSP.
func seiCaptions(b []byte) (Captions, error) {
	r := rbsp{b: b}
	var found Captions
	for r.more() {
		typ, err := r.ff()
		if err != nil {
			return found, err
		}
		size, err := r.ff()
		if err != nil {
			return found, err
		}
		// The payload, read through its own reader so that a short
		// user data message cannot read into the next message.
		msg := r
		if typ == 4 {
			found |= t35Captions(&msg, size)
		}
		for range size {
			if _, ok := r.next(); !ok {
				return found, errSEITruncated
			}
		}
	}
	return found, nil
}

// t35Captions reads a user_data_registered_itu_t_t35 payload of size bytes
// and returns the services of its A/53 cc_data; 0 for other user data.
func t35Captions(r *rbsp, size int) Captions {
	// country 0xB5, provider 0x0031, "GA94", type code 3, cc header,
	// em_data: 10 bytes before the triples.
	want := [...]byte{0xb5, 0x00, 0x31, 'G', 'A', '9', '4', 0x03}
	if size < len(want)+2 {
		return 0
	}
	for _, w := range want {
		if c, _ := r.next(); c != w {
			return 0
		}
	}
	hdr, _ := r.next()
	r.next() // em_data
	if hdr&0x40 == 0 {
		return 0 // process_cc_data_flag clear: the triples are to be ignored
	}
	n := int(hdr & 0x1f)
	n = min(n, (size-len(want)-2)/3)
	var found Captions
	for range n {
		c, ok := r.next()
		r.next()
		r.next()
		if !ok {
			break
		}
		if c&0x04 == 0 { // cc_valid
			continue
		}
		switch c & 3 {
		case 0:
			found |= CEA608Field1
		case 1:
			found |= CEA608Field2
		default:
			found |= CEA708
		}
	}
	return found
}
