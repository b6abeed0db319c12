package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/playlist/playauth"
	"github.com/fount-live/fount/rtc"
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
wins over the file.

Per-stream settings (captions, captions-name, captions-language for one
APP/NAME) go in the config file only, under its streams key; they win over
the flags for that stream. SIGHUP re-reads that key (for publishes from
then on); the file's other keys take a restart. See docs/config.md.`,
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
	cmd.Flags().StringVar(&cfg.ConfigFile, "config", "", "YAML file with the same keys as the flags, plus streams: per-stream settings (check it with 'fount config check FILE')")
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

// running describes a started origin, for tests (which listen on ":0").
type running struct {
	rtmpAddr, httpAddr, apiAddr, rtmpsAddr string
	httpsAddr                              string // where HTTPS is served: --https-addr, or --http-addr speaking TLS
	reg                                    *playlist.Registry
}

// serve runs the origin until ctx is done, a server fails or sigHandover
// comes, and returns once it has shut down (instance.shutdown). ready, if
// set, is called once every listener is open and its server started.
func serve(ctx context.Context, cfg config, log *slog.Logger, ready func(running)) error {
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	auth, err := newAuth(cfg, log)
	if err != nil {
		return err
	}
	if auth.play, err = newPlayAuth(cfg, log); err != nil {
		return err
	}
	webrtc, err := newWebRTC(cfg, log, rtc.Config{Logger: log, Listen: listenConfig(cfg.ReusePort)})
	if err != nil {
		return err
	}
	closeWebRTC := func() {
		if webrtc != nil {
			webrtc.Close()
		}
	}
	reg, seg := newRegistry(cfg, log, store, auth, webrtc)
	if err := adopt(ctx, cfg, log, reg); err != nil {
		closeWebRTC()
		return err
	}
	lns, err := openListeners(ctx, cfg, log)
	if err != nil {
		closeWebRTC()
		return err
	}
	uploads, _ := store.(*storage.Async)
	srv := newServers(cfg, log, reg, seg, auth, uploads, lns, webrtc)
	o := &instance{cfg: cfg, log: log, reg: reg, uploads: uploads, auth: auth, lns: lns, srv: srv, closeWebRTC: closeWebRTC}
	if webrtc != nil {
		o.endWHIP = webrtc.EndPublishers
	}
	o.start()
	o.announce(ready)
	handingOver, runErr := o.wait(ctx)
	o.shutdown(ctx, handingOver)
	return runErr
}

// openStore opens --storage, giving S3 30 s to answer.
func openStore(ctx context.Context, cfg config, log *slog.Logger) (storage.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return storage.OpenContext(ctx, cfg.Storage, storage.S3Options{
		Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Logger: log,
	})
}

// publishAuth is how publishes are authorised (--auth).
type publishAuth struct {
	authorizer ingest.Authorizer
	keys       *ingest.Keys    // --auth keys: watched, and reloaded on SIGHUP
	hook       *ingest.Webhook // --auth webhook: also told of streams' ends
	play       *playauth.Auth  // --play-auth: who may watch (nil: anyone)
}

// newAuth sets up --auth and logs the choice.
func newAuth(cfg config, log *slog.Logger) (publishAuth, error) {
	switch cfg.Auth {
	case "keys":
		keys, err := ingest.LoadKeys(cfg.KeysFile)
		if err != nil {
			return publishAuth{}, err
		}
		log.Info("publish auth: stream keys", "file", cfg.KeysFile, "streams", keys.Len())
		return publishAuth{authorizer: keys, keys: keys}, nil
	case "webhook":
		hook, err := ingest.NewWebhook(ingest.WebhookConfig{URL: cfg.WebhookURL, Secret: []byte(cfg.WebhookSecret), Timeout: cfg.WebhookTimeout, Logger: log})
		if err != nil {
			return publishAuth{}, err
		}
		log.Info("publish auth: webhook", "timeout", cfg.WebhookTimeout)
		return publishAuth{authorizer: hook, hook: hook}, nil
	}
	log.Warn("publish auth is off: anyone who reaches the RTMP port can publish, and the stream key is the public name (--auth keys or webhook)")
	return publishAuth{authorizer: ingest.AllowAll{}}, nil
}

// newRegistry makes the registry of live streams, and the segmenter
// configuration every publish starts from. hook, if set, is told when a
// stream ends, and so is WebRTC playback (webrtc, nil when off), whose
// viewers the registry's router hands it.
func newRegistry(cfg config, log *slog.Logger, store storage.Store, auth publishAuth, webrtc *rtc.Server) (*playlist.Registry, segmenter.Config) {
	hook := auth.hook
	reconnect := max(cfg.ReconnectWindow, time.Millisecond) // 0 means "end at once"
	// The playlist copies what it keeps (to memory files), so every
	// segment of a stream is built in one buffer.
	segCfg := segmenter.Config{TargetDuration: cfg.SegmentDuration, Logger: log, Counters: new(segmenter.Counters),
		MaxSegmentDuration: segmenter.MaxSegmentDuration(cfg.SegmentDuration), ReuseBuffer: true}
	plCfg := playlist.Config{
		Store:           store,
		TargetDuration:  cfg.SegmentDuration,
		WindowSize:      cfg.PlaylistSize,
		DVRWindow:       cfg.DVRWindow,
		Record:          cfg.Record,
		RecordRetention: cfg.RecordRetention,
		ReconnectWindow: reconnect,
		MaxStreams:      cfg.MaxStreams,
		Logger:          log,
	}
	plCfg.AdMarkers, _ = playlist.ParseAdMarkers(cfg.AdMarkers) // checked by validate
	if auth.play != nil {
		plCfg.PlayAuth = auth.play
	}
	if cfg.Encrypt == "aes-128" {
		plCfg.Encrypt, plCfg.KeyRotation, plCfg.KeyDir, plCfg.KeyURLTemplate = true, cfg.KeyRotation, cfg.KeyDir, cfg.KeyURLTemplate
		if cfg.KeyURLTemplate != "" {
			plCfg.KeyServer = newKeyServer(cfg.KeyServerSecret)
		}
		log.Info("segment encryption: aes-128", "key_rotation", cfg.KeyRotation, "key_dir", cfg.KeyDir, "key_server", cfg.KeyURLTemplate != "")
	}
	if webrtc != nil {
		plCfg.WebRTC = webrtc
	}
	plCfg.OnStreamEnded = func(path string) {
		if webrtc != nil {
			webrtc.End(path) // its WebRTC viewers' sessions close
		}
		if hook != nil {
			hook.Notify("stream_ended", map[string]any{"stream": path})
		}
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
	return playlist.NewRegistry(plCfg), segCfg
}

// adopt has the registry serve the streams an earlier process handed over
// at once, before their encoders are back, and know the recordings it
// left. Memory storage holds neither.
func adopt(ctx context.Context, cfg config, log *slog.Logger, reg *playlist.Registry) error {
	if strings.HasPrefix(cfg.Storage, "memory") {
		return nil
	}
	if cfg.Record {
		// Before any stream: one that continues continues its recording.
		if err := reg.LoadRecordings(ctx); err != nil {
			return err
		}
	}
	adopted, err := reg.Adopt(ctx, cfg.App)
	if err != nil {
		return err
	}
	if len(adopted) > 0 {
		log.Info("serving streams handed over by an earlier process", "streams", len(adopted))
	}
	return nil
}

// servers are the origin's servers, one per kind of port.
type servers struct {
	rtmp  *ingest.Server   // the RTMP and RTMPS ports
	http  *httploop.Server // the viewer port
	https *http.Server     // viewers' HTTPS (--http-tls-cert or --acme-domains); nil without it
	api   *http.Server     // nil without --api-addr
	pub   *publisher       // per-stream settings reloaded on SIGHUP (streams.go)
}

// newServers builds the RTMP server, with the publisher that gives each
// publish a segmenter feeding the registry; the metrics of the servers and
// the registry; the viewer port's server, its HTTPS server with
// --http-tls-cert; and the API's, if it listens.
func newServers(cfg config, log *slog.Logger, reg *playlist.Registry, seg segmenter.Config, auth publishAuth, uploads *storage.Async, lns listeners, webrtc *rtc.Server) servers {
	pub := &publisher{reg: reg, log: log, seg: seg, hook: auth.hook, cc: cfg.Captions, rtc: webrtc}
	pub.streams.Store(cfg.Streams)
	var ingestPub ingest.Publisher = pub
	if cfg.hooks != nil && cfg.hooks.publisher != nil {
		ingestPub = cfg.hooks.publisher(pub)
	}
	rtmpSrv := ingest.NewServer(ingest.Config{
		App: cfg.App, Logger: log, Auth: auth.authorizer,
		ReadTimeout: cfg.RTMPIdleTimeout, HandshakeTimeout: cfg.HandshakeTimeout, MaxMessageSize: uint32(cfg.MaxMessageSize),
		ChunkSize: uint32(cfg.RTMPChunkSize), MaxConnections: cfg.MaxConnections, MaxPublishers: cfg.MaxPublishers,
	}, ingestPub)
	mets := newMetrics(rtmpSrv, reg, uploads, seg.Counters)
	if webrtc != nil {
		// WHIP ingest: the same authorisation and publish path as RTMP.
		webrtc.SetIngest(rtc.Ingest{App: cfg.App, Auth: auth.authorizer, Publisher: ingestPub, Format: seg.Format})
		mets.reg.MustRegister(webrtcCollector{webrtc})
	}
	mets.reg.MustRegister(metadataCollector{&pub.metaStats})
	mets.reg.MustRegister(cueCollector{&pub.cues})
	httpPanics := new(httpPanicCounts)
	mets.reg.MustRegister(&limitsCollector{rtmp: rtmpSrv, pl: reg, seg: seg.Counters, http: httpPanics})
	if auth.play != nil {
		mets.reg.MustRegister(playAuthCollector{auth.play})
	}
	var challenges http.Handler
	if _, tlsOnly := cfg.viewerTLS(); lns.acme != nil && !tlsOnly {
		// HTTP-01 on the plain port too, for a CA that reaches it as
		// port 80 (TLS-ALPN-01 needs the TLS port reached as 443).
		challenges = lns.acme.challengeHandler()
	}
	viewer, viewerHandler := newViewerServer(cfg, log, reg, mets, &httpPanics.viewer, challenges)
	s := servers{rtmp: rtmpSrv, http: viewer, pub: pub}
	switch {
	case lns.httpCerts != nil:
		s.https = newHTTPSServer(viewerHandler, lns.httpCerts.TLSConfig(), log, cfg)
	case lns.acme != nil:
		s.https = newHTTPSServer(viewerHandler, lns.acme.tlsConfig(), log, cfg)
	}
	if lns.api != nil {
		apiMux := http.NewServeMux()
		health(apiMux, reg.Ready)
		a := &api{reg: reg, rtmp: rtmpSrv, pub: pub, rtc: webrtc, httpPort: lns.http.Addr().(*net.TCPAddr).Port, httpScheme: "http"}
		if _, tlsOnly := cfg.viewerTLS(); tlsOnly {
			a.httpScheme = "https"
		}
		a.routes(apiMux, mets.handler(), cfg.APIToken)
		apiMux.Handle("/", webHandler())
		s.api = newHTTPServer(recoverHTTP("api", &httpPanics.api, log, apiMux), log, cfg)
	}
	return s
}
