package playauth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// site is a play webhook: it checks the signature and allows tickets
// that start with "ok".
type site struct {
	t     *testing.T
	posts atomic.Int64
	down  atomic.Bool
	mu    sync.Mutex
	last  playRequest
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.posts.Add(1)
	body, _ := io.ReadAll(r.Body)
	if got, want := r.Header.Get("X-Fount-Signature"), Sign(secret, r.Header.Get("X-Fount-Timestamp"), body); got != want || r.Method != http.MethodPost {
		s.t.Errorf("%s with signature %q, want POST with %q", r.Method, got, want)
	}
	var pr playRequest
	if err := json.Unmarshal(body, &pr); err != nil {
		s.t.Errorf("body %q: %v", body, err)
	}
	s.mu.Lock()
	s.last = pr
	s.mu.Unlock()
	switch {
	case s.down.Load():
		http.Error(w, "oops", http.StatusBadGateway)
	case strings.HasPrefix(pr.Query, "ticket=ok"):
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "ticket refused: buy one at example.com\nsecond line", http.StatusForbidden)
	}
}

func TestWebhookAllowsDeniesAndCaches(t *testing.T) {
	st := &site{t: t}
	srv := httptest.NewServer(st)
	defer srv.Close()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a, err := NewWebhook(WebhookConfig{URL: srv.URL, Secret: secret, Cache: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	req := func(path string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("User-Agent", "hls.js")
		return r
	}
	ctx := context.Background()

	if a.Quick("live/show", []byte("ticket=ok1")) {
		t.Fatal("Quick allowed a viewer the webhook was never asked about")
	}
	if st, reason := a.Check(ctx, "live/show", req("/live/show/index.m3u8?ticket=ok1&_HLS_msn=3")); st != 0 {
		t.Fatalf("allowed ticket: %d %q", st, reason)
	}
	st.mu.Lock()
	if st.last.Stream != "live/show" || st.last.Query != "ticket=ok1" || st.last.Path != "/live/show/index.m3u8" || st.last.UserAgent != "hls.js" || st.last.Event != "play" {
		t.Errorf("webhook got %+v", st.last)
	}
	st.mu.Unlock()
	// The answer covers the viewer's next requests: no second POST.
	if !a.Quick("live/show", []byte("_HLS_msn=4&ticket=ok1")) {
		t.Error("Quick did not use the cached answer")
	}
	if s, _ := a.Check(ctx, "live/show", req("/live/show/seg3.ts?ticket=ok1")); s != 0 || st.posts.Load() != 1 {
		t.Errorf("cached viewer: status %d after %d posts, want 0 after 1", s, st.posts.Load())
	}
	// Another stream is another question.
	a.Check(ctx, "live/other", req("/live/other/index.m3u8?ticket=ok1"))
	if st.posts.Load() != 2 {
		t.Errorf("%d posts, want 2: the answer for live/show was used for live/other", st.posts.Load())
	}

	s, reason := a.Check(ctx, "live/show", req("/live/show/index.m3u8?ticket=bad"))
	if s != http.StatusForbidden || reason != "ticket refused: buy one at example.com" {
		t.Errorf("refused ticket: %d %q, want 403 with the webhook's first line", s, reason)
	}
	if a.Quick("live/show", []byte("ticket=bad")) {
		t.Error("Quick allowed a refused viewer")
	}

	// An outage is a 503 and is not remembered.
	st.down.Store(true)
	if s, _ := a.Check(ctx, "live/show", req("/live/show/index.m3u8?ticket=ok2")); s != http.StatusServiceUnavailable {
		t.Errorf("webhook down: %d, want 503", s)
	}
	st.down.Store(false)
	if s, _ := a.Check(ctx, "live/show", req("/live/show/index.m3u8?ticket=ok2")); s != 0 {
		t.Errorf("webhook back: %d, want 0 (the outage was cached)", s)
	}

	// Answers expire.
	now = now.Add(61 * time.Second)
	if a.Quick("live/show", []byte("ticket=ok1")) {
		t.Error("Quick used an answer older than the cache time")
	}
	before := st.posts.Load()
	a.Check(ctx, "live/show", req("/live/show/index.m3u8?ticket=ok1"))
	if st.posts.Load() != before+1 {
		t.Error("an expired answer was not asked again")
	}

	d := a.Denied()
	if d[ReasonDenied] != 1 || d[ReasonUnavailable] != 1 || len(d) != 2 {
		t.Errorf("Denied() = %v, want webhook_denied 1, webhook_unavailable 1", d)
	}
}

// TestWebhookOnePostPerViewer: a player's concurrent first requests (the
// playlist and the init, say) make one POST.
func TestWebhookOnePostPerViewer(t *testing.T) {
	release := make(chan struct{})
	var posts atomic.Int64
	arrived := make(chan struct{}, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		arrived <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	a, err := NewWebhook(WebhookConfig{URL: srv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, r := a.Check(context.Background(), "live/show", httptest.NewRequest(http.MethodGet, "/live/show/index.m3u8?ticket=x", nil)); s != 0 {
				t.Errorf("%d %q", s, r)
			}
		}()
	}
	<-arrived
	close(release)
	wg.Wait()
	if n := posts.Load(); n != 1 {
		t.Errorf("%d POSTs for one viewer's concurrent requests, want 1", n)
	}
}

func TestNewWebhookErrors(t *testing.T) {
	for _, cfg := range []WebhookConfig{
		{URL: "ftp://x", Secret: secret},
		{URL: "http://", Secret: secret},
		{URL: "http://site.example/hook", Secret: []byte("short")},
	} {
		if _, err := NewWebhook(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
