package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/ingest"
)

// --auth keys: the secret key publishes to its public name; a wrong key is
// refused with a log line; the secret shows up nowhere.
func TestE2EAuthKeys(t *testing.T) {
	src := source(t)
	const secret = "s3cr3t-K3y-0042"
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	os.WriteFile(keys, []byte("streams:\n  - key: "+secret+"\n    name: show\n    note: main stage\n"), 0o600)
	o := startClassic(t, func(c *config) { c.Auth, c.KeysFile = "keys", keys })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	bad := o.push(ctx, t, "wrong-key", []string{"-re", "-t", "2", "-i", src}, "-c", "copy")
	if bad.Wait() == nil {
		t.Fatal("publish with an unknown key was accepted")
	}
	if !strings.Contains(o.logs.String(), "refused by authorisation") || !strings.Contains(o.logs.String(), ingest.KeyFingerprint("wrong-key")) {
		t.Errorf("no log line with the refused key's fingerprint")
	}

	o.pushWait(t, secret, []string{"-re", "-t", "4", "-i", src}, "-c", "copy")
	_, body := awaitPlaylist(t, o.url("/live/show/index.m3u8"), 10*time.Second, "the public name", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 3.9
	})
	if code, _, _ := httpGet(t, o.url("/live/"+secret+"/index.m3u8")); code != 404 {
		t.Errorf("stream reachable under its secret key: %d", code)
	}
	_, metrics, _ := httpGet(t, "http://"+o.api+"/metrics")
	for what, text := range map[string]string{"playlist": string(body), "log": o.logs.String(), "metrics": string(metrics)} {
		if strings.Contains(text, secret) {
			t.Errorf("the secret key appears in the %s", what)
		}
	}
}

// --auth webhook: fount asks a signed webhook, which may name the stream,
// and reports publish_ended.
func TestE2EAuthWebhook(t *testing.T) {
	src := source(t)
	const hmacSecret = "hook-secret"
	var mu sync.Mutex
	var events []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !ingest.VerifySignature([]byte(hmacSecret), r.Header.Get("X-Fount-Timestamp"), body, r.Header.Get("X-Fount-Signature")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		if ev["event"] == "publish" {
			if ev["key"] != "good-key" {
				http.Error(w, "no", http.StatusForbidden)
				return
			}
			w.Write([]byte(`{"name":"concert"}`))
		}
	}))
	defer hook.Close()
	t.Setenv("FOUNT_WEBHOOK_SECRET", hmacSecret)
	o := startClassic(t, func(c *config) {
		c.Auth, c.WebhookURL, c.WebhookSecret = "webhook", hook.URL, hmacSecret
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if o.push(ctx, t, "bad-key", []string{"-re", "-t", "2", "-i", src}, "-c", "copy").Wait() == nil {
		t.Fatal("webhook said 403, publish went ahead")
	}
	o.pushWait(t, "good-key", []string{"-re", "-t", "4", "-i", src}, "-c", "copy")
	awaitPlaylist(t, o.url("/live/concert/index.m3u8"), 10*time.Second, "the webhook's name", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 3.9
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		var kinds []string
		for _, e := range events {
			kinds = append(kinds, e["event"].(string))
		}
		mu.Unlock()
		if strings.Contains(strings.Join(kinds, ","), "publish_ended") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish_ended event; got %v", kinds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
