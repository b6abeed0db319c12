//go:build unix

package main

import (
	"math"
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
	Ended            bool         `json:"ended"`        // the 'ended' event came
	StalledAtEnd     bool         `json:"stalledAtEnd"` // the playhead stood still for 3 s at the end, no 'ended' event
	EndTime          float64      `json:"endTime"`      // currentTime then
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
	switch {
	case !r.Ended && r.StalledAtEnd:
		// hls.js 1.7.4 does not call endOfStream() when a buffer hole
		// under maxBufferHole lies before the playhead: it looks for the
		// next range from the start of the merged one. It places the
		// media after a discontinuity by the playlist and its first
		// frame's composition delay (~67 ms with B-frames), which leaves
		// such a hole at every reconnect. The viewer saw everything.
		t.Logf("hls.js played to the end (%.2f s of %.2f) without an 'ended' event; buffered %v", r.EndTime, r.Duration, r.Buffered)
	case !r.Ended:
		fail("no 'ended' event within 60 s of the seek, nor the end reached: stuck at %.2f s of %.2f, buffered %v", r.EndTime, r.Duration, r.Buffered)
	case math.Abs(r.EndTime-r.Duration) > 1:
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
