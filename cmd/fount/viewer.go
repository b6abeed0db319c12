package main

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/playlist/httploop"
)

// newViewerServer makes the viewer port's server: the event loops answer
// plain requests from reg, net/http the rest with reg's Handler, both
// through httploop's viewer middleware, which counts every answer in mets
// and every recovered panic in panics; /healthz and /readyz are outside
// it, as on the API port, and so are ACME's HTTP-01 challenges, if
// challenges is set: the loops decline those paths (reg has no stream
// there), so net/http gets them. It also returns the handler net/http
// answers with there (routes, middleware and all), which HTTPS serves as
// it is.
func newViewerServer(cfg config, log *slog.Logger, reg *playlist.Registry, mets *metrics, panics *atomic.Uint64, challenges http.Handler) (*httploop.Server, http.Handler) {
	viewer := reg.Handler()
	if cfg.hooks != nil && cfg.hooks.viewer != nil {
		viewer = cfg.hooks.viewer(viewer)
	}
	routes := http.NewServeMux()
	health(routes, reg.Ready)
	if challenges != nil {
		routes.Handle(acmeChallengePath, challenges)
	}
	fallback := newHTTPServer(nil, log, cfg) // the loops keep its timeouts too
	origins, _ := cfg.origins()              // validate has checked it
	srv := httploop.NewServer(httploop.Config{
		Source:   reg,
		Viewer:   viewer,
		Routes:   routes,
		Observer: viewerObserver{mets: mets, panics: panics, log: log},
		Fallback: fallback,
		WrapConn: playlist.WrapConn,
		Loops:    cfg.HTTPLoops,
		Origins:  origins,
		Logger:   log,
	})
	return srv, fallback.Handler // NewServer has set it
}

// viewerObserver is the viewer port's httploop.Observer.
type viewerObserver struct {
	mets   *metrics
	panics *atomic.Uint64
	log    *slog.Logger
}

func (o viewerObserver) Observe(path []byte, status int, bodyBytes int64) {
	o.mets.observe(path, status, bodyBytes)
}

func (o viewerObserver) Panicked(p httploop.Panic) {
	o.panics.Add(1)
	logPanic(o.log, "http", p)
}
