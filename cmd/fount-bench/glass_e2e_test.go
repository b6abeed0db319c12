package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestGlassEndToEnd measures a real fount with `glass`: ffmpeg pushes the
// stamped frames, hls.js in chromium plays them, and the stamps come back
// readable, in order and within seconds of their send time.
func TestGlassEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs fount, ffmpeg and chromium")
	}
	lockEndToEnd(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	browserDir := filepath.Join("..", "..", "testdata", "browser")
	npmCI(t, browserDir)
	rtmp, httpAddr := startFount(t)

	jsonPath := filepath.Join(t.TempDir(), "glass.json")
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	code := run(ctx, []string{"glass",
		"--rtmp", "rtmp://" + rtmp + "/live/glass",
		"--hls", "http://" + httpAddr + "/live/glass/index.m3u8",
		"--join", "2s", "--warmup", "2s", "--duration", "6s",
		"--browser-dir", browserDir, "--json", jsonPath,
	}, &out, &errOut)
	if code != 0 {
		t.Fatalf("glass exited %d:\n%s\n%s", code, out.String(), errOut.String())
	}
	t.Logf("glass:\n%s", out.String())
	rep := readJSON[glassReport](t, jsonPath)
	s := rep.Summary
	// 6 s at 30 fps is 180 frames; a loaded machine drops some.
	if s.Samples < 90 {
		t.Errorf("%d frames read back in 6 s, want at least 90 of 180", s.Samples)
	}
	if rep.Page.Undecoded > len(rep.Page.Samples)/10 {
		t.Errorf("%d frames undecodable against %d read", rep.Page.Undecoded, len(rep.Page.Samples))
	}
	// Same clock on both ends: a latency outside (0, 10 s) means the stamp
	// or its reading is wrong, not that the origin is slow.
	if s.Min <= 0 || s.Max >= 10000 {
		t.Errorf("latency %v–%v ms, want within (0, 10000)", s.Min, s.Max)
	}
	var last float64
	for _, sm := range rep.Page.Samples {
		if sm[3] < last {
			t.Fatalf("send times go backwards: %v after %v", sm[3], last)
		}
		last = sm[3]
	}
}

// npmCI installs testdata/browser's pinned packages unless hls.js and
// playwright-core are there already.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	have := true
	for _, p := range []string{"hls.js", "playwright-core"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
			have = false
		}
	}
	if have {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}
