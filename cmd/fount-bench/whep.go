package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/fount-live/fount/playlist/playauth"
)

// whepViewer is one WebRTC viewer's counters: RTP is read and dropped,
// never depacketized or decoded, so that the tool costs little per
// viewer and what it measures is the origin's sending.
type whepViewer struct {
	frames  atomic.Uint64 // video RTP packets with the marker bit: access units
	packets atomic.Uint64 // video and audio
	bytes   atomic.Uint64
	gaps    atomic.Uint64 // video sequence numbers skipped (lost or reordered)
	first   atomic.Int64  // Unix ns of the first video frame; 0 before
	posted  time.Time
	// at the start of the measured window
	frames0 uint64
}

// whepStats is shared by all WHEP viewers.
type whepStats struct {
	answered, connected atomic.Int64
	answer, firstFrame  hist // POST → 201; POST → first video frame

	mu      sync.Mutex
	reasons map[string]uint64
}

func (s *whepStats) failure(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reasons == nil {
		s.reasons = make(map[string]uint64)
	}
	s.reasons[reason]++
}

// rateSummary is frames/s across viewers.
type rateSummary struct {
	Min float64 `json:"min"`
	P50 float64 `json:"p50"`
	Max float64 `json:"max"`
}

// whepResult is the JSON report of a --mode whep run.
type whepResult struct {
	Command       string            `json:"command"`
	URL           string            `json:"url"`
	Streams       []string          `json:"streams"`
	ViewersPer    int               `json:"viewers_per_stream"`
	Viewers       int               `json:"viewers"`
	Mode          string            `json:"mode"`
	Seconds       float64           `json:"seconds"`
	WindowSeconds float64           `json:"window_seconds"`
	Answered      int64             `json:"answered"`
	Connected     int64             `json:"connected"`
	WithFrames    int               `json:"with_frames"`
	FailedViewers int               `json:"viewers_failed"`
	Failures      map[string]uint64 `json:"failures,omitempty"`
	FPS           rateSummary       `json:"frames_per_s"`
	WindowFrames  uint64            `json:"window_frames"`
	Packets       uint64            `json:"packets"`
	Bytes         uint64            `json:"bytes"`
	Mbps          float64           `json:"mbit_per_s"`
	SeqGaps       uint64            `json:"sequence_gaps"`
	Answer        summary           `json:"answer"`
	FirstFrame    summary           `json:"first_frame"`
	ToolCPU       float64           `json:"tool_cpu_pct"`
}

// whepAPI builds the pion API every viewer shares (pion copies the media
// engine per PeerConnection). Host candidates only, UDP over IPv4, no
// mDNS: one UDP socket per viewer. Against a loopback target only the
// loopback interfaces are gathered, as fount answers with a loopback
// candidate there.
func whepAPI(loopback bool) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("pion codecs: %w", err)
	}
	// The default interceptors (NACKs, receiver reports, TWCC feedback), as
	// a browser sends them: the origin's cost of a viewer includes its RTCP.
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, fmt.Errorf("pion interceptors: %w", err)
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if loopback {
		se.SetIncludeLoopbackCandidate(true)
		lo := map[string]bool{}
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("network interfaces: %w", err)
		}
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback != 0 {
				lo[i.Name] = true
			}
		}
		se.SetInterfaceFilter(func(name string) bool { return lo[name] })
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

func runWHEP(ctx context.Context, cfg viewConfig, stdout, stderr io.Writer) error {
	base := strings.TrimRight(cfg.url, "/")
	paths := cfg.paths
	if len(paths) == 0 {
		for i := range cfg.streams {
			paths = append(paths, fmt.Sprintf("%s/%s-%d", cfg.app, cfg.prefix, i))
		}
	}
	total := len(paths) * cfg.viewers
	u, _ := url.Parse(base) // validated
	api, err := whepAPI(isLoopback(u.Hostname()))
	if err != nil {
		return err
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	if newTransport, err := viewerTransport(tr, base, cfg.caFile, cfg.http1); err != nil {
		return err
	} else if newTransport != nil {
		t := newTransport()
		defer t.CloseIdleConnections()
		client.Transport = t
	}
	var signer *playauth.Signer
	if cfg.secret != "" {
		signer, _ = playauth.NewSigner([]byte(cfg.secret)) // validated
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	st := &whepStats{}
	viewers := make([]*whepViewer, total)
	for i := range viewers {
		viewers[i] = &whepViewer{}
	}
	started := time.Now()
	// The measured window: from --warmup after the ramp to the end, so
	// that the kept GOP each viewer gets in a burst at its start is out.
	windowAt := started.Add(cfg.ramp + cfg.warmup)
	var (
		wg               sync.WaitGroup
		window0, window1 time.Time
		cpu0, cpu1       time.Duration
		windowEnd        = make(chan struct{})
	)
	wg.Add(1)
	go func() { // the window's clock: snapshots at its two ends
		defer wg.Done()
		defer close(windowEnd)
		if !sleepCtx(runCtx, time.Until(windowAt)) {
			return
		}
		window0, cpu0 = time.Now(), processCPU()
		for _, v := range viewers {
			v.frames0 = v.frames.Load()
		}
		<-runCtx.Done()
		window1, cpu1 = time.Now(), processCPU()
	}()
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepCtx(runCtx, startOffset(i, total, cfg.ramp)) {
				return
			}
			path := strings.Trim(paths[i%len(paths)], "/")
			endpoint := base + "/" + path + "/whep"
			if signer != nil {
				endpoint += "?" + signer.Query(path, started.Add(2*time.Hour+time.Duration(i)*time.Second))
			}
			if err := watchWHEP(runCtx, api, client, endpoint, viewers[i], st, windowEnd); err != nil {
				st.failure(err.Error())
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "interrupted: reporting what ran")
	}

	res := whepResult{
		Command: "view", URL: cfg.url, Streams: paths, ViewersPer: cfg.viewers, Viewers: total, Mode: "whep",
		Seconds: elapsed.Seconds(), Answered: st.answered.Load(), Connected: st.connected.Load(),
		Failures: st.reasons, Answer: st.answer.summary(), FirstFrame: st.firstFrame.summary(),
	}
	var rates []float64
	for _, v := range viewers {
		res.Packets += v.packets.Load()
		res.Bytes += v.bytes.Load()
		res.SeqGaps += v.gaps.Load()
		if v.first.Load() == 0 {
			continue
		}
		res.WithFrames++
		if !window1.IsZero() {
			f := v.frames.Load() - v.frames0
			res.WindowFrames += f
			rates = append(rates, float64(f)/window1.Sub(window0).Seconds())
		}
	}
	res.FailedViewers = total - res.WithFrames
	res.Mbps = float64(res.Bytes) * 8 / elapsed.Seconds() / 1e6
	if !window1.IsZero() {
		res.WindowSeconds = window1.Sub(window0).Seconds()
		res.ToolCPU = float64(cpu1-cpu0) / float64(window1.Sub(window0)) * 100
		res.FPS = rateOf(rates)
	} else {
		fmt.Fprintln(stderr, "the run ended before the measured window (--ramp + --warmup) began: no frame rates")
	}
	printWHEP(stdout, res)
	if err := writeJSON(cfg.jsonPath, res); err != nil {
		return err
	}
	if res.WithFrames == 0 {
		return errors.New("no WHEP viewer got a frame")
	}
	if cfg.strict && res.FailedViewers > 0 {
		return errors.New("--strict: viewers failed")
	}
	return nil
}

// watchWHEP runs one viewer until ctx ends: offer, POST, answer, then
// count what arrives. It ends its session with a DELETE. An error says
// why the viewer never got a frame.
func watchWHEP(ctx context.Context, api *webrtc.API, client *http.Client, endpoint string, v *whepViewer, st *whepStats, windowEnd <-chan struct{}) error {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("peer connection: %w", err)
	}
	// Track readers end when the PeerConnection closes; wait for them.
	var (
		readers sync.WaitGroup
		mu      sync.Mutex
		closed  bool
	)
	defer func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		pc.Close()
		readers.Wait()
	}()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("transceiver: %w", err)
		}
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected); st.connected.Add(1) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		mu.Lock()
		if closed {
			mu.Unlock()
			return
		}
		readers.Add(1)
		mu.Unlock()
		defer readers.Done()
		readRTP(tr, tr.Kind() == webrtc.RTPCodecTypeVideo, v, st)
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("offer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return errors.New("ICE gathering: run ended")
	}
	location, answer, err := postWHEP(ctx, client, endpoint, pc.LocalDescription().SDP, v)
	if err != nil {
		return err
	}
	st.answered.Add(1)
	st.answer.record(time.Since(v.posted))
	// End the session at the origin whatever happens next, as a player
	// that leaves does; after the window, so it costs nothing in it.
	defer func() {
		<-windowEnd
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(dctx, http.MethodDelete, location, nil)
		if err == nil {
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		return errors.New("ICE/DTLS: not connected by the end of the run")
	}
	<-ctx.Done()
	if v.first.Load() == 0 {
		return errors.New("connected, but no video frame")
	}
	return nil
}

// postWHEP POSTs the offer and returns the session's URL and the answer.
func postWHEP(ctx context.Context, client *http.Client, endpoint, offer string, v *whepViewer) (string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return "", "", fmt.Errorf("POST: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	v.posted = time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", errors.New("POST: run ended")
		}
		return "", "", fmt.Errorf("POST: %w", errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", "", fmt.Errorf("POST: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("POST: %s: %s", resp.Status, strings.TrimSpace(firstLine(string(body))))
	}
	loc, err := resp.Location()
	if err != nil {
		return "", "", fmt.Errorf("POST: 201 without a usable Location: %w", err)
	}
	return loc.String(), string(body), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// readRTP counts one track's packets until the track ends. It reads raw
// packets (after SRTP and the interceptors) and looks at the header only.
func readRTP(tr *webrtc.TrackRemote, video bool, v *whepViewer, st *whepStats) {
	buf := make([]byte, 1500)
	var last uint16
	seen := false
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		v.packets.Add(1)
		v.bytes.Add(uint64(n))
		if !video || n < 12 {
			continue
		}
		seq := binary.BigEndian.Uint16(buf[2:4])
		if d := seq - last - 1; seen && d != 0 && d < 1<<15 {
			v.gaps.Add(uint64(d))
		}
		if !seen || seq-last < 1<<15 {
			last = seq
		}
		seen = true
		if buf[1]&0x80 != 0 { // marker: the access unit's last packet
			if v.frames.Add(1) == 1 {
				v.first.Store(time.Now().UnixNano())
				st.firstFrame.record(time.Since(v.posted))
			}
		}
	}
}

// rateOf summarizes per-viewer rates.
func rateOf(rates []float64) rateSummary {
	if len(rates) == 0 {
		return rateSummary{}
	}
	r := slices.Clone(rates)
	slices.Sort(r)
	return rateSummary{Min: r[0], P50: r[(len(r)-1)/2], Max: r[len(r)-1]}
}

// processCPU is this process's CPU time so far (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func printWHEP(w io.Writer, r whepResult) {
	fmt.Fprintf(w, "view  %s  %d streams x %d viewers  mode whep  %.1f s (window %.1f s)\n",
		r.URL, len(r.Streams), r.ViewersPer, r.Seconds, r.WindowSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "viewers\t%d: %d answered, %d connected, %d with frames, %d failed\n",
		r.Viewers, r.Answered, r.Connected, r.WithFrames, r.FailedViewers)
	fmt.Fprintf(tw, "frames/s per viewer\tmin %.1f  median %.1f  max %.1f  (window frames %d)\n", r.FPS.Min, r.FPS.P50, r.FPS.Max, r.WindowFrames)
	fmt.Fprintf(tw, "received\t%d packets, %.1f MB, %.1f Mbit/s, %d sequence gaps\n", r.Packets, float64(r.Bytes)/1e6, r.Mbps, r.SeqGaps)
	fmt.Fprintf(tw, "POST → answer ms\tp50 %.1f  p99 %.1f  max %.1f\n", r.Answer.P50, r.Answer.P99, r.Answer.Max)
	fmt.Fprintf(tw, "POST → first frame ms\tp50 %.1f  p99 %.1f  max %.1f\n", r.FirstFrame.P50, r.FirstFrame.P99, r.FirstFrame.Max)
	fmt.Fprintf(tw, "load tool CPU\t%.1f %% of a core over the window\n", r.ToolCPU)
	printFailures(tw, r.Failures)
	tw.Flush()
}
