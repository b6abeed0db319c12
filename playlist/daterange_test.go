package playlist

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// addCueSegments adds n segments of d each, the i-th presented from
// (first+i)·d on the stream timeline.
func addCueSegments(t *testing.T, s *Stream, clk *fakeClock, first, n int, d time.Duration) {
	t.Helper()
	for i := first; i < first+n; i++ {
		data := []byte(fmt.Sprintf("segment %d", i))
		start := time.Duration(i) * d
		if err := s.Segment(Segment{Data: data, Duration: d, ProgramDateTime: clk.Now(), Start: start, StartPTS: start}); err != nil {
			t.Fatal(err)
		}
		clk.Add(d)
	}
}

func plBody(s *Stream) string { return string(s.pl.Load().body) }

var testSplice = []byte{0xfc, 0x30, 0x11, 0x00}

func TestDateRangeBreak(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	r.cfg.WindowSize = 6
	s, err := r.Publish("live/ad")
	if err != nil {
		t.Fatal(err)
	}
	t0 := clk.Now()
	addCueSegments(t, s, clk, 0, 2, 2*time.Second)
	// Due at 3.5 s: the first segment presented at or after it is the
	// one starting at 4 s (seg2).
	if err := s.AddCue(Cue{Kind: CueOut, ID: "splice-7", At: 3500 * time.Millisecond, Duration: 6 * time.Second, SCTE35: testSplice, Source: "api"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCue(Cue{Kind: CueIn, ID: "splice-7", At: 10 * time.Second, SCTE35: []byte{0xfc, 0x01}}); err != nil {
		t.Fatal(err)
	}
	addCueSegments(t, s, clk, 2, 2, 2*time.Second)
	b := plBody(s)
	want := `#EXT-X-DATERANGE:ID="splice-7",START-DATE="` + t0.Add(4*time.Second).Format("2006-01-02T15:04:05.000Z") + `",PLANNED-DURATION=6.000,SCTE35-OUT=0xfc301100` + "\n" +
		"#EXT-X-PROGRAM-DATE-TIME:" + t0.Add(4*time.Second).Format("2006-01-02T15:04:05.000Z") + "\n#EXTINF:2.000,\nseg2.ts\n"
	if !strings.Contains(b, want) {
		t.Fatalf("no open break daterange before seg2:\n%s", b)
	}
	if st := s.Cues(); st.OpenBreak == nil || st.OpenBreak.ID != "splice-7" || st.OpenBreak.MediaSequence != 2 || st.Pending != 1 {
		t.Fatalf("cue state %+v", st)
	}
	addCueSegments(t, s, clk, 4, 2, 2*time.Second) // seg5 starts at 10 s: the break ends
	b = plBody(s)
	if !strings.Contains(b, `DURATION=6.000,PLANNED-DURATION=6.000,SCTE35-OUT=0xfc301100,SCTE35-IN=0xfc01`+"\n#EXT-X-PROGRAM-DATE-TIME") {
		t.Fatalf("ended break:\n%s", b)
	}
	if strings.Count(b, "#EXT-X-DATERANGE") != 1 || strings.Contains(b, "CUE-OUT") {
		t.Fatalf("daterange mode lists one daterange and no cue tags:\n%s", b)
	}
	parseMedia(t, []byte(b))
	if st := s.Cues(); st.OpenBreak != nil || st.LastCue == nil || st.LastCue.Kind != "in" || st.LastCue.MediaSequence != 5 {
		t.Fatalf("cue state after the break %+v %+v", st, st.LastCue)
	}
	// seg2 slides out of the 6-segment window: its daterange goes.
	addCueSegments(t, s, clk, 6, 3, 2*time.Second)
	if b := plBody(s); strings.Contains(b, "DATERANGE") {
		t.Fatalf("daterange of a segment gone from the window stays:\n%s", b)
	}
}

func TestCueTags(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	r.cfg.WindowSize = 8
	r.cfg.AdMarkers = AdMarkersCue
	s, _ := r.Publish("live/cue")
	addCueSegments(t, s, clk, 0, 1, 2*time.Second)
	s.AddCue(Cue{Kind: CueOut, ID: "b1", At: 2 * time.Second, Duration: 4 * time.Second, SCTE35: testSplice})
	s.AddCue(Cue{Kind: CueIn, ID: "b1", At: 6 * time.Second})
	addCueSegments(t, s, clk, 1, 4, 2*time.Second)
	b := plBody(s)
	for _, want := range []string{
		"#EXT-X-CUE-OUT:DURATION=4.000\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T12:00:02.000Z\n#EXTINF:2.000,\nseg1.ts\n",
		"#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=4.000\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T12:00:04.000Z\n#EXTINF:2.000,\nseg2.ts\n",
		"#EXT-X-CUE-IN\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T12:00:06.000Z\n#EXTINF:2.000,\nseg3.ts\n#EXT-X-PROGRAM-DATE-TIME:2026-11-24T12:00:08.000Z\n#EXTINF:2.000,\nseg4.ts\n",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("missing\n%s\nin\n%s", want, b)
		}
	}
	if strings.Contains(b, "DATERANGE") {
		t.Errorf("cue mode writes a daterange:\n%s", b)
	}
	r.cfg.AdMarkers = AdMarkersBoth
	addCueSegments(t, s, clk, 5, 1, 2*time.Second)
	if b := plBody(s); !strings.Contains(b, "#EXT-X-DATERANGE:ID=\"b1\"") || !strings.Contains(b, "#EXT-X-CUE-IN") {
		t.Errorf("both:\n%s", b)
	}
}

// An open break stays listed after its segment slides out, and comes back
// in the playlist a restarted process continues, still open, with its
// auto-return.
func TestOpenBreakSlidesAndRestores(t *testing.T) {
	store := durableStore()
	r, clk := newTestRegistry(t, store)
	s, _ := r.Publish("live/open")
	addCueSegments(t, s, clk, 0, 1, 2*time.Second)
	s.AddCue(Cue{Kind: CueOut, ID: "long", At: 2 * time.Second, Duration: 60 * time.Second, SCTE35: testSplice})
	addCueSegments(t, s, clk, 1, 6, 2*time.Second) // window 3: seg1 is gone
	b := plBody(s)
	if !strings.Contains(b, `#EXT-X-DATERANGE:ID="long",START-DATE="2026-11-24T12:00:02.000Z",PLANNED-DURATION=60.000,SCTE35-OUT=0xfc301100`+"\n") ||
		!strings.HasPrefix(b[strings.Index(b, "#EXT-X-DATERANGE"):], "#EXT-X-DATERANGE:ID=\"long\"") {
		t.Fatalf("open break gone with its segment:\n%s", b)
	}
	parseMedia(t, []byte(b))
	s.Unpublish()

	r2 := NewRegistry(r.cfg)
	s2, err := r2.Publish("live/open")
	if err != nil {
		t.Fatal(err)
	}
	if st := s2.Cues(); st.OpenBreak == nil || st.OpenBreak.ID != "long" || st.Pending != 1 {
		t.Fatalf("restored cue state %+v", st)
	}
	if !strings.Contains(plBody(s2), `#EXT-X-DATERANGE:ID="long",START-DATE="2026-11-24T12:00:02.000Z",PLANNED-DURATION=60.000,SCTE35-OUT=0xfc301100`) {
		t.Fatalf("restored playlist lost the open break:\n%s", plBody(s2))
	}
	// The new publisher's segments: the break returns at 62 s by date.
	clk.Add(48 * time.Second) // 12:01:02
	addCueSegments(t, s2, clk, 100, 1, 2*time.Second)
	if st := s2.Cues(); st.OpenBreak != nil || st.LastCue == nil || st.LastCue.Kind != "in" || st.LastCue.MediaSequence != 7 {
		t.Fatalf("restored break did not return: %+v %+v", st, st.LastCue)
	}
	// Ended, and its start long gone from the window: the daterange goes.
	if b := plBody(s2); strings.Contains(b, "DATERANGE") {
		t.Fatalf("ended break whose start slid out is still listed:\n%s", b)
	}
	_ = context.Background()
}

// A stream that ends for good (no reconnect within the window) ends its
// open break with it: DURATION to the end of the last segment, cues not yet
// due dropped, and a restarted process publishing the name again finds no
// break to reopen. A shutdown (EndAll) leaves it open: the next process
// continues it (TestOpenBreakSlidesAndRestores).
func TestOpenBreakEndsWithTheStream(t *testing.T) {
	store := durableStore()
	r, clk := newTestRegistry(t, store)
	s, _ := r.Publish("live/gone")
	addCueSegments(t, s, clk, 0, 1, 2*time.Second)
	s.AddCue(Cue{Kind: CueOut, ID: "brk", At: 2 * time.Second, Duration: 60 * time.Second, SCTE35: testSplice})
	s.AddCue(Cue{Kind: CueCmd, ID: "later", At: 50 * time.Second, SCTE35: testSplice})
	addCueSegments(t, s, clk, 1, 2, 2*time.Second) // the break opens at 2 s; the last segment ends at 6 s
	s.Unpublish()
	clk.Add(r.cfg.ReconnectWindow + time.Second)
	r.Sweep()
	b := plBody(s)
	if !strings.Contains(b, `#EXT-X-DATERANGE:ID="brk",START-DATE="2026-11-24T12:00:02.000Z",DURATION=4.000,PLANNED-DURATION=60.000`) || !strings.HasSuffix(b, "#EXT-X-ENDLIST\n") {
		t.Fatalf("ended stream's break:\n%s", b)
	}
	if st := s.Cues(); st.OpenBreak != nil || st.Pending != 0 || st.LastCue == nil || st.LastCue.Kind != "in" || st.LastCue.Source != "stream-end" {
		t.Fatalf("cue state after the stream's end %+v %+v", st, st.LastCue)
	}
	r2 := NewRegistry(r.cfg)
	s2, err := r2.Publish("live/gone")
	if err != nil {
		t.Fatal(err)
	}
	if st := s2.Cues(); st.OpenBreak != nil || st.Pending != 0 {
		t.Fatalf("a later publish reopened the ended stream's break: %+v", st)
	}
}

// A delta update repeats every daterange (fount does not say
// CAN-SKIP-DATERANGES).
func TestDateRangeInDeltaUpdate(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := mediaPlaylist{targetDuration: 1, initName: initName, partTarget: 200 * time.Millisecond, partHoldBack: 600 * time.Millisecond}
	for i := range 12 {
		p.segments = append(p.segments, &entry{msn: uint64(i), name: fmt.Sprintf("seg%d.ts", i), duration: time.Second, pdt: t0.Add(time.Duration(i) * time.Second), init: -1})
	}
	p.dateranges = []*dateRange{{id: "early", start: t0.Add(time.Second), msn: 1, out: testSplice}, {id: "late", start: t0.Add(10 * time.Second), msn: 10, cmd: testSplice}}
	full, delta := string(p.render(nil, false)), string(p.render(nil, true))
	if !strings.Contains(delta, "#EXT-X-SKIP:SKIPPED-SEGMENTS=") {
		t.Fatalf("no skip:\n%s", delta)
	}
	for _, id := range []string{"early", "late"} {
		if !strings.Contains(full, `ID="`+id+`"`) || !strings.Contains(delta, `ID="`+id+`"`) {
			t.Errorf("%s missing:\nfull\n%s\ndelta\n%s", id, full, delta)
		}
	}
	if strings.Contains(full, "CAN-SKIP-DATERANGES") {
		t.Error("CAN-SKIP-DATERANGES advertised")
	}
}

func TestParseDateRange(t *testing.T) {
	d := &dateRange{id: "i1", class: InterstitialClass, start: time.Date(2026, 1, 2, 3, 4, 5, 600e6, time.UTC), duration: 4 * time.Second, ended: true,
		attrs: []Attr{{Name: "X-ASSET-URI", Value: "http://a/b.m3u8?x=1,2", Quoted: true}, {Name: "X-RESUME-OFFSET", Value: "0"}}}
	line := strings.TrimSpace(string(appendDateRange(nil, d)))
	want := `#EXT-X-DATERANGE:ID="i1",CLASS="com.apple.hls.interstitial",START-DATE="2026-01-02T03:04:05.600Z",DURATION=4.000,X-ASSET-URI="http://a/b.m3u8?x=1,2",X-RESUME-OFFSET=0`
	if line != want {
		t.Fatalf("got  %s\nwant %s", line, want)
	}
	got, ok := parseDateRange(line)
	if !ok || got.id != d.id || got.class != d.class || !got.start.Equal(d.start) || got.duration != d.duration || !got.ended || len(got.attrs) != 2 || got.attrs[0] != d.attrs[0] || got.attrs[1] != d.attrs[1] {
		t.Fatalf("%+v", got)
	}
	for _, bad := range []string{`#EXT-X-DATERANGE:ID="x"`, `#EXT-X-DATERANGE:ID="x,START-DATE=`, `#EXT-X-DATERANGE:START-DATE="2026-01-02T03:04:05Z"`} {
		if _, ok := parseDateRange(bad); ok {
			t.Errorf("%s accepted", bad)
		}
	}
}
