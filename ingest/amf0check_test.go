package ingest

import (
	"bytes"
	"strings"
	"testing"

	amf0 "github.com/yutopp/go-amf0"
)

// amf0Bytes encodes values with go-amf0, as a publisher's client would.
func amf0Bytes(t testing.TB, vs ...interface{}) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := amf0.NewEncoder(&buf)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// hostileConnect is a connect command whose command object holds a strict
// array claiming 2^31-1 elements: go-rtmp decodes it with go-amf0, which
// makes a 32 GiB slice before reading one element, a fatal out-of-memory
// for the whole process, before any authorisation.
func hostileConnect(t testing.TB, pad int) []byte {
	b := amf0Bytes(t, "connect", 1.0)
	b = append(b, amf0Object, 0, 1, 'a', amf0StrictArray, 0x7f, 0xff, 0xff, 0xff)
	return append(b, make([]byte, pad)...)
}

func TestChunkFilterRefusesAMFClaims(t *testing.T) {
	deep := amf0Bytes(t, "connect", 1.0)
	for range 40 {
		deep = append(deep, amf0Object, 0, 1, 'k')
	}
	for _, tc := range []struct {
		name    string
		typeID  uint8
		payload []byte
		want    string
	}{
		{"connect with a huge strict array", rtmpTypeCommandAMF0, hostileConnect(t, 0), "strict array of 2147483647 elements in 0 bytes"},
		{"the same over several chunks", rtmpTypeCommandAMF0, hostileConnect(t, 1000), "strict array of 2147483647 elements in 1000 bytes"},
		{"long string argument", rtmpTypeCommandAMF0, append(amf0Bytes(t, "publish", 0.0, nil), amf0LongString, 0xff, 0xff, 0xff, 0xff, 'x'), "string of 4294967295 bytes in 1"},
		{"deep nesting", rtmpTypeCommandAMF0, deep, "nested deeper than 32"},
		{"data message", rtmpTypeDataAMF0, append(amf0Bytes(t, "@setDataFrame", "onMetaData"), amf0StrictArray, 0xff, 0xff, 0xff, 0xff), "strict array of 4294967295 elements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newChunkEnc(false)
			e.message(0, 3, 0, tc.typeID, 0, tc.payload)
			for _, mode := range readModes {
				out, err := filterAll(e.buf, chunkLimits{}, mode.wrap, mode.buf)
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "beyond the message") {
					t.Fatalf("%s: error %v, want %q", mode.name, err, tc.want)
				}
				// go-rtmp never gets the message whole.
				if len(out) != len(e.buf)-1 || !bytes.Equal(out, e.buf[:len(out)]) {
					t.Fatalf("%s: %d of %d bytes passed", mode.name, len(out), len(e.buf))
				}
			}
		})
	}

	// Real commands and data pass unchanged, as do AMF0 errors go-amf0
	// reports by itself (they cost it nothing).
	e := newChunkEnc(false)
	e.message(0, 3, 0, rtmpTypeCommandAMF0, 0, amf0Bytes(t, "connect", 1.0, map[string]interface{}{"app": "live", "tcUrl": "rtmp://h/live", "fpad": false, "capabilities": 15.0}))
	e.message(0, 3, 0, rtmpTypeCommandAMF0, 0, amf0Bytes(t, "releaseStream", 2.0, nil, "key"))
	e.message(0, 4, 0, rtmpTypeDataAMF0, 1, amf0Bytes(t, "@setDataFrame", "onMetaData", amf0.ECMAArray{"width": 1280.0, "encoder": "obs"}))
	e.message(0, 3, 0, rtmpTypeCommandAMF0, 0, []byte{amf0String, 0, 200, 'x'})                        // truncated
	e.message(0, 3, 0, rtmpTypeCommandAMF0, 0, []byte{amf0LongString, 0, 0, 0, 1, 'x', 0x42, 1, 2, 3}) // unknown marker
	out, err := filterAll(e.buf, chunkLimits{}, nil, 4096)
	if err.Error() != "EOF" || !bytes.Equal(out, e.buf) {
		t.Fatalf("%d of %d bytes, %v", len(out), len(e.buf), err)
	}

	// AMF0 messages are held whole to check them, so they are bounded.
	e = newChunkEnc(false)
	e.message(0, 3, 0, rtmpTypeDataAMF0, 1, make([]byte, maxAMFMessageSize+1))
	if _, err := filterAll(e.buf, chunkLimits{}, nil, 4096); err == nil || !strings.Contains(err.Error(), "exceeds the limit 1048576") {
		t.Fatalf("oversized AMF0 message: %v", err)
	}
}

func TestCheckAMF0Claims(t *testing.T) {
	for _, ok := range [][]byte{
		nil,
		{amf0Number, 1},             // truncated: go-amf0 stops
		{4, 0x7f, 0xff, 0xff, 0xff}, // movie clip: go-amf0 stops
		{amf0StrictArray, 0, 0, 0, 2, amf0Null, amf0Undefined},
		{amf0String, 0xff, 0xff, 'a'}, // 64 KiB at most, and go-amf0 stops
	} {
		if err := checkAMF0Claims(ok); err != nil {
			t.Errorf("%x: %v", ok, err)
		}
	}
	for _, bad := range [][]byte{
		{amf0StrictArray, 0, 0, 0, 3, amf0Null, amf0Null},
		{amf0Null, amf0XMLDocument, 0, 1, 0, 0},
		{amf0ECMAArray, 0, 0, 0, 0, 0, 1, 'a', amf0LongString, 0, 0, 0, 9, 1},
	} {
		if err := checkAMF0Claims(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}
