//go:build unix

package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fount-live/fount/ingest/ertmptest"
)

// TestBrowserWHEPCodecs plays VP9 (with Opus) and AV1 streams pushed over
// Enhanced RTMP over WebRTC in chromium (whep.mjs, the page of its own
// only): the session's codec is the stream's, frames are decoded at ~30
// a second, and the VP9 session has its audio track.
func TestBrowserWHEPCodecs(t *testing.T) {
	if raceDetector {
		t.Skip("judged without the race detector: .ci/run runs it in its pass without -race")
	}
	lockEndToEndLogged(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	browserDeps(t)
	dir := t.TempDir()
	// Long enough for both pages, one after the other.
	const seconds = 16
	clip := func(v, a string) []ertmptest.Track {
		return loadClip(t, ertmptest.MakeClip(t, dir, ertmptest.ClipSpec{Video: v, Audio: a, Width: 320, Height: 180, FPS: 30, GOP: 30,
			Duration: seconds * time.Second, VideoKbps: 300, AudioKbps: 64}))
	}
	start := time.Now()
	clips := map[string][]ertmptest.Track{"vp9": clip("vp09", "Opus"), "av1": clip("av01", "")}
	t.Logf("clips encoded in %s", time.Since(start).Round(time.Millisecond))
	o := startOrigin(t, func(c *config) { c.WebRTCUDPAddr = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for name, tracks := range clips {
		wg.Go(func() {
			err := ertmptest.Publish(ctx, "rtmp://"+o.rtmp+"/live/"+name, ertmptest.ExHeader, tracks, ertmptest.Options{Realtime: true})
			if err != nil && ctx.Err() == nil {
				t.Errorf("push %s: %v", name, err)
			}
		})
	}
	for _, c := range []struct {
		name, mime string
		audio      int
	}{{"vp9", "video/VP9", 1}, {"av1", "video/AV1", 0}} {
		endpoint := "/live/" + c.name + "/whep"
		awaitWHEP(t, o, endpoint)
		r, line := runNodeScript[whepReport](t, 90*time.Second, "whep.mjs", o.url(endpoint), "3", "-", "-")
		own := r.Own
		if r.HarnessError != "" || own == nil {
			t.Fatalf("%s: whep.mjs: %s", c.name, line)
		}
		if own.Status != http.StatusCreated || own.FirstFrameAt == nil || len(own.Samples) < 2 {
			t.Errorf("%s: no frame from the WHEP session: %s", c.name, line)
			continue
		}
		first, last := own.Samples[0], own.Samples[len(own.Samples)-1]
		for _, s := range own.Samples {
			if s.FramesDecoded > 0 {
				first = s
				break
			}
		}
		fps := (last.FramesDecoded - first.FramesDecoded) / ((last.At - first.At) / 1000)
		t.Logf("%s: chromium %s, codec %q: POST to first decoded frame %.0f ms; %.0f frames decoded, %.1f/s; %v dropped, %v freezes, %v packets lost; %d audio tracks",
			c.name, r.BrowserVersion, own.Codec, *own.FirstFrameAt-own.PostedAt, last.FramesDecoded, fps, last.FramesDropped, last.FreezeCount, last.PacketsLost, own.AudioTracks)
		if !strings.HasPrefix(own.Codec, c.mime) {
			t.Errorf("%s: chromium's codec %q, want %s", c.name, own.Codec, c.mime)
		}
		if fps < 25 {
			t.Errorf("%s: %.1f frames decoded a second, want ~30", c.name, fps)
		}
		if own.VideoTracks != 1 || own.AudioTracks != c.audio || own.Deleted != http.StatusOK {
			t.Errorf("%s: tracks: %d video, %d audio (want 1 and %d); DELETE %d", c.name, own.VideoTracks, own.AudioTracks, c.audio, own.Deleted)
		}
	}
}
