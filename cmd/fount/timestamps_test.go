package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	dto "github.com/prometheus/client_model/go"

	"github.com/fount-live/fount/playlist"
)

var (
	altSourceOnce sync.Once
	altSourcePath string
	altSourceErr  error
)

// altSource is a second clip for a mid-stream codec change: another
// resolution (320x240) and profile (main), same GOP, frame rate and audio
// as source(), 6 s long.
func altSource(t testing.TB) string {
	t.Helper()
	dir := filepath.Dir(source(t))
	altSourceOnce.Do(func() {
		altSourcePath = filepath.Join(dir, "alt.flv")
		out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
			"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000",
			"-t", "6", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main",
			"-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "2", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-ac", "2", "-b:a", "96k", altSourcePath).CombinedOutput()
		if err != nil {
			altSourceErr = fmt.Errorf("making the second test source: %v\n%s", err, out)
		}
	})
	if altSourceErr != nil {
		t.Fatal(altSourceErr)
	}
	return altSourcePath
}

// plSeg is one segment of a media playlist as written, with the
// EXT-X-MAP in force for it and whether EXT-X-DISCONTINUITY precedes it.
type plSeg struct {
	uri, mapURI string
	dur         float64
	disc        bool
}

// parsePlaylist reads the segments of a media playlist; it is written here
// rather than taken from a library because none at hand keeps the
// EXT-X-MAP of each segment.
func parsePlaylist(body []byte) []plSeg {
	var out []plSeg
	var cur plSeg
	mapURI := ""
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			_, v, _ := strings.Cut(l, `URI="`)
			mapURI, _, _ = strings.Cut(v, `"`)
		case l == "#EXT-X-DISCONTINUITY":
			cur.disc = true
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			cur.dur, _ = strconv.ParseFloat(v, 64)
		case l != "" && !strings.HasPrefix(l, "#"):
			cur.uri, cur.mapURI = l, mapURI
			out = append(out, cur)
			cur = plSeg{}
		}
	}
	return out
}

// tsSeg is what a timestamp case checks in one downloaded segment.
type tsSeg struct {
	plSeg
	start              float64 // cumulative EXTINF before it
	hasVideo, hasAudio bool
	width              int
	firstKey           bool
	minPTS, maxPTS     float64 // video, or audio without video
	frameDur           float64
	ptsNotDTS          bool // a video packet has PTS != DTS
	ptsReordered       bool // video PTS not increasing in decode order (B-frames)
}

// tsPTSPeriod is MPEG-TS's 33-bit 90 kHz PTS period in seconds (2^32 ms
// is exactly 45 of them, so an RTMP wrap is also a PTS wrap in TS).
const tsPTSPeriod = float64(1<<33) / 90000

// fetchProbe downloads every segment of the stream (with its init for
// fMP4) and probes it with ffprobe.
func fetchProbe(t *testing.T, o *origin, base string, segs []plSeg) []tsSeg {
	t.Helper()
	dir := t.TempDir()
	inits := map[string][]byte{}
	var out []tsSeg
	var start float64
	for i, s := range segs {
		code, data, _ := httpGet(t, o.url(base+s.uri))
		if code != 200 || len(data) == 0 {
			t.Fatalf("segment %s: %d, %d bytes", s.uri, code, len(data))
		}
		if s.mapURI != "" {
			in, ok := inits[s.mapURI]
			if !ok {
				code, in, _ = httpGet(t, o.url(base+s.mapURI))
				if code != 200 {
					t.Fatalf("init %s: %d", s.mapURI, code)
				}
				inits[s.mapURI] = in
			}
			data = append(append([]byte{}, in...), data...)
		}
		file := filepath.Join(dir, fmt.Sprintf("%03d-%s", i, s.uri))
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, probeSeg(t, file, s, start))
		start += s.dur
	}
	return out
}

func probeSeg(t *testing.T, file string, s plSeg, start float64) tsSeg {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_packets",
		"-show_entries", "packet=codec_type,pts_time,dts_time,flags,duration_time:stream=codec_type,codec_name,width",
		"-of", "compact=p=0:nk=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", s.uri, err)
	}
	si := tsSeg{plSeg: s, start: start, minPTS: math.Inf(1), maxPTS: math.Inf(-1)}
	type pkt struct {
		kind          string
		pts, dts, dur float64
		key           bool
	}
	var pkts []pkt
	var declVideo, declAudio bool
	for _, l := range strings.Split(string(out), "\n") {
		kv := map[string]string{}
		for _, f := range strings.Split(l, "|") {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		if _, ok := kv["pts_time"]; ok {
			pkts = append(pkts, pkt{kv["codec_type"], f64(kv["pts_time"]), f64(kv["dts_time"]), f64(kv["duration_time"]), strings.HasPrefix(kv["flags"], "K")})
			continue
		}
		switch {
		case kv["codec_type"] == "video" && kv["codec_name"] == "h264":
			declVideo = true
			si.width, _ = strconv.Atoi(kv["width"])
		case kv["codec_type"] == "audio" && kv["codec_name"] == "aac":
			declAudio = true
		}
	}
	// A track counts when it has packets here: MPEG-TS and fMP4 declare
	// every track of the stream, also in segments that lack one.
	for _, p := range pkts {
		si.hasVideo = si.hasVideo || declVideo && p.kind == "video"
		si.hasAudio = si.hasAudio || declAudio && p.kind == "audio"
	}
	kind := "video"
	if !si.hasVideo {
		kind = "audio"
	}
	first, lastPTS := true, math.Inf(-1)
	for _, p := range pkts {
		if p.kind != kind {
			continue
		}
		if first {
			si.firstKey = p.key
		}
		first = false
		si.minPTS, si.maxPTS = math.Min(si.minPTS, p.pts), math.Max(si.maxPTS, p.pts)
		if p.dur > 0 {
			si.frameDur = p.dur
		}
		if kind == "video" {
			si.ptsNotDTS = si.ptsNotDTS || math.Abs(p.pts-p.dts) > 0.0005
			si.ptsReordered = si.ptsReordered || p.pts < lastPTS
			lastPTS = p.pts
		}
	}
	return si
}

// checkSpans checks each discontinuity span as a player sees it: every
// segment starts with a keyframe, and each segment's first PTS follows the
// previous one's last PTS within a frame (modulo the 33-bit PTS period for
// MPEG-TS).
func checkSpans(t *testing.T, segs []tsSeg, ts bool) {
	t.Helper()
	for i, s := range segs {
		if s.hasVideo && !s.firstKey {
			t.Errorf("%s does not start with a keyframe", s.uri)
		}
		if i == 0 || s.disc {
			continue
		}
		prev := segs[i-1]
		if prev.hasVideo != s.hasVideo {
			t.Errorf("%s: video %v after %s with video %v, without a discontinuity", s.uri, s.hasVideo, prev.uri, prev.hasVideo)
			continue
		}
		gap := s.minPTS - (prev.maxPTS + prev.frameDur)
		if ts {
			gap = math.Remainder(gap, tsPTSPeriod)
		}
		if math.Abs(gap) > prev.frameDur+0.001 {
			t.Errorf("PTS gap of %.4f s between %s (ends %.4f + %.4f) and %s (starts %.4f) within a discontinuity span",
				gap, prev.uri, prev.maxPTS, prev.frameDur, s.uri, s.minPTS)
		}
	}
}

// metric returns a sample's value, 0 when the series is absent.
func metric(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	v, _ := value(fams, name, labels)
	return v
}

// tsCase is one timestamp edge case: the tags to send (built from the
// source clip), what the output must show, and where the event is.
type tsCase struct {
	name string
	tags func(t *testing.T, src []flvTag) []flvTag
	// disc: EXT-X-DISCONTINUITY expected (exactly once); eventAt: clip
	// time (s, on the output playlist) from which segments must follow.
	disc    bool
	eventAt float64
	video   bool    // segments after the event have video (all have audio)
	minDur  float64 // total EXTINF at the end
	logs    []string
	check   func(t *testing.T, c *tsCase, fams map[string]*dto.MetricFamily, segs []tsSeg)
}

// jumpAt moves every frame from the keyframe at or after at (ms) by d: a
// splice, as when an encoder restarts or a source is switched.
func jumpAt(t *testing.T, src []flvTag, at, d int64) []flvTag {
	k := keyframeAt(t, src, at)
	return retime(src, false, func(_ byte, ts int64) int64 {
		if ts >= k {
			return ts + d
		}
		return ts
	})
}

// dropFrames removes the frames (not the sequence header) of one kind
// before ts (ms).
func dropFrames(src []flvTag, kind byte, ts int64) []flvTag {
	var out []flvTag
	for _, g := range src {
		if g.typ != kind || g.config() || g.ts >= ts {
			out = append(out, g)
		}
	}
	return out
}

func counterCheck(name string, labels map[string]string, lo, hi float64) func(*testing.T, *tsCase, map[string]*dto.MetricFamily, []tsSeg) {
	return func(t *testing.T, _ *tsCase, fams map[string]*dto.MetricFamily, _ []tsSeg) {
		if v := metric(fams, name, labels); v < lo || v > hi {
			t.Errorf("%s%v = %v, want in [%v, %v]", name, labels, v, lo, hi)
		}
	}
}

func allChecks(cs ...func(*testing.T, *tsCase, map[string]*dto.MetricFamily, []tsSeg)) func(*testing.T, *tsCase, map[string]*dto.MetricFamily, []tsSeg) {
	return func(t *testing.T, c *tsCase, f map[string]*dto.MetricFamily, s []tsSeg) {
		for _, ch := range cs {
			ch(t, c, f, s)
		}
	}
}

var (
	noJumps   = counterCheck("fount_discontinuities_total", map[string]string{"reason": "timestamp_jump"}, 0, 0)
	noChanges = counterCheck("fount_discontinuities_total", map[string]string{"reason": "codec_config_change"}, 0, 0)
	oneJump   = counterCheck("fount_discontinuities_total", map[string]string{"reason": "timestamp_jump"}, 1, 1)
	noWraps   = counterCheck("fount_timestamp_wraps_total", nil, 0, 0)
)

func timestampCases() []tsCase {
	const wrapStart = 1<<32 - 5000
	return []tsCase{
		{
			name: "bframes", eventAt: 0, video: true, minDur: 11.9,
			tags: func(t *testing.T, src []flvTag) []flvTag {
				for _, g := range src {
					if g.cts() > 0 {
						return src
					}
				}
				t.Fatal("the source clip has no B-frames (no composition offsets)")
				return nil
			},
			check: allChecks(noJumps, noChanges, func(t *testing.T, _ *tsCase, _ map[string]*dto.MetricFamily, segs []tsSeg) {
				for _, s := range segs {
					if !s.ptsNotDTS || !s.ptsReordered {
						t.Errorf("%s: PTS != DTS %v, PTS reordered %v: B-frame timing lost", s.uri, s.ptsNotDTS, s.ptsReordered)
					}
				}
			}),
		},
		{
			name: "backwards", disc: true, eventAt: 6, video: true, minDur: 11.9,
			tags:  func(t *testing.T, src []flvTag) []flvTag { return jumpAt(t, src, 6000, -5000) },
			logs:  []string{"timestamp jump"},
			check: allChecks(oneJump, noChanges),
		},
		{
			name: "forward3h", disc: true, eventAt: 6, video: true, minDur: 11.9,
			tags:  func(t *testing.T, src []flvTag) []flvTag { return jumpAt(t, src, 6000, 3*3600*1000) },
			logs:  []string{"timestamp jump"},
			check: allChecks(oneJump, noChanges),
		},
		{
			name: "wrap32", eventAt: 5, video: true, minDur: 11.9,
			tags: func(t *testing.T, src []flvTag) []flvTag {
				return retime(src, false, func(_ byte, ts int64) int64 { return ts + wrapStart })
			},
			logs:  []string{"wrapped past 2^32 ms"},
			check: allChecks(noJumps, noChanges, counterCheck("fount_timestamp_wraps_total", nil, 1, 1)),
		},
		{
			name: "extended", eventAt: 0, video: true, minDur: 11.9,
			tags: func(t *testing.T, src []flvTag) []flvTag {
				return retime(src, false, func(_ byte, ts int64) int64 { return ts + 0x1000000 })
			},
			check: allChecks(noJumps, noChanges, noWraps, func(t *testing.T, _ *tsCase, _ map[string]*dto.MetricFamily, segs []tsSeg) {
				if segs[0].minPTS < 0x1000000/1000 {
					t.Errorf("first PTS %.3f s, want >= %d s (the extended timestamp was lost)", segs[0].minPTS, 0x1000000/1000)
				}
			}),
		},
		{
			// Audio frames from 8 s on only (its sequence header at the
			// start): video-only segments, then audio joins.
			name: "audiolate", eventAt: 8, video: true, minDur: 11.9,
			tags: func(t *testing.T, src []flvTag) []flvTag {
				return dropFrames(src, tagAudio, 8000)
			},
			logs:  []string{"track starts far from the other one"},
			check: allChecks(noJumps, noChanges),
		},
		{
			// Video frames from the keyframe at 8 s on only: the audio before
			// cannot start a segment and is dropped.
			name: "videolate", eventAt: 0, video: true, minDur: 3.9,
			tags: func(t *testing.T, src []flvTag) []flvTag {
				return dropFrames(src, tagVideo, keyframeAt(t, src, 8000))
			},
			logs:  []string{"track starts far from the other one"},
			check: allChecks(noJumps, noChanges, counterCheck("fount_frames_dropped_total", map[string]string{"reason": "before_keyframe"}, 360, 390)),
		},
		{
			name: "noseqheader", eventAt: 0, video: false, minDur: 11.9,
			tags: func(t *testing.T, src []flvTag) []flvTag {
				var out []flvTag
				for _, g := range src {
					if !g.videoConfig() {
						out = append(out, g)
					}
				}
				return out
			},
			logs:  []string{"frames before their track's sequence header", "starting the stream without it"},
			check: allChecks(noJumps, noChanges, counterCheck("fount_frames_dropped_total", map[string]string{"reason": "no_codec_config"}, 300, 400)),
		},
		{
			name: "lateseqheader", eventAt: 0, video: true, minDur: 9.9,
			tags: func(t *testing.T, src []flvTag) []flvTag {
				// The sequence header comes just before the keyframe at 2 s.
				k := keyframeAt(t, src, 1000)
				var cfg flvTag
				var out []flvTag
				for _, g := range src {
					if g.videoConfig() {
						cfg = g
						continue
					}
					if g.ts == k && g.keyframe() {
						cfg.ts = k
						out = append(out, cfg)
					}
					out = append(out, g)
				}
				return out
			},
			logs: []string{"frames before their track's sequence header"},
			check: allChecks(noJumps, noChanges, counterCheck("fount_frames_dropped_total", map[string]string{"reason": "no_codec_config"}, 50, 70),
				func(t *testing.T, _ *tsCase, _ map[string]*dto.MetricFamily, segs []tsSeg) {
					if !segs[0].hasVideo || segs[0].minPTS < 1.9 {
						t.Errorf("the stream starts at %.3f s (video %v), want at the keyframe after the late sequence header (2 s)", segs[0].minPTS, segs[0].hasVideo)
					}
				}),
		},
		{
			name: "seqheaderchange", disc: true, eventAt: 6, video: true, minDur: 11.9,
			tags: func(t *testing.T, src []flvTag) []flvTag {
				k := keyframeAt(t, src, 6000)
				a, _ := split(src, k)
				var out []flvTag
				out = append(out, a...)
				for _, g := range readFLV(t, altSource(t)) {
					if g.typ == tagScript {
						continue
					}
					g.ts += k
					out = append(out, g)
				}
				return out
			},
			logs: []string{"codec configuration changed"},
			check: allChecks(noJumps, counterCheck("fount_discontinuities_total", map[string]string{"reason": "codec_config_change"}, 1, 1),
				func(t *testing.T, _ *tsCase, _ map[string]*dto.MetricFamily, segs []tsSeg) {
					for _, s := range segs {
						want := 640
						if s.start >= 5.9 {
							want = 320
						}
						if s.width != want {
							t.Errorf("%s (at %.1f s): width %d, want %d", s.uri, s.start, s.width, want)
						}
						if s.disc && s.mapURI != "" && s.mapURI == segs[0].mapURI {
							t.Errorf("%s: same EXT-X-MAP %s after the codec change", s.uri, s.mapURI)
						}
					}
				}),
		},
	}
}

// Timestamp edge cases, each pushed by the test publisher into its own
// origin in fMP4/LL-HLS and in classic MPEG-TS: the stream never stops,
// discontinuities are flagged where (and only where) the timeline breaks,
// and each event shows in the log and the metrics.
func TestE2ETimestampEdgeCases(t *testing.T) {
	src := readFLV(t, source(t))
	requireTool(t, "ffprobe")
	altSource(t) // made before the parallel subtests
	for _, c := range timestampCases() {
		for _, format := range []string{"fmp4", "ts"} {
			t.Run(c.name+"/"+format, func(t *testing.T) {
				t.Parallel()
				runTimestampCase(t, &c, format, c.tags(t, src))
			})
		}
	}
}

func runTimestampCase(t *testing.T, c *tsCase, format string, tags []flvTag) {
	mod := func(cfg *config) { cfg.PlaylistSize = 30 }
	var o *origin
	if format == "ts" {
		o = startClassic(t, mod)
	} else {
		o = startOrigin(t, mod)
	}
	name := "ts" + strings.ReplaceAll(c.name, "_", "")
	client, sid := publishRTMP(t, o.rtmp, name)
	if err := client.sendTags(sid, tags); err != nil {
		t.Fatalf("sending the tags: %v (server: %v)", err, client.readErr())
	}
	// A round trip after the last tag: the server has read and handled
	// every tag and still answers on this connection.
	if _, err := client.createStream(3); err != nil {
		t.Fatalf("the publisher was disconnected: %v", err)
	}
	st := o.reg.Stream("live/" + name)
	if st == nil || st.State() != playlist.StateLive {
		t.Fatalf("stream not live after the tags")
	}
	url := o.url("/live/" + name + "/index.m3u8")
	// Segments after the event are out while the publisher is connected.
	awaitPlaylist(t, url, 10*time.Second, "segments after the event", func(_ *m3u8.MediaPlaylist, body []byte) bool {
		var d float64
		for _, s := range parsePlaylist(body) {
			d += s.dur
		}
		return d >= c.eventAt+2
	})
	client.conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for st.State() == playlist.StateLive && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_, body, _ := httpGet(t, url)
	segs := parsePlaylist(body)
	var total float64
	discs := 0
	for _, s := range segs {
		total += s.dur
		if s.disc {
			discs++
		}
	}
	if total < c.minDur {
		t.Errorf("EXTINFs add up to %.3f s, want >= %.1f\n%s", total, c.minDur, body)
	}
	if want := map[bool]int{true: 1, false: 0}[c.disc]; discs != want {
		t.Errorf("%d EXT-X-DISCONTINUITY, want %d\n%s", discs, want, body)
	}
	got := fetchProbe(t, o, "/live/"+name+"/", segs)
	checkSpans(t, got, format == "ts")
	after := 0
	for _, s := range got {
		if s.start+0.05 < c.eventAt {
			continue
		}
		after++
		if s.hasVideo != c.video || !s.hasAudio {
			t.Errorf("%s (at %.1f s, after the event): video %v audio %v, want video %v and audio", s.uri, s.start, s.hasVideo, s.hasAudio, c.video)
		}
		if c.disc && s.disc && s.start+0.05 < c.eventAt {
			t.Errorf("discontinuity at %.1f s, before the event", s.start)
		}
	}
	if after < 2 {
		t.Errorf("%d segments after the event at %.0f s, want the stream to go on", after, c.eventAt)
	}
	if format == "fmp4" {
		maps := map[string]bool{}
		for _, s := range segs {
			maps[s.mapURI] = true
		}
		if want := map[bool]int{true: 2, false: 1}[c.name == "seqheaderchange"]; len(maps) != want {
			t.Errorf("%d EXT-X-MAPs, want %d\n%s", len(maps), want, body)
		}
	}
	logs := o.logs.String()
	for _, l := range c.logs {
		if !strings.Contains(logs, l) {
			t.Errorf("no log line with %q", l)
		}
	}
	if c.check != nil {
		c.check(t, c, scrape(t, o), got)
	}
}
