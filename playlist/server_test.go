//go:build linux

package playlist

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/storage"
)

// loopServer runs an httploop.Server for r on loopback, with event loops
// unless cfg.Loops is negative. handled counts the requests r's Handler
// answered, toNetHTTP the connections net/http was given (by the loops, or
// all without), observed the requests the Observer saw.
type loopServer struct {
	srv                          *httploop.Server
	addr                         string
	handled, toNetHTTP, observed atomic.Int64
	served                       chan error
}

func (ls *loopServer) Observe([]byte, int, int64) { ls.observed.Add(1) }
func (ls *loopServer) Panicked(httploop.Panic)    {}

func startLoopServer(t testing.TB, r *Registry, cfg httploop.Config) *loopServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := &loopServer{addr: ln.Addr().String(), served: make(chan error, 1)}
	cfg.Source = r
	h := r.Handler()
	cfg.Viewer = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ls.handled.Add(1)
		h.ServeHTTP(w, req)
	})
	if cfg.Fallback == nil {
		cfg.Fallback = &http.Server{}
	}
	cfg.WrapConn = func(c net.Conn) net.Conn {
		ls.toNetHTTP.Add(1)
		return WrapConn(c)
	}
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	if cfg.Observer == nil {
		cfg.Observer = ls
	}
	ls.srv = httploop.NewServer(cfg)
	go func() { ls.served <- ls.srv.Serve(ln) }()
	t.Cleanup(func() {
		ls.srv.Close()
		if err := <-ls.served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return ls
}

// exchange sends raw request bytes on c and reads one response.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, req string) (*http.Response, []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%.40q: %v", req, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%.40q: body: %v", req, err)
	}
	return resp, body
}

func dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// classicWithMedia is a classic registry with a stream whose segments are a
// 3 MiB one (sendfile; or bigSize) and a 100 KB one (written from the file's mapping).
func classicWithMedia(t *testing.T) (*Registry, []byte, []byte) {
	return classicWithSizes(t, 3<<20)
}

func classicWithSizes(t *testing.T, bigSize int) (*Registry, []byte, []byte) {
	r, clk := newTestRegistry(t, storage.NewMemory())
	s, _ := r.Publish("live/show")
	big, small := make([]byte, bigSize), make([]byte, 100_000)
	rand.Read(big)
	rand.Read(small)
	for _, b := range [][]byte{big, small} {
		if err := s.Segment(Segment{Data: b, Duration: 2 * time.Second, ProgramDateTime: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Second)
	}
	if objectOf(t, s, "seg0.ts").file == nil {
		t.Fatal("the test needs media in memory files")
	}
	return r, big, small
}

// The loops answer exactly what net/http answers (the same server with
// its loops off) — status, headers but Date, body — and hand everything
// that is not a plain GET or HEAD of an existing playlist or object to
// net/http. Every request passes the Observer once, on either path.
func TestServerAnswersAsNetHTTP(t *testing.T) {
	r, _, _ := classicWithMedia(t)
	lr, clk := newLLRegistry(t)
	ls, _ := lr.Publish("live/show")
	ls.Init([]byte("ftypmoov"))
	addLLSegment(t, ls, clk, 5)
	addParts(t, ls, 2)

	const host = "Host: fount.test\r\n"
	cases := []struct {
		req  string
		loop bool // answered by a loop
	}{
		{"GET /live/show/index.m3u8 HTTP/1.1\r\n" + host + "\r\n", true},
		{"GET /live/show/index.m3u8 HTTP/1.1\r\n" + host + "Accept-Encoding: gzip, br\r\n\r\n", true},
		{"HEAD /live/show/index.m3u8 HTTP/1.1\r\n" + host + "\r\n", true},
		{"GET /live/show/seg0.ts HTTP/1.1\r\n" + host + "User-Agent: t\r\n\r\n", true},
		{"GET /live/show/seg1.ts HTTP/1.1\r\nhost: fount.test\r\nContent-Length: 0\r\n\r\n", true},
		{"HEAD /live/show/seg0.ts HTTP/1.1\r\n" + host + "\r\n", true},
		{"GET /live/show/seg0.ts HTTP/1.1\r\n" + host + "Range: bytes=10-19\r\n\r\n", false},
		{"GET /live/show/seg1.ts HTTP/1.1\r\n" + host + "If-None-Match: \"seg1.ts-100000\"\r\n\r\n", false},
		{"GET /live/show/seg9.ts HTTP/1.1\r\n" + host + "\r\n", false},
		{"GET /live/other/index.m3u8 HTTP/1.1\r\n" + host + "\r\n", false},
		{"GET /live/show/index.m3u8?x=1 HTTP/1.1\r\n" + host + "\r\n", true},
		{"GET /live/show/../show/index.m3u8 HTTP/1.1\r\n" + host + "\r\n", false},
		{"GET /live/show/index.m3u8 HTTP/1.0\r\n\r\n", false},
		{"GET /live/show/index.m3u8 HTTP/1.1\r\n\r\n", false},                    // no Host: 400
		{"GET /live/show/index.m3u8 HTTP/1.1\r\n" + host + host + "\r\n", false}, // two: 400
		{"GET /live/show/index.m3u8 HTTP/1.1\r\n" + host + "Bad Header: x\r\n\r\n", false},
		{"POST /live/show/index.m3u8 HTTP/1.1\r\n" + host + "Content-Length: 2\r\n\r\nhi", false},
		{"OPTIONS /live/show/seg0.ts HTTP/1.1\r\n" + host + "\r\n", false},
		{"GET /live/show/index.m3u8 HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n", true},
		{"GET /live/show/seg1.ts HTTP/1.1\r\n" + host + "Connection: close\r\nConnection: keep-alive\r\n\r\n", true},
		{"GET /live/show/seg1.ts HTTP/1.1\r\n" + host + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n", true},
	}
	llCases := []struct {
		req  string
		loop bool
	}{
		{"GET /live/show/index.m3u8 HTTP/1.1\r\n" + host + "\r\n", true},
		{"GET /live/show/init0.mp4 HTTP/1.1\r\n" + host + "\r\n", true},
		{"GET /live/show/seg0.m4s HTTP/1.1\r\n" + host + "\r\n", true},
		{"GET /live/show/seg1.1.m4s HTTP/1.1\r\n" + host + "\r\n", true},
		{"GET /live/show/index.m3u8?_HLS_msn=1&_HLS_part=1 HTTP/1.1\r\n" + host + "\r\n", true},
		{"GET /live/show/index.m3u8?_HLS_msn=1&_HLS_part=1&_HLS_skip=YES HTTP/1.1\r\n" + host + "Accept-Encoding: gzip\r\n\r\n", true},
	}
	for _, reg := range []struct {
		r     *Registry
		cases []struct {
			req  string
			loop bool
		}
	}{{r, cases}, {lr, llCases}} {
		loops := startLoopServer(t, reg.r, httploop.Config{})
		plain := startLoopServer(t, reg.r, httploop.Config{Loops: -1})
		for _, tc := range reg.cases {
			answerAlike(t, loops, plain, tc.req, tc.loop)
		}
		// Each request was observed alike — once, or not at all (net/http's
		// own 400s, unclean paths) — whichever path answered it. net/http
		// observes once its handler has returned: wait for the last one.
		deadline := time.Now().Add(5 * time.Second)
		for loops.observed.Load() != plain.observed.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if lo, po := loops.observed.Load(), plain.observed.Load(); lo != po || po == 0 {
			t.Errorf("observed %d requests with loops, %d without", lo, po)
		}
	}
}

// answerAlike sends req to a loop server and to the same server without
// loops, on a connection each, and fails unless the answers are the same
// (status, headers but Date, body) and a loop answered it or not, as loop
// says. It returns the loops' answer.
func answerAlike(t *testing.T, loops, plain *loopServer, req string, loop bool) *http.Response {
	t.Helper()
	toNetHTTP := loops.toNetHTTP.Load()
	c1, br1 := dial(t, loops.addr)
	got, gotBody := exchange(t, c1, br1, req)
	c2, br2 := dial(t, plain.addr)
	want, wantBody := exchange(t, c2, br2, req)
	if answered := loops.toNetHTTP.Load() == toNetHTTP; answered != loop {
		t.Errorf("%.80q: answered by a loop %v, want %v", req, answered, loop)
	}
	got.Header.Del("Date")
	want.Header.Del("Date")
	if got.StatusCode != want.StatusCode || !maps.EqualFunc(got.Header, want.Header, slices.Equal) || !bytes.Equal(gotBody, wantBody) {
		t.Errorf("%.80q:\n loops:    %d %v (%d bytes)\n net/http: %d %v (%d bytes)", req,
			got.StatusCode, got.Header, len(gotBody), want.StatusCode, want.Header, len(wantBody))
	}
	return got
}

// A request whose Connection headers say close, then something else, ends
// its connection on the loops as on net/http: any close wins, and the
// request pipelined behind it is never answered.
func TestServerClosesAsNetHTTP(t *testing.T) {
	r, _, small := classicWithMedia(t)
	const req = "GET /live/show/seg1.ts HTTP/1.1\r\nHost: fount.test\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n" +
		"GET /live/show/seg1.ts HTTP/1.1\r\nHost: fount.test\r\n\r\n"
	for _, cfg := range []httploop.Config{{}, {Loops: -1}} {
		ls := startLoopServer(t, r, cfg)
		c, br := dial(t, ls.addr)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("loops %d: %v", cfg.Loops, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Equal(b, small) || !resp.Close {
			t.Fatalf("loops %d: %d, %d bytes, close %v", cfg.Loops, resp.StatusCode, len(b), resp.Close)
		}
		if rest, err := io.ReadAll(br); len(rest) != 0 || err != nil {
			t.Fatalf("loops %d: after the close, %d more bytes (%.40q), %v; want the connection closed", cfg.Loops, len(rest), rest, err)
		}
	}
}

// One keep-alive connection: answered by a loop, handed to net/http by a
// range request, and still answered after that; pipelined requests are
// answered in order.
func TestServerKeepAliveHandOverAndPipelining(t *testing.T) {
	r, big, small := classicWithMedia(t)
	ls := startLoopServer(t, r, httploop.Config{})
	c, br := dial(t, ls.addr)
	const host = "Host: fount.test\r\n"
	resp, b := exchange(t, c, br, "GET /live/show/seg1.ts HTTP/1.1\r\n"+host+"\r\n")
	if resp.StatusCode != 200 || !bytes.Equal(b, small) {
		t.Fatalf("loop GET: %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, b = exchange(t, c, br, "GET /live/show/seg0.ts HTTP/1.1\r\n"+host+"Range: bytes=5-9\r\n\r\n")
	if resp.StatusCode != 206 || !bytes.Equal(b, big[5:10]) {
		t.Fatalf("range after hand-over: %d %x", resp.StatusCode, b)
	}
	resp, b = exchange(t, c, br, "GET /live/show/seg0.ts HTTP/1.1\r\n"+host+"\r\n")
	if resp.StatusCode != 200 || !bytes.Equal(b, big) {
		t.Fatalf("GET on the handed-over connection: %d, %d bytes", resp.StatusCode, len(b))
	}

	// Three requests in one write, the last one for net/http.
	c2, br2 := dial(t, ls.addr)
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c2, "GET /live/show/seg1.ts HTTP/1.1\r\n"+host+"\r\n"+
		"HEAD /live/show/seg0.ts HTTP/1.1\r\n"+host+"\r\n"+
		"GET /live/show/seg0.ts HTTP/1.1\r\n"+host+"Range: bytes=0-3\r\n\r\n")
	for i, want := range []struct {
		code int
		body []byte
	}{{200, small}, {200, nil}, {206, big[:4]}} {
		req := &http.Request{Method: "GET"}
		if i == 1 {
			req.Method = "HEAD"
		}
		resp, err := http.ReadResponse(br2, req)
		if err != nil {
			t.Fatalf("pipelined response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want.code || !bytes.Equal(b, want.body) {
			t.Fatalf("pipelined response %d: %d, %d bytes", i, resp.StatusCode, len(b))
		}
	}
}

// A viewer that reads slowly fills its socket: the loop waits for it
// (EPOLLOUT) and the body still arrives whole, while other viewers are
// answered meanwhile.
func TestServerSlowReader(t *testing.T) {
	// More than the sender's and the receiver's socket buffers hold
	// (tcp_wmem and tcp_rmem at most 4 and 6 MiB by default): sendfile
	// must meet a full socket.
	r, big, small := classicWithSizes(t, 32<<20)
	ls := startLoopServer(t, r, httploop.Config{Loops: 1})
	resp := getUnread(t, ls.addr, "/live/show/seg0.ts")
	// Others are answered while this body waits in the socket.
	c2, br2 := dial(t, ls.addr)
	if resp2, b := exchange(t, c2, br2, "GET /live/show/seg1.ts HTTP/1.1\r\nHost: x\r\n\r\n"); resp2.StatusCode != 200 || !bytes.Equal(b, small) {
		t.Fatalf("second viewer: %d, %d bytes", resp2.StatusCode, len(b))
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("slow reader got %d bytes (%v), equal %v", len(got), err, bytes.Equal(got, big))
	}
}

// getUnread sends a GET and reads only the response head: the body waits
// in the socket until the caller reads it.
func getUnread(t *testing.T, addr, path string) *http.Response {
	t.Helper()
	c, _ := dial(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: fount.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1024), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Idle and half-sent requests are closed after their timeouts.
func TestServerTimeouts(t *testing.T) {
	r, _, _ := classicWithMedia(t)
	ls := startLoopServer(t, r, httploop.Config{Fallback: &http.Server{IdleTimeout: 200 * time.Millisecond, ReadHeaderTimeout: 200 * time.Millisecond}})
	idle, _ := dial(t, ls.addr)
	half, _ := dial(t, ls.addr)
	io.WriteString(half, "GET /live/show/seg0.ts HTTP/1.1\r\nHost: x\r\n")
	for name, c := range map[string]net.Conn{"idle": idle, "half-sent": half} {
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%s connection: read %d, %v; want EOF", name, n, err)
		}
		t.Logf("%s connection closed after %v", name, time.Since(start).Round(time.Millisecond))
	}
}

// Keep-alive off (a handover) closes idle connections and answers the
// rest with Connection: close; Shutdown closes idle ones and returns.
func TestServerKeepAliveOffAndShutdown(t *testing.T) {
	r, _, small := classicWithMedia(t)
	ls := startLoopServer(t, r, httploop.Config{})
	idle, ibr := dial(t, ls.addr)
	exchange(t, idle, ibr, "HEAD /live/show/seg1.ts HTTP/1.1\r\nHost: x\r\n\r\n") // now in a loop, idle
	ls.srv.SetKeepAlivesEnabled(false)
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection after keep-alive off: %v, want EOF", err)
	}
	c, br := dial(t, ls.addr)
	resp, b := exchange(t, c, br, "GET /live/show/seg1.ts HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || !bytes.Equal(b, small) || !resp.Close {
		t.Fatalf("with keep-alive off: %d, %d bytes, Connection: close %v", resp.StatusCode, len(b), resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection after its last answer: %v, want EOF", err)
	}

	ls.srv.SetKeepAlivesEnabled(true)
	idle2, ibr2 := dial(t, ls.addr)
	exchange(t, idle2, ibr2, "HEAD /live/show/seg1.ts HTTP/1.1\r\nHost: x\r\n\r\n")
	c2, br2 := dial(t, ls.addr)
	if resp, _ := exchange(t, c2, br2, "GET /live/show/seg1.ts HTTP/1.1\r\nHost: x\r\n\r\n"); resp.Close {
		t.Fatal("keep-alive back on, but the answer closes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ls.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range []net.Conn{idle2, c2} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("connection after Shutdown: %v, want EOF", err)
		}
	}
	if _, err := net.DialTimeout("tcp", ls.addr, time.Second); err == nil {
		t.Fatal("the listener still accepts after Shutdown")
	}
}

// A memory file keeps its bytes while a loop sends from it, even when the
// segment is dropped meanwhile.
func TestServerHoldsFileWhileSending(t *testing.T) {
	r, big, _ := classicWithSizes(t, 32<<20) // more than the sockets hold
	ls := startLoopServer(t, r, httploop.Config{Loops: 1})
	resp := getUnread(t, ls.addr, "/live/show/seg0.ts")
	f := objectOf(t, r.Stream("live/show"), "seg0.ts").file
	f.drop() // as when the segment leaves the window
	b, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(b, big) {
		t.Fatalf("body after the file was dropped: %d bytes, %v", len(b), err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.refs.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the loop releases once the last byte is out
	}
	if n := f.refs.Load(); n != 0 {
		t.Fatalf("%d references left after the response", n)
	}
}

// A panic while a loop answers closes that connection, is reported, and
// the loop goes on answering the others.
func TestServerLoopPanicClosesOneConnection(t *testing.T) {
	r, _, small := classicWithMedia(t)
	obs := &panicObserver{}
	ls := startLoopServer(t, r, httploop.Config{Loops: 1, Observer: obs})
	c, _ := dial(t, ls.addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /live/show/seg0.ts HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("the panicking request: %d bytes, %v; want a close", len(b), err)
	}
	if n := obs.panics.Load(); n != 1 {
		t.Fatalf("%d panics reported, want 1", n)
	}
	if p := obs.last.Load(); p == nil || !p.Loop || p.Path != "/live/show/seg0.ts" || !strings.HasPrefix(p.Remote, "127.0.0.1:") {
		t.Fatalf("the panic reported: %+v", p)
	}
	c2, br2 := dial(t, ls.addr)
	if resp, b := exchange(t, c2, br2, "GET /live/show/seg1.ts HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || !bytes.Equal(b, small) {
		t.Fatalf("after the panic: %d, %d bytes", resp.StatusCode, len(b))
	}
}

// panicObserver panics observing seg0.ts, and keeps what Panicked reports.
type panicObserver struct {
	panics atomic.Int64
	last   atomic.Pointer[httploop.Panic]
}

func (o *panicObserver) Observe(path []byte, _ int, _ int64) {
	if strings.HasSuffix(string(path), "seg0.ts") {
		panic("observer failed")
	}
}

func (o *panicObserver) Panicked(p httploop.Panic) {
	o.panics.Add(1)
	o.last.Store(&p)
}
