//go:build linux

package playlist

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/storage"
)

// An LL-HLS segment and its parts share one memory file: the parts at
// partsReserve, the bytes before them (the styp) just below, and the
// segment is served from there with no second copy. Plain, HEAD, range and
// conditional requests all answer from the file.
func TestMediaSharesOneMemoryFile(t *testing.T) {
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/mf")
	s.Init([]byte("ftypmoov"))
	styp := []byte("stypmsdh-24-bytes-prefix")
	seg := append([]byte{}, styp...)
	for i := range 5 {
		p := bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
		seg = append(seg, p...)
		if err := s.Part(Part{Data: p, Duration: 200 * time.Millisecond, Independent: i == 0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Segment(Segment{Data: seg, Duration: time.Second, ProgramDateTime: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	so := objectOf(t, s, "seg0.m4s")
	if so.file == nil || so.off != partsReserve-int64(len(styp)) || so.size != int64(len(seg)) {
		t.Fatalf("segment object: file %v off %d size %d", so.file != nil, so.off, so.size)
	}
	for i := range 5 {
		if po := objectOf(t, s, s.partName(0, i)); po.file != so.file {
			t.Fatalf("part %d is not in the segment's file", i)
		}
	}
	if st := r.Stats(); st.MediaFiles != 1 || st.MediaFileBytes != int64(len(seg)) {
		t.Fatalf("stats: %d files, %d bytes; want 1, %d", st.MediaFiles, st.MediaFileBytes, len(seg))
	}
	h := r.Handler()
	if code, hd, b := bodyOf(t, h, "/live/mf/seg0.m4s"); code != 200 || !bytes.Equal(b, seg) || hd.Get("Content-Length") != "5034" {
		t.Fatalf("segment: %d, %d bytes (Content-Length %s), equal %v", code, len(b), hd.Get("Content-Length"), bytes.Equal(b, seg))
	}
	if code, _, b := bodyOf(t, h, "/live/mf/seg0.2.m4s"); code != 200 || !bytes.Equal(b, bytes.Repeat([]byte{'c'}, 1002)) {
		t.Fatalf("part 2: %d %q", code, b)
	}
	if code, hd, b := bodyOf(t, h, "/live/mf/seg0.m4s", "Range", "bytes=20-29"); code != 206 || string(b) != "efixaaaaaa" || hd.Get("Content-Range") != "bytes 20-29/5034" {
		t.Fatalf("range: %d %q %s", code, b, hd.Get("Content-Range"))
	}
	if code, _, _ := bodyOf(t, h, "/live/mf/seg0.m4s", "If-None-Match", so.etag); code != 304 {
		t.Fatalf("If-None-Match: %d, want 304", code)
	}
	resp := get(t, h, "HEAD", "/live/mf/seg0.1.m4s")
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || len(b) != 0 || resp.Header.Get("Content-Length") != "1001" {
		t.Fatalf("HEAD: %d, %d body bytes, Content-Length %s", resp.StatusCode, len(b), resp.Header.Get("Content-Length"))
	}
}

// A segment that is not its parts behind a short prefix gets a file of its
// own; the parts keep theirs, and both go when the segment does.
func TestMediaSeparateFileWhenPartsDiffer(t *testing.T) {
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/mf")
	addParts(t, s, 2)
	seg := []byte("not the parts at all")
	if err := s.Segment(Segment{Data: seg, Duration: 400 * time.Millisecond, ProgramDateTime: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	so, po := objectOf(t, s, "seg0.m4s"), objectOf(t, s, "seg0.1.m4s")
	if so.file == nil || po.file == nil || so.file == po.file || so.off != 0 {
		t.Fatal("want the segment in a file of its own at offset 0")
	}
	h := r.Handler()
	if _, _, b := bodyOf(t, h, "/live/mf/seg0.m4s"); !bytes.Equal(b, seg) {
		t.Fatalf("segment: %q", b)
	}
	if _, _, b := bodyOf(t, h, "/live/mf/seg0.1.m4s"); string(b) != "open part" {
		t.Fatalf("part: %q", b)
	}
	if st := r.Stats(); st.MediaFiles != 2 {
		t.Fatalf("%d files, want 2", st.MediaFiles)
	}
	// Slide it out of the window and past the grace.
	for range 7 {
		addLLSegment(t, s, clk, 2)
	}
	clk.Add(time.Minute)
	r.Sweep()
	if code, _, _ := bodyOf(t, h, "/live/mf/seg0.m4s"); code != 404 {
		t.Fatalf("after the grace: %d", code)
	}
	if st := r.Stats(); st.MediaFiles != 6 {
		t.Fatalf("%d files after the sweep, want the window's 6", st.MediaFiles)
	}
}

// A request sending from a file keeps it open past its deletion; the file
// closes, and its bytes are uncounted, when that request is done.
func TestMemoryFileOutlivesDeletionWhileSending(t *testing.T) {
	r, clk := newTestRegistry(t, storage.NewMemory())
	s, _ := r.Publish("live/mf")
	addSegments(t, s, clk, 1, 2*time.Second)
	o := objectOf(t, s, "seg0.ts")
	if !o.file.acquire() {
		t.Fatal("acquire failed on a live file")
	}
	addSegments(t, s, clk, 4, 2*time.Second) // window 3: seg0 retired
	clk.Add(time.Minute)
	r.Sweep()
	if _, ok := s.byName.Load("seg0.ts"); ok {
		t.Fatal("seg0 still listed for serving after the grace")
	}
	b, err := io.ReadAll(&section{m: o.file, off: o.off, n: o.size})
	if err != nil || !strings.HasPrefix(string(b), "segment bytes 0") {
		t.Fatalf("reading a file held by a request: %q, %v", b, err)
	}
	before := r.Stats().MediaFiles
	o.file.Release()
	if after := r.Stats().MediaFiles; after != before-1 {
		t.Fatalf("files %d after the last request, want %d", after, before-1)
	}
	if o.file.acquire() {
		t.Fatal("acquire succeeded on a closed file")
	}
	if _, err := o.file.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read from the closed file: %v", err)
	}
}

// The memory store gets playlists, not segments: the registry holds them.
func TestMemoryStoreHoldsNoSegmentCopy(t *testing.T) {
	store := storage.NewMemory()
	r, clk := newTestRegistry(t, store)
	s, _ := r.Publish("live/mf")
	addSegments(t, s, clk, 2, 2*time.Second)
	keys, _ := store.Keys(context.Background(), "live/mf/")
	if len(keys) != 1 || keys[0] != "live/mf/index.m3u8" {
		t.Fatalf("memory store keys %v, want the playlist only", keys)
	}
	if code, _, b := bodyOf(t, r.Handler(), "/live/mf/seg1.ts"); code != 200 || !strings.HasPrefix(string(b), "segment bytes 1") {
		t.Fatalf("seg1: %d %q", code, b)
	}
}

// Abandoned parts (the publisher left mid-segment) stay fetchable for the
// grace, then go with their file.
func TestAbandonedPartsRetired(t *testing.T) {
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/mf")
	addParts(t, s, 3)
	s.Unpublish()
	h := r.Handler()
	if code, _, b := bodyOf(t, h, "/live/mf/seg0.2.m4s"); code != 200 || string(b) != "open part" {
		t.Fatalf("abandoned part within the grace: %d %q", code, b)
	}
	clk.Add(time.Minute)
	r.Sweep()
	if code, _, _ := bodyOf(t, h, "/live/mf/seg0.2.m4s"); code != 404 {
		t.Fatalf("abandoned part after the grace: %d", code)
	}
	if st := r.Stats(); st.MediaFiles != 0 || st.MediaFileBytes != 0 {
		t.Fatalf("%d files, %d bytes left", st.MediaFiles, st.MediaFileBytes)
	}
}

// Small parts are written from the file's mapping, those past it (the
// segment outgrew twice the last one) through a buffer, big ones with
// sendfile: all give the same bytes.
func TestPartsPastTheMapping(t *testing.T) {
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/mf")
	var seg []byte
	var parts [][]byte
	for i := range 8 {
		size := 200 << 10 // 8 × 200 KiB: the last ones are past the 1 MiB mapped
		if i == 7 {
			size = 300 << 10 // and one goes by sendfile
		}
		p := make([]byte, size)
		rand.Read(p)
		parts = append(parts, p)
		seg = append(seg, p...)
		if err := s.Part(Part{Data: p, Duration: 200 * time.Millisecond, Independent: i == 0}); err != nil {
			t.Fatal(err)
		}
	}
	f := objectOf(t, s, "seg0.0.m4s").file
	if f.view(partsReserve, 200<<10) == nil || f.view(partsReserve+6*(200<<10), 200<<10) != nil {
		t.Fatalf("mapping of %d bytes: want the first part in it and the seventh past it", len(f.mapped))
	}
	h := r.Handler()
	for i, p := range parts {
		if code, _, b := bodyOf(t, h, fmt.Sprintf("/live/mf/seg0.%d.m4s", i)); code != 200 || !bytes.Equal(b, p) {
			t.Fatalf("part %d: %d, %d bytes, equal %v", i, code, len(b), bytes.Equal(b, p))
		}
	}
	if err := s.Segment(Segment{Data: seg, Duration: 1600 * time.Millisecond, ProgramDateTime: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if code, _, b := bodyOf(t, h, "/live/mf/seg0.m4s"); code != 200 || !bytes.Equal(b, seg) {
		t.Fatalf("segment: %d, %d bytes", code, len(b))
	}
}

// HeapMedia keeps the old path: bytes on the heap, same answers.
func TestHeapMedia(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	r := NewRegistry(Config{TargetDuration: 2 * time.Second, WindowSize: 3, HeapMedia: true, Now: clk.Now})
	s, _ := r.Publish("live/heap")
	addSegments(t, s, clk, 1, 2*time.Second)
	if o := objectOf(t, s, "seg0.ts"); o.file != nil || o.data == nil {
		t.Fatal("HeapMedia: segment is in a file")
	}
	if code, _, b := bodyOf(t, r.Handler(), "/live/heap/seg0.ts", "Range", "bytes=0-6"); code != 206 || string(b) != "segment" {
		t.Fatalf("heap range: %d %q", code, b)
	}
	if st := r.Stats(); st.MediaFiles != 0 {
		t.Fatalf("%d files with HeapMedia", st.MediaFiles)
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func testMemFile(t *testing.T, data []byte) *memFile {
	t.Helper()
	m, err := newMemFile("test", new(totals), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.drop)
	if err := m.writeAt(data, 0); err != nil {
		t.Fatal(err)
	}
	return m
}

// sendfile moves a section bigger than the socket buffers, from its own
// offset, to a slow reader: the sender waits on EAGAIN and resumes.
func TestSendfileSection(t *testing.T) {
	data := make([]byte, 8<<20)
	rand.Read(data)
	m := testMemFile(t, data)
	srv, cli := tcpPair(t)
	sc := &sendfileConn{TCPConn: srv}
	var err error
	if sc.raw, err = srv.SyscallConn(); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(cli, int64(len(data)-12345)))
		got <- b
	}()
	n, err := sc.ReadFrom(&section{m: m, off: 12345, n: int64(len(data) - 12345)})
	if err != nil || n != int64(len(data)-12345) {
		t.Fatalf("sent %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, data[12345:]) {
		t.Fatalf("received %d bytes, not the section", len(b))
	}
}

// A viewer that stops reading cannot hold a sender past its write deadline.
func TestSendfileHonoursWriteDeadline(t *testing.T) {
	m := testMemFile(t, make([]byte, 32<<20))
	srv, _ := tcpPair(t)
	raw, err := srv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	srv.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := (&section{m: m, n: 32 << 20}).sendTo(raw)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n >= 32<<20 {
		t.Fatalf("sent %d bytes to a stalled reader, err %v; want a deadline error", n, err)
	}
}

// Behind Listener, a real HTTP server sends media with sendfile.
func TestListenerServesMediaOverHTTP(t *testing.T) {
	r, clk := newTestRegistry(t, storage.NewMemory())
	s, _ := r.Publish("live/mf")
	big := make([]byte, 3<<20)
	rand.Read(big)
	if err := s.Segment(Segment{Data: big, Duration: 2 * time.Second, ProgramDateTime: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := Listener(ln)
	conns := make(chan net.Conn, 10)
	srv := &http.Server{Handler: r.Handler(), ConnState: func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns <- c
		}
	}}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(wl) }()
	defer func() { srv.Close(); <-done }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	for range 3 { // keep-alive: the same connection serves them all
		resp, err := cl.Get("http://" + ln.Addr().String() + "/live/mf/seg0.ts")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(b, big) {
			t.Fatalf("GET over sendfile: %d, %d bytes, equal %v", resp.StatusCode, len(b), bytes.Equal(b, big))
		}
	}
	if len(conns) != 1 {
		t.Fatalf("%d connections for 3 keep-alive requests", len(conns))
	}
	if c := <-conns; func() bool { _, ok := c.(*sendfileConn); return !ok }() {
		t.Fatalf("the server's connection is a %T, not a *sendfileConn", c)
	}
}

// BenchmarkServeSegmentLoopback fetches a segment (1 MiB: 3 s at 2.75
// Mbit/s) or a part-sized object (64 KiB: 200 ms) over loopback HTTP
// keep-alive from a server behind Listener, with the bytes in a memory file
// (sent with sendfile) or on the heap (written from it). The client's reads
// are in the figure too, the same for both.
func BenchmarkServeSegmentLoopback(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, heap := range []bool{true, false} {
			name := fmt.Sprintf("%dKiB/memfile", size>>10)
			if heap {
				name = fmt.Sprintf("%dKiB/heap", size>>10)
			}
			b.Run(name+"/net-http", func(b *testing.B) { benchLoopback(b, size, heap, false) })
			b.Run(name+"/loop", func(b *testing.B) { benchLoopback(b, size, heap, true) })
		}
	}
}

// benchLoopback serves with net/http alone, or with an event loop in front
// of it (httploop.Server).
func benchLoopback(b *testing.B, size int, heap, loop bool) {
	r := NewRegistry(Config{WindowSize: 6, HeapMedia: heap})
	s, _ := r.Publish("live/b")
	s.Segment(Segment{Data: make([]byte, size), Duration: 2 * time.Second, ProgramDateTime: time.Now()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: r.Handler()}
	done := make(chan struct{})
	if loop {
		ls := httploop.NewServer(httploop.Config{Source: r, Viewer: r.Handler(), Fallback: &http.Server{}, WrapConn: WrapConn, Loops: 1})
		go func() { defer close(done); ls.Serve(ln) }()
		defer func() { ls.Close(); <-done }()
	} else {
		go func() { defer close(done); srv.Serve(Listener(ln)) }()
		defer func() { srv.Close(); <-done }()
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String() + "/live/b/seg0.ts"
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	// CPU time (user+system, client and server) is what the origin pays
	// per response; wall time on loopback mostly measures wake-ups.
	cpu0 := cpuTime(b)
	for range b.N {
		resp, err := cl.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
		resp.Body.Close()
		if n != int64(size) {
			b.Fatalf("%d bytes", n)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A segment whose parts' memory file fails when the segment is finished is
// refused, never served short: its parts are retired as if abandoned.
func TestSegmentRefusedWhenItsFileFails(t *testing.T) {
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/mf")
	addParts(t, s, 3)
	s.open.file.f.Close() // neither the styp nor the parts can be written or read now
	err := s.Segment(Segment{Data: []byte("styp"), PartsFollow: true, Duration: 600 * time.Millisecond, ProgramDateTime: clk.Now()})
	if err == nil {
		t.Fatal("Segment succeeded with its parts' file closed")
	}
	if code, _, _ := bodyOf(t, r.Handler(), "/live/mf/seg0.m4s"); code != 404 {
		t.Fatalf("seg0.m4s: %d, want 404", code)
	}
	if st := r.Stats(); st.MediaFileErrors == 0 {
		t.Fatal("the failure was not counted")
	}
	// The next segment goes on with a fresh file.
	addLLSegment(t, s, clk, 2)
	if code, _, _ := bodyOf(t, r.Handler(), "/live/mf/seg0.m4s"); code != 200 {
		t.Fatalf("the next segment: %d", code)
	}
}
