//go:build linux

package httploop

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeSource answers /s/small from memory and /s/big from a file, and
// counts what it holds.
type fakeSource struct {
	small []byte
	file  *os.File
	size  int64
	held  atomic.Int64
}

func (f *fakeSource) Release() { f.held.Add(-1) }

func (f *fakeSource) Lookup(req Request) (Answer, Verdict) {
	switch string(req.Path) {
	case "/s/small":
		return Answer{Head: Head{ContentType: "video/mp2t", CacheControl: "max-age=1", ETag: `"small"`, Length: int64(len(f.small))}, Body: f.small}, Serve
	case "/s/big":
		f.held.Add(1)
		return Answer{Head: Head{ContentType: "video/mp2t", CacheControl: "max-age=1", ETag: `"big"`, Gzip: req.Gzip, Length: f.size,
			Modified: time.Unix(1e9, 0)}, File: int(f.file.Fd()), Off: 10, N: f.size, Hold: f}, Serve
	}
	return Answer{}, Decline
}

func newFakeSource(t *testing.T) *fakeSource {
	f, err := os.CreateTemp(t.TempDir(), "big")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	f.Write(data)
	return &fakeSource{small: []byte("small body"), file: f, size: int64(len(data)) - 10}
}

// countObserver counts what it observes, without allocating.
type countObserver struct{ observed, panics atomic.Int64 }

func (o *countObserver) Observe([]byte, int, int64) { o.observed.Add(1) }
func (o *countObserver) Panicked(Panic)             { o.panics.Add(1) }

// A loop answers from the Source — bytes and a file range, keep-alive,
// releasing what the answer held — and hands what the Source does not
// have, with the bytes read, to the Viewer, which keeps the connection.
func TestLoopServesSource(t *testing.T) {
	src := newFakeSource(t)
	obs := &countObserver{}
	var handed atomic.Int64
	viewer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handed.Add(1)
		http.Error(w, "not here: "+r.URL.Path, http.StatusNotFound)
	})
	addr := startServer(t, Config{Source: src, Viewer: viewer, Observer: obs, Loops: 1})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	get := func(path, hdr string) (*http.Response, string) {
		t.Helper()
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+hdr+"\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, b := get("/s/small", ""); resp.StatusCode != 200 || b != "small body" || resp.Header.Get("Etag") != `"small"` {
		t.Fatalf("small: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	resp, b := get("/s/big", "Accept-Encoding: gzip\r\n")
	if want := strings.Repeat("0123456789", 100_000)[10:]; resp.StatusCode != 200 || b != want || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("big: %d, %d bytes, equal %v, %v", resp.StatusCode, len(b), b == want, resp.Header)
	}
	if resp, b := get("/s/other", ""); resp.StatusCode != 404 || b != "not here: /s/other\n" || handed.Load() != 1 {
		t.Fatalf("other: %d %q, handed %d", resp.StatusCode, b, handed.Load())
	}
	// The connection is net/http's now, for good.
	if resp, b := get("/s/small", ""); resp.StatusCode != 404 || b != "not here: /s/small\n" || handed.Load() != 2 {
		t.Fatalf("on the handed-over connection: %d %q, handed %d", resp.StatusCode, b, handed.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for (src.held.Load() != 0 || obs.observed.Load() != 4) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if src.held.Load() != 0 || obs.observed.Load() != 4 {
		t.Fatalf("%d answers held, %d observed", src.held.Load(), obs.observed.Load())
	}
}

// A loop answers a plain request — parse, look-up, head, write or
// sendfile, observation, release — without allocating.
func TestLoopAnswerAllocs(t *testing.T) {
	src := newFakeSource(t)
	s := NewServer(Config{Source: src, Viewer: http.NotFoundHandler(), Observer: &countObserver{}, Fallback: &http.Server{}})
	l, err := newLoop(s)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { unix.Close(l.ep); unix.Close(l.wakeFd) }()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	c := &lconn{fd: fds[0]}
	l.conns[c.fd] = c
	defer l.close(c)
	buf := make([]byte, 4<<20)
	for _, path := range []string{"/s/small", "/s/big"} {
		req := []byte("GET " + path + " HTTP/1.1\r\nHost: fount.test\r\nAccept-Encoding: gzip, deflate, br, zstd, identity;q=0.5, *;q=0.1\r\n\r\n")
		var got int
		answer := func() {
			l.serve(c, req, time.Now())
			if c.state != stateIdle {
				t.Fatalf("%s: not answered at once (state %d)", path, c.state)
			}
			got = 0
			for !bytes.HasSuffix(buf[:got], []byte("body")) && !bytes.HasSuffix(buf[:got], []byte("789")) {
				n, err := unix.Read(fds[1], buf[got:])
				if err != nil {
					t.Fatal(err)
				}
				got += n
			}
		}
		if n := testing.AllocsPerRun(50, answer); n != 0 {
			t.Errorf("%s: %v allocations per request", path, n)
		}
		if !bytes.HasPrefix(buf[:got], []byte("HTTP/1.1 200 OK\r\n")) {
			t.Errorf("%s: %.60q", path, buf[:got])
		}
	}
}
