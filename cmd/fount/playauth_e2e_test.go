package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist/playauth"
)

const testPlaySecret = "e2e-play-secret-0123456789"

var dupMoov = regexp.MustCompile(`(?m)^(\[mov,mp4[^\]]*\] Found duplicated MOOV Atom\. Skipped it|\s+Last message repeated \d+ times)\n`)

// TestE2EPlayToken: with --play-auth token, ffmpeg plays the LL-HLS stream,
// AES-128 encrypted with a key every two segments, from the signed URL
// alone (every URI it follows, keys included, carries the token),
// and every request without a valid token for the stream is a 403 with
// a reason, counted by reason.
func TestE2EPlayToken(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	o := startOrigin(t, func(c *config) {
		c.PlayAuth, c.PlaySecret = "token", testPlaySecret
		c.Encrypt, c.KeyRotation = "aes-128", 2
	})
	ctx, cancel := context.WithCancel(context.Background())
	push := o.push(ctx, t, "paid", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	defer func() {
		cancel()
		push.Wait()
	}()
	signer, err := playauth.NewSigner([]byte(testPlaySecret))
	if err != nil {
		t.Fatal(err)
	}
	good := signer.Query("live/paid", time.Now().Add(time.Hour))
	url := o.url("/live/paid/index.m3u8?" + good)
	_, body := awaitPlaylist(t, url, 20*time.Second, "two segments", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return len(segments(p)) >= 2
	})
	keyURI := regexp.MustCompile(`#EXT-X-KEY:METHOD=AES-128,URI="(keys/[0-9a-f]+\.key)\?` + regexp.QuoteMeta(good) + `"`).FindSubmatch(body)
	if keyURI == nil {
		t.Fatalf("no AES-128 key URI carrying the token in\n%s", body)
	}
	if code, key, _ := httpGet(t, o.url("/live/paid/"+string(keyURI[1])+"?"+good)); code != http.StatusOK || len(key) != 16 {
		t.Errorf("the key with the token: %d, %d bytes; want 200 and 16", code, len(key))
	}

	// A player: ffprobe sees both tracks, ffmpeg decrypts and decodes 6 s
	// without a warning, having followed the playlist's own URIs (keys
	// included).
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", url).Output()
	var streams struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
		} `json:"streams"`
	}
	if err != nil || json.Unmarshal(out, &streams) != nil {
		t.Fatalf("ffprobe %s: %v\n%s", url, err, out)
	}
	kinds := map[string]bool{}
	for _, s := range streams.Streams {
		kinds[s.CodecType] = true
	}
	if !kinds["video"] || !kinds["audio"] {
		t.Errorf("ffprobe of the signed URL found %v, want video and audio", kinds)
	}
	out, err = exec.Command("ffmpeg", "-hide_banner", "-v", "warning", "-allowed_extensions", "ALL", "-i", url, "-t", "6", "-f", "null", "-").CombinedOutput()
	// Debian's ffmpeg 5.1 reads a live fMP4 playlist's init again after
	// each reload and warns of it, signed or not (seen on unsigned
	// streams alike): not a fault of the stream.
	if warnings := dupMoov.ReplaceAll(out, nil); err != nil || len(bytes.TrimSpace(warnings)) > 0 {
		t.Errorf("ffmpeg playing the signed URL: %v\n%s", err, out)
	}

	tampered := good[:len(good)-1] + "0"
	if strings.HasSuffix(good, "0") {
		tampered = good[:len(good)-1] + "1"
	}
	refused := []struct {
		name, path, reason string
	}{
		{"no token", "/live/paid/index.m3u8", "missing_token"},
		{"a key without a token", "/live/paid/" + string(keyURI[1]), "missing_token"},
		{"expired", "/live/paid/index.m3u8?" + signer.Query("live/paid", time.Now().Add(-time.Minute)), "expired"},
		{"tampered", "/live/paid/index.m3u8?" + tampered, "bad_token"},
		{"another stream's token", "/live/paid/seg0.m4s?" + signer.Query("live/free", time.Now().Add(time.Hour)), "bad_token"},
		{"a segment without its token", "/live/paid/seg0.m4s", "missing_token"},
	}
	want := map[string]float64{}
	for _, r := range refused {
		resp, err := http.Get(o.url(r.path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || bytes.Count(body, []byte("\n")) != 1 {
			t.Errorf("%s (%s): %d %q, want 403 with a one-line reason", r.name, r.path, resp.StatusCode, body)
		}
		want[r.reason]++
	}
	fams := scrape(t, o)
	for reason, n := range want {
		if got, _ := value(fams, "fount_play_denied_total", map[string]string{"reason": reason}); got != n {
			t.Errorf("fount_play_denied_total{reason=%q} = %v, want %v", reason, got, n)
		}
	}
}

// TestTokenCommand: `fount token` prints a URL that fount serve, with the
// same secret, accepts for that stream until --ttl passes.
func TestTokenCommand(t *testing.T) {
	t.Setenv("FOUNT_PLAY_SECRET", testPlaySecret)
	var out bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"token", "live/show", "--ttl", "2h", "--base-url", "https://tv.example:8443/"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	u, err := neturl.Parse(strings.TrimSpace(out.String()))
	if err != nil || u.Scheme != "https" || u.Host != "tv.example:8443" || u.Path != "/live/show/index.m3u8" {
		t.Fatalf("fount token printed %q (%v)", out.String(), err)
	}
	signer, _ := playauth.NewSigner([]byte(testPlaySecret))
	if r := playauth.Check(signer, "live/show", u.RawQuery, time.Now().Add(119*time.Minute)); r != "" {
		t.Errorf("its token is refused before 2h: %s", r)
	}
	if r := playauth.Check(signer, "live/show", u.RawQuery, time.Now().Add(121*time.Minute)); r != playauth.ReasonExpired {
		t.Errorf("its token after 2h: %q, want expired", r)
	}

	ctx := context.Background()
	for _, args := range [][]string{
		{"token"}, {"token", "show"}, {"token", "live/../x"}, {"token", "live/show", "--ttl", "-1h"},
		{"token", "live/show", "--base-url", "tv.example"}, {"token", "live/show", "--play-secret", "short"},
		{"serve", "--play-auth", "token", "--play-secret", "short"}, {"serve", "--play-auth", "maybe"},
		{"serve", "--play-auth", "webhook", "--play-secret", testPlaySecret},
	} {
		if code := run(ctx, args); code != exitUsage {
			t.Errorf("fount %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	t.Setenv("FOUNT_PLAY_SECRET", "")
	if code := run(ctx, []string{"token", "live/show"}); code != exitUsage {
		t.Errorf("fount token without a secret: exit %d, want 2", code)
	}
}

// TestE2EPlayWebhook: with --play-auth webhook, the site's answer to a
// viewer's first request lets ffprobe read the stream with the site's
// own parameter (a ticket) in its URL, once for all its requests; a
// ticket the site refuses gets the site's reason as a 403.
func TestE2EPlayWebhook(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	var posts atomic.Int64
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !ingest.VerifySignature([]byte(testPlaySecret), r.Header.Get("X-Fount-Timestamp"), body, r.Header.Get("X-Fount-Signature")) {
			t.Errorf("play webhook request not signed with the secret: %s", body)
		}
		posts.Add(1)
		if bytes.Contains(body, []byte(`"query":"ticket=ok"`)) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Error(w, "no ticket for this show", http.StatusForbidden)
	}))
	defer site.Close()
	o := startClassic(t, func(c *config) {
		c.PlayAuth, c.PlaySecret, c.PlayWebhookURL = "webhook", testPlaySecret, site.URL
	})
	ctx, cancel := context.WithCancel(context.Background())
	push := o.push(ctx, t, "show", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	defer func() {
		cancel()
		push.Wait()
	}()
	url := o.url("/live/show/index.m3u8?ticket=ok")
	awaitPlaylist(t, url, 20*time.Second, "two segments", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return len(segments(p)) >= 2
	})
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "video") || !strings.Contains(string(out), "audio") {
		t.Errorf("ffprobe with an allowed ticket: %v\n%s", err, out)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("%d webhook POSTs for one viewer, want 1 (its answer holds for --play-auth-cache)", n)
	}
	code, body, _ := httpGet(t, o.url("/live/show/index.m3u8?ticket=nope"))
	if code != http.StatusForbidden || string(body) != "no ticket for this show\n" {
		t.Errorf("a refused ticket: %d %q, want 403 with the site's reason", code, body)
	}
	if got, _ := value(scrape(t, o), "fount_play_denied_total", map[string]string{"reason": "webhook_denied"}); got != 1 {
		t.Errorf("fount_play_denied_total{reason=webhook_denied} = %v, want 1", got)
	}
}
