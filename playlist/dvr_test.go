package playlist

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/storage"
)

func newDVRRegistry(t testing.TB, store storage.Store, dvr time.Duration, partTarget time.Duration) (*Registry, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	r := NewRegistry(Config{
		Store: store, TargetDuration: 2 * time.Second, WindowSize: 3,
		ReconnectWindow: 30 * time.Second, DeleteGrace: 10 * time.Second, RemoveAfter: 60 * time.Second,
		DVRWindow: dvr, PartTarget: partTarget, FMP4: partTarget > 0, Now: clk.Now,
	})
	return r, clk
}

// inMemory reports whether the stream holds name in memory (the event
// loops' fast path would answer it).
func inMemory(r *Registry, path string) bool {
	_, ok := lookup(r, path, false, false)
	return ok
}

// lookup is Lookup of a GET or HEAD without a query: whether it is served.
func lookup(r *Registry, path string, gzip, head bool) (httploop.Answer, bool) {
	a, v := r.Lookup(httploop.Request{Path: []byte(path), Gzip: gzip, Head: head})
	return a, v == httploop.Serve
}

// TestDVRWindows: a DVR window lists every segment within it, keeps only
// the last --playlist-size segments (plus the grace) in memory, serves the
// older ones from storage with their bytes, and deletes a segment from
// storage only a grace after it leaves the DVR window.
func TestDVRWindows(t *testing.T) {
	store := durableStore()
	r, clk := newDVRRegistry(t, store, 30*time.Second, 0)
	h := r.Handler()
	s, err := r.Publish("live/dvr")
	if err != nil {
		t.Fatal(err)
	}
	const d = 2 * time.Second
	for i := 0; i < 40; i++ {
		addSegments(t, s, clk, 1, d)
		r.Sweep()
	}
	code, b := body(t, h, "/live/dvr/index.m3u8")
	if code != 200 {
		t.Fatal(code, b)
	}
	p := parseMedia(t, []byte(b))
	// 40 segments 0..39; 30 s of 2 s segments: the last 15.
	if p.SeqNo != 25 || p.Count() != 15 {
		t.Fatalf("media sequence %d, %d listed; want 25 and 15\n%s", p.SeqNo, p.Count(), b)
	}
	if n := strings.Count(b, "#EXT-X-PROGRAM-DATE-TIME:"); n != 15 {
		t.Errorf("%d EXT-X-PROGRAM-DATE-TIME for 15 segments", n)
	}
	// Memory: the last 3 and those that left the memory window less
	// than the 10 s grace ago (5 at 2 s a segment, and a sweep late).
	var mem []int
	for i := 25; i < 40; i++ {
		if inMemory(r, fmt.Sprintf("/live/dvr/seg%d.ts", i)) {
			mem = append(mem, i)
		}
	}
	if len(mem) == 0 || len(mem) > 3+6 || mem[len(mem)-1] != 39 || mem[0] < 30 {
		t.Errorf("segments in memory %v; want the last 3 plus at most the grace's", mem)
	}
	// Every listed one is served, the old ones from storage, same bytes.
	for i := 25; i < 40; i++ {
		key := fmt.Sprintf("live/dvr/seg%d.ts", i)
		obj, err := store.Get(context.Background(), key)
		if err != nil {
			t.Fatalf("%s not in storage: %v", key, err)
		}
		code, got := body(t, h, "/"+key)
		if code != 200 || got != string(obj.Data) {
			t.Errorf("%s: %d, %d bytes; want the stored %d", key, code, len(got), len(obj.Data))
		}
	}
	// Left the DVR window a grace ago: gone from storage; more recently: kept.
	for i := 0; i < 25; i++ {
		_, err := store.Get(context.Background(), fmt.Sprintf("live/dvr/seg%d.ts", i))
		if gone := errors.Is(err, storage.ErrNotFound); gone != (i <= 20) {
			t.Errorf("seg%d: err %v", i, err)
		}
	}
	if code, _ := body(t, h, "/live/dvr/seg5.ts"); code != 404 {
		t.Errorf("a segment deleted after the DVR window: %d", code)
	}
}

// TestDVROffListsPlaylistSize: without a DVR window nothing changes.
func TestDVROffListsPlaylistSize(t *testing.T) {
	store := durableStore()
	r, clk := newDVRRegistry(t, store, 0, 0)
	s, _ := r.Publish("live/plain")
	for i := 0; i < 20; i++ {
		addSegments(t, s, clk, 1, 2*time.Second)
		r.Sweep()
	}
	_, b := body(t, r.Handler(), "/live/plain/index.m3u8")
	if p := parseMedia(t, []byte(b)); p.SeqNo != 17 || p.Count() != 3 {
		t.Fatalf("media sequence %d, %d listed; want 17 and 3", p.SeqNo, p.Count())
	}
	if len(s.evicted) != 0 {
		t.Errorf("%d evicted without DVR", len(s.evicted))
	}
}

// TestDVRShortSegmentsKeepPlaylistSize: a DVR window shorter than
// --playlist-size segments lists --playlist-size.
func TestDVRShortWindowKeepsPlaylistSize(t *testing.T) {
	r, clk := newDVRRegistry(t, durableStore(), 3*time.Second, 0)
	s, _ := r.Publish("live/short")
	addSegments(t, s, clk, 10, 2*time.Second)
	_, b := body(t, r.Handler(), "/live/short/index.m3u8")
	if p := parseMedia(t, []byte(b)); p.Count() != 3 {
		t.Fatalf("%d listed, want 3", p.Count())
	}
}

// TestDVRRenditions: every rendition of a group lists the DVR window, in step.
func TestDVRRenditions(t *testing.T) {
	r, clk := newDVRRegistry(t, durableStore(), 20*time.Second, 0)
	h := r.Handler()
	const d = 2 * time.Second
	var rs []*Stream
	for _, name := range []string{"720p", "360p"} {
		s, err := r.PublishRendition("live/abr", name)
		if err != nil {
			t.Fatal(err)
		}
		s.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", AudioCodecs: "mp4a.40.2", Width: 640, Height: 360, FrameRate: 30, VideoRange: "SDR"})
		rs = append(rs, s)
	}
	for i := 0; i < 30; i++ {
		for _, s := range rs {
			addAt(t, s, clk, time.Duration(i)*d, d, 1000)
		}
		clk.Add(d)
		r.Sweep()
	}
	for _, name := range []string{"720p", "360p"} {
		code, b := body(t, h, "/live/abr/"+name+"/index.m3u8")
		if code != 200 {
			t.Fatal(code, b)
		}
		if p := parseMedia(t, []byte(b)); p.SeqNo != 20 || p.Count() != 10 {
			t.Errorf("%s: media sequence %d, %d listed; want 20 and 10", name, p.SeqNo, p.Count())
		}
		if code, _ := body(t, h, "/live/abr/"+name+"/seg20.ts"); code != 200 {
			t.Errorf("%s: the oldest listed segment: %d", name, code)
		}
		if inMemory(r, "/live/abr/"+name+"/seg20.ts") {
			t.Errorf("%s: seg20 still in memory", name)
		}
	}
}

// feedDVR hands n segments of 2 s to a new LL-HLS stream (fMP4), with
// size bytes each; the last withParts of them come in parts of 500 ms (all
// of them if withParts is n), as an encoder's would.
func feedDVR(t testing.TB, r *Registry, clk *fakeClock, path string, n, withParts, size int) *Stream {
	s, err := r.Publish(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Init([]byte("init")); err != nil {
		t.Fatal(err)
	}
	seg := make([]byte, size)
	const parts = 4
	for i := 0; i < n; i++ {
		for j := 0; j < parts && i >= n-withParts; j++ {
			if err := s.Part(Part{Data: seg[j*size/parts : (j+1)*size/parts], Duration: 500 * time.Millisecond, Independent: j == 0}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Segment(Segment{Data: seg, Duration: 2 * time.Second, ProgramDateTime: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Second)
		if i%5 == 0 {
			r.Sweep()
		}
	}
	r.Sweep()
	return s
}

func gzipLen(b []byte) int {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Len()
}

// TestDVRDeltaUpdates: with a 2 h window (3,600 segments of 2 s) an LL-HLS
// delta update (_HLS_skip=YES) lists only what is within CAN-SKIP-UNTIL of
// the live edge: a reload stays small however long the window.
func TestDVRDeltaUpdates(t *testing.T) {
	r, clk := newDVRRegistry(t, durableStore(), 2*time.Hour, 500*time.Millisecond)
	feedDVR(t, r, clk, "live/long", 3600, 10, 1000)
	h := r.Handler()
	_, full := body(t, h, "/live/long/index.m3u8")
	_, delta := body(t, h, "/live/long/index.m3u8?_HLS_skip=YES")
	if n := strings.Count(full, "#EXTINF:"); n != 3600 {
		t.Fatalf("%d segments listed, want 3600", n)
	}
	if !strings.Contains(full, "CAN-SKIP-UNTIL=12.000") {
		t.Fatalf("no CAN-SKIP-UNTIL of 6 target durations:\n%.400s", full)
	}
	if !strings.Contains(delta, "#EXT-X-SKIP:SKIPPED-SEGMENTS=3594\n") {
		t.Fatalf("delta update does not skip all but 6 segments:\n%s", delta)
	}
	if n := strings.Count(delta, "#EXTINF:"); n != 6 {
		t.Errorf("delta update lists %d segments, want 6", n)
	}
	if len(delta)*50 > len(full) {
		t.Errorf("delta update %d bytes against %d in full", len(delta), len(full))
	}
	t.Logf("2 h DVR reload: full %d bytes (gzip %d), delta %d bytes (gzip %d)", len(full), gzipLen([]byte(full)), len(delta), gzipLen([]byte(delta)))
}

// heapAfter feeds 3,600 segments of 2 s (100 kB, LL-HLS) into a
// registry with a directory store and returns the heap in use and the
// bytes in memory files after (the last 600 segments came in parts).
func heapAfter(t testing.TB, dvr time.Duration) (heap uint64, files int64) {
	r, clk := newDVRRegistry(t, dirStore(t), dvr, 500*time.Millisecond)
	s := feedDVR(t, r, clk, "live/mem", 3600, 600, 100_000)
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(s)
	runtime.KeepAlive(r)
	return ms.HeapInuse, r.Stats().MediaFileBytes
}

// TestDVRMemoryBounded: a 2 h window's memory (heap and memory files) stays
// near that of no window: the media of the DVR window is in storage.
func TestDVRMemoryBounded(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("feeds 2 × 360 MB to a directory; its figures mean nothing under the race detector")
	}
	heap0, files0 := heapAfter(t, 0)
	heap2, files2 := heapAfter(t, 2*time.Hour)
	t.Logf("heap in use: %d kB without DVR, %d kB with a 2 h window; memory files %d kB and %d kB", heap0>>10, heap2>>10, files0>>10, files2>>10)
	if files2 > 2*files0+1<<20 {
		t.Errorf("memory files grow with the DVR window: %d against %d", files2, files0)
	}
	// What a listed segment costs: its entry and name, a few hundred bytes,
	// and the rendered playlists (~0.5 MB for 3,600 segments, twice).
	if heap2 > heap0+8<<20 {
		t.Errorf("heap grows with the DVR window: %d kB against %d kB", heap2>>10, heap0>>10)
	}
}

// BenchmarkDVRRender: the cost of re-rendering a 2 h DVR playlist (done on
// every segment and, with LL-HLS, every part: full and delta).
func BenchmarkDVRRender(b *testing.B) {
	r, clk := newDVRRegistry(b, durableStore(), 2*time.Hour, 500*time.Millisecond)
	s := feedDVR(b, r, clk, "live/bench", 3600, 10, 1000)
	b.ReportAllocs()
	for b.Loop() {
		s.mu.Lock()
		rd := s.renderLocked()
		s.mu.Unlock()
		if len(rd.body) == 0 {
			b.Fatal("empty")
		}
	}
	b.ReportMetric(float64(len(s.pl.Load().body)), "bytes/playlist")
}

func dirStore(t testing.TB) storage.Store {
	d, err := storage.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDVRRestore: a process started on the storage of one that had a DVR
// window lists the stored window, goes on numbering, slides it by the DVR
// window again and deletes what leaves it.
func TestDVRRestore(t *testing.T) {
	store := durableStore()
	r1, clk := newDVRRegistry(t, store, 30*time.Second, 0)
	s1, _ := r1.Publish("live/again")
	addSegments(t, s1, clk, 20, 2*time.Second) // 0..19, 5..19 listed
	s1.Unpublish()

	r2 := NewRegistry(Config{Store: store, TargetDuration: 2 * time.Second, WindowSize: 3, DeleteGrace: 10 * time.Second, DVRWindow: 30 * time.Second, Now: clk.Now})
	s2, err := r2.Publish("live/again")
	if err != nil {
		t.Fatal(err)
	}
	h := r2.Handler()
	_, b := body(t, h, "/live/again/index.m3u8")
	if p := parseMedia(t, []byte(b)); p.SeqNo != 5 || p.Count() != 15 {
		t.Fatalf("restored: media sequence %d, %d listed; want 5 and 15\n%s", p.SeqNo, p.Count(), b)
	}
	if code, _ := body(t, h, "/live/again/seg6.ts"); code != 200 {
		t.Errorf("a restored segment, from storage: %d", code)
	}
	for i := 0; i < 10; i++ {
		addSegments(t, s2, clk, 1, 2*time.Second)
		r2.Sweep()
	}
	_, b = body(t, h, "/live/again/index.m3u8")
	p := parseMedia(t, []byte(b))
	if p.SeqNo != 15 || p.Count() != 15 || !strings.Contains(b, "#EXT-X-DISCONTINUITY\n") {
		t.Fatalf("after 10 more: media sequence %d, %d listed; want 15 and 15, with the restart's discontinuity\n%s", p.SeqNo, p.Count(), b)
	}
	if _, err := store.Get(context.Background(), "live/again/seg6.ts"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a restored segment that left the DVR window a grace ago: %v", err)
	}
	if code, _ := body(t, h, "/live/again/seg15.ts"); code != 200 {
		t.Errorf("the oldest listed: %d", code)
	}
}

// TestDVRDroppedWhileServing: a request that finds a segment just as its
// memory goes is answered from storage, not 404.
func TestDVRDroppedWhileServing(t *testing.T) {
	store := durableStore()
	r, clk := newDVRRegistry(t, store, 30*time.Second, 0)
	s, _ := r.Publish("live/race")
	addSegments(t, s, clk, 5, 2*time.Second)
	v, ok := s.byName.Load("seg1.ts")
	if !ok {
		t.Fatal("seg1.ts not in memory")
	}
	o := v.(*object)
	if o.file == nil {
		t.Skip("media on the heap here: nothing is dropped under a request")
	}
	o.file.drop() // as sweep does, between a look-up and the answer
	want, _ := store.Get(context.Background(), "live/race/seg1.ts")
	if code, got := body(t, r.Handler(), "/live/race/seg1.ts"); code != 200 || got != string(want.Data) {
		t.Errorf("%d, %q; want 200 and the stored bytes", code, got)
	}
}
