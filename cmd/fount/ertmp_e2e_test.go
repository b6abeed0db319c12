package main

import (
	"context"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/ingest/ertmptest"
)

// The E-RTMP test publisher (gortmplib's connection, this project's bodies)
// pushes a legacy H.264 + AAC clip into fount in real time: the playlist
// appears and every segment decodes, keyframe first, with continuous
// timestamps. It proves the publisher against fount's ingest as it is.
func TestE2EERTMPPublisherLegacy(t *testing.T) {
	requireTool(t, "ffprobe")
	clip := ertmptest.MakeClip(t, t.TempDir(), ertmptest.ClipSpec{
		Video: "avc1", Audio: "mp4a", Width: 640, Height: 360, FPS: 30, GOP: 60, BFrames: 2,
		Duration: 6 * time.Second, VideoKbps: 800, AudioKbps: 96,
	})
	tracks, err := ertmptest.LoadMP4(clip)
	if err != nil {
		t.Fatal(err)
	}
	o := startClassic(t, func(c *config) { c.PlaylistSize = 10 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ertmptest.Publish(ctx, "rtmp://"+o.rtmp+"/live/ertmp", ertmptest.Legacy, tracks, ertmptest.Options{Realtime: true}); err != nil {
		t.Fatalf("publish: %v", err)
	}

	url := o.url("/live/ertmp/index.m3u8")
	p, body := awaitPlaylist(t, url, 10*time.Second, "the whole 6 s push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 5.9
	})
	if d := totalDuration(p); d < 5.9 || d > 6.1 {
		t.Errorf("EXTINFs add up to %.3f s, want 6 s\n%s", d, body)
	}
	checkTargetDuration(t, p, body)
	segs := fetchSegments(t, o, "/live/ertmp/", p)
	checkContinuity(t, segs, true, true)
}
