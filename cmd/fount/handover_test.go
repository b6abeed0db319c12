package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// A restart that viewers do not notice: the running fount gets SIGUSR2
// (hand over), a successor starts on the same ports (--reuse-port) with the
// same storage, the encoder reconnects to it, and a viewer polling all the
// while sees only 200s, never EXT-X-ENDLIST, and one playlist whose media
// sequence goes on across the restart with a discontinuity.
func TestBinaryHandover(t *testing.T) {
	src := source(t)
	bin := filepath.Join(t.TempDir(), "fount")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	a := startBinary(t, bin, "127.0.0.1:0", "127.0.0.1:0", "--storage", "dir:"+dir, "--reuse-port", "--handover-grace", "3s")
	o := &origin{rtmp: a.rtmp, http: a.http}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	push := o.push(ctx, t, "show", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	url := o.url("/live/show/index.m3u8")
	awaitPlaylist(t, url, 20*time.Second, "two segments", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 2 })

	v := &handoverViewer{url: url, base: o.url("/live/show/"), client: &http.Client{Timeout: 10 * time.Second}, fetched: map[string]bool{}, changed: make(chan struct{})}
	vctx, vcancel := context.WithCancel(ctx)
	vdone := make(chan struct{})
	go func() { defer close(vdone); v.run(vctx) }()
	defer func() { vcancel(); <-vdone }()
	v.await(t, "the viewer's first playlists", func() bool { return v.polls >= 4 })

	if err := a.cmd.Process.Signal(sigHandover); err != nil {
		t.Fatal(err)
	}
	a.awaitLog(t, "handover: streams stored", 10*time.Second)
	if err := push.Wait(); err == nil {
		t.Error("the encoder was not disconnected by the handover")
	}
	handedAt := v.lastMSN()
	b := startBinary(t, bin, a.rtmp, a.http, "--storage", "dir:"+dir, "--reuse-port")
	b.awaitLog(t, "adopted a handed-over stream", 5*time.Second)
	if err := a.wait(15 * time.Second); err != nil {
		t.Errorf("the old process after its handover: %v\n%s", err, a.logs())
	}
	// The encoder reconnects, as OBS does on its own; only the successor
	// still listens.
	push = o.push(ctx, t, "show", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	defer push.Wait()
	defer cancel()
	v.await(t, "segments from the successor", func() bool { return v.maxMSN > handedAt+2 })
	vcancel()
	<-vdone
	v.mu.Lock()
	defer v.mu.Unlock()
	t.Logf("viewer: %d playlists, %d segments, media sequence %d → %d, discontinuities seen %d", v.polls, v.segments, v.firstMSN, v.maxMSN, v.discs)
	for _, p := range v.problems {
		t.Error(p)
	}
	if v.discs == 0 {
		t.Error("the continued stream has no EXT-X-DISCONTINUITY")
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := b.wait(10 * time.Second); err != nil {
		t.Errorf("successor after SIGTERM: %v", err)
	}
}

// binary is a fount process started by a test.
type binary struct {
	cmd        *exec.Cmd
	rtmp, http string
	mu         sync.Mutex
	buf        bytes.Buffer
	changed    chan struct{}
	done       chan error
}

func startBinary(t *testing.T, bin, rtmpAddr, httpAddr string, extra ...string) *binary {
	t.Helper()
	args := append([]string{"serve", "--rtmp-addr", rtmpAddr, "--http-addr", httpAddr, "--api-addr", "", "--webrtc-udp-addr", ""}, extra...)
	b := &binary{cmd: exec.Command(bin, args...), changed: make(chan struct{}), done: make(chan error, 1)}
	stderr, _ := b.cmd.StderrPipe()
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.cmd.Process.Kill(); b.wait(5 * time.Second) })
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`rtmp=(\S+) http=(\S+)`)
	for sc.Scan() {
		b.buf.WriteString(sc.Text() + "\n")
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			b.rtmp, b.http = m[1], m[2]
			break
		}
	}
	if b.rtmp == "" {
		t.Fatalf("fount did not start:\n%s", b.buf.String())
	}
	go func() {
		for sc.Scan() {
			b.mu.Lock()
			b.buf.WriteString(sc.Text() + "\n")
			close(b.changed)
			b.changed = make(chan struct{})
			b.mu.Unlock()
		}
		b.done <- b.cmd.Wait()
	}()
	return b
}

func (b *binary) logs() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *binary) awaitLog(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		ok, ch := strings.Contains(b.buf.String(), s), b.changed
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no log line %q within %s:\n%s", s, timeout, b.logs())
		}
	}
}

// wait waits for the process to exit; nil only for exit status 0.
func (b *binary) wait(timeout time.Duration) error {
	select {
	case err := <-b.done:
		b.done <- err // for later callers (cleanup)
		return err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
	}
}

// handoverViewer polls a playlist like a classic player and fetches each
// new segment once, noting anything a player would stumble on.
type handoverViewer struct {
	url, base string
	client    *http.Client

	mu                sync.Mutex
	polls, segments   int
	firstMSN, maxMSN  uint64
	discs             int
	fetched           map[string]bool
	problems          []string
	changed           chan struct{}
	lastSeq, lastDisc uint64
}

func (v *handoverViewer) lastMSN() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.maxMSN
}

func (v *handoverViewer) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		v.mu.Lock()
		ok, ch := cond(), v.changed
		v.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (v *handoverViewer) run(ctx context.Context) {
	for ctx.Err() == nil {
		v.poll(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (v *handoverViewer) problem(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *handoverViewer) get(ctx context.Context, url string) ([]byte, bool) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := v.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			v.mu.Lock()
			v.problem("GET %s: %v", url, err)
			v.mu.Unlock()
		}
		return nil, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if (err != nil || resp.StatusCode != 200) && ctx.Err() == nil {
		v.mu.Lock()
		v.problem("GET %s: %d %v", url, resp.StatusCode, err)
		v.mu.Unlock()
		return nil, false
	}
	return body, err == nil
}

func (v *handoverViewer) poll(ctx context.Context) {
	body, ok := v.get(ctx, v.url)
	if !ok {
		return
	}
	pl, lt, err := m3u8.DecodeFrom(bytes.NewReader(body), true)
	v.mu.Lock()
	defer v.mu.Unlock()
	defer func() { close(v.changed); v.changed = make(chan struct{}) }()
	if err != nil || lt != m3u8.MEDIA {
		v.problem("unparsable playlist (%v):\n%s", err, body)
		return
	}
	p := pl.(*m3u8.MediaPlaylist)
	v.polls++
	if p.Closed {
		v.problem("EXT-X-ENDLIST seen:\n%s", body)
	}
	if p.SeqNo < v.lastSeq || p.DiscontinuitySeq < v.lastDisc {
		v.problem("media sequence went back: %d/%d after %d/%d", p.SeqNo, p.DiscontinuitySeq, v.lastSeq, v.lastDisc)
	}
	v.lastSeq, v.lastDisc = p.SeqNo, p.DiscontinuitySeq
	if v.polls == 1 {
		v.firstMSN = p.SeqNo
	}
	var todo []string
	for i, s := range segments(p) {
		msn := p.SeqNo + uint64(i)
		if msn > v.maxMSN {
			v.maxMSN = msn
			if s.Discontinuity {
				v.discs++
			}
		}
		if !v.fetched[s.URI] {
			v.fetched[s.URI] = true
			todo = append(todo, s.URI)
		}
	}
	v.mu.Unlock()
	for _, u := range todo {
		if _, ok := v.get(ctx, v.base+u); ok {
			v.mu.Lock()
			v.segments++
			v.mu.Unlock()
		}
	}
	v.mu.Lock()
}
