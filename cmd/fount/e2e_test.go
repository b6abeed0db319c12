package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"go.uber.org/goleak"

	"github.com/fount-live/fount/playlist"
)

// requireTool skips a test whose peer is missing on a laptop, and fails it
// in CI, where .ci/run installs every peer.
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed, but CI must have it (see .ci/run)", name)
		}
		t.Skipf("%s not installed", name)
	}
}

var (
	sourceOnce sync.Once
	sourceDir  string
	sourceErr  error
	noBOnce    sync.Once
	noBErr     error
)

// source returns a recorded test stream: x264 with B-frames (so PTS != DTS)
// and a 2 s GOP at 30 fps, plus 48 kHz stereo AAC, 12 s long. It is made
// once per test binary so that pushes can use -c copy and cost little CPU.
func source(t testing.TB) string {
	t.Helper()
	requireTool(t, "ffmpeg")
	sourceOnce.Do(func() {
		sourceDir, sourceErr = os.MkdirTemp("", "fount-e2e-src-")
		if sourceErr != nil {
			return
		}
		sourceErr = encodeSource(filepath.Join(sourceDir, "show.flv"), 2)
	})
	if sourceErr != nil {
		t.Fatal(sourceErr)
	}
	return filepath.Join(sourceDir, "show.flv")
}

// sourceNoBFrames is source's stream without B-frames (PTS == DTS), for
// what hls.js 1.7.4 mishandles with them: 608 captions in coded order
// (TestBrowserCaptions).
func sourceNoBFrames(t testing.TB) string {
	t.Helper()
	dir := filepath.Dir(source(t))
	noBOnce.Do(func() { noBErr = encodeSource(filepath.Join(dir, "nob.flv"), 0) })
	if noBErr != nil {
		t.Fatal(noBErr)
	}
	return filepath.Join(dir, "nob.flv")
}

// encodeSource writes the test stream to file with bframes B-frames.
func encodeSource(file string, bframes int) error {
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
		"-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", strconv.Itoa(bframes), "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-ac", "2", "-b:a", "96k", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("making the test source %s: %v\n%s", file, err, out)
	}
	return nil
}

func TestMain(m *testing.M) {
	// Every goroutine fount starts must be gone once the tests are done
	// (each origin is stopped at its test's cleanup).
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if sourceDir != "" {
			os.RemoveAll(sourceDir)
		}
		os.Exit(code)
	}))
}

// origin is a fount started in-process on free loopback ports.
type origin struct {
	rtmp, http, api, rtmps string
	https                  string // HTTPS for viewers: --https-addr, or http when it speaks TLS
	reg                    *playlist.Registry
	cancel                 context.CancelFunc
	done                   chan error
	logs                   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// classic is HLS as before LL-HLS: MPEG-TS segments, no parts.
func classic(c *config) {
	c.SegmentFormat = "ts"
	c.LowLatency = false
}

// startClassic starts an origin serving classic HLS, then applies mod.
func startClassic(t testing.TB, mod func(*config)) *origin {
	return startOrigin(t, func(c *config) {
		classic(c)
		if mod != nil {
			mod(c)
		}
	})
}

func startOrigin(t testing.TB, mod func(*config)) *origin {
	t.Helper()
	cfg := defaultConfig()
	cfg.RTMPAddr, cfg.HTTPAddr, cfg.APIAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	// WebRTC's default port is fixed: tests that want it set their own.
	cfg.WebRTCUDPAddr = ""
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	o := &origin{done: make(chan error, 1), logs: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	ready := make(chan struct{})
	log := slog.New(slog.NewTextHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		o.done <- serve(ctx, cfg, log, func(r running) {
			o.rtmp, o.http, o.api, o.rtmps, o.https, o.reg = r.rtmpAddr, r.httpAddr, r.apiAddr, r.rtmpsAddr, r.httpsAddr, r.reg
			close(ready)
		})
	}()
	select {
	case <-ready:
	case err := <-o.done:
		t.Fatalf("fount did not start: %v", err)
	}
	t.Cleanup(func() {
		o.stop(t)
		if t.Failed() {
			t.Logf("fount log:\n%s", o.logs.String())
		}
	})
	return o
}

// stop shuts fount down as SIGTERM does and checks it takes under 5 s.
func (o *origin) stop(t testing.TB) {
	if o.cancel == nil {
		return
	}
	start := time.Now()
	o.cancel()
	o.cancel = nil
	select {
	case err := <-o.done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("shutdown took %s, want < 5 s", d)
		}
	case <-time.After(10 * time.Second):
		t.Error("fount did not stop within 10 s")
	}
}

func (o *origin) url(path string) string { return "http://" + o.http + path }

// push runs ffmpeg publishing to rtmp://ORIGIN/live/name; extra goes
// between the input and output options.
func (o *origin) push(ctx context.Context, t *testing.T, name string, input []string, extra ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, input...)
	args = append(args, extra...)
	args = append(args, "-f", "flv", "rtmp://"+o.rtmp+"/live/"+name)
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stderr = &syncBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func (o *origin) pushWait(t *testing.T, name string, input []string, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := o.push(ctx, t, name, input, extra...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ffmpeg push: %v\n%s", err, cmd.Stderr.(*syncBuffer).String())
	}
}

func realtime(src string) []string { return []string{"-re", "-i", src} }

func httpGet(t *testing.T, url string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, b, resp.Header
}

func segments(p *m3u8.MediaPlaylist) []*m3u8.MediaSegment {
	return p.Segments[:p.Count()]
}

func totalDuration(p *m3u8.MediaPlaylist) float64 {
	var d float64
	for _, s := range segments(p) {
		d += s.Duration
	}
	return d
}

// awaitPlaylist polls until cond holds for the parsed playlist; polling is
// how a player sees it too.
func awaitPlaylist(t *testing.T, url string, timeout time.Duration, what string, cond func(*m3u8.MediaPlaylist, []byte) bool) (*m3u8.MediaPlaylist, []byte) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []byte
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = body
			if resp.StatusCode == 200 {
				if p, lt, err := m3u8.DecodeFrom(bytes.NewReader(body), true); err == nil && lt == m3u8.MEDIA && cond(p.(*m3u8.MediaPlaylist), body) {
					return p.(*m3u8.MediaPlaylist), body
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last playlist:\n%s", timeout, what, last)
	return nil, nil
}

// targetDuration reads EXT-X-TARGETDURATION as written (grafov raises it
// to ceil(EXTINF) while parsing).
func targetDuration(t *testing.T, body []byte) int {
	t.Helper()
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "#EXT-X-TARGETDURATION:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("bad target duration %q", l)
			}
			return n
		}
	}
	t.Fatalf("no EXT-X-TARGETDURATION in\n%s", body)
	return 0
}

type probePacket struct {
	CodecType string `json:"codec_type"`
	PTSTime   string `json:"pts_time"`
	DTSTime   string `json:"dts_time"`
	Flags     string `json:"flags"`
	Duration  string `json:"duration_time"`
}

type probeResult struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
	} `json:"streams"`
	Packets []probePacket `json:"packets"`
}

// probe runs ffprobe on a segment file and returns its streams and packets.
func probe(t *testing.T, file string) probeResult {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_packets",
		"-show_entries", "packet=codec_type,pts_time,dts_time,flags,duration_time:stream=codec_type,codec_name",
		"-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var r probeResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func f64(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// segInfo is what the checks need from one downloaded segment.
type segInfo struct {
	uri                string
	hasVideo, hasAudio bool
	firstVideoKey      bool
	minPTS, maxPTS     float64 // video (or audio when audio-only)
	frameDur           float64
	audioEnd           float64 // the last audio frame's PTS plus its duration; 0 without audio
}

// fetchSegments downloads every listed segment, checks each decodes on its
// own with ffmpeg, and probes it.
func fetchSegments(t *testing.T, o *origin, base string, p *m3u8.MediaPlaylist) []segInfo {
	t.Helper()
	dir := t.TempDir()
	var out []segInfo
	for _, s := range segments(p) {
		code, data, hdr := httpGet(t, o.url(base+s.URI))
		if code != 200 || hdr.Get("Content-Type") != "video/mp2t" || len(data) == 0 || len(data)%188 != 0 {
			t.Fatalf("segment %s: %d %q %d bytes", s.URI, code, hdr.Get("Content-Type"), len(data))
		}
		file := filepath.Join(dir, s.URI)
		os.WriteFile(file, data, 0o644)
		if out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("segment %s does not decode cleanly on its own: %v\n%s", s.URI, err, out)
		}
		si := probeFile(t, file, s.URI)
		out = append(out, si)
	}
	return out
}

// checkContinuity verifies a player's view: each segment starts on a
// keyframe, has the expected tracks, and its first PTS follows the previous
// segment's last PTS within one frame duration.
func checkContinuity(t *testing.T, segs []segInfo, wantVideo, wantAudio bool) {
	t.Helper()
	for i, s := range segs {
		if s.hasVideo != wantVideo || s.hasAudio != wantAudio {
			t.Errorf("%s: video %v audio %v, want %v %v", s.uri, s.hasVideo, s.hasAudio, wantVideo, wantAudio)
		}
		if wantVideo && !s.firstVideoKey {
			t.Errorf("%s does not start with a keyframe", s.uri)
		}
		if i == 0 {
			continue
		}
		prev := segs[i-1]
		gap := s.minPTS - (prev.maxPTS + prev.frameDur)
		if math.Abs(gap) > prev.frameDur+0.001 {
			t.Errorf("PTS gap between %s and %s: %.4f s (next starts %.4f, previous ends %.4f + %.4f)",
				prev.uri, s.uri, gap, s.minPTS, prev.maxPTS, prev.frameDur)
		}
	}
}

// checkAudioEnds checks that each segment's audio ends where its video does
// (the next segment's keyframe is presented), within one AAC frame at
// 48 kHz (and 2 ms of millisecond timestamps): with B-frames the video ends
// a composition delay after the keyframe's DTS, and a player that waits
// for both tracks at a boundary (hls.js before an interstitial) stalls if
// the audio ends short of it.
func checkAudioEnds(t *testing.T, segs []segInfo) {
	t.Helper()
	for _, s := range segs {
		videoEnd := s.maxPTS + s.frameDur
		d := s.audioEnd - videoEnd
		t.Logf("%s: audio ends %+.1f ms from the video's end (%.3f s)", s.uri, d*1000, videoEnd)
		if d < -0.002 || d > 1024.0/48000+0.002 {
			t.Errorf("%s: audio ends at %.4f s, video at %.4f s", s.uri, s.audioEnd, videoEnd)
		}
	}
}

// checkTargetDuration applies RFC 8216 4.3.3.1 to a playlist as written.
func checkTargetDuration(t *testing.T, p *m3u8.MediaPlaylist, body []byte) {
	t.Helper()
	td := targetDuration(t, body)
	for _, s := range segments(p) {
		if int(math.Round(s.Duration)) > td {
			t.Errorf("EXTINF %.3f rounds above TARGETDURATION %d", s.Duration, td)
		}
	}
}

// (a) x264 with B-frames + AAC for 12 s: every segment is a clean,
// keyframe-started, A/V segment and together they are the whole push.
func TestE2EPushAndPlay(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	o := startClassic(t, func(c *config) { c.PlaylistSize = 10 })
	o.pushWait(t, "mystream", realtime(src), "-c", "copy")

	url := o.url("/live/mystream/index.m3u8")
	p, body := awaitPlaylist(t, url, 10*time.Second, "the whole 12 s push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 11.9
	})
	if p.SeqNo != 0 {
		t.Errorf("media sequence %d, want 0", p.SeqNo)
	}
	if d := totalDuration(p); d < 11.9 || d > 12.1 {
		t.Errorf("EXTINFs add up to %.3f s, want 12 s\n%s", d, body)
	}
	if n := len(segments(p)); n < 5 || n > 7 {
		t.Errorf("%d segments for 12 s at a 2 s target", n)
	}
	for _, tag := range []string{"#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-VERSION:"} {
		if !bytes.Contains(body, []byte(tag)) {
			t.Errorf("playlist lacks %s", tag)
		}
	}
	checkTargetDuration(t, p, body)
	segs := fetchSegments(t, o, "/live/mystream/", p)
	checkContinuity(t, segs, true, true)
	checkAudioEnds(t, segs[:len(segs)-1])

	// A player reading the whole playlist decodes it without a warning.
	out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "warning", "-i", url, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg reading the playlist: %v\n%s", err, out)
	}
}

// (b) The encoder drops and comes back within the reconnect window: the
// playlist goes on with a discontinuity and old segments stay served.
func TestE2EReconnect(t *testing.T) {
	src := source(t)
	o := startClassic(t, func(c *config) { c.PlaylistSize = 10 })
	input := []string{"-re", "-t", "5", "-i", src}
	o.pushWait(t, "re", input, "-c", "copy")
	url := o.url("/live/re/index.m3u8")
	first, _ := awaitPlaylist(t, url, 10*time.Second, "the first push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 4.9
	})
	n1 := len(segments(first))

	o.pushWait(t, "re", input, "-c", "copy")
	p, body := awaitPlaylist(t, url, 10*time.Second, "the second push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 9.8
	})
	segs := segments(p)
	if p.SeqNo != 0 {
		t.Fatalf("media sequence restarted or jumped: %d", p.SeqNo)
	}
	for i, s := range segs {
		want := fmt.Sprintf("seg%d.ts", i)
		if s.URI != want {
			t.Errorf("segment %d is %s, want %s (numbering must go on)", i, s.URI, want)
		}
		if s.Discontinuity != (i == n1) {
			t.Errorf("segment %s discontinuity %v, want it only on the first segment of the second push (%d)\n%s", s.URI, s.Discontinuity, n1, body)
		}
	}
	if bytes.Contains(body, []byte("ENDLIST")) {
		t.Error("ENDLIST while within the reconnect window")
	}
	for _, s := range segs[:n1] {
		if code, _, _ := httpGet(t, o.url("/live/re/"+s.URI)); code != 200 {
			t.Errorf("old segment %s: %d", s.URI, code)
		}
	}
}

// (c) Timestamps past 0xFFFFFF ms use RTMP's extended timestamp, which
// go-rtmp mis-reads in type-3 chunks; the chunk filter fixes it.
func TestE2EExtendedTimestamp(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	o := startClassic(t, nil)
	o.pushWait(t, "ext", []string{"-re", "-t", "6", "-i", src}, "-c", "copy", "-output_ts_offset", "20000")
	p, body := awaitPlaylist(t, o.url("/live/ext/index.m3u8"), 10*time.Second, "the extended-timestamp push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 5.9
	})
	checkTargetDuration(t, p, body)
	segs := fetchSegments(t, o, "/live/ext/", p)
	checkContinuity(t, segs, true, true)
	if segs[0].minPTS < 20000 {
		t.Errorf("first PTS %.3f s, want >= 20000 s (the offset was lost)", segs[0].minPTS)
	}
}

// (d) Audio-only streams are cut by duration; video-only streams work too.
func TestE2ESingleTrack(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	o := startClassic(t, func(c *config) { c.PlaylistSize = 10 })
	cases := []struct {
		name         string
		opts         []string
		video, audio bool
	}{
		{"audioonly", []string{"-vn", "-c:a", "copy"}, false, true},
		{"videoonly", []string{"-an", "-c:v", "copy"}, true, false},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := o.push(ctx, t, c.name, []string{"-re", "-t", "6", "-i", src}, c.opts...)
			if err := cmd.Wait(); err != nil {
				t.Errorf("push %s: %v %s", c.name, err, cmd.Stderr.(*syncBuffer).String())
			}
		}()
	}
	wg.Wait()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, body := awaitPlaylist(t, o.url("/live/"+c.name+"/index.m3u8"), 10*time.Second, c.name, func(p *m3u8.MediaPlaylist, _ []byte) bool {
				return totalDuration(p) >= 5.9
			})
			checkTargetDuration(t, p, body)
			if n := len(segments(p)); n < 3 {
				t.Errorf("%d segments for 6 s", n)
			}
			for _, s := range segments(p)[:p.Count()-1] {
				if s.Duration < 1.9 || s.Duration > 2.2 {
					t.Errorf("segment %s lasts %.3f s, want about 2 s", s.URI, s.Duration)
				}
			}
			checkContinuity(t, fetchSegments(t, o, "/live/"+c.name+"/", p), c.video, c.audio)
		})
	}
}

// A second publisher on a live name is refused; the first carries on.
func TestE2ESecondPublisherRefused(t *testing.T) {
	src := source(t)
	o := startClassic(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := o.push(ctx, t, "busy", []string{"-re", "-t", "8", "-i", src}, "-c", "copy")
	url := o.url("/live/busy/index.m3u8")
	awaitPlaylist(t, url, 10*time.Second, "the first publisher", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	second := o.push(ctx, t, "busy", []string{"-re", "-t", "8", "-i", src}, "-c", "copy")
	if err := second.Wait(); err == nil {
		t.Fatal("second publisher on a live name was accepted")
	}
	if !strings.Contains(o.logs.String(), "already being published") {
		t.Errorf("no clear log line for the refused publish")
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first publisher failed: %v %s", err, first.Stderr.(*syncBuffer).String())
	}
	awaitPlaylist(t, url, 10*time.Second, "the first publisher's whole push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 7.9
	})
}

// SIGTERM ends every playlist with EXT-X-ENDLIST, here read back from the
// directory storage as a plain file server would.
func TestE2EShutdownEndsPlaylistsOnDisk(t *testing.T) {
	src := source(t)
	dir := t.TempDir()
	o := startClassic(t, func(c *config) { c.Storage = "dir:" + dir })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	push := o.push(ctx, t, "disk", []string{"-re", "-t", "30", "-i", src}, "-c", "copy")
	p, _ := awaitPlaylist(t, o.url("/live/disk/index.m3u8"), 10*time.Second, "two segments", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 2 })
	o.stop(t)
	push.Wait()

	body, err := os.ReadFile(filepath.Join(dir, "live", "disk", "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(body, []byte("#EXT-X-ENDLIST\n")) {
		t.Fatalf("playlist on disk after shutdown has no ENDLIST:\n%s", body)
	}
	for _, s := range segments(p) {
		if _, err := os.Stat(filepath.Join(dir, "live", "disk", s.URI)); err != nil {
			t.Errorf("listed segment not on disk: %v", err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "live", "disk"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	sort.Strings(names)
	t.Logf("on disk: %v", names)
}

// A bad flag exits 2 with one line; a taken port exits 1.
func TestCLIErrors(t *testing.T) {
	ctx := context.Background()
	if code := run(ctx, []string{"serve", "--no-such-flag"}); code != exitUsage {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if code := run(ctx, []string{"serve", "--segment-duration", "0s"}); code != exitUsage {
		t.Errorf("bad value: exit %d, want 2", code)
	}
	t.Setenv("FOUNT_PLAYLIST_SIZE", "many")
	if code := run(ctx, []string{"serve"}); code != exitUsage {
		t.Errorf("bad env value: exit %d, want 2", code)
	}
	t.Setenv("FOUNT_PLAYLIST_SIZE", "")
	os.Unsetenv("FOUNT_PLAYLIST_SIZE")

	o := startClassic(t, nil)
	if code := run(ctx, []string{"serve", "--rtmp-addr", o.rtmp, "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--webrtc-udp-addr", ""}); code != exitError {
		t.Errorf("taken port: exit %d, want 1", code)
	}
}
