//go:build linux

package playlist

import (
	"bytes"
	"io"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
)

// Lookup answers what the Handler answers 200 to, and no more, without
// allocating: a playlist (plain or gzip), a segment by sendfile, a part
// from the file's mapping, a heap object.
func TestLookupAllocs(t *testing.T) {
	r, big, small := classicWithMedia(t)
	lr, clk := newLLRegistry(t)
	ls, _ := lr.Publish("live/show")
	ls.Init([]byte("ftypmoov"))
	addLLSegment(t, ls, clk, 5)
	addParts(t, ls, 2)
	s := r.Stream("live/show")
	for _, tc := range []struct {
		r          *Registry
		path       string
		gzip, head bool
		body       []byte // nil: sent from the file
		n          int64
	}{
		{r, "/live/show/index.m3u8", false, false, s.pl.Load().body, 0},
		{r, "/live/show/index.m3u8", true, false, s.pl.Load().gz.get(s.pl.Load().body), 0},
		{r, "/live/show/seg0.ts", false, false, nil, int64(len(big))},
		{r, "/live/show/seg1.ts", true, false, small, 0},
		{r, "/live/show/seg1.ts", false, true, small, 0},
		{lr, "/live/show/seg1.1.m4s", false, false, []byte("open part"), 0},
		{lr, "/live/show/init0.mp4", false, false, []byte("ftypmoov"), 0},
	} {
		path := []byte(tc.path)
		a, ok := lookup(tc.r, tc.path, tc.gzip, tc.head)
		gzipped := tc.gzip && bytes.HasSuffix(path, []byte(".m3u8")) // media is never gzipped
		if !ok || !bytes.Equal(a.Body, tc.body) || (tc.body == nil) != (a.Body == nil) || a.N != tc.n || a.Head.Gzip != gzipped {
			t.Errorf("%s: %v, body %d bytes (want %d), N %d (want %d), head %+v", tc.path, ok, len(a.Body), len(tc.body), a.N, tc.n, a.Head)
		}
		if a.Hold != nil {
			a.Hold.Release()
		}
		allocs := testing.AllocsPerRun(100, func() {
			a, _ := tc.r.Lookup(httploop.Request{Path: path, Gzip: tc.gzip, Head: tc.head})
			if a.Hold != nil {
				a.Hold.Release()
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per look-up", tc.path, allocs)
		}
	}
	// Blocking requests: answered at once, and parked (Wait), cost no
	// allocation either.
	for _, tc := range []struct {
		path, query string
		want        httploop.Verdict
	}{
		{"/live/show/index.m3u8", "_HLS_msn=1&_HLS_part=0", httploop.Serve},
		{"/live/show/index.m3u8", "_HLS_msn=1&_HLS_part=0&_HLS_skip=YES", httploop.Serve},
		{"/live/show/index.m3u8", "_HLS_msn=1&_HLS_part=5", httploop.Wait},
		{"/live/show/seg1.2.m4s", "", httploop.Wait},
		{"/live/show/seg2.0.m4s", "", httploop.Wait},
		{"/live/show/index.m3u8", "_HLS_msn=9", httploop.Decline},
	} {
		req := httploop.Request{Path: []byte(tc.path), Query: []byte(tc.query)}
		allocs := testing.AllocsPerRun(100, func() {
			a, v := lr.Lookup(req)
			if v != tc.want {
				t.Fatalf("%s?%s: verdict %d, want %d", tc.path, tc.query, v, tc.want)
			}
			if v == httploop.Wait {
				a.Park.On.Unpark(false)
			}
		})
		if allocs != 0 {
			t.Errorf("%s?%s: %v allocations per look-up", tc.path, tc.query, allocs)
		}
	}
	for _, p := range []string{"/live/show/seg9.ts", "/live/other/index.m3u8", "/live/show/seg1.9.m4s"} {
		if _, ok := lookup(r, p, false, false); ok {
			t.Errorf("%s: answered", p)
		}
	}
}

// A GET a loop answers costs no allocation in the whole process, client
// included: look-up, head, write or sendfile, observation.
func TestLoopRequestAllocs(t *testing.T) {
	r, big, small := classicWithMedia(t)
	ls := startLoopServer(t, r, httploop.Config{Loops: 1})
	c, _ := dial(t, ls.addr)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4<<20)
	for _, tc := range []struct {
		path string
		size int
	}{{"/live/show/seg1.ts", len(small)}, {"/live/show/seg0.ts", len(big)}, {"/live/show/index.m3u8", 0}} {
		req := []byte("GET " + tc.path + " HTTP/1.1\r\nHost: fount.test\r\nUser-Agent: test\r\n\r\n")
		// The first answer tells the length of the next ones: only the
		// Date changes, and not its length.
		c.Write(req)
		n, err := io.ReadAtLeast(c, buf, 1)
		for err == nil && !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			var k int
			k, err = c.Read(buf[n:])
			n += k
		}
		if err != nil {
			t.Fatal(err)
		}
		headLen := bytes.Index(buf[:n], []byte("\r\n\r\n")) + 4
		_, v, _ := bytes.Cut(buf[:headLen], []byte("Content-Length: "))
		v, _, _ = bytes.Cut(v, []byte("\r\n"))
		cl, _ := strconv.Atoi(string(v))
		if tc.size != 0 && cl != tc.size {
			t.Fatalf("%s: Content-Length %d", tc.path, cl)
		}
		if _, err := io.ReadFull(c, buf[n:headLen+cl]); err != nil {
			t.Fatal(err)
		}
		total := headLen + cl
		handled := ls.handled.Load()
		var before, after runtime.MemStats
		const runs = 200
		runtime.ReadMemStats(&before)
		for range runs {
			c.Write(req)
			if _, err := io.ReadFull(c, buf[:total]); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		if ls.handled.Load() != handled {
			t.Fatalf("%s: net/http answered", tc.path)
		}
		// A few allocations of the runtime's own (a timer, a goroutine
		// of the collector) may fall in the window; per request, none.
		t.Logf("%s: %d allocations in %d requests", tc.path, after.Mallocs-before.Mallocs, runs)
		if n := after.Mallocs - before.Mallocs; n > runs/20 {
			t.Errorf("%s: %d allocations in %d requests", tc.path, n, runs)
		}
	}
}
