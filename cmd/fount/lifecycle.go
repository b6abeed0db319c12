package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/storage"
)

// shutdownGrace bounds how long viewers get to fetch the final playlists on
// SIGTERM; the whole shutdown stays under 5 s.
const shutdownGrace = 3 * time.Second

// instance is an origin serve has built, and the goroutines that run it.
// start starts every goroutine in one of three groups, by what ends it;
// shutdown ends them all.
type instance struct {
	cfg     config
	log     *slog.Logger
	reg     *playlist.Registry
	uploads *storage.Async // nil unless storage is S3
	auth    publishAuth
	lns     listeners
	srv     servers
	// closeWebRTC ends WebRTC playback's sessions and closes its ports.
	closeWebRTC func()
	// endWHIP ends the WHIP publishers (with RTMP's, before the playlists).
	endWHIP func()

	// ingestWG: the RTMP and RTMPS servers, until stopIngest.
	ingestWG   sync.WaitGroup
	stopIngest context.CancelFunc
	// httpWG: the viewer, HTTPS and API servers, until their Close.
	httpWG sync.WaitGroup
	// bgWG: the registry's sweeps, the stream keys' watch, the webhook's
	// and the uploads' queues, the SIGHUP reloads and the ACME
	// certificates' warm-up, until stopBackground.
	bgWG           sync.WaitGroup
	stopBackground context.CancelFunc
	// errc takes the servers' failures, a slot for each server goroutine
	// so that none blocks: wait reads the first.
	errc chan error
	// handover takes sigHandover, from start to the end of shutdown (a
	// second one must not kill the process during the handover).
	handover chan os.Signal
}

// start starts the origin's goroutines, and takes SIGHUP and sigHandover
// until shutdown: the one to reload, the other for wait.
func (o *instance) start() {
	ingestCtx, stopIngest := context.WithCancel(context.Background())
	bgCtx, stopBackground := context.WithCancel(context.Background())
	o.stopIngest, o.stopBackground = stopIngest, stopBackground
	o.errc = make(chan error, 5)
	o.handover = make(chan os.Signal, 1)
	signal.Notify(o.handover, sigHandover)

	o.bgWG.Go(func() { o.reg.Run(bgCtx) })
	if keys := o.auth.keys; keys != nil {
		o.bgWG.Go(func() { keys.Watch(bgCtx, 2*time.Second, o.log) })
	}
	if hook := o.auth.hook; hook != nil {
		o.bgWG.Go(func() { hook.Run(bgCtx) })
	}
	if o.uploads != nil {
		o.bgWG.Go(func() { o.uploads.Run(bgCtx) })
	}
	if a := o.lns.acme; a != nil {
		o.bgWG.Go(func() { a.warm(bgCtx) })
	}
	if o.lns.rtmps != nil {
		o.ingestWG.Go(func() { o.failed("rtmps", o.srv.rtmp.Serve(ingestCtx, o.lns.rtmps)) })
	}
	o.ingestWG.Go(func() { o.failed("rtmp", o.srv.rtmp.Serve(ingestCtx, o.lns.rtmp)) })
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	o.bgWG.Go(func() {
		defer signal.Stop(hup)
		o.reloadOnHUP(bgCtx, hup)
	})
	// With --http-tls-cert and no --https-addr the viewer port speaks TLS
	// only, so net/http serves it all and the event loops sit idle.
	_, tlsOnly := o.cfg.viewerTLS()
	if tlsOnly {
		o.httpWG.Go(func() { o.failed("http", o.srv.https.ServeTLS(o.lns.http, "", "")) })
	} else {
		o.httpWG.Go(func() { o.failed("http", o.srv.http.Serve(o.lns.http)) })
	}
	if o.lns.https != nil {
		o.httpWG.Go(func() { o.failed("https", o.srv.https.ServeTLS(o.lns.https, "", "")) })
	}
	if o.srv.api != nil {
		o.httpWG.Go(func() { o.failed("api", o.srv.api.Serve(o.lns.api)) })
	}
}

// wait waits for ctx to be done, a server to fail or sigHandover, and
// returns whether to hand over, or the server's failure if that was it.
func (o *instance) wait(ctx context.Context) (handingOver bool, runErr error) {
	select {
	case <-ctx.Done():
		o.log.Info("shutting down: ending playlists")
	case runErr = <-o.errc:
		o.log.Error("shutting down after a listener failed", "err", runErr)
	case <-o.handover:
		handingOver = true
		o.log.Info("handover: closing RTMP and disconnecting encoders; playlists stay open for a successor")
	}
	return handingOver, runErr
}

// failed hands a server's error, if it is one, to wait.
// http.ErrServerClosed is the HTTP servers' end at shutdown.
func (o *instance) failed(server string, err error) {
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		o.errc <- fmt.Errorf("%s: %w", server, err)
	}
}

// reloadOnHUP re-reads, at each SIGHUP until ctx is done, what can change
// without a restart: the stream keys, the RTMPS and HTTPS certificates,
// and the config file's per-stream settings (streams.go). A certificate
// or file that fails to load leaves the old one in use.
func (o *instance) reloadOnHUP(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if keys := o.auth.keys; keys != nil {
			if err := keys.Reload(); err != nil {
				o.log.Error("SIGHUP: keeping the old stream keys", "err", err)
			} else {
				o.log.Info("SIGHUP: stream keys reloaded", "streams", keys.Len())
			}
		}
		if certs := o.lns.certs; certs != nil {
			if err := certs.Reload(); err != nil {
				o.log.Error("SIGHUP: keeping the old RTMPS certificate", "err", err)
			} else {
				o.log.Info("SIGHUP: RTMPS certificate reloaded")
			}
		}
		if certs := o.lns.httpCerts; certs != nil {
			if err := certs.Reload(); err != nil {
				o.log.Error("SIGHUP: keeping the old HTTPS certificate", "err", err)
			} else {
				o.log.Info("SIGHUP: HTTPS certificate reloaded")
			}
		}
		if o.cfg.ConfigFile != "" && o.srv.pub != nil {
			o.reloadStreams()
		}
	}
}

// announce logs where the origin serves, and calls ready if set.
func (o *instance) announce(ready func(running)) {
	rtmpLn, httpLn, cfg := o.lns.rtmp, o.lns.http, o.cfg
	apiAddr := ""
	if o.lns.api != nil {
		apiAddr = o.lns.api.Addr().String()
	}
	rtmpsAddr := ""
	if o.lns.rtmps != nil {
		rtmpsAddr = o.lns.rtmps.Addr().String()
	}
	// https is where HTTPS is served: --https-addr, or the viewer port
	// itself when it speaks TLS only (then http and https are the same).
	httpsAddr, play := "", "http://HOST"+portOf(httpLn)
	if _, tlsOnly := cfg.viewerTLS(); tlsOnly {
		httpsAddr, play = httpLn.Addr().String(), "https://HOST"+portOf(httpLn)
	} else if o.lns.https != nil {
		httpsAddr = o.lns.https.Addr().String()
	}
	o.log.Info("fount serving", "version", version, "rtmp", rtmpLn.Addr().String(), "http", httpLn.Addr().String(), "https", httpsAddr, "api", apiAddr, "rtmps", rtmpsAddr,
		"app", cfg.App, "storage", cfg.Storage, "format", cfg.SegmentFormat, "low_latency", cfg.LowLatency, "publish", "rtmp://HOST"+portOf(rtmpLn)+"/"+cfg.App+"/KEY",
		"play", play+"/"+cfg.App+"/KEY/index.m3u8")
	if ready != nil {
		ready(running{rtmpAddr: rtmpLn.Addr().String(), httpAddr: httpLn.Addr().String(), httpsAddr: httpsAddr, apiAddr: apiAddr, rtmpsAddr: rtmpsAddr, reg: o.reg})
	}
}

func portOf(ln net.Listener) string {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		return fmt.Sprintf(":%d", a.Port)
	}
	return ""
}

// shutdown ends the origin in order, and returns when every goroutine has
// ended. Publishers go first so their last segments are flushed, then
// every playlist gets EXT-X-ENDLIST while viewers can still fetch it — or,
// on a handover, stays open for the successor to continue (handOver).
// Viewers get shutdownGrace to finish, the API closes, the uploads get a
// second to reach S3, and the background goroutines stop last.
func (o *instance) shutdown(ctx context.Context, handingOver bool) {
	o.stopIngest()
	o.ingestWG.Wait()
	if o.endWHIP != nil {
		o.endWHIP()
	}
	if handingOver {
		grace := o.cfg.HandoverGrace
		if !o.cfg.ReusePort {
			grace = 0 // the successor cannot bind until this process lets go
		}
		viewers := viewerServers{o.srv.http}
		if o.srv.https != nil {
			viewers = append(viewers, o.srv.https)
		}
		handOver(ctx, o.log, o.reg, o.uploads, viewers, grace)
	} else {
		o.reg.EndAll()
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	var httpsWG sync.WaitGroup
	if o.srv.https != nil {
		// At once with the plain port's: both share the grace.
		httpsWG.Go(func() { o.srv.https.Shutdown(sctx) })
	}
	o.srv.http.Shutdown(sctx)
	httpsWG.Wait()
	cancel()
	o.closeWebRTC() // no WHEP request is in flight any more
	o.srv.http.Close()
	if o.srv.https != nil {
		o.srv.https.Close()
	}
	if o.srv.api != nil {
		o.srv.api.Close()
	}
	if o.uploads != nil {
		// Give the final playlists and segments a moment to reach S3.
		fctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := o.uploads.Flush(fctx); err != nil {
			o.log.Warn("shutting down with uploads pending", "pending", o.uploads.Stats().Pending)
		}
		cancel()
	}
	o.stopBackground()
	if a := o.lns.acme; a != nil {
		a.close() // ends the warm-up's and handshakes' requests to the CA
	}
	o.httpWG.Wait()
	o.bgWG.Wait()
	if a := o.lns.acme; a != nil {
		a.close() // and the connections those left idle
	}
	signal.Stop(o.handover)
}
