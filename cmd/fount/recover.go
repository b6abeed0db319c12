package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
)

// httpPanicCounts are the panics recovered in HTTP handlers, by server.
type httpPanicCounts struct {
	viewer, api atomic.Uint64
}

// recoverHTTP answers 500 to a request whose handler panicked, and logs the
// panic with its stack and counts it. net/http would recover it too, but
// would only log it and drop the connection without an answer or a count.
// A panic after the response began cannot become a 500: the connection is
// cut (http.ErrAbortHandler), so the client sees the response is broken.
func recoverHTTP(server string, n *atomic.Uint64, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := &panicWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				panic(v) // net/http's way to abort a response; not a fault
			}
			n.Add(1)
			stream, _, _ := splitPath(r.URL.Path) // "" unless a stream's object
			log.Error("panic serving an HTTP request; recovered", "server", server, "stream", stream,
				"path", r.URL.Path, "remote", r.RemoteAddr, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if pw.wrote {
				panic(http.ErrAbortHandler)
			}
			http.Error(w, "internal server error", http.StatusInternalServerError)
		}()
		next.ServeHTTP(pw, r)
	})
}

// panicWriter notes whether the response has begun.
type panicWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *panicWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *panicWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// ReadFrom passes a body on to the connection's ReadFrom, where media in
// memory files goes out with sendfile (playlist.Listener).
func (w *panicWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wrote = true
	return io.Copy(w.ResponseWriter, r)
}

// Flush passes through (io.Copy-style handlers and SSE type-assert it).
func (w *panicWriter) Flush() {
	w.wrote = true
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *panicWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
