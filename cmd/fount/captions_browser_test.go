package main

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/ingest/flv"
	"github.com/fount-live/fount/segmenter/codec/cctest"
)

// captionsReport is the line testdata/browser/captions.mjs prints.
type captionsReport struct {
	HarnessError     string `json:"harnessError"`
	BrowserVersion   string `json:"browserVersion"`
	HLSVersion       string `json:"hlsVersion"`
	ManifestCaptions []struct {
		Name, Lang, InstreamID, GroupID string
	} `json:"manifestCaptions"`
	ManifestSubtitles []struct {
		Name, Lang, GroupID, URL string
	} `json:"manifestSubtitles"`
	SubtitleTracks []struct {
		Name, Lang string
	} `json:"subtitleTracks"`
	TextTracks []struct {
		Kind, Label, Language, Mode string // the video element's TextTrack
		Cues                        []struct {
			Start float64 `json:"start"`
			End   float64 `json:"end"`
			Text  string  `json:"text"`
		} `json:"cues"`
	} `json:"textTracks"`
	Errors []struct {
		At      float64 `json:"at"`
		Type    string  `json:"type"`
		Details string  `json:"details"`
		Fatal   bool    `json:"fatal"`
		URL     string  `json:"url"`
	} `json:"errors"`
	UserData    int      `json:"userdata"` // SEI samples hls.js parsed
	PlayingAt   *float64 `json:"playingAt"`
	CurrentTime float64  `json:"currentTime"`
	Console     []string `json:"console"`
}

// TestBrowserCaptions: hls.js in Debian's Chromium plays a stream whose
// H.264 carries CEA-608 captions and whose encoder (ffmpeg) sends caption
// text as onTextData; from fount's multivariant playlist it knows CC1 by
// its NAME and LANGUAGE, and its native CC1 text track holds cues with the
// text the encoder sent; the WebVTT rendition is its subtitle track, whose
// cues hold the texts sent at their times.
func TestBrowserCaptions(t *testing.T) {
	lockEndToEndLogged(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	browserDeps(t)
	// Without B-frames: hls.js 1.7.4 hands cc_data to its 608 decoder in
	// the order the pictures are coded, not shown (it does not reorder the
	// SEI samples by PTS), which garbles captions of a stream with
	// B-frames; ffmpeg reorders them (TestE2ECaptions).
	noB := sourceNoBFrames(t)
	tags := captionedTags(t, noB)
	src := make([]flv.Tag, len(tags))
	for i, g := range tags {
		src[i] = flv.Tag{Type: g.typ, Timestamp: uint32(g.ts), Data: g.data}
	}
	dir := t.TempDir()
	ccFile := filepath.Join(dir, "cc.flv")
	if err := os.WriteFile(ccFile, cctest.WriteFLV(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// Caption text too: ffmpeg's FLV muxer sends a text subtitle stream as
	// onTextData, at each subtitle's start.
	srtFile, file := filepath.Join(dir, "text.srt"), filepath.Join(dir, "cc-text.flv")
	writeCaptionSRT(t, srtFile)
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", ccFile, "-i", srtFile,
		"-map", "0", "-map", "1", "-c:v", "copy", "-c:a", "copy", "-c:s", "text", "-f", "flv", file).CombinedOutput(); err != nil {
		t.Fatalf("adding the text: %v\n%s", err, out)
	}
	// Classic HLS in MPEG-TS, for two limits of hls.js 1.7.4's native CC
	// (timeline-controller.ts): it resets its 608 decoder when a fragment
	// is not the previous one's successor, which an LL-HLS part of the
	// same segment never is (onFragLoading), so captions across parts are
	// lost; and it moves cues from its cache onto the text track only when
	// a "video" SourceBuffer takes data (onBufferAppended), while fMP4
	// holding audio and video goes to one "audiovideo" buffer.
	// TestE2ECaptions checks the LL-HLS fMP4 segments carry the captions.
	o := startClassic(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	push := o.push(ctx, t, "cc", []string{"-re", "-stream_loop", "1", "-i", file}, "-map", "0", "-c", "copy")
	defer push.Wait()
	awaitPlaylist(t, o.url("/live/cc/main/index.m3u8"), 20*time.Second, "a segment",
		func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	const seconds = 10
	r, line := runNodeScript[captionsReport](t, (seconds+60)*time.Second, "captions.mjs", o.url("/live/cc/index.m3u8"), "10")
	t.Logf("hls.js %s in Chromium %s: %s", r.HLSVersion, r.BrowserVersion, line)
	if r.HarnessError != "" {
		t.Fatalf("captions.mjs: %s", r.HarnessError)
	}
	for _, e := range r.Errors {
		if e.Fatal {
			t.Errorf("fatal hls.js error at %.3f s: %s %s %s", e.At, e.Type, e.Details, e.URL)
		}
	}
	if r.PlayingAt == nil {
		t.Error("never playing")
	}
	if len(r.ManifestCaptions) != 1 || r.ManifestCaptions[0].InstreamID != "CC1" || r.ManifestCaptions[0].Name != "English" || r.ManifestCaptions[0].Lang != "en" {
		t.Errorf("hls.js read the captions renditions %+v, want CC1 English en", r.ManifestCaptions)
	}
	cues := 0
	for _, tt := range r.TextTracks {
		if tt.Kind != "captions" || tt.Label != "English" || tt.Language != "en" {
			continue
		}
		for _, c := range tt.Cues {
			if strings.TrimSpace(c.Text) != captionText {
				t.Errorf("CC1 cue %.3f–%.3f holds %q, want %q", c.Start, c.End, c.Text, captionText)
			}
			// Shown at the EOC of frame 12 of every 60 (0.4 s into each
			// 2 s), erased at frame 45 (1.5 s): within a frame.
			if at := math.Mod(c.Start, 2); math.Abs(at-0.4) > 0.034 || math.Abs(c.End-c.Start-1.1) > 0.034 {
				t.Errorf("CC1 cue %.3f–%.3f, want one from 0.4 s to 1.5 s into a 2 s period", c.Start, c.End)
			}
			cues++
		}
	}
	if cues < 2 {
		t.Errorf("%d cues on a CC1 captions track labelled English (en), want 2 or more (text tracks: %+v)", cues, r.TextTracks)
	}

	// The WebVTT rendition: one subtitle track, whose cues hold the texts
	// sent at their times.
	if len(r.ManifestSubtitles) != 1 || r.ManifestSubtitles[0].Name != "English" || r.ManifestSubtitles[0].Lang != "en" || len(r.SubtitleTracks) != 1 {
		t.Errorf("hls.js subtitles: in the playlist %+v, tracks %+v; want one, English (en)", r.ManifestSubtitles, r.SubtitleTracks)
	}
	subCues := 0
	for _, tt := range r.TextTracks {
		if tt.Kind != "subtitles" {
			continue
		}
		for _, c := range tt.Cues {
			if want := textFor(c.Start); c.Text != want {
				t.Errorf("subtitle cue %.3f–%.3f holds %q, want %q", c.Start, c.End, c.Text, want)
			}
			subCues++
		}
	}
	if subCues < 3 {
		t.Errorf("%d subtitle cues, want 3 or more (text tracks: %+v)", subCues, r.TextTracks)
	}
}
