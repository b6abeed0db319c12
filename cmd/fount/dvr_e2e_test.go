//go:build unix

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hls "github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/storage"
)

// storedIn reads a key of --storage dir:DIR as fount wrote it.
func storedIn(dir string) func(string) ([]byte, error) {
	return func(key string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, filepath.FromSlash(key))) }
}

// dvrPush pushes the 12 s source looped 8 times (96 s of media) without
// -re, so that it takes seconds, to an origin with a 10 min DVR window on
// dir: storage (mod may set another) and a memory window of 3 segments;
// the stream then waits for its encoder (a long reconnect window), its
// playlist still live. It returns the origin, the storage directory, the
// playlist URL and its body once the whole push is listed.
func dvrPush(t *testing.T, mod func(*config)) (*origin, string, string, *m3u8.MediaPlaylist, []byte) {
	t.Helper()
	src := source(t)
	dir := t.TempDir()
	o := startOrigin(t, func(c *config) {
		c.Storage, c.PlaylistSize, c.DVRWindow, c.ReconnectWindow = "dir:"+dir, 3, 10*time.Minute, 10*time.Minute
		if mod != nil {
			mod(c)
		}
	})
	start := time.Now()
	o.pushWait(t, "dvr", []string{"-stream_loop", "7", "-i", src}, "-c", "copy")
	t.Logf("pushed 96 s of media in %s", time.Since(start).Round(time.Millisecond))
	// fount may still be reading what ffmpeg sent: the whole push is
	// listed once the publish has ended.
	deadline := time.Now().Add(20 * time.Second)
	for s := o.reg.Stream("live/dvr"); s == nil || s.State() != playlist.StateIdle; s = o.reg.Stream("live/dvr") {
		if time.Now().After(deadline) {
			t.Fatal("the publish did not end within 20 s of the push")
		}
		time.Sleep(50 * time.Millisecond)
	}
	url := o.url("/live/dvr/index.m3u8")
	p, body := awaitPlaylist(t, url, 20*time.Second, "the whole push listed", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 90
	})
	return o, dir, url, p, body
}

// checkPDTStep: a segment's EXT-X-PROGRAM-DATE-TIME is its predecessor's
// plus that one's EXTINF (both in whole milliseconds), as PDT follows the
// media timeline between discontinuities.
func checkPDTStep(t *testing.T, uri string, step, extinf time.Duration) {
	t.Helper()
	if d := step - extinf; d < -2*time.Millisecond || d > 2*time.Millisecond {
		t.Errorf("%s: EXT-X-PROGRAM-DATE-TIME %v after the previous segment's, whose EXTINF is %v", uri, step, extinf)
	}
}

// checkDVRPlaylist: the DVR window lists the whole push, many more
// segments than --playlist-size, each with its EXT-X-PROGRAM-DATE-TIME
// (never going back); segments beyond the memory window are served from
// storage, with the bytes stored.
func checkDVRPlaylist(t *testing.T, o *origin, stored func(key string) ([]byte, error), p *m3u8.MediaPlaylist, body []byte) {
	t.Helper()
	segs := segments(p)
	if len(segs) < 40 || p.SeqNo != 0 {
		t.Fatalf("%d segments listed from %d, want the whole push (>= 40, from 0)\n%s", len(segs), p.SeqNo, body)
	}
	if bytes.Contains(body, []byte("#EXT-X-ENDLIST")) {
		t.Fatalf("the playlist ended:\n%s", body)
	}
	checkTargetDuration(t, p, body)
	var last time.Time
	for i, s := range segs {
		if s.ProgramDateTime.IsZero() {
			t.Errorf("%s has no EXT-X-PROGRAM-DATE-TIME", s.URI)
		}
		if s.ProgramDateTime.Before(last) {
			t.Errorf("%s: EXT-X-PROGRAM-DATE-TIME goes back", s.URI)
		}
		if i > 0 && !s.Discontinuity {
			// The push runs faster than real time: PDT still follows the media.
			checkPDTStep(t, s.URI, s.ProgramDateTime.Sub(last), time.Duration(segs[i-1].Duration*float64(time.Second)))
		}
		last = s.ProgramDateTime
	}
	// Out of memory a grace (5 target durations) after leaving the memory
	// window: the event loops' look-up no longer finds the newest one
	// that left it, nor any older.
	left := "/live/dvr/" + segs[len(segs)-4].URI
	deadline := time.Now().Add(30 * time.Second)
	served := func(p string) bool {
		_, v := o.reg.Lookup(httploop.Request{Path: []byte(p)})
		return v == httploop.Serve
	}
	for served(left) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still in memory after 30 s", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
	inMemory := 0
	for _, s := range segs {
		key := "live/dvr/" + s.URI
		want, err := stored(key)
		if err != nil {
			t.Fatalf("%s is listed but not in storage: %v", key, err)
		}
		if served("/" + key) {
			inMemory++
		}
		code, got, _ := httpGet(t, o.url("/"+key))
		if code != 200 || !bytes.Equal(got, want) {
			t.Errorf("%s: %d, %d bytes; want 200 and the %d stored", key, code, len(got), len(want))
		}
	}
	if inMemory != 3 {
		t.Errorf("%d of %d listed segments in memory; want the memory window's 3", inMemory, len(segs))
	}
	t.Logf("%d segments listed (%.1f s), %d of them in memory", len(segs), totalDuration(p), inMemory)
}

// dvrReport is the line dvr.mjs prints.
type dvrReport struct {
	HarnessError   string  `json:"harnessError"`
	BrowserVersion string  `json:"browserVersion"`
	HLSVersion     string  `json:"hlsVersion"`
	MSEH264AAC     bool    `json:"mseH264AAC"`
	SeekableStart  float64 `json:"seekableStart"`
	SeekableEnd    float64 `json:"seekableEnd"`
	TimeBefore     float64 `json:"timeBeforeSeek"`
	SeekTo         float64 `json:"seekTo"`
	FramesAtSeek   int     `json:"framesAtSeek"`
	End            struct {
		CurrentTime float64 `json:"currentTime"`
		Frames      int     `json:"frames"`
		PlayingDate string  `json:"playingDate"`
	} `json:"end"`
	FragsAfterSeek []string `json:"fragsAfterSeek"`
	Errors         []struct {
		Type, Details, Reason, URL string
		Fatal                      bool
		HTTPStatus                 int
	} `json:"errors"`
	VideoErrors []any `json:"videoErrors"`
}

// TestE2EDVRSeek: hls.js in Debian's chromium joins a stream with a DVR
// window, seeks 60 s behind the live edge (into segments served from
// storage) and plays from there.
func TestE2EDVRSeek(t *testing.T) {
	lockEndToEnd(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	browserDeps(t)
	o, dir, url, p, body := dvrPush(t, classic)
	checkDVRPlaylist(t, o, storedIn(dir), p, body)

	r, line := runNodeScript[dvrReport](t, 120*time.Second, "dvr.mjs", url, "60")
	t.Logf("chromium %s, hls.js %s: seekable %.1f-%.1f s, playing at %.1f s, seeked to %.1f s, now at %.1f s (%s), %d frames presented since; fragments after the seek %v",
		r.BrowserVersion, r.HLSVersion, r.SeekableStart, r.SeekableEnd, r.TimeBefore, r.SeekTo, r.End.CurrentTime, r.End.PlayingDate, r.End.Frames-r.FramesAtSeek, r.FragsAfterSeek)
	failed := false
	fail := func(format string, args ...any) { t.Errorf(format, args...); failed = true }
	if r.HarnessError != "" {
		fail("dvr.mjs: %s", r.HarnessError)
	}
	if r.SeekableEnd-r.SeekableStart < 80 {
		fail("hls.js's seekable range %.1f-%.1f s does not cover the DVR window (~96 s)", r.SeekableStart, r.SeekableEnd)
	}
	if r.SeekTo > r.SeekableEnd-59 || r.SeekTo < r.SeekableStart {
		fail("seek to %.1f s: not 60 s behind the live edge %.1f s", r.SeekTo, r.SeekableEnd)
	}
	if r.End.CurrentTime < r.SeekTo+2 || r.End.CurrentTime > r.SeekTo+15 {
		fail("currentTime %.1f s after the seek to %.1f s: want playback from there (>= 2 s past it)", r.End.CurrentTime, r.SeekTo)
	}
	if r.End.Frames-r.FramesAtSeek < 30 {
		fail("%d frames presented after the seek", r.End.Frames-r.FramesAtSeek)
	}
	if r.End.PlayingDate == "" {
		fail("hls.js has no playing date (EXT-X-PROGRAM-DATE-TIME)")
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
		t.Logf("dvr.mjs report: %s", line)
	}
}

// TestE2EDVRDeltaUpdate: with LL-HLS a DVR playlist's delta update
// (_HLS_skip=YES) lists only the last CAN-SKIP-UNTIL of it.
func TestE2EDVRDeltaUpdate(t *testing.T) {
	lockEndToEnd(t)
	o, dir, url, p, body := dvrPush(t, llConfig)
	checkDVRPlaylist(t, o, storedIn(dir), p, body)
	var m hls.Media
	if err := m.Unmarshal(body); err != nil {
		t.Fatalf("gohlslib cannot parse the playlist: %v\n%s", err, body)
	}
	checkLLPlaylist(t, &m, body, true)
	code, delta, _ := httpGet(t, url+"?_HLS_skip=YES")
	if code != 200 || !bytes.Contains(delta, []byte("#EXT-X-SKIP:SKIPPED-SEGMENTS=")) {
		t.Fatalf("delta update: %d\n%s", code, delta)
	}
	var d hls.Media
	if err := d.Unmarshal(delta); err != nil {
		t.Fatalf("gohlslib cannot parse the delta update: %v\n%s", err, delta)
	}
	if n := strings.Count(string(delta), "#EXTINF:"); n > 8 {
		t.Errorf("the delta update lists %d segments, want those within CAN-SKIP-UNTIL (12 s)", n)
	}
	t.Logf("reload of a %d-segment DVR playlist: full %d bytes (gzip %d), delta %d bytes (gzip %d)",
		len(segments(p)), len(body), gzLen(body), len(delta), gzLen(delta))
}

// TestE2EDVRS3: on S3 storage, the segments of the DVR window that left
// memory are served from the bucket.
func TestE2EDVRS3(t *testing.T) {
	lockEndToEnd(t)
	v := startVersitygw(t, "fount-dvr")
	o, _, _, p, body := dvrPush(t, func(c *config) {
		classic(c)
		c.Storage, c.S3Endpoint, c.S3AccessKey, c.S3SecretKey = "s3://fount-dvr/edge", "http://"+v.addr, "fountkey", "fountsecret"
	})
	bucket, err := storage.NewS3(context.Background(), storage.S3Config{Bucket: "fount-dvr", Prefix: "edge", Endpoint: "http://" + v.addr, AccessKey: "fountkey", SecretKey: "fountsecret"})
	if err != nil {
		t.Fatal(err)
	}
	checkDVRPlaylist(t, o, func(key string) ([]byte, error) {
		obj, err := bucket.Get(context.Background(), key)
		return obj.Data, err
	}, p, body)
}

func gzLen(b []byte) int {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Len()
}
