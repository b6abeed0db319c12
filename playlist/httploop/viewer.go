package httploop

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"unsafe"
)

// The viewer middleware: what every viewer request passes through,
// whether a loop answers it or net/http. Server puts CleanPathsOnly,
// observe (the Observer), Recover and CORS in front of Config.Viewer; a
// loop takes the same steps itself, with the same code or values:
// cleanPath, the Observer, a recovery that reports the same Panic, and
// Head's CORS fields. Anything every viewer answer needs goes here, or the
// loops' answers miss it.

// Observer is told of every viewer request answered on the port, by a loop
// or by net/http, and of every panic recovered while answering one.
type Observer interface {
	// Observe counts a request answered: its path (valid only during the
	// call, and read-only: it may be a string's bytes), status and the body bytes written. A loop calls it as it
	// starts writing the answer, net/http once the handler has returned
	// (not when a panic cut the connection). A loop calls it for each
	// request it answers, so it should not allocate.
	Observe(path []byte, status int, bodyBytes int64)
	// Panicked reports a panic recovered while answering a request.
	Panicked(Panic)
}

// Panic describes a panic recovered while answering a request.
type Panic struct {
	Path   string // the request's path, if one was being answered
	Remote string // the client's address
	Value  any    // what was panicked
	Stack  []byte // the panicking goroutine's, from debug.Stack
	// Loop: it happened in an event loop, which closed that connection
	// and goes on with its others. Otherwise net/http was answering: the
	// answer is a 500, or the connection was cut if the response had
	// begun.
	Loop bool
}

// CleanPathsOnly answers 404 to a request whose path is not clean ("..",
// ".", "//", a trailing slash) before next sees it. It goes in front of an
// http.ServeMux, which would otherwise redirect such a path to its cleaned
// form: no viewer URL is ever unclean, and a redirect would only turn a
// probe for "/live/../../etc/passwd" into one for "/etc/passwd". The loops
// answer clean paths only.
func CleanPathsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cleanPath(r.URL.Path) {
			w.Header().Set("Cache-Control", "no-cache")
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath reports whether p is a rooted path that path.Clean leaves as
// it is: no empty, "." or ".." element and no trailing slash, but for "/".
// It does not allocate.
func cleanPath[P string | []byte](p P) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	if len(p) == 1 {
		return true
	}
	start := 1 // of the current element
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch n := i - start; {
		case n == 0, n == 1 && p[start] == '.', n == 2 && p[start] == '.' && p[start+1] == '.':
			return false
		}
		start = i + 1
	}
	return true
}

// Recover answers 500 to a request whose handler panicked, or cuts the
// connection (http.ErrAbortHandler) if the response had begun, so that the
// client sees it broken, and reports the panic. net/http would recover it
// too, but would only log it and drop the connection without an answer.
// http.ErrAbortHandler itself, net/http's way to abort a response, passes
// through unreported.
func Recover(next http.Handler, report func(Panic)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := &panicWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				panic(v)
			}
			report(Panic{Path: r.URL.Path, Remote: r.RemoteAddr, Value: v, Stack: debug.Stack()})
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

// ReadFrom passes a body on to the connection's ReadFrom (where a
// Config.WrapConn may send it with sendfile).
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

// observe tells obs of every request next answers that did not panic.
// Recover goes inside it, so that a 500 is observed too.
func observe(obs Observer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		// The Observer reads path during the call only and never writes
		// it, so the string's bytes can be lent without a copy.
		p := r.URL.Path
		obs.Observe(unsafe.Slice(unsafe.StringData(p), len(p)), sw.code, sw.n)
	})
}

// statusWriter notes the status and counts the body bytes.
type statusWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (w *statusWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom passes a body on to the connection's ReadFrom.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logObserver stands in for a missing Config.Observer: it logs panics.
type logObserver struct{ log *slog.Logger }

func (logObserver) Observe([]byte, int, int64) {}

func (o logObserver) Panicked(p Panic) {
	o.log.Error("http: panic answering a request; recovered", "path", p.Path, "remote", p.Remote, "loop", p.Loop,
		"panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
}
