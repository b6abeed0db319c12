package playlist

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fount-live/fount/storage"
)

// A client that accepts gzip gets the same playlist compressed, under its
// own ETag, and conditional requests work on it; others get it plain.
func TestPlaylistGzip(t *testing.T) {
	r, clk := newTestRegistry(t, storage.NewMemory())
	s, _ := r.Publish("live/show")
	addSegments(t, s, clk, 3, 2*time.Second)
	h := r.Handler()
	plain := playlistBody(t, h, "/live/show/index.m3u8")
	resp := get(t, h, "GET", "/live/show/index.m3u8", "Accept-Encoding", "gzip, deflate")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || string(got) != string(plain) {
		t.Fatalf("gunzipped body differs (%v):\n%s\nwant\n%s", err, got, plain)
	}
	plainTag := get(t, h, "GET", "/live/show/index.m3u8").Header.Get("ETag")
	gzTag := resp.Header.Get("ETag")
	if gzTag == plainTag || gzTag == "" {
		t.Fatalf("gzip ETag %q vs plain %q", gzTag, plainTag)
	}
	if r := get(t, h, "GET", "/live/show/index.m3u8", "Accept-Encoding", "gzip", "If-None-Match", gzTag); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match on the gzip ETag: %d", r.StatusCode)
	}
	if r := get(t, h, "GET", "/live/show/index.m3u8", "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
	if r := get(t, h, "GET", "/live/show/seg0.ts", "Accept-Encoding", "gzip"); r.Header.Get("Content-Encoding") != "" {
		t.Error("a segment was gzipped")
	}
}

func BenchmarkServePlaylistGzip(b *testing.B) {
	r := NewRegistry(Config{WindowSize: 6})
	s, _ := r.Publish("live/b")
	for i := 0; i < 10; i++ {
		s.Segment(Segment{Data: make([]byte, 1<<20), Duration: 2 * time.Second, ProgramDateTime: time.Now()})
	}
	h := r.Handler()
	req := httptest.NewRequest("GET", "/live/b/index.m3u8", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := discardWriter{h: http.Header{}}
		h.ServeHTTP(&w, req)
	}
}
