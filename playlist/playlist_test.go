package playlist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/storage"
)

// fakeClock is a settable clock for the registry's timers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// durableStore is a memory store that poses as one outside the process
// (dir, S3): segments are put in it too.
func durableStore() storage.Store { return struct{ storage.Store }{storage.NewMemory()} }

func newTestRegistry(t *testing.T, store storage.Store) (*Registry, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	r := NewRegistry(Config{
		Store: store, TargetDuration: 2 * time.Second, WindowSize: 3,
		ReconnectWindow: 30 * time.Second, DeleteGrace: 10 * time.Second, RemoveAfter: 60 * time.Second,
		Now: clk.Now,
	})
	return r, clk
}

func addSegments(t *testing.T, s *Stream, clk *fakeClock, n int, d time.Duration) {
	t.Helper()
	for i := 0; i < n; i++ {
		data := []byte(fmt.Sprintf("segment bytes %d at %s", i, clk.Now()))
		if err := s.Segment(Segment{Data: data, Duration: d, ProgramDateTime: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		clk.Add(d)
	}
}

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func parseMedia(t *testing.T, body []byte) *m3u8.MediaPlaylist {
	t.Helper()
	p, lt, err := m3u8.DecodeFrom(bytes.NewReader(body), true)
	if err != nil {
		t.Fatalf("grafov/m3u8 cannot parse the playlist: %v\n%s", err, body)
	}
	if lt != m3u8.MEDIA {
		t.Fatalf("playlist type %v, want media", lt)
	}
	return p.(*m3u8.MediaPlaylist)
}

func playlistBody(t *testing.T, h http.Handler, path string) []byte {
	t.Helper()
	resp := get(t, h, "GET", path)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

func TestRenderWindowAndSequence(t *testing.T) {
	r, clk := newTestRegistry(t, storage.NewMemory())
	s, err := r.Publish("live/show")
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler()
	if resp := get(t, h, "GET", "/live/show/index.m3u8"); resp.StatusCode != 404 {
		t.Fatalf("playlist before any segment: %d, want 404", resp.StatusCode)
	}
	addSegments(t, s, clk, 5, 2002*time.Millisecond)
	body := playlistBody(t, h, "/live/show/index.m3u8")
	p := parseMedia(t, body)
	if p.SeqNo != 2 {
		t.Errorf("media sequence %d, want 2\n%s", p.SeqNo, body)
	}
	// grafov/m3u8 raises TargetDuration to ceil(EXTINF) while parsing, so
	// read the tag itself: RFC 8216 4.3.3.1 rounds to the nearest integer.
	if !bytes.Contains(body, []byte("#EXT-X-TARGETDURATION:2\n")) {
		t.Errorf("want #EXT-X-TARGETDURATION:2 for 2.002 s segments\n%s", body)
	}
	if p.Count() != 3 {
		t.Errorf("%d segments listed, want 3", p.Count())
	}
	for i, seg := range p.Segments[:p.Count()] {
		if want := fmt.Sprintf("seg%d.ts", i+2); seg.URI != want {
			t.Errorf("segment %d URI %q, want %q", i, seg.URI, want)
		}
		if seg.Duration < 2.001 || seg.Duration > 2.003 {
			t.Errorf("EXTINF %v", seg.Duration)
		}
		if seg.ProgramDateTime.IsZero() {
			t.Errorf("segment %d has no PROGRAM-DATE-TIME", i)
		}
	}
	for _, tag := range []string{"#EXT-X-VERSION:3\n", "#EXT-X-INDEPENDENT-SEGMENTS\n"} {
		if !bytes.Contains(body, []byte(tag)) {
			t.Errorf("missing %q", tag)
		}
	}
	if bytes.Contains(body, []byte("ENDLIST")) {
		t.Error("live playlist has ENDLIST")
	}
}

func TestTargetDurationNeverBelowExtinf(t *testing.T) {
	r, clk := newTestRegistry(t, storage.NewMemory())
	s, _ := r.Publish("live/gop")
	addSegments(t, s, clk, 1, 2*time.Second)
	addSegments(t, s, clk, 1, 4600*time.Millisecond) // a long GOP
	addSegments(t, s, clk, 4, 2*time.Second)
	body := playlistBody(t, r.Handler(), "/live/gop/index.m3u8")
	// The 4.6 s segment slid out, but the target must not go down again.
	if !bytes.Contains(body, []byte("#EXT-X-TARGETDURATION:5\n")) {
		t.Fatalf("want target 5 (never lowered once a 4.6 s segment was listed):\n%s", body)
	}
}

func TestReconnectContinuesWithDiscontinuity(t *testing.T) {
	store := durableStore()
	r, clk := newTestRegistry(t, store)
	h := r.Handler()
	s, _ := r.Publish("live/show")
	addSegments(t, s, clk, 2, 2*time.Second)
	if _, err := r.Publish("live/show"); err == nil {
		t.Fatal("a second publisher on a live name was accepted")
	}
	s.Unpublish()
	clk.Add(10 * time.Second)
	r.Sweep()
	s2, err := r.Publish("live/show")
	if err != nil {
		t.Fatalf("reconnect within the window refused: %v", err)
	}
	if s2 != s {
		t.Fatal("reconnect made a new stream")
	}
	addSegments(t, s, clk, 3, 2*time.Second)
	body := playlistBody(t, h, "/live/show/index.m3u8")
	p := parseMedia(t, body)
	if p.SeqNo != 2 || !p.Segments[0].Discontinuity || p.Segments[1].Discontinuity {
		t.Fatalf("want seq 2 starting with the discontinuity segment:\n%s", body)
	}
	// Slide the discontinuity out: the discontinuity sequence counts it.
	addSegments(t, s, clk, 1, 2*time.Second)
	body = playlistBody(t, h, "/live/show/index.m3u8")
	if p = parseMedia(t, body); p.DiscontinuitySeq != 1 {
		t.Fatalf("discontinuity sequence %d, want 1:\n%s", p.DiscontinuitySeq, body)
	}
	// Segments that left the window stay fetchable during the grace.
	if resp := get(t, h, "GET", "/live/show/seg0.ts"); resp.StatusCode != 200 {
		t.Fatalf("seg0 within grace: %d", resp.StatusCode)
	}
	clk.Add(11 * time.Second)
	r.Sweep()
	if resp := get(t, h, "GET", "/live/show/seg0.ts"); resp.StatusCode != 404 {
		t.Fatalf("seg0 after grace: %d, want 404", resp.StatusCode)
	}
	if _, err := store.Get(context.Background(), "live/show/seg0.ts"); err == nil {
		t.Fatal("seg0 still in storage after the grace")
	}
	if _, err := store.Get(context.Background(), "live/show/seg5.ts"); err != nil {
		t.Fatalf("listed segment missing from storage: %v", err)
	}
}

func TestEndAfterReconnectWindowThenRemoval(t *testing.T) {
	store := durableStore()
	r, clk := newTestRegistry(t, store)
	h := r.Handler()
	s, _ := r.Publish("live/show")
	addSegments(t, s, clk, 4, 2*time.Second)
	s.Unpublish()
	clk.Add(29 * time.Second)
	r.Sweep()
	if bytes.Contains(playlistBody(t, h, "/live/show/index.m3u8"), []byte("#EXT-X-ENDLIST")) {
		t.Fatal("ENDLIST before the reconnect window passed")
	}
	clk.Add(2 * time.Second)
	r.Sweep()
	body := playlistBody(t, h, "/live/show/index.m3u8")
	if !bytes.HasSuffix(body, []byte("#EXT-X-ENDLIST\n")) {
		t.Fatalf("no ENDLIST after the reconnect window:\n%s", body)
	}
	clk.Add(61 * time.Second)
	r.Sweep()
	if resp := get(t, h, "GET", "/live/show/index.m3u8"); resp.StatusCode != 404 {
		t.Fatalf("removed stream: %d, want 404", resp.StatusCode)
	}
	keys, _ := store.Keys(context.Background(), "live/show/")
	if len(keys) != 0 {
		t.Fatalf("removed stream left keys %v", keys)
	}
	// The name comes back: numbering goes on, so no URL means new bytes.
	s, err := r.Publish("live/show")
	if err != nil {
		t.Fatal(err)
	}
	addSegments(t, s, clk, 1, 2*time.Second)
	p := parseMedia(t, playlistBody(t, h, "/live/show/index.m3u8"))
	if p.SeqNo != 4 || p.Segments[0].URI != "seg4.ts" || !p.Segments[0].Discontinuity {
		t.Fatalf("republished stream restarted numbering: seq %d uri %s", p.SeqNo, p.Segments[0].URI)
	}
}

func TestHTTPHeadersAndErrors(t *testing.T) {
	r, clk := newTestRegistry(t, storage.NewMemory())
	h := r.Handler()
	s, _ := r.Publish("live/show")
	addSegments(t, s, clk, 2, 2*time.Second)

	resp := get(t, h, "GET", "/live/show/index.m3u8")
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.apple.mpegurl" {
		t.Errorf("playlist content type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=1" {
		t.Errorf("playlist cache-control %q, want max-age=1 (half the 2 s target)", cc)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("no CORS header")
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("playlist has no ETag")
	}
	if resp := get(t, h, "GET", "/live/show/index.m3u8", "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("conditional GET: %d, want 304", resp.StatusCode)
	}

	resp = get(t, h, "GET", "/live/show/seg1.ts")
	seg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp2t" {
		t.Fatalf("segment: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=31536000") {
		t.Errorf("segment cache-control %q", cc)
	}
	resp = get(t, h, "GET", "/live/show/seg1.ts", "Range", "bytes=2-5")
	part, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 206 || !bytes.Equal(part, seg[2:6]) {
		t.Errorf("range: %d %q, want 206 %q", resp.StatusCode, part, seg[2:6])
	}
	resp = get(t, h, "HEAD", "/live/show/seg1.ts")
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || len(b) != 0 || resp.Header.Get("Content-Length") != fmt.Sprint(len(seg)) {
		t.Errorf("HEAD: %d body %d length %q", resp.StatusCode, len(b), resp.Header.Get("Content-Length"))
	}
	if resp := get(t, h, "POST", "/live/show/seg1.ts"); resp.StatusCode != 405 {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	for _, p := range []string{
		"/live/none/index.m3u8", "/live/show/seg99.ts", "/live/show/", "/live/show", "/",
		"/live/show/../show/seg1.ts", "/live/show/%2e%2e/seg1.ts", "/live/show/seg1.ts%00",
		"/live/show/sub/seg1.ts", "/live//show/seg1.ts", "/live/show/" + strings.Repeat("a", 5000),
		"/live/show/..", "/live/show/ü.ts",
	} {
		if resp := get(t, h, "GET", p); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

// Viewers read while the publisher writes; run with -race.
func TestConcurrentReadersWhileWriting(t *testing.T) {
	r, clk := newTestRegistry(t, storage.NewMemory())
	// The fake clock runs far ahead of the readers; keep retired segments.
	r.cfg.DeleteGrace = time.Hour
	h := r.Handler()
	s, _ := r.Publish("live/race")
	addSegments(t, s, clk, 1, 2*time.Second)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				resp := get(t, h, "GET", "/live/race/index.m3u8")
				body, _ := io.ReadAll(resp.Body)
				p := parseMedia(t, body)
				if p.Count() == 0 {
					t.Error("empty playlist")
					return
				}
				last := p.Segments[p.Count()-1].URI
				if resp := get(t, h, "GET", "/live/race/"+last); resp.StatusCode != 200 {
					t.Errorf("listed segment %s: %d", last, resp.StatusCode)
					return
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		addSegments(t, s, clk, 1, 2*time.Second)
		r.Sweep()
	}
	close(done)
	wg.Wait()
}

func BenchmarkServePlaylist(b *testing.B) {
	r := NewRegistry(Config{WindowSize: 6})
	s, _ := r.Publish("live/b")
	for i := 0; i < 10; i++ {
		s.Segment(Segment{Data: make([]byte, 1<<20), Duration: 2 * time.Second, ProgramDateTime: time.Now()})
	}
	h := r.Handler()
	req := httptest.NewRequest("GET", "/live/b/index.m3u8", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := discardWriter{h: http.Header{}}
		h.ServeHTTP(&w, req)
	}
}

// BenchmarkServeSegment is the handler's own cost for a segment GET, the
// bytes written to nothing: HeapMedia, since a memory file's bytes go to a
// socket (BenchmarkServeSegmentLoopback), not to a ResponseWriter.
func BenchmarkServeSegment(b *testing.B) {
	r := NewRegistry(Config{WindowSize: 6, HeapMedia: true})
	s, _ := r.Publish("live/b")
	for i := 0; i < 10; i++ {
		s.Segment(Segment{Data: make([]byte, 1<<20), Duration: 2 * time.Second, ProgramDateTime: time.Now()})
	}
	h := r.Handler()
	req := httptest.NewRequest("GET", "/live/b/seg9.ts", nil)
	b.ReportAllocs()
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := discardWriter{h: http.Header{}}
		h.ServeHTTP(&w, req)
	}
}

// discardWriter is a ResponseWriter that drops the body, so benchmarks
// measure the handler rather than a recorder's buffer.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
