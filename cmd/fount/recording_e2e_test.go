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
	"github.com/fount-live/fount/storage"
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
	rec = awaitRecording(t, o, "live/rec", "finished", 20*time.Second)

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
}

// TestE2ERecordingRetentionS3: on S3 (versitygw), an MPEG-TS stream's
// recording.ts is all of it for ffprobe, and --record-retention deletes
// exactly the recordings that ended longer ago, every object of theirs,
// and leaves the others.
func TestE2ERecordingRetentionS3(t *testing.T) {
	lockEndToEnd(t)
	src := source(t)
	requireTool(t, "ffprobe")
	v := startVersitygw(t, "fount-rec")
	const retention = 10 * time.Second
	o := startClassic(t, func(c *config) {
		c.Storage, c.S3Endpoint, c.S3AccessKey, c.S3SecretKey = "s3://fount-rec/edge", "http://"+v.addr, "fountkey", "fountsecret"
		c.Record, c.RecordRetention, c.ReconnectWindow, c.PlaylistSize = true, retention, time.Second, 3
	})
	bucket, err := storage.NewS3(context.Background(), storage.S3Config{Bucket: "fount-rec", Prefix: "edge", Endpoint: "http://" + v.addr, AccessKey: "fountkey", SecretKey: "fountsecret"})
	if err != nil {
		t.Fatal(err)
	}
	// Two events on one name, a few seconds apart: two recordings.
	var recs []playlist.Recording
	for i := range 2 {
		o.pushWait(t, "ev", []string{"-i", src}, "-c", "copy")
		awaitIdle(t, o, "live/ev")
		deadline := time.Now().Add(10 * time.Second)
		for recs = o.reg.Recordings("live/ev"); len(recs) != i+1 || recs[0].State != "finished"; recs = o.reg.Recordings("live/ev") {
			if time.Now().After(deadline) {
				t.Fatalf("recording %d not finished within 10 s: %+v", i+1, recs)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if i == 0 {
			// The second ends well after the first, so that one of them
			// outlives the other's retention.
			for time.Since(recs[0].End) < 4*time.Second {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	older, newer := recs[1], recs[0]
	if older.Format != "ts" || !strings.HasSuffix(older.Download, "/recording.ts") {
		t.Fatalf("a TS stream's recording: %+v", older)
	}
	probed, err := strconv.ParseFloat(ffprobeOut(t, "-show_entries", "format=duration", "-of", "csv=p=0", o.url(newer.Download)), 64)
	if err != nil || probed < newer.Duration-1 || probed > newer.Duration+1 {
		t.Errorf("ffprobe: recording.ts lasts %v s (%v), the recording %.2f s", probed, err, newer.Duration)
	}
	keysOf := func(rec playlist.Recording) []string {
		_, pl, _ := httpGet(t, o.url(rec.Playlist))
		var keys []string
		for _, line := range strings.Split(string(pl), "\n") {
			if name, ok := strings.CutPrefix(line, "../../"); ok {
				keys = append(keys, "live/ev/"+name)
			}
		}
		return append(keys, strings.TrimPrefix(rec.Playlist, "/"), strings.TrimSuffix(strings.TrimPrefix(rec.Playlist, "/"), "index.m3u8")+"recording.json")
	}
	olderKeys, newerKeys := keysOf(older), keysOf(newer)
	if len(olderKeys) < 5 || len(newerKeys) < 5 {
		t.Fatalf("keys: %v, %v", olderKeys, newerKeys)
	}
	// Flushed to the bucket (uploads are asynchronous).
	inBucket := func(key string) bool {
		_, err := bucket.Get(context.Background(), key)
		return err == nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for !inBucket(newerKeys[len(newerKeys)-1]) || !inBucket(olderKeys[0]) {
		if time.Now().After(deadline) {
			t.Fatal("the recordings did not reach the bucket within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The older one goes once it ended more than the retention ago; the
	// newer one, which ended seconds later, is still there then.
	deadline = older.End.Add(retention + 10*time.Second)
	for len(o.reg.Recordings("live/ev")) == 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the older recording was not deleted %s after its end", time.Since(older.End).Round(time.Second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	left := o.reg.Recordings("live/ev")
	t.Logf("%s after the older recording ended (retention %s): %d left", time.Since(older.End).Round(100*time.Millisecond), retention, len(left))
	if len(left) != 1 || left[0].ID != newer.ID || time.Since(newer.End) > retention {
		t.Fatalf("after the first expiry: %+v (the newer ended %s ago)", left, time.Since(newer.End))
	}
	deadline = time.Now().Add(20 * time.Second)
	for _, k := range olderKeys {
		for inBucket(k) {
			if time.Now().After(deadline) {
				t.Fatalf("%s of the expired recording is still in the bucket", k)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, k := range newerKeys {
		if !inBucket(k) {
			t.Errorf("%s of the kept recording is gone from the bucket", k)
		}
	}
	if code, _, _ := httpGet(t, o.url(older.Playlist)); code != 404 {
		t.Errorf("the expired recording's playlist: %d, want 404", code)
	}
}
