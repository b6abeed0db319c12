package main

import (
	"log/slog"
	"net/http"
	"time"
)

// httpReadHeaderTimeout closes clients that trickle a request header
// (slowloris); a real client sends one in a packet.
const httpReadHeaderTimeout = 5 * time.Second

// httpMaxHeaderBytes: players and CDNs send well under 2 KiB of headers.
const httpMaxHeaderBytes = 16 << 10

// newHTTPServer returns a net/http server for h with the --http-* timeouts
// and fount's header limits: the API port's server, and the viewer port's
// Fallback (httploop.Config, which sets its Handler), whose event loops
// take the same limits from it.
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
