package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const llSample = `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=0.600
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-29T11:20:12.500Z
#EXTINF:2.000,
seg7.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-29T11:20:14.500Z
#EXT-X-PART:DURATION=1.00000,URI="seg8.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.00000,URI="seg8.1.m4s"
#EXTINF:2.000,
seg8.m4s
#EXT-X-PART:DURATION=0.20000,URI="seg9.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="seg9.1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg9.2.m4s"
`

func TestParsePlaylist(t *testing.T) {
	var p mediaPlaylist
	if err := p.parse([]byte(llSample)); err != nil {
		t.Fatal(err)
	}
	if p.mediaSeq != 7 || p.target != 2*time.Second || p.partTarget != 200*time.Millisecond || p.holdBack != 600*time.Millisecond {
		t.Fatalf("header: %+v", p)
	}
	if len(p.segs) != 2 || string(p.segs[1].uri) != "seg8.m4s" || string(p.segs[0].mapURI) != "init0.mp4" {
		t.Fatalf("segments: %+v", p.segs)
	}
	if parts := p.segParts(&p.segs[1]); len(parts) != 2 || !parts[0].independent || parts[1].independent || parts[1].dur != time.Second {
		t.Fatalf("segment 8 parts: %+v", parts)
	}
	if p.openMSN() != 9 || len(p.segParts(&p.open)) != 2 || string(p.hint) != "seg9.2.m4s" {
		t.Fatalf("open segment: %+v hint %q", p.open, p.hint)
	}
	// The open segment starts where the last complete one ends.
	if want := time.Date(2026, 11, 29, 11, 20, 16, 500e6, time.UTC); !p.open.pdt.Equal(want) {
		t.Errorf("open segment PDT %s, want %s", p.open.pdt, want)
	}

	// The join position: the last independent part at least
	// PART-HOLD-BACK (0.6 s) from the end: seg9.0 ends 0.4 s from it, so
	// seg8.0 (independent, 2.4 s from the end) is where to start.
	v := &viewer{pl: p}
	v.llStart()
	if v.nextMSN != 8 || v.nextPart != 0 {
		t.Errorf("LL start at %d.%d, want 8.0", v.nextMSN, v.nextPart)
	}

	if err := p.parse([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\nhigh/index.m3u8\n")); err != nil || string(p.variant) != "low/index.m3u8" {
		t.Errorf("multivariant: variant %q, err %v", p.variant, err)
	}
	// nginx-rtmp: no PDT, CRLF tolerated, an ended playlist.
	if err := p.parse([]byte("#EXTM3U\r\n#EXT-X-MEDIA-SEQUENCE:3\r\n#EXT-X-TARGETDURATION:3\r\n#EXTINF:2.5,\r\n3.ts\r\n#EXT-X-ENDLIST\r\n")); err != nil {
		t.Fatal(err)
	}
	if len(p.segs) != 1 || string(p.segs[0].uri) != "3.ts" || !p.segs[0].pdt.IsZero() || !p.ended || p.partTarget != 0 {
		t.Errorf("nginx playlist: %+v", p)
	}
	if err := p.parse([]byte("<html>")); err == nil {
		t.Error("HTML parsed as a playlist")
	}
}

// liveServer is a small live origin on a clock: a part every partDur, four
// parts per segment, a window of `window` segments, blocking reloads and
// blocking preload-hint parts as rfc8216bis describes. With ll false it is
// classic HLS with segments only.
type liveServer struct {
	t0      time.Time
	partDur time.Duration
	window  int
	ll      bool
	// hintNext: from the open segment's second half on, the hint names
	// the next segment's first part, as fount's does once a segment has
	// reached its target and the keyframe (a GOP longer than the target)
	// comes parts later. Both halves' parts, so that a viewer, which sees
	// every other part count, meets such a hint.
	hintNext bool

	mu   sync.Mutex
	hits map[string]int // media requests per path
}

const partsPerSeg = 4

func (s *liveServer) nParts(now time.Time) int { return int(now.Sub(s.t0) / s.partDur) }

func (s *liveServer) render(n int) string {
	segs := n / partsPerSeg
	first := max(0, segs-s.window)
	var b strings.Builder
	segDur := s.partDur * partsPerSeg
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-TARGETDURATION:%d\n", max(1, int(segDur/time.Second)))
	if s.ll {
		fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%.3f\n#EXT-X-PART-INF:PART-TARGET=%.3f\n", 3*s.partDur.Seconds(), s.partDur.Seconds())
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-MAP:URI=\"init.mp4\"\n", first)
	for m := first; m < segs; m++ {
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.t0.Add(time.Duration(m)*segDur).UTC().Format(time.RFC3339Nano))
		if s.ll && m >= segs-2 {
			for p := range partsPerSeg {
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%.3f,URI=\"seg%d.%d.m4s\"%s\n", s.partDur.Seconds(), m, p, map[bool]string{true: ",INDEPENDENT=YES"}[p == 0])
			}
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\nseg%d.m4s\n", segDur.Seconds(), m)
	}
	if s.ll {
		for p := range n % partsPerSeg {
			fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%.3f,URI=\"seg%d.%d.m4s\"%s\n", s.partDur.Seconds(), segs, p, map[bool]string{true: ",INDEPENDENT=YES"}[p == 0])
		}
		hm, hp := segs, n%partsPerSeg
		if s.hintNext && hp >= partsPerSeg/2 {
			hm, hp = segs+1, 0
		}
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg%d.%d.m4s\"\n", hm, hp)
	}
	return b.String()
}

// waitFor blocks until part index k (global) exists, up to 3 s.
func (s *liveServer) waitFor(ctx context.Context, k int) bool {
	deadline := time.Now().Add(3 * time.Second)
	for s.nParts(time.Now()) <= k {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func (s *liveServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	file := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if file == "index.m3u8" {
		if m := r.URL.Query().Get("_HLS_msn"); m != "" && s.ll {
			msn, _ := strconv.Atoi(m)
			part, _ := strconv.Atoi(r.URL.Query().Get("_HLS_part"))
			if !s.waitFor(r.Context(), msn*partsPerSeg+part) {
				http.Error(w, "timeout", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprint(w, s.render(s.nParts(time.Now())))
		return
	}
	s.mu.Lock()
	s.hits[file]++
	s.mu.Unlock()
	if file == "init.mp4" {
		w.Write(make([]byte, 100))
		return
	}
	var m, p int
	if n, _ := fmt.Sscanf(file, "seg%d.%d.m4s", &m, &p); n == 2 {
		if !s.waitFor(r.Context(), m*partsPerSeg+p) {
			http.NotFound(w, r)
			return
		}
		w.Write(make([]byte, 1000))
		return
	}
	if n, _ := fmt.Sscanf(file, "seg%d.m4s", &m); n == 1 && s.nParts(time.Now()) >= (m+1)*partsPerSeg {
		w.Write(make([]byte, 4000))
		return
	}
	http.NotFound(w, r)
}

func startLive(t *testing.T, ll bool, partDur time.Duration) (*liveServer, string) {
	s := &liveServer{t0: time.Now().Add(-3 * partsPerSeg * partDur), partDur: partDur, window: 4, ll: ll, hits: map[string]int{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func watch(t *testing.T, base, mode string, viewers int, d time.Duration) (viewResult, string) {
	t.Helper()
	cfg := viewConfig{common: common{duration: d}, url: base, paths: []string{"live/x"}, viewers: viewers, mode: mode}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var res viewResult
	cfg.jsonPath = t.TempDir() + "/view.json"
	if err := runView(context.Background(), cfg, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	res = readJSON[viewResult](t, cfg.jsonPath)
	return res, out.String()
}

func TestViewLL(t *testing.T) {
	s, base := startLive(t, true, 250*time.Millisecond)
	res, out := watch(t, base, "auto", 3, 3*time.Second)
	t.Log("\n" + out)
	if res.LL != 3 || res.Total.Failed != 0 || res.Missed != 0 {
		t.Fatalf("LL viewers %d, failed %d, missed %d; want 3, 0, 0", res.LL, res.Total.Failed, res.Missed)
	}
	// Per round a viewer blocks for the next part, fetches it, then waits
	// on the hinted one: two parts per blocking reload.
	if res.Kinds["blocking_playlist"].Requests < 3*4 || res.Kinds["part"].Requests < 3*10 || res.Kinds["init"].Requests != 3 {
		t.Errorf("requests: %+v", res.Kinds)
	}
	// Behind live: a hinted part is had as it finishes, so well under a
	// part; its lag is taken when the viewer had it, not a part later when
	// the playlist listing it gives its duration (255 ms here before).
	if res.Lag.Count == 0 || res.Lag.P99 > 125 {
		t.Errorf("lag %+v, want p99 under half a part (125 ms)", res.Lag)
	}
	// Every part is fetched once per viewer, none twice.
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, n := range s.hits {
		if n > 3 {
			t.Errorf("%s fetched %d times by 3 viewers", name, n)
		}
	}
}

// TestViewLLHintNext: a hint that names the next segment's first part
// while the open segment has parts to come is followed as such: that part
// is fetched once, as a hint, and the open segment's remaining parts are
// fetched too, once.
func TestViewLLHintNext(t *testing.T) {
	s, base := startLive(t, true, 250*time.Millisecond)
	s.hintNext = true
	res, out := watch(t, base, "auto", 2, 3*time.Second)
	t.Log("\n" + out)
	if res.LL != 2 || res.Total.Failed != 0 || res.Missed != 0 || res.HintsGone != 0 {
		t.Fatalf("LL viewers %d, failed %d, missed %d, hints gone %d; want 2, 0, 0, 0", res.LL, res.Total.Failed, res.Missed, res.HintsGone)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	last, first := 0, 0 // fetches of segments' last and first parts, after the join
	for name, n := range s.hits {
		if n > 2 {
			t.Errorf("%s fetched %d times by 2 viewers", name, n)
		}
		var m, p int
		if k, _ := fmt.Sscanf(name, "seg%d.%d.m4s", &m, &p); k == 2 && p == partsPerSeg-1 {
			last += n
		} else if k == 2 && p == 0 {
			first += n
		}
	}
	if last < 2*2 || first < 2*2 {
		t.Errorf("segments' last parts fetched %d times, first parts %d, by 2 viewers over 3 segments: %v", last, first, s.hits)
	}
}

func TestViewClassic(t *testing.T) {
	// 1 s segments (the shortest a target duration can say).
	s, base := startLive(t, false, 250*time.Millisecond)
	res, out := watch(t, base, "auto", 2, 3500*time.Millisecond)
	t.Log("\n" + out)
	if res.Classic != 2 || res.Total.Failed != 0 || res.Missed != 0 {
		t.Fatalf("classic viewers %d, failed %d, missed %d; want 2, 0, 0", res.Classic, res.Total.Failed, res.Missed)
	}
	// Three segments at the join, then about one per second.
	if seg := res.Kinds["segment"].Requests; seg < 2*5 || seg > 2*8 {
		t.Errorf("%d segment requests, want 10..16", seg)
	}
	if res.Lag.Count == 0 || res.Lag.P99 > 1600 {
		t.Errorf("lag %+v, want p99 under 1.6 s (one target duration and a half)", res.Lag)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, n := range s.hits {
		if n > 2 {
			t.Errorf("%s fetched %d times by 2 viewers", name, n)
		}
	}
}

// TestViewMissed: a playlist that jumps ahead of the viewer counts the
// segments it never listed to it.
func TestViewMissed(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".m3u8") {
			w.Write([]byte("x"))
			return
		}
		mu.Lock()
		calls++
		first := 0
		if calls > 1 {
			first = 10
		}
		mu.Unlock()
		fmt.Fprintf(w, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:%d\n", first)
		for m := first; m < first+3; m++ {
			fmt.Fprintf(w, "#EXTINF:1.0,\n%d.ts\n", m)
		}
	}))
	defer srv.Close()
	res, out := watch(t, srv.URL, "classic", 1, 1500*time.Millisecond)
	t.Log("\n" + out)
	// Joined at 0..2, fetched them, then the window was 10..12: 3..9 missed.
	if res.Missed != 7 {
		t.Errorf("missed %d, want 7", res.Missed)
	}
	if res.NoPDT == 0 || res.Lag.Count != 0 {
		t.Errorf("no PDT: %d media counted without one, %d lag samples", res.NoPDT, res.Lag.Count)
	}
}

func TestViewFailuresAndJoin(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".ts") {
			http.Error(w, "gone", http.StatusGone)
			return
		}
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 { // not started yet
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\n0.ts\n#EXT-X-ENDLIST\n")
	}))
	defer srv.Close()
	res, _ := watch(t, srv.URL, "auto", 1, time.Second)
	if res.JoinRetries != 1 || res.Joined != 1 {
		t.Errorf("join retries %d, joined %d; want 1, 1", res.JoinRetries, res.Joined)
	}
	if k := res.Kinds["segment"]; k.Failed != 1 || res.Failures["segment: 410"] != 1 {
		t.Errorf("segment failures %d (%v), want one 410", k.Failed, res.Failures)
	}
}
