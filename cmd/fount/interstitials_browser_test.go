//go:build unix

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// interstitialsReport is interstitials.mjs's line.
type interstitialsReport struct {
	HarnessError string   `json:"harnessError"`
	Browser      string   `json:"browserVersion"`
	HLSVersion   string   `json:"hlsVersion"`
	Console      []string `json:"console"`
	Events       []struct {
		Name        string   `json:"name"`
		At          float64  `json:"at"`
		CurrentTime float64  `json:"currentTime"`
		ID          string   `json:"id"`
		Asset       string   `json:"asset"`
		IDs         []string `json:"ids"`
		Error       string   `json:"error"`
	} `json:"events"`
	Errors []struct {
		At      float64 `json:"at"`
		Type    string  `json:"type"`
		Details string  `json:"details"`
		Fatal   bool    `json:"fatal"`
		URL     string  `json:"url"`
	} `json:"errors"`
	PlayingAt      *float64 `json:"playingAt"`
	EndedAt        *float64 `json:"endedAt"`
	AfterEnded     float64  `json:"afterEnded"`
	PlayingPrimary bool     `json:"playingPrimary"`
	Log            []string `json:"log"`
}

// TestBrowserInterstitials: an interstitial posted to the API, due a few
// seconds ahead of the live edge, makes hls.js (its interstitials
// controller) leave the live stream for the 4 s VOD asset the test serves
// from another origin (CORS), play it through, and come back to the live
// stream, which plays on. What the asset server saw is counted here, what
// hls.js did is reported by testdata/browser/interstitials.mjs.
func TestBrowserInterstitials(t *testing.T) {
	lockEndToEnd(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	browserDeps(t)
	// With B-frames: hls.js 1.7.4 enters an interstitial only once the
	// primary is buffered (audio and video) to within 10 ms of the
	// boundary, which it places at the video's end (the next keyframe's
	// PTS); fount's segments carry their audio up to there (see
	// docs/markers.md, Interstitials).
	src := source(t)

	// The asset: 4 s of fMP4 HLS, VOD, with the live stream's codecs and
	// size (so hls.js may append it in place), in four 1 s segments.
	dir := t.TempDir()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000",
		"-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p", "-g", "30", "-sc_threshold", "0",
		"-c:a", "aac", "-ac", "2", "-b:a", "96k",
		"-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
		"-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", filepath.Join(dir, "a%d.m4s"),
		filepath.Join(dir, "ad.m3u8")).CombinedOutput()
	if err != nil {
		t.Fatalf("making the asset: %v\n%s", err, out)
	}
	var (
		mu   sync.Mutex
		hits = map[string]int{}
	)
	files := http.FileServer(http.Dir(dir))
	ads := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Another origin than fount's: the player needs CORS to read it.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		mu.Lock()
		hits[path.Base(r.URL.Path)]++
		mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	defer ads.Close()
	assetURL := ads.URL + "/ad.m3u8"

	o := startOrigin(t, func(c *config) { c.SegmentFormat, c.LowLatency = "fmp4", false })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	push := o.push(ctx, t, "inter", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	pushDone := make(chan error, 1)
	go func() { pushDone <- push.Wait() }()
	defer func() { cancel(); <-pushDone }()
	url := o.url("/live/inter/index.m3u8")
	awaitPlaylist(t, url, 20*time.Second, "three segments", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 3 })

	code, raw, _ := httpGet(t, "http://"+o.api+"/api/v1/openapi.json")
	var spec map[string]any
	if code != 200 || json.Unmarshal(raw, &spec) != nil {
		t.Fatalf("openapi.json: %d", code)
	}
	// 3.5 s past the last segment's end: after the frames already in (the
	// segment being built, under 2 s of them, and some slack for a busy
	// machine); the cut is at the keyframe 4 s past it either way (2 s
	// GOPs), about 10 s ahead of where hls.js joins (three target
	// durations behind the end).
	at := o.reg.Stream("live/inter").LiveEdgeDate().Add(3500 * time.Millisecond)
	ans := apiPost(t, o, spec, "/api/v1/streams/live/inter/interstitials", "/api/v1/streams/{app}/{name}/interstitials",
		map[string]any{"asset_uri": assetURL, "duration": 4, "restrict": "SKIP,JUMP", "at": at.Format(time.RFC3339Nano)}, 202)
	id := ans["id"].(string)

	const seconds = 20
	start := time.Now()
	r, line := runNodeScript[interstitialsReport](t, (seconds+60)*time.Second, "interstitials.mjs", "20", url)
	t.Logf("played %s: chromium %s, hls.js %s", time.Since(start).Round(time.Millisecond), r.Browser, r.HLSVersion)
	if r.HarnessError != "" {
		t.Fatalf("interstitials.mjs: %s\n%s", r.HarnessError, line)
	}
	// hls.js fires, for this interstitial, in this order: it is scheduled,
	// starts, its one asset starts and ends, it ends.
	want := []string{"INTERSTITIALS_UPDATED", "INTERSTITIAL_STARTED", "INTERSTITIAL_ASSET_STARTED", "INTERSTITIAL_ASSET_ENDED", "INTERSTITIAL_ENDED"}
	at0 := map[string]float64{}
	next := 0
	for _, e := range r.Events {
		t.Logf("%6.3f s %-34s currentTime %7.3f %s%s%v %s", e.At, e.Name, e.CurrentTime, e.ID, e.Asset, e.IDs, e.Error)
		if e.Name == "INTERSTITIAL_ASSET_ERROR" {
			t.Errorf("asset error: %s", e.Error)
		}
		ours := e.ID == id || len(e.IDs) > 0 && e.IDs[0] == id
		if next < len(want) && e.Name == want[next] && ours {
			if strings.HasPrefix(e.Name, "INTERSTITIAL_ASSET_") && e.Asset != assetURL {
				t.Errorf("%s: asset %q, want %q", e.Name, e.Asset, assetURL)
			}
			at0[e.Name] = e.At
			next++
		}
	}
	if next < len(want) {
		t.Errorf("hls.js fired %v of %v for %s", want[:next], want, id)
	}
	// The asset played through, in about its 4 s.
	if d := at0["INTERSTITIAL_ASSET_ENDED"] - at0["INTERSTITIAL_ASSET_STARTED"]; next >= 4 && (d < 3 || d > 8) {
		t.Errorf("the 4 s asset played for %.3f s", d)
	}
	// The live stream plays on after it.
	if !r.PlayingPrimary || r.AfterEnded < 2 {
		t.Errorf("after INTERSTITIAL_ENDED: primary playing %v, currentTime advanced %.3f s (want >= 2)", r.PlayingPrimary, r.AfterEnded)
	}
	for _, e := range r.Errors {
		if e.Fatal {
			t.Errorf("hls.js fatal error at %.3f s: %s %s %s", e.At, e.Type, e.Details, e.URL)
		} else {
			t.Logf("hls.js error at %.3f s: %s %s %s", e.At, e.Type, e.Details, e.URL)
		}
	}
	// The player fetched the asset from its server: playlist, init and
	// all four segments.
	mu.Lock()
	t.Logf("asset server requests: %v", hits)
	if hits["ad.m3u8"] < 1 || hits["init.mp4"] < 1 || hits["a0.m4s"] < 1 || hits["a3.m4s"] < 1 {
		t.Errorf("the asset was not loaded whole: %v", hits)
	}
	mu.Unlock()
	select {
	case err := <-pushDone:
		pushDone <- err
		t.Errorf("the ffmpeg push ended during playback: %v\n%s", err, push.Stderr.(*syncBuffer).String())
	default:
	}
	if t.Failed() {
		t.Logf("hls.js log:\n%s", strings.Join(r.Log, "\n"))
		t.Logf("interstitials.mjs: %s", line)
	}
}
