//go:build unix

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/ingest/ertmptest"
)

// codecsReport is the line testdata/browser/codecs.mjs prints.
type codecsReport struct {
	HarnessError   string            `json:"harnessError"`
	BrowserVersion string            `json:"browserVersion"`
	HLSVersion     string            `json:"hlsVersion"`
	MSE            map[string]bool   `json:"mse"`
	BufferCodecs   map[string]string `json:"bufferCodecs"`
	Errors         []struct {
		At      float64 `json:"at"`
		Type    string  `json:"type"`
		Details string  `json:"details"`
		Fatal   bool    `json:"fatal"`
		Reason  string  `json:"reason"`
		URL     string  `json:"url"`
	} `json:"errors"`
	PlayingAt         *float64 `json:"playingAt"`
	Advance           float64  `json:"advance"`
	VideoWidth        int      `json:"videoWidth"`
	VideoHeight       int      `json:"videoHeight"`
	TotalVideoFrames  int      `json:"totalVideoFrames"`
	DroppedVideoFrame int      `json:"droppedVideoFrames"`
	AudioDecodedBytes int64    `json:"audioDecodedBytes"`
	VideoDecodedBytes int64    `json:"videoDecodedBytes"`
	Console           []string `json:"console"`
}

// playCodecs runs codecs.mjs on url for seconds, asking MSE about types.
func playCodecs(t *testing.T, url string, seconds int, types ...string) (codecsReport, string) {
	t.Helper()
	return runNodeScript[codecsReport](t, time.Duration(seconds+60)*time.Second, "codecs.mjs", append([]string{url, fmt.Sprint(seconds)}, types...)...)
}

// TestBrowserCodecs: hls.js in Debian's Chromium plays fount's LL-HLS fMP4
// of AV1 + Opus and VP9 + FLAC pushed over Enhanced RTMP, and of OBS's
// multitrack layout (H.264 + AAC track 0, extra H.264 and Opus tracks that
// the playlist leaves out). Playing means: the codecs hls.js hands MSE are
// the pushed ones, the picture has the pushed size, frames and audio are
// decoded, the clock advances, and hls.js reports no fatal error. (This
// Chromium has no HEVC, AC-3 or E-AC-3 decoder: TestE2ECodecs checks those
// with ffmpeg.)
func TestBrowserCodecs(t *testing.T) {
	if raceDetector {
		// It judges hls.js playing each codec without stalls; .ci/run runs it in its pass without -race (once is enough:
		// a player's stall under the detector is the detector's).
		t.Skip("judged without the race detector: .ci/run runs it in its pass without -race")
	}
	lockEndToEndLogged(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	browserDeps(t)
	dir := t.TempDir()
	const seconds = 10
	clip := func(v, a string) []ertmptest.Track {
		return loadClip(t, ertmptest.MakeClip(t, dir, ertmptest.ClipSpec{
			Video: v, Audio: a, Width: 320, Height: 180, FPS: 30, GOP: 60,
			Duration: 4 * time.Second, VideoKbps: 300, AudioKbps: 64,
		}))
	}
	cases := []struct {
		name         string
		layout       ertmptest.Layout
		tracks       func() []ertmptest.Track
		video, audio string // what hls.js must hand MSE (prefix, lower case)
		rendition    string // the stream has renditions: the one to wait for
	}{
		{"av1-opus", ertmptest.ExHeader, func() []ertmptest.Track { return clip("av01", "Opus") }, "av01.", "opus", ""},
		{"vp9-flac", ertmptest.ExHeader, func() []ertmptest.Track { return clip("vp09", "fLaC") }, "vp09.", "flac", ""},
		{"obs-multitrack", ertmptest.OBS, func() []ertmptest.Track {
			base := clip("avc1", "mp4a")
			extraV := findTrack(t, clip("avc1", ""), ertmptest.Video).WithID(1)
			extraA := findTrack(t, clip("", "Opus"), ertmptest.Audio).WithID(1)
			return append(base, extraV, extraA)
		}, "avc1.", "mp4a.40.2", "v0"}, // each track a rendition: hls.js plays the multivariant playlist, audio from a0
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tracks := tc.tracks()
			o := startOrigin(t, llConfig)
			// A live stream for longer than the playback: the 4 s clip
			// looped, in real time, until the test ends it.
			ctx, cancel := context.WithCancel(context.Background())
			pushDone := make(chan error, 1)
			go func() {
				pushDone <- ertmptest.Publish(ctx, "rtmp://"+o.rtmp+"/live/"+tc.name, tc.layout, tracks,
					ertmptest.Options{Realtime: true, Loops: 15})
			}()
			defer func() { cancel(); <-pushDone }()

			url := o.url("/live/" + tc.name + "/index.m3u8")
			media, apiName := url, tc.name
			if tc.rendition != "" {
				apiName = tc.name + "/" + tc.rendition
				media = o.url("/live/" + apiName + "/index.m3u8")
			}
			awaitPlaylist(t, media, 20*time.Second, "three segments", func(p *m3u8.MediaPlaylist, _ []byte) bool {
				return p.Count() >= 3
			})
			api, raw, err := streamAPI(o, apiName)
			if err != nil {
				t.Fatalf("API: %v", err)
			}
			types := []string{fmt.Sprintf(`video/mp4; codecs="%s"`, api.Codecs)}
			start := time.Now()
			r, line := playCodecs(t, url, seconds, types...)
			select {
			case err := <-pushDone:
				pushDone <- err
				t.Errorf("the push ended during playback: %v", err)
			default:
			}
			t.Logf("played %d s in %s: chromium %s, hls.js %s; API codecs %s, MSE %v; hls.js gave MSE %v; %dx%d, %d frames decoded (%d dropped), %d audio bytes; currentTime advanced %.3f s",
				seconds, time.Since(start).Round(time.Millisecond), r.BrowserVersion, r.HLSVersion, api.Codecs, r.MSE, r.BufferCodecs,
				r.VideoWidth, r.VideoHeight, r.TotalVideoFrames, r.DroppedVideoFrame, r.AudioDecodedBytes, r.Advance)

			failed := false
			fail := func(format string, args ...any) { t.Errorf(format, args...); failed = true }
			if r.HarnessError != "" {
				fail("codecs.mjs could not play: %s", r.HarnessError)
			}
			for _, e := range r.Errors {
				if e.Fatal {
					fail("fatal hls.js error at %.3f s: %s %s %s %s", e.At, e.Type, e.Details, e.Reason, e.URL)
				} else {
					t.Logf("non-fatal hls.js error at %.3f s: %s %s %s %s", e.At, e.Type, e.Details, e.Reason, e.URL)
				}
			}
			// hls.js names its SourceBuffers video, audio or, for fMP4
			// that muxes both, audiovideo ("video,audio" codecs).
			var given []string
			for _, c := range r.BufferCodecs {
				given = append(given, strings.Split(strings.ToLower(c), ",")...)
			}
			for _, want := range []string{tc.video, tc.audio} {
				ok := false
				for _, g := range given {
					ok = ok || strings.HasPrefix(strings.TrimSpace(g), want)
				}
				if !ok {
					fail("hls.js gave MSE %v, no %s… codec", r.BufferCodecs, want)
				}
			}
			if r.PlayingAt == nil {
				fail("never playing")
			}
			if r.Advance < seconds-4 {
				fail("currentTime advanced %.3f s in %d s of playback, want >= %d s", r.Advance, seconds, seconds-4)
			}
			if r.VideoWidth != 320 || r.VideoHeight != 180 {
				fail("video %dx%d, want 320x180", r.VideoWidth, r.VideoHeight)
			}
			if r.TotalVideoFrames < 30*(seconds-4) {
				fail("%d video frames decoded in %d s", r.TotalVideoFrames, seconds)
			}
			if r.AudioDecodedBytes <= 0 {
				fail("no audio decoded")
			}
			if failed {
				t.Logf("API: %s", raw)
				t.Logf("codecs.mjs report: %s", line)
			}
		})
	}
}
