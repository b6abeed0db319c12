package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestWHIPVP9AV1 publishes VP9 and AV1, each with Opus, over WHIP at once
// from two pion publishers whose offers hold no H.264 (VP8 first, then
// VP9 or AV1): fount answers VP9 and AV1, and each stream's fMP4 playlist
// appears with segments that ffmpeg decodes cleanly as VP9 or AV1
// (320x180) and Opus, each from a keyframe.
func TestWHIPVP9AV1(t *testing.T) {
	requireTool(t, "ffprobe")
	cases := []struct {
		name  string // the ffprobe codec name and the stream's
		codec webrtc.RTPCodecCapability
		media whipMedia
	}{
		{name: "vp9", codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"}},
		{name: "av1", codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, SDPFmtpLine: "level-idx=5;profile=0;tier=0"}},
	}
	for i := range cases {
		cases[i].media = makeWHIPMediaOf(t, cases[i].name, "3")
	}
	lockEndToEndLogged(t)
	o := startOrigin(t, func(c *config) { c.WebRTCUDPAddr = "127.0.0.1:0" })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, c := range cases {
		p := newWHIPPublisherOf(t, c.codec)
		code, answer := p.publish(t, o, "/live/"+c.name+"/whip", "")
		if code != http.StatusCreated {
			t.Fatalf("%s: publish: %d %q", c.name, code, answer)
		}
		if enc := strings.TrimPrefix(c.codec.MimeType, "video/") + "/90000"; !strings.Contains(answer, enc) || strings.Contains(answer, "VP8/90000") {
			t.Errorf("%s: the answer does not take %s alone:\n%s", c.name, enc, answer)
		}
		wg.Go(func() { p.send(ctx, c.media) })
	}
	for _, c := range cases {
		segs, _ := readBack(t, o, c.name, 1.9, true)
		for _, s := range segs {
			if s.vcodec != c.name || s.width != 320 || s.height != 180 || !s.vfirstKey || s.vpackets == 0 || s.acodec != "opus" || s.apackets == 0 {
				t.Errorf("%s: video %q %dx%d (%d, keyframe first %v), audio %q (%d)", s.uri, s.vcodec, s.width, s.height, s.vpackets, s.vfirstKey, s.acodec, s.apackets)
			}
		}
		t.Logf("%s: %d segments of %s and Opus", c.name, len(segs), c.name)
	}
	for _, want := range []string{"video=VP9", "video=AV1"} {
		if !strings.Contains(o.logs.String(), `msg="whip publish answered"`) || !strings.Contains(o.logs.String(), want) {
			t.Errorf("no %q in the log of the answers", want)
		}
	}
}
