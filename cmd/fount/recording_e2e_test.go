//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/playlist"
)

// awaitRecording waits until stream has a recording in state.
func awaitRecording(t *testing.T, o *origin, stream, state string, timeout time.Duration) playlist.Recording {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if recs := o.reg.Recordings(stream); len(recs) > 0 && recs[0].State == state {
			return recs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s recording of %s within %s: %+v", state, stream, timeout, o.reg.Recordings(stream))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitIdle waits until the stream's publisher has gone.
func awaitIdle(t *testing.T, o *origin, stream string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s := o.reg.Stream(stream); s == nil || s.State() == playlist.StateLive; s = o.reg.Stream(stream) {
		if time.Now().After(deadline) {
			t.Fatalf("the publish of %s did not end within 20 s", stream)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ffprobeOut runs ffprobe with args and returns its trimmed output.
func ffprobeOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", append([]string{"-hide_banner", "-v", "error"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// decodeCount decodes every frame of url's first video and audio streams
// with ffmpeg (framecrc: one line a frame) and returns how many of each,
// failing on any error ffmpeg reports.
func decodeCount(t *testing.T, url string) (video, audio int) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", url, "-map", "0:v:0", "-map", "0:a:0", "-f", "framecrc", "-")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Errorf("ffmpeg decoding %s: %v\n%s", url, err, stderr.String())
	}
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "0,"):
			video++
		case strings.HasPrefix(line, "1,"):
			audio++
		}
	}
	return video, audio
}

// TestE2ERecording: two minutes of media pushed by ffmpeg with an encoder
// reconnect in the middle are one recording: every segment that was live,
// one discontinuity, EVENT while live and VOD once the stream ends; its
// recording.mp4 is all of it for ffmpeg and ffprobe; a restarted fount
// still lists and serves it; hls.js plays it from the middle to the end.
func TestE2ERecording(t *testing.T) {
	lockEndToEnd(t)
	src := source(t)
	requireTool(t, "ffprobe")
	dir := t.TempDir()
	mod := func(c *config) {
		c.Storage, c.Record, c.PlaylistSize, c.ReconnectWindow = "dir:"+dir, true, 3, 5*time.Second
	}
	o := startOrigin(t, mod)
	// 60 s of media (the 12 s source five times) as fast as fount takes
	// it, twice: the second push is the encoder coming back.
	push := func() {
		o.pushWait(t, "rec", []string{"-stream_loop", "4", "-i", src}, "-c", "copy")
		awaitIdle(t, o, "live/rec")
	}
	push()
	rec := awaitRecording(t, o, "live/rec", "recording", 5*time.Second)
	code, body, hdr := httpGet(t, o.url(rec.Playlist))
	if code != 200 || !bytes.Contains(body, []byte("#EXT-X-PLAYLIST-TYPE:EVENT")) || bytes.Contains(body, []byte("#EXT-X-ENDLIST")) {
		t.Fatalf("recording playlist while the stream may reconnect: %d\n%s", code, body)
	}
	t.Logf("while recording: Cache-Control %q", hdr.Get("Cache-Control"))
	push()
	rec = awaitRecording(t, o, "live/rec", "finished", 10*time.Second)

	// The recording lists seg0 … the last live segment, every one.
	_, live, _ := httpGet(t, o.url("/live/rec/index.m3u8"))
	lp, _, err := m3u8.DecodeFrom(bytes.NewReader(live), true)
	if err != nil {
		t.Fatal(err)
	}
	livePl := lp.(*m3u8.MediaPlaylist)
	last := livePl.SeqNo + uint64(livePl.Count()) - 1
	code, body, _ = httpGet(t, o.url(rec.Playlist))
	p, lt, err := m3u8.DecodeFrom(bytes.NewReader(body), true)
	if code != 200 || err != nil || lt != m3u8.MEDIA {
		t.Fatalf("recording playlist: %d %v\n%s", code, err, body)
	}
	mp := p.(*m3u8.MediaPlaylist)
	segs := segments(mp)
	if mp.MediaType != m3u8.VOD || !mp.Closed || uint64(len(segs)) != last+1 {
		t.Fatalf("finished recording: type %v, ENDLIST %v, %d segments; want VOD, ENDLIST and seg0…seg%d\n%s", mp.MediaType, mp.Closed, len(segs), last, body)
	}
	discs := 0
	for i, s := range segs {
		if want := fmt.Sprintf("../../seg%d.m4s", i); s.URI != want {
			t.Errorf("recording segment %d is %s, want %s", i, s.URI, want)
		}
		if s.Discontinuity {
			discs++
		}
	}
	dur := totalDuration(mp)
	if discs != 1 || dur < 118 || dur > 122 {
		t.Errorf("%d discontinuities, %.2f s; want 1 (the reconnect) and 120 s", discs, dur)
	}
	checkTargetDuration(t, mp, body)

	// The download: all of it, for ffprobe and ffmpeg.
	dl := o.url(rec.Download)
	probed, err := strconv.ParseFloat(ffprobeOut(t, "-show_entries", "format=duration", "-of", "csv=p=0", dl), 64)
	if err != nil || probed < dur-1 || probed > dur+1 {
		t.Errorf("ffprobe: recording.mp4 lasts %v s (%v), the playlist %.2f s", probed, err, dur)
	}
	video, audio := decodeCount(t, dl)
	// 2 × 60 s at 30 fps, less at most a GOP (60 frames) at each start.
	t.Logf("recording %s: %d segments, %.2f s, %d bytes; recording.mp4: ffprobe %.2f s, %d video frames, %d audio frames decoded",
		rec.ID, len(segs), dur, rec.Bytes, probed, video, audio)
	if video < 3600-120 || video > 3600 {
		t.Errorf("%d video frames decoded from recording.mp4, want 3,600 pushed (less at most a GOP a push)", video)
	}
	if audio < int(115*48000/1024) {
		t.Errorf("%d audio frames decoded: under 115 s of AAC", audio)
	}

	// A restarted fount still lists it and serves it.
	o.stop(t)
	o2 := startOrigin(t, mod)
	recs := o2.reg.Recordings("live/rec")
	if len(recs) != 1 || recs[0].ID != rec.ID || recs[0].State != "finished" || recs[0].Segments != len(segs) {
		t.Fatalf("after a restart: %+v", recs)
	}
	if code, again, _ := httpGet(t, o2.url(rec.Playlist)); code != 200 || !bytes.Equal(again, body) {
		t.Errorf("the recording's playlist after a restart: %d, same bytes %v", code, bytes.Equal(again, body))
	}
	for _, i := range []int{0, len(segs) / 2, len(segs) - 1} {
		if code, _, _ := httpGet(t, o2.url("/live/rec/"+segs[i].URI[len("../../"):])); code != 200 {
			t.Errorf("%s after a restart: %d", segs[i].URI, code)
		}
	}
	checkRecordingPlays(t, o2.url(rec.Playlist), dur)
	_ = context.Background
}
