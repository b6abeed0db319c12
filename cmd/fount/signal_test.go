package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// The real binary on SIGTERM: stops taking publishers, ends the playlist
// with EXT-X-ENDLIST and exits 0 within 5 s.
func TestBinarySIGTERM(t *testing.T) {
	src := source(t)
	bin := filepath.Join(t.TempDir(), "fount")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve", "--rtmp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--storage", "dir:"+dir, "--webrtc-udp-addr", "")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// The first log line names the bound addresses.
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`rtmp=(\S+) http=(\S+)`)
	var rtmpAddr, httpAddr string
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			rtmpAddr, httpAddr = m[1], m[2]
			break
		}
	}
	if rtmpAddr == "" {
		t.Fatal("fount did not log its addresses")
	}
	var logs bytes.Buffer
	logDone := make(chan struct{})
	go func() {
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
		close(logDone)
	}()

	o := &origin{rtmp: rtmpAddr, http: httpAddr}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	push := o.push(ctx, t, "sig", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	defer push.Wait()
	defer cancel()
	awaitPlaylist(t, o.url("/live/sig/index.m3u8"), 15*time.Second, "a segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	took := time.Since(start)
	<-logDone
	if err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	if took > 5*time.Second {
		t.Errorf("took %s to exit, want < 5 s", took)
	}
	t.Logf("exited %s after SIGTERM", took.Round(time.Millisecond))
	body, err := os.ReadFile(filepath.Join(dir, "live", "sig", "index.m3u8"))
	if err != nil || !bytes.HasSuffix(body, []byte("#EXT-X-ENDLIST\n")) {
		t.Fatalf("stored playlist after SIGTERM does not end with ENDLIST (%v):\n%s", err, body)
	}
}
