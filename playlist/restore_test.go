package playlist

import (
	"strings"
	"testing"
	"time"
)

// parseStored reads back what render writes.
func TestParseStoredRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := mediaPlaylist{
		targetDuration: 2, discSeq: 3, fmp4: true, initName: initName, partTarget: 200 * time.Millisecond, partHoldBack: 600 * time.Millisecond,
		segments: []*entry{
			{msn: 40, name: "seg40.m4s", duration: 2002 * time.Millisecond, pdt: t0, init: 0, parts: []*part{{name: "seg40.0.m4s", duration: 200 * time.Millisecond, independent: true}}},
			{msn: 41, name: "seg41.m4s", duration: 1968 * time.Millisecond, pdt: t0.Add(2 * time.Second), init: 2, discontinuity: true},
		},
		open: &openSegment{msn: 42, init: 2, parts: []*part{{name: "seg42.0.m4s", duration: 200 * time.Millisecond}}},
		hint: "seg42.1.m4s",
	}
	rs, err := parseStored(p.render(nil, false))
	if err != nil {
		t.Fatal(err)
	}
	if rs.firstMSN != 40 || rs.discSeq != 3 || rs.target != 2 || rs.nextInit != 3 || len(rs.segments) != 2 {
		t.Fatalf("%+v", rs)
	}
	a, b := rs.segments[0], rs.segments[1]
	if a.msn != 40 || a.name != "seg40.m4s" || a.duration != 2002*time.Millisecond || !a.pdt.Equal(t0) || a.init != 0 || a.discontinuity {
		t.Errorf("first: %+v", a)
	}
	if b.msn != 41 || b.init != 2 || !b.discontinuity || b.duration != 1968*time.Millisecond {
		t.Errorf("second: %+v", b)
	}
	for _, bad := range []string{"", "#EXTM3U\n", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\nseg1.ts\n", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:abc,\nseg1.ts\n"} {
		if _, err := parseStored([]byte(bad)); err == nil {
			t.Errorf("%q accepted", strings.TrimSpace(bad))
		}
	}
}
