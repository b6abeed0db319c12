package main

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist/playauth"
)

// Over https:// each viewer has its own connection (its own TLS handshake),
// as each player does, over HTTP/2 or, with --http1, HTTP/1.1; the CA comes
// from --ca.
func TestViewHTTPS(t *testing.T) {
	for _, http1 := range []bool{false, true} {
		s := &liveServer{t0: time.Now().Add(-3 * partsPerSeg * 250 * time.Millisecond), partDur: 250 * time.Millisecond, window: 4, ll: true, hits: map[string]int{}}
		var mu sync.Mutex
		protos := map[int]int{}
		conns := 0
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			protos[r.ProtoMajor]++
			mu.Unlock()
			s.ServeHTTP(w, r)
		}))
		srv.EnableHTTP2 = true
		srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := viewConfig{common: common{duration: 2 * time.Second}, url: srv.URL, paths: []string{"live/x"}, viewers: 3, mode: "auto", caFile: ca, http1: http1}
		if err := cfg.validate(); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cfg.jsonPath = t.TempDir() + "/view.json"
		if err := runView(context.Background(), cfg, &out, &out); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		res := readJSON[viewResult](t, cfg.jsonPath)
		// The server also sees requests the run's end cut short, which
		// the viewers do not count.
		want := 2
		if http1 {
			want = 1
		}
		mu.Lock()
		if res.LL != 3 || res.Total.Failed != 0 || res.Total.Requests < 30 || len(protos) != 1 || protos[want] < int(res.Total.Requests) || conns < 3 {
			t.Errorf("http1 %v: LL %d, failed %d, requests %d, by protocol %v, connections %d; want 3 LL viewers, none failed, all over HTTP/%d, a connection each",
				http1, res.LL, res.Total.Failed, res.Total.Requests, protos, conns, want)
		}
		mu.Unlock()
	}
	// A CA file that is not one is refused before any request.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("nothing"), 0o600)
	cfg := viewConfig{common: common{duration: time.Second}, url: "https://127.0.0.1:1", paths: []string{"live/x"}, viewers: 1, mode: "auto", caFile: bad}
	if err := runView(context.Background(), cfg, &strings.Builder{}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad --ca: %v", err)
	}
}

// With --play-secret each viewer signs its playlist URL with its own
// token, which its blocking reloads keep.
func TestViewSigned(t *testing.T) {
	const secret = "bench-play-secret-0123456789"
	signer, _ := playauth.NewSigner([]byte(secret))
	s := &liveServer{t0: time.Now().Add(-3 * partsPerSeg * 250 * time.Millisecond), partDur: 250 * time.Millisecond, window: 4, ll: true, hits: map[string]int{}}
	var mu sync.Mutex
	tokens, blocking, bad := map[string]bool{}, 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".m3u8") {
			mu.Lock()
			if playauth.Check(signer, "live/x", r.URL.RawQuery, time.Now()) != "" {
				bad++
			}
			tokens[r.URL.Query().Get("token")] = true
			if r.URL.Query().Get("_HLS_msn") != "" {
				blocking++
			}
			mu.Unlock()
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := viewConfig{common: common{duration: 2 * time.Second}, url: srv.URL, paths: []string{"live/x"}, viewers: 3, mode: "auto", secret: secret}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := runView(context.Background(), cfg, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if bad > 0 || len(tokens) != 3 || blocking == 0 {
		t.Errorf("%d playlist requests without a valid token, %d distinct tokens (want 3), %d blocking reloads", bad, len(tokens), blocking)
	}
	if (&viewConfig{common: common{duration: time.Second}, url: srv.URL, paths: []string{"live/x"}, viewers: 1, mode: "auto", secret: "short"}).validate() == nil {
		t.Error("a 5-character --play-secret was accepted")
	}
}
