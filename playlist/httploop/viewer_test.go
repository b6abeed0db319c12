package httploop

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
)

// cleanPath is path.Clean's verdict, without allocating.
func TestCleanPath(t *testing.T) {
	ref := func(p string) bool { return p == "/" || p != "" && p[0] == '/' && path.Clean(p) == p }
	cases := []string{"", "/", "//", "/a", "/a/", "a/b", "/a//b", "/a/./b", "/a/../b", "/..", "/.", "/a/.", "/a/..",
		"/...", "/a/...", "/.a", "/a./b", "/live/show/index.m3u8", "/live/show/../show/index.m3u8"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = "/.a"[rng.IntN(3)]
		}
		cases = append(cases, string(b))
	}
	for _, p := range cases {
		if got, want := cleanPath(p), ref(p); got != want {
			t.Errorf("cleanPath(%q) = %v, path.Clean says %v", p, got, want)
		}
		if cleanPath([]byte(p)) != cleanPath(p) {
			t.Errorf("cleanPath(%q): []byte and string differ", p)
		}
	}
	p := []byte("/live/show/seg12.3.m4s")
	if n := testing.AllocsPerRun(100, func() { cleanPath(p) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestCORS(t *testing.T) {
	h := CORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			http.Error(w, "no", http.StatusMethodNotAllowed)
		}
	}))
	for _, tc := range []struct {
		method      string
		code        int
		expose, max bool
	}{{"GET", 200, true, false}, {"HEAD", 200, true, false}, {"OPTIONS", 204, false, true}, {"POST", 405, true, false}} { // POST: WHEP clients read Location
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/a/b/c", nil))
		hd := rec.Header()
		if rec.Code != tc.code || hd.Get("Access-Control-Allow-Origin") != "*" ||
			(hd.Get("Access-Control-Expose-Headers") != "") != tc.expose || (hd.Get("Access-Control-Max-Age") != "") != tc.max {
			t.Errorf("%s: %d %v", tc.method, rec.Code, hd)
		}
	}
}

// observations is an Observer that keeps what it is told.
type observations struct {
	mu     sync.Mutex
	seen   []string // "path status bytes"
	panics []Panic
}

func (o *observations) Observe(path []byte, status int, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, string(path)+" "+http.StatusText(status)+" "+strings.Repeat("x", int(n)))
}

func (o *observations) Panicked(p Panic) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.panics = append(o.panics, p)
}

func (o *observations) get() ([]string, []Panic) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen...), append([]Panic(nil), o.panics...)
}

// startServer serves src and viewer on loopback.
func startServer(t *testing.T, cfg Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Fallback == nil {
		cfg.Fallback = &http.Server{}
	}
	srv := NewServer(cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// Through net/http (the loops off): Routes answer outside the viewer
// middleware; the Viewer's answers, 500s from panics included, are
// observed; unclean paths are 404 before either sees them.
func TestServerMiddleware(t *testing.T) {
	obs := &observations{}
	routes := http.NewServeMux()
	routes.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	viewer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			panic("boom")
		}
		io.WriteString(w, "abc")
	})
	addr := startServer(t, Config{Viewer: viewer, Routes: routes, Observer: obs, Loops: -1})
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/healthz", 200, "ok"}, {"POST", "/healthz", 200, "abc"}, {"GET", "/a/b", 200, "abc"},
		{"GET", "/boom", 500, "internal server error\n"}, {"GET", "/a/../b", 404, "not found\n"}, {"GET", "/a/b/", 404, "not found\n"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || string(b) != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, b, tc.code, tc.body)
		}
	}
	seen, panics := obs.get()
	if want := []string{"/healthz OK xxx", "/a/b OK xxx", "/boom Internal Server Error " + strings.Repeat("x", len("internal server error\n"))}; strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("observed %q, want %q", seen, want)
	}
	if len(panics) != 1 || panics[0].Path != "/boom" || panics[0].Value != "boom" || panics[0].Loop || !strings.HasPrefix(panics[0].Remote, "127.0.0.1:") {
		t.Errorf("panics %+v", panics)
	}
}

type nopObserver struct{}

func (nopObserver) Observe([]byte, int, int64) {}
func (nopObserver) Panicked(Panic)             {}

// headerWriter is a ResponseWriter that allocates nothing itself, so that
// AllocsPerRun counts the middleware's own allocations.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerWriter) WriteHeader(int)             {}

// The viewer middleware costs a net/http request its two writers (status
// and panic tracking) and nothing more: no copy of the path for the
// Observer, and a handler that wraps itself in CORS behind the middleware's
// own sets no field twice.
func TestViewerMiddlewareAllocs(t *testing.T) {
	body := []byte("#EXTM3U\n")
	inner := CORS(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }))
	h := observe(nopObserver{}, Recover(CORS(inner), func(Panic) {}))
	req := httptest.NewRequest(http.MethodGet, "/live/show/index.m3u8", nil)
	w := &headerWriter{h: make(http.Header)}
	n := testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, req)
	})
	// Three header values ([]string) for the CORS fields, two writers.
	if n > 5 {
		t.Errorf("the middleware allocates %v times per request, want at most 5", n)
	}
	if got := w.h.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
}
