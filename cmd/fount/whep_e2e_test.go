package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/fount-live/fount/playlist/playauth"
)

// whepClient is a test WHEP viewer on pion: it offers to receive video
// and audio and collects the H.264 access units it gets.
type whepClient struct {
	pc       *webrtc.PeerConnection
	location string
	answer   string

	mu     sync.Mutex
	aus    []whepAU
	got    chan struct{} // a token per access unit
	posted time.Time
}

type whepAU struct {
	at    time.Time
	ts    uint32
	nalus []byte // NAL unit types in order
}

// newWHEPClient makes the viewer's PeerConnection and offer (gathered).
func newWHEPClient(t *testing.T) (*whepClient, string) {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &whepClient{pc: pc, got: make(chan struct{}, 4096)}
	t.Cleanup(func() { pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		var dep codecs.H264Packet
		var au []byte
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			nal, err := dep.Unmarshal(p.Payload)
			if err != nil {
				continue
			}
			au = append(au, nal...)
			if !p.Marker {
				continue
			}
			c.mu.Lock()
			c.aus = append(c.aus, whepAU{at: time.Now(), ts: p.Timestamp, nalus: annexBTypes(au)})
			c.mu.Unlock()
			au = au[:0]
			select {
			case c.got <- struct{}{}:
			default:
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return c, pc.LocalDescription().SDP
}

// annexBTypes lists the NAL unit types of an Annex-B access unit.
func annexBTypes(au []byte) []byte {
	var out []byte
	for _, n := range bytes.Split(au, []byte{0, 0, 1}) {
		if n = bytes.TrimRight(n, "\x00"); len(n) > 0 {
			out = append(out, n[0]&0x1f)
		}
	}
	return out
}

// postOffer POSTs an SDP offer to url and returns the answer's status,
// body and header.
func postOffer(t *testing.T, url, offer string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(offer))
	req.Header.Set("Content-Type", "application/sdp")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func httpDelete(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// connect POSTs the client's offer and applies the answer.
func (c *whepClient) connect(t *testing.T, o *origin, path, offer string, hdr map[string]string) {
	t.Helper()
	c.posted = time.Now()
	code, answer, h := postOffer(t, o.url(path), offer, hdr)
	if code != http.StatusCreated || h.Get("Content-Type") != "application/sdp" || !strings.HasPrefix(h.Get("Location"), path+"/") {
		t.Fatalf("POST %s: %d %q Location %q: %s", path, code, h.Get("Content-Type"), h.Get("Location"), answer)
	}
	c.location, c.answer = h.Get("Location"), answer
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("the answer: %v\n%s", err, answer)
	}
}

// await waits until the client has n access units.
func (c *whepClient) await(t *testing.T, n int, timeout time.Duration) []whepAU {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		if len(c.aus) >= n {
			aus := append([]whepAU(nil), c.aus...)
			c.mu.Unlock()
			return aus
		}
		have := len(c.aus)
		c.mu.Unlock()
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("%d access units after %s, want %d", have, timeout, n)
		}
	}
}

// webrtcSessions reads fount_webrtc_sessions.
func webrtcSessions(t *testing.T, o *origin) float64 {
	v, ok := value(scrape(t, o), "fount_webrtc_sessions", nil)
	if !ok {
		t.Fatal("no fount_webrtc_sessions in /metrics")
	}
	return v
}

// TestWHEP plays a live RTMP push over WebRTC with a pion client: 201,
// the answer and a Location; the first access unit is an IDR with SPS and
// PPS; ~30 frames a second; DELETE ends the session. Around it, the
// refusals: bad offer 400, no stream 404, play tokens, the session
// limit 503, and WebRTC off.
func TestWHEP(t *testing.T) {
	src := source(t)
	lockEndToEndLogged(t)
	o := startOrigin(t, func(c *config) {
		c.WebRTCUDPAddr, c.WebRTCMaxSessions = "127.0.0.1:0", 2
		c.ReconnectWindow = time.Second
		c.PlayAuth, c.PlaySecret = "token", testPlaySecret
	})
	ctx, cancel := context.WithCancel(context.Background())
	push := o.push(ctx, t, "rt", realtime(src), "-c", "copy")
	defer func() {
		cancel()
		push.Wait()
	}()
	signer, err := playauth.NewSigner([]byte(testPlaySecret))
	if err != nil {
		t.Fatal(err)
	}
	good := signer.Query("live/rt", time.Now().Add(time.Hour))
	endpoint := "/live/rt/whep"

	// No such stream, with a valid token for it.
	if code, body, _ := postOffer(t, o.url("/live/nosuch/whep?"+signer.Query("live/nosuch", time.Now().Add(time.Hour))), "v=0", nil); code != http.StatusNotFound || !strings.Contains(body, "no such live stream") {
		t.Errorf("no stream: %d %q", code, body)
	}
	c, offer := newWHEPClient(t)
	// Await the stream's video configuration: 404 until then.
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body, _ := postOffer(t, o.url(endpoint+"?"+good), "not sdp", nil)
		if code == http.StatusBadRequest {
			break
		}
		if code != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("awaiting the stream: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Play tokens: none, bad, good as a bearer token.
	if code, body, _ := postOffer(t, o.url(endpoint), offer, nil); code != http.StatusForbidden {
		t.Errorf("no token: %d %q", code, body)
	}
	bad := signer.Query("live/other", time.Now().Add(time.Hour))
	if code, body, _ := postOffer(t, o.url(endpoint), offer, map[string]string{"Authorization": "Bearer " + bad}); code != http.StatusForbidden {
		t.Errorf("another stream's token: %d %q", code, body)
	}
	if code, body, _ := postOffer(t, o.url(endpoint), "v=0\r\n", map[string]string{"Authorization": "Bearer " + good}); code != http.StatusBadRequest {
		t.Errorf("bad SDP with a good bearer token: %d %q, want 400", code, body)
	}

	c.connect(t, o, endpoint, offer, map[string]string{"Authorization": "Bearer " + good})
	// The stream is High profile with AAC: H.264 High is answered, the
	// audio section refused (port 0).
	if !strings.Contains(c.answer, "profile-level-id=64") || !strings.Contains(c.answer, "m=audio 0 ") {
		t.Errorf("answer without H.264 High, or with audio:\n%s", c.answer)
	}
	aus := c.await(t, 1, 10*time.Second)
	first := time.Since(c.posted)
	if nt := aus[0].nalus; !bytes.Contains(nt, []byte{7}) || !bytes.Contains(nt, []byte{8}) || !bytes.Contains(nt, []byte{5}) {
		t.Errorf("first access unit has NAL types %v, want SPS (7), PPS (8) and IDR (5)", nt)
	}
	// Live frames, a few seconds of them (the kept GOP's burst first).
	n0 := len(c.await(t, 1, time.Second))
	start := time.Now()
	time.Sleep(3 * time.Second) // frames arrive in real time: nothing to await but the clock
	aus = c.await(t, n0, time.Second)
	rate := float64(len(aus)-n0) / time.Since(start).Seconds()
	t.Logf("POST to first access unit %s; %d access units, %.1f/s over 3 s", first.Round(time.Millisecond), len(aus), rate)
	if rate < 25 || rate > 35 {
		t.Errorf("%.1f access units a second, want ~30", rate)
	}
	if v := webrtcSessions(t, o); v != 1 {
		t.Errorf("fount_webrtc_sessions %v, want 1", v)
	}
	// The API (checked against the OpenAPI description): one viewer,
	// H.264, no audio (AAC), B-frames (the test source has them).
	st, _ := apiCall(t, o, apiSpec(t), "GET", "/api/v1/streams/live/rt", "/api/v1/streams/{app}/{name}", "", http.StatusOK).(map[string]any)
	if w, _ := st["webrtc"].(map[string]any); w == nil || w["whep_path"] != endpoint || w["viewers"] != 1.0 || w["video"] != true || w["audio"] != false || w["b_frames"] != true {
		t.Errorf("the API's webrtc: %v", st["webrtc"])
	}

	// A second viewer joins a watched stream: it starts at once, on the
	// kept GOP's keyframe. Then the session limit (2): a third is refused.
	c2, offer2 := newWHEPClient(t)
	c2.connect(t, o, endpoint, offer2, map[string]string{"Authorization": "Bearer " + good})
	aus2 := c2.await(t, 1, 10*time.Second)
	t.Logf("second viewer: POST to first access unit %s", time.Since(c2.posted).Round(time.Millisecond))
	if nt := aus2[0].nalus; !bytes.Contains(nt, []byte{5}) || !bytes.Contains(nt, []byte{7}) {
		t.Errorf("second viewer's first access unit has NAL types %v, want an IDR with its SPS", nt)
	}
	_, offer3 := newWHEPClient(t)
	if code, body, h := postOffer(t, o.url(endpoint+"?"+good), offer3, nil); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("third session: %d %q Retry-After %q, want 503 with one", code, body, h.Get("Retry-After"))
	}
	// DELETE ends the session.
	if code := httpDelete(t, o.url(c.location)); code != http.StatusOK {
		t.Errorf("DELETE: %d", code)
	}
	if v := webrtcSessions(t, o); v != 1 {
		t.Errorf("fount_webrtc_sessions %v after DELETE, want 1 (the second viewer's)", v)
	}
	if code := httpDelete(t, o.url(c.location)); code != http.StatusNotFound {
		t.Errorf("DELETE again: %d, want 404", code)
	}

	// The stream ends (the publisher leaves, the reconnect window
	// passes): the second viewer's session closes.
	cancel()
	push.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for webrtcSessions(t, o) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a session outlived its stream by 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := httpDelete(t, o.url(c2.location)); code != http.StatusNotFound {
		t.Errorf("DELETE of a session its stream's end closed: %d, want 404", code)
	}
}

// TestWHEPOff: without --webrtc-udp-addr the endpoint is a 404 that says
// why, and the preflight allows WHEP's methods and headers.
func TestWHEPOff(t *testing.T) {
	o := startOrigin(t, nil)
	code, body, _ := postOffer(t, o.url("/live/x/whep"), "v=0", nil)
	if code != http.StatusNotFound || !strings.Contains(body, "WebRTC playback is off") {
		t.Errorf("WebRTC off: %d %q", code, body)
	}
	req, _ := http.NewRequest(http.MethodOptions, o.url("/live/x/whep"), nil)
	req.Header.Set("Origin", "https://site.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", resp.StatusCode, h)
	}
}
