package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fount-live/fount/playlist/playauth"
)

type viewConfig struct {
	common
	url     string
	streams int
	prefix  string
	app     string
	paths   []string // --stream
	viewers int
	mode    string
	warmup  time.Duration // --warmup: whep frame rates are counted from this long after the ramp
	caFile  string        // --ca: PEM certificates trusted for an https:// --url
	http1   bool          // --http1: HTTP/1.1 over TLS, not HTTP/2
	secret  string        // --play-secret: sign each viewer's URL (fount --play-auth token)
}

func newViewCmd() *cobra.Command {
	cfg := viewConfig{}
	cmd := &cobra.Command{
		Use:   "view",
		Short: "Run M simulated HLS (or WebRTC: --mode whep) viewers per stream",
		Long: `Run M simulated HLS viewers per stream. Each follows the media playlist as
a player does and downloads every segment (or part) once:

  classic  reload every target duration (half of it when nothing changed),
           start three segments from the live edge
  ll       start PART-HOLD-BACK from the live edge at an independent part,
           then blocking reloads (_HLS_msn/_HLS_part) for the next part and
           a request for the EXT-X-PRELOAD-HINT part
  whep     WebRTC viewers (pion): POST an SDP offer to <url>/APP/NAME/whep,
           receive RTP over one UDP socket each, count it and drop it; the
           report gives viewers answered/connected/failed, frames/s per
           viewer (min/median/max) after --warmup, and the tool's own CPU

The report gives requests/s, throughput and latency (p50/p99/max) per
request kind, failures (errors and non-2xx answers), missed segments (ones
that left the playlist before the viewer fetched them, i.e. gaps in the
media sequence it saw), and how far behind live viewers are: when the viewer
had a piece of media minus its EXT-X-PROGRAM-DATE-TIME end (for a
preload-hint part, when its body arrived).

Streams are <url>/<app>/<name-prefix>-<i>/index.m3u8 for i in 0..N-1 (as
'publish' names them), or the --stream paths given. Until a stream's first
playlist arrives its viewers retry every 0.5 s; those retries are counted
apart, not as failures.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if c.Flags().Changed("stream") && (c.Flags().Changed("streams") || c.Flags().Changed("name-prefix")) {
				return usagef("--stream names the streams: do not combine it with --streams or --name-prefix")
			}
			if err := cfg.validate(); err != nil {
				return usageError{err}
			}
			if cfg.mode == "whep" {
				return runWHEP(c.Context(), cfg, c.OutOrStdout(), c.ErrOrStderr())
			}
			return runView(c.Context(), cfg, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080", "HTTP base URL of the origin")
	fs.IntVar(&cfg.streams, "streams", 1, "number of streams <name-prefix>-0 .. <name-prefix>-<N-1> to watch")
	fs.StringVar(&cfg.prefix, "name-prefix", "bench", "stream name prefix (as given to 'publish')")
	fs.StringVar(&cfg.app, "app", "live", "application path the streams are under")
	fs.StringSliceVar(&cfg.paths, "stream", nil, "stream path APP/NAME to watch (repeatable; instead of --streams)")
	fs.IntVar(&cfg.viewers, "viewers", 1, "viewers per stream")
	fs.StringVar(&cfg.mode, "mode", "auto", "auto (LL-HLS when the playlist has EXT-X-PART-INF), classic, ll, or whep (WebRTC: POST <url>/APP/NAME/whep)")
	fs.DurationVar(&cfg.warmup, "warmup", 5*time.Second, "--mode whep: frame rates and the tool's CPU are counted from this long after the ramp to the end")
	fs.StringVar(&cfg.caFile, "ca", "", "with an https:// --url: PEM file of the CA certificates to trust (default: the system's)")
	fs.BoolVar(&cfg.http1, "http1", false, "with an https:// --url: HTTP/1.1 over TLS instead of HTTP/2")
	fs.StringVar(&cfg.secret, "play-secret", os.Getenv("FOUNT_PLAY_SECRET"), "for fount --play-auth token: sign each viewer's playlist URL with this secret, each with its own expiry (so its own token); default FOUNT_PLAY_SECRET")
	cfg.common.flags(cmd)
	return cmd
}

func (c *viewConfig) validate() error {
	errs := []error{c.common.validate()}
	n := c.streams
	if len(c.paths) > 0 {
		n = len(c.paths)
		for _, p := range c.paths {
			app, name, ok := strings.Cut(strings.Trim(p, "/"), "/")
			if !ok || !validName(app) || !validName(name) {
				errs = append(errs, fmt.Errorf("--stream %q: want APP/NAME", p))
			}
		}
	} else {
		if c.streams < 1 || c.streams > maxCount {
			errs = append(errs, fmt.Errorf("--streams %d: must be between 1 and %d", c.streams, maxCount))
		}
		if !validName(c.prefix) {
			errs = append(errs, fmt.Errorf("--name-prefix %q: use letters, digits, '-', '_' and '.'", c.prefix))
		}
		if !validName(c.app) {
			errs = append(errs, fmt.Errorf("--app %q: use letters, digits, '-', '_' and '.'", c.app))
		}
	}
	if c.viewers < 1 || c.viewers > maxCount {
		errs = append(errs, fmt.Errorf("--viewers %d: must be between 1 and %d", c.viewers, maxCount))
	} else if n >= 1 && n*c.viewers > maxCount {
		errs = append(errs, fmt.Errorf("%d streams x %d viewers: at most %d viewers in total", n, c.viewers, maxCount))
	}
	switch c.mode {
	case "auto", "classic", "ll":
	case "whep":
		if c.warmup < 0 || c.duration > 0 && c.ramp+c.warmup >= c.duration {
			errs = append(errs, fmt.Errorf("--warmup %s: must be >= 0, and --ramp + --warmup shorter than --duration", c.warmup))
		}
	default:
		errs = append(errs, fmt.Errorf("--mode %q: want auto, classic, ll or whep", c.mode))
	}
	if err := checkHTTPURL("--url", c.url, c.allowRemote); err != nil {
		errs = append(errs, err)
	}
	if c.secret != "" {
		if _, err := playauth.NewSigner([]byte(c.secret)); err != nil {
			errs = append(errs, fmt.Errorf("--play-secret: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Request kinds, reported apart.
const (
	kindPlaylist = iota
	kindBlocking
	kindSegment
	kindPart
	kindInit
	nKinds
)

var kindNames = [nKinds]string{"playlist", "blocking_playlist", "segment", "part", "init"}

type kindStats struct {
	requests, failed, bytes atomic.Uint64
	latency                 hist // of 2xx answers, request sent → body read
}

// viewStats is shared by all viewers; everything is atomic but the
// failure reasons, which are rare.
type viewStats struct {
	kinds        [nKinds]kindStats
	missed       atomic.Uint64 // segments that left the window unfetched
	restarts     atomic.Uint64 // media sequence went backwards
	lag          hist
	noPDT        atomic.Uint64 // media fetched without a program date-time
	hintsGone    atomic.Uint64 // preload-hint parts answered 404: the segment ended first
	joinRetries  atomic.Uint64
	joined       atomic.Int64
	ll, classic  atomic.Int64
	neverJoined  atomic.Int64
	modeMismatch atomic.Int64

	mu      sync.Mutex
	reasons map[string]uint64
	gone    []string // the first few hints answered 404, with what the viewer's playlist said
}

// maxGoneExamples is how many hints answered 404 a report names.
const maxGoneExamples = 5

// hintGone counts a hint answered 404 and keeps the first few, to tell why.
func (s *viewStats) hintGone(example func() string) {
	s.hintsGone.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.gone) < maxGoneExamples {
		s.gone = append(s.gone, example())
	}
}

func (s *viewStats) failure(kind int, reason string) {
	s.kinds[kind].failed.Add(1)
	s.mu.Lock()
	if s.reasons == nil {
		s.reasons = make(map[string]uint64)
	}
	s.reasons[kindNames[kind]+": "+reason]++
	s.mu.Unlock()
}

// kindResult is one request kind in the JSON report.
type kindResult struct {
	Requests uint64  `json:"requests"`
	PerSec   float64 `json:"per_s"`
	Failed   uint64  `json:"failed"`
	Bytes    uint64  `json:"bytes"`
	Mbps     float64 `json:"mbit_per_s"`
	Latency  summary `json:"latency"`
}

// viewResult is the JSON report of a view run.
type viewResult struct {
	Command        string                `json:"command"`
	URL            string                `json:"url"`
	Streams        []string              `json:"streams"`
	ViewersPer     int                   `json:"viewers_per_stream"`
	Viewers        int                   `json:"viewers"`
	Mode           string                `json:"mode"`
	Seconds        float64               `json:"seconds"`
	Joined         int64                 `json:"joined"`
	NeverJoined    int64                 `json:"never_joined"`
	LL             int64                 `json:"ll_viewers"`
	Classic        int64                 `json:"classic_viewers"`
	Kinds          map[string]kindResult `json:"kinds"`
	Total          kindResult            `json:"total"`
	Missed         uint64                `json:"missed_segments"`
	Restarts       uint64                `json:"sequence_restarts"`
	Lag            summary               `json:"lag"`
	NoPDT          uint64                `json:"media_without_pdt"`
	HintsGone      uint64                `json:"preload_hints_gone"`
	GoneExamples   []string              `json:"preload_hints_gone_examples,omitempty"`
	JoinRetries    uint64                `json:"join_retries"`
	Failures       map[string]uint64     `json:"failures,omitempty"`
	ModeMismatches int64                 `json:"mode_mismatches,omitempty"`
}

func runView(ctx context.Context, cfg viewConfig, stdout, stderr io.Writer) error {
	base := strings.TrimRight(cfg.url, "/")
	paths := cfg.paths
	if len(paths) == 0 {
		for i := range cfg.streams {
			paths = append(paths, fmt.Sprintf("%s/%s-%d", cfg.app, cfg.prefix, i))
		}
	}
	total := len(paths) * cfg.viewers
	// One transport for all: keep-alive connections, one per viewer.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        total + 64,
		MaxIdleConnsPerHost: total + 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	newTransport, err := viewerTransport(tr, base, cfg.caFile, cfg.http1)
	if err != nil {
		return err
	}
	var signer *playauth.Signer
	if cfg.secret != "" {
		signer, _ = playauth.NewSigner([]byte(cfg.secret)) // validated
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	st := &viewStats{}
	started := time.Now()
	var wg sync.WaitGroup
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepCtx(runCtx, startOffset(i, total, cfg.ramp)) {
				return
			}
			// Each viewer its own cookies, as each browser has: origins
			// that keep a session in a cookie (MediaMTX's hlsSession)
			// refuse blocking reloads without it.
			vc := *client
			vc.Jar = &viewerJar{}
			if newTransport != nil {
				t := newTransport()
				defer t.CloseIdleConnections()
				vc.Transport = t
			}
			path := strings.Trim(paths[i%len(paths)], "/")
			v := &viewer{client: &vc, stats: st, mode: cfg.mode, url: base + "/" + path + "/index.m3u8"}
			if signer != nil {
				// Its own token, as each paying viewer has: an expiry
				// a second apart from the next viewer's.
				v.url += "?" + signer.Query(path, started.Add(2*time.Hour+time.Duration(i)*time.Second))
			}
			v.run(runCtx)
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "interrupted: reporting what ran")
	}

	res := viewResult{
		Command: "view", URL: cfg.url, Streams: paths, ViewersPer: cfg.viewers, Viewers: total, Mode: cfg.mode,
		Seconds: elapsed.Seconds(), Joined: st.joined.Load(), NeverJoined: st.neverJoined.Load(),
		LL: st.ll.Load(), Classic: st.classic.Load(), Kinds: map[string]kindResult{},
		Missed: st.missed.Load(), Restarts: st.restarts.Load(), Lag: st.lag.summary(), NoPDT: st.noPDT.Load(), HintsGone: st.hintsGone.Load(), GoneExamples: st.gone,
		JoinRetries: st.joinRetries.Load(), Failures: st.reasons, ModeMismatches: st.modeMismatch.Load(),
	}
	var all hist
	for k := range st.kinds {
		ks := &st.kinds[k]
		r := kindResult{Requests: ks.requests.Load(), Failed: ks.failed.Load(), Bytes: ks.bytes.Load(), Latency: ks.latency.summary()}
		r.PerSec = float64(r.Requests) / elapsed.Seconds()
		r.Mbps = float64(r.Bytes) * 8 / elapsed.Seconds() / 1e6
		res.Kinds[kindNames[k]] = r
		res.Total.Requests += r.Requests
		res.Total.Failed += r.Failed
		res.Total.Bytes += r.Bytes
		all.merge(&ks.latency)
	}
	res.Total.PerSec = float64(res.Total.Requests) / elapsed.Seconds()
	res.Total.Mbps = float64(res.Total.Bytes) * 8 / elapsed.Seconds() / 1e6
	res.Total.Latency = all.summary()
	printView(stdout, res)
	if err := writeJSON(cfg.jsonPath, res); err != nil {
		return err
	}
	if res.Joined == 0 {
		return errors.New("no viewer got a playlist")
	}
	if cfg.strict && (res.Total.Failed > 0 || res.Missed > 0 || res.NeverJoined > 0) {
		return errors.New("--strict: failures or missed segments")
	}
	return nil
}

func printView(w io.Writer, r viewResult) {
	fmt.Fprintf(w, "view  %s  %d streams x %d viewers  mode %s (%d LL, %d classic)  %.1f s\n",
		r.URL, len(r.Streams), r.ViewersPer, r.Mode, r.LL, r.Classic, r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trequests\treq/s\tfailed\tMB\tMbit/s\tp50 ms\tp99 ms\tmax ms\t")
	row := func(name string, k kindResult) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%d\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t\n", name, k.Requests, k.PerSec, k.Failed,
			float64(k.Bytes)/1e6, k.Mbps, k.Latency.P50, k.Latency.P99, k.Latency.Max)
	}
	for _, name := range kindNames {
		if k := r.Kinds[name]; k.Requests > 0 {
			row(name, k)
		}
	}
	row("total", r.Total)
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "viewers joined\t%d of %d (join retries %d)\n", r.Joined, r.Viewers, r.JoinRetries)
	fmt.Fprintf(tw, "missed segments\t%d (sequence restarts %d)\n", r.Missed, r.Restarts)
	if r.HintsGone > 0 {
		fmt.Fprintf(tw, "preload hints gone\t%d (404: the segment ended before the hinted part)\n", r.HintsGone)
		for _, e := range r.GoneExamples {
			fmt.Fprintf(tw, "\t%s\n", e)
		}
	}
	if r.Lag.Count > 0 {
		fmt.Fprintf(tw, "behind live ms\tp50 %.0f  p99 %.0f  max %.0f  (%d samples)\n", r.Lag.P50, r.Lag.P99, r.Lag.Max, r.Lag.Count)
	} else {
		fmt.Fprintf(tw, "behind live ms\tn/a (no EXT-X-PROGRAM-DATE-TIME)\n")
	}
	if r.ModeMismatches > 0 {
		fmt.Fprintf(tw, "mode mismatches\t%d (--mode ll, but the playlist has no EXT-X-PART-INF)\n", r.ModeMismatches)
	}
	printFailures(tw, r.Failures)
	tw.Flush()
}

// merge adds o's counts into h (o must be quiescent).
func (h *hist) merge(o *hist) {
	for i := range o.counts {
		h.counts[i].Add(o.counts[i].Load())
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

// viewerJar is one viewer's cookies. Unlike net/http/cookiejar it sends
// Secure cookies over plain HTTP too, as browsers do on a loopback origin,
// where the load tool runs; it keeps cookies by name, whatever their path.
type viewerJar struct {
	mu      sync.Mutex
	cookies []*http.Cookie
}

func (j *viewerJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		j.cookies = slices.DeleteFunc(j.cookies, func(h *http.Cookie) bool { return h.Name == c.Name })
		if c.MaxAge >= 0 {
			j.cookies = append(j.cookies, &http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
}

func (j *viewerJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.cookies) == 0 {
		return nil
	}
	return slices.Clone(j.cookies)
}

// viewerTransport returns, for an https:// base URL, a maker of one
// transport per viewer: over TLS, and HTTP/2 above all, a shared transport
// would carry every viewer on one connection, where each player has its
// own (its own handshake, its own streams). It returns nil for http://.
func viewerTransport(shared *http.Transport, base, caFile string, http1 bool) (func() *http.Transport, error) {
	if !strings.HasPrefix(base, "https://") {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", caFile)
		}
	}
	return func() *http.Transport {
		t := shared.Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 4, 4
		t.TLSClientConfig = conf.Clone()
		t.ForceAttemptHTTP2 = !http1
		if http1 {
			t.TLSClientConfig.NextProtos = []string{"http/1.1"}
			t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		return t
	}, nil
}

// printFailures writes one "failure" row per reason, sorted.
func printFailures(w io.Writer, failures map[string]uint64) {
	reasons := make([]string, 0, len(failures))
	for k := range failures {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(w, "failure\t%s: %d\n", k, failures[k])
	}
}
