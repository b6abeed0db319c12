package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildFount builds cmd/fount once per test binary.
var fountBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fount-bench-e2e-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fount")
	out, err := exec.Command("go", "build", "-o", bin, "../fount").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ../fount: %w\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startFount runs the built fount on free loopback ports until the test ends.
func startFount(t *testing.T, extra ...string) (rtmp, httpAddr string) {
	t.Helper()
	bin, err := fountBin()
	if err != nil {
		t.Fatal(err)
	}
	rtmp, httpAddr = freeAddr(t), freeAddr(t)
	// --webrtc-udp-addr "": its default port is fixed, and founts run at once.
	args := append([]string{"serve", "--rtmp-addr", rtmp, "--http-addr", httpAddr, "--api-addr", "", "--log-level", "warn", "--webrtc-udp-addr", ""}, extra...)
	cmd := exec.Command(bin, args...)
	var logs strings.Builder
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("fount %v log:\n%s", extra, logs.String())
			mu.Unlock()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get("http://" + httpAddr + "/live/none/index.m3u8"); err == nil {
			resp.Body.Close()
			return rtmp, httpAddr
		}
		select {
		case err := <-exited:
			t.Fatalf("fount exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("fount did not answer within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestEndToEnd publishes 2 streams into a real fount, LL-HLS (default)
// and classic TS side by side, and watches each with 5 viewers per stream.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs fount")
	}
	lockEndToEnd(t)
	requireTool(t, "ffmpeg")
	dir := t.TempDir()
	clipPath := filepath.Join(dir, "clip.flv")
	if err := makeClip(context.Background(), clipPath); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		flags  []string
		mode   string
		maxLag float64 // ms
	}{
		{"ll", nil, "ll", 3000},
		{"classic", []string{"--segment-format", "ts", "--low-latency=false"}, "classic", 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rtmp, httpAddr := startFount(t, tc.flags...)
			pub := publishConfig{common: common{duration: 14 * time.Second, ramp: 200 * time.Millisecond, jsonPath: filepath.Join(t.TempDir(), "pub.json")},
				url: "rtmp://" + rtmp + "/live", streams: 2, prefix: "e2e", file: clipPath, startupURL: "http://" + httpAddr}
			if err := pub.validate(); err != nil {
				t.Fatal(err)
			}
			var pubOut strings.Builder
			pubDone := make(chan error, 1)
			go func() { pubDone <- runPublish(context.Background(), pub, &pubOut, &pubOut) }()

			// Viewers join once the streams play (about one segment in).
			time.Sleep(3 * time.Second)
			view := viewConfig{common: common{duration: 8 * time.Second, ramp: 500 * time.Millisecond, jsonPath: filepath.Join(t.TempDir(), "view.json")},
				url: "http://" + httpAddr, streams: 2, prefix: "e2e", app: "live", viewers: 5, mode: tc.mode}
			if err := view.validate(); err != nil {
				t.Fatal(err)
			}
			var viewOut strings.Builder
			if err := runView(context.Background(), view, &viewOut, &viewOut); err != nil {
				t.Errorf("view: %v", err)
			}
			if err := <-pubDone; err != nil {
				t.Errorf("publish: %v", err)
			}
			t.Logf("\n%s\n%s", pubOut.String(), viewOut.String())

			p := readJSON[publishResult](t, pub.jsonPath)
			if p.Connected != 2 || p.Failed != 0 || p.Dropped != 0 {
				t.Errorf("publishers: %d connected, %d failed, %d dropped", p.Connected, p.Failed, p.Dropped)
			}
			if p.Startup == nil || p.Startup.Count != 2 || p.Startup.Max > 6000 {
				t.Errorf("startup: %+v, want 2 under 6 s", p.Startup)
			}
			v := readJSON[viewResult](t, view.jsonPath)
			if v.Joined != 10 || v.Total.Failed != 0 || v.Missed != 0 {
				t.Errorf("viewers: %d joined, %d failed (%v), %d missed; want 10, 0, 0", v.Joined, v.Total.Failed, v.Failures, v.Missed)
			}
			if tc.mode == "ll" && (v.LL != 10 || v.Kinds["part"].Requests == 0 || v.Kinds["blocking_playlist"].Requests == 0) {
				t.Errorf("LL: %d LL viewers, kinds %+v", v.LL, v.Kinds)
			}
			if tc.mode == "classic" && (v.Classic != 10 || v.Kinds["segment"].Requests < 10) {
				t.Errorf("classic: %d classic viewers, kinds %+v", v.Classic, v.Kinds)
			}
			if v.Lag.Count == 0 || v.Lag.Max > tc.maxLag {
				t.Errorf("behind live: %+v, want max under %.0f ms", v.Lag, tc.maxLag)
			}
		})
	}
}
