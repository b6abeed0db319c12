package main

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/fount-live/fount/playlist"
)

// newViewerServer builds the viewer port's server: the registry's handler
// behind the metrics and panic recovery (counted in panics), with /healthz
// and /readyz.
func newViewerServer(cfg config, log *slog.Logger, reg *playlist.Registry, mets *metrics, panics *atomic.Uint64) *playlist.Server {
	viewer := reg.Handler()
	if cfg.hooks != nil && cfg.hooks.viewer != nil {
		viewer = cfg.hooks.viewer(viewer)
	}
	mux := http.NewServeMux()
	health(mux, reg.Ready)
	// Recovered inside instrument, so that the 500 is counted as a request.
	mux.Handle("/", mets.instrument(recoverHTTP("http", panics, log, viewer)))
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
		Panicked:       func() { panics.Add(1) },
		Logger:         log,
	})
	return httpSrv
}
