package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// AMF0 markers (AMF0 spec 2.1).
const (
	amf0Number      = 0x00
	amf0Boolean     = 0x01
	amf0String      = 0x02
	amf0Object      = 0x03
	amf0Null        = 0x05
	amf0Undefined   = 0x06
	amf0Reference   = 0x07
	amf0ECMAArray   = 0x08
	amf0ObjectEnd   = 0x09
	amf0StrictArray = 0x0a
	amf0Date        = 0x0b
	amf0LongString  = 0x0c
	amf0Unsupported = 0x0d
	amf0XMLDocument = 0x0f
	amf0TypedObject = 0x10

	// amf0MaxDepth bounds nesting: real metadata nests two or three levels.
	amf0MaxDepth = 32
)

var (
	errAMF0Truncated = errors.New("amf0: truncated")
	// errAMF0Claim marks what go-amf0 must never see: a length or count
	// beyond the message, or nesting beyond amf0MaxDepth.
	errAMF0Claim = errors.New("beyond the message")
)

// checkAMF0 walks the first n AMF0 values of b (all of them when n < 0)
// and refuses any whose declared length or element count exceeds the bytes
// that follow, or that nests deeper than amf0MaxDepth. go-amf0 allocates
// what a length claims before reading (an 18-byte strict array claiming
// 2^31-1 elements is a 32 GiB make and a fatal out-of-memory for the whole
// process) and recurses without limit, so untrusted AMF0 must pass this
// before go-amf0 (ours or go-rtmp's) decodes it.
func checkAMF0(b []byte, n int) error {
	w := amf0Walker{b: b}
	for i := 0; n < 0 && w.p < len(w.b) || i < n; i++ {
		if err := w.value(0); err != nil {
			return err
		}
	}
	return nil
}

// checkAMF0Claims walks all AMF0 values of b like checkAMF0 but refuses
// only what would make go-amf0 allocate or recurse beyond the message.
// Where go-amf0 itself stops with an error (an unsupported marker,
// truncated data) the walk stops and passes: that is go-rtmp's to refuse.
func checkAMF0Claims(b []byte) error {
	if err := checkAMF0(b, -1); errors.Is(err, errAMF0Claim) {
		return err
	}
	return nil
}

type amf0Walker struct {
	b []byte
	p int
}

func (w *amf0Walker) need(n uint64) error {
	if n > uint64(len(w.b)-w.p) {
		return errAMF0Truncated
	}
	w.p += int(n)
	return nil
}

func (w *amf0Walker) u16() (uint64, error) {
	if len(w.b)-w.p < 2 {
		return 0, errAMF0Truncated
	}
	v := binary.BigEndian.Uint16(w.b[w.p:])
	w.p += 2
	return uint64(v), nil
}

func (w *amf0Walker) u32() (uint64, error) {
	if len(w.b)-w.p < 4 {
		return 0, errAMF0Truncated
	}
	v := binary.BigEndian.Uint32(w.b[w.p:])
	w.p += 4
	return uint64(v), nil
}

func (w *amf0Walker) value(depth int) error {
	if depth > amf0MaxDepth {
		return fmt.Errorf("amf0: nested deeper than %d: %w", amf0MaxDepth, errAMF0Claim)
	}
	if w.p >= len(w.b) {
		return errAMF0Truncated
	}
	marker := w.b[w.p]
	w.p++
	switch marker {
	case amf0Number:
		return w.need(8)
	case amf0Boolean:
		return w.need(1)
	case amf0String:
		n, err := w.u16()
		if err != nil {
			return err
		}
		return w.need(n)
	case amf0LongString, amf0XMLDocument:
		n, err := w.u32()
		if err != nil {
			return err
		}
		if n > uint64(len(w.b)-w.p) {
			return fmt.Errorf("amf0: string of %d bytes in %d: %w", n, len(w.b)-w.p, errAMF0Claim)
		}
		return w.need(n)
	case amf0Null, amf0Undefined, amf0Unsupported:
		return nil
	case amf0Reference:
		return w.need(2)
	case amf0Date:
		return w.need(10)
	case amf0Object:
		return w.properties(depth)
	case amf0ECMAArray:
		if _, err := w.u32(); err != nil { // a hint only: the end marker ends it
			return err
		}
		return w.properties(depth)
	case amf0TypedObject:
		n, err := w.u16()
		if err != nil {
			return err
		}
		if err := w.need(n); err != nil {
			return err
		}
		return w.properties(depth)
	case amf0StrictArray:
		n, err := w.u32()
		if err != nil {
			return err
		}
		// Every element takes at least its marker byte.
		if n > uint64(len(w.b)-w.p) {
			return fmt.Errorf("amf0: strict array of %d elements in %d bytes: %w", n, len(w.b)-w.p, errAMF0Claim)
		}
		for i := uint64(0); i < n; i++ {
			if err := w.value(depth + 1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("amf0: unsupported marker %#x", marker)
}

// properties walks name/value pairs up to the object end marker.
func (w *amf0Walker) properties(depth int) error {
	for {
		n, err := w.u16()
		if err != nil {
			return err
		}
		if n == 0 && w.p < len(w.b) && w.b[w.p] == amf0ObjectEnd {
			w.p++
			return nil
		}
		if err := w.need(n); err != nil {
			return err
		}
		if err := w.value(depth + 1); err != nil {
			return err
		}
	}
}
