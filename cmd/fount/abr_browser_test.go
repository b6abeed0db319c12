//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// abrRendition is one rung of the ladder the ABR tests encode.
type abrRendition struct {
	name          string
	width, height int
	kbps          int // video, CBR
}

// abrLadder is encoded from one source with identical forced key frames
// (every 2 s), so that a player can switch at any segment boundary. 30 fps
// x264 ultrafast: the three encodes together take ~0.4 of one core here.
var abrLadder = []abrRendition{
	{"720p", 1280, 720, 2500},
	{"480p", 854, 480, 1200},
	{"360p", 640, 360, 600},
}

const (
	abrAudioKbps = 64
	// abrThrottle is the throughput the page is throttled to: below the
	// top rendition, above the others' video (720p 2.5 Mbit/s, 480p 1.2).
	abrThrottle = 1.5e6
	// Bounds of the test, in s from throttling / lifting the throttle to
	// the player playing a rendition below / above abrThrottle.
	abrMaxDown = 20
	abrMaxUp   = 30
)

// abrLevel is a rendition as a player lists it.
type abrLevel struct {
	ID               int     `json:"id"`
	Width            int     `json:"width"`
	Height           int     `json:"height"`
	Bandwidth        float64 `json:"bandwidth"`
	AverageBandwidth float64 `json:"averageBandwidth"`
}

// abrReport is the line testdata/browser/abr.mjs prints; times are s since
// the page started the player.
type abrReport struct {
	HarnessError      string     `json:"harnessError"`
	BrowserVersion    string     `json:"browserVersion"`
	PlayerVersion     string     `json:"playerVersion"`
	Levels            []abrLevel `json:"levels"`
	PlayingAt         *float64   `json:"playingAt"`
	TopAt             *float64   `json:"topAt"`
	ThrottledAt       *float64   `json:"throttledAt"`
	LevelAtThrottle   *abrLevel  `json:"levelAtThrottle"`
	DownAt            *float64   `json:"downAt"`
	UnthrottledAt     *float64   `json:"unthrottledAt"`
	LevelAtUnthrottle *abrLevel  `json:"levelAtUnthrottle"`
	UpAt              *float64   `json:"upAt"`
	SwitchDown        *float64   `json:"switchDown"`
	SwitchUp          *float64   `json:"switchUp"`
	DisplayedDownAt   *float64   `json:"displayedDownAt"`
	DisplayedUpAt     *float64   `json:"displayedUpAt"`
	Played            []struct {
		At float64 `json:"at"`
		abrLevel
	} `json:"played"`
	Displayed []struct {
		At     float64 `json:"at"`
		Width  int     `json:"width"`
		Height int     `json:"height"`
	} `json:"displayed"`
	Errors []struct {
		At      float64 `json:"at"`
		Fatal   bool    `json:"fatal"`
		Type    string  `json:"type"`
		Details string  `json:"details"`
		Reason  string  `json:"reason"`
		URL     string  `json:"url"`
	} `json:"errors"`
	HTTPErrors []struct {
		At     *float64 `json:"at"`
		Status int      `json:"status"`
		URL    string   `json:"url"`
	} `json:"httpErrors"`
	Stalls []struct {
		At          float64 `json:"at"`
		CurrentTime float64 `json:"currentTime"`
	} `json:"stalls"`
	VideoErrors            []any    `json:"videoErrors"`
	Advance                float64  `json:"advance"`
	Wall                   float64  `json:"wall"`
	AdvanceAfterUnthrottle float64  `json:"advanceAfterUnthrottle"`
	DroppedFrames          int      `json:"droppedFrames"`
	TotalFrames            int      `json:"totalFrames"`
	Console                []string `json:"console"`
}

// TestBrowserABR: a stream of three renditions, pushed to fount as one
// grouped push per rendition (rtmp://HOST/live/abr?variant=720p, 480p,
// 360p) by one ffmpeg encoding the ladder from one source, is served as a
// multivariant playlist at /live/abr/index.m3u8 with each rendition's media
// playlist at /live/abr/RENDITION/index.m3u8; and two independent ABR
// implementations in Debian's Chromium, hls.js and Shaka Player, adapt to
// it: each lists the three renditions with the playlist's RESOLUTION and
// BANDWIDTH, reaches the top one, plays one below 1.5 Mbit/s within 20 s
// of the page's network being throttled to 1.5 Mbit/s (Chrome DevTools
// Protocol), plays one above it again within 30 s of the throttle being
// lifted, and shows each switch in the picture, without a fatal error and
// with the clock advancing (testdata/browser/abr.mjs says how).
//
// The "static" sub-test plays the same checks on ffmpeg's own HLS output of
// the same ladder, served from a directory: it proves the harness and the
// players without fount. It costs another minute, so it runs only with
// FOUNT_ABR_STATIC=1 (go test -run TestBrowserABR/static).
func TestBrowserABR(t *testing.T) {
	if raceDetector {
		// It judges how fast two players switch while fount, three x264
		// encoders and Chromium share 2 cores; a fount several times
		// slower under the race detector makes the players stall and
		// the judgement the detector's (CI at 30f1779: Shaka's picture
		// never showed the switch up after three stalls, the encoders
		// on time). The ABR pipeline's races are checked by the ABR
		// end-to-end tests; .ci/run plays this one without -race.
		t.Skip("judged without the race detector: .ci/run runs it in its pass without -race")
	}
	lockEndToEndLogged(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	browserDeps(t)

	t.Run("fount", func(t *testing.T) {
		// fMP4 segments (the default) without LL-HLS: ABR over whole
		// segments, the players in their standard mode. In a trial before
		// fount served ABR (three plain fount streams of this ladder under
		// a hand-written multivariant playlist, 2026-12-02), both players
		// passed this procedure on classic fMP4; on LL-HLS both stalled,
		// hls.js leaving holes, and Shaka (which loads parts and preload
		// hints even with its lowLatencyMode off) estimated the bandwidth
		// from downloads paced by the live edge, did not switch back up in
		// 35 s, and once stopped on a 404 for a hinted part that was never
		// made (segN.10.m4s, hinted before the key frame closed the
		// segment): adaptation on LL playlists is a question of its own.
		o := startOrigin(t, func(c *config) { c.LowLatency = false })
		ctx, cancel := context.WithCancel(context.Background())
		outputs := []string{}
		for i, r := range abrLadder {
			outputs = append(outputs, "-map", fmt.Sprintf("[v%d]", i), "-map", "1:a")
			outputs = append(outputs, abrVideoArgs("", r)...)
			outputs = append(outputs, "-c:a", "aac", "-b:a", fmt.Sprint(abrAudioKbps, "k"), "-ac", "2",
				"-f", "flv", "rtmp://"+o.rtmp+"/live/abr?variant="+r.name)
		}
		enc := startABREncoder(ctx, t, outputs)
		defer func() { cancel(); enc.wait() }()
		playABR(t, o.url("/live/abr/index.m3u8"), enc)
	})

	t.Run("static", func(t *testing.T) {
		if os.Getenv("FOUNT_ABR_STATIC") == "" {
			t.Skip("the harness on ffmpeg's own HLS output: set FOUNT_ABR_STATIC=1")
		}
		dir := t.TempDir()
		outputs := []string{}
		var streamMap []string
		for i, r := range abrLadder {
			outputs = append(outputs, "-map", fmt.Sprintf("[v%d]", i))
			outputs = append(outputs, abrVideoArgs(fmt.Sprintf(":%d", i), r)...)
			streamMap = append(streamMap, fmt.Sprintf("v:%d,a:%d,name:%s", i, i, r.name))
		}
		for range abrLadder {
			outputs = append(outputs, "-map", "1:a")
		}
		outputs = append(outputs, "-c:a", "aac", "-b:a", fmt.Sprint(abrAudioKbps, "k"), "-ac", "2",
			"-f", "hls", "-hls_time", "2", "-hls_list_size", "6",
			"-hls_flags", "delete_segments+independent_segments+temp_file",
			"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
			"-master_pl_name", "index.m3u8", "-var_stream_map", strings.Join(streamMap, " "),
			filepath.Join(dir, "%v", "index.m3u8"))
		ctx, cancel := context.WithCancel(context.Background())
		enc := startABREncoder(ctx, t, outputs)
		defer func() { cancel(); enc.wait() }()

		// A player on another origin (abr.mjs's page), as with fount.
		files := http.FileServer(http.Dir(dir))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			w.Header().Set("Cache-Control", "no-cache")
			switch path.Ext(r.URL.Path) {
			case ".m3u8":
				w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			case ".mp4", ".m4s":
				w.Header().Set("Content-Type", "video/mp4")
			}
			files.ServeHTTP(w, r)
		}))
		defer srv.Close()
		playABR(t, srv.URL+"/index.m3u8", enc)
	})
}

// abrVideoArgs are the x264 options of rendition r; spec is an output
// stream specifier's suffix (":1" for the second video stream of an
// output with several, "" for an output with one). CBR with filler
// (nal-hrd=cbr), so that the bitrates are the ladder's.
func abrVideoArgs(spec string, r abrRendition) []string {
	k := fmt.Sprint(r.kbps, "k")
	return []string{
		"-c:v" + spec, "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-force_key_frames", "expr:gte(t,n_forced*2)",
		"-x264-params", "nal-hrd=cbr",
		"-b:v" + spec, k, "-maxrate:v" + spec, k, "-bufsize:v" + spec, k,
	}
}

// abrEncoder is the one ffmpeg encoding the ladder in real time; it keeps
// ffmpeg's progress (out_time) against the wall clock, to tell whether the
// machine kept up while a browser played.
type abrEncoder struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
	mu     sync.Mutex
	line   []byte
	points []abrProgress
}

type abrProgress struct {
	wall time.Time
	out  time.Duration
}

// Write takes ffmpeg's -progress lines.
func (e *abrEncoder) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.line = append(e.line, p...)
	for {
		i := bytes.IndexByte(e.line, '\n')
		if i < 0 {
			break
		}
		l := string(e.line[:i])
		e.line = e.line[i+1:]
		if v, ok := strings.CutPrefix(l, "out_time_us="); ok {
			if us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && us > 0 {
				e.points = append(e.points, abrProgress{time.Now(), time.Duration(us) * time.Microsecond})
			}
		}
	}
	return len(p), nil
}

// startABREncoder runs ffmpeg on a 1280x720 30 fps test picture and a sine
// in real time, split into the ladder's sizes as [v0] [v1] [v2], with the
// sine as input 1; outputs map and encode them.
func startABREncoder(ctx context.Context, t *testing.T, outputs []string) *abrEncoder {
	t.Helper()
	var filter []string
	split := "[0:v]split=" + fmt.Sprint(len(abrLadder))
	for i, r := range abrLadder {
		split += fmt.Sprintf("[s%d]", i)
		filter = append(filter, fmt.Sprintf("[s%d]scale=%d:%d[v%d]", i, r.width, r.height, i))
	}
	top := abrLadder[0]
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-progress", "pipe:1", "-stats_period", "0.5",
		"-re", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30", top.width, top.height),
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-filter_complex", split + ";" + strings.Join(filter, ";")}
	args = append(args, outputs...)
	e := &abrEncoder{stderr: &syncBuffer{}, done: make(chan error, 1)}
	e.cmd = exec.CommandContext(ctx, "ffmpeg", args...)
	e.cmd.Stdout, e.cmd.Stderr = e, e.stderr
	e.cmd.WaitDelay = 5 * time.Second
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.done <- e.cmd.Wait() }()
	return e
}

// wait returns once ffmpeg has exited (after its context was cancelled).
func (e *abrEncoder) wait() { err := <-e.done; e.done <- err }

// exited says whether ffmpeg has stopped, and how.
func (e *abrEncoder) exited() (bool, error) {
	select {
	case err := <-e.done:
		e.done <- err
		return true, err
	default:
		return false, nil
	}
}

// pace is ffmpeg's pace between from and to: media time encoded over
// wall-clock time (ffmpeg's own speed=), and how far at most it fell behind
// real time meanwhile, beyond its lag at the best moment before (-re
// catches up after a lag, which the speed over the whole would hide;
// -progress comes every 0.5 s, so under ~0.3 s is noise).
func (e *abrEncoder) pace(from, to time.Time) (speed float64, behind time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var p []abrProgress
	for _, x := range e.points {
		if !x.wall.Before(from) && !x.wall.After(to) {
			p = append(p, x)
		}
	}
	if len(p) < 2 {
		return 0, 0
	}
	first, last := p[0], p[len(p)-1]
	speed = (last.out - first.out).Seconds() / last.wall.Sub(first.wall).Seconds()
	var best time.Duration
	for i, x := range p {
		lag := x.wall.Sub(first.wall) - (x.out - first.out)
		if i == 0 || lag < best {
			best = lag
		}
		behind = max(behind, lag-best)
	}
	return speed, behind
}

// playABR waits for the multivariant playlist at mvURL to list the ladder
// and each rendition to have three segments, checks it, and plays it with
// hls.js, then with Shaka Player.
func playABR(t *testing.T, mvURL string, enc *abrEncoder) {
	t.Helper()
	mv, body := abrAwaitMultivariant(t, mvURL, enc, 30*time.Second)
	t.Logf("multivariant playlist:\n%s", body)
	want := abrCheckMultivariant(t, mvURL, mv)
	if t.Failed() {
		t.FailNow()
	}
	for _, r := range abrLadder {
		awaitPlaylist(t, want[r.name].url, 20*time.Second, r.name+" with three segments", func(p *m3u8.MediaPlaylist, _ []byte) bool {
			return p.Count() >= 3
		})
	}
	for _, player := range []string{"hlsjs", "shaka"} {
		t.Run(player, func(t *testing.T) {
			// A run in which the encoders themselves fell behind real time
			// by over half a second (the machine too busy) cannot judge the
			// player's switching:
			// it is run once more, and judged whatever happens then.
			for attempt := 1; ; attempt++ {
				start := time.Now()
				r, line := runNodeScript[abrReport](t, 3*time.Minute, "abr.mjs", mvURL, player,
					fmt.Sprint(int(abrThrottle)), "20", fmt.Sprint(abrMaxDown+5), fmt.Sprint(abrMaxUp+5), "false")
				speed, behind := enc.pace(start, time.Now())
				t.Logf("%s %s in chromium %s, %s: switched down %s after throttling to %.1f Mbit/s (picture %s), up %s after lifting it (picture %s); ffmpeg's speed %.3fx, at most %s behind real time",
					player, r.PlayerVersion, r.BrowserVersion, time.Since(start).Round(time.Millisecond),
					abrSecs(r.SwitchDown), abrThrottle/1e6, abrSince(r.DisplayedDownAt, r.ThrottledAt),
					abrSecs(r.SwitchUp), abrSince(r.DisplayedUpAt, r.UnthrottledAt), speed, behind.Round(10*time.Millisecond))
				if exited, err := enc.exited(); exited {
					t.Fatalf("ffmpeg ended during playback: %v\n%s", err, enc.stderr.String())
				}
				// Half a second: CI at 8fa08c0 (without -race) had
				// Shaka switch down 23.6 s after throttling while the
				// encoders ran 0.96 s behind, with seven stalls.
				if behind > 500*time.Millisecond {
					t.Logf("ffmpeg fell %s behind real time while the browser played: the machine was too busy for the ladder", behind.Round(10*time.Millisecond))
					if attempt == 1 {
						t.Logf("running %s once more", player)
						continue
					}
				}
				if !checkABR(t, r, want) {
					t.Logf("abr.mjs report: %s", line)
				}
				return
			}
		})
	}
}

// abrAwaitMultivariant polls url until it is a multivariant playlist that
// lists as many variants as the ladder has renditions.
func abrAwaitMultivariant(t *testing.T, url string, enc *abrEncoder, timeout time.Duration) (*m3u8.MasterPlaylist, []byte) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []byte
	var lastErr error
	for time.Now().Before(deadline) {
		if exited, err := enc.exited(); exited {
			t.Fatalf("ffmpeg ended before the multivariant playlist was there: %v\n%s", err, enc.stderr.String())
		}
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last, lastErr = b, nil
			if resp.StatusCode != http.StatusOK {
				lastErr = fmt.Errorf("HTTP %d", resp.StatusCode)
			} else if p, lt, err := m3u8.DecodeFrom(bytes.NewReader(b), true); err != nil {
				lastErr = err
			} else if lt != m3u8.MASTER {
				lastErr = fmt.Errorf("a media playlist, not a multivariant one")
			} else if mv := p.(*m3u8.MasterPlaylist); len(abrStreamVariants(mv)) >= len(abrLadder) {
				return mv, b
			} else {
				lastErr = fmt.Errorf("%d variants", len(abrStreamVariants(mv)))
			}
		} else {
			lastErr = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for a multivariant playlist of %d renditions at %s (last: %v):\n%s", timeout, len(abrLadder), url, lastErr, last)
	return nil, nil
}

// abrStreamVariants are mv's EXT-X-STREAM-INF variants (not I-frame ones).
func abrStreamVariants(mv *m3u8.MasterPlaylist) []*m3u8.Variant {
	var vs []*m3u8.Variant
	for _, v := range mv.Variants {
		if !v.Iframe {
			vs = append(vs, v)
		}
	}
	return vs
}

// abrVariant is a rendition as the multivariant playlist lists it.
type abrVariant struct {
	url                     string
	width, height           int
	bandwidth, avgBandwidth float64
}

// abrCheckMultivariant: one variant per rendition, at RENDITION/index.m3u8
// beside the multivariant playlist, with the rendition's RESOLUTION, a
// BANDWIDTH near its bitrate (video + audio; at least 0.9x, at most 2x),
// BANDWIDTH falling with the resolution, and the throttle between the top
// rendition and the bottom one. It returns them by rendition name.
func abrCheckMultivariant(t *testing.T, mvURL string, mv *m3u8.MasterPlaylist) map[string]abrVariant {
	t.Helper()
	base, err := url.Parse(mvURL)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]abrVariant{}
	vs := abrStreamVariants(mv)
	if len(vs) != len(abrLadder) {
		t.Errorf("%d variants, want %d", len(vs), len(abrLadder))
	}
	for _, v := range vs {
		u, err := base.Parse(v.URI)
		if err != nil {
			t.Errorf("variant URI %q: %v", v.URI, err)
			continue
		}
		dir := strings.TrimSuffix(path.Dir(base.Path), "/") + "/"
		name, ok := strings.CutPrefix(path.Dir(u.Path), dir)
		if !ok || path.Base(u.Path) != "index.m3u8" || strings.Contains(name, "/") {
			t.Errorf("variant URI %q is %s, want %sRENDITION/index.m3u8", v.URI, u.Path, dir)
			continue
		}
		var w, h int
		fmt.Sscanf(v.Resolution, "%dx%d", &w, &h)
		got[name] = abrVariant{url: u.String(), width: w, height: h, bandwidth: float64(v.Bandwidth), avgBandwidth: float64(v.AverageBandwidth)}
	}
	prev := 0.0
	for i, r := range abrLadder {
		v, ok := got[r.name]
		if !ok {
			t.Errorf("no variant for rendition %s", r.name)
			continue
		}
		if v.width != r.width || v.height != r.height {
			t.Errorf("%s: RESOLUTION=%dx%d, want %dx%d", r.name, v.width, v.height, r.width, r.height)
		}
		nominal := float64(r.kbps+abrAudioKbps) * 1000
		if v.bandwidth < 0.9*nominal || v.bandwidth > 2*nominal {
			t.Errorf("%s: BANDWIDTH=%.0f for %d kbit/s of video and %d of audio, want %.0f-%.0f", r.name, v.bandwidth, r.kbps, abrAudioKbps, 0.9*nominal, 2*nominal)
		}
		if i > 0 && v.bandwidth >= prev {
			t.Errorf("%s: BANDWIDTH=%.0f, not below the %s rendition's %.0f", r.name, v.bandwidth, abrLadder[i-1].name, prev)
		}
		prev = v.bandwidth
	}
	if top, bottom := got[abrLadder[0].name], got[abrLadder[len(abrLadder)-1].name]; top.bandwidth <= abrThrottle || bottom.bandwidth >= abrThrottle {
		t.Errorf("the throttle (%.0f bit/s) must lie between the top rendition's BANDWIDTH (%.0f) and the bottom one's (%.0f)", abrThrottle, top.bandwidth, bottom.bandwidth)
	}
	return got
}

// checkABR judges an abr.mjs report; it returns false when it failed.
func checkABR(t *testing.T, r abrReport, want map[string]abrVariant) bool {
	t.Helper()
	failed := false
	fail := func(format string, args ...any) { t.Errorf(format, args...); failed = true }
	if r.HarnessError != "" {
		fail("abr.mjs: %s", r.HarnessError)
	}

	// The renditions, as the player lists them: the multivariant's.
	levels := append([]abrLevel(nil), r.Levels...)
	sort.Slice(levels, func(i, j int) bool { return levels[i].Bandwidth > levels[j].Bandwidth })
	if len(levels) != len(abrLadder) {
		fail("the player lists %d renditions, want %d: %+v", len(levels), len(abrLadder), r.Levels)
	} else {
		for i, rd := range abrLadder {
			l, w := levels[i], want[rd.name]
			if l.Width != rd.width || l.Height != rd.height {
				fail("the player's rendition %d by bandwidth is %dx%d, want %dx%d (%s)", i+1, l.Width, l.Height, rd.width, rd.height, rd.name)
			}
			// Shaka takes AVERAGE-BANDWIDTH when there is one. fount
			// re-measures both from the segments as they come (the
			// playlist changes when one moves by a tenth), so the
			// player's copy may be newer than the test's.
			near := func(a, b float64) bool { return b > 0 && math.Abs(a-b) <= 0.2*b }
			if !near(l.Bandwidth, w.bandwidth) && !near(l.Bandwidth, w.avgBandwidth) {
				fail("the player has %s at %.0f bit/s, the playlist says BANDWIDTH=%.0f AVERAGE-BANDWIDTH=%.0f", rd.name, l.Bandwidth, w.bandwidth, w.avgBandwidth)
			}
		}
	}

	if r.PlayingAt == nil {
		fail("never playing")
	}
	if r.TopAt == nil {
		fail("the top rendition never played before throttling (played: %+v)", r.Played)
	} else if r.LevelAtThrottle == nil || r.LevelAtThrottle.Bandwidth <= abrThrottle {
		fail("playing %+v when throttled, want a rendition above %.0f bit/s", r.LevelAtThrottle, abrThrottle)
	}
	if r.ThrottledAt != nil {
		switch {
		case r.SwitchDown == nil:
			fail("no switch below %.1f Mbit/s within %d s of throttling (played: %+v)", abrThrottle/1e6, abrMaxDown+5, r.Played)
		case *r.SwitchDown > abrMaxDown:
			fail("switched below %.1f Mbit/s %.3f s after throttling, want <= %d s", abrThrottle/1e6, *r.SwitchDown, abrMaxDown)
		}
		if r.DownAt != nil && r.DisplayedDownAt == nil {
			fail("the picture never showed the rendition switched down to (displayed: %+v)", r.Displayed)
		}
	}
	if r.UnthrottledAt != nil {
		switch {
		case r.SwitchUp == nil:
			fail("no switch back above %.1f Mbit/s within %d s of lifting the throttle (played: %+v)", abrThrottle/1e6, abrMaxUp+5, r.Played)
		case *r.SwitchUp > abrMaxUp:
			fail("switched back above %.1f Mbit/s %.3f s after lifting the throttle, want <= %d s", abrThrottle/1e6, *r.SwitchUp, abrMaxUp)
		}
		if r.UpAt != nil && r.DisplayedUpAt == nil {
			fail("the picture never showed the rendition switched back up to (displayed: %+v)", r.Displayed)
		}
	}

	for _, e := range r.Errors {
		if e.Fatal {
			fail("fatal player error at %.3f s: %s %s %s %s", e.At, e.Type, e.Details, e.Reason, e.URL)
		} else {
			t.Logf("non-fatal player error at %.3f s: %s %s %s %s", e.At, e.Type, e.Details, e.Reason, e.URL)
		}
	}
	for _, e := range r.HTTPErrors {
		t.Logf("HTTP %d at %s: %s", e.Status, abrSecs(e.At), e.URL)
	}
	for _, e := range r.VideoErrors {
		fail("video element error: %v", e)
	}
	// Throttled below the rendition playing, a player may run dry before it
	// switches: a stall is logged, not failed; the clock must advance.
	for _, s := range r.Stalls {
		t.Logf("stall at %.3f s (currentTime %.3f)", s.At, s.CurrentTime)
	}
	if r.Advance < r.Wall-6 {
		fail("currentTime advanced %.3f s in %.3f s of playback, want >= %.3f", r.Advance, r.Wall, r.Wall-6)
	}
	if r.UpAt != nil && r.AdvanceAfterUnthrottle < 2 {
		fail("currentTime advanced %.3f s after the switch back up, want >= 2 s", r.AdvanceAfterUnthrottle)
	}
	t.Logf("played: %s; displayed: %s; %d of %d frames dropped", abrPlayedList(r), abrDisplayedList(r), r.DroppedFrames, r.TotalFrames)
	return !failed
}

func abrSecs(d *float64) string {
	if d == nil {
		return "never"
	}
	return fmt.Sprintf("%.3f s", *d)
}

func abrSince(at, from *float64) string {
	if at == nil || from == nil {
		return "never"
	}
	return fmt.Sprintf("%.3f s", *at-*from)
}

func abrPlayedList(r abrReport) string {
	var b strings.Builder
	for i, p := range r.Played {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%dp@%.3f", p.Height, p.At)
	}
	return b.String()
}

func abrDisplayedList(r abrReport) string {
	var b strings.Builder
	for i, d := range r.Displayed {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%dp@%.3f", d.Height, d.At)
	}
	return b.String()
}
