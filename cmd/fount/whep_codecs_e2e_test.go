package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"

	"github.com/fount-live/fount/ingest/ertmptest"
)

// rtpViewer is a test WHEP viewer on pion that takes any video codec
// pion knows: it writes the VP9 or AV1 frames it gets to an IVF file
// (pion's ivfwriter) for ffmpeg to decode, and notes each frame's RTP
// time and first packet.
type rtpViewer struct {
	pc       *webrtc.PeerConnection
	location string
	answer   string
	file     string

	mu     sync.Mutex
	mime   string // the video track's codec
	ivf    *ivfwriter.IVFWriter
	ivfErr error
	frames []rtpFrame // whole frames
	cur    rtpFrame
	start  bool // the next packet starts a frame
	audio  int  // audio packets
	got    chan struct{}
}

type rtpFrame struct {
	ts    uint32
	first []byte // the frame's first packet's payload
}

func newRTPViewer(t *testing.T, file string) (*rtpViewer, string) {
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
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &rtpViewer{pc: pc, file: file, start: true, got: make(chan struct{}, 1)}
	t.Cleanup(func() { v.close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		if video {
			v.mu.Lock()
			v.mime = tr.Codec().MimeType
			v.ivf, v.ivfErr = ivfwriter.New(v.file, ivfwriter.WithCodec(v.mime), ivfwriter.WithFrameRate(1, 90000), ivfwriter.WithDirectPTS())
			v.mu.Unlock()
		}
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			v.mu.Lock()
			switch {
			case !video:
				v.audio++
			case v.ivf != nil:
				if v.start {
					v.cur = rtpFrame{ts: p.Timestamp, first: append([]byte(nil), p.Payload...)}
				}
				v.start = p.Marker
				if err := v.ivf.WriteRTP(p); err != nil && v.ivfErr == nil {
					v.ivfErr = err
				}
				if p.Marker { // counted as the IVF file has it: whole
					v.frames = append(v.frames, v.cur)
				}
			}
			v.mu.Unlock()
			select {
			case v.got <- struct{}{}:
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
	return v, pc.LocalDescription().SDP
}

func (v *rtpViewer) connect(t *testing.T, o *origin, path, offer string) {
	t.Helper()
	code, answer, h := postOffer(t, o.url(path), offer, nil)
	if code != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, code, answer)
	}
	v.location, v.answer = h.Get("Location"), answer
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("the answer: %v\n%s", err, answer)
	}
}

// await waits until the viewer has n video frames.
func (v *rtpViewer) await(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		v.mu.Lock()
		have := len(v.frames)
		v.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-v.got:
		case <-deadline:
			t.Fatalf("%d video frames after %s, want %d", have, timeout, n)
		}
	}
}

// close ends the connection and the IVF file; it returns the frames.
func (v *rtpViewer) close() ([]rtpFrame, int, error) {
	_ = v.pc.Close()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ivf != nil {
		if err := v.ivf.Close(); err != nil && v.ivfErr == nil {
			v.ivfErr = err
		}
		v.ivf = nil
	}
	return v.frames, v.audio, v.ivfErr
}

// offerOnlyH264 is the offer of a pion viewer that takes H.264 only.
func offerOnlyH264(t *testing.T) string {
	t.Helper()
	m := &webrtc.MediaEngine{}
	h264 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: h264, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// TestWHEPVP9AV1 pushes VP9 + Opus, AV1 + AAC and HEVC over Enhanced
// RTMP (ingest/ertmptest, clips from Debian's ffmpeg) and plays the first
// two over WHEP with pion viewers: the answer has the stream's codec, the
// first frame is a keyframe, RTP times follow the frames' (3000 ticks at
// 30 fps), the Opus audio arrives, the API and the log name the codec,
// and ffmpeg decodes every frame received (written to IVF by pion's
// ivfwriter) without an error. An offer without the codec is 400 naming
// it; the HEVC stream is 404 naming HEVC.
func TestWHEPVP9AV1(t *testing.T) {
	lockEndToEndLogged(t)
	requireTool(t, "ffprobe")
	dir := t.TempDir()
	const seconds = 4
	clip := func(v, a string, d time.Duration) []ertmptest.Track {
		return loadClip(t, ertmptest.MakeClip(t, dir, ertmptest.ClipSpec{Video: v, Audio: a, Width: 320, Height: 180, FPS: 30, GOP: 30, Duration: d, VideoKbps: 300, AudioKbps: 64}))
	}
	start := time.Now()
	clips := map[string][]ertmptest.Track{"vp9": clip("vp09", "Opus", seconds*time.Second), "av1": clip("av01", "mp4a", seconds*time.Second), "hevc": clip("hvc1", "", time.Second)}
	t.Logf("clips encoded in %s", time.Since(start).Round(time.Millisecond))
	o := startOrigin(t, func(c *config) {
		c.WebRTCUDPAddr = "127.0.0.1:0"
		c.ReconnectWindow = 500 * time.Millisecond
	})
	var wg sync.WaitGroup
	pushes := map[string]*pushed{}
	for name, tracks := range clips {
		r := &pushed{}
		pushes[name] = r
		wg.Go(func() { *r = pushWatch(o, name, ertmptest.ExHeader, tracks, ertmptest.Options{}, nil) })
	}
	defer wg.Wait()

	type want struct {
		name, mime, format string
		audio              bool
	}
	cases := []want{{"vp9", "video/VP9", `video="VP9 profile-id=0"`, true}, {"av1", "video/AV1", `video="AV1 profile=0"`, false}}
	viewers := map[string]*rtpViewer{}
	for _, c := range cases {
		endpoint := "/live/" + c.name + "/whep"
		awaitWHEP(t, o, endpoint)
		if code, body, _ := postOffer(t, o.url(endpoint), offerOnlyH264(t), nil); code != http.StatusBadRequest || !strings.Contains(body, "this offer has no "+strings.ToUpper(c.name)) {
			t.Errorf("%s: an H.264-only offer: %d %q, want 400 naming the codec", c.name, code, body)
		}
		v, offer := newRTPViewer(t, filepath.Join(dir, c.name+".ivf"))
		v.connect(t, o, endpoint, offer)
		viewers[c.name] = v
	}
	for _, c := range cases {
		v := viewers[c.name]
		v.await(t, 1, 10*time.Second)
		// The API while the viewer watches (checked against the OpenAPI
		// description).
		st, _ := apiCall(t, o, apiSpec(t), "GET", "/api/v1/streams/live/"+c.name, "/api/v1/streams/{app}/{name}", "", http.StatusOK).(map[string]any)
		if w, _ := st["webrtc"].(map[string]any); w == nil || w["video"] != true || w["video_codec"] != strings.ToUpper(c.name) || w["audio"] != c.audio {
			t.Errorf("%s: the API's webrtc: %v", c.name, st["webrtc"])
		}
	}
	// HEVC: 404 once its configuration is in, naming the codec.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, _ := postOffer(t, o.url("/live/hevc/whep"), offerOnlyH264(t), nil)
		if code == http.StatusNotFound && strings.Contains(body, "video is HEVC") {
			t.Logf("HEVC: %d %s", code, strings.TrimSpace(body))
			break
		}
		if code != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("HEVC stream: %d %q, want 404 naming HEVC", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	for name, r := range pushes {
		if r.err != nil {
			t.Errorf("push %s: %v", name, r.err)
		}
	}
	// The sessions end with their streams (the publishers left, the
	// reconnect window passed): fount has sent every frame.
	deadline = time.Now().Add(10 * time.Second)
	for webrtcSessions(t, o) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("sessions outlived their streams by 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs := o.logs.String()
	for _, c := range cases {
		v := viewers[c.name]
		frames, audio, err := v.close()
		if err != nil {
			t.Errorf("%s: writing IVF: %v", c.name, err)
		}
		if !strings.Contains(v.answer, strings.ToUpper(c.name)+"/90000") || strings.Contains(v.answer, "H264") {
			t.Errorf("%s: the answer's video:\n%s", c.name, v.answer)
		}
		if v.mime != c.mime {
			t.Errorf("%s: track codec %q", c.name, v.mime)
		}
		if c.audio && audio == 0 || !c.audio && audio != 0 {
			t.Errorf("%s: %d audio packets, want some: %v", c.name, audio, c.audio)
		}
		if len(frames) < 90 {
			t.Fatalf("%s: %d frames, want most of %d", c.name, len(frames), seconds*30)
		}
		// The first frame is a keyframe: VP9's descriptor says it is not
		// predicted and carries the picture size; AV1's first packet
		// starts a coded video sequence.
		switch c.name {
		case "vp9":
			var d codecs.VP9Packet
			if _, err := d.Unmarshal(frames[0].first); err != nil || d.P || !d.V || len(d.Width) != 1 || d.Width[0] != 320 || d.Height[0] != 180 {
				t.Errorf("vp9: first frame's descriptor %+v %v, want a keyframe of 320x180", d, err)
			}
		case "av1":
			if frames[0].first[0]&0x08 == 0 {
				t.Errorf("av1: first frame's first packet %x: no N bit", frames[0].first[:4])
			}
		}
		// RTP times: the live frames' follow their timestamps (the kept
		// GOP's burst goes first, 1 ms apart).
		tail := frames[len(frames)-60:]
		step := float64(tail[len(tail)-1].ts-tail[0].ts) / float64(len(tail)-1)
		if step < 2950 || step > 3050 {
			t.Errorf("%s: %.0f RTP ticks a frame over the last 60, want 3000", c.name, step)
		}
		// ffmpeg decodes every frame.
		out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
			"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json", v.file).CombinedOutput()
		var probe struct {
			Streams []struct {
				Codec  string `json:"codec_name"`
				Width  int    `json:"width"`
				Height int    `json:"height"`
				Frames string `json:"nb_read_frames"`
			} `json:"streams"`
		}
		if jerr := json.Unmarshal(out, &probe); err != nil || jerr != nil || len(probe.Streams) != 1 {
			t.Errorf("%s: ffprobe: %v %v: %s", c.name, err, jerr, out)
			continue
		}
		p := probe.Streams[0]
		if p.Codec != c.name || p.Width != 320 || p.Height != 180 || p.Frames != strconv.Itoa(len(frames)) {
			t.Errorf("%s: ffmpeg decoded %+v, want %s 320x180, %d frames", c.name, p, c.name, len(frames))
		}
		line := logLine(logs, "webrtc viewer session answered", "live/"+c.name)
		if !strings.Contains(line, c.format) {
			t.Errorf("%s: log line %q, want %s", c.name, line, c.format)
		}
		t.Logf("%s: %d frames, %d audio packets, %.0f RTP ticks a frame; ffmpeg decoded %s %dx%d, %s frames; %s", c.name, len(frames), audio, step, p.Codec, p.Width, p.Height, p.Frames, line)
	}
}
