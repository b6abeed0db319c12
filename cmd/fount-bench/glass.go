package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// glassConfig is what `fount-bench glass` runs.
type glassConfig struct {
	rtmpURL     string
	hlsURL      string
	whepURL     string // played over WebRTC instead of hlsURL, if set
	width       int
	height      int
	fps         int
	gop         int
	join        time.Duration
	warmup      time.Duration
	duration    time.Duration
	browserDir  string
	jsonPath    string
	allowRemote bool
	ffmpeg      string
	node        string
	hlsConfig   string
}

func newGlassCmd() *cobra.Command {
	cfg := glassConfig{}
	cmd := &cobra.Command{
		Use:   "glass",
		Short: "Measure glass-to-glass latency: stamped frames in by RTMP, read back in hls.js (or over WebRTC, --whep)",
		Long: `Measure glass-to-glass latency of any RTMP-in, HLS-out server.

A generator writes raw grey frames into ffmpeg's stdin at --fps, each with
the wall-clock time (Unix ms) at which it is written drawn as black and
white blocks in the top of the picture. ffmpeg encodes them (libx264
-tune zerolatency, a GOP of --gop frames, plus an AAC sine track) and
pushes RTMP to --rtmp. Once --hls answers and --join has passed since the push started, headless chromium (Debian's,
through playwright-core) plays --hls with hls.js defaults (lowLatencyMode is
on by default) and, on every presented frame (requestVideoFrameCallback),
draws it to a canvas, decodes the stamp and records Date.now() minus it.
With --whep the browser plays the WHEP endpoint over WebRTC instead
(once --hls answers, which says the stream is up). Encoder, server,
player and renderer share this machine's clock.

The report gives, over the --duration after --warmup (counted from the
first presented frame): the latency p50, p95, min and max, its median per
10 s (drift), stalls ('waiting' events and hls.js bufferStalledError) with
their total, gaps of over 100 ms between presented frames and the longest
gap, with --whep Chromium's own freeze and pause counts (inbound-rtp
getStats), and every hls.js error and warning logged before the end of
the warm-up (e.g. bufferSeekOverHole at start).`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := cfg.validate(); err != nil {
				return usageError{err}
			}
			return runGlass(c.Context(), cfg, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.rtmpURL, "rtmp", "rtmp://127.0.0.1:1935/live/glass", "RTMP URL to publish to")
	fs.StringVar(&cfg.hlsURL, "hls", "http://127.0.0.1:8080/live/glass/index.m3u8", "HLS playlist URL to play")
	fs.StringVar(&cfg.whepURL, "whep", "", "WHEP endpoint (e.g. http://127.0.0.1:8080/live/glass/whep) to play over WebRTC instead of --hls, once --hls answers (docs/webrtc.md)")
	fs.IntVar(&cfg.width, "width", 640, "picture width")
	fs.IntVar(&cfg.height, "height", 360, "picture height")
	fs.IntVar(&cfg.fps, "fps", 30, "frames per second")
	fs.IntVar(&cfg.gop, "gop", 60, "keyframe interval in frames")
	fs.DurationVar(&cfg.join, "join", 10*time.Second, "start the player this long after the push starts (or once the playlist answers, if later)")
	fs.DurationVar(&cfg.warmup, "warmup", 10*time.Second, "playback not measured after the first presented frame")
	fs.DurationVar(&cfg.duration, "duration", 60*time.Second, "playback measured after the warm-up")
	fs.StringVar(&cfg.browserDir, "browser-dir", "testdata/browser", "directory holding glass.mjs and its node_modules")
	fs.StringVar(&cfg.jsonPath, "json", "", "also write the results (with every sample) as JSON to this file")
	fs.BoolVar(&cfg.allowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fs.StringVar(&cfg.ffmpeg, "ffmpeg", "ffmpeg", "ffmpeg binary")
	fs.StringVar(&cfg.node, "node", "node", "node binary")
	fs.StringVar(&cfg.hlsConfig, "hls-config", "{}", "hls.js config as JSON (default: hls.js defaults)")
	return cmd
}

func (c *glassConfig) validate() error {
	var errs []error
	if err := checkStampSize(c.width, c.height); err != nil {
		errs = append(errs, err)
	}
	if c.fps < 1 || c.fps > 120 {
		errs = append(errs, fmt.Errorf("--fps %d: want 1..120", c.fps))
	}
	if c.gop < 1 {
		errs = append(errs, fmt.Errorf("--gop %d: want >= 1", c.gop))
	}
	if c.join < 0 || c.warmup < 0 || c.duration <= 0 {
		errs = append(errs, fmt.Errorf("--join %s, --warmup %s, --duration %s: want >= 0, >= 0 and > 0", c.join, c.warmup, c.duration))
	}
	if !json.Valid([]byte(c.hlsConfig)) || !strings.HasPrefix(strings.TrimSpace(c.hlsConfig), "{") {
		errs = append(errs, fmt.Errorf("--hls-config %q: want a JSON object", c.hlsConfig))
	}
	if err := checkRTMPURL(c.rtmpURL, c.allowRemote); err != nil {
		errs = append(errs, err)
	}
	if err := checkHTTPURL("--hls", c.hlsURL, c.allowRemote); err != nil {
		errs = append(errs, err)
	}
	if c.whepURL != "" {
		if err := checkHTTPURL("--whep", c.whepURL, c.allowRemote); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkRTMPURL(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("--rtmp: %w", err)
	case u.Scheme != "rtmp":
		return fmt.Errorf("--rtmp %q: want rtmp://HOST[:PORT]/APP/KEY", raw)
	}
	return checkHost("--rtmp", u, allowRemote)
}

// glassReport is what a run measured: the page's figures plus the
// encoder's.
type glassReport struct {
	RTMPURL      string     `json:"rtmpURL"`
	HLSURL       string     `json:"hlsURL"`
	WHEPURL      string     `json:"whepURL,omitempty"` // played instead of HLSURL
	Started      time.Time  `json:"started"`
	FramesSent   int64      `json:"framesSent"`
	FirstPlaylst float64    `json:"firstPlaylistSeconds"` // push start → first 200 of the playlist
	Page         glassPage  `json:"page"`
	Summary      glassStats `json:"summary"`
}

// glassPage is the line glass.mjs prints.
type glassPage struct {
	HarnessError   string         `json:"harnessError"`
	BrowserVersion string         `json:"browserVersion"`
	HLSVersion     string         `json:"hlsVersion"`
	FirstFrameAt   float64        `json:"firstFrameAt"` // s after loadSource
	Samples        []glassSample  `json:"samples"`
	Undecoded      int            `json:"undecoded"`
	Stalls         []glassStall   `json:"stalls"`
	Events         []glassEvent   `json:"events"` // hls.js errors and warnings
	Ticks          []glassTick    `json:"ticks"`
	Console        []string       `json:"console"`
	Config         map[string]any `json:"config"`
	Logs           []string       `json:"logs"` // hls.js log lines at start
	Gaps           []glassGap     `json:"gaps"` // between presented frames, over 100 ms
	RTC            []glassRTC     `json:"rtc"`  // WebRTC: the inbound video's stats once a second
}

// glassSample is one presented frame: [s after the first frame, latency
// ms, the frame's media time s, its send time Unix ms]. Media time against
// send time shows whether the stream's timeline keeps pace with the
// encoder's clock; media time against the first field, whether the
// player's clock keeps pace with the wall clock.
type glassSample [4]float64

type glassStall struct {
	At       float64 `json:"at"`
	Kind     string  `json:"kind"`
	Duration float64 `json:"duration"` // s, 0 when it never ended
}

type glassEvent struct {
	At      float64 `json:"at"`
	Kind    string  `json:"kind"`
	Details string  `json:"details"`
	Fatal   bool    `json:"fatal"`
	Text    string  `json:"text"`
}

// glassTick is the player's state once a second.
type glassTick struct {
	At            float64 `json:"at"`
	HLSLatency    float64 `json:"hlsLatency"`
	TargetLatency float64 `json:"targetLatency"`
	Buffer        float64 `json:"buffer"` // s of video buffered ahead of the play head
	Rate          float64 `json:"rate"`
	PDTLag        float64 `json:"pdtLag"` // now − hls.playingDate, ms (0 without PDT)
}

// glassStats sums up the measured window.
type glassStats struct {
	Samples      int       `json:"samples"`
	P50          float64   `json:"p50"`
	P95          float64   `json:"p95"`
	Min          float64   `json:"min"`
	Max          float64   `json:"max"`
	Drift        []float64 `json:"drift"` // p50 per 10 s
	Stalls       int       `json:"stalls"`
	StallSeconds float64   `json:"stallSeconds"`
	StartEvents  []string  `json:"startEvents"`
	Events       int       `json:"events"`
	// PlayerRate is media seconds played per wall second over the window
	// (below 1: the player's clock runs slow and latency grows without a
	// stall); StreamPace, media seconds per second of send time (below 1:
	// the stream's timeline falls behind the encoder's clock).
	PlayerRate    float64 `json:"playerRate"`
	StreamPace    float64 `json:"streamPace"`
	HLSLatencyP50 float64 `json:"hlsLatencyP50"`
	PDTLagP50     float64 `json:"pdtLagP50"`
	BufferP50     float64 `json:"bufferP50"`
	// Gaps: times over 100 ms (3 frame intervals at 30 fps) without a
	// presented frame; LongestGapMs, the longest time between two
	// presented frames; both in the window.
	Gaps         int     `json:"gaps"`
	LongestGapMs float64 `json:"longestGapMs"`
	// WebRTC: Chromium's counts over the window (the difference of its
	// stats at the window's ends), nil for hls.js.
	RTC *glassRTC `json:"rtc,omitempty"`
}

func runGlass(ctx context.Context, cfg glassConfig, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rep := glassReport{RTMPURL: cfg.rtmpURL, HLSURL: cfg.hlsURL, WHEPURL: cfg.whepURL, Started: time.Now()}

	enc, err := startEncoder(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { rep.FramesSent = enc.stop() }()

	if err := awaitPlaylist(ctx, cfg.hlsURL, enc.done); err != nil {
		return err
	}
	rep.FirstPlaylst = time.Since(rep.Started).Seconds()
	log.Info("playlist answers", "after", time.Since(rep.Started).Round(time.Millisecond))
	if !sleepCtx(ctx, time.Until(rep.Started.Add(cfg.join))) {
		return ctx.Err()
	}

	page, err := runGlassPage(ctx, cfg)
	if err != nil {
		return err
	}
	rep.FramesSent = enc.stop()
	if page.HarnessError != "" {
		return fmt.Errorf("browser: %s", page.HarnessError)
	}
	rep.Page = page
	rep.Summary = summarizeGlass(page, cfg.warmup.Seconds(), (cfg.warmup + cfg.duration).Seconds())
	printGlass(stdout, rep)
	return writeJSON(cfg.jsonPath, rep)
}

// encoder is the frame generator feeding ffmpeg; stop ends both and
// returns the frames written.
type encoder struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when ffmpeg has exited
	wg     sync.WaitGroup
	frames int64
	once   sync.Once
}

func startEncoder(ctx context.Context, cfg glassConfig, log *slog.Logger) (*encoder, error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, cfg.ffmpeg, ffmpegGlassArgs(cfg)...)
	cmd.WaitDelay = 5 * time.Second
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	video, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ffmpeg stdin: %w", err)
	}
	audioR, audio, err := os.Pipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("audio pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{audioR} // fd 3 in ffmpeg
	err = cmd.Start()
	audioR.Close()
	if err != nil {
		cancel()
		audio.Close()
		return nil, fmt.Errorf("starting ffmpeg: %w", err)
	}
	e := &encoder{cancel: cancel, done: make(chan struct{})}
	start := time.Now()
	e.wg.Go(func() {
		defer video.Close()
		e.frames = generateFrames(ctx, video, cfg, start)
	})
	e.wg.Go(func() {
		defer audio.Close()
		generateAudio(ctx, audio, start)
	})
	e.wg.Go(func() {
		defer close(e.done)
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			log.Error("ffmpeg ended", "err", err, "stderr", tail(errBuf.String(), 2000))
		}
	})
	return e, nil
}

func (e *encoder) stop() int64 {
	e.once.Do(func() {
		e.cancel()
		e.wg.Wait()
	})
	return e.frames
}

func ffmpegGlassArgs(cfg glassConfig) []string {
	return []string{
		"-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "rawvideo", "-pix_fmt", "gray", "-video_size", fmt.Sprintf("%dx%d", cfg.width, cfg.height),
		"-framerate", fmt.Sprint(cfg.fps), "-i", "pipe:0",
		"-f", "s16le", "-ar", fmt.Sprint(glassRate), "-ac", "2", "-i", "pipe:3",
		"-map", "0:v", "-map", "1:a",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", fmt.Sprint(cfg.gop), "-keyint_min", fmt.Sprint(cfg.gop), "-sc_threshold", "0",
		"-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "1500k",
		"-c:a", "aac", "-b:a", "96k", "-ac", "2",
		"-flush_packets", "1", "-f", "flv", "-flvflags", "no_duration_filesize", cfg.rtmpURL,
	}
}

// glassRate is the audio sample rate.
const glassRate = 48000

// generateFrames writes a video frame every 1/fps s from start until ctx
// ends, each stamped with the wall clock just before it is written; it
// returns how many frames it wrote.
func generateFrames(ctx context.Context, video io.Writer, cfg glassConfig, start time.Time) int64 {
	pix := make([]byte, cfg.width*cfg.height)
	interval := time.Second / time.Duration(cfg.fps)
	var n int64
	for {
		if !sleepCtx(ctx, time.Until(start.Add(time.Duration(n)*interval))) {
			return n
		}
		drawMotion(pix, cfg.width, cfg.height, int(n))
		drawStamp(pix, cfg.width, uint64(time.Now().UnixMilli()))
		if _, err := video.Write(pix); err != nil {
			return n
		}
		n++
	}
}

// generateAudio writes a 440 Hz tone (16-bit stereo) in 20 ms chunks, each
// when its time since start has come, until ctx ends. Its own goroutine:
// ffmpeg opens its inputs one after the other, so one writer feeding both
// pipes could block on one while ffmpeg reads the other.
func generateAudio(ctx context.Context, audio io.Writer, start time.Time) {
	const chunk = glassRate / 50
	pcm := make([]byte, 0, 4*chunk)
	var samples int64
	for {
		if !sleepCtx(ctx, time.Until(start.Add(time.Duration(samples)*time.Second/glassRate))) {
			return
		}
		pcm, samples = tone(pcm[:0], samples, samples+chunk)
		if _, err := audio.Write(pcm); err != nil {
			return
		}
	}
}

// tone appends the samples from..to of a 440 Hz tone (16-bit little-endian
// stereo) to b; it returns b and to.
func tone(b []byte, from, to int64) ([]byte, int64) {
	for i := from; i < to; i++ {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/glassRate))
		b = append(b, byte(v), byte(v>>8), byte(v), byte(v>>8))
	}
	return b, to
}

// awaitPlaylist polls url until it answers 200 with a media segment or
// part listed, ffmpeg ends, or 30 s pass.
func awaitPlaylist(ctx context.Context, u string, encDone <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if playlistReady(ctx, u) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", u, ctx.Err())
		case <-encDone:
			return errors.New("ffmpeg ended before the playlist answered")
		case <-tick.C:
		}
	}
}

func playlistReady(ctx context.Context, u string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	s := string(b)
	return resp.StatusCode == http.StatusOK &&
		(strings.Contains(s, "#EXTINF") || strings.Contains(s, "#EXT-X-PART:") || strings.Contains(s, "#EXT-X-STREAM-INF"))
}

// runGlassPage runs glass.mjs and decodes its line.
func runGlassPage(ctx context.Context, cfg glassConfig) (glassPage, error) {
	var page glassPage
	script, err := filepath.Abs(filepath.Join(cfg.browserDir, "glass.mjs"))
	if err != nil {
		return page, fmt.Errorf("glass.mjs: %w", err)
	}
	total := cfg.warmup + cfg.duration
	play := cfg.hlsURL
	if cfg.whepURL != "" {
		play = cfg.whepURL
	}
	cmd := exec.CommandContext(ctx, cfg.node, script, play,
		fmt.Sprint(total.Seconds()), cfg.hlsConfig)
	cmd.Dir = filepath.Dir(script)
	cmd.WaitDelay = 15 * time.Second
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if err != nil {
		return page, fmt.Errorf("node glass.mjs: %w: %s", err, tail(errBuf.String(), 2000))
	}
	line := lastLine(out)
	if err := json.Unmarshal(line, &page); err != nil {
		return page, fmt.Errorf("glass.mjs printed %q: %w", tail(string(line), 300), err)
	}
	return page, nil
}

func lastLine(b []byte) []byte {
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			last = append(last[:0], l...)
		}
	}
	return last
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// summarizeGlass reduces the page's samples in [from, to) s after the
// first frame; events before from are the start's.
func summarizeGlass(p glassPage, from, to float64) glassStats {
	var st glassStats
	var lat []float64
	buckets := map[int][]float64{}
	for _, s := range p.Samples {
		if s[0] < from || s[0] >= to {
			continue
		}
		lat = append(lat, s[1])
		b := int((s[0] - from) / 10)
		buckets[b] = append(buckets[b], s[1])
	}
	st.Samples = len(lat)
	st.PlayerRate, st.StreamPace = rates(p.Samples, from, to)
	if len(lat) > 0 {
		st.P50, st.P95 = quantile(lat, 0.5), quantile(lat, 0.95)
		st.Min, st.Max = quantile(lat, 0), quantile(lat, 1)
	}
	for b := 0; b < len(buckets); b++ {
		st.Drift = append(st.Drift, quantile(buckets[b], 0.5))
	}
	firstFrame := p.FirstFrameAt
	for _, s := range p.Stalls {
		if s.At-firstFrame < to {
			st.Stalls++
			st.StallSeconds += s.Duration
		}
	}
	for _, e := range p.Events {
		st.Events++
		if e.At-firstFrame < from {
			st.StartEvents = append(st.StartEvents, fmt.Sprintf("%.2fs %s %s %s", e.At, e.Kind, e.Details, e.Text))
		}
	}
	var hl, pl, bl []float64
	for _, t := range p.Ticks {
		if t.At-firstFrame < from || t.At-firstFrame >= to {
			continue
		}
		hl = append(hl, t.HLSLatency)
		bl = append(bl, t.Buffer)
		if t.PDTLag != 0 {
			pl = append(pl, t.PDTLag)
		}
	}
	st.HLSLatencyP50, st.BufferP50, st.PDTLagP50 = quantile(hl, 0.5), quantile(bl, 0.5), quantile(pl, 0.5)
	st.Gaps, st.LongestGapMs = frameGaps(p, from, to)
	st.RTC = rtcWindow(p.RTC, firstFrame+from, firstFrame+to)
	return st
}

// rates compares the first and last samples in [from, to): media time
// against page time (the player's clock) and against send time (the
// stream's timeline); 0 when there is nothing to compare.
func rates(samples []glassSample, from, to float64) (player, stream float64) {
	var first, last *glassSample
	for i := range samples {
		if samples[i][0] < from || samples[i][0] >= to {
			continue
		}
		if first == nil {
			first = &samples[i]
		}
		last = &samples[i]
	}
	if first == nil || last[0] <= first[0] || last[3] <= first[3] {
		return 0, 0
	}
	media := last[2] - first[2]
	return media / (last[0] - first[0]), media / ((last[3] - first[3]) / 1000)
}

func printGlass(w io.Writer, r glassReport) {
	s := r.Summary
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.WHEPURL != "" {
		// Played over WebRTC: no hls.js, so its lines below stay 0.
		fmt.Fprintf(tw, "whep\t%s\n", r.WHEPURL)
		fmt.Fprintf(tw, "browser\tchromium %s, WebRTC\n", r.Page.BrowserVersion)
	} else {
		fmt.Fprintf(tw, "hls\t%s\n", r.HLSURL)
		fmt.Fprintf(tw, "browser\tchromium %s, hls.js %s\n", r.Page.BrowserVersion, r.Page.HLSVersion)
	}
	fmt.Fprintf(tw, "first frame\t%.2f s after loadSource\n", r.Page.FirstFrameAt)
	fmt.Fprintf(tw, "samples\t%d (undecoded %d)\n", s.Samples, r.Page.Undecoded)
	fmt.Fprintf(tw, "glass-to-glass ms\tp50 %.0f  p95 %.0f  min %.0f  max %.0f\n", s.P50, s.P95, s.Min, s.Max)
	fmt.Fprintf(tw, "p50 per 10 s\t%s\n", joinMs(s.Drift))
	fmt.Fprintf(tw, "stalls\t%d, %.3f s in all (warm-up included)\n", s.Stalls, s.StallSeconds)
	fmt.Fprintf(tw, "frame gaps\t%d over 100 ms; longest between presented frames %.0f ms\n", s.Gaps, s.LongestGapMs)
	if c := s.RTC; c != nil {
		fmt.Fprintf(tw, "webrtc freezes\t%d, %.3f s in all; pauses %d (%.3f s), over %.0f s\n", c.FreezeCount, c.TotalFreezesDuration, c.PauseCount, c.TotalPausesDuration, c.At)
		fmt.Fprintf(tw, "webrtc frames\t%d decoded, %d dropped; %d packets lost, %d NACKs; jitter buffer %.0f ms\n", c.FramesDecoded, c.FramesDropped, c.PacketsLost, c.NackCount, c.JitterBufferMs)
	}
	fmt.Fprintf(tw, "clocks\tplayer %.3f media s per s, stream %.3f media s per sent s\n", s.PlayerRate, s.StreamPace)
	fmt.Fprintf(tw, "hls.js latency p50\t%.3f s; buffer ahead p50 %.3f s; now − playingDate p50 %.0f ms\n", s.HLSLatencyP50, s.BufferP50, s.PDTLagP50)
	fmt.Fprintf(tw, "hls.js events\t%d in all\n", s.Events)
	for _, e := range s.StartEvents {
		fmt.Fprintf(tw, "  at start\t%s\n", e)
	}
	tw.Flush()
}

func joinMs(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, " ")
}
