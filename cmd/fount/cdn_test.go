package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/grafov/m3u8"
	dto "github.com/prometheus/client_model/go"
)

// TestCDNEdgeNginx puts Debian's nginx, configured as docs/reverse-proxy.md
// asks, between fount and 500 simulated players, and checks that every
// player gets every segment (classic) or part (LL-HLS) without a gap while
// fount serves each media object only a few times: the edge collapses the
// rest. Its "signed" case does the same with signed URLs.
func TestCDNEdgeNginx(t *testing.T) {
	if raceDetector {
		// It judges 150 viewers' lag behind an nginx edge; .ci/run runs it in its pass without -race (once is enough:
		// a player's stall under the detector is the detector's).
		t.Skip("judged without the race detector: .ci/run runs it in its pass without -race")
	}
	lockEndToEnd(t)
	requireTool(t, "nginx")
	src := source(t)
	watch := 30 * time.Second
	if s := os.Getenv("FOUNT_CDN_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 5 {
			t.Fatalf("FOUNT_CDN_SECONDS=%q: want a whole number of seconds >= 5", s)
		}
		watch = time.Duration(n) * time.Second
	}
	// 500 viewers measure the edge and fount; under the race detector
	// (several times slower, on 2 cores with the viewers and nginx) they
	// measure the detector: 297 of 500 LL viewers fell behind on the
	// landed code too (2026-12-02). The race run checks for races with
	// fewer; .ci/run also runs this test without -race at 500.
	viewers := 500
	if raceDetector {
		viewers = 150
	}
	cases := []struct {
		name  string
		ll    bool
		start func(testing.TB) *origin
	}{
		{"classic", false, func(t testing.TB) *origin { return startClassic(t, nil) }},
		{"llhls", true, func(t testing.TB) *origin { return startOrigin(t, nil) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := c.start(t)
			ctx, cancel := context.WithCancel(context.Background())
			push := o.push(ctx, t, "cdn", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
			defer func() {
				cancel()
				push.Wait()
			}()
			awaitPlaylist(t, o.url("/live/cdn/index.m3u8"), 20*time.Second, "three segments", func(p *m3u8.MediaPlaylist, _ []byte) bool {
				return p.Count() >= 3
			})
			edge := startNginx(t, "cdn.conf.tmpl", o.http)

			route := "segment"
			if c.ll {
				route = "part"
			}
			before := scrape(t, o)
			tracked := trackOrigin(o.url("/live/cdn/index.m3u8"), c.ll)
			res := watchThroughEdge(t, edge, c.ll, viewers, watch, nil)
			appeared, trackerRequests := tracked()
			after := scrape(t, o)
			delta := func(route string) float64 {
				return sumRequests(after, route) - sumRequests(before, route)
			}
			mediaAtFount := delta(route)
			playlistsAtFount := delta("playlist") - float64(trackerRequests)

			lat := res.latencies
			slices.Sort(lat)
			// A viewer must have every object that appeared at fount before
			// the end of the watch, less what a player cannot know yet:
			// classic, one reload interval plus the playlist's max-age (half
			// a target each, rounded up to nginx's whole seconds); LL-HLS,
			// nginx's cache-lock wake-up (up to 500 ms) and a part or two;
			// and the time its own last playlist and media requests took,
			// bounded by twice its slowest request. (A bound from the run's
			// p99 failed twice in CI: under the race detector, with other
			// packages' tests beside it, p99 was 1.7 s and a few viewers
			// had two slower requests in a row.)
			slack := 3 * time.Second
			if c.ll {
				slack = 1500 * time.Millisecond
			}
			checkViewers(t, res, appeared, func(v *viewer) time.Duration { return slack + 2*slices.Max(append(v.latencies, 0)) })

			objects := len(res.objects)
			perObject := mediaAtFount / float64(max(objects, 1))
			t.Logf("%d viewers for %s through nginx: %d requests (%.0f/s; %d playlist, %d %s), latency p50 %s p99 %s",
				viewers, watch, res.requests, float64(res.requests)/watch.Seconds(), res.playlists, res.media, route,
				pct(lat, 0.50), pct(lat, 0.99))
			t.Logf("fount served %.0f %s requests for %d distinct %ss (%.2f per object) and %.0f playlist requests (nginx: %d)",
				mediaAtFount, route, objects, route, perObject, playlistsAtFount, res.playlists)
			if objects == 0 {
				t.Fatalf("viewers downloaded no %s", route)
			}
			if perObject > 3 {
				t.Errorf("fount served %.2f requests per %s, want <= 3: the edge does not collapse them", perObject, route)
			}
			if playlistsAtFount*10 > float64(res.playlists) {
				t.Errorf("fount served %.0f playlist requests for nginx's %d, want far fewer", playlistsAtFount, res.playlists)
			}
		})
	}
	t.Run("signed", testCDNSigned) // cdn_signed_test.go
}

// startNginx runs nginx in the foreground as the test's own process, from
// testdata/nginx/conf (a template), listening on a free loopback port in
// front of upstream. It returns the edge's base URL.
func startNginx(t *testing.T, conf, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"tmp", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := template.ParseFiles(filepath.Join("..", "..", "testdata", "nginx", conf))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	var cfg bytes.Buffer
	if err := tmpl.Execute(&cfg, map[string]any{
		// Workers of a root master run as nobody unless told otherwise, and
		// nobody cannot write to the test's directory.
		"Root":     os.Geteuid() == 0,
		"Dir":      dir,
		"Listen":   listen,
		"Upstream": upstream,
	}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command("nginx", "-p", dir, "-c", confPath, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	errorLog := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return out.String() + string(b)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT) // graceful: finish requests, then exit
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("nginx did not stop within 10 s of SIGQUIT")
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("nginx log:\n%s", errorLog())
		}
	})
	base := "http://" + listen
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("nginx exited: %v\n%s\nconfig:\n%s", err, errorLog(), cfg.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer /healthz within 10 s: %v\n%s", err, errorLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hlsPart is one part (LL-HLS) or one segment (classic) as listed.
type hlsPart struct {
	msn, idx int // idx is -1 for a whole segment
	uri      string
}

func (p hlsPart) String() string {
	if p.idx < 0 {
		return fmt.Sprintf("segment %d (%s)", p.msn, p.uri)
	}
	return fmt.Sprintf("part %d.%d (%s)", p.msn, p.idx, p.uri)
}

// hlsView is what a viewer needs from a media playlist.
type hlsView struct {
	target   time.Duration
	segments []hlsPart // complete segments, oldest first
	parts    []hlsPart // listed parts, oldest first
	init     string
}

// next is the blocking-reload position a player asks for: the part after
// the newest listed one.
func (v hlsView) next() (msn, part int) {
	msn = len(v.segments)
	if msn > 0 {
		msn = v.segments[len(v.segments)-1].msn + 1
	}
	for _, p := range v.parts {
		if p.msn == msn {
			part = p.idx + 1
		}
	}
	return msn, part
}

// parseHLS reads a media playlist line by line; it is cheap enough for
// thousands of reloads a second.
func parseHLS(body []byte) hlsView {
	var v hlsView
	seq, idx := 0, 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "#EXT-X-TARGETDURATION:"):
			n, _ := strconv.Atoi(l[len("#EXT-X-TARGETDURATION:"):])
			v.target = time.Duration(n) * time.Second
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			seq, _ = strconv.Atoi(l[len("#EXT-X-MEDIA-SEQUENCE:"):])
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			v.init = attr(l, "URI")
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			v.parts = append(v.parts, hlsPart{seq, idx, attr(l, "URI")})
			idx++
		case l != "" && !strings.HasPrefix(l, "#"):
			v.segments = append(v.segments, hlsPart{seq, -1, l})
			seq, idx = seq+1, 0
		}
	}
	return v
}

func attr(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	s := line[i+len(name)+2:]
	if j := strings.IndexByte(s, '"'); j >= 0 {
		return s[:j]
	}
	return s
}

// edgeResult is what the viewers did, merged.
type edgeResult struct {
	requests, playlists, media int
	latencies                  []time.Duration
	objects                    map[string]bool // distinct media objects downloaded
	viewers                    []*viewer
	end                        time.Time
}

// viewer is one simulated player.
type viewer struct {
	id        int
	joined    hlsPart // newest object listed when it joined
	last      hlsPart // newest object it downloaded (or joined)
	got       int
	requests  int
	playlists int
	latencies []time.Duration
	objects   []string
	errs      []string
	query     string // its signed URL's query (expires=…&token=…), or ""
}

func (v *viewer) fail(format string, args ...any) {
	if len(v.errs) < 5 {
		v.errs = append(v.errs, fmt.Sprintf(format, args...))
	} else {
		v.errs = append(v.errs[:5], "…")
	}
}

// watchThroughEdge runs n viewers against base for d, joining over the
// first two seconds, and stops them all at the end; query, if not nil,
// gives viewer i its signed URL's query.
func watchThroughEdge(t *testing.T, base string, ll bool, n int, d time.Duration, query func(i int) string) *edgeResult {
	t.Helper()
	tr := &http.Transport{
		MaxIdleConns:        2 * n,
		MaxIdleConnsPerHost: 2 * n,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	url := base + "/live/cdn/"
	vs := make([]*viewer, n)
	var wg sync.WaitGroup
	for i := range vs {
		v := &viewer{id: i}
		if query != nil {
			v.query = query(i)
		}
		vs[i] = v
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(rand.N(2 * time.Second)):
			case <-ctx.Done():
				return
			}
			if ll {
				v.watchLL(ctx, client, url)
			} else {
				v.watchClassic(ctx, client, url)
			}
		}()
	}
	wg.Wait()
	res := &edgeResult{objects: map[string]bool{}, viewers: vs, end: deadline}
	for _, v := range vs {
		res.requests += v.requests
		res.playlists += v.playlists
		res.media += v.got
		res.latencies = append(res.latencies, v.latencies...)
		for _, o := range v.objects {
			res.objects[o] = true
		}
	}
	return res
}

// get fetches one URL; a failure after ctx ends is the clean stop at the
// end of the watch, reported as errStopped.
var errStopped = errors.New("stopped")

func (v *viewer) get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, errStopped
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	start := time.Now()
	resp, err := c.Do(req)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("%s: %s %q", url, resp.Status, bytes.TrimSpace(body))
		}
		if err == nil {
			v.requests++
			v.latencies = append(v.latencies, time.Since(start))
			return body, nil
		}
	}
	if ctx.Err() != nil {
		return nil, errStopped
	}
	v.requests++
	return nil, err
}

// pause sleeps d unless ctx ends first, and reports whether to go on.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// watchClassic plays classic HLS: reload the playlist every half target
// duration and download each new segment once, in order.
func (v *viewer) watchClassic(ctx context.Context, c *http.Client, base string) {
	var started bool
	interval := time.Second
	for failures := 0; failures < 20; {
		body, err := v.get(ctx, c, v.signed(base+"index.m3u8"))
		if err == errStopped {
			return
		}
		v.playlists++
		if err != nil {
			v.fail("playlist: %v", err)
			failures++
			if !pause(ctx, interval) {
				return
			}
			continue
		}
		pl := parseHLS(body)
		if pl.target > 0 {
			interval = pl.target / 2
		}
		if !started {
			if len(pl.segments) == 0 {
				v.fail("no segment listed when joining:\n%s", body)
				return
			}
			started = true
			v.joined = pl.segments[len(pl.segments)-1]
			v.last = v.joined
		}
		for _, s := range pl.segments {
			if s.msn <= v.last.msn {
				continue
			}
			if s.msn != v.last.msn+1 {
				v.fail("gap: after %v the playlist lists %v first", v.last, s)
				return
			}
			if _, err := v.get(ctx, c, base+s.uri); err != nil {
				if err == errStopped {
					return
				}
				v.fail("%v: %v", s, err)
				failures++
				break
			}
			v.got++
			v.objects = append(v.objects, s.uri)
			v.last = s
		}
		if !pause(ctx, interval) {
			return
		}
	}
}

// watchLL plays LL-HLS as a low-latency player does: one plain playlist
// request to join, then blocking reloads for the next part, downloading
// each new part once, in order.
func (v *viewer) watchLL(ctx context.Context, c *http.Client, base string) {
	body, err := v.get(ctx, c, v.signed(base+"index.m3u8"))
	if err == errStopped {
		return
	}
	v.playlists++
	if err != nil {
		v.fail("joining: %v", err)
		return
	}
	pl := parseHLS(body)
	if len(pl.parts) == 0 || pl.init == "" {
		v.fail("no part or init listed when joining:\n%s", body)
		return
	}
	if _, err := v.get(ctx, c, base+pl.init); err != nil {
		if err != errStopped {
			v.fail("init: %v", err)
		}
		return
	}
	v.joined = pl.parts[len(pl.parts)-1]
	v.last = v.joined
	for failures := 0; failures < 20; {
		msn, part := pl.next()
		body, err := v.get(ctx, c, v.signed(fmt.Sprintf("%sindex.m3u8?_HLS_msn=%d&_HLS_part=%d", base, msn, part)))
		if err == errStopped {
			return
		}
		v.playlists++
		if err != nil {
			v.fail("blocking reload %d.%d: %v", msn, part, err)
			failures++
			if !pause(ctx, 200*time.Millisecond) {
				return
			}
			continue
		}
		pl = parseHLS(body)
		i := slices.IndexFunc(pl.parts, func(p hlsPart) bool { return p.uri == v.last.uri })
		if i < 0 {
			v.fail("gap: %v, the last part downloaded, is no longer listed (parts %v … %v)", v.last, pl.parts[0], pl.parts[len(pl.parts)-1])
			return
		}
		advanced := false
		for _, p := range pl.parts[i+1:] {
			if !(p.msn == v.last.msn && p.idx == v.last.idx+1) && !(p.msn == v.last.msn+1 && p.idx == 0) {
				v.fail("gap: %v follows %v", p, v.last)
				return
			}
			if _, err := v.get(ctx, c, base+p.uri); err != nil {
				if err == errStopped {
					return
				}
				v.fail("%v: %v", p, err)
				failures++
				break
			}
			v.got++
			v.objects = append(v.objects, p.uri)
			v.last = p
			advanced = true
		}
		// A reload that brought nothing new (it should not happen) must not
		// turn into a busy loop.
		if !advanced && !pause(ctx, 100*time.Millisecond) {
			return
		}
	}
}

// appearance is when an object was first listed at fount.
type appearance struct {
	obj hlsPart
	at  time.Time
}

// trackOrigin polls fount's playlist directly every 100 ms, recording when
// each segment (classic) or part (LL-HLS) first appears, until the returned
// function is called; that returns the objects in order and how many
// requests the tracking made.
func trackOrigin(url string, ll bool) func() ([]appearance, int) {
	var (
		seen     []appearance
		requests int
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		c := &http.Client{Timeout: 5 * time.Second}
		for {
			resp, err := c.Get(url)
			requests++
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				now := time.Now()
				pl := parseHLS(body)
				objs := pl.segments
				if ll {
					objs = pl.parts
				}
				for _, o := range objs {
					if len(seen) == 0 || newer(o, seen[len(seen)-1].obj) {
						seen = append(seen, appearance{o, now})
					}
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() ([]appearance, int) {
		close(stop)
		<-done
		return seen, requests
	}
}

func newer(a, b hlsPart) bool {
	return a.msn > b.msn || a.msn == b.msn && a.idx > b.idx
}

// checkViewers asserts each viewer that joined downloaded, without a gap or
// a failed request, everything from its join up to at least the newest
// object that appeared at fount slack(viewer) before the end of the watch.
func checkViewers(t *testing.T, res *edgeResult, appeared []appearance, slack func(*viewer) time.Duration) {
	t.Helper()
	wantBy := func(cutoff time.Time) hlsPart {
		var want hlsPart
		for _, a := range appeared {
			if !a.at.After(cutoff) {
				want = a.obj
			}
		}
		return want
	}
	if len(appeared) == 0 || !appeared[0].at.Before(res.end) {
		t.Fatal("nothing appeared at fount during the watch")
	}
	var least hlsPart // what every viewer had, at the least
	failed, behind, joined, minGot, maxGot, sumGot := 0, 0, 0, -1, 0, 0
	for _, v := range res.viewers {
		if v.joined.uri == "" && len(v.errs) == 0 {
			continue // the watch ended before it joined (only with tiny FOUNT_CDN_SECONDS)
		}
		joined++
		if len(v.errs) > 0 {
			if failed < 5 {
				t.Errorf("viewer %d: %s", v.id, strings.Join(v.errs, "; "))
			}
			failed++
			continue
		}
		cutoff := res.end.Add(-slack(v))
		want := wantBy(cutoff)
		if want.uri != "" && newer(want, v.last) && newer(want, v.joined) {
			if behind < 5 {
				t.Errorf("viewer %d fell behind: its newest is %v, but %v was at fount %s before the end",
					v.id, v.last, want, res.end.Sub(cutoff))
			}
			behind++
		}
		if least.uri == "" || newer(least, want) {
			least = want
		}
		if minGot < 0 || v.got < minGot {
			minGot = v.got
		}
		maxGot = max(maxGot, v.got)
		sumGot += v.got
	}
	if failed+behind > 0 {
		t.Errorf("%d of %d viewers had failed requests or gaps, %d fell behind", failed, joined, behind)
	}
	if joined == 0 {
		t.Fatal("no viewer joined")
	}
	if least.uri == "" {
		t.Fatal("no viewer was due any object: the watch is shorter than its slack")
	}
	t.Logf("%d viewers joined; each downloaded %d to %d objects (%.1f on average) up to at least %v, with no gap",
		joined, minGot, maxGot, float64(sumGot)/float64(joined), least)
}

func sumRequests(fams map[string]*dto.MetricFamily, route string) float64 {
	f, ok := fams["fount_http_requests_total"]
	if !ok {
		return 0
	}
	var n float64
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && l.GetValue() == route {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))].Round(10 * time.Microsecond)
}
