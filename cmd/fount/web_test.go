//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// TestWebHandler checks what webHandler serves: the page, its files with
// their content types and caching, and nothing else.
func TestWebHandler(t *testing.T) {
	h := webHandler()
	do := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}

	files := []struct {
		path, ctype, cache string
		contains           string
	}{
		{"/", "text/html; charset=utf-8", "no-cache", `<script src="/static/app.js">`},
		{"/static/app.js", "text/javascript; charset=utf-8", "public, max-age=3600", "/api/v1/streams"},
		{"/static/style.css", "text/css; charset=utf-8", "public, max-age=3600", ".card"},
		{"/static/hls.min.js", "text/javascript; charset=utf-8", "public, max-age=3600", "lowLatencyMode"},
		{"/static/hls.js.LICENSE", "text/plain; charset=utf-8", "public, max-age=3600", "Apache"},
	}
	for _, f := range files {
		rec := do("GET", f.path)
		if rec.Code != 200 {
			t.Errorf("GET %s: %d", f.path, rec.Code)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); ct != f.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", f.path, ct, f.ctype)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != f.cache {
			t.Errorf("GET %s: Cache-Control %q, want %q", f.path, cc, f.cache)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", f.path)
		}
		if !strings.Contains(rec.Body.String(), f.contains) {
			t.Errorf("GET %s: body lacks %q", f.path, f.contains)
		}
		// HEAD: the same headers, no body.
		head := do("HEAD", f.path)
		if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Type") != f.ctype {
			t.Errorf("HEAD %s: %d, %d body bytes, %q", f.path, head.Code, head.Body.Len(), head.Header().Get("Content-Type"))
		}
		// The ETag is honoured.
		req := httptest.NewRequest("GET", f.path, nil)
		req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
		cond := httptest.NewRecorder()
		h.ServeHTTP(cond, req)
		if rec.Header().Get("ETag") == "" || cond.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag %q: %d, want 304", f.path, rec.Header().Get("ETag"), cond.Code)
		}
	}
	if n := do("GET", "/static/hls.min.js").Body.Len(); n < 100_000 {
		t.Errorf("hls.min.js is %d bytes, want the whole hls.js build", n)
	}
	if csp := do("GET", "/").Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("index.html CSP %q", csp)
	}

	// Everything the page links to is served.
	page := do("GET", "/").Body.String()
	refs := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Errorf("index.html links %d static files, want app.js, hls.min.js, style.css", len(refs))
	}
	for _, m := range refs {
		if rec := do("GET", m[1]); rec.Code != 200 || rec.Body.Len() == 0 {
			t.Errorf("index.html links %s: %d, %d bytes", m[1], rec.Code, rec.Body.Len())
		}
	}

	for _, p := range []string{"/nope", "/static/", "/static", "/static/nope.js", "/static/index.html",
		"/static/../web.go", "/static/web/app.js", "/api/v1/streams", "/favicon.ico", "/index.htm"} {
		if rec := do("GET", p); rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		rec := do(m, "/")
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d Allow %q, want 405 with Allow: GET, HEAD", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

// pageReport is the line page.mjs prints.
type pageReport struct {
	HarnessError     string   `json:"harnessError"`
	BrowserVersion   string   `json:"browserVersion"`
	AuthPrompted     bool     `json:"authPrompted"`
	Listed           bool     `json:"listed"`
	ListedAt         float64  `json:"listedAt"`
	Name             string   `json:"name"`
	State            string   `json:"state"`
	Resolution       string   `json:"resolution"`
	URL              string   `json:"url"`
	Copied           *string  `json:"copied"`
	CopyError        string   `json:"copyError"`
	CopyButton       string   `json:"copyButton"`
	PlayingAt        *float64 `json:"playingAt"`
	CurrentTimeStart *float64 `json:"currentTimeStart"`
	CurrentTimeEnd   *float64 `json:"currentTimeEnd"`
	Advance          float64  `json:"advance"`
	SamePlayer       *bool    `json:"samePlayer"`
	PlayerSrc        string   `json:"playerSrc"`
	Paused           *bool    `json:"paused"`
	HLSVersion       string   `json:"hlsVersion"`
	Cards            int      `json:"cards"`
	MaxCards         int      `json:"maxCards"`
	Players          int      `json:"players"`
	EndAdvance       *float64 `json:"endAdvance"`
	Stalls           []struct {
		At          float64 `json:"at"`
		Stream      string  `json:"stream"`
		CurrentTime float64 `json:"currentTime"`
	} `json:"stalls"`
	HLSErrors []struct {
		At      float64 `json:"at"`
		Stream  string  `json:"stream"`
		Details string  `json:"details"`
		Fatal   bool    `json:"fatal"`
		URL     string  `json:"url"`
		Status  int     `json:"status"`
	} `json:"hlsErrors"`
	ConsoleErrors []string `json:"consoleErrors"`
	PageErrors    []string `json:"pageErrors"`
}

// playing checks that the page's player played the stream: its clock
// moved for at least half the watch and was still moving at the end, and
// hls.js hit no fatal error. Stalls are logged, not failed: the page runs
// up to two LL-HLS players beside a race-detector fount, and a CI run once
// saw one rebuffer for 4 s there. Stall-free playback is TestBrowserHLSJS's
// contract, with one player and nothing else on the page.
func (r pageReport) playing(t *testing.T, seconds int, stream string) []string {
	t.Helper()
	var problems []string
	if r.Advance < float64(seconds)/2 {
		problems = append(problems, fmt.Sprintf("the player's currentTime advanced %.3f s in %d s, want >= %d s", r.Advance, seconds, seconds/2))
	}
	if r.EndAdvance == nil || *r.EndAdvance < 0.5 {
		problems = append(problems, fmt.Sprintf("the player was not playing at the end: its clock moved %v s in the last second", deref(r.EndAdvance)))
	}
	for _, s := range r.Stalls {
		t.Logf("stall: %s waiting at %.3f s (currentTime %.3f)", s.Stream, s.At, s.CurrentTime)
	}
	for _, e := range r.HLSErrors {
		msg := fmt.Sprintf("hls.js error on %s at %.3f s: %s fatal=%v %s %d", e.Stream, e.At, e.Details, e.Fatal, e.URL, e.Status)
		if e.Fatal && e.Stream == stream {
			problems = append(problems, msg)
		} else {
			t.Log(msg)
		}
	}
	return problems
}

// runPage runs page.mjs on the operator page at pageURL, watching the
// card of stream for seconds.
func runPage(t *testing.T, pageURL string, seconds int, stream, token string) (pageReport, string) {
	t.Helper()
	return runNodeScript[pageReport](t, time.Duration(seconds+80)*time.Second, "page.mjs", pageURL, fmt.Sprint(seconds), stream, token)
}

// fakeStreamsAPI stands in for /api/v1/streams to drive the page through
// what the real API cannot produce on demand (a stream that disappears a
// few seconds in): it describes the one stream pushed to o, with the origin's real
// HTTP port and the media sequence read from its live playlist. With a
// token, it answers 401 to requests without "Authorization: Bearer token".
// For extraFor after its first authorized request it also lists NAME-gone,
// an idle stream with no tracks nor publisher, which then disappears.
func fakeStreamsAPI(o *origin, name string, started time.Time, token string, extraFor time.Duration) http.Handler {
	_, port, _ := net.SplitHostPort(o.http)
	path := "live/" + name
	var mu sync.Mutex
	var first time.Time
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fount"`)
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		mu.Lock()
		if first.IsZero() {
			first = time.Now()
		}
		extra := time.Since(first) < extraFor
		mu.Unlock()
		segs, next := 0, 0
		if resp, err := http.Get(o.url("/" + path + "/index.m3u8")); err == nil {
			if p, lt, err := m3u8.DecodeFrom(resp.Body, true); err == nil && lt == m3u8.MEDIA {
				mp := p.(*m3u8.MediaPlaylist)
				segs, next = int(mp.Count()), int(mp.SeqNo)+int(mp.Count())
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		var httpPort int
		fmt.Sscan(port, &httpPort)
		streams := []any{map[string]any{
			"app":                 "live",
			"name":                name,
			"path":                path,
			"state":               "live",
			"playback_path":       "/" + path + "/index.m3u8",
			"video":               map[string]any{"codec": "avc1.64001e", "width": 640, "height": 360, "frame_rate": 30},
			"audio":               map[string]any{"codec": "mp4a.40.2", "sample_rate": 48000, "channels": 2},
			"codecs":              "avc1.64001e,mp4a.40.2",
			"gop_seconds":         2,
			"gop_too_long":        false,
			"bitrate_in_bps":      2600000,
			"bitrate_out_bps":     0,
			"viewers_estimate":    1,
			"publisher":           map[string]any{"remote": "127.0.0.1:5555", "started_at": started.UTC().Format(time.RFC3339)},
			"segments":            segs,
			"parts":               segs * 10,
			"next_media_sequence": next,
		}}
		if extra {
			// Sorted before NAME, so that dropping it moves NAME's card up.
			streams = append([]any{map[string]any{
				"app": "live", "name": name + "-gone", "path": path + "-gone", "state": "idle",
				"playback_path": "/" + path + "/index.m3u8", // it plays the real stream too
				"video":         nil, "audio": nil, "publisher": nil, "codecs": "",
				"segments": 0, "parts": 0, "next_media_sequence": 0,
			}}, streams...)
		}
		body := map[string]any{"http_port": httpPort, "streams": streams}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(body)
	})
}

// fakeNoRecordingsAPI stands in for /api/v1/recordings beside
// fakeStreamsAPI: no recordings, behind the same token (the page polls
// both; a 404 there would be a console error).
func fakeNoRecordingsAPI(o *origin, token string) http.Handler {
	_, port, _ := net.SplitHostPort(o.http)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fount"`)
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		var httpPort int
		fmt.Sscan(port, &httpPort)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{"http_port": httpPort, "recordings": []any{}})
	})
}

// TestWebPage opens the operator page in headless chromium against a live
// stream: the stream is listed with its state, resolution and playback URL,
// and the page's own player plays it.
func TestWebPage(t *testing.T) {
	lockEndToEnd(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	src := source(t)
	browserDeps(t)

	const token = "page-test-token"
	o := startOrigin(t, func(c *config) { llConfig(c); c.APIToken = token })
	const name = "webpage"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	started := time.Now()
	push := o.push(ctx, t, name, []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	pushDone := make(chan error, 1)
	go func() { pushDone <- push.Wait() }()
	defer func() { cancel(); <-pushDone }()

	playURL := o.url("/live/" + name + "/index.m3u8")
	awaitPlaylist(t, playURL, 20*time.Second, "three segments", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return p.Count() >= 3
	})

	mux := http.NewServeMux()
	mux.Handle("/api/v1/streams", fakeStreamsAPI(o, name, started, token, 5*time.Second))
	mux.Handle("/api/v1/recordings", fakeNoRecordingsAPI(o, token))
	mux.Handle("/", webHandler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	const seconds = 10
	start := time.Now()
	r, line := runPage(t, "http://"+ln.Addr().String()+"/", seconds, "live/"+name, token)
	t.Logf("page watched %d s in %s: chromium %s, hls.js %s; card after %.3f s, playing %v s later; currentTime advanced %.3f s; resolution %q; url %q; copied %v (%s, button %q)",
		seconds, time.Since(start).Round(time.Millisecond), r.BrowserVersion, r.HLSVersion, r.ListedAt, deref(r.PlayingAt), r.Advance, r.Resolution, r.URL, derefS(r.Copied), r.CopyError, r.CopyButton)

	failed := false
	fail := func(format string, args ...any) { t.Errorf(format, args...); failed = true }
	if r.HarnessError != "" {
		fail("page.mjs: %s", r.HarnessError)
	}
	if !r.AuthPrompted {
		fail("the page did not ask for a token when the API answered 401")
	}
	if !r.Listed {
		fail("live/%s not listed", name)
	}
	if r.MaxCards != 2 || r.Cards != 1 || r.Players != 1 {
		fail("%d cards at most, %d cards and %d players at the end; want 2, then live/%s alone once live/%s-gone left the API", r.MaxCards, r.Cards, r.Players, name, name)
	}
	if r.Name != name {
		fail("card name %q, want %q", r.Name, name)
	}
	if r.State != "live" {
		fail("state %q, want live", r.State)
	}
	if !strings.Contains(r.Resolution, "640×360") || !strings.Contains(r.Resolution, "30 fps") {
		fail("resolution shown as %q, want 640×360 and 30 fps", r.Resolution)
	}
	if r.URL != playURL {
		fail("playback URL shown %q, want %q", r.URL, playURL)
	}
	if r.Copied != nil && *r.Copied != playURL {
		fail("Copy put %q on the clipboard, want %q", *r.Copied, playURL)
	}
	for _, p := range r.playing(t, seconds, "live/"+name) {
		fail("%s", p)
	}
	if r.SamePlayer == nil || !*r.SamePlayer {
		fail("the stream's <video> was replaced while the page polled")
	}
	if !strings.HasPrefix(r.PlayerSrc, "blob:") {
		t.Logf("player source %q: not hls.js (native HLS?)", r.PlayerSrc)
	}
	for _, e := range r.PageErrors {
		fail("page error: %s", e)
	}
	for _, e := range r.ConsoleErrors {
		// The first poll before the token is in answers 401, which
		// chromium logs as a failed resource load; that one is expected.
		if strings.Contains(e, "401") {
			continue
		}
		fail("console error: %s", e)
	}
	select {
	case err := <-pushDone:
		pushDone <- err
		fail("the ffmpeg push ended during the test: %v", err)
	default:
	}
	if failed || testing.Verbose() {
		t.Logf("page.mjs report: %s", line)
	}

	// The same page as fount serves it on the operator port, with the real
	// API behind the same token.
	r, line = runPage(t, "http://"+o.api+"/", seconds, "live/"+name, token)
	t.Logf("real API: card after %.3f s; currentTime advanced %.3f s; resolution %q; url %q", r.ListedAt, r.Advance, r.Resolution, r.URL)
	failed = false
	switch {
	case r.HarnessError != "":
		fail("page.mjs (real API): %s", r.HarnessError)
	case !r.AuthPrompted:
		fail("real API: the page did not ask for the token")
	case !r.Listed || r.State != "live" || r.Name != name:
		fail("real API: listed %v, state %q, name %q", r.Listed, r.State, r.Name)
	case !strings.Contains(r.Resolution, "640×360") || !strings.Contains(r.Resolution, "30 fps"):
		fail("real API: resolution shown as %q", r.Resolution)
	case r.URL != playURL:
		fail("real API: playback URL %q, want %q", r.URL, playURL)
	}
	for _, p := range r.playing(t, seconds, "live/"+name) {
		fail("real API: %s", p)
	}
	for _, e := range r.PageErrors {
		fail("page error (real API): %s", e)
	}
	if failed {
		t.Logf("page.mjs report (real API): %s", line)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func derefS(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}
