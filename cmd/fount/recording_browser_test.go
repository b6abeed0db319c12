//go:build unix

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingReport is the line recording.mjs prints.
type recordingReport struct {
	HarnessError     string       `json:"harnessError"`
	BrowserVersion   string       `json:"browserVersion"`
	HLSVersion       string       `json:"hlsVersion"`
	MSEH264AAC       bool         `json:"mseH264AAC"`
	StartTime        float64      `json:"startTime"` // currentTime at the first 'playing'
	Duration         float64      `json:"duration"`  // video.duration when it seeked
	SeekTo           float64      `json:"seekTo"`
	StartFrames      int          `json:"startFrames"` // frames presented before the seek
	FramesAfterSeek  int          `json:"framesAfterSeek"`
	Ended            bool         `json:"ended"`   // the 'ended' event came
	EndTime          float64      `json:"endTime"` // currentTime then
	EndDuration      float64      `json:"endDuration"`
	PlaybackRate     float64      `json:"playbackRate"`
	RateRefused      string       `json:"rateRefused"` // why not 8x, if not
	SecondsSeekToEnd float64      `json:"secondsSeekToEnd"`
	FragsAfterSeek   []string     `json:"fragsAfterSeek"`
	Buffered         [][2]float64 `json:"buffered"` // video.buffered at the end
	Playlist         struct {
		Live            bool    `json:"live"`
		Type            string  `json:"type"`
		TotalDuration   float64 `json:"totalduration"`
		Fragments       int     `json:"fragments"`
		Discontinuities int     `json:"discontinuities"`
	} `json:"playlist"`
	Errors []struct {
		At                         float64
		Type, Details, Reason, URL string
		Fatal                      bool
		HTTPStatus                 int
	} `json:"errors"`
	VideoErrors []any `json:"videoErrors"`
}

// checkRecordingPlays: hls.js in Debian's chromium plays the finished
// recording at url (a VOD playlist of wantDuration seconds) from the start,
// seeks to its middle and plays on, at 8x, to the 'ended' event.
func checkRecordingPlays(t *testing.T, url string, wantDuration float64) {
	t.Helper()
	for _, tool := range []string{"node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	browserDeps(t)

	start := time.Now()
	r, line := runNodeScript[recordingReport](t, 150*time.Second, "recording.mjs", url)
	t.Logf("chromium %s, hls.js %s in %s: duration %.2f s (want %.2f, %d fragments, %d discontinuities), started at %.2f s, %d frames, seeked to %.2f s, %vx, ended=%v at %.2f s after %.1f s, %d frames after the seek; fragments after it %v",
		r.BrowserVersion, r.HLSVersion, time.Since(start).Round(time.Millisecond), r.Duration, wantDuration,
		r.Playlist.Fragments, r.Playlist.Discontinuities, r.StartTime, r.StartFrames, r.SeekTo, r.PlaybackRate,
		r.Ended, r.EndTime, r.SecondsSeekToEnd, r.FramesAfterSeek, r.FragsAfterSeek)
	failed := false
	fail := func(format string, args ...any) { t.Errorf(format, args...); failed = true }
	if r.HarnessError != "" {
		fail("recording.mjs: %s", r.HarnessError)
	}
	if r.RateRefused != "" {
		t.Logf("chromium refused 8x (%s): played at %vx", r.RateRefused, r.PlaybackRate)
	}
	if math.Abs(r.Duration-wantDuration) > 2.5 {
		fail("video.duration %.2f s, want %.2f s ± 2.5", r.Duration, wantDuration)
	}
	if r.StartTime > 1 {
		fail("playback began at %.2f s, want from the start (< 1 s)", r.StartTime)
	}
	if r.StartFrames < 10 {
		fail("%d frames presented before the seek, want >= 10", r.StartFrames)
	}
	if !r.Ended {
		fail("no 'ended' event within 60 s of the seek: stuck at %.2f s of %.2f, buffered %v", r.EndTime, r.Duration, r.Buffered)
	} else if math.Abs(r.EndTime-r.Duration) > 1 {
		fail("ended at %.2f s, want the end (%.2f s ± 1)", r.EndTime, r.Duration)
	}
	if r.FramesAfterSeek < 30 {
		fail("%d frames presented after the seek, want >= 30", r.FramesAfterSeek)
	}
	for _, e := range r.Errors {
		if e.Fatal {
			fail("fatal hls.js error: %+v", e)
		} else {
			t.Logf("hls.js error (not fatal): %+v", e)
		}
	}
	for _, e := range r.VideoErrors {
		fail("video element error: %v", e)
	}
	if failed {
		t.Logf("recording.mjs report: %s", line)
	}
}

// TestBrowserRecordingVOD runs checkRecordingPlays on a recording made by
// hand, laid out as fount stores one: two encoder runs (the second after a
// reconnect, with its own init segment and timestamps from 0 again) as
// live/show/segN, listed by live/show/rec/ID/index.m3u8 as ../../segN
// with an EXT-X-DISCONTINUITY (and, fMP4, a second EXT-X-MAP) at the join.
// The first run is the longer, so that playback from the middle crosses
// the join.
func TestBrowserRecordingVOD(t *testing.T) {
	lockEndToEnd(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	browserDeps(t)
	formats := []struct {
		name string
		fmp4 bool
	}{
		{"ts", false},
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			dir := t.TempDir()
			rec, total := recordingFixture(t, dir, f.fmp4, 12, 8)

			// A player on another origin (recording.mjs's page), as with fount.
			files := http.FileServer(http.Dir(dir))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Access-Control-Allow-Origin", "*")
				switch path.Ext(r.URL.Path) {
				case ".m3u8":
					w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
				case ".mp4", ".m4s":
					w.Header().Set("Content-Type", "video/mp4")
				case ".ts":
					w.Header().Set("Content-Type", "video/mp2t")
				}
				files.ServeHTTP(w, r)
			}))
			defer srv.Close()
			checkRecordingPlays(t, srv.URL+"/"+rec, total)
		})
	}
}

// recordingFixture encodes one run of each of runs seconds (2 s segments)
// into dir/live/show as fount's storage holds a stream's segments, numbered
// on from run to run, fMP4 (with init0.mp4, init1.mp4, …) or MPEG-TS, and
// writes a finished recording of them. It returns the recording
// playlist's key and its duration.
func recordingFixture(t *testing.T, dir string, fmp4 bool, runs ...int) (string, float64) {
	t.Helper()
	show := filepath.Join(dir, "live", "show")
	if err := os.MkdirAll(show, 0o755); err != nil {
		t.Fatal(err)
	}
	ext := ".ts"
	if fmp4 {
		ext = ".m4s"
	}
	type segment struct {
		uri      string
		duration float64
	}
	listed := make([][]segment, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	first := 0
	for i, seconds := range runs {
		wg.Add(1)
		go func(i, seconds, first int) {
			defer wg.Done()
			// ffmpeg puts the init segment beside its playlist: both in show,
			// the playlist removed once read.
			pl := filepath.Join(show, fmt.Sprintf(".run%d.m3u8", i))
			args := []string{"-hide_banner", "-loglevel", "error", "-y",
				"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
				"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=48000", 440+220*i),
				"-t", fmt.Sprint(seconds),
				"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
				"-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
				"-c:a", "aac", "-b:a", "96k", "-ac", "2",
				"-f", "hls", "-hls_time", "2", "-hls_list_size", "0", "-hls_playlist_type", "vod",
				"-start_number", fmt.Sprint(first),
				"-hls_segment_filename", filepath.Join(show, "seg%d"+ext)}
			if fmp4 {
				args = append(args, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", fmt.Sprintf("init%d.mp4", i))
			}
			out, err := exec.Command("ffmpeg", append(args, pl)...).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("ffmpeg, run %d: %v\n%s", i, err, out)
				return
			}
			b, err := os.ReadFile(pl)
			if err != nil {
				errs[i] = err
				return
			}
			os.Remove(pl)
			sc := bufio.NewScanner(bytes.NewReader(b))
			d := -1.0
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				switch {
				case strings.HasPrefix(line, "#EXTINF:"):
					d, err = strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "#EXTINF:"), ","), 64)
					if err != nil {
						errs[i] = fmt.Errorf("run %d: %q: %v", i, line, err)
						return
					}
				case line != "" && !strings.HasPrefix(line, "#"):
					listed[i] = append(listed[i], segment{line, d})
				}
			}
		}(i, seconds, first)
		first += seconds / 2
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	const id = "20261201T231313Z"
	pdt := time.Date(2026, 12, 1, 23, 13, 13, 0, time.UTC)
	var body strings.Builder
	version := 3
	if fmp4 {
		version = 6
	}
	fmt.Fprintf(&body, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n", version)
	n, total := 0, 0.0
	for i, segs := range listed {
		if len(segs) != runs[i]/2 {
			t.Fatalf("run %d: ffmpeg made %d segments of %d s, want %d of 2 s: %+v", i, len(segs), runs[i], runs[i]/2, segs)
		}
		if i > 0 {
			body.WriteString("#EXT-X-DISCONTINUITY\n")
			pdt = pdt.Add(3 * time.Second) // the encoder's reconnect
		}
		if fmp4 {
			fmt.Fprintf(&body, "#EXT-X-MAP:URI=\"../../init%d.mp4\"\n", i)
		}
		for _, s := range segs {
			if want := fmt.Sprintf("seg%d%s", n, ext); s.uri != want {
				t.Fatalf("run %d lists %s, want %s", i, s.uri, want)
			}
			fmt.Fprintf(&body, "#EXT-X-PROGRAM-DATE-TIME:%s\n#EXTINF:%.3f,\n../../%s\n", pdt.Format("2006-01-02T15:04:05.000Z07:00"), s.duration, s.uri)
			pdt = pdt.Add(time.Duration(s.duration * float64(time.Second)))
			total += s.duration
			n++
		}
	}
	body.WriteString("#EXT-X-ENDLIST\n")
	key := "live/show/rec/" + id + "/index.m3u8"
	p := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return key, total
}
