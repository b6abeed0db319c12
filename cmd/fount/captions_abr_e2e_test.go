package main

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/ingest/ertmptest"
)

// captionTextABRClip encodes, once per test, a 12 s two-rung ladder (the
// same forced keyframes every 2 s), its audio, and the captionTextOf
// texts at captionTextAt as a text subtitle stream.
func captionTextABRClip(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	srtFile, clip := filepath.Join(dir, "text.srt"), filepath.Join(dir, "ladder.mkv")
	writeCaptionSRT(t, srtFile)
	args := []string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-i", srtFile, "-t", "12",
		"-filter_complex", "[0:v]split=2[r0][b];[b]scale=160x90[r1]"}
	for i, r := range []abrRendition{{"hi", 320, 180, 300}, {"lo", 160, 90, 100}} {
		args = append(args, "-map", "[r"+strconv.Itoa(i)+"]")
		args = append(args, abrVideoArgs(":"+strconv.Itoa(i), r)...)
	}
	args = append(args, "-map", "1:a", "-c:a", "aac", "-b:a", "64k", "-map", "2:s", "-c:s", "srt", clip)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("encoding the ladder: %v\n%s", err, out)
	}
	return clip
}

// TestE2ECaptionTextABR: two grouped pushes from one ffmpeg, each with the
// same text subtitle stream (ffmpeg's FLV muxer sends it as onTextData on
// both connections). The group serves one WebVTT rendition, subs/, listed
// as SUBTITLES on every variant, fed by the first rendition that sent
// text (the other's identical text is ignored); its segments are numbered
// and timed as the media's, X-TIMESTAMP-MAP at the media segment's first
// PTS, each cue holding the text sent at its time.
func TestE2ECaptionTextABR(t *testing.T) {
	lockEndToEndLogged(t)
	requireTool(t, "ffmpeg")
	requireTool(t, "ffprobe")
	clip := captionTextABRClip(t)
	// --captions on: the group signals captions from its first keyframe,
	// so the subtitles may come with the first text, whenever it comes.
	o := startOrigin(t, func(c *config) {
		c.Captions.Mode = "on"
		c.LowLatency, c.SegmentFormat = false, "ts"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip}
	for i, name := range []string{"hi", "lo"} {
		args = append(args, "-map", "0:v:"+strconv.Itoa(i), "-map", "0:a", "-map", "0:s",
			"-c:v", "copy", "-c:a", "copy", "-c:s", "text", "-f", "flv", "rtmp://"+o.rtmp+"/live/vtt?variant="+name)
	}
	push := exec.CommandContext(ctx, "ffmpeg", args...)
	stderr := &syncBuffer{}
	push.Stderr = stderr
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		push.Wait()
		if t.Failed() {
			t.Logf("ffmpeg:\n%s", stderr.String())
		}
	}()

	subs, _ := awaitPlaylist(t, o.url("/live/vtt/subs/index.m3u8"), 25*time.Second, "3 WebVTT segments",
		func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 3 })
	_, mv, _ := httpGet(t, o.url("/live/vtt/index.m3u8"))
	if n := strings.Count(string(mv), "#EXT-X-MEDIA:TYPE=SUBTITLES,"); n != 1 ||
		!strings.Contains(string(mv), `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,URI="subs/index.m3u8"`) ||
		strings.Count(string(mv), "#EXT-X-STREAM-INF:") != 2 || strings.Count(string(mv), `SUBTITLES="subs"`) != 2 {
		t.Fatalf("multivariant playlist:\n%s", mv)
	}
	logs := o.logs.String()
	if n := strings.Count(logs, "caption text: serving a WebVTT subtitles rendition"); n != 1 {
		t.Errorf("%d renditions serve the subtitles, want 1", n)
	}
	if !strings.Contains(logs, "another rendition's publisher feeds the subtitles") {
		t.Error("no log of the other rendition's text being left out")
	}

	// Each WebVTT segment: the media segment of its number (in either
	// rendition) lasts as long, and its first PTS is the X-TIMESTAMP-MAP's.
	hi, _ := awaitPlaylist(t, o.url("/live/vtt/hi/index.m3u8"), 5*time.Second, "the media",
		func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 3 })
	media := map[uint64]*m3u8.MediaSegment{}
	for i, s := range segments(hi) {
		media[hi.SeqNo+uint64(i)] = s
	}
	checked, cues := 0, 0
	for i, s := range segments(subs) {
		m := media[subs.SeqNo+uint64(i)]
		if m == nil {
			continue
		}
		if math.Abs(m.Duration-s.Duration) > 0.001 {
			t.Errorf("WebVTT segment %s lasts %.3f s, the media's %s %.3f s", s.URI, s.Duration, m.URI, m.Duration)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=start_pts",
			"-of", "csv=p=0", o.url("/live/vtt/hi/"+m.URI)).Output()
		f := strings.Fields(string(out)) // the stream, and again in its program
		if err != nil || len(f) == 0 {
			t.Fatalf("ffprobe %s: %v: %s", m.URI, err, out)
		}
		pts, perr := strconv.ParseInt(f[0], 10, 64)
		if perr != nil {
			t.Fatalf("ffprobe %s: %v %v: %s", m.URI, err, perr, out)
		}
		mpegts, n := checkVTTSegment(t, o.url("/live/vtt/subs/"+s.URI), s.Duration)
		if mpegts != pts {
			t.Errorf("%s: X-TIMESTAMP-MAP MPEGTS:%d, the media segment %s starts at PTS %d", s.URI, mpegts, m.URI, pts)
		}
		checked++
		cues += n
	}
	if checked < 2 || cues < 2 {
		t.Fatalf("%d WebVTT segments checked against the media, %d cues", checked, cues)
	}
}

// checkVTTSegment fetches a WebVTT segment lasting dur and checks it: the
// header, X-TIMESTAMP-MAP, and each cue within the segment, holding the
// text sent at its start (textFor). It returns the MPEGTS time and the cues.
func checkVTTSegment(t *testing.T, url string, dur float64) (mpegts int64, cues int) {
	t.Helper()
	code, b, hdr := httpGet(t, url)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/vtt") || !strings.HasSuffix(url, ".vtt") {
		t.Fatalf("%s: %d %s", url, code, hdr.Get("Content-Type"))
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 || lines[0] != "WEBVTT" || !strings.HasSuffix(lines[1], ",LOCAL:00:00:00.000") {
		t.Fatalf("%s:\n%s", url, b)
	}
	if _, err := fmt.Sscanf(lines[1], "X-TIMESTAMP-MAP=MPEGTS:%d,", &mpegts); err != nil {
		t.Fatalf("%s: %v\n%s", url, err, b)
	}
	for j := 2; j+1 < len(lines); j++ {
		start, end, ok := vttCueTimes(lines[j], mpegts)
		if !ok {
			continue
		}
		if end > float64(mpegts)/90000+dur+0.001 || end <= start {
			t.Errorf("%s: cue %s leaves its segment", url, lines[j])
		}
		if want := textFor(start); lines[j+1] != want {
			t.Errorf("%s: cue at %.3f s holds %q, want %q", url, start, lines[j+1], want)
		}
		cues++
	}
	return mpegts, cues
}

// TestE2ECaptionTextMultitrack: a multitrack publisher (OBS layout, two
// video tracks) sends onTextData on its connection: its first video
// track's rendition feeds the group's WebVTT rendition, numbered as v0.
func TestE2ECaptionTextMultitrack(t *testing.T) {
	requireTool(t, "ffmpeg")
	dir := t.TempDir()
	spec := ertmptest.ClipSpec{Video: "avc1", Audio: "mp4a", Width: 320, Height: 180, FPS: 30, GOP: 60, Duration: 4 * time.Second, VideoKbps: 250, AudioKbps: 64}
	base := loadClip(t, ertmptest.MakeClip(t, dir, spec))
	spec.Audio, spec.VideoKbps = "", 150
	extra := findTrack(t, loadClip(t, ertmptest.MakeClip(t, dir, spec)), ertmptest.Video).WithID(1)
	o := startOrigin(t, func(c *config) { c.Captions.Mode = "on" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ertmptest.Dial(ctx, "rtmp://"+o.rtmp+"/live/mt")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next, werr := 0, error(nil)
	shape := func(_ ertmptest.Kind, ts time.Duration, body []byte) []byte {
		for ; next < 2 && ts >= captionTextAt(next); next++ {
			text, err := ertmptest.AMF0(nil, "onTextData", ertmptest.ECMAArray{{Key: "type", Value: "Text"}, {Key: "text", Value: captionTextOf(next)}})
			if err == nil {
				err = c.WriteData(captionTextAt(next), text)
			}
			werr = cmp.Or(werr, err)
		}
		return body
	}
	if err := c.Send(ctx, ertmptest.OBS, append(base, extra), ertmptest.Options{Realtime: true, Shape: shape}); err != nil || werr != nil {
		t.Fatalf("multitrack publish: %v %v", err, werr)
	}
	if err := c.Unpublish(); err != nil {
		t.Fatal(err)
	}
	c.Close() // the publish ends: the last segments are flushed
	subs, _ := awaitPlaylist(t, o.url("/live/mt/subs/index.m3u8"), 10*time.Second, "2 WebVTT segments",
		func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 2 })
	v0, _ := renditionPlaylist(t, o, "mt", "v0")
	if subs.SeqNo != v0.SeqNo || subs.Count() != v0.Count() {
		t.Errorf("WebVTT segments %d from %d, v0's %d from %d", subs.Count(), subs.SeqNo, v0.Count(), v0.SeqNo)
	}
	_, mv, _ := httpGet(t, o.url("/live/mt/index.m3u8"))
	if strings.Count(string(mv), "#EXT-X-MEDIA:TYPE=SUBTITLES,") != 1 || strings.Count(string(mv), `SUBTITLES="subs"`) != strings.Count(string(mv), "#EXT-X-STREAM-INF:") {
		t.Fatalf("multivariant playlist:\n%s", mv)
	}
	cues := 0
	for _, s := range segments(subs) {
		_, n := checkVTTSegment(t, o.url("/live/mt/subs/"+s.URI), s.Duration)
		cues += n
	}
	if cues < 2 {
		t.Fatalf("%d cues", cues)
	}
}
