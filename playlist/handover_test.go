package playlist

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A successor process adopts a handed-over stream: it serves the stored
// playlist (no ENDLIST, same sequence) and its segments from storage at
// once, and the reconnecting encoder continues it with a discontinuity.
func TestAdoptHandedOverStream(t *testing.T) {
	store := durableStore()
	old, clk := newTestRegistry(t, store)
	s, _ := old.Publish("live/show")
	addSegments(t, s, clk, 4, 2*time.Second)
	s.Unpublish() // the handover disconnects the encoder
	ended, _ := old.Publish("live/done")
	addSegments(t, ended, clk, 1, 2*time.Second)
	ended.Unpublish()
	ended.end(false) // SIGTERM'd earlier: nothing to adopt

	r, clk2 := newTestRegistry(t, store)
	clk2.Add(clk.Now().Sub(clk2.Now()) + time.Second)
	got, err := r.Adopt(context.Background(), "live")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "live/show" {
		t.Fatalf("adopted %v, want [live/show]", got)
	}
	h := r.Handler()
	body := playlistBody(t, h, "/live/show/index.m3u8")
	p := parseMedia(t, body)
	if p.SeqNo != 1 || p.Count() != 3 || p.Closed || strings.Contains(string(body), "PRELOAD-HINT") {
		t.Fatalf("adopted playlist: want the stored window 1..3 open, no hint:\n%s", body)
	}
	resp := get(t, h, "GET", "/live/show/"+p.Segments[2].URI)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !strings.HasPrefix(string(b), "segment bytes 3") {
		t.Fatalf("adopted segment from storage: %d %q", resp.StatusCode, b)
	}
	if st := r.Stream("live/show").State(); st != StateIdle {
		t.Fatalf("adopted stream is %s, want idle", st)
	}

	s2, err := r.Publish("live/show")
	if err != nil {
		t.Fatalf("the encoder's reconnect was refused: %v", err)
	}
	addSegments(t, s2, clk2, 1, 2*time.Second)
	p = parseMedia(t, playlistBody(t, h, "/live/show/index.m3u8"))
	last := p.Segments[p.Count()-1]
	if p.SeqNo+uint64(p.Count())-1 != 4 || !last.Discontinuity {
		t.Fatalf("continued playlist: want segment 4 with a discontinuity, got seq %d count %d", p.SeqNo, p.Count())
	}

	// Not adopted once the reconnect window has passed: a crash long ago
	// is not a handover.
	late, clk3 := newTestRegistry(t, store)
	clk3.Add(clk2.Now().Sub(clk3.Now()) + 31*time.Second)
	if got, err := late.Adopt(context.Background(), "live"); err != nil || len(got) != 0 {
		t.Fatalf("stale playlists adopted: %v %v", got, err)
	}
}

// Drain answers parked and later blocking requests at once with 503 and
// Retry-After, so players move to the successor instead of waiting.
func TestDrainReleasesBlockingRequests(t *testing.T) {
	r, clk := newLLRegistry(t)
	r.cfg.BlockTimeout = 30 * time.Second
	s, _ := r.Publish("live/ll")
	s.Init([]byte("ftypmoov"))
	addLLSegment(t, s, clk, 10)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	codes := make(chan int, 2)
	for _, u := range []string{"/live/ll/index.m3u8?_HLS_msn=1&_HLS_part=3", "/live/ll/seg1.0.m4s"} {
		go func() {
			resp, err := http.Get(srv.URL + u)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	awaitWaiting(t, r, 2)
	start := time.Now()
	r.Drain()
	for range 2 {
		if c := <-codes; c != http.StatusServiceUnavailable {
			t.Errorf("parked request answered %d after Drain, want 503", c)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("parked requests released after %s", d)
	}
	resp := get(t, r.Handler(), "GET", "/live/ll/index.m3u8?_HLS_msn=1&_HLS_part=5")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("blocking request while draining: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := get(t, r.Handler(), "GET", "/live/ll/index.m3u8"); resp.StatusCode != 200 {
		t.Errorf("plain playlist request while draining: %d", resp.StatusCode)
	}
}
