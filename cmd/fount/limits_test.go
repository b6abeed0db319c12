package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// needFDs skips (fails in CI) unless the process may open n descriptors.
// Go raises the soft limit to the hard one at start (since 1.19).
func needFDs(t *testing.T, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur < n && rl.Max >= n {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatal(err)
		}
	}
	if rl.Cur < n {
		msg := "this test needs %d file descriptors; RLIMIT_NOFILE allows %d (raise the hard limit: ulimit -Hn)"
		if os.Getenv("CI") != "" {
			t.Fatalf(msg, n, rl.Cur)
		}
		t.Skipf(msg, n, rl.Cur)
	}
}

// heapInuse is the live heap after a collection; fount runs in this process.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// closedBy reports whether the peer closed c before the deadline.
func closedBy(c net.Conn, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		if err != nil {
			return true
		}
	}
}

// countOpen counts the connections the peer has not closed by deadline
// (each gets at least 10 ms more to show its EOF).
func countOpen(conns []net.Conn, deadline time.Time) int {
	open := 0
	for _, c := range conns {
		if !closedBy(c, later(deadline, time.Now().Add(10*time.Millisecond))) {
			open++
		}
	}
	return open
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func limitMetric(t *testing.T, o *origin, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := value(scrape(t, o), name, labels)
	if !ok {
		t.Fatalf("no %s %v in /metrics", name, labels)
	}
	return v
}

// Strangers opening 5,000 idle TCP connections to the RTMP port, against a
// limit of 1,000, lock out neither a publisher that was live before them
// nor one that connects while they hold every slot; viewers get continuous
// segments; memory stays bounded; never more than the limit are open; and
// every idle connection is closed, by eviction or the handshake timeout.
func TestLimitsIdleConnectionFlood(t *testing.T) {
	lockEndToEnd(t)
	src := source(t)
	requireTool(t, "ffprobe")
	const idle, limit = 5000, 1000
	// Both ends of every connection live in this process.
	needFDs(t, 2*idle+1000)
	o := startClassic(t, func(c *config) { c.MaxConnections = limit; c.PlaylistSize = 10 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	before := o.push(ctx, t, "before", realtime(src), "-c", "copy")
	awaitPlaylist(t, o.url("/live/before/index.m3u8"), 10*time.Second, "the first publisher's first segment",
		func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })
	heap0 := heapInuse()

	start := time.Now()
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range idle {
		c, err := net.Dial("tcp", o.rtmp)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		if i%500 == 499 {
			if n := limitMetric(t, o, "fount_rtmp_connections", nil); n > limit {
				t.Errorf("%v RTMP connections open after %d dials, limit %d", n, i+1, limit)
			}
		}
	}
	floodEnd := time.Now()
	// Every slot but the live publisher's is held by an idle connection
	// now: a new encoder must still get in.
	during := o.push(ctx, t, "during", realtime(src), "-c", "copy")
	heap1 := heapInuse()
	growth := int64(heap1) - int64(heap0)
	t.Logf("%d idle connections in %s; heap in use %.1f MiB → %.1f MiB (%+.1f MiB)", idle, floodEnd.Sub(start).Round(time.Millisecond),
		float64(heap0)/(1<<20), float64(heap1)/(1<<20), float64(growth)/(1<<20))
	// A connection that never sends a byte costs fount a goroutine and a
	// few hundred bytes of heap (go-rtmp's ~90 KiB of buffers come with
	// the first byte), and the client ends here about as much: 5,000 of
	// them stay far below 64 MiB.
	if growth > 64<<20 {
		t.Errorf("heap grew by %.1f MiB with %d idle connections, want < 64 MiB", float64(growth)/(1<<20), idle)
	}
	if n := limitMetric(t, o, "fount_rtmp_connections", nil); n > limit {
		t.Errorf("%v RTMP connections open, limit %d", n, limit)
	}

	// All idle connections are closed: evicted, or by the 5 s handshake
	// timeout counted from their accept, which on a busy machine comes
	// seconds after the dial (countOpen returns once all are closed).
	hs := defaultConfig().HandshakeTimeout
	open := countOpen(conns, floodEnd.Add(hs+10*time.Second))
	closed := time.Now()
	t.Logf("idle connections still open %s after the flood: %d", closed.Sub(floodEnd).Round(time.Millisecond), open)
	if open > 0 {
		t.Errorf("%d idle connections still open after handshake timeout (%s) + 10 s", open, hs)
	}
	// Each was closed once, by one of the limits. If the flood outlasts
	// the handshake timeout (a busy machine, the race detector), early
	// ones are closed by the timeout before any eviction reaches them; but
	// the idle connections hold at most limit-1 slots at once (before
	// publishes throughout), and one the timeout closed held its slot for
	// the whole timeout (less its wait for the server's lock, counted 1 s
	// here), so in the time from the first dial until all were closed the
	// timeout can have closed at most so many: eviction closed the rest.
	evicted := limitMetric(t, o, "fount_limits_total", map[string]string{"limit": "max_connections"})
	timedOut := limitMetric(t, o, "fount_limits_total", map[string]string{"limit": "handshake_timeout"})
	maxTimedOut := int(float64(limit-1) * closed.Sub(start).Seconds() / (hs - time.Second).Seconds())
	t.Logf("flood began %s before all were closed: evicted %v, closed by the handshake timeout %v (at most %d)",
		closed.Sub(start).Round(time.Millisecond), evicted, timedOut, maxTimedOut)
	if evicted+timedOut != idle {
		t.Errorf("evicted %v + timed out %v, want %d in all", evicted, timedOut, idle)
	}
	if evicted < float64(idle-maxTimedOut) {
		t.Errorf("evicted %v, want >= %d (the handshake timeout can have closed at most %d)", evicted, idle-maxTimedOut, maxTimedOut)
	}

	// The flood stalls neither publisher: both end about when their clip
	// does (the checks of their segments below take longer on a busy
	// machine, and are not timed).
	for name, cmd := range map[string]interface{ Wait() error }{"before": before, "during": during} {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("publisher %s: %v", name, err)
		}
	}
	if el := time.Since(start); el > 40*time.Second {
		t.Errorf("the publishers ended %s after the flood began", el.Round(time.Millisecond))
	}
	for _, name := range []string{"before", "during"} {
		url := o.url("/live/" + name + "/index.m3u8")
		p, _ := awaitPlaylist(t, url, 10*time.Second, "the whole push of "+name, func(p *m3u8.MediaPlaylist, _ []byte) bool {
			return totalDuration(p) >= 11.9
		})
		checkContinuity(t, fetchSegments(t, o, "/live/"+name+"/", p), true, true)
	}
}

// Slowloris: 500 clients trickle request headers a byte a second and never
// finish. Viewers' requests keep succeeding with their usual latency, and
// every slow connection is closed by the header timeout.
func TestLimitsSlowloris(t *testing.T) {
	lockEndToEnd(t)
	src := source(t)
	const slow = 500
	needFDs(t, 2*slow+500)
	o := startClassic(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	push := o.push(ctx, t, "show", realtime(src), "-c", "copy")
	url := o.url("/live/show/index.m3u8")
	p, _ := awaitPlaylist(t, url, 10*time.Second, "a segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })
	segURL := o.url("/live/show/" + p.Segments[0].URI)

	conns := make([]net.Conn, 0, slow)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range slow {
		c, err := net.Dial("tcp", o.http)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	req := []byte("GET /live/show/index.m3u8 HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 64))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // one byte a second on every slow connection, for 8 s at most
		defer wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for i := 0; i < 8 && i < len(req); i++ {
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				c.Write(req[i : i+1]) // fails once the server closed it
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// A viewer polls the playlist and a segment meanwhile.
	client := &http.Client{Timeout: 5 * time.Second}
	var lat []time.Duration
	for time.Since(start) < 7*time.Second {
		for _, u := range []string{url, segURL} {
			t0 := time.Now()
			resp, err := client.Get(u)
			if err != nil {
				t.Fatalf("viewer GET %s during the slowloris: %v", u, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("viewer GET %s: %d", u, resp.StatusCode)
			}
			lat = append(lat, time.Since(t0))
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%d viewer requests during the slowloris: median %s, max %s", len(lat), lat[len(lat)/2], lat[len(lat)-1])
	if lat[len(lat)-1] > 500*time.Millisecond {
		t.Errorf("a viewer request took %s during the slowloris", lat[len(lat)-1])
	}

	// ReadHeaderTimeout (5 s) from each connection's start: by 5 s + 2 s
	// none is left.
	open := countOpen(conns, start.Add(httpReadHeaderTimeout+2*time.Second))
	t.Logf("slow connections open %s after they started: %d of %d", time.Since(start).Round(time.Millisecond), open, slow)
	if open != 0 {
		t.Errorf("%d slow connections still open after the header timeout", open)
	}
	if err := push.Wait(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
}

// Beyond --max-publishers a publish is refused with a clear line and a
// count, and the live one carries on.
func TestLimitsMaxPublishers(t *testing.T) {
	src := source(t)
	o := startClassic(t, func(c *config) { c.MaxPublishers = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := o.push(ctx, t, "one", []string{"-re", "-t", "6", "-i", src}, "-c", "copy")
	url := o.url("/live/one/index.m3u8")
	awaitPlaylist(t, url, 10*time.Second, "the first publisher", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })
	second := o.push(ctx, t, "two", []string{"-re", "-t", "6", "-i", src}, "-c", "copy")
	if err := second.Wait(); err == nil {
		t.Fatal("a second publisher was accepted beyond --max-publishers 1")
	}
	if !strings.Contains(o.logs.String(), "rtmp publish refused: the publisher limit is reached (--max-publishers)") {
		t.Error("no clear log line for the refusal")
	}
	if n := limitMetric(t, o, "fount_limits_total", map[string]string{"limit": "max_publishers"}); n != 1 {
		t.Errorf("max_publishers count %v, want 1", n)
	}
	if n := limitMetric(t, o, "fount_publishes_total", map[string]string{"result": "refused"}); n != 1 {
		t.Errorf("refused publishes %v, want 1", n)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first publisher: %v", err)
	}
	awaitPlaylist(t, url, 10*time.Second, "the first publisher's whole push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 5.9
	})
}

// Beyond --max-streams a new name is refused; a held name (waiting for its
// publisher to come back) may publish again.
func TestLimitsMaxStreams(t *testing.T) {
	src := source(t)
	o := startClassic(t, func(c *config) { c.MaxStreams = 1 })
	o.pushWait(t, "held", []string{"-t", "3", "-i", src}, "-c", "copy")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	other := o.push(ctx, t, "other", []string{"-t", "3", "-i", src}, "-c", "copy")
	if err := other.Wait(); err == nil {
		t.Fatal("a new name was accepted beyond --max-streams 1")
	}
	if !strings.Contains(o.logs.String(), "too many streams") {
		t.Error("no clear log line for the refusal")
	}
	if n := limitMetric(t, o, "fount_limits_total", map[string]string{"limit": "max_streams"}); n != 1 {
		t.Errorf("max_streams count %v, want 1", n)
	}
	o.pushWait(t, "held", []string{"-t", "3", "-i", src}, "-c", "copy")
	if n := limitMetric(t, o, "fount_publishes_total", map[string]string{"result": "accepted"}); n != 2 {
		t.Errorf("accepted publishes %v, want 2", n)
	}
}

// A connection that completes the RTMP handshake and then sends nothing is
// closed after --handshake-timeout, not the longer --rtmp-idle-timeout.
func TestLimitsHandshakeTimeout(t *testing.T) {
	o := startClassic(t, func(c *config) { c.HandshakeTimeout = time.Second; c.RTMPIdleTimeout = 10 * time.Second })
	c, err := net.Dial("tcp", o.rtmp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c0c1 := make([]byte, 1+1536)
	c0c1[0] = 3
	if _, err := c.Write(c0c1); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1+2*1536)); err != nil {
		t.Fatalf("S0 S1 S2: %v", err)
	}
	if _, err := c.Write(make([]byte, 1536)); err != nil {
		t.Fatal(err)
	}
	if !closedBy(c, start.Add(5*time.Second)) {
		t.Fatal("still open after 5 s")
	}
	el := time.Since(start)
	t.Logf("closed %s after connecting", el.Round(time.Millisecond))
	if el < 900*time.Millisecond || el > 3*time.Second {
		t.Errorf("closed after %s, want about the 1 s handshake timeout", el)
	}
	if n := limitMetric(t, o, "fount_limits_total", map[string]string{"limit": "handshake_timeout"}); n != 1 {
		t.Errorf("handshake_timeout count %v, want 1", n)
	}
	if n := limitMetric(t, o, "fount_errors_total", map[string]string{"kind": "rtmp_timeout"}); n != 0 {
		t.Errorf("idle timeouts %v, want 0", n)
	}
}
