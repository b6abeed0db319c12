package playlist

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/storage"
)

func newLLRegistry(t testing.TB) (*Registry, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	r := NewRegistry(Config{
		Store: storage.NewMemory(), TargetDuration: 2 * time.Second, WindowSize: 6,
		FMP4: true, PartTarget: 200 * time.Millisecond, BlockTimeout: 300 * time.Millisecond,
		Now: clk.Now,
	})
	return r, clk
}

// addLLSegment hands over n parts of 200 ms (the first independent) and
// then the segment made of them.
func addLLSegment(t testing.TB, s *Stream, clk *fakeClock, n int) {
	t.Helper()
	var all []byte
	for i := 0; i < n; i++ {
		data := []byte(fmt.Sprintf("part %d of segment at %s;", i, clk.Now()))
		all = append(all, data...)
		if err := s.Part(Part{Data: data, Duration: 200 * time.Millisecond, Independent: i == 0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Segment(Segment{Data: all, Duration: time.Duration(n) * 200 * time.Millisecond, ProgramDateTime: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Duration(n) * 200 * time.Millisecond)
}

func addParts(t testing.TB, s *Stream, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := s.Part(Part{Data: []byte("open part"), Duration: 200 * time.Millisecond, Independent: i == 0}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLLPartHoldBack: PART-HOLD-BACK is three part targets unless set,
// and never under two (rfc8216bis: MUST be at least twice).
func TestLLPartHoldBack(t *testing.T) {
	for _, tc := range []struct {
		set  time.Duration
		want string
	}{{0, "0.600"}, {400 * time.Millisecond, "0.400"}, {100 * time.Millisecond, "0.400"}, {time.Second, "1.000"}} {
		r := NewRegistry(Config{Store: storage.NewMemory(), TargetDuration: 2 * time.Second, WindowSize: 6,
			FMP4: true, PartTarget: 200 * time.Millisecond, PartHoldBack: tc.set})
		s, _ := r.Publish("live/phb")
		s.Init([]byte("ftypmoov"))
		addParts(t, s, 1)
		body := string(playlistBody(t, r.Handler(), "/live/phb/index.m3u8"))
		if want := "PART-HOLD-BACK=" + tc.want + "\n"; !strings.Contains(body, want) {
			t.Errorf("PartHoldBack %s: want %q in\n%s", tc.set, want, body)
		}
	}
}

func TestLLRender(t *testing.T) {
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/ll")
	s.Init([]byte("ftypmoov"))
	for i := 0; i < 4; i++ {
		addLLSegment(t, s, clk, 10)
	}
	addParts(t, s, 3)
	body := string(playlistBody(t, r.Handler(), "/live/ll/index.m3u8"))
	for _, want := range []string{
		"#EXT-X-VERSION:9\n",
		"#EXT-X-TARGETDURATION:2\n",
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=0.600\n",
		"#EXT-X-PART-INF:PART-TARGET=0.200\n",
		"#EXT-X-MAP:URI=\"init0.mp4\"\n",
		"#EXT-X-PART:DURATION=0.20000,URI=\"seg3.0.m4s\",INDEPENDENT=YES\n",
		"#EXT-X-PART:DURATION=0.20000,URI=\"seg3.1.m4s\"\n",
		"#EXTINF:2.000,\nseg3.m4s\n",
		"#EXT-X-PART:DURATION=0.20000,URI=\"seg4.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg4.3.m4s\"\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in\n%s", want, body)
		}
	}
	// Parts are listed only for the segments within 3 target durations (6 s)
	// of the live edge: seg0 loses its parts.
	if strings.Contains(body, "seg0.0.m4s") || !strings.Contains(body, "seg1.0.m4s") {
		t.Errorf("parts listed too far from the live edge:\n%s", body)
	}
	if n := strings.Count(body, "#EXT-X-PROGRAM-DATE-TIME:"); n != 4 {
		t.Errorf("%d PROGRAM-DATE-TIMEs for 4 segments", n)
	}
	if strings.Count(body, "#EXT-X-MAP") != 1 {
		t.Errorf("EXT-X-MAP repeated:\n%s", body)
	}
	// Parts and segments are served, and a segment is its parts' bytes.
	h := r.Handler()
	var parts []byte
	for i := 0; i < 10; i++ {
		resp := get(t, h, "GET", fmt.Sprintf("/live/ll/seg2.%d.m4s", i))
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" {
			t.Fatalf("part %d: %d %s", i, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		parts = append(parts, b...)
	}
	resp := get(t, h, "GET", "/live/ll/seg2.m4s")
	seg, _ := io.ReadAll(resp.Body)
	if !bytes.Equal(seg, parts) {
		t.Error("segment is not its parts concatenated")
	}
	if resp := get(t, h, "GET", "/live/ll/init0.mp4"); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Errorf("init: %d", resp.StatusCode)
	}
}

func TestLLSkip(t *testing.T) {
	r, clk := newLLRegistry(t)
	r.cfg.WindowSize = 12
	s, _ := r.Publish("live/ll")
	s.Init([]byte("ftypmoov"))
	for i := 0; i < 10; i++ {
		addLLSegment(t, s, clk, 10) // 2 s each: 20 s listed
	}
	h := r.Handler()
	full := string(playlistBody(t, h, "/live/ll/index.m3u8"))
	for _, q := range []string{"YES", "v2"} {
		delta := string(playlistBody(t, h, "/live/ll/index.m3u8?_HLS_skip="+q))
		// CAN-SKIP-UNTIL is 12 s: the last 6 segments stay, 4 are skipped.
		if !strings.Contains(delta, "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n") {
			t.Fatalf("no EXT-X-SKIP in the delta update:\n%s", delta)
		}
		if strings.Contains(delta, "\nseg3.m4s") || !strings.Contains(delta, "\nseg4.m4s") {
			t.Errorf("delta update lists the wrong segments:\n%s", delta)
		}
		if !strings.Contains(delta, "#EXT-X-MEDIA-SEQUENCE:0\n") {
			t.Error("delta update must keep the full playlist's media sequence")
		}
	}
	if strings.Contains(full, "EXT-X-SKIP") {
		t.Error("full playlist has EXT-X-SKIP")
	}
	if resp := get(t, h, "GET", "/live/ll/index.m3u8?_HLS_skip=NO"); resp.StatusCode != 400 {
		t.Errorf("_HLS_skip=NO: %d", resp.StatusCode)
	}
}

// A blocking reload for a future part is answered as soon as that part
// exists, and its answer lists it.
func TestLLBlockingReload(t *testing.T) {
	r, clk := newLLRegistry(t)
	r.cfg.BlockTimeout = 5 * time.Second
	s, _ := r.Publish("live/ll")
	s.Init([]byte("ftypmoov"))
	addLLSegment(t, s, clk, 10)
	addParts(t, s, 2)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	type result struct {
		body  string
		code  int
		cache string
		err   error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/live/ll/index.m3u8?_HLS_msn=1&_HLS_part=4")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{body: string(b), code: resp.StatusCode, cache: resp.Header.Get("Cache-Control")}
	}()
	// Parts 2 and 3 do not satisfy it; part 4 does.
	for i := 2; i < 5; i++ {
		awaitWaiting(t, r, 1)
		select {
		case got := <-res:
			t.Fatalf("answered before part 4 existed (after part %d): %+v", i-1, got)
		default:
		}
		s.Part(Part{Data: []byte("p"), Duration: 200 * time.Millisecond})
	}
	got := <-res
	if got.err != nil || got.code != 200 {
		t.Fatalf("%+v", got)
	}
	if !strings.Contains(got.body, `URI="seg1.4.m4s"`) || !strings.Contains(got.body, `PRELOAD-HINT:TYPE=PART,URI="seg1.5.m4s"`) {
		t.Fatalf("answer does not list the part:\n%s", got.body)
	}
	if !strings.HasPrefix(got.cache, "public, max-age=") {
		t.Errorf("blocking answer cache-control %q", got.cache)
	}

	// A request that is already satisfied is answered at once.
	if resp := get(t, r.Handler(), "GET", "/live/ll/index.m3u8?_HLS_msn=0"); resp.StatusCode != 200 {
		t.Errorf("past msn: %d", resp.StatusCode)
	}
}

// awaitWaiting waits until n blocking requests are parked.
func awaitWaiting(t *testing.T, r *Registry, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.totals.waiting.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests waiting, want %d", r.totals.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLLBlockingErrors(t *testing.T) {
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/ll")
	s.Init([]byte("ftypmoov"))
	addLLSegment(t, s, clk, 10)
	addParts(t, s, 1)
	h := r.Handler()
	for q, want := range map[string]int{
		"_HLS_msn=3":                400, // more than two segments ahead of the last (0)
		"_HLS_msn=99&_HLS_part=0":   400,
		"_HLS_part=1":               400, // part without msn
		"_HLS_msn=x":                400,
		"_HLS_msn=1&_HLS_part=-1":   400,
		"_HLS_msn=1&_HLS_part=5":    503, // waits past the limit
		"_HLS_msn=2":                503,
		"_HLS_msn=1&_HLS_part=0":    200,
		"_HLS_msn=0&_HLS_part=1000": 200, // segment 0 is complete
	} {
		start := time.Now()
		resp := get(t, h, "GET", "/live/ll/index.m3u8?"+q)
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", q, resp.StatusCode, want)
		}
		if want == 503 && time.Since(start) < 250*time.Millisecond {
			t.Errorf("%s: 503 before the block timeout", q)
		}
	}
}

// A request for the preload-hinted part blocks until the part is complete;
// a part that is not next is 404 at once.
func TestLLPreloadHintPart(t *testing.T) {
	r, clk := newLLRegistry(t)
	r.cfg.BlockTimeout = 5 * time.Second
	s, _ := r.Publish("live/ll")
	s.Init([]byte("ftypmoov"))
	addLLSegment(t, s, clk, 10)
	addParts(t, s, 3)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	res := make(chan string, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/live/ll/seg1.3.m4s")
		if err != nil {
			res <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- fmt.Sprint(resp.StatusCode, " ", string(b))
	}()
	awaitWaiting(t, r, 1)
	s.Part(Part{Data: []byte("the hinted part"), Duration: 200 * time.Millisecond})
	if got := <-res; got != "200 the hinted part" {
		t.Fatalf("hinted part: %q", got)
	}
	h := r.Handler()
	for _, p := range []string{"/live/ll/seg1.9.m4s", "/live/ll/seg5.0.m4s", "/live/ll/seg0.20.m4s"} {
		start := time.Now()
		if resp := get(t, h, "GET", p); resp.StatusCode != 404 || time.Since(start) > 100*time.Millisecond {
			t.Errorf("%s: %d after %s, want an immediate 404", p, resp.StatusCode, time.Since(start))
		}
	}
	// The next segment's first part may also be waited for (the hint names
	// it once the open segment may end: TestLLPreloadHintNextSegment).
	if resp := get(t, h, "GET", "/live/ll/seg2.0.m4s"); resp.StatusCode != 503 {
		t.Errorf("next segment's first part: %d, want 503 after waiting", resp.StatusCode)
	}
}

// When the segment being built may end after its last part (SegmentDue),
// the preload hint names the next segment's first part, not an index of
// the open segment that the keyframe's cut would leave unmade; a request
// for it blocks until it exists, through more parts of the open segment
// (a keyframe that comes late) and the segment's end, and is never 404.
func TestLLPreloadHintNextSegment(t *testing.T) {
	r, clk := newLLRegistry(t)
	r.cfg.BlockTimeout = 5 * time.Second
	s, _ := r.Publish("live/ll")
	s.Init([]byte("ftypmoov"))
	addLLSegment(t, s, clk, 10)
	h := r.Handler()
	hint := func() string {
		t.Helper()
		b := string(playlistBody(t, h, "/live/ll/index.m3u8"))
		_, after, ok := strings.Cut(b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"")
		name, _, _ := strings.Cut(after, "\"")
		if !ok || strings.Count(b, "PRELOAD-HINT") != 1 {
			t.Fatalf("no single preload hint:\n%s", b)
		}
		return name
	}
	part := func(data string, due bool) {
		t.Helper()
		if err := s.Part(Part{Data: []byte(data), Duration: 200 * time.Millisecond, SegmentDue: due}); err != nil {
			t.Fatal(err)
		}
	}
	addParts(t, s, 9)
	if got := hint(); got != "seg1.9.m4s" {
		t.Errorf("hint before the due part: %s, want seg1.9.m4s", got)
	}
	part("seg1.9", true)
	if got := hint(); got != "seg2.0.m4s" {
		t.Fatalf("hint after a due part: %s, want seg2.0.m4s", got)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	res := make(chan string, 2)
	fetch := func() {
		resp, err := http.Get(srv.URL + "/live/ll/seg2.0.m4s")
		if err != nil {
			res <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- fmt.Sprint(resp.StatusCode, " ", string(b))
	}
	go fetch()
	awaitWaiting(t, r, 1)
	// The keyframe comes late: another part of segment 1, still due.
	part("seg1.10", true)
	if got := hint(); got != "seg2.0.m4s" {
		t.Errorf("hint after a second due part: %s, want seg2.0.m4s", got)
	}
	var all []byte
	for i := 0; i < 11; i++ {
		b, _ := io.ReadAll(get(t, h, "GET", fmt.Sprintf("/live/ll/seg1.%d.m4s", i)).Body)
		all = append(all, b...)
	}
	if err := s.Segment(Segment{Data: all, Duration: 2200 * time.Millisecond, ProgramDateTime: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := hint(); got != "seg2.0.m4s" {
		t.Errorf("hint between segments: %s, want seg2.0.m4s", got)
	}
	// A request made now blocks as well: the name is the next part.
	go fetch()
	awaitWaiting(t, r, 2)
	select {
	case got := <-res:
		t.Fatalf("answered before the part existed: %q", got)
	default:
	}
	if err := s.Part(Part{Data: []byte("first of seg2"), Duration: 200 * time.Millisecond, Independent: true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if got := <-res; got != "200 first of seg2" {
			t.Errorf("request %d for the hinted part: %q", i, got)
		}
	}
	if got := hint(); got != "seg2.1.m4s" {
		t.Errorf("hint after the next segment's first part: %s, want seg2.1.m4s", got)
	}
}

// A rendition that reconnects to a group while the others went on has its
// next segment numbered by its start time, in step with them, beyond its
// own next number: until its first part says which, it hints nothing
// rather than a name that may never exist.
func TestLLHintRenditionRejoin(t *testing.T) {
	r, clk := newLLRegistry(t)
	h := r.Handler()
	const d = 2 * time.Second
	a, _ := r.PublishRendition("live/ev", "hi")
	b, _ := r.PublishRendition("live/ev", "lo")
	for _, s := range []*Stream{a, b} {
		s.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", Width: 640, Height: 360})
	}
	addAt(t, a, clk, 0, d, 1000)
	addAt(t, b, clk, 0, d, 500)
	b.Unpublish()
	addAt(t, a, clk, d, d, 1000)
	addAt(t, a, clk, 2*d, d, 1000)
	if _, err := r.PublishRendition("live/ev", "lo"); err != nil {
		t.Fatal(err)
	}
	if _, pb := body(t, h, "/live/ev/lo/index.m3u8"); strings.Contains(pb, "PRELOAD-HINT") {
		t.Errorf("a rejoined rendition hints a part before its next segment is numbered:\n%s", pb)
	}
	if _, pa := body(t, h, "/live/ev/hi/index.m3u8"); !strings.Contains(pa, `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg3.0.m4s"`) {
		t.Errorf("a rendition whose next number is certain does not hint it:\n%s", pa)
	}
	if err := b.Part(Part{Data: []byte("lo"), Duration: 200 * time.Millisecond, Independent: true, SegmentStart: 3 * d}); err != nil {
		t.Fatal(err)
	}
	if _, pb := body(t, h, "/live/ev/lo/index.m3u8"); !strings.Contains(pb, "URI=\"seg3.0.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg3.1.m4s\"\n") {
		t.Errorf("the rejoined rendition's first part is not seg3.0 with seg3.1 hinted:\n%s", pb)
	}
}

// A reconnect marks the first parts of the new publish as a discontinuity.
func TestLLReconnectDiscontinuityOnParts(t *testing.T) {
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/ll")
	s.Init([]byte("ftypmoov"))
	addLLSegment(t, s, clk, 10)
	s.Unpublish()
	body := string(playlistBody(t, r.Handler(), "/live/ll/index.m3u8"))
	if strings.Contains(body, "PRELOAD-HINT") {
		t.Errorf("idle stream still hints a part:\n%s", body)
	}
	r.Publish("live/ll")
	s.Init([]byte("ftypmoov2"))
	addParts(t, s, 2)
	body = string(playlistBody(t, r.Handler(), "/live/ll/index.m3u8"))
	if !strings.Contains(body, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n#EXT-X-PART:DURATION=0.20000,URI=\"seg1.0.m4s\"") {
		t.Fatalf("new publish's parts lack DISCONTINUITY and the new MAP:\n%s", body)
	}
}

func BenchmarkBlockingWakeup(b *testing.B) {
	r := NewRegistry(Config{FMP4: true, PartTarget: 200 * time.Millisecond, BlockTimeout: time.Minute})
	s, _ := r.Publish("live/b")
	s.Init([]byte("init"))
	addPart := func() { s.Part(Part{Data: make([]byte, 1000), Duration: 200 * time.Millisecond}) }
	addPart()
	msn, idx := 0, 1 // the next part to wait for
	h := r.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// One waiter per op, released by the next part.
		done := make(chan int, 1)
		go func(msn, idx int) {
			req := httptest.NewRequest("GET", fmt.Sprintf("/live/b/index.m3u8?_HLS_msn=%d&_HLS_part=%d", msn, idx), nil)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			done <- w.code
		}(msn, idx)
		for r.totals.waiting.Load() < 1 {
			runtime.Gosched()
		}
		addPart()
		if code := <-done; code != 200 {
			b.Fatalf("waiter got %d", code)
		}
		idx++
		if idx == 10 { // a segment every 10 parts, as with 2 s segments
			s.Segment(Segment{Data: make([]byte, 10000), Duration: 2 * time.Second, ProgramDateTime: time.Now()})
			msn, idx = msn+1, 0
		}
	}
}
