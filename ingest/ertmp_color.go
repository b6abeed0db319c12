package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// colorInfo is the "colorInfo" object of an Enhanced RTMP video Metadata
// packet (HDR signalling). Numbers the object leaves out are 0.
type colorInfo struct {
	// set is false for a colorInfo of Undefined/null or an empty object:
	// the spec's reset to the stream's original colour state.
	set bool

	// colorConfig (ISO/IEC 23091-4 / ITU-T H.273 code points)
	bitDepth                int
	colorPrimaries          int
	transferCharacteristics int
	matrixCoefficients      int

	// hdrCll, cd/m²
	maxFALL, maxCLL float64

	// hdrMdcv: CIE 1931 xy chromaticities and luminance (cd/m²)
	redX, redY, greenX, greenY, blueX, blueY, whiteX, whiteY float64
	maxLuminance, minLuminance                               float64
}

// H.273 TransferCharacteristics code points for HDR.
const (
	transferPQ  = 16 // SMPTE ST 2084
	transferHLG = 18 // ARIB STD-B67
)

// transfer is the HLS VIDEO-RANGE the colour information implies: "PQ",
// "HLG" or "SDR".
func (c colorInfo) transfer() string {
	switch c.transferCharacteristics {
	case transferPQ:
		return "PQ"
	case transferHLG:
		return "HLG"
	}
	return "SDR"
}

// parseColorInfo reads the AMF0 [name, value] pairs of a video Metadata
// packet and returns the last "colorInfo" in it (ok false if there is
// none). Other names are skipped. It allocates nothing on success.
func parseColorInfo(b []byte) (c colorInfo, ok bool, err error) {
	r := amf0Reader{b: b}
	for r.p < len(r.b) {
		name, err := r.string()
		if err != nil {
			return colorInfo{}, false, fmt.Errorf("video metadata: name: %w", err)
		}
		if string(name) != "colorInfo" {
			if err := r.skip(); err != nil {
				return colorInfo{}, false, fmt.Errorf("video metadata %q: %w", name, err)
			}
			continue
		}
		c, ok = colorInfo{}, true
		if err := r.colorInfo(&c); err != nil {
			return colorInfo{}, false, fmt.Errorf("video metadata colorInfo: %w", err)
		}
	}
	return c, ok, nil
}

// amf0Reader reads the few AMF0 shapes colorInfo needs, in place.
type amf0Reader struct {
	b []byte
	p int
}

var errAMF0NotObject = errors.New("not an object")

// string reads a string value (marker, UI16 length, bytes); the result
// aliases the input.
func (r *amf0Reader) string() ([]byte, error) {
	if r.p >= len(r.b) {
		return nil, errAMF0Truncated
	}
	if r.b[r.p] != amf0String {
		return nil, fmt.Errorf("amf0 marker %#x, want a string", r.b[r.p])
	}
	r.p++
	return r.key()
}

// key reads a property name (UI16 length, UTF-8 bytes); it aliases the input.
func (r *amf0Reader) key() ([]byte, error) {
	if len(r.b)-r.p < 2 {
		return nil, errAMF0Truncated
	}
	n := int(binary.BigEndian.Uint16(r.b[r.p:]))
	r.p += 2
	if n > len(r.b)-r.p {
		return nil, errAMF0Truncated
	}
	k := r.b[r.p : r.p+n]
	r.p += n
	return k, nil
}

// skip passes over one value of any type.
func (r *amf0Reader) skip() error {
	w := amf0Walker{b: r.b, p: r.p}
	err := w.value(1)
	r.p = w.p
	return err
}

// object starts an object or ECMA array value; it reports false for
// Undefined or null (no object), and errAMF0NotObject for other types.
func (r *amf0Reader) object() (bool, error) {
	if r.p >= len(r.b) {
		return false, errAMF0Truncated
	}
	switch r.b[r.p] {
	case amf0Object:
		r.p++
		return true, nil
	case amf0ECMAArray:
		if len(r.b)-r.p < 5 {
			return false, errAMF0Truncated
		}
		r.p += 5
		return true, nil
	case amf0Undefined, amf0Null:
		r.p++
		return false, nil
	}
	return false, fmt.Errorf("amf0 marker %#x: %w", r.b[r.p], errAMF0NotObject)
}

// next reads the next property name of an object; done at the end marker.
func (r *amf0Reader) next() (k []byte, done bool, err error) {
	if k, err = r.key(); err != nil {
		return nil, false, err
	}
	if len(k) == 0 && r.p < len(r.b) && r.b[r.p] == amf0ObjectEnd {
		r.p++
		return nil, true, nil
	}
	return k, false, nil
}

// number reads a value that should be a number; other types are skipped
// and read as 0.
func (r *amf0Reader) number() (float64, error) {
	if r.p < len(r.b) && r.b[r.p] == amf0Number {
		if len(r.b)-r.p < 9 {
			return 0, errAMF0Truncated
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(r.b[r.p+1:]))
		r.p += 9
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, nil
		}
		return v, nil
	}
	return 0, r.skip()
}

// codePoint is an H.273 enumeration value [0, 255]; anything else is 0.
func codePoint(v float64) int {
	if v < 0 || v > 255 {
		return 0
	}
	return int(v)
}

// colorInfo reads the colorInfo value into c.
func (r *amf0Reader) colorInfo(c *colorInfo) error {
	isObj, err := r.object()
	if err != nil || !isObj {
		return err
	}
	for {
		k, done, err := r.next()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		c.set = true // an empty object resets, like Undefined
		switch string(k) {
		case "colorConfig", "hdrCll", "hdrMdcv":
			if err := r.numbers(c, k); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		default:
			if err := r.skip(); err != nil {
				return err
			}
		}
	}
}

// numbers reads the object of numbers named section into c.
func (r *amf0Reader) numbers(c *colorInfo, section []byte) error {
	isObj, err := r.object()
	if err != nil || !isObj {
		return err
	}
	for {
		k, done, err := r.next()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		v, err := r.number()
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		c.setField(string(section), string(k), v)
	}
}

// setField stores one number of colorInfo; unknown ones are ignored.
func (c *colorInfo) setField(section, k string, v float64) {
	switch section {
	case "colorConfig":
		switch k {
		case "bitDepth":
			c.bitDepth = codePoint(v)
		case "colorPrimaries":
			c.colorPrimaries = codePoint(v)
		case "transferCharacteristics":
			c.transferCharacteristics = codePoint(v)
		case "matrixCoefficients":
			c.matrixCoefficients = codePoint(v)
		}
	case "hdrCll":
		switch k {
		case "maxFall":
			c.maxFALL = v
		case "maxCLL":
			c.maxCLL = v
		}
	case "hdrMdcv":
		switch k {
		case "redX":
			c.redX = v
		case "redY":
			c.redY = v
		case "greenX":
			c.greenX = v
		case "greenY":
			c.greenY = v
		case "blueX":
			c.blueX = v
		case "blueY":
			c.blueY = v
		case "whitePointX":
			c.whiteX = v
		case "whitePointY":
			c.whiteY = v
		case "maxLuminance":
			c.maxLuminance = v
		case "minLuminance":
			c.minLuminance = v
		}
	}
}
