//go:build linux

package playlist

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
)

// parkedStream is an LL-HLS stream with segment 0 done and two parts of
// segment 1: the next part is seg1.2, the next segment's first seg2.0.
func parkedStream(t testing.TB) (*Registry, *Stream, *fakeClock) {
	t.Helper()
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/show")
	s.Init([]byte("ftypmoov"))
	addLLSegment(t, s, clk, 5)
	addParts(t, s, 2)
	return r, s, clk
}

// closeSegment ends the open segment (its parts so far).
func closeSegment(t *testing.T, s *Stream, clk *fakeClock) {
	t.Helper()
	s.mu.Lock()
	n := len(s.open.parts)
	s.mu.Unlock()
	if err := s.Segment(Segment{Data: []byte("segment"), Duration: time.Duration(n) * 200 * time.Millisecond, ProgramDateTime: clk.Now()}); err != nil {
		t.Fatal(err)
	}
}

// awaitWaitingExactly waits until exactly n blocking requests wait.
func awaitWaitingExactly(t *testing.T, r *Registry, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.totals.waiting.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d blocking requests wait, want %d", r.totals.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// readAll reads n responses to requests of method.
func readAll(t *testing.T, c net.Conn, br *bufio.Reader, method string, n int) (out []string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for range n {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d: %v", len(out), err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Header.Del("Date")
		keys := slices.Sorted(maps.Keys(resp.Header))
		var b strings.Builder
		b.WriteString(resp.Status + "\n")
		for _, k := range keys {
			b.WriteString(k + ": " + strings.Join(resp.Header[k], ",") + "\n")
		}
		b.Write(body)
		out = append(out, b.String())
	}
	return out
}

// Blocking requests — LL-HLS playlist reloads with delivery directives and
// preload-hint parts — get the same answers from the loops, which park
// them, as from net/http's Handler, which waits in a goroutine: once what
// they wait for comes, when it never comes (503 after the block timeout),
// when the stream ends or its publisher leaves, and when the directive is
// malformed or too far ahead (the loops hand those to net/http). The loops
// answer the parked ones themselves.
func TestServerBlocksAsNetHTTP(t *testing.T) {
	const host = "Host: fount.test\r\n"
	get := func(target string, hdr ...string) string {
		return "GET " + target + " HTTP/1.1\r\n" + host + strings.Join(hdr, "") + "\r\n"
	}
	for _, tc := range []struct {
		name   string
		req    string
		n      int  // responses
		park   bool // the request waits
		loop   bool // a loop answers it
		action func(t *testing.T, s *Stream, clk *fakeClock)
	}{
		{"next part", get("/live/show/index.m3u8?_HLS_msn=1&_HLS_part=2"), 1, true, true,
			func(t *testing.T, s *Stream, _ *fakeClock) { addParts(t, s, 1) }},
		{"next part, delta, gzip", get("/live/show/index.m3u8?_HLS_msn=1&_HLS_part=2&_HLS_skip=YES", "Accept-Encoding: gzip\r\n"), 1, true, true,
			func(t *testing.T, s *Stream, _ *fakeClock) { addParts(t, s, 1) }},
		{"part after next", get("/live/show/index.m3u8?_HLS_msn=1&_HLS_part=3"), 1, true, true,
			func(t *testing.T, s *Stream, _ *fakeClock) { addParts(t, s, 2) }},
		{"next segment", get("/live/show/index.m3u8?_HLS_msn=1"), 1, true, true,
			func(t *testing.T, s *Stream, clk *fakeClock) { addParts(t, s, 1); closeSegment(t, s, clk) }},
		{"next segment's first part", get("/live/show/index.m3u8?_HLS_msn=2&_HLS_part=0"), 1, true, true,
			func(t *testing.T, s *Stream, clk *fakeClock) { closeSegment(t, s, clk); addParts(t, s, 1) }},
		{"hinted part", get("/live/show/seg1.2.m4s"), 1, true, true,
			func(t *testing.T, s *Stream, _ *fakeClock) { addParts(t, s, 1) }},
		{"hinted part, HEAD", "HEAD /live/show/seg1.2.m4s HTTP/1.1\r\n" + host + "\r\n", 1, true, true,
			func(t *testing.T, s *Stream, _ *fakeClock) { addParts(t, s, 1) }},
		{"next segment's first part, hinted", get("/live/show/seg2.0.m4s"), 1, true, true,
			func(t *testing.T, s *Stream, clk *fakeClock) { closeSegment(t, s, clk); addParts(t, s, 1) }},
		{"pipelined behind", get("/live/show/seg1.2.m4s") + get("/live/show/init0.mp4"), 2, true, true,
			func(t *testing.T, s *Stream, _ *fakeClock) { addParts(t, s, 1) }},
		{"timeout, playlist", get("/live/show/index.m3u8?_HLS_msn=1&_HLS_part=2"), 1, true, true, nil},
		{"timeout, part", get("/live/show/seg1.2.m4s"), 1, true, true, nil},
		{"timeout, HEAD", "HEAD /live/show/seg1.2.m4s HTTP/1.1\r\n" + host + "\r\n", 1, true, true, nil},
		{"timeout, close", get("/live/show/seg1.2.m4s", "Connection: close\r\n"), 1, true, true, nil},
		{"ends", get("/live/show/index.m3u8?_HLS_msn=1&_HLS_part=2"), 1, true, true,
			func(t *testing.T, s *Stream, _ *fakeClock) { s.end(true) }},
		{"publisher leaves, part", get("/live/show/seg1.2.m4s"), 1, true, false,
			func(t *testing.T, s *Stream, _ *fakeClock) { s.Unpublish() }},
		{"too far", get("/live/show/index.m3u8?_HLS_msn=4"), 1, false, false, nil},
		{"malformed", get("/live/show/index.m3u8?_HLS_msn=1&_HLS_part=x"), 1, false, false, nil},
		{"part without msn", get("/live/show/index.m3u8?_HLS_part=1"), 1, false, false, nil},
		{"first of two values", get("/live/show/index.m3u8?_HLS_msn=1&_HLS_msn=x&_HLS_part=1&other=y"), 1, false, true, nil},
		{"empty value", get("/live/show/index.m3u8?_HLS_msn=&_HLS_skip=YES"), 1, false, true, nil},
		{"not a next part", get("/live/show/seg1.5.m4s"), 1, false, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, s, clk := parkedStream(t)
			loops := startLoopServer(t, r, httploop.Config{})
			plain := startLoopServer(t, r, httploop.Config{Loops: -1})
			c1, br1 := dial(t, loops.addr)
			c2, br2 := dial(t, plain.addr)
			for _, c := range []net.Conn{c1, c2} {
				if _, err := io.WriteString(c, tc.req); err != nil {
					t.Fatal(err)
				}
			}
			if tc.park {
				awaitWaiting(t, r, 2)
			}
			if tc.action != nil {
				tc.action(t, s, clk)
			}
			method, _, _ := strings.Cut(tc.req, " ")
			got := readAll(t, c1, br1, method, tc.n)
			want := readAll(t, c2, br2, method, tc.n)
			if !slices.Equal(got, want) {
				t.Errorf("loops:\n%s\nnet/http:\n%s", strings.Join(got, "\n--\n"), strings.Join(want, "\n--\n"))
			}
			if loop := loops.toNetHTTP.Load() == 0; loop != tc.loop {
				t.Errorf("answered by a loop %v, want %v", loop, tc.loop)
			}
			awaitWaitingExactly(t, r, 0)
			if tc.name == "timeout, playlist" && r.Stats().BlockTimeouts != 2 {
				t.Errorf("%d block timeouts counted, want 2", r.Stats().BlockTimeouts)
			}
		})
	}
}

// A parked request whose viewer goes away is dropped, as net/http cancels
// its handler: no goroutine, nothing left waiting, nothing observed.
func TestLoopParkedViewerLeaves(t *testing.T) {
	r, s, _ := parkedStream(t)
	ls := startLoopServer(t, r, httploop.Config{})
	c, _ := dial(t, ls.addr)
	io.WriteString(c, "GET /live/show/seg1.2.m4s HTTP/1.1\r\nHost: x\r\n\r\n")
	awaitWaiting(t, r, 1)
	c.Close()
	awaitWaitingExactly(t, r, 0)
	addParts(t, s, 1) // nobody to answer
	if n := ls.observed.Load(); n != 0 {
		t.Errorf("%d requests observed", n)
	}
	if n := ls.toNetHTTP.Load(); n != 0 {
		t.Errorf("%d connections went to net/http", n)
	}
}

// Drain answers the parked requests at once with net/http's 503 and
// Retry-After, so that players go to the successor.
func TestLoopParkedDrain(t *testing.T) {
	r, _, _ := parkedStream(t)
	r.cfg.BlockTimeout = time.Minute
	ls := startLoopServer(t, r, httploop.Config{})
	c, br := dial(t, ls.addr)
	io.WriteString(c, "GET /live/show/index.m3u8?_HLS_msn=1&_HLS_part=2 HTTP/1.1\r\nHost: x\r\n\r\n")
	awaitWaiting(t, r, 1)
	r.Drain()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("after Drain: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	awaitWaitingExactly(t, r, 0)
}

// Many viewers parked on one stream, as at an LL-HLS live edge: one part
// answers every one of them, each with the playlist rendered once, and a
// parked request costs the server a bounded amount of memory.
func TestLoopParkedMany(t *testing.T) {
	const n = 500
	r, s, _ := parkedStream(t)
	r.cfg.BlockTimeout = time.Minute
	r.cfg.MaxBlocking = n
	ls := startLoopServer(t, r, httploop.Config{})
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		conns[i], readers[i] = dial(t, ls.addr)
	}
	// Each connection answered once, so that the loop holds it.
	for i, c := range conns {
		exchange(t, c, readers[i], "GET /live/show/init0.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req := []byte("GET /live/show/index.m3u8?_HLS_msn=1&_HLS_part=2 HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n")
	for _, c := range conns {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
	}
	awaitWaiting(t, r, n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	perPark := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("heap per parked request: %d bytes (request of %d bytes)", perPark, len(req))
	if perPark > 1024 {
		t.Errorf("a parked request holds %d bytes of heap, want at most 1 KiB", perPark)
	}
	addParts(t, s, 1)
	want := s.pl.Load().body
	for i, c := range conns {
		resp, body := readResponse(t, c, readers[i])
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Fatalf("viewer %d: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
	awaitWaitingExactly(t, r, 0)
	if ls.toNetHTTP.Load() != 0 {
		t.Errorf("%d connections went to net/http", ls.toNetHTTP.Load())
	}
}

func readResponse(t *testing.T, c net.Conn, br *bufio.Reader) (*http.Response, []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// FuzzLoopsAnswerAsNetHTTP sends arbitrary request targets — paths and
// queries, delivery directives among them — to a loop server and to
// net/http over the same registry: the answers must be the same, byte for
// byte but Date. Nothing is published meanwhile, so a request that waits
// waits its (short) block timeout on both and gets the same 503. sel's
// bits: gzip, HEAD, servers that allow listed origins only (Origins), a
// listed Origin, an unlisted one.
func FuzzLoopsAnswerAsNetHTTP(f *testing.F) {
	for _, s := range []string{
		"/live/show/index.m3u8", "/live/show/index.m3u8?_HLS_msn=1&_HLS_part=1",
		"/live/show/index.m3u8?_HLS_msn=1&_HLS_part=2", "/live/show/index.m3u8?_HLS_msn=1&_HLS_part=2&_HLS_skip=YES",
		"/live/show/index.m3u8?_HLS_msn=2", "/live/show/index.m3u8?_HLS_msn=3", "/live/show/index.m3u8?_HLS_msn=1&_HLS_part=x",
		"/live/show/index.m3u8?_HLS_skip=v2&_HLS_msn=0", "/live/show/index.m3u8?a&&b=&=c&_HLS_msn=1&_HLS_msn=9",
		"/live/show/seg1.2.m4s", "/live/show/seg2.0.m4s", "/live/show/seg1.1.m4s?x=1", "/live/show/seg1.7.m4s",
		"/live/show/init0.mp4?", "/live/show/seg0.m4s", "/live/other/index.m3u8?_HLS_msn=1", "/live/show/index.m3u8?_HLS_msn=%31",
	} {
		f.Add(uint8(0), s)
	}
	f.Add(uint8(1), "/live/show/index.m3u8?_HLS_msn=1&_HLS_part=2")
	f.Add(uint8(2), "/live/show/seg1.2.m4s")
	f.Add(uint8(4|8|1), "/live/show/index.m3u8?_HLS_msn=1&_HLS_part=1")
	f.Add(uint8(4|16), "/live/show/seg1.2.m4s")
	f.Add(uint8(8), "/live/show/init0.mp4")
	r, _, _ := parkedStream(f)
	r.cfg.BlockTimeout = 20 * time.Millisecond
	listed, err := httploop.NewOrigins([]string{"https://site.example"})
	if err != nil {
		f.Fatal(err)
	}
	servers := [2][2]*loopServer{
		{startLoopServer(f, r, httploop.Config{}), startLoopServer(f, r, httploop.Config{Loops: -1})},
		{startLoopServer(f, r, httploop.Config{Origins: listed}), startLoopServer(f, r, httploop.Config{Loops: -1, Origins: listed})},
	}
	f.Fuzz(func(t *testing.T, sel uint8, target string) {
		if target == "" || strings.ContainsFunc(target, func(c rune) bool { return c <= ' ' || c > '~' }) {
			return
		}
		method := "GET"
		if sel&2 != 0 {
			method = "HEAD"
		}
		req := method + " " + target + " HTTP/1.1\r\nHost: fount.test\r\n"
		if sel&1 != 0 {
			req += "Accept-Encoding: gzip\r\n"
		}
		if sel&8 != 0 {
			req += "Origin: https://site.example\r\n"
		}
		if sel&16 != 0 {
			req += "Origin: https://evil.example\r\n"
		}
		req += "\r\n"
		pair := servers[sel>>2&1]
		var answers [2][]string
		for i, addr := range []string{pair[0].addr, pair[1].addr} {
			c, br := dial(t, addr)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			answers[i] = readAll(t, c, br, method, 1)
			c.Close()
		}
		if answers[0][0] != answers[1][0] {
			t.Fatalf("%q:\nloops:\n%s\nnet/http:\n%s", req, answers[0][0], answers[1][0])
		}
	})
}
