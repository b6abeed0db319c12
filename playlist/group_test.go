package playlist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// addAt hands a rendition one segment starting at start on its timeline,
// size bytes long, with one keyframe at its start.
func addAt(t *testing.T, s *Stream, clk *fakeClock, start, d time.Duration, size int) {
	t.Helper()
	data := bytes.Repeat([]byte{byte(start / time.Second)}, size)
	if err := s.Segment(Segment{Data: data, Duration: d, ProgramDateTime: clk.Now(), Start: start,
		IFrames: []IFrame{{Offset: 0, Size: int64(size / 4), Duration: d}}}); err != nil {
		t.Fatal(err)
	}
}

func body(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	res := get(t, h, http.MethodGet, path)
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func parseMaster(t *testing.T, b string) *m3u8.MasterPlaylist {
	t.Helper()
	p, lt, err := m3u8.DecodeFrom(strings.NewReader(b), true)
	if err != nil || lt != m3u8.MASTER {
		t.Fatalf("not a multivariant playlist (%v):\n%s", err, b)
	}
	return p.(*m3u8.MasterPlaylist)
}

func TestGroupedRenditionsAlignAndList(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	h := r.Handler()
	ladder := []struct {
		name   string
		w, h   int
		bytes  int
		joinAt int // segment index at which it starts
	}{{"720p", 1280, 720, 625000, 0}, {"480p", 854, 480, 300000, 0}, {"360p", 640, 360, 150000, 2}}
	streams := map[string]*Stream{}
	const d = 2 * time.Second
	for i := 0; i < 6; i++ {
		start := 10*time.Second + time.Duration(i)*d
		for _, l := range ladder {
			if i < l.joinAt {
				continue
			}
			s := streams[l.name]
			if s == nil {
				var err error
				if s, err = r.PublishRendition("live/ev", l.name); err != nil {
					t.Fatal(err)
				}
				s.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", AudioCodecs: "mp4a.40.2", Width: l.w, Height: l.h, FrameRate: 30, VideoRange: "SDR"})
				streams[l.name] = s
			}
			addAt(t, s, clk, start, d, l.bytes)
		}
		clk.Add(d)
	}
	// Segment N of every rendition starts at the same time: same numbers.
	for _, l := range ladder {
		code, b := body(t, h, "/live/ev/"+l.name+"/index.m3u8")
		if code != 200 {
			t.Fatalf("%s: %d %s", l.name, code, b)
		}
		p := parseMedia(t, []byte(b))
		if p.SeqNo != 3 { // window 3 of segments 0..5
			t.Errorf("%s: media sequence %d, want 3\n%s", l.name, p.SeqNo, b)
		}
		if a, m := streams[l.name].Alignment(); m != 0 || a == 0 {
			t.Errorf("%s: aligned %d, misaligned %d", l.name, a, m)
		}
		code, b = body(t, h, "/live/ev/"+l.name+"/iframes.m3u8")
		if code != 200 || !strings.Contains(b, "#EXT-X-I-FRAMES-ONLY") || !strings.Contains(b, fmt.Sprintf("#EXT-X-BYTERANGE:%d@0\nseg5.ts", l.bytes/4)) {
			t.Errorf("%s I-frame playlist: %d\n%s", l.name, code, b)
		}
	}
	code, b := body(t, h, "/live/ev/index.m3u8")
	if code != 200 {
		t.Fatalf("multivariant: %d %s", code, b)
	}
	mp := parseMaster(t, b)
	var got []string
	for _, v := range mp.Variants {
		kind := "stream"
		if v.Iframe {
			kind = "iframe"
		}
		got = append(got, fmt.Sprintf("%s %s %s %d", kind, v.URI, v.Resolution, v.Bandwidth))
	}
	want := []string{
		"stream 720p/index.m3u8 1280x720 2500000",
		"stream 480p/index.m3u8 854x480 1200000",
		"stream 360p/index.m3u8 640x360 600000",
		"iframe 720p/iframes.m3u8 1280x720 625000",
		"iframe 480p/iframes.m3u8 854x480 300000",
		"iframe 360p/iframes.m3u8 640x360 150000",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("variants:\n%s\nwant:\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), b)
	}
	for _, s := range []string{"#EXT-X-INDEPENDENT-SEGMENTS", `CODECS="avc1.64001f,mp4a.40.2"`, "FRAME-RATE=30.000", "VIDEO-RANGE=SDR", "AVERAGE-BANDWIDTH=2500000"} {
		if !strings.Contains(b, s) {
			t.Errorf("multivariant lacks %s:\n%s", s, b)
		}
	}
	if strings.Contains(b, "PROGRAM-ID") {
		t.Errorf("PROGRAM-ID was removed in version 6:\n%s", b)
	}

	// Shapes are fixed.
	if _, err := r.Publish("live/ev"); !errors.Is(err, ErrShape) {
		t.Errorf("plain publish to a stream with renditions: %v, want ErrShape", err)
	}
	if _, err := r.Publish("live/solo"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PublishRendition("live/solo", "720p"); !errors.Is(err, ErrShape) {
		t.Errorf("rendition of a stream without: %v, want ErrShape", err)
	}
	if _, err := r.PublishRendition("live/ev", "720p"); !errors.Is(err, ErrStreamBusy) {
		t.Errorf("second push of a live rendition: %v, want ErrStreamBusy", err)
	}
	if _, err := r.PublishRendition("live/ev", "../x"); err == nil {
		t.Error("an invalid rendition name was accepted")
	}

	// A rendition that ends leaves the multivariant playlist.
	streams["360p"].Unpublish()
	_, b = body(t, h, "/live/ev/index.m3u8")
	if strings.Contains(b, "360p/index.m3u8") || !strings.Contains(b, "480p/index.m3u8") {
		t.Errorf("after 360p left:\n%s", b)
	}
}

// A rendition whose encoder reconnects with its clock restarted: numbers
// stay in step (EXT-X-GAP for the ones it missed) and its discontinuity is
// every rendition's.
func TestGroupedRenditionReconnects(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	h := r.Handler()
	const d = 2 * time.Second
	a, _ := r.PublishRendition("live/ev", "hi")
	b, _ := r.PublishRendition("live/ev", "lo")
	for _, s := range []*Stream{a, b} {
		s.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", Width: 640, Height: 360})
	}
	for i := 0; i < 3; i++ {
		addAt(t, a, clk, time.Duration(i)*d, d, 1000)
		addAt(t, b, clk, time.Duration(i)*d, d, 500)
		clk.Add(d)
	}
	b.Unpublish()
	for i := 3; i < 5; i++ {
		addAt(t, a, clk, time.Duration(i)*d, d, 1000)
		clk.Add(d)
	}
	if _, err := r.PublishRendition("live/ev", "lo"); err != nil {
		t.Fatal(err)
	}
	// "lo" comes back with its clock restarted at zero: its timestamps are
	// moved onto the group's, its first keyframe onto the others' next cut.
	off := b.TimelineOffset(0)
	if off != 5*d {
		t.Fatalf("timeline offset %s, want %s (the others' next cut)", off, 5*d)
	}
	if a.TimelineOffset(5*d) != 0 {
		t.Fatal("an encoder whose clock agrees was given an offset")
	}
	addAt(t, b, clk, 0+off, d, 500)
	addAt(t, a, clk, 5*d, d, 1000)
	addAt(t, b, clk, d+off, d, 500)
	addAt(t, a, clk, 6*d, d, 1000)
	_, pa := body(t, h, "/live/ev/hi/index.m3u8")
	_, pb := body(t, h, "/live/ev/lo/index.m3u8")
	ma, mb := parseMedia(t, []byte(pa)), parseMedia(t, []byte(pb))
	if ma.SeqNo != mb.SeqNo || ma.DiscontinuitySeq != mb.DiscontinuitySeq {
		t.Fatalf("media/discontinuity sequence: hi %d/%d, lo %d/%d\n%s\n%s", ma.SeqNo, ma.DiscontinuitySeq, mb.SeqNo, mb.DiscontinuitySeq, pa, pb)
	}
	for i := range ma.Segments {
		sa, sb := ma.Segments[i], mb.Segments[i]
		if sa == nil || sb == nil {
			break
		}
		if sa.URI != sb.URI || sa.Discontinuity != sb.Discontinuity {
			t.Errorf("segment %d: hi %s disc=%v, lo %s disc=%v\n%s\n%s", i, sa.URI, sa.Discontinuity, sb.URI, sb.Discontinuity, pa, pb)
		}
	}
	if !strings.Contains(pb, "#EXT-X-DISCONTINUITY\n") || !strings.Contains(pa, "#EXT-X-DISCONTINUITY\n") {
		t.Errorf("the reconnect's discontinuity is not in both:\n%s\n%s", pa, pb)
	}
	if _, m := b.Alignment(); m != 0 {
		t.Errorf("misaligned segments after the reconnect: %d, want 0", m)
	}
}

func TestGroupedRenditionGapsOnRejoin(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	h := r.Handler()
	const d = 2 * time.Second
	a, _ := r.PublishRendition("live/ev", "hi")
	b, _ := r.PublishRendition("live/ev", "lo")
	addAt(t, a, clk, 0, d, 1000)
	addAt(t, b, clk, 0, d, 500)
	b.Unpublish()
	addAt(t, a, clk, d, d, 1000)
	addAt(t, a, clk, 2*d, d, 1000)
	r.PublishRendition("live/ev", "lo")
	// The same clock (an encoder that kept its timestamps): it lines up.
	addAt(t, b, clk, 3*d, d, 500)
	addAt(t, a, clk, 3*d, d, 1000)
	_, pb := body(t, h, "/live/ev/lo/index.m3u8")
	want := "#EXT-X-GAP\n#EXTINF:2.000,\nseg1.ts\n"
	if !strings.Contains(pb, want) || !strings.Contains(pb, "#EXT-X-GAP\n#EXTINF:2.000,\nseg2.ts\n") || !strings.Contains(pb, "seg3.ts") {
		t.Errorf("rejoined rendition's playlist lacks its gaps:\n%s", pb)
	}
	if _, m := b.Alignment(); m != 0 {
		t.Errorf("rejoin on the same clock counted %d misaligned", m)
	}
	if code, _ := body(t, h, "/live/ev/lo/seg1.ts"); code != 404 {
		t.Errorf("a gap's URI answered %d", code)
	}
}

func TestMultitrackSplitAndReports(t *testing.T) {
	r, clk := newLLRegistry(t)
	h := r.Handler()
	parent, err := r.Publish("live/mt")
	if err != nil {
		t.Fatal(err)
	}
	if !r.SplitTracks(parent) {
		t.Fatal("a fresh stream could not be split")
	}
	v0, _ := r.Rendition(parent, "v0")
	v1, _ := r.Rendition(parent, "v1")
	a0, _ := r.Rendition(parent, "a0")
	a1, _ := r.Rendition(parent, "a1")
	v0.SetInfo(MediaInfo{VideoCodecs: "avc1.640028", Width: 1920, Height: 1080})
	v1.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", Width: 1280, Height: 720})
	a0.SetInfo(MediaInfo{AudioCodecs: "mp4a.40.2"})
	a1.SetInfo(MediaInfo{AudioCodecs: "mp4a.40.2", Name: "commentary"})
	for i := 0; i < 2; i++ {
		for _, s := range []*Stream{v0, v1, a0, a1} {
			start := time.Duration(i) * time.Second
			for j := 0; j < 2; j++ {
				if err := s.Part(Part{Data: []byte("part"), Duration: 500 * time.Millisecond, Independent: j == 0, SegmentStart: start}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Segment(Segment{Data: []byte("partpart"), Duration: time.Second, ProgramDateTime: clk.Now(), Start: start}); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, b := body(t, h, "/live/mt/index.m3u8")
	mp := parseMaster(t, b)
	if n := len(mp.Variants); n != 2 {
		t.Fatalf("%d variants, want 2 (v0, v1):\n%s", n, b)
	}
	if mp.Variants[0].URI != "v0/index.m3u8" || mp.Variants[0].Audio == "" {
		t.Errorf("first variant %s audio %q:\n%s", mp.Variants[0].URI, mp.Variants[0].Audio, b)
	}
	for _, s := range []string{`TYPE=AUDIO,GROUP-ID="audio-mp4a",NAME="a0",DEFAULT=YES,AUTOSELECT=YES,URI="a0/index.m3u8"`, `NAME="commentary",DEFAULT=NO`} {
		if !strings.Contains(b, s) {
			t.Errorf("multivariant lacks %s:\n%s", s, b)
		}
	}
	_, p1 := body(t, h, "/live/mt/v1/index.m3u8")
	if !strings.Contains(p1, `#EXT-X-RENDITION-REPORT:URI="../v0/index.m3u8",LAST-MSN=1,LAST-PART=1`) {
		t.Errorf("v1 lacks v0's rendition report:\n%s", p1)
	}
	// Directives on the multivariant playlist are ignored, not waited on.
	if code, _ := body(t, h, "/live/mt/index.m3u8?_HLS_msn=50"); code != 200 {
		t.Errorf("multivariant with a directive: %d", code)
	}
	// A stream that had segments as one rendition keeps its shape.
	solo, _ := r.Publish("live/solo")
	addLLSegment(t, solo, clk, 2)
	if r.SplitTracks(solo) {
		t.Error("a stream with segments was split")
	}
}
