package playlist

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCaptionedStream: a stream turned captioned before its first segment
// serves a multivariant playlist signalling CC1 at its URL and its media
// playlist at APP/NAME/main/; it keeps that shape across a reconnect.
func TestCaptionedStream(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	h := r.Handler()
	s, err := r.Publish("live/cc")
	if err != nil {
		t.Fatal(err)
	}
	cc := Captions{Name: "English", Language: "en"}
	rend, err := r.Captioned(s, cc)
	if err != nil {
		t.Fatal(err)
	}
	if rend.Path() != "live/cc/main" || s.Captions() == nil || *rend.Captions() != cc {
		t.Fatalf("rendition %s, captions %v", rend.Path(), rend.Captions())
	}
	rend.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", AudioCodecs: "mp4a.40.2", Width: 640, Height: 360, FrameRate: 30, VideoRange: "SDR"})
	for i := range 3 {
		addAt(t, rend, clk, time.Duration(i)*2*time.Second, 2*time.Second, 1000)
		clk.Add(2 * time.Second)
	}
	code, b := body(t, h, "/live/cc/index.m3u8")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	want := `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"` + "\n#EXT-X-STREAM-INF:"
	if !strings.Contains(b, want) || !strings.Contains(b, `CLOSED-CAPTIONS="cc"`) || !strings.Contains(b, "\nmain/index.m3u8\n") {
		t.Fatalf("multivariant playlist lacks the captions:\n%s", b)
	}
	mp := parseMaster(t, b)
	if len(mp.Variants) != 2 || mp.Variants[0].Captions != "cc" || mp.Variants[0].URI != "main/index.m3u8" || !mp.Variants[1].Iframe {
		t.Fatalf("variants %+v", mp.Variants)
	}
	if code, b := body(t, h, "/live/cc/main/index.m3u8"); code != 200 || parseMedia(t, []byte(b)).Count() != 3 {
		t.Fatalf("rendition playlist: %d\n%s", code, b)
	}
	// A second publisher is refused; after the first leaves, a plain
	// publish is taken and feeds the same rendition.
	if _, err := r.Publish("live/cc"); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("second publish: %v", err)
	}
	rend.Unpublish()
	s2, err := r.Publish("live/cc")
	if err != nil || s2 != s {
		t.Fatalf("reconnect: %v", err)
	}
	if rend2, err := r.Captioned(s2, cc); err != nil || rend2 != rend {
		t.Fatalf("reconnect's rendition: %v", err)
	}
	// Variant pushes and captions do not mix: a grouped stream refuses.
	if _, err := r.PublishRendition("live/ev", "720p"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Captioned(r.Stream("live/ev"), cc); !errors.Is(err, ErrShape) {
		t.Fatalf("captions on a grouped stream: %v", err)
	}
}

// TestCaptionsAfterSegmentsKeepShape: captions found once a stream has
// segments do not change what its URL serves.
func TestCaptionsAfterSegmentsKeepShape(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	s, err := r.Publish("live/late")
	if err != nil {
		t.Fatal(err)
	}
	addSegments(t, s, clk, 1, 2*time.Second)
	if _, err := r.Captioned(s, Captions{Name: "English", Language: "en"}); !errors.Is(err, ErrShape) {
		t.Fatalf("Captioned after a segment: %v", err)
	}
	if s.IsGroup() || s.Captions() != nil {
		t.Fatal("the stream changed shape")
	}
}

func TestCaptionsValidate(t *testing.T) {
	for _, c := range []Captions{{"English", "en"}, {"Português", "pt-BR"}, {"CC", "zh-Hant-TW"}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
	for _, c := range []Captions{{"", "en"}, {`a"b`, "en"}, {"x\ny", "en"}, {"x", ""}, {"x", "en_US"}, {"x", "en-"}, {"x", "abcdefghi"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%q accepted", c)
		}
	}
}

// TestCaptionGroup: a group of renditions signals captions found before
// its multivariant playlist is first out, on every variant, and not after.
func TestCaptionGroup(t *testing.T) {
	r, clk := newTestRegistry(t, durableStore())
	h := r.Handler()
	cc := Captions{Name: "English", Language: "en"}
	hi, err := r.PublishRendition("live/ev", "hi")
	if err != nil {
		t.Fatal(err)
	}
	if !r.CaptionGroup(hi, cc) || hi.SignalledCaptions() == nil || r.Stream("live/ev").SignalledCaptions() == nil {
		t.Fatal("captions found before any playlist are not signalled")
	}
	lo, err := r.PublishRendition("live/ev", "lo")
	if err != nil {
		t.Fatal(err)
	}
	if !r.CaptionGroup(lo, cc) {
		t.Fatal("a second rendition's captions: already signalled, want true")
	}
	for _, s := range []*Stream{hi, lo} {
		s.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", AudioCodecs: "mp4a.40.2", Width: 640, Height: 360})
		addAt(t, s, clk, 0, 2*time.Second, 1000)
	}
	_, b := body(t, h, "/live/ev/index.m3u8")
	if strings.Count(b, `CLOSED-CAPTIONS="cc"`) != 2 || strings.Count(b, `TYPE=CLOSED-CAPTIONS`) != 1 {
		t.Fatalf("multivariant playlist:\n%s", b)
	}
	if hi.Captions() != nil {
		t.Fatal("a rendition of a group is not a captioned stream of its own")
	}
	// Too late: the other group's playlist is out.
	a, _ := r.PublishRendition("live/late", "a")
	a.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", Width: 640, Height: 360})
	addAt(t, a, clk, 0, 2*time.Second, 1000)
	if r.CaptionGroup(a, cc) {
		t.Fatal("captions signalled after the multivariant playlist was out")
	}
	if _, b := body(t, h, "/live/late/index.m3u8"); strings.Contains(b, "CLOSED-CAPTIONS") {
		t.Fatalf("multivariant playlist:\n%s", b)
	}
}
