package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/playlist/httploop"
)

// httpPanicCounts are the panics recovered in HTTP handlers, by server.
type httpPanicCounts struct {
	viewer, api atomic.Uint64
}

// recoverHTTP answers 500 to a request whose handler panicked (or cuts the
// connection if the response had begun: httploop.Recover, which the viewer
// port applies too), and logs the panic with its stack and counts it.
func recoverHTTP(server string, n *atomic.Uint64, log *slog.Logger, next http.Handler) http.Handler {
	return httploop.Recover(next, func(p httploop.Panic) {
		n.Add(1)
		logPanic(log, server, p)
	})
}

// logPanic logs a panic recovered while answering a request on server's
// port.
func logPanic(log *slog.Logger, server string, p httploop.Panic) {
	msg := "panic serving an HTTP request; recovered"
	if p.Loop {
		msg = "panic serving an HTTP request in an event loop; connection closed"
	}
	log.Error(msg, "server", server, "stream", streamOf(p.Path), "path", p.Path, "remote", p.Remote,
		"panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
}

// streamOf is the stream of a viewer path ("APP/NAME" or
// "APP/NAME/RENDITION"), or "" if the path is no stream's object.
func streamOf(path string) string {
	stream, _, _ := playlist.SplitPath(path)
	return stream
}
