package ertmptest

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Prop is one named value of an AMF0 object or ECMA array.
type Prop struct {
	Key   string
	Value any
}

// Object is an AMF0 anonymous object (marker 0x03), its properties in order.
type Object []Prop

// ECMAArray is an AMF0 ECMA array (marker 0x08), its properties in order.
type ECMAArray []Prop

// AMF0 appends the AMF0 encoding of each value to b. Values may be float64,
// int, uint32, bool, string, nil (null), Object or ECMAArray.
func AMF0(b []byte, values ...any) ([]byte, error) {
	for _, v := range values {
		var err error
		if b, err = appendAMF0(b, v); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendAMF0(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case float64:
		b = append(b, 0x00)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x)), nil
	case int:
		return appendAMF0(b, float64(x))
	case uint32:
		return appendAMF0(b, float64(x))
	case bool:
		if x {
			return append(b, 0x01, 1), nil
		}
		return append(b, 0x01, 0), nil
	case string:
		if len(x) > 0xFFFF {
			return nil, fmt.Errorf("amf0: string of %d bytes is too long", len(x))
		}
		b = append(b, 0x02)
		b = binary.BigEndian.AppendUint16(b, uint16(len(x)))
		return append(b, x...), nil
	case nil:
		return append(b, 0x05), nil
	case Object:
		b = append(b, 0x03)
		return appendProps(b, x)
	case ECMAArray:
		b = append(b, 0x08)
		b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
		return appendProps(b, x)
	}
	return nil, fmt.Errorf("amf0: cannot encode %T", v)
}

func appendProps(b []byte, props []Prop) ([]byte, error) {
	for _, p := range props {
		if len(p.Key) > 0xFFFF {
			return nil, fmt.Errorf("amf0: key of %d bytes is too long", len(p.Key))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Key)))
		b = append(b, p.Key...)
		var err error
		if b, err = appendAMF0(b, p.Value); err != nil {
			return nil, fmt.Errorf("amf0: property %q: %w", p.Key, err)
		}
	}
	return append(b, 0, 0, 0x09), nil // empty key + object end marker
}

// FourCCNumber is a FourCC read as a big-endian UI32, as onMetaData's
// videocodecid and audiocodecid carry it ("av01" = 1635135537).
func FourCCNumber(f string) float64 {
	if len(f) != 4 {
		return 0
	}
	return float64(binary.BigEndian.Uint32([]byte(f)))
}
