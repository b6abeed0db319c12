package main

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/storage"
)

func TestVTTSegments(t *testing.T) {
	var v vttTrack
	s := func(d float64) time.Duration { return time.Duration(d * float64(time.Second)) }
	v.add(s(10.5), "ONE")
	v.add(s(11.25), "TWO <b> & more\n\nsecond line")
	v.add(s(11.9), "") // clears TWO
	v.add(s(13.5), "THREE")
	// [10, 12): ONE until TWO, TWO until the clear.
	want := "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n" +
		"\n00:00:00.500 --> 00:00:01.250\nONE\n" +
		"\n00:00:01.250 --> 00:00:01.900\nTWO &lt;b&gt; &amp; more\nsecond line\n"
	if got := string(v.segment(s(10), s(2))); got != want {
		t.Fatalf("segment 1:\n%s\nwant:\n%s", got, want)
	}
	// [12, 14): THREE from 13.5, cut at the segment's end; [14, 16) goes on
	// with it until its 4 s are up (17.5): past this segment.
	want = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1080000,LOCAL:00:00:00.000\n" +
		"\n00:00:01.500 --> 00:00:02.000\nTHREE\n"
	if got := string(v.segment(s(12), s(2))); got != want {
		t.Fatalf("segment 2:\n%s\nwant:\n%s", got, want)
	}
	want = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1260000,LOCAL:00:00:00.000\n" +
		"\n00:00:00.000 --> 00:00:02.000\nTHREE\n"
	if got := string(v.segment(s(14), s(2))); got != want {
		t.Fatalf("segment 3:\n%s\nwant:\n%s", got, want)
	}
	if got := string(v.segment(s(18), s(2))); got != "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1620000,LOCAL:00:00:00.000\n" {
		t.Fatalf("segment 4:\n%s", got)
	}
	if len(v.cues) > 1 {
		t.Fatalf("%d cues kept after they ended", len(v.cues))
	}
	// The 33-bit wrap of MPEG-TS time.
	if got := mpegTS(time.Duration((1<<33+1)/9) * 100 * time.Microsecond); got != 1 { // 2^33+1 ticks
		t.Fatalf("mpegTS at 2^33+1 ticks = %d, want 1", got)
	}
}

// TestCaptionTextGroupTakeover: in a group of renditions, the text that
// comes before the multivariant playlist has the group signal captions;
// the first rendition whose text comes feeds the WebVTT rendition, the
// other's identical text is not served; when the first's publisher
// leaves, the other takes the subtitles over at its next segment, numbered
// on without a discontinuity. In a group whose playlist went out without
// captions, text is not served, with a log line that says why.
func TestCaptionTextGroupTakeover(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	reg := playlist.NewRegistry(playlist.Config{Store: storage.NewMemory(), TargetDuration: 2 * time.Second, WindowSize: 6, Logger: log})
	pub := &publisher{reg: reg, log: log, cc: captionFlags{Mode: "auto", Name: "Deutsch", Language: "de"}}
	t0 := time.Now()
	publish := func(stream, rend string) *session {
		st, err := reg.PublishRendition(stream, rend)
		if err != nil {
			t.Fatal(err)
		}
		st.SetInfo(playlist.MediaInfo{VideoCodecs: "avc1.64001f", Width: 640, Height: 360})
		return pub.newSession(st, segmenter.Config{}, "test")
	}
	segment := func(s *session, i int) {
		t.Helper()
		at := time.Duration(i) * 2 * time.Second
		seg := segmenter.Segment{Data: []byte("media"), Start: at, StartPTS: at, Duration: 2 * time.Second, ProgramDateTime: t0.Add(at)}
		if err := s.stream.Segment(playlist.Segment{Data: seg.Data, Duration: seg.Duration, ProgramDateTime: seg.ProgramDateTime, Start: at, StartPTS: at}); err != nil {
			t.Fatal(err)
		}
		s.subtitlesSegment(seg)
	}
	text := func(s string) ingest.CaptionText { return ingest.CaptionText{Text: s} }
	hi, lo := publish("live/ev", "hi"), publish("live/ev", "lo")
	hi.CaptionText(time.Second, text("ONE"))
	lo.CaptionText(time.Second, text("ONE"))
	for i := range 2 {
		segment(hi, i)
		segment(lo, i)
	}
	hi.CaptionText(3*time.Second, text("TWO"))
	lo.CaptionText(3*time.Second, text("TWO"))
	hi.Close()
	segment(lo, 2)

	subs := reg.Stream("live/ev/subs")
	mv := reg.Stream("live/ev")
	if subs == nil || mv == nil {
		t.Fatal("no subtitles rendition")
	}
	h := reg.Handler()
	get := func(path string) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			t.Fatalf("%s: %d", path, rec.Code)
		}
		return rec.Body.String()
	}
	pl := get("/live/ev/subs/index.m3u8")
	if strings.Count(pl, "#EXTINF") != 3 || strings.Contains(pl, "DISCONTINUITY") || !strings.Contains(pl, "seg2.vtt") {
		t.Fatalf("subs playlist:\n%s", pl)
	}
	if b := get("/live/ev/subs/seg2.vtt"); !strings.Contains(b, "\n00:00:00.000 --> 00:00:02.000\nTWO\n") {
		t.Fatalf("seg2.vtt, from lo after hi left:\n%s", b)
	}
	if b := get("/live/ev/subs/seg0.vtt"); !strings.Contains(b, "\n00:00:01.000 --> 00:00:02.000\nONE\n") {
		t.Fatalf("seg0.vtt:\n%s", b)
	}
	if b := get("/live/ev/index.m3u8"); !strings.Contains(b, `TYPE=SUBTITLES,GROUP-ID="subs",NAME="Deutsch",LANGUAGE="de"`) || !strings.Contains(b, `SUBTITLES="subs"`) {
		t.Fatalf("multivariant playlist:\n%s", b)
	}
	a := &api{reg: reg, pub: pub}
	if cc := a.captionsJSON(mv); cc == nil || !cc.Signalled || cc.Name != "Deutsch" || cc.Subtitles != "subs" {
		t.Errorf("the group's captions in the API: %+v", cc)
	}
	out := logs.String()
	for _, want := range []string{
		`msg="captions signalled for the stream's renditions" stream=live/ev/hi by="caption text"`,
		`msg="caption text: serving a WebVTT subtitles rendition" stream=live/ev/hi`,
		`msg="caption text of this rendition is not served while another rendition's publisher feeds the subtitles`,
		`msg="caption text: serving a WebVTT subtitles rendition" stream=live/ev/lo`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no log %s in\n%s", want, out)
		}
	}

	// Too late: the group's playlist went out without captions.
	late := publish("live/late", "hi")
	segment(late, 0)
	get("/live/late/index.m3u8")
	late.CaptionText(3*time.Second, text("ONE"))
	if reg.Stream("live/late/subs") != nil || !strings.Contains(logs.String(), `msg="caption text is not served: the stream's multivariant playlist went out without captions (see --captions on)" stream=live/late/hi`) {
		t.Fatalf("text in a group without captions:\n%s", logs.String())
	}
}
