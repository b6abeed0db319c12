package playlist_test

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
	"github.com/fount-live/fount/storage"
)

// sink hands what a segmenter makes to a playlist.Stream, as cmd/fount
// does: the playlist package has its own Segment and Part types, so that
// it imports neither segmenter nor ingest.
type sink struct {
	st          *playlist.Stream
	partsFollow bool // segmenter.Config.PartsOnly
}

func (k sink) Init(in segmenter.Init) error { return k.st.Init(in.Data) }

func (k sink) Part(p segmenter.Part) error {
	return k.st.Part(playlist.Part{Data: p.Data, Duration: p.Duration, Independent: p.Independent,
		SegmentStart: p.SegmentStart, SegmentDue: p.SegmentDue})
}

func (k sink) Segment(seg segmenter.Segment) error {
	var ifr []playlist.IFrame
	for _, f := range seg.IFrames {
		ifr = append(ifr, playlist.IFrame{Offset: int64(f.Offset), Size: int64(f.Size), Duration: f.Duration})
	}
	return k.st.Segment(playlist.Segment{Data: seg.Data, PartsFollow: k.partsFollow, Duration: seg.Duration,
		ProgramDateTime: seg.ProgramDateTime, Discontinuity: seg.Discontinuity, Start: seg.Start, IFrames: ifr})
}

// publish runs seconds of a 25 fps H.264 + 48 kHz AAC stream (a keyframe
// every 2 s, whole-millisecond timestamps as RTMP gives them; NAL units
// with placeholder slice bytes, which the segmenter does not decode, and
// silent AAC) through a segmenter into st. The wall
// clock follows the media, from 2026-01-01 00:00 UTC, so that the
// playlist's program date-times are the same on every run.
func publish(st *playlist.Stream, cfg segmenter.Config, seconds int) {
	var now time.Duration
	cfg.Now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(now) }
	cfg.Expect = segmenter.Video | segmenter.Audio
	cfg.Logger = slog.New(slog.DiscardHandler)
	seg := segmenter.New(cfg, sink{st, cfg.PartsOnly})
	record, _ := hex.DecodeString("0142c00dffe100186742c00dd90141fb011000000300100000030320f142a48001000568cb83cb20")
	v, err := codec.ParseVideo(codec.AVC, record)
	if err != nil {
		panic(err)
	}
	a, err := codec.ParseAudio(codec.AAC, []byte{0x11, 0x90}) // AAC-LC, 48 kHz, stereo
	if err != nil {
		panic(err)
	}
	if err := seg.SetVideoConfig(v); err != nil {
		panic(err)
	}
	if err := seg.SetAudioConfig(a); err != nil {
		panic(err)
	}
	var nv, na int
	for {
		vt := time.Duration(nv*40) * time.Millisecond
		at := time.Duration(na*1024*1000/48000) * time.Millisecond
		if min(vt, at) >= time.Duration(seconds)*time.Second {
			return
		}
		f := segmenter.Frame{Kind: segmenter.Audio, DTS: at, PTS: at, Data: []byte{0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80}}
		if vt <= at {
			nal := byte(0x41) // non-IDR slice
			if nv%50 == 0 {
				nal = 0x65 // IDR slice
			}
			f = segmenter.Frame{Kind: segmenter.Video, DTS: vt, PTS: vt, Key: nal == 0x65, Data: []byte{0, 0, 0, 4, nal, 0x88, 0x84, 0x21}}
			nv++
		} else {
			na++
		}
		now = f.DTS
		if err := seg.WriteFrame(f); err != nil {
			panic(err)
		}
	}
}

// get prints what the registry's handler answers to a GET of path.
func get(reg *playlist.Registry, path string, body bool) {
	rec := httptest.NewRecorder()
	reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	fmt.Printf("GET %s: %d %s, %d bytes\n", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	if body {
		fmt.Print(rec.Body.String())
	}
}

// Frames in, a playlist out: a stream published in a Registry receives the
// segments its segmenter makes, and the Registry's Handler serves the live
// media playlist and the segments it lists at /APP/NAME/FILE. Here, 8 s of
// MPEG-TS in 2 s segments: the fourth is still being built (it ends at the
// next keyframe), so three are listed.
func ExampleRegistry_Handler() {
	reg := playlist.NewRegistry(playlist.Config{Store: storage.NewMemory(), TargetDuration: 2 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	st, err := reg.Publish("live/show")
	if err != nil {
		panic(err)
	}
	publish(st, segmenter.Config{TargetDuration: 2 * time.Second, ReuseBuffer: true}, 8)
	get(reg, "/live/show/index.m3u8", true)
	get(reg, "/live/show/seg2.ts", false)
	// Output:
	// GET /live/show/index.m3u8: 200 application/vnd.apple.mpegurl, 320 bytes
	// #EXTM3U
	// #EXT-X-VERSION:3
	// #EXT-X-TARGETDURATION:2
	// #EXT-X-MEDIA-SEQUENCE:0
	// #EXT-X-INDEPENDENT-SEGMENTS
	// #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z
	// #EXTINF:2.000,
	// seg0.ts
	// #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z
	// #EXTINF:2.000,
	// seg1.ts
	// #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:04.000Z
	// #EXTINF:2.000,
	// seg2.ts
	// GET /live/show/seg2.ts: 200 video/mp2t, 27448 bytes
}

// With LL-HLS (fMP4, 500 ms parts, the segmenter keeping only the part it
// builds, as fount runs it) the playlist lists each part as soon as it is
// handed over, those of the segment being built included, and hints at
// the next one.
func ExampleRegistry_Handler_lowLatency() {
	reg := playlist.NewRegistry(playlist.Config{Store: storage.NewMemory(), TargetDuration: 2 * time.Second,
		FMP4: true, PartTarget: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	st, err := reg.Publish("live/show")
	if err != nil {
		panic(err)
	}
	publish(st, segmenter.Config{TargetDuration: 2 * time.Second, Format: segmenter.FormatFMP4,
		PartDuration: 500 * time.Millisecond, PartsOnly: true}, 5)
	get(reg, "/live/show/index.m3u8", true)
	get(reg, "/live/show/init0.mp4", false)
	get(reg, "/live/show/seg1.m4s", false)
	get(reg, "/live/show/seg2.1.m4s", false)
	// Output:
	// GET /live/show/index.m3u8: 200 application/vnd.apple.mpegurl, 1043 bytes
	// #EXTM3U
	// #EXT-X-VERSION:9
	// #EXT-X-TARGETDURATION:2
	// #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=1.500
	// #EXT-X-PART-INF:PART-TARGET=0.500
	// #EXT-X-MEDIA-SEQUENCE:0
	// #EXT-X-INDEPENDENT-SEGMENTS
	// #EXT-X-MAP:URI="init0.mp4"
	// #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z
	// #EXT-X-PART:DURATION=0.48000,URI="seg0.0.m4s",INDEPENDENT=YES
	// #EXT-X-PART:DURATION=0.48000,URI="seg0.1.m4s"
	// #EXT-X-PART:DURATION=0.48000,URI="seg0.2.m4s"
	// #EXT-X-PART:DURATION=0.48000,URI="seg0.3.m4s"
	// #EXT-X-PART:DURATION=0.08000,URI="seg0.4.m4s"
	// #EXTINF:2.000,
	// seg0.m4s
	// #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z
	// #EXT-X-PART:DURATION=0.48000,URI="seg1.0.m4s",INDEPENDENT=YES
	// #EXT-X-PART:DURATION=0.48000,URI="seg1.1.m4s"
	// #EXT-X-PART:DURATION=0.48000,URI="seg1.2.m4s"
	// #EXT-X-PART:DURATION=0.48000,URI="seg1.3.m4s"
	// #EXT-X-PART:DURATION=0.08000,URI="seg1.4.m4s"
	// #EXTINF:2.000,
	// seg1.m4s
	// #EXT-X-PART:DURATION=0.48000,URI="seg2.0.m4s",INDEPENDENT=YES
	// #EXT-X-PART:DURATION=0.48000,URI="seg2.1.m4s"
	// #EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg2.2.m4s"
	// GET /live/show/init0.mp4: 200 video/mp4, 1121 bytes
	// GET /live/show/seg1.m4s: 200 video/mp4, 4474 bytes
	// GET /live/show/seg2.1.m4s: 200 video/mp4, 998 bytes
}
