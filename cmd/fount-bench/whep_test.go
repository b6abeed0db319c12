package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// whepOrigin is a WHEP endpoint on pion for the test: live/ok answers
// with a video track that sends a frame of three RTP packets every 20 ms
// (50 frames/s), live/gone answers 404.
type whepOrigin struct {
	t       *testing.T
	ctx     context.Context
	wg      sync.WaitGroup
	mu      sync.Mutex
	deletes int
}

func (o *whepOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/live/ok/whep/"):
		o.mu.Lock()
		o.deletes++
		o.mu.Unlock()
		return
	case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/sdp":
		http.Error(w, "want POST application/sdp", http.StatusBadRequest)
		return
	case r.URL.Path != "/live/ok/whep":
		http.Error(w, "no such live stream: live/gone", http.StatusNotFound)
		return
	}
	offer, _ := io.ReadAll(r.Body)
	api, err := whepAPI(true)
	if err != nil {
		o.t.Error(err)
		return
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		o.t.Error(err)
		return
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "test")
	if err == nil {
		_, err = pc.AddTrack(track)
	}
	if err == nil {
		err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)})
	}
	var answer webrtc.SessionDescription
	if err == nil {
		answer, err = pc.CreateAnswer(nil)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err == nil {
		err = pc.SetLocalDescription(answer)
	}
	if err != nil {
		pc.Close()
		http.Error(w, "bad offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	<-gathered
	o.wg.Add(1)
	go func() { // the session: send until the test ends
		defer o.wg.Done()
		defer pc.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var seq uint16
		for ts := uint32(0); ; ts += 1800 {
			select {
			case <-o.ctx.Done():
				return
			case <-tick.C:
			}
			for i := range 3 {
				seq++
				p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, Marker: i == 2}, Payload: []byte{0x5c, 0x81, 0, 0, 0}}
				track.WriteRTP(p) // before ICE is up, packets are lost: as at an origin
			}
		}
	}()
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/live/ok/whep/abc")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, pc.LocalDescription().SDP)
}

// TestViewWHEP: two pion WHEP viewers of a stream get its frames (about
// 50 a second each) and DELETE their sessions at the end; two of a stream
// that answers 404 are counted as failed, with the reason.
func TestViewWHEP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	o := &whepOrigin{t: t, ctx: ctx}
	srv := httptest.NewServer(o)
	t.Cleanup(func() { cancel(); o.wg.Wait(); srv.Close() })
	cfg := viewConfig{common: common{duration: 4 * time.Second, jsonPath: t.TempDir() + "/whep.json"}, url: srv.URL,
		paths: []string{"live/ok", "live/gone"}, viewers: 2, mode: "whep", warmup: 2 * time.Second}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := runWHEP(context.Background(), cfg, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	res := readJSON[whepResult](t, cfg.jsonPath)
	if res.Viewers != 4 || res.Answered != 2 || res.Connected != 2 || res.WithFrames != 2 || res.FailedViewers != 2 {
		t.Errorf("viewers %d, answered %d, connected %d, with frames %d, failed %d; want 4, 2, 2, 2, 2",
			res.Viewers, res.Answered, res.Connected, res.WithFrames, res.FailedViewers)
	}
	if n := res.Failures["POST: 404 Not Found: no such live stream: live/gone"]; n != 2 {
		t.Errorf("failures %v: want the 404 twice", res.Failures)
	}
	// 50 frames/s sent; over a 2 s window a viewer counts 100 ± a tick.
	if res.FPS.Min < 40 || res.FPS.Max > 60 || res.WindowSeconds < 1.5 {
		t.Errorf("frames/s %+v over %.1f s, want about 50", res.FPS, res.WindowSeconds)
	}
	if res.SeqGaps > 0 {
		t.Errorf("%d sequence gaps on loopback", res.SeqGaps)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.deletes != 2 {
		t.Errorf("%d DELETEs, want 2 (one per session)", o.deletes)
	}
}

func TestViewWHEPFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "whep", "--duration", "10s", "--ramp", "5s", "--warmup", "5s"}, "--warmup 5s"},
		{[]string{"--mode", "whep", "--warmup", "-1s"}, "--warmup -1s"},
		{[]string{"--mode", "webrtc"}, "want auto, classic, ll or whep"},
	} {
		var out strings.Builder
		if code := run(context.Background(), append([]string{"view"}, c.args...), &out, &out); code != exitUsage || !strings.Contains(out.String(), c.want) {
			t.Errorf("view %v: exit %d, %q; want %d and %q", c.args, code, out.String(), exitUsage, c.want)
		}
	}
}
