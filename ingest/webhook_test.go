package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	hookSecret = "hook-signing-secret"
	hookKey    = "live-secret-key-8d2e"
)

// fakeHook is a webhook receiver that checks every request's signature and
// records the decoded bodies.
type fakeHook struct {
	t      *testing.T
	answer func(n int, body map[string]any, w http.ResponseWriter, r *http.Request)

	mu     sync.Mutex
	bodies []map[string]any
	times  []time.Time
	got    chan map[string]any // every request body, in order
}

func newFakeHook(t *testing.T, answer func(n int, body map[string]any, w http.ResponseWriter, r *http.Request)) (*fakeHook, *httptest.Server) {
	f := &fakeHook{t: t, answer: answer, got: make(chan map[string]any, 4096)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("reading request: %v", err)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("got %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	ts := r.Header.Get("X-Fount-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		f.t.Errorf("bad X-Fount-Timestamp %q", ts)
	}
	if !VerifySignature([]byte(hookSecret), ts, body, r.Header.Get("X-Fount-Signature")) {
		f.t.Errorf("bad signature %q for %s", r.Header.Get("X-Fount-Signature"), body)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		f.t.Errorf("request body %q: %v", body, err)
	}
	f.mu.Lock()
	n := len(f.bodies)
	f.bodies = append(f.bodies, m)
	f.times = append(f.times, time.Now())
	f.mu.Unlock()
	f.got <- m
	f.answer(n, m, w, r)
}

func newTestWebhook(t *testing.T, url string, timeout time.Duration) (*Webhook, *authLogBuffer) {
	t.Helper()
	log, logs := authTestLogger()
	w, err := NewWebhook(WebhookConfig{URL: url, Secret: []byte(hookSecret), Timeout: timeout, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return w, logs
}

func hookAuthorize(w *Webhook) (string, error) {
	return w.Authorize(context.Background(), AuthRequest{
		App: "live", Key: hookKey,
		Remote:   &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 51234},
		Metadata: map[string]string{"encoder": "obs"},
	})
}

func webhookNoKeyIn(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), hookKey) {
		t.Errorf("error %q contains the stream key", err)
	}
}

func TestWebhookAllow(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"empty 200", 200, "", hookKey},
		{"204", 204, "", hookKey},
		{"empty object", 200, "{}", hookKey},
		{"other fields", 200, `{"ok": true, "user": 7}`, hookKey},
		{"named", 200, `{"name": "show.hd"}`, "show.hd"},
		{"named 201 with spaces", 201, "\n {\"name\":\"show\"} \n", "show"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, srv := newFakeHook(t, func(_ int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			w, _ := newTestWebhook(t, srv.URL+"/auth?token=abc", 0)
			name, err := hookAuthorize(w)
			if err != nil || name != c.want {
				t.Fatalf("got %q, %v; want %q", name, err, c.want)
			}
			got := <-f.got
			want := map[string]any{"event": "publish", "app": "live", "key": hookKey, "client_ip": "192.0.2.7", "metadata": map[string]any{"encoder": "obs"}}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("request %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestWebhookNilMetadataAndRemote(t *testing.T) {
	f, srv := newFakeHook(t, func(int, map[string]any, http.ResponseWriter, *http.Request) {})
	w, _ := newTestWebhook(t, srv.URL, 0)
	if _, err := w.Authorize(context.Background(), AuthRequest{App: "live", Key: hookKey}); err != nil {
		t.Fatal(err)
	}
	got := <-f.got
	if md, ok := got["metadata"].(map[string]any); !ok || len(md) != 0 {
		t.Errorf("metadata = %#v, want {}", got["metadata"])
	}
	if got["client_ip"] != "" {
		t.Errorf("client_ip = %#v", got["client_ip"])
	}
}

func TestWebhookRefuse(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		is      error
		message string
	}{
		{"403", 403, "go away " + hookKey, ErrRefused, "HTTP 403"},
		{"401", 401, "", ErrRefused, "HTTP 401"},
		{"302", 302, "", ErrRefused, "HTTP 302"},
		{"500", 500, "", ErrWebhookUnavailable, "HTTP 500"},
		{"invalid name", 200, `{"name": "../../etc"}`, ErrInvalidName, "stream name"},
		{"name with slash", 200, `{"name": "a/b"}`, ErrRefused, "stream name"},
		{"bad JSON", 200, `{"name": ` + hookKey, ErrWebhookUnavailable, "not a JSON object"},
		{"JSON array", 200, `["` + hookKey + `"]`, ErrWebhookUnavailable, "not a JSON object"},
		{"name not a string", 200, `{"name": 7}`, ErrWebhookUnavailable, "not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, srv := newFakeHook(t, func(_ int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
				if c.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			w, _ := newTestWebhook(t, srv.URL+"/hook?token=t0k3n", 0)
			name, err := hookAuthorize(w)
			if err == nil {
				t.Fatalf("allowed as %q", name)
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.message) {
				t.Errorf("error %q: want %v saying %q", err, c.is, c.message)
			}
			if strings.Contains(err.Error(), "t0k3n") {
				t.Errorf("error %q contains the URL's query", err)
			}
			webhookNoKeyIn(t, err)
		})
	}
}

func TestWebhookRefuseOnTimeout(t *testing.T) {
	_, srv := newFakeHook(t, func(_ int, _ map[string]any, w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	w, _ := newTestWebhook(t, srv.URL, 200*time.Millisecond)
	start := time.Now()
	name, err := hookAuthorize(w)
	if err == nil {
		t.Fatalf("allowed as %q", name)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("refused after %s, want about 200ms", el)
	}
	if !errors.Is(err, ErrWebhookUnavailable) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("error %q does not say timeout", err)
	}
	webhookNoKeyIn(t, err)
}

func TestWebhookRefuseOnCallerTimeout(t *testing.T) {
	// A caller's shorter deadline wins over the configured timeout.
	_, srv := newFakeHook(t, func(_ int, _ map[string]any, w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	w, _ := newTestWebhook(t, srv.URL, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := w.Authorize(ctx, AuthRequest{App: "live", Key: hookKey})
	if !errors.Is(err, ErrWebhookUnavailable) {
		t.Errorf("got %v", err)
	}
	webhookNoKeyIn(t, err)
}

func TestWebhookRefuseUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	w, _ := newTestWebhook(t, "http://"+addr+"/hook", time.Second)
	_, err = hookAuthorize(w)
	if !errors.Is(err, ErrWebhookUnavailable) {
		t.Errorf("got %v", err)
	}
	webhookNoKeyIn(t, err)
}

func TestWebhookConfigValidation(t *testing.T) {
	for _, c := range []struct {
		url    string
		secret string
	}{
		{"ftp://example.com/hook", "s"},
		{"example.com/hook", "s"},
		{"http:///hook", "s"},
		{"http://exa mple.com/", "s"},
		{"https://example.com/hook", ""},
	} {
		if _, err := NewWebhook(WebhookConfig{URL: c.url, Secret: []byte(c.secret)}); err == nil {
			t.Errorf("NewWebhook(%q, secret %q) succeeded", c.url, c.secret)
		}
	}
	w, err := NewWebhook(WebhookConfig{URL: "https://example.com/hook", Secret: []byte("s")})
	if err != nil {
		t.Fatal(err)
	}
	if w.timeout != 3*time.Second || w.client.Timeout != 3*time.Second {
		t.Errorf("default timeout %s, client %s", w.timeout, w.client.Timeout)
	}
}

func TestWebhookVerifySignature(t *testing.T) {
	secret, body, ts := []byte("k"), []byte(`{"event":"publish"}`), "1700000000"
	sig := sign(secret, ts, body)
	if !VerifySignature(secret, ts, body, sig) {
		t.Fatal("own signature refused")
	}
	for name, ok := range map[string]bool{
		"other body":      VerifySignature(secret, ts, []byte(`{"event":"publisH"}`), sig),
		"other timestamp": VerifySignature(secret, "1700000001", body, sig),
		"other secret":    VerifySignature([]byte("K"), ts, body, sig),
		"no prefix":       VerifySignature(secret, ts, body, strings.TrimPrefix(sig, "sha256=")),
		"not hex":         VerifySignature(secret, ts, body, "sha256=zz"),
		"truncated":       VerifySignature(secret, ts, body, sig[:len(sig)-2]),
		"empty":           VerifySignature(secret, ts, body, ""),
		"empty secret":    VerifySignature(nil, ts, body, sign(nil, ts, body)),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWebhookNotifyRetries(t *testing.T) {
	f, srv := newFakeHook(t, func(n int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
		if n < 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	w, logs := newTestWebhook(t, srv.URL, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() {
		cancel()
		<-done
	}()

	w.Notify("publish_ended", map[string]any{"app": "live", "name": "show", "frames": 42, "event": "overridden"})
	for i := range 3 {
		select {
		case got := <-f.got:
			if got["event"] != "publish_ended" || got["name"] != "show" || got["frames"] != float64(42) {
				t.Errorf("attempt %d: got %v", i, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("attempt %d never came", i)
		}
	}
	f.mu.Lock()
	times := f.times
	f.mu.Unlock()
	if gap := times[1].Sub(times[0]); gap < 450*time.Millisecond {
		t.Errorf("first retry after %s, want 0.5s", gap)
	}
	if gap := times[2].Sub(times[1]); gap < 950*time.Millisecond {
		t.Errorf("second retry after %s, want 1s", gap)
	}
	// Delivered: no fourth attempt. A following event shows the sender
	// moved on.
	w.Notify("stream_ended", map[string]any{"name": "show"})
	select {
	case got := <-f.got:
		if got["event"] != "stream_ended" {
			t.Errorf("after delivery got %v, want stream_ended", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second event never came")
	}
	if strings.Contains(logs.String(), "not delivered") {
		t.Errorf("delivered event logged as lost:\n%s", logs)
	}
}

func TestWebhookNotifyGivesUp(t *testing.T) {
	f, srv := newFakeHook(t, func(n int, body map[string]any, w http.ResponseWriter, _ *http.Request) {
		switch body["event"] {
		case "publish_ended":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "bad_request":
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	w, logs := newTestWebhook(t, srv.URL, time.Second)
	w.backoff = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() {
		cancel()
		<-done
	}()

	w.Notify("publish_ended", nil) // 5xx: 1 try + 3 retries
	w.Notify("bad_request", nil)   // 4xx: not retried
	w.Notify("stream_ended", nil)  // delivered; events go out in order
	var events []string
	for len(events) < 6 {
		select {
		case got := <-f.got:
			events = append(events, got["event"].(string))
		case <-time.After(10 * time.Second):
			t.Fatalf("got only %v", events)
		}
	}
	want := "publish_ended publish_ended publish_ended publish_ended bad_request stream_ended"
	if got := strings.Join(events, " "); got != want {
		t.Errorf("requests %s, want %s", got, want)
	}
	authEventually(t, 5*time.Second, "the give-up log lines", func() bool {
		return strings.Count(logs.String(), "webhook event not delivered") == 2
	})
}

func TestWebhookNotifyNeverBlocks(t *testing.T) {
	// No Run: nothing drains the queue.
	w, logs := newTestWebhook(t, "http://127.0.0.1:1/hook", time.Second)
	done := make(chan struct{})
	go func() {
		for i := range webhookQueueSize + 100 {
			w.Notify("stream_ended", map[string]any{"i": i})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify blocked on a full queue")
	}
	if got := w.dropped.Load(); got != 100 {
		t.Errorf("dropped %d, want 100", got)
	}
	if !strings.Contains(logs.String(), "queue full") {
		t.Error("drops not logged")
	}
}

func TestWebhookRunStopsOnCancel(t *testing.T) {
	// The receiver hangs: Run must still return promptly when cancelled
	// mid-request, and Notify keeps not blocking afterwards.
	_, srv := newFakeHook(t, func(_ int, _ map[string]any, w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	w, _ := newTestWebhook(t, srv.URL, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	w.Notify("stream_ended", nil)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	w.Notify("stream_ended", nil)
}

// Webhook and Keys are Authorizers.
var (
	_ Authorizer = (*Webhook)(nil)
	_ Authorizer = (*Keys)(nil)
	_ Authorizer = AllowAll{}
)
