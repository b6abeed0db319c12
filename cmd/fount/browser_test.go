//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// browserDir holds play.mjs and the pinned npm packages it runs on.
const browserDir = "../../testdata/browser"

var (
	npmOnce sync.Once
	npmErr  error
)

// browserDeps installs testdata/browser's pinned packages with `npm ci`,
// once per test binary and only when node_modules does not already hold
// exactly the versions package-lock.json pins.
func browserDeps(t *testing.T) {
	t.Helper()
	npmOnce.Do(func() {
		stale := npmStale(browserDir)
		if stale == "" {
			return
		}
		t.Logf("npm ci in testdata/browser: %s", stale)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = browserDir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm ci in testdata/browser: %v\n%s", err, out)
			return
		}
		if stale := npmStale(browserDir); stale != "" {
			npmErr = fmt.Errorf("npm ci in testdata/browser left node_modules stale: %s", stale)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
}

// npmStale says why dir/node_modules does not match dir/package-lock.json,
// or "" when every locked package is installed at its locked version.
func npmStale(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err.Error()
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return "package-lock.json: " + err.Error()
	}
	for path, p := range lock.Packages {
		if path == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, path, "package.json"))
		if err != nil {
			return path + " is missing"
		}
		var got struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(b, &got) != nil || got.Version != p.Version {
			return fmt.Sprintf("%s is %q, the lock pins %q", path, got.Version, p.Version)
		}
	}
	return ""
}

// playReport is the line play.mjs prints.
type playReport struct {
	HarnessError   string  `json:"harnessError"`
	BrowserVersion string  `json:"browserVersion"`
	HLSVersion     string  `json:"hlsVersion"`
	MSEH264AAC     bool    `json:"mseH264AAC"`
	PlayingAt      float64 `json:"playingAt"` // s from loadSource to the first 'playing'
	Errors         []struct {
		At         float64 `json:"at"`
		Type       string  `json:"type"`
		Details    string  `json:"details"`
		Fatal      bool    `json:"fatal"`
		Reason     string  `json:"reason"`
		URL        string  `json:"url"`
		HTTPStatus int     `json:"httpStatus"`
	} `json:"errors"`
	Stalls []struct {
		At          float64 `json:"at"`
		Kind        string  `json:"kind"`
		CurrentTime float64 `json:"currentTime"`
	} `json:"stalls"`
	Seeks []struct {
		At float64 `json:"at"`
		To float64 `json:"to"`
	} `json:"seeks"`
	VideoErrors []json.RawMessage `json:"videoErrors"`
	Advance     float64           `json:"advance"`   // currentTime at the end minus at the first 'playing'
	Played      float64           `json:"played"`    // sum of video.played
	Protocols   map[string]int    `json:"protocols"` // stream requests by resource timing's nextHopProtocol
	Keys        int               `json:"keys"`      // of which key requests
	Latency     struct {
		Samples int     `json:"samples"`
		Min     float64 `json:"min"`
		Median  float64 `json:"median"`
		Last    float64 `json:"last"`
	} `json:"latency"`
	TargetLatency *float64 `json:"targetLatency"`
	Console       []string `json:"console"`
}

// playInBrowser runs play.mjs: hls.js in headless chromium plays url for
// seconds and reports what it saw.
func playInBrowser(t *testing.T, url string, seconds int, lowLatency bool) (playReport, string) {
	t.Helper()
	return runNodeScript[playReport](t, time.Duration(seconds+60)*time.Second, "play.mjs", url, fmt.Sprint(seconds), fmt.Sprint(lowLatency))
}

// runNodeScript runs a browser script of testdata/browser with node and
// decodes the one JSON line it prints into a T; it also returns the line.
func runNodeScript[T any](t *testing.T, timeout time.Duration, script string, args ...string) (T, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = browserDir
	// Its own process group, so that chromium goes too whatever happens to
	// node. On a time-out node gets SIGTERM first, which playwright turns
	// into closing the browser.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftovers of the group, if any
	line := strings.TrimSpace(stdout.String())
	if err != nil || ctx.Err() != nil {
		t.Fatalf("node %s: %v (%v)\nstdout: %s\nstderr: %s", script, err, ctx.Err(), line, stderr.String())
	}
	var r T
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("%s printed no JSON line (%v)\nstdout: %s\nstderr: %s", script, err, line, stderr.String())
	}
	return r, line
}

// TestBrowserHLSJS plays a live stream from fount with hls.js in headless
// Chromium, as a viewer's browser would, and requires clean playback: no
// hls.js error of any kind, no stall once playing, the clock advancing
// with the wall clock, and a live latency that hls.js can measure.
func TestBrowserHLSJS(t *testing.T) {
	if raceDetector {
		// It judges hls.js playing LL-HLS and classic HLS; .ci/run runs it in its pass without -race (once is enough:
		// a player's stall under the detector is the detector's).
		t.Skip("judged without the race detector: .ci/run runs it in its pass without -race")
	}
	lockEndToEnd(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	src := source(t)
	browserDeps(t)

	const seconds = 20
	cases := []struct {
		name       string
		mod        func(*config)
		lowLatency bool
		maxMedian  float64 // s of median latency beyond the player's start-up; 0: no bound
	}{
		{name: "classic", mod: classic},
		// The project aims at 1.0 s; 1.5 s leaves room for a busy machine.
		{name: "lowlatency", mod: llConfig, lowLatency: true, maxMedian: llMaxMedian},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.lowLatency && tc.mod == nil {
				t.Skip("LL config not wired (set llConfig in browser_ll_test.go)")
			}
			o := startOrigin(t, tc.mod)

			// A live stream for longer than the playback: the 12 s source
			// looped at its own pace until the test ends it.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			push := o.push(ctx, t, "browser", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
			pushDone := make(chan error, 1)
			go func() { pushDone <- push.Wait() }()
			defer func() { cancel(); <-pushDone }()

			// A viewer joining a running stream: three segments listed.
			url := o.url("/live/browser/index.m3u8")
			awaitPlaylist(t, url, 20*time.Second, "three segments", func(p *m3u8.MediaPlaylist, _ []byte) bool {
				return p.Count() >= 3
			})

			start := time.Now()
			r, line := playInBrowser(t, url, seconds, tc.lowLatency)
			t.Logf("played %d s in %s: chromium %s, hls.js %s", seconds, time.Since(start).Round(time.Millisecond), r.BrowserVersion, r.HLSVersion)
			select {
			case err := <-pushDone:
				pushDone <- err
				t.Errorf("the ffmpeg push ended during playback: %v\n%s", err, push.Stderr.(*syncBuffer).String())
			default:
			}
			target := "none"
			if r.TargetLatency != nil {
				target = fmt.Sprintf("%.3f s", *r.TargetLatency)
			}
			t.Logf("latency min %.3f s, median %.3f s, last %.3f s (%d samples), hls.js target %s; first frame after %.3f s; currentTime advanced %.3f s, played %.3f s",
				r.Latency.Min, r.Latency.Median, r.Latency.Last, r.Latency.Samples, target, r.PlayingAt, r.Advance, r.Played)

			failed := false
			fail := func(format string, args ...any) { t.Errorf(format, args...); failed = true }
			if r.HarnessError != "" {
				fail("play.mjs could not play: %s", r.HarnessError)
			}
			if !r.MSEH264AAC {
				fail("this chromium has no MSE support for H.264/AAC")
			}
			// Under the race detector, beside the other packages' tests, LL
			// playback measures the machine: hls.js's start-up hole (issue
			// 20) and stalls came and went there on the landed code as on
			// this one. That run still requires playback without a fatal
			// error; .ci/run plays this test again without -race, strictly.
			lenient := raceDetector && tc.lowLatency
			soft := fail
			if lenient {
				soft = func(format string, args ...any) { t.Logf("(race run, not failed) "+format, args...) }
			}
			for _, e := range r.Errors {
				report := soft
				if e.Fatal {
					report = fail
				}
				report("hls.js error at %.3f s: %s %s fatal=%v %s %s %d", e.At, e.Type, e.Details, e.Fatal, e.Reason, e.URL, e.HTTPStatus)
			}
			for _, e := range r.VideoErrors {
				fail("video element error: %s", e)
			}
			for _, s := range r.Stalls {
				soft("stall after playback started, at %.3f s (currentTime %.3f): %s", s.At, s.CurrentTime, s.Kind)
			}
			// A stall shortens the playback: in the lenient run only half
			// of it is required (CI at 6b873bf, race run: a 3.5 s stall,
			// 14.8 s played of 20).
			if r.Advance < float64(seconds)/2 {
				fail("currentTime advanced %.3f s in %d s of playback, want >= %d s", r.Advance, seconds, seconds-3)
			} else if r.Advance < seconds-3 {
				soft("currentTime advanced %.3f s in %d s of playback, want >= %d s", r.Advance, seconds, seconds-3)
			}
			if r.Latency.Samples == 0 || r.Latency.Median <= 0 {
				fail("hls.js reported no live latency")
			}
			if beyond := r.Latency.Median - r.PlayingAt; tc.maxMedian > 0 && beyond > tc.maxMedian {
				soft("median latency %.3f s, %.3f s beyond hls.js's start-up of %.3f s; want <= %.1f s beyond it (target 1.0 s in all)",
					r.Latency.Median, beyond, r.PlayingAt, tc.maxMedian)
			}
			if len(r.Seeks) > 0 {
				t.Logf("seeks after playback started: %+v", r.Seeks)
			}
			if failed {
				t.Logf("play.mjs report: %s", line)
			}
		})
	}
}
