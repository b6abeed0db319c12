package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Comcast/scte35-go/pkg/scte35"
	"github.com/grafov/m3u8"
)

// TestE2EOnCuePoint: an encoder's onCuePoint in Adobe's shape ({name,
// time, type: "event", parameters}), carrying a base64 splice_insert as
// MediaLive's ON_CUE_POINT_SCTE35 does, sent at 3 s amid the 12 s test
// source (keyframes every 2 s) with a splice time of 5 s: the break starts
// on the segment that begins at the first keyframe at or after the splice
// time (6 s, not the 4 s one that follows the message), which starts with
// that keyframe; the repeat an encoder sends is taken once; the break
// returns by itself 4 s later, as the section's auto_return asks.
func TestE2EOnCuePoint(t *testing.T) {
	lockEndToEnd(t)
	requireTool(t, "ffprobe")
	tags := readFLV(t, source(t))
	o := startClassic(t, func(c *config) { c.PlaylistSize = 10 })

	pts := uint64(scte35.DurationToTicks(5 * time.Second))
	sis := &scte35.SpliceInfoSection{SAPType: scte35.SAPTypeNotSpecified, Tier: 4095, SpliceCommand: &scte35.SpliceInsert{
		SpliceEventID: 4242, OutOfNetworkIndicator: true,
		Program:       &scte35.SpliceInsertProgram{SpliceTime: scte35.SpliceTime{PTSTime: &pts}},
		BreakDuration: &scte35.BreakDuration{AutoReturn: true, Duration: scte35.DurationToTicks(4 * time.Second)},
	}}
	section, err := sis.Encode()
	if err != nil {
		t.Fatal(err)
	}
	cue := amf("onCuePoint", map[string]any{"name": "scte35", "time": 3.0, "type": "event",
		"parameters": map[string]any{"scte35": base64.StdEncoding.EncodeToString(section)}})

	c, sid := publishRTMP(t, o.rtmp, "cp")
	before, after := split(tags, 3000)
	if err := c.sendTags(sid, before); err != nil {
		t.Fatal(err)
	}
	for _, ts := range []uint32{3000, 3500} { // encoders repeat a cue
		if err := c.writeMsg(5, 18, sid, ts, cue); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.sendTags(sid, after); err != nil {
		t.Fatal(err)
	}
	c.conn.Close() // the last segment is flushed: the one the break returns on

	url := o.url("/live/cp/index.m3u8")
	var m []string
	_, body := awaitPlaylist(t, url, 15*time.Second, "the break and its return", func(_ *m3u8.MediaPlaylist, b []byte) bool {
		m = dateRangeRE.FindStringSubmatch(string(b))
		return m != nil && strings.Contains(m[0], ",DURATION=")
	})
	t.Logf("%s", strings.TrimSpace(m[0]))
	if m[1] != "splice-4242" || m[3] != "4.000" || m[4] != hex.EncodeToString(section) || !strings.Contains(m[0], ",DURATION=4.000,") {
		t.Errorf("daterange %q: want ID splice-4242, PLANNED-DURATION and DURATION 4.000, SCTE35-OUT the section sent", m[0])
	}
	if n := bytes.Count(body, []byte("#EXT-X-DATERANGE")); n != 1 {
		t.Errorf("%d dateranges, want 1 (the repeat is the same cue)\n%s", n, body)
	}
	// The segment begins with the keyframe at 6 s: the first at or after
	// the splice time (MPEG-TS times are the stream timeline, which began
	// at the source's 0).
	seg := fetchTo(t, o.url("/live/cp/"+m[7]), nil)
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=key_frame,pict_type,pts_time",
		"-read_intervals", "%+#1", "-of", "csv=p=0", seg).Output()
	f := strings.Split(strings.TrimSpace(string(out)), ",")
	if err != nil || len(f) < 3 || f[0] != "1" || f[2] != "I" {
		t.Fatalf("%s does not start with a keyframe: %q %v\n%s", m[7], out, err, body)
	}
	if at, err := strconv.ParseFloat(f[1], 64); err != nil || at < 6 || at > 6.2 {
		t.Errorf("%s starts at %s s, want the keyframe at 6 s (+ its composition delay)", m[7], f[1])
	}
	if !strings.Contains(o.logs.String(), "source=rtmp") {
		t.Error("no cue logged with source=rtmp")
	}
}
