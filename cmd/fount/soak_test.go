package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// TestSoak runs the real binary for a long time with publishers, a
// publisher that reconnects over and over, and viewers attached, samples
// fount's RSS, heap and goroutines, and fails if they grow or a viewer
// misses a segment. Off unless FOUNT_SOAK is set to a duration:
//
//	FOUNT_SOAK=30m go test -run TestSoak -timeout 40m -v ./cmd/fount
//
// FOUNT_SOAK_STREAMS (default 3), FOUNT_SOAK_VIEWERS (per stream, default
// 20), FOUNT_SOAK_FORMAT (fmp4 LL-HLS, or ts for classic) and FOUNT_SOAK_CSV
// (a file for the samples) tune it.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("FOUNT_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("soak is off; FOUNT_SOAK=30m runs it (see README)")
	}
	if d < 2*time.Minute {
		t.Fatalf("FOUNT_SOAK=%s: a soak shorter than 2m cannot tell growth from warm-up", d)
	}
	streams := envInt(t, "FOUNT_SOAK_STREAMS", 3)
	viewers := envInt(t, "FOUNT_SOAK_VIEWERS", 20)
	format := os.Getenv("FOUNT_SOAK_FORMAT")
	if format == "" {
		format = "fmp4"
	}
	src := source(t)

	bin := filepath.Join(t.TempDir(), "fount")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	args := []string{"serve", "--rtmp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--segment-format", format, "--webrtc-udp-addr", ""}
	if format == "ts" {
		args = append(args, "--low-latency=false")
	}
	cmd := exec.Command(bin, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`rtmp=(\S+) http=(\S+) api=(\S+)`)
	var rtmpAddr, httpAddr, apiAddr string
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			rtmpAddr, httpAddr, apiAddr = m[1], m[2], m[3]
			break
		}
	}
	if rtmpAddr == "" {
		t.Fatal("fount did not log its addresses")
	}
	var errLines atomic.Int64
	var lastErr atomic.Value
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		for sc.Scan() {
			if l := sc.Text(); strings.Contains(l, "level=ERROR") {
				errLines.Add(1)
				lastErr.Store(l)
			}
		}
	}()
	o := &origin{rtmp: rtmpAddr, http: httpAddr}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// Steady publishers for the whole run.
	exited := make(chan string, streams)
	for i := range streams {
		p := o.push(ctx, t, fmt.Sprintf("soak%d", i), []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.Wait()
			if ctx.Err() == nil {
				exited <- fmt.Sprintf("publisher %d exited (%v): %s", i, err, p.Stderr.(*syncBuffer).String())
			}
		}()
	}
	// One publisher that comes and goes: each publish sets up and tears
	// down a session, which is where leaks would hide.
	var churns atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			c := o.push(ctx, t, "churn", []string{"-re", "-t", "8", "-i", src}, "-c", "copy")
			c.Wait()
			churns.Add(1)
		}
	}()
	for i := range streams {
		awaitPlaylist(t, o.url(fmt.Sprintf("/live/soak%d/index.m3u8", i)), 20*time.Second, "a segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })
	}

	var vs viewerStats
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams * viewers}, Timeout: 15 * time.Second}
	defer client.CloseIdleConnections()
	for i := range streams {
		for range viewers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				soakViewer(ctx, client, o.url(fmt.Sprintf("/live/soak%d/", i)), &vs)
			}()
		}
	}

	// Sample every 1/60 of the run (at least 10 s apart).
	every := max(d/60, 10*time.Second)
	var samples []soakSample
	start := time.Now()
	var prevCPU float64
	for time.Since(start) < d {
		select {
		case <-time.After(every):
		case <-logDone:
			t.Fatal("fount exited during the soak")
		case msg := <-exited:
			t.Fatal(msg)
		}
		s, err := sampleProcess(client, cmd.Process.Pid, "http://"+apiAddr+"/metrics")
		if err != nil {
			t.Fatalf("sampling fount: %v", err)
		}
		s.at = time.Since(start)
		s.cpuPct = (s.cpu - prevCPU) / every.Seconds() * 100
		prevCPU = s.cpu
		s.segments, s.missed, s.failed = vs.segments.Load(), vs.missed.Load(), vs.failed.Load()
		samples = append(samples, s)
		t.Logf("t=%6s rss=%5.1f MiB heap=%5.1f MiB media=%5.1f MiB in %d files fds=%d goroutines=%4d cpu=%5.1f%% segments=%d missed=%d failed=%d churns=%d",
			s.at.Round(time.Second), mib(s.rss), mib(s.heap), mib(s.media), s.mediaFiles, s.fds, s.goroutines, s.cpuPct, s.segments, s.missed, s.failed, churns.Load())
	}
	if f := os.Getenv("FOUNT_SOAK_CSV"); f != "" {
		writeSoakCSV(t, f, samples)
	}

	// Flat: after a warm-up of a fifth of the run (windows fill, the GC
	// finds its pace), the last quarter may exceed the first post-warm-up
	// quarter by 10 % plus a little slack.
	warm := samples[len(samples)/5:]
	q := len(warm) / 4
	early, late := warm[:q], warm[len(warm)-q:]
	rssE, rssL := median(early, func(s soakSample) float64 { return s.rss }), median(late, func(s soakSample) float64 { return s.rss })
	// Heap in use swings with each GC cycle; its troughs track the live
	// heap, so compare the lowest sample of each quarter.
	heapE, heapL := lowest(early, func(s soakSample) float64 { return s.heap }), lowest(late, func(s soakSample) float64 { return s.heap })
	grE, grL := median(early, func(s soakSample) float64 { return float64(s.goroutines) }), median(late, func(s soakSample) float64 { return float64(s.goroutines) })
	// Segments live in memory files, outside RSS and the heap: a leak of
	// them shows only here.
	mediaE, mediaL := median(early, func(s soakSample) float64 { return s.media }), median(late, func(s soakSample) float64 { return s.media })
	fdE, fdL := median(early, func(s soakSample) float64 { return float64(s.fds) }), median(late, func(s soakSample) float64 { return float64(s.fds) })
	t.Logf("after warm-up: media files %.1f → %.1f MiB, open fds %.0f → %.0f", mib(mediaE), mib(mediaL), fdE, fdL)
	if mediaE == 0 {
		t.Error("fount_media_file_bytes stayed 0: segments are not in memory files")
	}
	if mediaL > mediaE*1.10+8<<20 {
		t.Errorf("media in memory files grew from %.1f to %.1f MiB", mib(mediaE), mib(mediaL))
	}
	if fdL > fdE*1.10+10 {
		t.Errorf("open file descriptors grew from %.0f to %.0f", fdE, fdL)
	}
	t.Logf("after warm-up: rss %.1f → %.1f MiB, heap %.1f → %.1f MiB, goroutines %.0f → %.0f; %d publishes by the churning publisher; %d segments fetched, %d missed, %d failed requests",
		mib(rssE), mib(rssL), mib(heapE), mib(heapL), grE, grL, churns.Load(), vs.segments.Load(), vs.missed.Load(), vs.failed.Load())
	if rssL > rssE*1.10+8<<20 {
		t.Errorf("RSS grew from %.1f to %.1f MiB", mib(rssE), mib(rssL))
	}
	if heapL > heapE*1.10+4<<20 {
		t.Errorf("heap grew from %.1f to %.1f MiB", mib(heapE), mib(heapL))
	}
	if grL > grE+8 {
		t.Errorf("goroutines grew from %.0f to %.0f", grE, grL)
	}
	if n := vs.missed.Load(); n > 0 {
		t.Errorf("viewers missed %d segments", n)
	}
	if n := vs.failed.Load(); n > 0 {
		t.Errorf("%d viewer requests failed", n)
	}
	if vs.segments.Load() == 0 {
		t.Error("viewers fetched no segments")
	}
	if n := errLines.Load(); n > 0 {
		t.Errorf("fount logged %d errors; last: %v", n, lastErr.Load())
	}
}

type soakSample struct {
	at                       time.Duration
	rss, heap                float64
	media                    float64 // bytes in memory files (fount_media_file_bytes)
	mediaFiles, fds          int     // fount_media_files; open file descriptors
	goroutines               int
	cpu, cpuPct              float64 // cpu: seconds used so far
	segments, missed, failed int64
}

type viewerStats struct {
	segments, missed, failed atomic.Int64
}

// soakViewer plays a stream the way a classic HLS player does: reload the
// playlist about once a second and fetch each new segment once. A segment
// that left the window before it was fetched is a miss.
func soakViewer(ctx context.Context, c *http.Client, base string, vs *viewerStats) {
	next := int64(-1)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		body, ok := soakGet(ctx, c, base+"index.m3u8", vs)
		if !ok {
			continue
		}
		pl, lt, err := m3u8.DecodeFrom(bytes.NewReader(body), true)
		if err != nil || lt != m3u8.MEDIA {
			if ctx.Err() == nil {
				vs.failed.Add(1)
			}
			continue
		}
		p := pl.(*m3u8.MediaPlaylist)
		segs := segments(p)
		if len(segs) == 0 {
			continue
		}
		first := int64(p.SeqNo)
		if next < 0 {
			next = first + int64(len(segs)) - 1 // join at the live edge
		}
		if next < first {
			vs.missed.Add(first - next)
			next = first
		}
		for i := next - first; i < int64(len(segs)); i++ {
			if _, ok := soakGet(ctx, c, base+segs[i].URI, vs); ok {
				vs.segments.Add(1)
			}
			next = first + i + 1
		}
	}
}

func soakGet(ctx context.Context, c *http.Client, url string, vs *viewerStats) ([]byte, bool) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			vs.failed.Add(1)
		}
		return nil, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		if ctx.Err() == nil {
			vs.failed.Add(1)
		}
		return nil, false
	}
	return body, true
}

// sampleProcess reads RSS and CPU time from /proc and the Go runtime's
// figures from fount's own /metrics.
func sampleProcess(c *http.Client, pid int, metricsURL string) (soakSample, error) {
	var s soakSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			s.rss = kb * 1024
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields, in clock ticks (100 Hz on Linux).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	s.cpu = (ut + st) / 100
	resp, err := c.Get(metricsURL)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "go_goroutines "); ok {
			s.goroutines, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(l, "go_memstats_heap_inuse_bytes "); ok {
			s.heap, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(l, "fount_media_file_bytes "); ok {
			s.media, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(l, "fount_media_files "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			s.mediaFiles = int(f)
		}
	}
	if s.goroutines == 0 || s.heap == 0 {
		return s, fmt.Errorf("/metrics has no go_goroutines or go_memstats_heap_inuse_bytes")
	}
	return s, nil
}

func writeSoakCSV(t *testing.T, path string, samples []soakSample) {
	var b strings.Builder
	b.WriteString("seconds,rss_mib,heap_mib,goroutines,cpu_pct,segments,missed,failed\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "%.0f,%.1f,%.1f,%d,%.1f,%d,%d,%d\n", s.at.Seconds(), mib(s.rss), mib(s.heap), s.goroutines, s.cpuPct, s.segments, s.missed, s.failed)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
}

func median(ss []soakSample, f func(soakSample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func lowest(ss []soakSample, f func(soakSample) float64) float64 {
	m := f(ss[0])
	for _, s := range ss[1:] {
		m = min(m, f(s))
	}
	return m
}

func mib(b float64) float64 { return b / (1 << 20) }

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
