package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/fount-live/fount/playlist"
)

// whipMedia is a test publisher's media: video frames (30 fps, a
// keyframe every second: H.264 access units in Annex-B, or VP9 frames,
// or AV1 temporal units) and Opus packets (20 ms).
type whipMedia struct {
	aus  [][]byte
	opus [][]byte
}

// makeWHIPMedia encodes seconds of test video (libx264 baseline,
// zerolatency, one slice a frame) and a tone (libopus in Ogg, one packet
// a page) with ffmpeg and slices them with pion's readers.
func makeWHIPMedia(t *testing.T, seconds string) whipMedia {
	return makeWHIPMediaOf(t, "h264", seconds)
}

// makeWHIPMediaOf is makeWHIPMedia with the video in vcodec: "h264"
// (640x360), or "vp9" (libvpx-vp9) or "av1" (libaom-av1) at 320x180, in
// IVF, both in their real-time modes and without look-ahead, as a WebRTC
// sender encodes.
func makeWHIPMediaOf(t *testing.T, vcodec, seconds string) whipMedia {
	t.Helper()
	requireTool(t, "ffmpeg")
	dir := t.TempDir()
	ogg := filepath.Join(dir, "a.ogg")
	size, video, venc := "640x360", filepath.Join(dir, "v.h264"), []string{"-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency",
		"-x264-params", "sliced-threads=0", "-bsf:v", "h264_mp4toannexb"}
	switch vcodec {
	case "vp9":
		size, video, venc = "320x180", filepath.Join(dir, "v.ivf"), []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-b:v", "500k"}
	case "av1":
		size, video, venc = "320x180", filepath.Join(dir, "v.ivf"), []string{"-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-b:v", "500k"}
	}
	args := []string{"-hide_banner", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=30:duration=" + seconds,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=" + seconds, "-map", "0:v"}
	args = append(append(args, venc...), "-g", "30", "-pix_fmt", "yuv420p", video,
		"-map", "1:a", "-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20", "-page_duration", "20000", ogg)
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	var m whipMedia
	f, err := os.Open(video)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if vcodec == "h264" {
		m.aus = readAnnexB(t, f)
	} else {
		r, _, err := ivfreader.NewWith(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			frame, _, err := r.ParseNextFrame()
			if errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			m.aus = append(m.aus, frame)
		}
	}
	g, err := os.Open(ogg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	or, _, err := oggreader.NewWith(g)
	if err != nil {
		t.Fatal(err)
	}
	for {
		page, _, err := or.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(page) > 0 && !strings.HasPrefix(string(page), "OpusTags") {
			m.opus = append(m.opus, page)
		}
	}
	if len(m.aus) < 30 || len(m.opus) < 50 {
		t.Fatalf("%d access units, %d Opus packets from ffmpeg", len(m.aus), len(m.opus))
	}
	return m
}

// readAnnexB slices an H.264 Annex-B stream into access units, a slice
// ending each (one slice a frame).
func readAnnexB(t *testing.T, f io.Reader) [][]byte {
	t.Helper()
	r, err := h264reader.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][]byte
	var au []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			return aus
		} else if err != nil {
			t.Fatal(err)
		}
		au = append(append(au, 0, 0, 0, 1), nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr {
			aus = append(aus, au)
			au = nil
		}
	}
}

// whipPublisher is a test WHIP publisher on pion: a video track (H.264
// unless said) and an Opus track, sent in real time.
type whipPublisher struct {
	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticSample
	offer        string
	location     string
	connected    chan struct{} // closed once ICE and DTLS are up
}

func newWHIPPublisher(t *testing.T) *whipPublisher { return newLossyWHIPPublisher(t, 0) }

// newLossyWHIPPublisher loses for good every video packet whose sequence
// number is a multiple of lose (0: none): they are dropped before pion's
// NACK responder keeps them, so no resend can bring them back.
func newLossyWHIPPublisher(t *testing.T, lose uint16) *whipPublisher {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	return newWHIPPublisherWith(t, m, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, lose)
}

// newWHIPPublisherOf is a publisher of video in codec (not H.264) whose
// offer lists VP8, then codec, then Opus, as a browser without H.264
// would.
func newWHIPPublisherOf(t *testing.T, codec webrtc.RTPCodecCapability) *whipPublisher {
	t.Helper()
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	for i, c := range []webrtc.RTPCodecCapability{{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, codec} {
		c.RTCPFeedback = fb
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: c, PayloadType: webrtc.PayloadType(96 + i)}, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	return newWHIPPublisherWith(t, m, codec, 0)
}

// newWHIPPublisherWith makes a publisher on m sending video as codec.
func newWHIPPublisherWith(t *testing.T, m *webrtc.MediaEngine, codec webrtc.RTPCodecCapability, lose uint16) *whipPublisher {
	t.Helper()
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	if lose > 0 {
		ir.Add(loseFactory(lose))
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	p := &whipPublisher{pc: pc, connected: make(chan struct{})}
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(p.connected) })
		}
	})
	p.video, err = webrtc.NewTrackLocalStaticSample(codec, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{p.video, p.audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	p.offer = pc.LocalDescription().SDP
	return p
}

// loseFactory makes the interceptor that loses video packets: added last,
// it sees each packet before the NACK responder's cache does.
type loseFactory uint16

func (f loseFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &loser{every: uint16(f)}, nil
}

type loser struct {
	interceptor.NoOp
	every uint16
}

func (l *loser) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if !strings.HasPrefix(info.MimeType, "video/") {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SequenceNumber%l.every == 0 {
			return len(payload), nil
		}
		return w.Write(h, payload, a)
	})
}

// publish POSTs the offer with key as the bearer token ("" for none);
// on 201 it applies the answer.
func (p *whipPublisher) publish(t *testing.T, o *origin, endpoint, key string) (int, string) {
	t.Helper()
	hdr := map[string]string{}
	if key != "" {
		hdr["Authorization"] = "Bearer " + key
	}
	code, answer, h := postOffer(t, o.url(endpoint), p.offer, hdr)
	if code != http.StatusCreated {
		return code, answer
	}
	if !strings.HasPrefix(h.Get("Location"), endpoint+"/") || h.Get("Content-Type") != "application/sdp" {
		t.Fatalf("201 with Location %q, Content-Type %q", h.Get("Location"), h.Get("Content-Type"))
	}
	p.location = h.Get("Location")
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("the answer: %v\n%s", err, answer)
	}
	return code, answer
}

// send writes the media in real time, from when the connection is up
// (what is written before is lost), until it is all sent or ctx ends.
func (p *whipPublisher) send(ctx context.Context, m whipMedia) {
	select {
	case <-p.connected:
	case <-ctx.Done():
		return
	}
	const frame, packet = time.Second / 30, 20 * time.Millisecond
	tick := time.NewTicker(5 * time.Millisecond) // real-time pacing of a live sender
	defer tick.Stop()
	start := time.Now()
	v, a := 0, 0
	for v < len(m.aus) || a < len(m.opus) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		el := time.Since(start)
		for ; v < len(m.aus) && time.Duration(v)*frame <= el; v++ {
			_ = p.video.WriteSample(media.Sample{Data: m.aus[v], Duration: frame})
		}
		for ; a < len(m.opus) && time.Duration(a)*packet <= el; a++ {
			_ = p.audio.WriteSample(media.Sample{Data: m.opus[a], Duration: packet})
		}
	}
}

// TestWHIP publishes H.264 and Opus over WHIP from a pion publisher to a
// fount with --auth keys: refusals first (bad SDP 400, no key 401, bad key
// 403, VP8 only 400), then the good key's publish, which loses video
// packets for good: the fMP4 playlist appears, every segment decodes
// cleanly (ffmpeg says nothing: no frame refers to a lost one) with H.264
// and Opus and starts with a keyframe, a WHEP viewer gets its video, a second publisher is refused
// 409, the API says WHIP; DELETE ends the publish.
func TestWHIP(t *testing.T) {
	requireTool(t, "ffprobe")
	m := makeWHIPMedia(t, "8")
	lockEndToEndLogged(t)
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(keys, []byte("streams:\n  - key: s3cret\n    name: cam\n  - key: other\n    name: other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := startOrigin(t, func(c *config) {
		c.WebRTCUDPAddr, c.WebRTCMaxSessions = "127.0.0.1:0", 4
		c.Auth, c.KeysFile = "keys", keys
		c.ReconnectWindow = 500 * time.Millisecond
	})
	endpoint := "/live/cam/whip"
	// The publisher loses a video packet in 150 for good (about one
	// frame in 25 here): fount drops to the next keyframe each time.
	p := newLossyWHIPPublisher(t, 150)
	for _, c := range []struct {
		name, offer, key string
		code             int
		says             string
	}{
		{"bad SDP", "v=0\r\nnonsense", "s3cret", 400, "not SDP"},
		{"VP8 only", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n", "s3cret", 400, "video VP8 offered; fount takes H.264 (packetization-mode=1), VP9 or AV1 video"},
		{"no key", p.offer, "", 401, "no stream key"},
		{"bad key", p.offer, "wrong", 403, "unknown stream key"},
		{"another stream's key", p.offer, "other", 403, "publishes live/other"},
	} {
		hdr := map[string]string{}
		if c.key != "" {
			hdr["Authorization"] = "Bearer " + c.key
		}
		if code, body, _ := postOffer(t, o.url(endpoint), c.offer, hdr); code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("%s: %d %q, want %d saying %q", c.name, code, body, c.code, c.says)
		}
	}
	posted := time.Now()
	if code, body := p.publish(t, o, endpoint, "s3cret"); code != http.StatusCreated {
		t.Fatalf("publish: %d %q", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.send(ctx, m) })
	defer func() {
		cancel()
		wg.Wait()
	}()

	// A second publisher of the same stream: 409.
	p2 := newWHIPPublisher(t)
	if code, body := p2.publish(t, o, endpoint, "s3cret"); code != http.StatusConflict {
		t.Errorf("second publisher: %d %q, want 409", code, body)
	}
	// A WHEP viewer gets the WHIP stream's video: an IDR first.
	deadline := time.Now().Add(10 * time.Second)
	for o.reg.Stream("live/cam") == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var c *whepClient
	for {
		var offer string
		c, offer = newWHEPClient(t)
		code, answer, h := postOffer(t, o.url("/live/cam/whep"), offer, nil)
		if code == http.StatusCreated {
			c.location = h.Get("Location")
			if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
				t.Fatal(err)
			}
			break
		}
		c.pc.Close()
		if code != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("WHEP of the WHIP stream: %d %q", code, answer)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if aus := c.await(t, 5, 10*time.Second); !strings.Contains(string(aus[0].nalus), "\x05") {
		t.Errorf("the WHEP viewer's first access unit has NAL types %v, want an IDR", aus[0].nalus)
	}

	// HLS: fMP4 segments of H.264 and Opus, each from a keyframe.
	segs, body := readBack(t, o, "cam", 3.9, true)
	t.Logf("%d segments (3.9 s or more) listed %s after the POST", len(segs), time.Since(posted).Round(time.Millisecond))
	for _, s := range segs {
		if s.vcodec != "h264" || s.acodec != "opus" || !s.vfirstKey || s.vpackets == 0 || s.apackets == 0 {
			t.Errorf("%s: video %q (%d, keyframe first %v), audio %q (%d)", s.uri, s.vcodec, s.vpackets, s.vfirstKey, s.acodec, s.apackets)
		}
	}
	checkGapsAtKeyframes(t, o, "/live/cam/", body)
	if !strings.Contains(o.logs.String(), "packets lost, dropping to the next keyframe") {
		t.Error("no loss logged: the test's publisher lost no packet")
	}
	if !strings.Contains(string(body), "#EXT-X-MAP") {
		t.Errorf("no EXT-X-MAP (fMP4) in the playlist:\n%s", body)
	}
	st, _ := apiCall(t, o, apiSpec(t), "GET", "/api/v1/streams/live/cam", "/api/v1/streams/{app}/{name}", "", http.StatusOK).(map[string]any)
	if pub, _ := st["publisher"].(map[string]any); pub == nil || pub["protocol"] != "whip" || !strings.HasPrefix(pub["remote"].(string), "127.0.0.1:") {
		t.Errorf("the API's publisher: %v", st["publisher"])
	}

	// DELETE ends the publish: the stream leaves the live state.
	if code := httpDelete(t, o.url(p.location)); code != http.StatusOK {
		t.Errorf("DELETE: %d", code)
	}
	deadline = time.Now().Add(10 * time.Second)
	for s := o.reg.Stream("live/cam"); s != nil && s.State() == playlist.StateLive; s = o.reg.Stream("live/cam") {
		if time.Now().After(deadline) {
			t.Fatal("the stream is still live 10 s after DELETE")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := httpDelete(t, o.url(p.location)); code != http.StatusNotFound {
		t.Errorf("DELETE again: %d, want 404", code)
	}

	// A publisher back (the stream resumes), then a shutdown while it
	// publishes: the WHIP publish ends first, and fount stops in time
	// (o.stop checks < 5 s).
	p3 := newWHIPPublisher(t)
	if code, body := p3.publish(t, o, endpoint, "s3cret"); code != http.StatusCreated {
		t.Fatalf("publishing again: %d %q", code, body)
	}
	wg.Go(func() { p3.send(ctx, m) })
	deadline = time.Now().Add(10 * time.Second)
	for s := o.reg.Stream("live/cam"); s == nil || s.State() != playlist.StateLive; s = o.reg.Stream("live/cam") {
		if time.Now().After(deadline) {
			t.Fatal("the stream is not live 10 s after publishing again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	o.stop(t)
	if logs := o.logs.String(); !strings.Contains(logs, `msg="whip publish ended" stream=live/cam`) || !strings.Contains(logs, "the server is shutting down") {
		t.Error("no WHIP publish ended by the shutdown in the log")
	}
}

// checkGapsAtKeyframes joins the playlist's init and segments into one
// file and requires every gap in the video's timestamps to end at a
// keyframe: a frame lost in the network takes the frames up to the next
// keyframe with it, never a frame that others refer to alone.
func checkGapsAtKeyframes(t *testing.T, o *origin, base string, body []byte) {
	t.Helper()
	all := initOf(t, o, base, body)
	for _, l := range strings.Split(string(body), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			code, seg, _ := httpGet(t, o.url(base+l))
			if code != http.StatusOK {
				t.Fatalf("%s: %d", l, code)
			}
			all = append(all, seg...)
		}
	}
	file := filepath.Join(t.TempDir(), "all.mp4")
	if err := os.WriteFile(file, all, 0o644); err != nil {
		t.Fatal(err)
	}
	prev, gaps := -1.0, 0
	for _, pk := range probe(t, file).Packets {
		if pk.CodecType != "video" {
			continue
		}
		dts := f64(pk.DTSTime)
		if prev >= 0 && dts-prev > 1.5/30 {
			gaps++
			if !strings.HasPrefix(pk.Flags, "K") {
				t.Errorf("video frames missing between %.3f and %.3f s, and the frame after them is not a keyframe", prev, dts)
			}
		}
		prev = dts
	}
	t.Logf("%d gaps in the video, each up to a keyframe", gaps)
}

// TestWHIPOpusInTS: with --segment-format ts, which cannot carry Opus
// here, a WHIP publish of H.264 and Opus is served video-only, and the
// log says why.
func TestWHIPOpusInTS(t *testing.T) {
	requireTool(t, "ffprobe")
	m := makeWHIPMedia(t, "3")
	lockEndToEndLogged(t)
	o := startClassic(t, func(c *config) { c.WebRTCUDPAddr = "127.0.0.1:0" })
	p := newWHIPPublisher(t)
	if code, body := p.publish(t, o, "/live/ts/whip", ""); code != http.StatusCreated {
		t.Fatalf("publish: %d %q", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.send(ctx, m) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	segs, _ := readBack(t, o, "ts", 1.9, false)
	for _, s := range segs {
		if s.vcodec != "h264" || s.acodec != "" || !s.vfirstKey {
			t.Errorf("%s: video %q (keyframe first %v), audio %q; want H.264 only", s.uri, s.vcodec, s.vfirstKey, s.acodec)
		}
	}
	if !strings.Contains(o.logs.String(), "Opus cannot go into this segment format") {
		t.Error("no word in the log of the Opus track dropped")
	}
}

// TestWHIPOff: without --webrtc-udp-addr the WHIP endpoint is a 404 that
// says what turns it on.
func TestWHIPOff(t *testing.T) {
	o := startOrigin(t, nil)
	if code, body, _ := postOffer(t, o.url("/live/x/whip"), "v=0", nil); code != http.StatusNotFound || !strings.Contains(body, "WHIP) is off") {
		t.Errorf("WebRTC off: %d %q", code, body)
	}
}
