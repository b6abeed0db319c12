package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"testing"

	amf0 "github.com/yutopp/go-amf0"
)

// A splice_insert (event 1001, out of network, 30 s break with
// auto-return), made by scte35-go.
const testSpliceB64 = "/DAlAAAAAAAAAP/wFAUAAAPpf+/+AAAAAP4AKTLgAAEAAAAAAOVZ+Q=="

func TestParseCuePointShapes(t *testing.T) {
	splice, _ := base64.StdEncoding.DecodeString(testSpliceB64)
	for _, c := range []struct {
		name  string
		body  []byte
		check func(CuePoint) bool
	}{
		{"Adobe event, SCTE-35 in parameters (Wowza, MediaLive)", amf0Bytes(t, amf0.ECMAArray{
			"name": "scte35", "time": 12.5, "type": "event",
			"parameters": map[string]interface{}{"cue": testSpliceB64},
		}), func(c CuePoint) bool {
			return c.Name == "scte35" && c.Type == "event" && c.HasTime && c.Time == 12.5 && bytes.Equal(c.SCTE35, splice)
		}},
		{"SCTE-35 at the top, hex", amf0Bytes(t, map[string]interface{}{"type": "scte35", "payload": "0x" + hex.EncodeToString(splice)}),
			func(c CuePoint) bool { return bytes.Equal(c.SCTE35, splice) }},
		{"Adobe navigation, no SCTE-35", amf0Bytes(t, map[string]interface{}{"name": "chapter 2", "time": 60.0, "type": "navigation",
			"parameters": map[string]interface{}{"title": "Two", "note": "aGVsbG8="}}),
			func(c CuePoint) bool { return c.Name == "chapter 2" && c.SCTE35 == nil }},
		{"YouTube", amf0Bytes(t, map[string]interface{}{"type": "com.youtube.cuepoint", "version": "0.1", "pre_roll_time_sec": 2.56,
			"cue_point_start": true, "break_duration_sec": 30.0, "splice_event_id": 7.0}),
			func(c CuePoint) bool {
				return c.YouTube && c.Start && c.PreRoll == 2.56 && c.BreakDuration == 30 && c.EventID == 7
			}},
	} {
		cp, err := parseCuePoint(c.body)
		if err != nil || !c.check(cp) {
			t.Errorf("%s: %+v %v", c.name, cp, err)
		}
	}
	for _, bad := range [][]byte{nil, {0x02, 0, 1, 'x'}, amf0Bytes(t, "str"), {amf0Object, 0, 4, 'n'}} {
		if _, err := parseCuePoint(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func FuzzParseCuePoint(f *testing.F) {
	f.Add(amf0Bytes(f, map[string]interface{}{"name": "scte35", "time": 1.0, "type": "event", "parameters": map[string]interface{}{"cue": testSpliceB64}}))
	f.Add(amf0Bytes(f, map[string]interface{}{"type": "com.youtube.cuepoint", "cue_point_start": true, "splice_event_id": 1.0}))
	f.Add([]byte{amf0ECMAArray, 0, 0, 0, 1, 0, 1, 'a', amf0StrictArray, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := parseCuePoint(b)
		if err == nil && cp.SCTE35 != nil && cp.SCTE35[0] != 0xFC {
			t.Fatalf("section %x", cp.SCTE35)
		}
	})
}
