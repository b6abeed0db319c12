package playlist

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// vttAt hands a WebVTT rendition the segment of the media segment at start.
func vttAt(t *testing.T, s *Stream, clk *fakeClock, start, d time.Duration) {
	t.Helper()
	if err := s.Segment(Segment{Data: []byte("WEBVTT\n"), Duration: d, ProgramDateTime: clk.Now(), Start: start}); err != nil {
		t.Fatal(err)
	}
}

// TestGroupSubtitles: a group of renditions that signals captions gets
// one WebVTT rendition, listed as SUBTITLES on every variant and numbered
// as the media; one publisher feeds it at a time, and another takes it
// over when that one leaves, without a discontinuity of its own; a
// rendition's publisher coming back marks one in all, subs included.
func TestGroupSubtitles(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	h := r.Handler()
	cc := Captions{Name: "Deutsch", Language: "de"}
	hi, err := r.PublishRendition("live/ev", "hi")
	if err != nil {
		t.Fatal(err)
	}
	lo, err := r.PublishRendition("live/ev", "lo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Subtitles(hi); !errors.Is(err, ErrShape) {
		t.Fatalf("subtitles of a group signalling no captions: %v", err)
	}
	if !r.CaptionGroup(hi, cc) {
		t.Fatal("CaptionGroup before any playlist")
	}
	seg := 2 * time.Second
	both := func(at time.Duration, rends ...*Stream) {
		for _, s := range rends {
			addAt(t, s, clk, at, seg, 1000)
		}
	}
	for _, s := range []*Stream{hi, lo} {
		s.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", AudioCodecs: "mp4a.40.2", Width: 640, Height: 360})
	}
	both(0, hi, lo)
	clk.Add(seg)
	// The first text comes once the multivariant playlist is out: the
	// group signals captions, so the subtitles may still be added.
	_, b := body(t, h, "/live/ev/index.m3u8")
	if strings.Contains(b, "SUBTITLES") {
		t.Fatalf("subtitles listed before any:\n%s", b)
	}
	subs, err := r.Subtitles(hi)
	if err != nil || subs.Path() != "live/ev/subs" {
		t.Fatalf("subtitles: %v", err)
	}
	if _, err := r.Subtitles(lo); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("a second rendition's publisher takes the subtitles: %v", err)
	}
	both(seg, hi, lo)
	vttAt(t, subs, clk, seg, seg)
	clk.Add(seg)

	_, b = body(t, h, "/live/ev/index.m3u8")
	if strings.Count(b, "#EXT-X-MEDIA:TYPE=SUBTITLES,") != 1 ||
		!strings.Contains(b, `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Deutsch",LANGUAGE="de",DEFAULT=NO,AUTOSELECT=YES,URI="subs/index.m3u8"`) {
		t.Fatalf("multivariant playlist:\n%s", b)
	}
	n := 0
	for _, v := range parseMaster(t, b).Variants {
		switch {
		case v.Iframe:
			if v.Subtitles != "" {
				t.Errorf("I-frame variant %s lists subtitles", v.URI)
			}
		case v.Subtitles != "subs" || v.Captions != "cc":
			t.Errorf("variant %s: SUBTITLES=%q CLOSED-CAPTIONS=%q", v.URI, v.Subtitles, v.Captions)
		default:
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d variants with subtitles:\n%s", n, b)
	}

	// hi's publisher leaves: lo's takes the subtitles over, numbered on.
	subs.Unpublish()
	hi.Unpublish()
	both(2*seg, lo)
	if _, b := body(t, h, "/live/ev/index.m3u8"); strings.Contains(b, "SUBTITLES") {
		t.Fatalf("subtitles listed while nobody feeds them:\n%s", b)
	}
	if s, err := r.Subtitles(lo); err != nil || s != subs {
		t.Fatalf("takeover: %v", err)
	}
	if _, b := body(t, h, "/live/ev/index.m3u8"); !strings.Contains(b, `SUBTITLES="subs"`) || strings.Contains(b, "hi/index.m3u8") {
		t.Fatalf("after the takeover:\n%s", b)
	}
	vttAt(t, subs, clk, 2*seg, seg)
	clk.Add(seg)
	// hi's publisher back: a discontinuity in every rendition, subs too.
	if _, err := r.PublishRendition("live/ev", "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Subtitles(hi); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("the subtitles go back to hi: %v", err)
	}
	both(3*seg, hi, lo)
	vttAt(t, subs, clk, 3*seg, seg)

	_, b = body(t, h, "/live/ev/subs/index.m3u8")
	p := parseMedia(t, []byte(b))
	if p.SeqNo != 1 || p.Count() != 3 || strings.Contains(b, "#EXT-X-MAP") || !strings.HasSuffix(p.Segments[0].URI, ".vtt") {
		t.Fatalf("subs playlist:\n%s", b)
	}
	for i, s := range p.Segments[:p.Count()] {
		if s.Discontinuity != (i == 2) {
			t.Fatalf("subs segment %d: discontinuity %v\n%s", p.SeqNo+uint64(i), s.Discontinuity, b)
		}
	}
	_, lb := body(t, h, "/live/ev/lo/index.m3u8")
	lp := parseMedia(t, []byte(lb))
	if lp.SeqNo != 1 || lp.Count() != 3 || !lp.Segments[2].Discontinuity || lp.Segments[1].Discontinuity || lp.DiscontinuitySeq != p.DiscontinuitySeq {
		t.Fatalf("lo playlist (subs' discontinuity sequence %d):\n%s", p.DiscontinuitySeq, lb)
	}

	// The name is the subtitles': no push may take it.
	if _, err := r.PublishRendition("live/ev", SubtitlesRendition); err == nil {
		t.Fatal("a push took the subtitles rendition's name")
	}
}

// TestMultitrackSubtitlesNumbering: the WebVTT rendition of a multitrack
// push numbers its segments as the video does, not on its own as the
// alternative audio does.
func TestMultitrackSubtitlesNumbering(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	s, err := r.Publish("live/mt")
	if err != nil {
		t.Fatal(err)
	}
	if !r.SplitTracks(s) {
		t.Fatal("not split")
	}
	v0, err := r.Rendition(s, "v0")
	if err != nil {
		t.Fatal(err)
	}
	if !r.CaptionGroup(v0, Captions{Name: "English", Language: "en"}) {
		t.Fatal("CaptionGroup")
	}
	v0.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", Width: 640, Height: 360})
	addAt(t, v0, clk, 0, 2*time.Second, 1000)
	addAt(t, v0, clk, 2*time.Second, 2*time.Second, 1000)
	subs, err := r.Subtitles(v0)
	if err != nil {
		t.Fatal(err)
	}
	vttAt(t, subs, clk, 2*time.Second, 2*time.Second)
	_, b := body(t, r.Handler(), "/live/mt/subs/index.m3u8")
	if p := parseMedia(t, []byte(b)); p.SeqNo != 1 || p.Count() != 1 {
		t.Fatalf("subs playlist, want its one segment numbered 1 as the video's:\n%s", b)
	}
	// A captioned stream's rendition is not split into more renditions.
	c, _ := r.Publish("live/cc")
	rend, err := r.Captioned(c, Captions{Name: "English", Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if r.SplitTracks(rend) {
		t.Fatal("a captioned stream's rendition was split")
	}
}
