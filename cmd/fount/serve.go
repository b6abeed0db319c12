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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/storage"
)

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
	httpSrv := newViewerServer(cfg, log, reg, mets, &httpPanics.viewer)
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
