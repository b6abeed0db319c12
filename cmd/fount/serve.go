package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/storage"
)

// config is everything `fount serve` takes from flags and FOUNT_* variables.
type config struct {
	RTMPAddr        string
	RTMPSAddr       string
	TLSCert         string
	TLSKey          string
	HTTPAddr        string
	APIAddr         string
	APIToken        string
	App             string
	SegmentDuration time.Duration
	PlaylistSize    int
	ReconnectWindow time.Duration
	Storage         string
	S3Endpoint      string
	S3Region        string
	S3AccessKey     string
	S3SecretKey     string
	SegmentFormat   string
	LowLatency      bool
	PartDuration    time.Duration
	PartHoldBack    time.Duration
	Auth            string
	KeysFile        string
	WebhookURL      string
	WebhookSecret   string
	WebhookTimeout  time.Duration
	LogFormat       string
	LogLevel        string
	ConfigFile      string // --config; not itself a file key

	// Limits (docs/scaling.md#limits).
	MaxConnections   int
	MaxPublishers    int
	MaxStreams       int
	HandshakeTimeout time.Duration
	RTMPIdleTimeout  time.Duration
	MaxMessageSize   byteSize
	RTMPChunkSize    byteSize
	HTTPIdleTimeout  time.Duration
	HTTPWriteTimeout time.Duration // 0: derived from --segment-duration (httpWriteTimeout)
	HTTPLoops        int           // event loops for plain viewer GETs: 0 one per CPU, <0 none

	// Restarts (docs/scaling.md#restarts).
	ReusePort     bool
	HandoverGrace time.Duration

	// hooks lets tests inject faults; no flag or file sets it.
	hooks *testHooks
}

// testHooks wrap parts of the origin for tests (panic_test.go); nil in
// production.
type testHooks struct {
	publisher func(ingest.Publisher) ingest.Publisher
	viewer    func(http.Handler) http.Handler
}

func defaultConfig() config {
	return config{
		RTMPAddr:        ":1935",
		HTTPAddr:        ":8080",
		APIAddr:         "127.0.0.1:9997",
		App:             "live",
		SegmentDuration: 2 * time.Second,
		PlaylistSize:    6,
		ReconnectWindow: 30 * time.Second,
		Storage:         "memory",
		SegmentFormat:   "fmp4",
		LowLatency:      true,
		PartDuration:    200 * time.Millisecond,
		PartHoldBack:    0,
		Auth:            "none",
		WebhookTimeout:  3 * time.Second,
		LogFormat:       "text",
		LogLevel:        "info",
		// One machine: 100 encoders at 6 Mbit/s is 600 Mbit/s in and,
		// with the default window, a few GB of segments in memory. A
		// connection that has not published costs ~100 KiB (go-rtmp's
		// buffers), so 1000 of them cost ~100 MiB, and junk beyond that
		// evicts junk, not encoders.
		MaxConnections:   1000,
		MaxPublishers:    100,
		MaxStreams:       200,
		HandshakeTimeout: 5 * time.Second,
		RTMPIdleTimeout:  10 * time.Second,
		MaxMessageSize:   8 << 20,
		RTMPChunkSize:    ingest.DefaultChunkSize,
		// Longer than CDN edges keep idle origin connections (CloudFront
		// at most 60 s, nginx 60 s), so that the edge, not fount, closes
		// them: a close racing the edge's next request fails that request.
		HTTPIdleTimeout: 120 * time.Second,
		HandoverGrace:   5 * time.Second,
	}
}

func (c *config) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.RTMPAddr, "rtmp-addr", c.RTMPAddr, "address the RTMP server listens on")
	fs.StringVar(&c.RTMPSAddr, "rtmps-addr", c.RTMPSAddr, "address of the RTMPS (RTMP over TLS) server, e.g. :1936; needs --tls-cert and --tls-key")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate (chain) for RTMPS; re-read on SIGHUP")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key for RTMPS; re-read on SIGHUP")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "address viewers and CDNs fetch HLS from")
	fs.StringVar(&c.APIAddr, "api-addr", c.APIAddr, "address for /metrics, /healthz and /readyz (operators, not viewers); empty to disable")
	fs.StringVar(&c.APIToken, "api-token", c.APIToken, "bearer token required by /api/v1 and /metrics (required when --api-addr is not loopback; prefer FOUNT_API_TOKEN)")
	fs.StringVar(&c.App, "app", c.App, "RTMP application encoders publish to (rtmp://HOST/APP/KEY)")
	fs.DurationVar(&c.SegmentDuration, "segment-duration", c.SegmentDuration, "target segment duration; segments are cut at the first keyframe after it")
	fs.IntVar(&c.PlaylistSize, "playlist-size", c.PlaylistSize, "segments listed in the live playlist")
	fs.DurationVar(&c.ReconnectWindow, "reconnect-window", c.ReconnectWindow, "how long a stream waits for its encoder to come back before it ends")
	fs.StringVar(&c.Storage, "storage", c.Storage, "where segments are written: memory, dir:/path or s3://bucket/prefix")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", c.S3Endpoint, "S3 endpoint URL for non-AWS servers (MinIO, versitygw, R2...); path-style requests")
	fs.StringVar(&c.S3Region, "s3-region", c.S3Region, "S3 region (default: AWS_REGION or us-east-1)")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", c.S3AccessKey, "S3 access key (default: AWS_ACCESS_KEY_ID)")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", c.S3SecretKey, "S3 secret key (default: AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&c.SegmentFormat, "segment-format", c.SegmentFormat, "segment container: fmp4 (CMAF) or ts (MPEG-TS)")
	fs.BoolVar(&c.LowLatency, "low-latency", c.LowLatency, "serve Low-Latency HLS: parts, blocking playlist reloads, preload hints (--low-latency=false for classic HLS)")
	fs.DurationVar(&c.PartDuration, "part-duration", c.PartDuration, "LL-HLS part target duration")
	fs.DurationVar(&c.PartHoldBack, "part-hold-back", c.PartHoldBack, "LL-HLS PART-HOLD-BACK: how far behind live players aim to play (0: 3 part durations, the minimum the spec recommends)")
	fs.StringVar(&c.Auth, "auth", c.Auth, "publish authorisation: none (anyone may publish; the key is the name), keys (--keys-file) or webhook (--webhook-url)")
	fs.StringVar(&c.KeysFile, "keys-file", c.KeysFile, "with --auth keys: YAML file mapping secret stream keys to public names; re-read on change and on SIGHUP")
	fs.StringVar(&c.WebhookURL, "webhook-url", c.WebhookURL, "with --auth webhook: URL that is POSTed each publish (and publish_ended, stream_ended events)")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", c.WebhookSecret, "HMAC-SHA256 secret signing webhook requests (prefer FOUNT_WEBHOOK_SECRET)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, "how long a publish waits for the webhook's answer before it is refused")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "open RTMP connections at most; at the limit a new connection closes the oldest one that has not published")
	fs.IntVar(&c.MaxPublishers, "max-publishers", c.MaxPublishers, "RTMP connections publishing at once; beyond it publish is refused")
	fs.IntVar(&c.MaxStreams, "max-streams", c.MaxStreams, "streams held (live, waiting for a reconnect, or ended and not yet removed); publishing a new name beyond it is refused")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "time from an RTMP connection's accept to its publish; connections that have not published by then are closed")
	fs.DurationVar(&c.RTMPIdleTimeout, "rtmp-idle-timeout", c.RTMPIdleTimeout, "an RTMP connection that sends nothing for this long is closed")
	fs.Var(&c.MaxMessageSize, "max-message-size", "largest RTMP message (one video frame) accepted, in bytes or with a K or M suffix (1024-based)")
	fs.Var(&c.RTMPChunkSize, "rtmp-chunk-size", "RTMP chunk size announced to every client at connect; encoders that mirror it (ffmpeg) publish in chunks this large (bytes, or with a K or M suffix)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", c.HTTPIdleTimeout, "how long an idle keep-alive HTTP connection is kept open")
	fs.IntVar(&c.HTTPLoops, "http-loops", c.HTTPLoops, "event loops answering plain GET/HEAD of playlists and media on the viewer port (0: one per CPU; -1: none, net/http answers every request)")
	fs.DurationVar(&c.HTTPWriteTimeout, "http-write-timeout", c.HTTPWriteTimeout, "longest time to answer one HTTP request, LL-HLS blocking wait included (0: 3 × the longest segment + 1m)")
	fs.BoolVar(&c.ReusePort, "reuse-port", c.ReusePort, "listen with SO_REUSEPORT, so that a successor can bind the same ports during a handover (SIGUSR2)")
	fs.DurationVar(&c.HandoverGrace, "handover-grace", c.HandoverGrace, "after a handover (SIGUSR2), how long viewers are still answered while the successor starts (with --reuse-port)")
}

// byteSize is a flag value in bytes, written as a number with an optional
// K or M suffix (KiB, MiB, KB, MB are the same: 1024-based).
type byteSize int64

func (b *byteSize) String() string {
	switch v := int64(*b); {
	case v != 0 && v%(1<<20) == 0:
		return strconv.FormatInt(v>>20, 10) + "MiB"
	case v != 0 && v%(1<<10) == 0:
		return strconv.FormatInt(v>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(v, 10)
	}
}

func (b *byteSize) Set(s string) error {
	num := strings.TrimSpace(s)
	mult := int64(1)
	lower := strings.ToLower(num)
	for _, suf := range []struct {
		s string
		m int64
	}{{"mib", 1 << 20}, {"mb", 1 << 20}, {"m", 1 << 20}, {"kib", 1 << 10}, {"kb", 1 << 10}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(lower, suf.s) {
			num, mult = strings.TrimSpace(num[:len(num)-len(suf.s)]), suf.m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return fmt.Errorf("%q: want a number of bytes, optionally with a K or M suffix (8M, 512K, 1048576)", s)
	}
	*b = byteSize(n * mult)
	return nil
}

func (b *byteSize) Type() string { return "bytes" }

// longestSegment is the longest segment the segmenter makes at this
// segment duration: its cap (segmenter.Config.MaxSegmentDuration).
func longestSegment(segmentDuration time.Duration) time.Duration {
	return max(3*segmentDuration, 10*time.Second)
}

// httpWriteTimeout is --http-write-timeout, or its derived default. An
// LL-HLS blocking request waits up to 3 target durations (rfc8216bis) and
// the target grows to the longest segment, so the timeout must exceed
// that; the minute on top is for sending a segment to a slow viewer (one
// slower than that cannot play the stream live anyway).
func (c config) httpWriteTimeout() time.Duration {
	if c.HTTPWriteTimeout > 0 {
		return c.HTTPWriteTimeout
	}
	return 3*longestSegment(c.SegmentDuration) + time.Minute
}

func (c *config) validate() error {
	var errs []error
	if c.SegmentDuration < 500*time.Millisecond || c.SegmentDuration > 60*time.Second {
		errs = append(errs, fmt.Errorf("--segment-duration %s: must be between 500ms and 60s", c.SegmentDuration))
	}
	if c.PlaylistSize < 3 || c.PlaylistSize > 1000 {
		errs = append(errs, fmt.Errorf("--playlist-size %d: must be between 3 and 1000", c.PlaylistSize))
	}
	if c.ReconnectWindow < 0 {
		errs = append(errs, fmt.Errorf("--reconnect-window %s: must not be negative", c.ReconnectWindow))
	}
	if err := storage.ValidName(c.App); err != nil {
		errs = append(errs, fmt.Errorf("--app %q: must be a name like a stream key (letters, digits, '-', '_', '.'): %w", c.App, err))
	}
	if c.SegmentFormat != "fmp4" && c.SegmentFormat != "ts" {
		errs = append(errs, fmt.Errorf("--segment-format %q: want fmp4 or ts", c.SegmentFormat))
	}
	if c.LowLatency && (c.PartDuration < 50*time.Millisecond || c.PartDuration > c.SegmentDuration/2) {
		errs = append(errs, fmt.Errorf("--part-duration %s: must be between 50ms and half the segment duration (%s)", c.PartDuration, c.SegmentDuration/2))
	}
	if c.RTMPSAddr != "" && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, fmt.Errorf("--rtmps-addr %s: needs --tls-cert and --tls-key", c.RTMPSAddr))
	}
	if c.APIAddr != "" && !isLoopback(c.APIAddr) && c.APIToken == "" {
		errs = append(errs, fmt.Errorf("--api-addr %s is reachable from other machines: set --api-token (or FOUNT_API_TOKEN)", c.APIAddr))
	}
	switch c.Auth {
	case "none":
	case "keys":
		if c.KeysFile == "" {
			errs = append(errs, errors.New("--auth keys: needs --keys-file"))
		}
	case "webhook":
		if c.WebhookURL == "" || c.WebhookSecret == "" {
			errs = append(errs, errors.New("--auth webhook: needs --webhook-url and --webhook-secret (or FOUNT_WEBHOOK_SECRET)"))
		}
	default:
		errs = append(errs, fmt.Errorf("--auth %q: want none, keys or webhook", c.Auth))
	}
	if c.MaxConnections < 1 || c.MaxConnections > 1_000_000 {
		errs = append(errs, fmt.Errorf("--max-connections %d: must be between 1 and 1000000", c.MaxConnections))
	}
	if c.MaxPublishers < 1 || c.MaxPublishers > c.MaxConnections {
		// At most MaxConnections: else every slot could publish and
		// nothing be left to evict for a new connection.
		errs = append(errs, fmt.Errorf("--max-publishers %d: must be between 1 and --max-connections (%d)", c.MaxPublishers, c.MaxConnections))
	}
	if c.MaxStreams < 1 || c.MaxStreams > 100_000 {
		errs = append(errs, fmt.Errorf("--max-streams %d: must be between 1 and 100000", c.MaxStreams))
	}
	if c.HandoverGrace < 0 || c.HandoverGrace > time.Minute {
		errs = append(errs, fmt.Errorf("--handover-grace %s: must be between 0 and 1m", c.HandoverGrace))
	}
	if c.HandshakeTimeout < 500*time.Millisecond || c.HandshakeTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("--handshake-timeout %s: must be between 500ms and 1m", c.HandshakeTimeout))
	}
	if c.RTMPIdleTimeout < time.Second || c.RTMPIdleTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--rtmp-idle-timeout %s: must be between 1s and 10m", c.RTMPIdleTimeout))
	}
	if c.MaxMessageSize < 64<<10 || c.MaxMessageSize >= 16<<20 {
		// RTMP message lengths are 24-bit.
		errs = append(errs, fmt.Errorf("--max-message-size %s: must be at least 64K and below 16M (RTMP's largest message)", c.MaxMessageSize.String()))
	}
	if c.RTMPChunkSize < 128 || c.RTMPChunkSize > 0xFFFFFF {
		// 128 is RTMP's default; go-rtmp and most clients cap chunks at 24 bits.
		errs = append(errs, fmt.Errorf("--rtmp-chunk-size %s: must be between 128 and 16777215 bytes", c.RTMPChunkSize.String()))
	}
	if c.HTTPIdleTimeout < time.Second || c.HTTPIdleTimeout > time.Hour {
		errs = append(errs, fmt.Errorf("--http-idle-timeout %s: must be between 1s and 1h", c.HTTPIdleTimeout))
	}
	if lo := 3 * longestSegment(c.SegmentDuration); c.HTTPWriteTimeout != 0 && c.HTTPWriteTimeout < lo {
		errs = append(errs, fmt.Errorf("--http-write-timeout %s: must be 0 (derived) or at least %s, the longest LL-HLS blocking wait (3 × the longest segment)", c.HTTPWriteTimeout, lo))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// envName is the variable that sets a flag: --rtmp-addr → FOUNT_RTMP_ADDR.
func envName(flag string) string {
	return "FOUNT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its FOUNT_*
// variable, so flags win over the environment.
func applyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func newServeCmd() *cobra.Command {
	cfg := defaultConfig()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the origin: accept RTMP publishers and serve HLS",
		Long: `Run the origin: accept RTMP publishers and serve HLS.

Publish:  rtmp://HOST:1935/live/KEY   (OBS: Server rtmp://HOST/live, Stream Key KEY)
Play:     http://HOST:8080/live/KEY/index.m3u8

Every flag can also be set from the environment as FOUNT_<FLAG>, e.g.
FOUNT_HTTP_ADDR=:8081, or in a YAML file given with --config (keys are the
flag names). A flag on the command line wins over the environment, which
wins over the file.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("serve takes no arguments, got %q", args)}
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			errs := []error{applyEnv(c.Flags())}
			if cfg.ConfigFile != "" {
				errs = append(errs, applyConfigFile(c.Flags(), cfg.ConfigFile))
			}
			if err := errors.Join(errs...); err != nil {
				return usageError{err}
			}
			if err := cfg.validate(); err != nil {
				return usageError{err}
			}
			log := newLogger(cfg, c.ErrOrStderr())
			return serve(c.Context(), cfg, log, nil)
		},
	}
	cfg.flags(cmd.Flags())
	// Not in (*config).flags, so that a config file cannot name itself.
	cmd.Flags().StringVar(&cfg.ConfigFile, "config", "", "YAML file with the same keys as the flags (check it with 'fount config check FILE')")
	return cmd
}

func newLogger(cfg config, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel)) // validated
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// shutdownGrace bounds how long viewers get to fetch the final playlists on
// SIGTERM; the whole shutdown stays under 5 s.
const shutdownGrace = 3 * time.Second

// running describes a started origin, for tests (which listen on ":0").
type running struct {
	rtmpAddr, httpAddr, apiAddr, rtmpsAddr string
	reg                                    *playlist.Registry
}

// serve runs the origin until ctx is done. ready, if set, is called once
// both listeners are up.
func serve(ctx context.Context, cfg config, log *slog.Logger, ready func(running)) error {
	openCtx, cancelOpen := context.WithTimeout(ctx, 30*time.Second)
	store, err := storage.OpenContext(openCtx, cfg.Storage, storage.S3Options{
		Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Logger: log,
	})
	cancelOpen()
	if err != nil {
		return err
	}
	uploads, _ := store.(*storage.Async)
	var auth ingest.Authorizer = ingest.AllowAll{}
	var keys *ingest.Keys
	var hook *ingest.Webhook
	switch cfg.Auth {
	case "keys":
		if keys, err = ingest.LoadKeys(cfg.KeysFile); err != nil {
			return err
		}
		auth = keys
		log.Info("publish auth: stream keys", "file", cfg.KeysFile, "streams", keys.Len())
	case "webhook":
		if hook, err = ingest.NewWebhook(ingest.WebhookConfig{URL: cfg.WebhookURL, Secret: []byte(cfg.WebhookSecret), Timeout: cfg.WebhookTimeout, Logger: log}); err != nil {
			return err
		}
		auth = hook
		log.Info("publish auth: webhook", "timeout", cfg.WebhookTimeout)
	default:
		log.Warn("publish auth is off: anyone who reaches the RTMP port can publish, and the stream key is the public name (--auth keys or webhook)")
	}
	reconnect := max(cfg.ReconnectWindow, time.Millisecond) // 0 means "end at once"
	// The playlist copies what it keeps (to memory files), so every
	// segment of a stream is built in one buffer.
	segCfg := segmenter.Config{TargetDuration: cfg.SegmentDuration, Logger: log, Counters: new(segmenter.Counters),
		MaxSegmentDuration: longestSegment(cfg.SegmentDuration), ReuseBuffer: true}
	plCfg := playlist.Config{
		Store:           store,
		TargetDuration:  cfg.SegmentDuration,
		WindowSize:      cfg.PlaylistSize,
		ReconnectWindow: reconnect,
		MaxStreams:      cfg.MaxStreams,
		Logger:          log,
	}
	if hook != nil {
		plCfg.OnStreamEnded = func(path string) { hook.Notify("stream_ended", map[string]any{"stream": path}) }
	}
	if cfg.SegmentFormat == "fmp4" {
		segCfg.Format, plCfg.FMP4 = segmenter.FormatFMP4, true
	}
	if cfg.LowLatency {
		segCfg.PartDuration, plCfg.PartTarget, plCfg.PartHoldBack = cfg.PartDuration, cfg.PartDuration, cfg.PartHoldBack
		// The playlist keeps every part and makes the segment from them:
		// the segmenter holds one part per stream, not a segment.
		segCfg.PartsOnly = true
	}
	reg := playlist.NewRegistry(plCfg)
	// A successor after a handover serves the handed-over streams at
	// once, before their encoders are back.
	if !strings.HasPrefix(cfg.Storage, "memory") {
		adopted, err := reg.Adopt(ctx, cfg.App)
		if err != nil {
			return err
		}
		if len(adopted) > 0 {
			log.Info("serving streams handed over by an earlier process", "streams", len(adopted))
		}
	}
	rtmpLn, err := listen(ctx, cfg.RTMPAddr, cfg.ReusePort)
	if err != nil {
		return fmt.Errorf("rtmp: %w", err)
	}
	httpLn, err := listen(ctx, cfg.HTTPAddr, cfg.ReusePort)
	if err != nil {
		rtmpLn.Close()
		return fmt.Errorf("http: %w", err)
	}
	var apiLn, rtmpsLn net.Listener
	closeAll := func() {
		for _, ln := range []net.Listener{rtmpLn, httpLn, apiLn} {
			if ln != nil {
				ln.Close()
			}
		}
	}
	if cfg.APIAddr != "" {
		if apiLn, err = listen(ctx, cfg.APIAddr, cfg.ReusePort); err != nil {
			closeAll()
			return fmt.Errorf("api: %w", err)
		}
	}
	var certs *ingest.CertReloader
	if cfg.RTMPSAddr != "" {
		if certs, err = ingest.NewCertReloader(cfg.TLSCert, cfg.TLSKey); err != nil {
			closeAll()
			return err
		}
		tcp, err := listen(ctx, cfg.RTMPSAddr, cfg.ReusePort)
		if err != nil {
			closeAll()
			return fmt.Errorf("rtmps: %w", err)
		}
		rtmpsLn = tls.NewListener(tcp, certs.TLSConfig())
	}

	pub := &publisher{reg: reg, log: log, seg: segCfg, hook: hook}
	var ingestPub ingest.Publisher = pub
	if cfg.hooks != nil && cfg.hooks.publisher != nil {
		ingestPub = cfg.hooks.publisher(pub)
	}
	rtmpSrv := ingest.NewServer(ingest.Config{
		App: cfg.App, Logger: log, Auth: auth,
		ReadTimeout: cfg.RTMPIdleTimeout, HandshakeTimeout: cfg.HandshakeTimeout, MaxMessageSize: uint32(cfg.MaxMessageSize),
		ChunkSize: uint32(cfg.RTMPChunkSize), MaxConnections: cfg.MaxConnections, MaxPublishers: cfg.MaxPublishers,
	}, ingestPub)
	mets := newMetrics(rtmpSrv, reg, uploads, segCfg.Counters)
	httpPanics := new(httpPanicCounts)
	mets.reg.MustRegister(&limitsCollector{rtmp: rtmpSrv, pl: reg, seg: segCfg.Counters, http: httpPanics})
	viewer := reg.Handler()
	if cfg.hooks != nil && cfg.hooks.viewer != nil {
		viewer = cfg.hooks.viewer(viewer)
	}
	mux := http.NewServeMux()
	health(mux, reg.Ready)
	// Recovered inside instrument, so that the 500 is counted as a request.
	mux.Handle("/", mets.instrument(recoverHTTP("http", &httpPanics.viewer, log, viewer)))
	loops := cfg.HTTPLoops
	if cfg.hooks != nil && cfg.hooks.viewer != nil {
		loops = -1 // the hook must see every request
	}
	httpSrv := reg.NewServer(playlist.ServerConfig{
		Fallback: newHTTPServer(playlist.CleanPathsOnly(mux), log, cfg),
		Loops:    loops,
		// As newHTTPServer's.
		IdleTimeout: cfg.HTTPIdleTimeout, ReadHeaderTimeout: httpReadHeaderTimeout, WriteTimeout: cfg.httpWriteTimeout(),
		MaxHeaderBytes: httpMaxHeaderBytes,
		Observe:        mets.observe,
		Panicked:       func() { httpPanics.viewer.Add(1) },
		Logger:         log,
	})
	var apiSrv *http.Server
	if apiLn != nil {
		apiMux := http.NewServeMux()
		health(apiMux, reg.Ready)
		a := &api{reg: reg, rtmp: rtmpSrv, pub: pub, httpPort: httpLn.Addr().(*net.TCPAddr).Port}
		a.routes(apiMux, mets.handler(), cfg.APIToken)
		apiMux.Handle("/", webHandler())
		apiSrv = newHTTPServer(recoverHTTP("api", &httpPanics.api, log, apiMux), log, cfg)
	}

	ingestCtx, stopIngest := context.WithCancel(context.Background())
	regCtx, stopReg := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	ingestDone := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); reg.Run(regCtx) }()
	if keys != nil {
		wg.Add(1)
		go func() { defer wg.Done(); keys.Watch(regCtx, 2*time.Second, log) }()
	}
	if hook != nil {
		wg.Add(1)
		go func() { defer wg.Done(); hook.Run(regCtx) }()
	}
	if uploads != nil {
		wg.Add(1)
		go func() { defer wg.Done(); uploads.Run(regCtx) }()
	}
	go func() {
		defer close(ingestDone)
		var ingestWG sync.WaitGroup
		if rtmpsLn != nil {
			ingestWG.Add(1)
			go func() {
				defer ingestWG.Done()
				if err := rtmpSrv.Serve(ingestCtx, rtmpsLn); err != nil {
					errc <- fmt.Errorf("rtmps: %w", err)
				}
			}()
		}
		if err := rtmpSrv.Serve(ingestCtx, rtmpLn); err != nil {
			errc <- fmt.Errorf("rtmp: %w", err)
		}
		ingestWG.Wait()
	}()
	// SIGHUP re-reads what can change without a restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-regCtx.Done():
				return
			case <-hup:
				if keys != nil {
					if err := keys.Reload(); err != nil {
						log.Error("SIGHUP: keeping the old stream keys", "err", err)
					} else {
						log.Info("SIGHUP: stream keys reloaded", "streams", keys.Len())
					}
				}
				if certs != nil {
					if err := certs.Reload(); err != nil {
						log.Error("SIGHUP: keeping the old RTMPS certificate", "err", err)
					} else {
						log.Info("SIGHUP: RTMPS certificate reloaded")
					}
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		if err := httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	apiAddr := ""
	if apiSrv != nil {
		apiAddr = apiLn.Addr().String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := apiSrv.Serve(apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("api: %w", err)
			}
		}()
	}
	rtmpsAddr := ""
	if rtmpsLn != nil {
		rtmpsAddr = rtmpsLn.Addr().String()
	}
	log.Info("fount serving", "version", version, "rtmp", rtmpLn.Addr().String(), "http", httpLn.Addr().String(), "api", apiAddr, "rtmps", rtmpsAddr,
		"app", cfg.App, "storage", cfg.Storage, "format", cfg.SegmentFormat, "low_latency", cfg.LowLatency, "publish", "rtmp://HOST"+portOf(rtmpLn)+"/"+cfg.App+"/KEY",
		"play", "http://HOST"+portOf(httpLn)+"/"+cfg.App+"/KEY/index.m3u8")
	if ready != nil {
		ready(running{rtmpAddr: rtmpLn.Addr().String(), httpAddr: httpLn.Addr().String(), apiAddr: apiAddr, rtmpsAddr: rtmpsAddr, reg: reg})
	}

	handover := make(chan os.Signal, 1)
	signal.Notify(handover, sigHandover)
	defer signal.Stop(handover)
	var runErr error
	handingOver := false
	select {
	case <-ctx.Done():
		log.Info("shutting down: ending playlists")
	case runErr = <-errc:
		log.Error("shutting down after a listener failed", "err", runErr)
	case <-handover:
		handingOver = true
		log.Info("handover: closing RTMP and disconnecting encoders; playlists stay open for a successor")
	}
	// Publishers go first so their last segments are flushed, then every
	// playlist gets EXT-X-ENDLIST while viewers can still fetch it — or,
	// on a handover, stays open for the successor to continue.
	stopIngest()
	<-ingestDone
	if handingOver {
		grace := cfg.HandoverGrace
		if !cfg.ReusePort {
			grace = 0 // the successor cannot bind until this process lets go
		}
		handOver(ctx, log, reg, uploads, httpSrv, grace)
	} else {
		reg.EndAll()
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	httpSrv.Shutdown(sctx)
	cancel()
	httpSrv.Close()
	if apiSrv != nil {
		apiSrv.Close()
	}
	if uploads != nil {
		// Give the final playlists and segments a moment to reach S3.
		fctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := uploads.Flush(fctx); err != nil {
			log.Warn("shutting down with uploads pending", "pending", uploads.Stats().Pending)
		}
		cancel()
	}
	stopReg()
	wg.Wait()
	return runErr
}

// httpReadHeaderTimeout closes clients that trickle a request header
// (slowloris); a real client sends one in a packet.
const httpReadHeaderTimeout = 5 * time.Second

// httpMaxHeaderBytes: players and CDNs send well under 2 KiB of headers.
const httpMaxHeaderBytes = 16 << 10

func newHTTPServer(h http.Handler, log *slog.Logger, cfg config) *http.Server {
	write := cfg.httpWriteTimeout()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		// ReadTimeout equals WriteTimeout, not something short: net/http
		// keeps the read deadline while the handler runs and cancels the
		// request's context when it passes, which would cut LL-HLS
		// blocking requests short. Requests carry no bodies to bound.
		ReadTimeout:    write,
		WriteTimeout:   write,
		IdleTimeout:    cfg.HTTPIdleTimeout,
		MaxHeaderBytes: httpMaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func portOf(ln net.Listener) string {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		return fmt.Sprintf(":%d", a.Port)
	}
	return ""
}
