package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/ingest/ertmptest"
)

// End-to-end tests of Enhanced RTMP codecs and tracks: clips that Debian's
// ffmpeg encodes are pushed by ingest/ertmptest (gortmplib's connection,
// bodies written from the E-RTMP v2 specification) and read back with
// ffmpeg/ffprobe: every segment decodes, keyframe first, with the expected
// codecs, continuous timestamps and every frame that went in.

// e2eTrack is one entry of the API's publisher.tracks.
type e2eTrack struct {
	Kind       string          `json:"kind"`
	ID         int             `json:"id"`
	Codec      string          `json:"codec"`
	Codecs     string          `json:"codecs"`
	Width      int             `json:"width"`
	Height     int             `json:"height"`
	SampleRate int             `json:"sample_rate"`
	Channels   int             `json:"channels"`
	Frames     int64           `json:"frames"`
	BitrateBps int64           `json:"bitrate_bps"`
	InPlaylist bool            `json:"in_playlist"`
	Skipped    json.RawMessage `json:"skipped"` // true, or a reason
}

// skipped says whether the API marks the track as skipped (true or a
// non-empty reason).
func (tr e2eTrack) skipped() bool {
	s := strings.TrimSpace(string(tr.Skipped))
	return s != "" && s != "false" && s != "null" && s != `""`
}

// e2eStream is what these tests read of GET /api/v1/streams/APP/NAME.
type e2eStream struct {
	Codecs string `json:"codecs"`
	Video  *struct {
		Codec  string `json:"codec"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
	} `json:"video"`
	Audio *struct {
		Codec      string `json:"codec"`
		SampleRate int    `json:"sample_rate"`
		Channels   int    `json:"channels"`
	} `json:"audio"`
	Publisher *struct {
		Tracks []e2eTrack `json:"tracks"`
	} `json:"publisher"`
}

func (s e2eStream) tracks() []e2eTrack {
	if s.Publisher == nil {
		return nil
	}
	return s.Publisher.Tracks
}

func (s e2eStream) track(kind string, id int) (e2eTrack, bool) {
	for _, tr := range s.tracks() {
		if tr.Kind == kind && tr.ID == id {
			return tr, true
		}
	}
	return e2eTrack{}, false
}

// streamAPI reads the API's view of live/name; it may run off the test's
// goroutine, so it reports failures as errors.
func streamAPI(o *origin, name string) (e2eStream, []byte, error) {
	resp, err := http.Get("http://" + o.api + "/api/v1/streams/live/" + name)
	if err != nil {
		return e2eStream{}, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		return e2eStream{}, buf.Bytes(), fmt.Errorf("API: %d %s", resp.StatusCode, buf.Bytes())
	}
	var s e2eStream
	if err := json.Unmarshal(buf.Bytes(), &s); err != nil {
		return e2eStream{}, buf.Bytes(), err
	}
	return s, buf.Bytes(), nil
}

// pushed is the outcome of one publish and what the API said meanwhile.
type pushed struct {
	err  error
	api  e2eStream // the last snapshot for which done held, else the last one read
	raw  []byte
	took time.Duration
}

// pushWatch publishes tracks to live/name in real time and, while the
// publisher is connected, polls the API every 200 ms. It keeps the first
// snapshot for which done holds (nil: the last one read before the end).
func pushWatch(o *origin, name string, layout ertmptest.Layout, tracks []ertmptest.Track, opts ertmptest.Options, done func(e2eStream) bool) pushed {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts.Realtime = true
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- ertmptest.Publish(ctx, "rtmp://"+o.rtmp+"/live/"+name, layout, tracks, opts) }()
	var r pushed
	found := false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r.err = <-errc:
			r.took = time.Since(start)
			return r
		case <-tick.C:
			if found {
				continue
			}
			if s, raw, err := streamAPI(o, name); err == nil {
				r.api, r.raw = s, raw
				found = done != nil && done(s)
			}
		}
	}
}

// mediaProbe is ffprobe's view of one file: its streams and, per kind,
// packet counts, PTS span, last packet duration and keyframe-first.
type mediaProbe struct {
	uri          string
	vcodec       string
	acodec       string
	vstreams     int
	astreams     int
	width        int
	height       int
	sampleRate   int
	channels     int
	vpackets     int
	apackets     int
	vfirstKey    bool
	vmin, vmax   float64
	amin, amax   float64
	vdur, adur   float64
	decodeOutput string
}

func probeMedia(t *testing.T, file, uri string) mediaProbe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_packets",
		"-show_entries", "packet=codec_type,pts_time,flags,duration_time:stream=codec_type,codec_name,width,height,sample_rate,channels",
		"-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", uri, err)
	}
	var r struct {
		Streams []struct {
			CodecType  string `json:"codec_type"`
			CodecName  string `json:"codec_name"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			SampleRate string `json:"sample_rate"`
			Channels   int    `json:"channels"`
		} `json:"streams"`
		Packets []probePacket `json:"packets"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	m := mediaProbe{uri: uri, vmin: math.Inf(1), vmax: math.Inf(-1), amin: math.Inf(1), amax: math.Inf(-1)}
	for _, s := range r.Streams {
		switch s.CodecType {
		case "video":
			m.vstreams++
			m.vcodec, m.width, m.height = s.CodecName, s.Width, s.Height
		case "audio":
			m.astreams++
			m.acodec, m.channels = s.CodecName, s.Channels
			m.sampleRate, _ = strconv.Atoi(s.SampleRate)
		}
	}
	// ffprobe 5.1 gives Opus and FLAC packets no duration (N/A), even from
	// ffmpeg's own fMP4 whose trun has them: then the last step between
	// two packets stands for it.
	var vlast, alast, vstep, astep float64
	for _, p := range r.Packets {
		pts := f64(p.PTSTime)
		switch p.CodecType {
		case "video":
			if m.vpackets == 0 {
				m.vfirstKey = strings.HasPrefix(p.Flags, "K")
			} else if pts > vlast {
				vstep = pts - vlast
			}
			vlast = pts
			m.vpackets++
			m.vmin, m.vmax = math.Min(m.vmin, pts), math.Max(m.vmax, pts)
			if d := f64(p.Duration); d > 0 {
				m.vdur = d
			}
		case "audio":
			if m.apackets > 0 {
				astep = pts - alast
			}
			alast = pts
			m.apackets++
			m.amin, m.amax = math.Min(m.amin, pts), math.Max(m.amax, pts)
			if d := f64(p.Duration); d > 0 {
				m.adur = d
			}
		}
	}
	if m.vdur == 0 {
		m.vdur = vstep
	}
	if m.adur == 0 {
		m.adur = astep
	}
	return m
}

// playlistMaps maps each segment URI of a playlist body to the URI of the
// EXT-X-MAP that applies to it ("" for MPEG-TS).
func playlistMaps(body []byte) map[string]string {
	out := map[string]string{}
	cur := ""
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "#EXT-X-MAP:"); ok {
			if i := strings.Index(v, `URI="`); i >= 0 {
				u := v[i+5:]
				if j := strings.IndexByte(u, '"'); j >= 0 {
					cur = u[:j]
				}
			}
			continue
		}
		if l != "" && !strings.HasPrefix(l, "#") {
			out[l] = cur
		}
	}
	return out
}

// readBack waits until live/name's playlist lists at least seconds of
// media, then downloads every segment (fMP4: after its init segment),
// requires it to decode with ffmpeg without a word on stderr, and probes it.
func readBack(t *testing.T, o *origin, name string, seconds float64, fmp4 bool) ([]mediaProbe, []byte) {
	t.Helper()
	url := o.url("/live/" + name + "/index.m3u8")
	p, body := awaitPlaylist(t, url, 20*time.Second, fmt.Sprintf("%.1f s of %s", seconds, name), func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= seconds-0.15
	})
	maps := playlistMaps(body)
	ctype := "video/mp2t"
	if fmp4 {
		ctype = "video/mp4"
	}
	inits := map[string][]byte{}
	dir := t.TempDir()
	var out []mediaProbe
	for _, s := range segments(p) {
		code, seg, hdr := httpGet(t, o.url("/live/"+name+"/"+s.URI))
		if code != 200 || hdr.Get("Content-Type") != ctype || len(seg) == 0 {
			t.Fatalf("segment %s: %d %q %d bytes", s.URI, code, hdr.Get("Content-Type"), len(seg))
		}
		var data []byte
		if fmp4 {
			mapURI := maps[s.URI]
			if mapURI == "" {
				t.Fatalf("fMP4 segment %s has no EXT-X-MAP:\n%s", s.URI, body)
			}
			if inits[mapURI] == nil {
				code, init, _ := httpGet(t, o.url("/live/"+name+"/"+mapURI))
				if code != 200 || len(init) == 0 {
					t.Fatalf("init %s: %d", mapURI, code)
				}
				inits[mapURI] = init
			}
			data = append(append(data, inits[mapURI]...), seg...)
		} else {
			if len(seg)%188 != 0 || seg[0] != 0x47 {
				t.Fatalf("segment %s: %d bytes starting %x: not MPEG-TS", s.URI, len(seg), seg[:min(4, len(seg))])
			}
			data = seg
		}
		file := filepath.Join(dir, s.URI)
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		dec, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(dec)) > 0 {
			t.Errorf("%s does not decode cleanly: %v\n%s", s.URI, err, dec)
		}
		m := probeMedia(t, file, s.URI)
		m.decodeOutput = string(dec)
		out = append(out, m)
	}
	return out, body
}

// wantMedia is what every segment of a stream must hold.
type wantMedia struct {
	vcodec, acodec string // ffprobe codec names; "" for none
	width, height  int
	vframes        int // video samples pushed (0: not checked)
	// aframes is the range of audio frames the segments must hold (zero:
	// not checked); see audioKept.
	aframes [2]int
}

// checkMedia checks segments against w: one stream of each wanted kind with
// the wanted codec, keyframe first, PTS continuous across segments (video,
// and audio on its own), and, summed over segments, every pushed frame.
func checkMedia(t *testing.T, segs []mediaProbe, w wantMedia) {
	t.Helper()
	if len(segs) == 0 {
		t.Fatal("no segments")
	}
	var vn, an int
	for i, s := range segs {
		wantV, wantA := 0, 0
		if w.vcodec != "" {
			wantV = 1
		}
		if w.acodec != "" {
			wantA = 1
		}
		if s.vstreams != wantV || s.astreams != wantA || s.vcodec != w.vcodec || s.acodec != w.acodec {
			t.Errorf("%s: %d video stream(s) %q, %d audio stream(s) %q; want %d %q, %d %q",
				s.uri, s.vstreams, s.vcodec, s.astreams, s.acodec, wantV, w.vcodec, wantA, w.acodec)
		}
		if w.width != 0 && (s.width != w.width || s.height != w.height) {
			t.Errorf("%s: video %dx%d, want %dx%d", s.uri, s.width, s.height, w.width, w.height)
		}
		if w.vcodec != "" && !s.vfirstKey {
			t.Errorf("%s does not start with a keyframe", s.uri)
		}
		vn += s.vpackets
		an += s.apackets
		if i == 0 {
			continue
		}
		prev := segs[i-1]
		if w.vcodec != "" {
			if gap := s.vmin - (prev.vmax + prev.vdur); math.Abs(gap) > prev.vdur+0.001 {
				t.Errorf("video PTS gap between %s and %s: %.4f s (next starts %.4f, previous ends %.4f + %.4f)",
					prev.uri, s.uri, gap, s.vmin, prev.vmax, prev.vdur)
			}
		}
		if w.acodec != "" {
			if gap := s.amin - (prev.amax + prev.adur); math.Abs(gap) > prev.adur+0.002 {
				t.Errorf("audio PTS gap between %s and %s: %.4f s (next starts %.4f, previous ends %.4f + %.4f)",
					prev.uri, s.uri, gap, s.amin, prev.amax, prev.adur)
			}
		}
	}
	if w.vframes > 0 && vn != w.vframes {
		t.Errorf("%d video frames in the segments, %d pushed", vn, w.vframes)
	}
	if w.aframes[1] > 0 && (an < w.aframes[0] || an > w.aframes[1]) {
		t.Errorf("%d audio frames in the segments, want %d to %d", an, w.aframes[0], w.aframes[1])
	}
	t.Logf("%d segments: %d video frames (%s), %d audio frames (%s)", len(segs), vn, w.vcodec, an, w.acodec)
}

func loadClip(t *testing.T, path string) []ertmptest.Track {
	t.Helper()
	tracks, err := ertmptest.LoadMP4(path)
	if err != nil {
		t.Fatal(err)
	}
	return tracks
}

func findTrack(t *testing.T, tracks []ertmptest.Track, k ertmptest.Kind) ertmptest.Track {
	t.Helper()
	tr, ok := ertmptest.Find(tracks, k)
	if !ok {
		t.Fatalf("clip has no %s track", k)
	}
	return tr
}

func samples(tracks []ertmptest.Track, k ertmptest.Kind) int {
	if tr, ok := ertmptest.Find(tracks, k); ok {
		return len(tr.Samples)
	}
	return 0
}

// audioKept is how many of the pushed audio frames of tracks the segments
// hold: all of them when the playlist has no video, else those up to the
// last video frame. fount's segmenter places audio between video frames
// and drops what follows the last one when the publisher leaves (at most
// one video frame's worth; counted as dropped in the metrics). The bounds
// differ by the frames whose millisecond timestamp equals the last video
// frame's and by those up to the end of the last presented video frame.
func audioKept(tracks []ertmptest.Track, withVideo bool) [2]int {
	a, ok := ertmptest.Find(tracks, ertmptest.Audio)
	if !ok {
		return [2]int{}
	}
	v, ok := ertmptest.Find(tracks, ertmptest.Video)
	if !withVideo || !ok {
		return [2]int{len(a.Samples), len(a.Samples)}
	}
	last := v.Samples[len(v.Samples)-1].DTS / time.Millisecond
	// A segment's audio runs to the end of its video's presentation (a
	// cut held for audio up to the next keyframe's PTS, holdcut.go): at
	// the end, the audio up to where the last presented frame ends may
	// be kept too.
	end := last
	for _, s := range v.Samples {
		end = max(end, (s.DTS+s.CTS+s.Dur)/time.Millisecond)
	}
	var lo, hi int
	for _, s := range a.Samples {
		if ms := s.DTS / time.Millisecond; ms < last {
			lo++
			hi++
		} else if ms <= end {
			hi++
		}
	}
	return [2]int{lo, hi}
}

// logLine returns the first line of logs that contains every one of subs.
func logLine(logs string, subs ...string) string {
	for _, l := range strings.Split(logs, "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			return l
		}
	}
	return ""
}

// codecCase is one codec pair of TestE2ECodecs.
type codecCase struct {
	name         string
	video, audio string           // E-RTMP FourCCs for MakeClip
	layout       ertmptest.Layout // ExHeader, or Legacy (the zero value: always spelled out)
	formats      []string         // "fmp4", "ts"
	vname, aname string           // ffprobe codec names
	vcodecs      string           // prefix of the video part of the API's codecs
	acodecs      string           // the audio part
	sampleRate   int              // 0: MakeClip's default (48 kHz)
	modex        bool             // wrap every message in ModEx TimestampOffsetNano (the sub-millisecond part of its time)
}

var codecCases = []codecCase{
	{name: "hevc-aac", video: "hvc1", audio: "mp4a", layout: ertmptest.ExHeader, formats: []string{"fmp4", "ts"},
		vname: "hevc", aname: "aac", vcodecs: "hvc1.", acodecs: "mp4a.40.2"},
	{name: "av1-opus", video: "av01", audio: "Opus", layout: ertmptest.ExHeader, formats: []string{"fmp4"},
		vname: "av1", aname: "opus", vcodecs: "av01.0.", acodecs: "opus", modex: true},
	{name: "vp9-flac", video: "vp09", audio: "fLaC", layout: ertmptest.ExHeader, formats: []string{"fmp4"},
		vname: "vp9", aname: "flac", vcodecs: "vp09.00.", acodecs: "fLaC"},
	{name: "h264-ac3", video: "avc1", audio: "ac-3", layout: ertmptest.ExHeader, formats: []string{"fmp4", "ts"},
		vname: "h264", aname: "ac3", vcodecs: "avc1.64", acodecs: "ac-3"},
	{name: "h264-eac3", video: "avc1", audio: "ec-3", layout: ertmptest.ExHeader, formats: []string{"fmp4", "ts"},
		vname: "h264", aname: "eac3", vcodecs: "avc1.64", acodecs: "ec-3"},
	{name: "h264-mp3", video: "avc1", audio: ".mp3", layout: ertmptest.ExHeader, formats: []string{"fmp4", "ts"},
		vname: "h264", aname: "mp3", vcodecs: "avc1.64", acodecs: "mp4a.40.34", sampleRate: 44100},
	{name: "h264-mp3-legacy", video: "avc1", audio: ".mp3", layout: ertmptest.Legacy, formats: []string{"fmp4", "ts"},
		vname: "h264", aname: "mp3", vcodecs: "avc1.64", acodecs: "mp4a.40.34", sampleRate: 44100},
	{name: "hevc-eac3", video: "hvc1", audio: "ec-3", layout: ertmptest.ExHeader, formats: []string{"ts"},
		vname: "hevc", aname: "eac3", vcodecs: "hvc1.", acodecs: "ec-3"},
}

const codecClipSeconds = 3

func codecClip(t *testing.T, dir string, video, audio string, sampleRate int) string {
	return ertmptest.MakeClip(t, dir, ertmptest.ClipSpec{
		Video: video, Audio: audio, Width: 320, Height: 180, FPS: 30, GOP: 60,
		Duration: codecClipSeconds * time.Second, VideoKbps: 300, AudioKbps: 96, SampleRate: sampleRate,
	})
}

// TestE2ECodecs pushes each codec pair that E-RTMP carries into fount (as
// plain ExHeader track 0, and MP3 also as legacy FLV) and reads the
// segments back with ffmpeg, in fMP4 (the default LL-HLS) and, for the
// codecs MPEG-TS carries, in --segment-format ts. Last, AV1 with
// --segment-format ts: the video track is skipped with a log line naming
// the codec and the format, and the stream goes on with its audio.
func TestE2ECodecs(t *testing.T) {
	lockEndToEndLogged(t)
	requireTool(t, "ffprobe")
	dir := t.TempDir()
	start := time.Now()
	clips := map[string][]ertmptest.Track{}
	for _, c := range codecCases {
		clips[c.name] = loadClip(t, codecClip(t, dir, c.video, c.audio, c.sampleRate))
	}
	av1aac := loadClip(t, codecClip(t, dir, "av01", "mp4a", 0))
	t.Logf("clips encoded in %s", time.Since(start).Round(time.Millisecond))

	origins := map[string]*origin{
		"fmp4": startOrigin(t, func(c *config) { c.PlaylistSize = 10 }),
		"ts":   startOrigin(t, func(c *config) { c.PlaylistSize = 10; c.SegmentFormat = "ts" }),
	}

	// Every push at once, in real time, each watched through the API.
	type run struct {
		c      codecCase
		format string
		stream string
		res    pushed
	}
	var runs []*run
	for _, c := range codecCases {
		for _, f := range c.formats {
			runs = append(runs, &run{c: c, format: f, stream: c.name + "-" + f})
		}
	}
	skipRun := &run{c: codecCase{name: "av1-aac-skipped"}, format: "ts", stream: "av1-aac-ts"}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.res = pushWatch(origins[r.format], r.stream, r.c.layout, clips[r.c.name], ertmptest.Options{ModEx: r.c.modex}, func(s e2eStream) bool {
				return s.Codecs != "" && len(s.tracks()) >= 2
			})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		skipRun.res = pushWatch(origins["ts"], skipRun.stream, ertmptest.ExHeader, av1aac, ertmptest.Options{}, func(s e2eStream) bool {
			return s.Codecs != "" && len(s.tracks()) >= 2
		})
	}()
	pushStart := time.Now()
	wg.Wait()
	t.Logf("%d pushes of %d s in %s", len(runs)+1, codecClipSeconds, time.Since(pushStart).Round(time.Millisecond))

	for _, r := range runs {
		t.Run(r.stream, func(t *testing.T) {
			if r.res.err != nil {
				t.Fatalf("publish (%s layout): %v", r.c.layout, r.res.err)
			}
			tracks := clips[r.c.name]
			segs, body := readBack(t, origins[r.format], r.stream, codecClipSeconds, r.format == "fmp4")
			checkMedia(t, segs, wantMedia{
				vcodec: r.c.vname, acodec: r.c.aname, width: 320, height: 180,
				vframes: samples(tracks, ertmptest.Video), aframes: audioKept(tracks, true),
			})
			if t.Failed() {
				t.Logf("playlist:\n%s", body)
			}
			// The codecs string (what a multivariant playlist's CODECS
			// will say) as the API shows it.
			v, a, ok := strings.Cut(r.res.api.Codecs, ",")
			if !ok || !strings.HasPrefix(v, r.c.vcodecs) || a != r.c.acodecs {
				t.Errorf("API codecs %q, want %s…,%s\n%s", r.res.api.Codecs, r.c.vcodecs, r.c.acodecs, r.res.raw)
			}
			t.Logf("API codecs %s", r.res.api.Codecs)
			checkAPITrack(t, r.res, "video", r.c.vcodecs, 320, 180, 0, true)
			checkAPITrack(t, r.res, "audio", r.c.acodecs, 0, 0, findTrack(t, tracks, ertmptest.Audio).SampleRate, true)
		})
	}

	t.Run("av1-in-ts-skipped", func(t *testing.T) {
		r := skipRun
		if r.res.err != nil {
			t.Fatalf("publish: %v", r.res.err)
		}
		o := origins["ts"]
		segs, _ := readBack(t, o, r.stream, codecClipSeconds-0.1, false)
		checkMedia(t, segs, wantMedia{acodec: "aac", aframes: audioKept(av1aac, false)})
		logs := o.logs.String()
		line := logLine(logs, "AV1", "MPEG-TS")
		if line == "" {
			line = logLine(logs, "AV1", "format=ts")
		}
		if line == "" {
			t.Errorf("no log line names AV1 and MPEG-TS when skipping the video track")
		} else {
			t.Logf("log: %s", line)
		}
		if n := strings.Count(logs, line); line != "" && n != 1 {
			t.Errorf("the skip line is logged %d times, want once", n)
		}
		if r.res.api.Codecs != "mp4a.40.2" {
			t.Errorf("API codecs %q, want mp4a.40.2 (audio only)\n%s", r.res.api.Codecs, r.res.raw)
		}
		tr, ok := r.res.api.track("video", 0)
		if !ok {
			t.Errorf("API lists no video track 0\n%s", r.res.raw)
		} else if !tr.skipped() || tr.InPlaylist || !strings.Contains(tr.Codec, "AV1") {
			t.Errorf("API video track 0: %+v (skipped %s), want codec AV1, skipped, not in the playlist", tr, tr.Skipped)
		}
		checkAPITrack(t, r.res, "audio", "mp4a.40.2", 0, 0, 48000, true)
	})
}

// checkAPITrack checks track 0 of kind in the API snapshot of a push.
func checkAPITrack(t *testing.T, res pushed, kind, codecs string, width, height, rate int, inPlaylist bool) {
	t.Helper()
	tr, ok := res.api.track(kind, 0)
	if !ok {
		t.Errorf("API lists no %s track 0\n%s", kind, res.raw)
		return
	}
	bad := tr.InPlaylist != inPlaylist || tr.skipped() || tr.Codec == "" || !strings.HasPrefix(tr.Codecs, codecs) || tr.Frames <= 0
	if width != 0 && (tr.Width != width || tr.Height != height) {
		bad = true
	}
	if rate != 0 && tr.SampleRate != rate {
		bad = true
	}
	if bad {
		t.Errorf("API %s track 0: %+v (skipped %s); want codecs %s…, %dx%d, %d Hz, frames > 0, in_playlist %v",
			kind, tr, tr.Skipped, codecs, width, height, rate, inPlaylist)
	}
}

// TestE2EOBSMultitrack pushes OBS's multitrack layout, three video tracks
// (0: H.264 640x360, 1: H.264 320x180, 2: AV1 320x180) and two audio
// tracks (0: AAC, 1: Opus), and the same tracks in the
// ManyTracksManyCodecs layout: the playlist carries track 0 alone, with
// every frame of it that went in, and the API lists all five tracks.
func TestE2EOBSMultitrack(t *testing.T) {
	lockEndToEndLogged(t)
	requireTool(t, "ffprobe")
	dir := t.TempDir()
	const seconds = 6
	start := time.Now()
	spec := func(v, a string, w, h int) ertmptest.ClipSpec {
		return ertmptest.ClipSpec{Video: v, Audio: a, Width: w, Height: h, FPS: 30, GOP: 60,
			Duration: seconds * time.Second, VideoKbps: 250, AudioKbps: 64}
	}
	base := loadClip(t, ertmptest.MakeClip(t, dir, spec("avc1", "mp4a", 640, 360)))
	v1 := loadClip(t, ertmptest.MakeClip(t, dir, spec("avc1", "", 320, 180)))
	v2 := loadClip(t, ertmptest.MakeClip(t, dir, spec("av01", "", 320, 180)))
	a1 := loadClip(t, ertmptest.MakeClip(t, dir, ertmptest.ClipSpec{Audio: "Opus", Duration: seconds * time.Second, AudioKbps: 48, ToneHz: 660}))
	t.Logf("clips encoded in %s", time.Since(start).Round(time.Millisecond))
	tracks := []ertmptest.Track{
		findTrack(t, base, ertmptest.Video),
		findTrack(t, v1, ertmptest.Video).WithID(1),
		findTrack(t, v2, ertmptest.Video).WithID(2),
		findTrack(t, base, ertmptest.Audio),
		findTrack(t, a1, ertmptest.Audio).WithID(1),
	}
	type want struct {
		kind   string
		id     int
		codec  string // API codec contains
		codecs string // API codecs prefix
		w, h   int
		rate   int
	}
	wants := []want{
		{"video", 0, "H.264", "avc1.", 640, 360, 0},
		{"video", 1, "H.264", "avc1.", 320, 180, 0},
		{"video", 2, "AV1", "av01.", 320, 180, 0},
		{"audio", 0, "AAC", "mp4a.40.2", 0, 0, 48000},
		{"audio", 1, "Opus", "opus", 0, 0, 48000},
	}

	o := startOrigin(t, func(c *config) { c.PlaylistSize = 10 })
	layouts := []ertmptest.Layout{ertmptest.OBS, ertmptest.ManyTracksManyCodecs}
	res := make([]pushed, len(layouts))
	var wg sync.WaitGroup
	for i, l := range layouts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = pushWatch(o, strings.ToLower(l.String()), l, tracks, ertmptest.Options{}, func(s e2eStream) bool {
				n := 0
				for _, tr := range s.tracks() {
					if tr.BitrateBps > 0 {
						n++
					}
				}
				return n == len(wants)
			})
		}()
	}
	wg.Wait()

	// Each track is a rendition: v0, v1, v2 (video only), a0, a1 (audio
	// only, alternatives in one group per codec).
	rends := []struct {
		name string
		want wantMedia
	}{
		{"v0", wantMedia{vcodec: "h264", width: 640, height: 360, vframes: len(tracks[0].Samples)}},
		{"v1", wantMedia{vcodec: "h264", width: 320, height: 180, vframes: len(tracks[1].Samples)}},
		{"v2", wantMedia{vcodec: "av1", width: 320, height: 180, vframes: len(tracks[2].Samples)}},
		{"a0", wantMedia{acodec: "aac", aframes: audioKept([]ertmptest.Track{tracks[3]}, false)}},
		{"a1", wantMedia{acodec: "opus", aframes: audioKept([]ertmptest.Track{tracks[4]}, false)}},
	}
	for i, l := range layouts {
		t.Run(l.String(), func(t *testing.T) {
			r := res[i]
			name := strings.ToLower(l.String())
			if r.err != nil {
				t.Fatalf("publish: %v", r.err)
			}
			for _, rd := range rends {
				segs, body := readBack(t, o, name+"/"+rd.name, seconds, true)
				checkMedia(t, segs, rd.want)
				if t.Failed() {
					t.Logf("%s playlist:\n%s", rd.name, body)
				}
			}
			code, body, _ := httpGet(t, o.url("/live/"+name+"/index.m3u8"))
			mp, lt, err := m3u8.DecodeFrom(bytes.NewReader(body), true)
			if code != 200 || err != nil || lt != m3u8.MASTER {
				t.Fatalf("multivariant playlist: %d %v\n%s", code, err, body)
			}
			streams, iframes := streamInfs(mp.(*m3u8.MasterPlaylist))
			// Three video renditions, each once per audio group (AAC, Opus).
			if len(streams) != 6 || len(iframes) != 3 {
				t.Errorf("%d variants, %d I-frame variants; want 6 and 3:\n%s", len(streams), len(iframes), body)
			}
			for _, want := range []string{
				`TYPE=AUDIO,GROUP-ID="audio-mp4a",NAME="a0",DEFAULT=YES,AUTOSELECT=YES,URI="a0/index.m3u8"`,
				`TYPE=AUDIO,GROUP-ID="audio-opus",NAME="a1",DEFAULT=YES,AUTOSELECT=YES,URI="a1/index.m3u8"`,
				`RESOLUTION=640x360,AUDIO="audio-mp4a"`, `RESOLUTION=320x180,AUDIO="audio-opus"`,
			} {
				if !bytes.Contains(body, []byte(want)) {
					t.Errorf("multivariant playlist lacks %s:\n%s", want, body)
				}
			}
			if len(streams) > 0 && streams[0].URI != "v0/index.m3u8" {
				t.Errorf("first variant %s, want track 0 (v0)", streams[0].URI)
			}
			checkAligned(t, o, name, []string{"v0", "v1", "v2"})
			if got := len(r.api.tracks()); got != len(wants) {
				t.Errorf("API lists %d tracks, want %d\n%s", got, len(wants), r.raw)
			}
			for _, w := range wants {
				tr, ok := r.api.track(w.kind, w.id)
				if !ok {
					t.Errorf("API lists no %s track %d\n%s", w.kind, w.id, r.raw)
					continue
				}
				bad := !strings.Contains(tr.Codec, w.codec) || !strings.HasPrefix(tr.Codecs, w.codecs) ||
					tr.Width != w.w || tr.Height != w.h || (w.rate != 0 && tr.SampleRate != w.rate) ||
					tr.BitrateBps <= 0 || tr.Frames <= 0 || !tr.InPlaylist || tr.skipped()
				if bad {
					t.Errorf("API %s track %d: %+v (skipped %s); want codec %s, codecs %s…, %dx%d, %d Hz, bitrate > 0, frames > 0, in_playlist",
						w.kind, w.id, tr, tr.Skipped, w.codec, w.codecs, w.w, w.h, w.rate)
				} else {
					t.Logf("API %s track %d: %s %s %dx%d %d Hz, %d frames, %d bit/s", w.kind, w.id, tr.Codec, tr.Codecs, tr.Width, tr.Height, tr.SampleRate, tr.Frames, tr.BitrateBps)
				}
			}
		})
	}
}

// inbandClip encodes a clip whose keyframes carry their parameter sets
// in-band (x264/x265 repeat-headers), as encoders that send an empty
// sequence header do, and loads it.
func inbandClip(t *testing.T, dir, video string) []ertmptest.Track {
	t.Helper()
	requireTool(t, "ffmpeg")
	out := filepath.Join(dir, "inband-"+video+".mp4")
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=4",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
		"-t", "4", "-threads", "1", "-pix_fmt", "yuv420p"}
	switch video {
	case "avc1":
		args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-keyint_min", "60",
			"-sc_threshold", "0", "-bf", "2", "-b:v", "300k", "-x264-params", "repeat-headers=1")
	case "hvc1":
		args = append(args, "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-b:v", "300k",
			"-x265-params", "keyint=60:min-keyint=60:scenecut=0:bframes=0:repeat-headers=1:pools=1:frame-threads=1:info=0:log-level=error")
	}
	args = append(args, "-c:a", "aac", "-ac", "2", "-b:a", "64k", "-f", "mp4", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return loadClip(t, out)
}

// nalTypes lists the NAL unit types of a length-prefixed (4-byte) access
// unit; hevc selects HEVC's 6-bit type.
func nalTypes(au []byte, hevc bool) []int {
	var out []int
	for len(au) >= 5 {
		n := int(au[0])<<24 | int(au[1])<<16 | int(au[2])<<8 | int(au[3])
		if n <= 0 || n > len(au)-4 {
			break
		}
		if hevc {
			out = append(out, int(au[4]>>1&0x3f))
		} else {
			out = append(out, int(au[4]&0x1f))
		}
		au = au[4+n:]
	}
	return out
}

// TestE2EEmptySequenceHeader: an encoder sends an AVC (legacy FLV) or HEVC
// (ExHeader) sequence header with an empty record and the parameter sets
// in-band in its keyframes (ffmpeg's tee muxer without +global_header,
// some hardware encoders). fount takes them from the first keyframe and
// the stream plays; it used to close the connection ("truncated record
// (0 bytes)").
func TestE2EEmptySequenceHeader(t *testing.T) {
	lockEndToEndLogged(t)
	requireTool(t, "ffprobe")
	dir := t.TempDir()
	cases := []struct {
		name   string
		video  string
		layout ertmptest.Layout
		hevc   bool
		vname  string
		codecs string
		want   []int // parameter set NAL types the first keyframe must hold
	}{
		{"avc-legacy", "avc1", ertmptest.Legacy, false, "h264", "avc1.", []int{7, 8}},
		{"hevc-exheader", "hvc1", ertmptest.ExHeader, true, "hevc", "hvc1.", []int{32, 33, 34}},
	}
	o := startOrigin(t, func(c *config) { c.PlaylistSize = 10 })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tracks := inbandClip(t, dir, c.video)
			v := findTrack(t, tracks, ertmptest.Video)
			types := nalTypes(v.Samples[0].Data, c.hevc)
			for _, w := range c.want {
				if !containsInt(types, w) {
					t.Fatalf("the clip's first keyframe has NAL units %v, no in-band parameter set %d: the encoder options are wrong", types, w)
				}
			}
			emptied := 0
			opts := ertmptest.Options{Shape: func(k ertmptest.Kind, _ time.Duration, body []byte) []byte {
				if k != ertmptest.Video || len(body) < 5 {
					return body
				}
				legacySeq := body[0]&0x80 == 0 && body[0]&0x0f == 7 && body[1] == 0
				exSeq := body[0]&0x80 != 0 && body[0]&0x0f == byte(ertmptest.SequenceStart)
				if legacySeq || exSeq {
					emptied++
					// Legacy: frame/codec, AVCPacketType, SI24 CTS.
					// ExHeader: frame/packet type, FourCC.
					return append([]byte(nil), body[:5]...)
				}
				return body
			}}
			r := pushWatch(o, c.name, c.layout, tracks, opts, func(s e2eStream) bool { return s.Codecs != "" })
			if emptied != 1 {
				t.Fatalf("%d sequence headers emptied, want 1", emptied)
			}
			if r.err != nil {
				t.Fatalf("publish: %v (fount closed the connection?)", r.err)
			}
			if l := logLine(o.logs.String(), "truncated record"); l != "" {
				t.Errorf("fount logged: %s", l)
			}
			segs, body := readBack(t, o, c.name, 4, true)
			checkMedia(t, segs, wantMedia{
				vcodec: c.vname, acodec: "aac", width: 320, height: 180,
				vframes: len(v.Samples), aframes: audioKept(tracks, true),
			})
			if t.Failed() {
				t.Logf("playlist:\n%s", body)
			}
			if !strings.HasPrefix(r.api.Codecs, c.codecs) {
				t.Errorf("API codecs %q, want %s… (from the in-band parameter sets)\n%s", r.api.Codecs, c.codecs, r.raw)
			}
		})
	}
}

// lockEndToEndLogged takes lockEndToEnd and says how long it waited, so
// that a test's runtime can be told from its wait.
func lockEndToEndLogged(t *testing.T) {
	start := time.Now()
	lockEndToEnd(t)
	if d := time.Since(start); d > time.Second {
		t.Logf("waited %s for the end-to-end lock", d.Round(time.Millisecond))
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
