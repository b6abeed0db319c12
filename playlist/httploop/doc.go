// Package httploop serves the viewer port: plain GET and HEAD requests for
// what a Source has — nearly all a player or a CDN edge sends — are
// answered by a few event loops with raw system calls, and every other
// request goes, with its connection and the bytes already read, to a
// net/http server, which keeps the connection.
//
// It owns the viewer port's connections and their timeouts, the request
// parser that decides which requests are plain, the one rendering of a
// 200's head (Head: written raw by the loops, set into an http.Header by
// the Source's own handler), and the viewer middleware that every request
// passes through on either path: path cleaning, CORS, the Observer (what
// was answered, what panicked) and panic recovery.
//
// It never knows what a path names: the Source looks paths up and the
// Viewer handler answers the rest. Its loops never answer anything but a
// 200 to a clean, plain GET or HEAD that the Source has — no error, range,
// conditional request or wait — and never block: a socket that is full
// waits for epoll while its loop answers the others.
package httploop
