package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"github.com/yutopp/go-amf0"

	"github.com/fount-live/fount/ingest/flv"
	"github.com/fount-live/fount/segmenter/codec/cctest"
)

// captionText is what the caption tests send in CEA-608 (CC1, pop-on).
const captionText = "HELLO FOUNT"

// captionedTags returns the FLV file src with captionText in CEA-608
// cc_data SEI on every video frame, shown anew every 2 s (60 frames).
func captionedTags(t *testing.T, file string) []flvTag {
	t.Helper()
	src := readFLV(t, file)
	tags := make([]flv.Tag, len(src))
	for i, g := range src {
		tags[i] = flv.Tag{Type: g.typ, Timestamp: uint32(g.ts), Data: g.data}
	}
	cc, err := cctest.Captions(tags, captionText, 60)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]flvTag, len(cc))
	for i, g := range cc {
		out[i] = flvTag{typ: g.Type, ts: int64(g.Timestamp), data: g.Data}
	}
	return out
}

// TestE2ECaptions: a publisher whose H.264 carries CEA-608 in SEI gets a
// multivariant playlist signalling CC1 at its URL, its media playlist at
// APP/NAME/main/, and the caption bytes pass through the remux untouched:
// ffprobe reports Closed Captions on fount's segments and ffmpeg's 608
// decoder reads the text sent, in MPEG-TS and in fMP4. The API shows the
// captions.
func TestE2ECaptions(t *testing.T) {
	requireTool(t, "ffprobe")
	lockEndToEnd(t)
	tags := captionedTags(t, source(t)) // B-frames: cc_data in decode order is not in display order
	for _, format := range []string{"ts", "fmp4"} {
		t.Run(format, func(t *testing.T) {
			o := startOrigin(t, func(c *config) {
				c.SegmentFormat = format
				c.Captions.Name, c.Captions.Language = "Deutsch", "de"
			})
			c, sid := publishRTMP(t, o.rtmp, "cc")
			if err := c.sendTags(sid, tags); err != nil {
				t.Fatal(err)
			}
			p, _ := awaitPlaylist(t, o.url("/live/cc/main/index.m3u8"), 20*time.Second, "3 segments",
				func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 3 })
			code, mv, _ := httpGet(t, o.url("/live/cc/index.m3u8"))
			if code != 200 || !strings.Contains(string(mv), `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="Deutsch",LANGUAGE="de",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"`) ||
				!strings.Contains(string(mv), `CLOSED-CAPTIONS="cc"`) || !strings.Contains(string(mv), "\nmain/index.m3u8\n") {
				t.Fatalf("multivariant playlist (%d):\n%s", code, mv)
			}

			// The first segments, after the init segment in fMP4, as one file.
			var media []byte
			if p.Map != nil {
				_, b, _ := httpGet(t, o.url("/live/cc/main/"+p.Map.URI))
				media = append(media, b...)
			}
			for _, s := range segments(p)[:3] {
				if s.Map != nil && p.Map == nil {
					_, b, _ := httpGet(t, o.url("/live/cc/main/"+s.Map.URI))
					media = append(media, b...)
				}
				code, b, _ := httpGet(t, o.url("/live/cc/main/"+s.URI))
				if code != 200 {
					t.Fatalf("%s: %d", s.URI, code)
				}
				media = append(media, b...)
			}
			file := filepath.Join(t.TempDir(), "media."+format)
			if err := os.WriteFile(file, media, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("ffprobe", "-hide_banner", file).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Closed Captions") {
				t.Fatalf("ffprobe does not report Closed Captions on fount's segments (%v):\n%s", err, out)
			}
			srt := filepath.Join(t.TempDir(), "cc.srt")
			if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "movie="+file+"[out0+subcc]", "-map", "0:s", srt).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg reading the captions: %v\n%s", err, out)
			}
			if b, _ := os.ReadFile(srt); strings.Count(string(b), captionText) < 2 {
				t.Fatalf("captions read from fount's segments: %q, want %q in each caption", b, captionText)
			}

			var st apiStream
			if code, b, _ := httpGet(t, "http://"+o.api+"/api/v1/streams/live/cc"); code != 200 || json.Unmarshal(b, &st) != nil {
				t.Fatalf("API: %d %s", code, b)
			}
			if cc := st.Captions; cc == nil || !cc.Signalled || cc.InstreamID != "CC1" || cc.Language != "de" || cc.InVideo != "608" || len(st.Renditions) != 1 || st.Renditions[0] != "main" {
				t.Fatalf("API: captions %+v, renditions %v", cc, st.Renditions)
			}
			if !strings.Contains(o.logs.String(), "captions signalled") {
				t.Fatal("no log line says the captions are signalled")
			}
		})
	}
}

// TestE2ECaptionsModes: --captions auto leaves a stream without captions
// as it was (its media playlist at its URL), on declares captions for any
// stream with video, off signals none; a captioned stream keeps its shape
// when its encoder comes back without captions.
func TestE2ECaptionsModes(t *testing.T) {
	requireTool(t, "ffmpeg")
	plain := readFLV(t, source(t))
	captioned := captionedTags(t, source(t))
	isMultivariant := func(t *testing.T, o *origin, name string) bool {
		t.Helper()
		url := o.url("/live/" + name + "/index.m3u8")
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if code, b, _ := httpGet(t, url); code == 200 {
				return strings.Contains(string(b), "#EXT-X-STREAM-INF")
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: no playlist", url)
		return false
	}
	push := func(t *testing.T, o *origin, name string, tags []flvTag) *rtmpClient {
		c, sid := publishRTMP(t, o.rtmp, name)
		if err := c.sendTags(sid, tags); err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("auto", func(t *testing.T) {
		o := startOrigin(t, nil)
		push(t, o, "plain", plain)
		if isMultivariant(t, o, "plain") {
			t.Error("a stream without captions got a multivariant playlist")
		}
		c := push(t, o, "cc", captioned)
		if !isMultivariant(t, o, "cc") {
			t.Fatal("a captioned stream has no multivariant playlist")
		}
		// The encoder comes back without captions: same shape, same rendition.
		awaitPlaylist(t, o.url("/live/cc/main/index.m3u8"), 10*time.Second, "segments", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 2 })
		c.conn.Close()
		deadline := time.Now().Add(10 * time.Second)
		for o.reg.Stream("live/cc/main").State() == "live" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		push(t, o, "cc", retime(plain, false, func(_ byte, ts int64) int64 { return ts + 12000 }))
		awaitPlaylist(t, o.url("/live/cc/main/index.m3u8"), 10*time.Second, "a discontinuity", func(_ *m3u8.MediaPlaylist, b []byte) bool {
			return strings.Contains(string(b), "#EXT-X-DISCONTINUITY")
		})
		if !isMultivariant(t, o, "cc") {
			t.Fatal("the captioned stream lost its multivariant playlist on reconnect")
		}
	})
	t.Run("renditions", func(t *testing.T) {
		// Grouped pushes whose video carries captions: the group signals
		// them on every variant.
		o := startOrigin(t, nil)
		for _, rend := range []string{"hi", "lo"} {
			push(t, o, "ev?variant="+rend, captioned)
		}
		awaitPlaylist(t, o.url("/live/ev/lo/index.m3u8"), 10*time.Second, "segments", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 2 })
		_, b, _ := httpGet(t, o.url("/live/ev/index.m3u8"))
		if strings.Count(string(b), `CLOSED-CAPTIONS="cc"`) != 2 || !strings.Contains(string(b), `INSTREAM-ID="CC1"`) {
			t.Fatalf("multivariant playlist:\n%s", b)
		}
	})
	t.Run("on", func(t *testing.T) {
		o := startOrigin(t, func(c *config) { c.Captions.Mode = "on" })
		push(t, o, "plain", plain)
		if !isMultivariant(t, o, "plain") {
			t.Error("--captions on: no multivariant playlist")
		}
	})
	t.Run("off", func(t *testing.T) {
		o := startOrigin(t, func(c *config) { c.Captions.Mode = "off" })
		push(t, o, "cc", captioned)
		if isMultivariant(t, o, "cc") {
			t.Error("--captions off: a multivariant playlist")
		}
	})
}

func TestCaptionFlags(t *testing.T) {
	for _, c := range []captionFlags{defaultCaptionFlags(), {"on", "Español", "es-419"}, {"off", "x", "de"}} {
		if err := c.validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, c := range []captionFlags{{"yes", "English", "en"}, {"auto", `"`, "en"}, {"auto", "English", "en US"}} {
		if err := c.validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// captionTextAt is when TestE2ECaptionText and TestBrowserCaptions send
// caption text n (n = 0…5): 1 s, 3 s, … 11 s into the 12 s source.
func captionTextAt(n int) time.Duration { return time.Duration(2*n+1) * time.Second }

func captionTextOf(n int) string { return fmt.Sprintf("SUBTITLE %d", n) }

// writeCaptionSRT writes the six captionTextOf texts, each at captionTextAt
// for half a second, as an SRT file at path, for ffmpeg to send as a text
// subtitle stream (onTextData in FLV).
func writeCaptionSRT(t *testing.T, path string) {
	t.Helper()
	var srt strings.Builder
	for n := range 6 {
		at := captionTextAt(n)
		fmt.Fprintf(&srt, "%d\n00:00:%02d,000 --> 00:00:%02d,500\n%s\n\n", n+1, int(at.Seconds()), int(at.Seconds()), captionTextOf(n))
	}
	if err := os.WriteFile(path, []byte(srt.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// vttCueTimes reads a WebVTT cue timing line into media seconds, given the
// segment's X-TIMESTAMP-MAP MPEGTS value; ok is false for other lines.
func vttCueTimes(line string, mpegts int64) (start, end float64, ok bool) {
	var h1, m1, s1, ms1, h2, m2, s2, ms2 int
	if n, _ := fmt.Sscanf(line, "%d:%d:%d.%d --> %d:%d:%d.%d", &h1, &m1, &s1, &ms1, &h2, &m2, &s2, &ms2); n != 8 {
		return 0, 0, false
	}
	base := float64(mpegts) / 90000
	return base + float64(h1*3600+m1*60+s1) + float64(ms1)/1000, base + float64(h2*3600+m2*60+s2) + float64(ms2)/1000, true
}

// textFor is the caption text shown at media time sec, on the 12 s
// source's timeline (looped): each text until the next.
func textFor(sec float64) string {
	n := int(math.Floor((math.Mod(sec, 12) - 1 + 0.05) / 2))
	if n < 0 {
		n = 5 // before the first text of a loop: the last of the one before
	}
	return captionTextOf(n)
}

// TestE2ECaptionText: onTextData caption text, as ffmpeg's FLV muxer sends
// it ({type: "Text", text}), becomes the captioned stream's WebVTT
// rendition: listed as SUBTITLES, its segments numbered and timed as the
// media's, each with the X-TIMESTAMP-MAP of its start, holding the texts at
// their times; with LL-HLS fMP4 media, the WebVTT playlist has no parts.
func TestE2ECaptionText(t *testing.T) {
	tags := captionedTags(t, source(t))
	o := startOrigin(t, nil) // LL-HLS, fMP4
	c, sid := publishRTMP(t, o.rtmp, "tt")
	next := 0
	for _, g := range tags {
		for next < 6 && !g.config() && g.typ != tagScript && g.ts >= captionTextAt(next).Milliseconds() {
			body := amf("onTextData", amf0.ECMAArray{"type": "Text", "text": captionTextOf(next)})
			if err := c.writeMsg(5, 18, sid, uint32(captionTextAt(next).Milliseconds()), body); err != nil {
				t.Fatal(err)
			}
			next++
		}
		if err := c.sendTags(sid, []flvTag{g}); err != nil {
			t.Fatal(err)
		}
	}
	subs, _ := awaitPlaylist(t, o.url("/live/tt/subs/index.m3u8"), 20*time.Second, "5 WebVTT segments",
		func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 5 })
	main, _ := awaitPlaylist(t, o.url("/live/tt/main/index.m3u8"), 5*time.Second, "the media", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 5 })
	_, mv, _ := httpGet(t, o.url("/live/tt/index.m3u8"))
	if !strings.Contains(string(mv), `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,URI="subs/index.m3u8"`) ||
		!strings.Contains(string(mv), `SUBTITLES="subs"`) {
		t.Fatalf("multivariant playlist:\n%s", mv)
	}
	_, raw, _ := httpGet(t, o.url("/live/tt/subs/index.m3u8"))
	if strings.Contains(string(raw), "#EXT-X-PART") || strings.Contains(string(raw), "#EXT-X-MAP") || strings.Contains(string(raw), "PRELOAD-HINT") {
		t.Fatalf("the WebVTT playlist has parts or a map:\n%s", raw)
	}
	// Numbered and timed as the media.
	if subs.SeqNo > main.SeqNo+uint64(main.Count()) || main.SeqNo > subs.SeqNo+uint64(subs.Count()) {
		t.Fatalf("WebVTT numbers from %d, media from %d", subs.SeqNo, main.SeqNo)
	}
	mediaDur := map[uint64]float64{}
	for i, s := range segments(main) {
		mediaDur[main.SeqNo+uint64(i)] = s.Duration
	}
	var prevMPEGTS int64 = -1
	var prevDur float64
	cues := 0
	for i, s := range segments(subs) {
		msn := subs.SeqNo + uint64(i)
		if d, ok := mediaDur[msn]; ok && math.Abs(d-s.Duration) > 0.001 {
			t.Errorf("WebVTT segment %d lasts %.3f s, the media's %.3f s", msn, s.Duration, d)
		}
		code, b, hdr := httpGet(t, o.url("/live/tt/subs/"+s.URI))
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/vtt") || !strings.HasSuffix(s.URI, ".vtt") {
			t.Fatalf("%s: %d %s", s.URI, code, hdr.Get("Content-Type"))
		}
		lines := strings.Split(string(b), "\n")
		var mpegts int64
		if len(lines) < 2 || lines[0] != "WEBVTT" || !strings.HasSuffix(lines[1], ",LOCAL:00:00:00.000") {
			t.Fatalf("%s:\n%s", s.URI, b)
		}
		if _, err := fmt.Sscanf(lines[1], "X-TIMESTAMP-MAP=MPEGTS:%d,", &mpegts); err != nil {
			t.Fatalf("%s: %v\n%s", s.URI, err, b)
		}
		if prevMPEGTS >= 0 && math.Abs(float64(mpegts-prevMPEGTS)/90000-prevDur) > 0.002 {
			t.Errorf("%s starts %.3f s after the one before, which lasts %.3f s", s.URI, float64(mpegts-prevMPEGTS)/90000, prevDur)
		}
		prevMPEGTS, prevDur = mpegts, s.Duration
		for j := 2; j+1 < len(lines); j++ {
			start, end, ok := vttCueTimes(lines[j], mpegts)
			if !ok {
				continue
			}
			if end > float64(mpegts)/90000+s.Duration+0.001 || end <= start {
				t.Errorf("%s: cue %s leaves its segment", s.URI, lines[j])
			}
			if want := textFor(start); lines[j+1] != want {
				t.Errorf("%s: cue at %.3f s holds %q, want %q", s.URI, start, lines[j+1], want)
			}
			cues++
		}
	}
	if cues < 4 {
		t.Fatalf("%d cues in the WebVTT segments", cues)
	}
}
