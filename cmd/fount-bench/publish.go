package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type publishConfig struct {
	common
	url        string
	streams    int
	prefix     string
	file       string
	key        string
	startupURL string
}

func newPublishCmd() *cobra.Command {
	cfg := publishConfig{}
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Run N RTMP publishers replaying an FLV clip in real time",
		Long: `Run N concurrent RTMP publishers, each replaying the same FLV clip in real
time (timestamps move forward each loop, so every stream is one endless
live stream). Stream i (0..N-1) publishes as <name-prefix>-<i> to --url.

The clip is read once and its tag bytes are shared by all publishers; each
publisher has one timer and one write buffer, so one core drives hundreds
of streams. Without --file a 10 s 1280x720 30 fps H.264+AAC clip (2 s GOP,
about 2.5 Mbit/s) is made with ffmpeg in a temporary directory.

With --startup-url (the origin's HTTP base, e.g. http://127.0.0.1:8080)
each publisher also measures its startup: from its RTMP connect to the first
200 answer for <startup-url>/<app>/<name>/index.m3u8 that lists a segment.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := cfg.validate(); err != nil {
				return usageError{err}
			}
			return runPublish(c.Context(), cfg, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.url, "url", "rtmp://127.0.0.1:1935/live", "RTMP URL of the origin's application: rtmp://HOST[:PORT]/APP")
	fs.IntVar(&cfg.streams, "streams", 1, fmt.Sprintf("number of concurrent publishers (1..%d)", maxCount))
	fs.StringVar(&cfg.prefix, "name-prefix", "bench", "stream i publishes as <name-prefix>-<i>")
	fs.StringVar(&cfg.file, "file", "", "FLV clip to replay (default: generate one with ffmpeg)")
	fs.StringVar(&cfg.key, "key", "", "query appended to each stream name as NAME?KEY, e.g. token=secret")
	fs.StringVar(&cfg.startupURL, "startup-url", "", "origin HTTP base URL to measure startup against (empty: not measured)")
	cfg.common.flags(cmd)
	return cmd
}

func (c *publishConfig) validate() error {
	errs := []error{c.common.validate()}
	if c.streams < 1 || c.streams > maxCount {
		errs = append(errs, fmt.Errorf("--streams %d: must be between 1 and %d", c.streams, maxCount))
	}
	if !validName(c.prefix) {
		errs = append(errs, fmt.Errorf("--name-prefix %q: use letters, digits, '-', '_' and '.'", c.prefix))
	}
	u, err := url.Parse(c.url)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("--url: %w", err))
	case u.Scheme != "rtmp":
		errs = append(errs, fmt.Errorf("--url %q: want rtmp://HOST[:PORT]/APP", c.url))
	case strings.Trim(u.Path, "/") == "":
		errs = append(errs, fmt.Errorf("--url %q: no application (rtmp://HOST[:PORT]/APP)", c.url))
	default:
		if err := checkHost("--url", u, c.allowRemote); err != nil {
			errs = append(errs, err)
		}
	}
	if c.startupURL != "" {
		if err := checkHTTPURL("--startup-url", c.startupURL, c.allowRemote); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validName is the stream name rule of fount: letters, digits, '-', '_'
// and '.', no "..".
func validName(s string) bool {
	if s == "" || len(s) > 128 || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// publishStats is shared by all publishers; everything is atomic.
type publishStats struct {
	connected, failed, dropped atomic.Int64
	bytes, tags                atomic.Uint64
	late                       hist // how late each tag was written against its schedule
	startup                    hist // connect → first playlist with a segment
	startupMissed              atomic.Int64

	mu   sync.Mutex
	errs []string // the first few distinct failures
}

func (s *publishStats) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := err.Error()
	for _, e := range s.errs {
		if e == msg {
			return
		}
	}
	if len(s.errs) < 5 {
		s.errs = append(s.errs, msg)
	}
}

// publishResult is the JSON report of a publish run.
type publishResult struct {
	Command       string   `json:"command"`
	URL           string   `json:"url"`
	File          string   `json:"file"`
	Streams       int      `json:"streams"`
	Seconds       float64  `json:"seconds"`
	Connected     int64    `json:"connected"`
	Failed        int64    `json:"failed"`
	Dropped       int64    `json:"dropped"`
	Bytes         uint64   `json:"bytes"`
	Mbps          float64  `json:"mbit_per_s"`
	ClipMbps      float64  `json:"clip_mbit_per_s"`
	Tags          uint64   `json:"tags"`
	Late          summary  `json:"late"`
	Startup       *summary `json:"startup,omitempty"`
	StartupMissed int64    `json:"startup_missed,omitempty"`
	Errors        []string `json:"errors,omitempty"`
}

func runPublish(ctx context.Context, cfg publishConfig, stdout, stderr io.Writer) error {
	file := cfg.file
	if file == "" {
		dir, err := os.MkdirTemp("", "fount-bench-")
		if err != nil {
			return fmt.Errorf("temporary directory: %w", err)
		}
		defer os.RemoveAll(dir)
		file = filepath.Join(dir, "clip.flv")
		fmt.Fprintf(stderr, "no --file: generating a 10 s 1280x720 30 fps H.264+AAC clip (2 s GOP, ~2.5 Mbit/s) with ffmpeg in %s\n", dir)
		if err := makeClip(ctx, file); err != nil {
			return err
		}
	}
	clip, err := loadFLV(file)
	if err != nil {
		return err
	}
	u, _ := url.Parse(cfg.url) // validated
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "1935")
	}
	app := strings.Trim(u.Path, "/")
	tcURL := "rtmp://" + addr + "/" + app

	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var st publishStats
	var poll *http.Client
	if cfg.startupURL != "" {
		poll = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
		defer poll.CloseIdleConnections()
	}
	started := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepCtx(runCtx, startOffset(i, cfg.streams, cfg.ramp)) {
				return
			}
			name := fmt.Sprintf("%s-%d", cfg.prefix, i)
			p := &publisher{clip: clip, stats: &st, addr: addr, app: app, tcURL: tcURL, name: name}
			if cfg.key != "" {
				p.name += "?" + cfg.key
			}
			if poll != nil {
				p.poll, p.playlist = poll, strings.TrimRight(cfg.startupURL, "/")+"/"+app+"/"+name+"/index.m3u8"
			}
			p.run(runCtx)
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "interrupted: reporting what ran")
	}

	res := publishResult{
		Command: "publish", URL: cfg.url, File: file, Streams: cfg.streams, Seconds: elapsed.Seconds(),
		Connected: st.connected.Load(), Failed: st.failed.Load(), Dropped: st.dropped.Load(),
		Bytes: st.bytes.Load(), Tags: st.tags.Load(), Late: st.late.summary(),
		ClipMbps: clip.rate / 1e6, Errors: st.errs,
	}
	if cfg.file == "" {
		res.File = "(generated)"
	}
	res.Mbps = float64(res.Bytes) * 8 / elapsed.Seconds() / 1e6
	if poll != nil {
		s := st.startup.summary()
		res.Startup, res.StartupMissed = &s, st.startupMissed.Load()
	}
	printPublish(stdout, res)
	if err := writeJSON(cfg.jsonPath, res); err != nil {
		return err
	}
	if res.Connected == 0 {
		return fmt.Errorf("no publisher connected: %s", strings.Join(res.Errors, "; "))
	}
	if cfg.strict && (res.Failed > 0 || res.Dropped > 0 || res.StartupMissed > 0) {
		return errors.New("--strict: some publishers failed")
	}
	return nil
}

func printPublish(w io.Writer, r publishResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "publish\t%s  %d streams  %.1f s  clip %s (%.2f Mbit/s)\n", r.URL, r.Streams, r.Seconds, r.File, r.ClipMbps)
	fmt.Fprintf(tw, "connected\t%d\n", r.Connected)
	fmt.Fprintf(tw, "failed to connect\t%d\n", r.Failed)
	fmt.Fprintf(tw, "dropped while publishing\t%d\n", r.Dropped)
	fmt.Fprintf(tw, "sent\t%.1f MB, %.2f Mbit/s total, %d tags\n", float64(r.Bytes)/1e6, r.Mbps, r.Tags)
	fmt.Fprintf(tw, "tag lateness ms\tp50 %.1f  p99 %.1f  max %.1f\n", r.Late.P50, r.Late.P99, r.Late.Max)
	if r.Startup != nil {
		fmt.Fprintf(tw, "startup ms\tp50 %.0f  p99 %.0f  max %.0f  (%d measured, %d never playable)\n", r.Startup.P50, r.Startup.P99, r.Startup.Max, r.Startup.Count, r.StartupMissed)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(tw, "error\t%s\n", e)
	}
	tw.Flush()
}

// makeClip records the default test clip.
func makeClip(ctx context.Context, path string) error {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return errors.New("no --file given and ffmpeg is not installed to make a clip (Debian: apt-get install ffmpeg)")
	}
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
		"-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k",
		"-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "2", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-ac", "2", "-b:a", "128k", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg making the clip: %w\n%s", err, out)
	}
	return nil
}

// publisher is one RTMP stream.
type publisher struct {
	clip                   *clip
	stats                  *publishStats
	addr, app, tcURL, name string
	poll                   *http.Client
	playlist               string
}

// coalesce: tags due within this much of each other go out in one write,
// as an encoder's muxer would batch them.
const coalesce = 5 * time.Millisecond

func (p *publisher) run(ctx context.Context) {
	connectAt := time.Now()
	setupCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := dialPublish(setupCtx, p.addr, p.app, p.tcURL, p.name)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			p.stats.failed.Add(1)
			p.stats.fail(err)
		}
		return
	}
	p.stats.connected.Add(1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.nc.Close() // ends drain; runs before wg.Wait
	// A write blocked on a backed-up origin must not outlive the run.
	stopWrites := context.AfterFunc(ctx, func() { c.nc.SetWriteDeadline(time.Now()) })
	defer stopWrites()

	pong := make(chan uint32, 1)
	drained := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		drained <- c.drain(pong)
	}()
	if p.poll != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.awaitPlayable(ctx, connectAt)
		}()
	}

	if err := p.stream(ctx, c, pong, drained); err != nil && ctx.Err() == nil {
		p.stats.dropped.Add(1)
		p.stats.fail(fmt.Errorf("%s: %w", p.name, err))
	}
}

// stream sends the clip's configuration, then its media in a loop, paced
// by one timer, until ctx is done.
func (p *publisher) stream(ctx context.Context, c *rtmpConn, pong <-chan uint32, drained <-chan error) error {
	cl := p.clip
	for _, t := range cl.config {
		switch t.typ {
		case tagScript:
			c.buf = appendData(c.buf, c.streamID, t.payload)
		case tagVideo:
			c.buf = appendMessage(c.buf, csVideo, tagVideo, 0, c.streamID, t.payload, outChunkSize)
		case tagAudio:
			c.buf = appendMessage(c.buf, csAudio, tagAudio, 0, c.streamID, t.payload, outChunkSize)
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	var sent uint64
	defer func() { p.stats.bytes.Add(sent) }()
	var loop uint64
	for i := 0; ; {
		ts := cl.mediaTS(loop, i)
		due := start.Add(time.Duration(ts) * time.Millisecond)
		now := time.Now()
		if wait := due.Sub(now); wait > coalesce {
			sent += uint64(len(c.buf))
			if err := p.flush(ctx, c); err != nil {
				return err
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case err := <-drained:
				return fmt.Errorf("connection closed by the server: %w", err)
			case v := <-pong:
				c.buf = appendPong(c.buf, v)
				continue // the timer still runs: come back to it
			case <-timer.C:
			}
			now = time.Now()
		}
		p.stats.late.record(now.Sub(due))
		t := cl.media[i]
		cs := uint8(csAudio)
		if t.typ == tagVideo {
			cs = csVideo
		}
		// RTMP timestamps are 32-bit and wrap, as they do for encoders.
		c.buf = appendMessage(c.buf, cs, t.typ, uint32(ts), c.streamID, t.payload, outChunkSize)
		p.stats.tags.Add(1)
		if len(c.buf) > 256<<10 {
			sent += uint64(len(c.buf))
			if err := p.flush(ctx, c); err != nil {
				return err
			}
			if ctx.Err() != nil { // behind schedule: still stop in time
				return nil
			}
		}
		if i++; i == len(cl.media) {
			i, loop = 0, loop+1
		}
	}
}

func (p *publisher) flush(ctx context.Context, c *rtmpConn) error {
	if ctx.Err() != nil {
		return nil // the run is over; AfterFunc has set a past deadline
	}
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.flush()
}

// setDataFrame precedes an FLV script tag's onMetaData when it is sent
// over RTMP.
var setDataFrame = []byte{0x02, 0, 13, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'}

// appendData appends "@setDataFrame" + the script tag as one data message.
func appendData(buf []byte, msid uint32, script []byte) []byte {
	payload := make([]byte, 0, len(setDataFrame)+len(script))
	payload = append(append(payload, setDataFrame...), script...)
	return appendMessage(buf, csData, msgDataAMF0, 0, msid, payload, outChunkSize)
}

// awaitPlayable polls the stream's playlist until it lists a segment and
// records the time since connectAt.
func (p *publisher) awaitPlayable(ctx context.Context, connectAt time.Time) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var body bytes.Buffer
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.playlist, nil)
		resp, err := p.poll.Do(req)
		if err == nil {
			body.Reset()
			_, err = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK && bytes.Contains(body.Bytes(), []byte("#EXTINF")) {
				p.stats.startup.record(time.Since(connectAt))
				return
			}
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			p.stats.startupMissed.Add(1)
			return
		}
	}
}
