//go:build unix

package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// whepReport is the line whep.mjs prints.
type whepReport struct {
	HarnessError   string   `json:"harnessError"`
	BrowserVersion string   `json:"browserVersion"`
	ConsoleErrors  []string `json:"consoleErrors"`
	Own            *struct {
		Status       int      `json:"status"`
		Error        string   `json:"error"`
		Location     string   `json:"location"`
		GatherMs     float64  `json:"gatherMs"`
		PostedAt     float64  `json:"postedAt"`
		AnswerAt     *float64 `json:"answerAt"`
		ConnectedAt  *float64 `json:"connectedAt"`
		FirstFrameAt *float64 `json:"firstFrameAt"`
		Codec        string   `json:"codec"`
		VideoTracks  int      `json:"videoTracks"`
		AudioTracks  int      `json:"audioTracks"`
		Deleted      int      `json:"deleted"`
		Samples      []struct {
			At                       float64 `json:"at"`
			FramesDecoded            float64 `json:"framesDecoded"`
			FramesDropped            float64 `json:"framesDropped"`
			FreezeCount              float64 `json:"freezeCount"`
			JitterBufferDelay        float64 `json:"jitterBufferDelay"`
			JitterBufferEmittedCount float64 `json:"jitterBufferEmittedCount"`
			PacketsLost              float64 `json:"packetsLost"`
			NackCount                float64 `json:"nackCount"`
		} `json:"samples"`
	} `json:"own"`
	Operator *struct {
		Listed     bool   `json:"listed"`
		Note       string `json:"note"`
		Frames     []int  `json:"frames"`
		Button     string `json:"button"`
		WebRTCFact string `json:"webrtcFact"`
	} `json:"operator"`
}

func orZero(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// awaitWHEP waits until the stream at endpoint (/APP/NAME/whep) takes
// offers: a malformed one gets its 400 rather than the 404 of a stream
// without video yet.
func awaitWHEP(t *testing.T, o *origin, endpoint string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body, _ := postOffer(t, o.url(endpoint), "not sdp", nil)
		if code == http.StatusBadRequest {
			return
		}
		if code != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("awaiting the stream's WHEP: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserWHEP plays a live RTMP push over WebRTC in chromium: from a
// page of another origin (plain RTCPeerConnection and fetch) and from the
// operator page's "Watch in real time" button. Frames are decoded and
// keep coming at ~30 fps; the time from the POST to the first decoded
// frame is logged.
func TestBrowserWHEP(t *testing.T) {
	if raceDetector {
		t.Skip("judged without the race detector: .ci/run runs it in its pass without -race")
	}
	lockEndToEndLogged(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	// Browsers' WebRTC H.264 decoders take no B-frames (docs/webrtc.md).
	src := sourceNoBFrames(t)
	browserDeps(t)
	o := startOrigin(t, func(c *config) { c.WebRTCUDPAddr = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	push := o.push(ctx, t, "rtc", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	defer func() {
		cancel()
		push.Wait()
	}()
	awaitWHEP(t, o, "/live/rtc/whep")

	const seconds = 4
	r, line := runNodeScript[whepReport](t, 150*time.Second, "whep.mjs", o.url("/live/rtc/whep"), fmt.Sprint(seconds), "http://"+o.api+"/", "live/rtc")
	if r.HarnessError != "" || r.Own == nil || r.Operator == nil {
		t.Fatalf("whep.mjs: %s", line)
	}
	own := r.Own
	if own.Status != http.StatusCreated || own.FirstFrameAt == nil || len(own.Samples) < 2 {
		t.Fatalf("no frame from the WHEP session: %s", line)
	}
	// The rate counts from the first sample with a frame decoded.
	first, last := own.Samples[0], own.Samples[len(own.Samples)-1]
	for _, s := range own.Samples {
		if s.FramesDecoded > 0 {
			first = s
			break
		}
	}
	fps := (last.FramesDecoded - first.FramesDecoded) / ((last.At - first.At) / 1000)
	jb := 0.0
	if last.JitterBufferEmittedCount > 0 {
		jb = last.JitterBufferDelay / last.JitterBufferEmittedCount * 1000
	}
	t.Logf("chromium %s: POST to first decoded frame %.0f ms (answer %.0f ms, connected %.0f ms after the POST; ICE gathering before it %.0f ms); %.0f frames decoded, %.1f/s; jitter buffer %.0f ms on average; %v dropped, %v freezes, %v packets lost, %v NACKs; %s",
		r.BrowserVersion, *own.FirstFrameAt-own.PostedAt, *own.AnswerAt-own.PostedAt, orZero(own.ConnectedAt)-own.PostedAt, own.GatherMs,
		last.FramesDecoded, fps, jb, last.FramesDropped, last.FreezeCount, last.PacketsLost, last.NackCount, own.Codec)
	if fps < 25 {
		t.Errorf("%.1f frames decoded a second, want ~30", fps)
	}
	if own.VideoTracks != 1 || own.AudioTracks != 0 || own.Deleted != http.StatusOK {
		t.Errorf("tracks: %d video, %d audio (want 1 and 0: AAC is not sent); DELETE %d", own.VideoTracks, own.AudioTracks, own.Deleted)
	}
	op := r.Operator
	if n := len(op.Frames); n < 2 || op.Frames[0] <= 0 || op.Frames[n-1] <= op.Frames[0] || op.Note != "playing over WebRTC" {
		t.Errorf("operator page's real-time player: frames %v, note %q, button %q", op.Frames, op.Note, op.Button)
	}
	t.Logf("operator page: frames %v, %q, WebRTC fact %q", op.Frames, op.Note, op.WebRTCFact)
	deadline := time.Now().Add(10 * time.Second)
	for webrtcSessions(t, o) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("sessions left 10 s after both pages DELETEd theirs")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
