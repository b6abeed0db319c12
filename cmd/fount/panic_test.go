package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
)

// panicHooks make the publish session of stream "boom" panic at its first
// frame, and viewer requests under /live/httpboom/ panic: stand-ins for a
// bug in the media path and in the HTTP path. The event loops are off, so
// that the hook sees every viewer request.
func panicHooks(c *config) {
	c.HTTPLoops = -1
	c.hooks = &testHooks{
		publisher: func(p ingest.Publisher) ingest.Publisher { return panicOnName{p} },
		viewer: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/live/httpboom/") {
					panic("test: a bug in the viewer path")
				}
				h.ServeHTTP(w, r)
			})
		},
	}
}

type panicOnName struct{ ingest.Publisher }

func (p panicOnName) Publish(ctx context.Context, req ingest.PublishRequest) (ingest.Session, error) {
	s, err := p.Publisher.Publish(ctx, req)
	if err != nil || req.Name != "boom" {
		return s, err
	}
	return panicSession{s}, nil
}

type panicSession struct{ ingest.Session }

func (panicSession) Frame(segmenter.Frame) error { panic("test: a bug in the media path") }

// A panic in one publisher's connection is recovered: logged with the
// stream, the remote address and the stack, counted, the publisher
// disconnected and the stream idle (as after any disconnect, so the encoder
// can come back); the process and a concurrent stream carry on. A panic in
// a viewer request is answered 500 and counted.
func TestPanicRecovery(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	o := startClassic(t, func(c *config) { panicHooks(c); c.PlaylistSize = 10 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fine := o.push(ctx, t, "fine", []string{"-re", "-t", "8", "-i", src}, "-c", "copy")
	url := o.url("/live/fine/index.m3u8")
	awaitPlaylist(t, url, 10*time.Second, "the other stream's first segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	boom := o.push(ctx, t, "boom", []string{"-re", "-t", "8", "-i", src}, "-c", "copy")
	if err := boom.Wait(); err == nil {
		t.Error("the publisher whose session panicked was not disconnected")
	}
	if n := limitMetric(t, o, "fount_panics_total", map[string]string{"where": "rtmp"}); n != 1 {
		t.Errorf("rtmp panics %v, want 1", n)
	}
	var line string
	for _, l := range strings.Split(o.logs.String(), "\n") {
		if strings.Contains(l, "panic in an RTMP connection") {
			line = l
		}
	}
	for _, want := range []string{"level=ERROR", "stream=live/boom", "remote=127.0.0.1:", `panic="test: a bug in the media path"`, "goroutine ", "panic_test.go"} {
		if !strings.Contains(line, want) {
			t.Errorf("panic log line lacks %q: %s", want, line)
		}
	}
	st := o.reg.Stream("live/boom")
	if st == nil || st.State() != playlist.StateIdle {
		t.Errorf("stream live/boom: %v, want idle (closed like a disconnect)", st)
	}

	code, body, _ := httpGet(t, o.url("/live/httpboom/index.m3u8"))
	if code != http.StatusInternalServerError {
		t.Errorf("panicking viewer request: %d %s, want 500", code, body)
	}
	if n := limitMetric(t, o, "fount_panics_total", map[string]string{"where": "http"}); n != 1 {
		t.Errorf("http panics %v, want 1", n)
	}
	if n := limitMetric(t, o, "fount_http_requests_total", map[string]string{"route": "playlist", "code": "500"}); n != 1 {
		t.Errorf("500s counted %v, want 1", n)
	}
	if out := o.logs.String(); !strings.Contains(out, "panic serving an HTTP request") || !strings.Contains(out, "stream=live/httpboom") {
		t.Error("no log line with the stream for the viewer panic")
	}

	// The other stream was untouched.
	if err := fine.Wait(); err != nil {
		t.Fatalf("the other publisher: %v", err)
	}
	p, _ := awaitPlaylist(t, url, 10*time.Second, "the other stream's whole push", func(p *m3u8.MediaPlaylist, _ []byte) bool { return totalDuration(p) >= 7.9 })
	checkContinuity(t, fetchSegments(t, o, "/live/fine/", p), true, true)
	if n := limitMetric(t, o, "fount_panics_total", map[string]string{"where": "rtmp"}); n != 1 {
		t.Errorf("rtmp panics %v after the end, want 1", n)
	}
}

// recoverHTTP: a panic before the response began is a 500; one after it
// began cuts the connection; http.ErrAbortHandler passes uncounted.
func TestRecoverHTTP(t *testing.T) {
	var n atomic.Uint64
	logs := &syncBuffer{}
	log := newLogger(config{LogFormat: "text", LogLevel: "info"}, logs)
	h := recoverHTTP("api", &n, log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/live/x/before":
			panic("before")
		case "/live/x/after":
			w.Write([]byte("partial"))
			http.NewResponseController(w).Flush()
			panic("after")
		case "/abort":
			panic(http.ErrAbortHandler)
		}
		w.Write([]byte("ok"))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) (int, string, error) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	if code, _, err := get("/live/x/before"); err != nil || code != 500 {
		t.Errorf("panic before the response: %d %v, want 500", code, err)
	}
	if _, _, err := get("/live/x/after"); err == nil {
		t.Error("panic after the response began: the client saw a complete response")
	}
	if _, _, err := get("/abort"); err == nil {
		t.Error("ErrAbortHandler: the client saw a complete response")
	}
	if code, body, err := get("/fine"); err != nil || code != 200 || body != "ok" {
		t.Errorf("after the panics: %d %q %v", code, body, err)
	}
	if n.Load() != 2 {
		t.Errorf("%d panics counted, want 2 (ErrAbortHandler is not one)", n.Load())
	}
	if out := logs.String(); strings.Count(out, "panic serving an HTTP request") != 2 || !strings.Contains(out, "stream=live/x") || !strings.Contains(out, "server=api") {
		t.Errorf("log:\n%s", out)
	}
}
