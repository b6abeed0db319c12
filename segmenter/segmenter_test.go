package segmenter

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fount-live/fount/segmenter/codec"
)

func newTest(t testing.TB, cfg Config, video, audio bool) (*Segmenter, *collect, *logRecorder) {
	t.Helper()
	c := &collect{}
	l := &logRecorder{}
	if cfg.Now == nil {
		cfg.Now = fakeClock()
	}
	cfg.Logger = slog.New(l)
	s := New(cfg, c)
	if video {
		if err := setAVC(s, avcCHigh); err != nil {
			t.Fatal(err)
		}
	}
	if audio {
		if err := setAAC(s, ascLC44Stereo); err != nil {
			t.Fatal(err)
		}
	}
	return s, c, l
}

func starts(segs []Segment) []time.Duration {
	var r []time.Duration
	for _, s := range segs {
		r = append(r, s.Start)
	}
	return r
}

func checkContiguous(t *testing.T, segs []Segment) {
	t.Helper()
	for i := 0; i+1 < len(segs); i++ {
		if segs[i].Start+segs[i].Duration != segs[i+1].Start {
			t.Errorf("segment %d: start %v + duration %v != next start %v", i, segs[i].Start, segs[i].Duration, segs[i+1].Start)
		}
	}
}

func TestCutsAtKeyframes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		gop    int
		video  bool
		audio  bool
		starts []time.Duration
	}{
		{"gop 1s", 30, true, true, []time.Duration{0, 2 * time.Second, 4 * time.Second, 6 * time.Second, 8 * time.Second}},
		{"gop 0.7s", 21, true, true, []time.Duration{0, vTime(63), vTime(126), vTime(189), vTime(252)}},
		{"video only", 30, true, false, []time.Duration{0, 2 * time.Second, 4 * time.Second, 6 * time.Second, 8 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, l := newTest(t, Config{Expect: Video | Audio}, tc.video, tc.audio)
			if !tc.audio {
				s, c, l = newTest(t, Config{Expect: Video}, true, false)
			}
			g := newSynth(tc.gop, tc.video, tc.audio)
			g.run(t, s, 10*time.Second)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := starts(c.segs); !equalDur(got, tc.starts) {
				t.Fatalf("starts %v, want %v", got, tc.starts)
			}
			checkContiguous(t, c.segs)
			var sum time.Duration
			for i, seg := range c.segs {
				sum += seg.Duration
				if i < len(c.segs)-1 && seg.Duration < 2*time.Second {
					t.Errorf("segment %d shorter than target: %v", i, seg.Duration)
				}
				if seg.Discontinuity || !seg.HasVideo || seg.HasAudio != tc.audio {
					t.Errorf("segment %d flags %+v", i, seg)
				}
				if i > 0 && !seg.ProgramDateTime.After(c.segs[i-1].ProgramDateTime) {
					t.Errorf("segment %d: PDT not increasing", i)
				}
			}
			// The last video frame is at 10s - 1 frame; the flushed segment adds one frame.
			if want := 2*vTime(g.nv-1) - vTime(g.nv-2); sum != want {
				t.Errorf("durations sum to %v, want %v", sum, want)
			}
			in := s.Info()
			if in.Segments != uint64(len(c.segs)) || in.DroppedFrames != 0 || in.GOPTooLong {
				t.Errorf("info %+v", in)
			}
			if in.GOP != vTime(tc.gop) {
				t.Errorf("GOP %v", in.GOP)
			}
			if l.count("WARN") != 0 {
				t.Errorf("warnings: %v", l.msgs)
			}
			wantCodecs := "avc1.64001e"
			if tc.audio {
				wantCodecs += ",mp4a.40.2"
			}
			if in.Codecs != wantCodecs || in.Video.Width != 640 || in.Video.Height != 360 || in.Video.FrameRate != 30 {
				t.Errorf("info codecs %q video %+v", in.Codecs, in.Video)
			}
		})
	}
}

func equalDur(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDropsBeforeFirstKeyframe(t *testing.T) {
	s, c, _ := newTest(t, Config{}, true, true)
	g := newSynth(30, true, true)
	g.nv = 10 // start mid-GOP: first keyframe at frame 30 (1s)
	g.base = -vTime(10)
	g.run(t, s, 4*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.segs) == 0 || c.segs[0].Start != vTime(30)-vTime(10) {
		t.Fatalf("starts %v", starts(c.segs))
	}
	in := s.Info()
	// 20 video frames before the keyframe and the audio frames before its DTS.
	wantAudio := 0
	for i := 0; aTime(i) < vTime(30); i++ {
		wantAudio++
	}
	if in.DroppedFrames != uint64(20+wantAudio) {
		t.Fatalf("dropped %d, want %d", in.DroppedFrames, 20+wantAudio)
	}
}

func TestAudioOnly(t *testing.T) {
	s, c, _ := newTest(t, Config{Expect: Audio}, false, true)
	g := newSynth(30, false, true)
	g.run(t, s, 7*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.segs) != 4 {
		t.Fatalf("%d segments: %v", len(c.segs), starts(c.segs))
	}
	checkContiguous(t, c.segs)
	var sum time.Duration
	for i, seg := range c.segs {
		sum += seg.Duration
		if i < 3 && (seg.Duration < 2*time.Second || seg.Duration > 2*time.Second+aacDur) {
			t.Errorf("segment %d duration %v", i, seg.Duration)
		}
		if seg.HasVideo || !seg.HasAudio {
			t.Errorf("segment %d flags", i)
		}
		ts := demuxTS(t, seg.Data)
		if ts.pids[0] != 0 || ts.pids[1] != pmtPID || !ts.pes[0].rai || !ts.pes[0].pcr || ts.pes[0].pid != audioPID {
			t.Errorf("segment %d: pids %v first pes %+v", i, ts.pids[:2], ts.pes[0])
		}
	}
	if want := 2*aTime(g.na-1) - aTime(g.na-2); sum != want {
		t.Errorf("sum %v, want %v", sum, want)
	}
	if s.Info().Codecs != "mp4a.40.2" || s.Info().Video != nil {
		t.Errorf("info %+v", s.Info())
	}
}

func TestTimestampJump(t *testing.T) {
	for _, tc := range []struct {
		name  string
		jump  time.Duration
		video bool
	}{
		{"forward 1h", time.Hour, true},
		{"backwards", -5 * time.Second, true},
		{"audio-only forward", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, l := newTest(t, Config{}, tc.video, true)
			if !tc.video {
				s, c, l = newTest(t, Config{Expect: Audio}, false, true)
			}
			g := newSynth(30, tc.video, true)
			g.run(t, s, 5*time.Second+frameDur*15) // stop mid-GOP
			g.base += tc.jump
			g.run(t, s, 9*time.Second)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			var disc []int
			for i, seg := range c.segs {
				if seg.Discontinuity {
					disc = append(disc, i)
				}
			}
			if len(disc) != 1 {
				t.Fatalf("discontinuities at %v; starts %v", disc, starts(c.segs))
			}
			d := c.segs[disc[0]]
			prev := c.segs[disc[0]-1]
			if tc.video {
				// Cut at the first keyframe after the jump (6s on the old clock).
				if d.Start != 6*time.Second+tc.jump {
					t.Errorf("discontinuous segment starts at %v", d.Start)
				}
				// The jump itself is bridged with an estimated frame duration.
				if d := prev.Duration - 2*time.Second; d < -2*time.Millisecond || d > 2*time.Millisecond {
					t.Errorf("segment before the jump lasts %v", prev.Duration)
				}
			} else if d.Start < tc.jump+5*time.Second || d.Start > tc.jump+5*time.Second+frameDur*16 {
				t.Errorf("audio-only discontinuity starts at %v", d.Start)
			}
			if l.count("timestamp jump") == 0 {
				t.Error("jump not logged")
			}
		})
	}
}

func TestProbe(t *testing.T) {
	t.Run("expected audio never comes", func(t *testing.T) {
		s, c, l := newTest(t, Config{Expect: Video | Audio}, true, false)
		g := newSynth(30, true, true)
		g.run(t, s, 999*time.Millisecond)
		if s.Info().Segments != 0 || s.started {
			t.Fatal("started before the probe time")
		}
		g.run(t, s, 1500*time.Millisecond)
		if !s.started || s.tracks != Video {
			t.Fatalf("started %v tracks %v", s.started, s.tracks)
		}
		// Late audio config: ignored.
		if err := setAAC(s, ascLC44Stereo); err != nil {
			t.Fatal(err)
		}
		g.run(t, s, 5*time.Second)
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := starts(c.segs); !equalDur(got, []time.Duration{0, 2 * time.Second, 4 * time.Second}) {
			t.Fatalf("starts %v", got)
		}
		for _, seg := range c.segs {
			if seg.HasAudio {
				t.Fatal("audio in a video-only stream")
			}
		}
		in := s.Info()
		if in.Audio != nil || in.Codecs != "avc1.64001e" {
			t.Errorf("info %+v", in)
		}
		if want := uint64(g.na); in.DroppedFrames != want {
			t.Errorf("dropped %d, want %d (all audio)", in.DroppedFrames, want)
		}
		if l.count("track appeared after the stream started") != 1 {
			t.Errorf("late track warnings: %v", l.msgs)
		}
	})
	t.Run("unknown tracks, both configs: immediate", func(t *testing.T) {
		s, _, _ := newTest(t, Config{}, true, true)
		if !s.started || s.tracks != Video|Audio {
			t.Fatal("not started")
		}
	})
	t.Run("expected video only: immediate", func(t *testing.T) {
		s, _, _ := newTest(t, Config{Expect: Video}, true, false)
		if !s.started || s.tracks != Video {
			t.Fatal("not started")
		}
	})
	t.Run("unknown tracks, audio config late within probe", func(t *testing.T) {
		s, c, _ := newTest(t, Config{}, true, false)
		g := newSynth(30, true, true)
		g.run(t, s, 500*time.Millisecond) // video buffered, audio dropped
		if s.started {
			t.Fatal("started early")
		}
		if err := setAAC(s, ascLC44Stereo); err != nil {
			t.Fatal(err)
		}
		if !s.started || s.tracks != Video|Audio {
			t.Fatal("not started with both")
		}
		g.run(t, s, 3*time.Second)
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if c.segs[0].Start != 0 || !c.segs[0].HasAudio || !c.segs[0].HasVideo {
			t.Fatalf("first segment %+v", c.segs[0])
		}
		if d := s.Info().DroppedFrames; d != uint64(g.na-(g.na-22)) && d == 0 {
			t.Fatalf("dropped %d", d)
		}
	})
	t.Run("short stream flushed while probing", func(t *testing.T) {
		s, c, _ := newTest(t, Config{}, true, false)
		g := newSynth(30, true, false)
		g.run(t, s, 300*time.Millisecond)
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if len(c.segs) != 1 || c.segs[0].Duration != 2*vTime(g.nv-1)-vTime(g.nv-2) {
			t.Fatalf("%d segments, first lasts %v", len(c.segs), c.segs[0].Duration)
		}
	})
}

func TestGOPTooLong(t *testing.T) {
	s, c, l := newTest(t, Config{}, true, true)
	g := newSynth(90, true, true) // 3s GOP
	g.run(t, s, 12*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := starts(c.segs); !equalDur(got, []time.Duration{0, 3 * time.Second, 6 * time.Second, 9 * time.Second}) {
		t.Fatalf("starts %v", got)
	}
	if n := l.count("keyframe interval is longer than the segment target"); n != 1 {
		t.Fatalf("%d GOP warnings", n)
	}
	if in := s.Info(); !in.GOPTooLong || in.GOP != 3*time.Second {
		t.Fatalf("info %+v", in)
	}
}

func TestConfigChange(t *testing.T) {
	s, c, _ := newTest(t, Config{}, true, true)
	g := newSynth(30, true, true)
	g.run(t, s, 2500*time.Millisecond)
	// Same bytes: no-op.
	if err := setAVC(s, avcCHigh); err != nil {
		t.Fatal(err)
	}
	g.run(t, s, 2600*time.Millisecond)
	if s.pendingDisc {
		t.Fatal("same config flagged a discontinuity")
	}
	if err := setAVC(s, avcCBase); err != nil {
		t.Fatal(err)
	}
	if in := s.Info(); in.Video.Width != 320 || in.Codecs != "avc1.42c00d,mp4a.40.2" {
		t.Fatalf("info after change %+v", in.Video)
	}
	// A bad config is rejected and changes nothing.
	if err := setAAC(s, []byte{0}); err == nil {
		t.Fatal("bad ASC accepted")
	}
	g.run(t, s, 5*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := starts(c.segs); !equalDur(got, []time.Duration{0, 2 * time.Second, 3 * time.Second}) {
		t.Fatalf("starts %v", got)
	}
	if !c.segs[2].Discontinuity || c.segs[1].Discontinuity {
		t.Fatalf("discontinuity flags wrong")
	}
	// The new SPS goes before the IDR of the new segment.
	base, _ := codec.ParseVideo(codec.AVC, avcCBase)
	if !bytes.Contains(c.segs[2].Data[:188*4], base.SPS[0][:8]) {
		t.Fatal("new SPS not in the segment")
	}
}

type errSink struct{ err error }

func (e errSink) Init(Init) error       { return nil }
func (e errSink) Part(Part) error       { return nil }
func (e errSink) Segment(Segment) error { return e.err }

func TestSinkErrorAndBadFrames(t *testing.T) {
	boom := errors.New("boom")
	s := New(Config{Logger: slog.New(&logRecorder{})}, errSink{boom})
	if err := setAVC(s, avcCHigh); err != nil {
		t.Fatal(err)
	}
	if err := setAAC(s, ascLC44Stereo); err != nil {
		t.Fatal(err)
	}
	g := newSynth(30, true, true)
	var got error
	for i := 0; i < 200 && got == nil; i++ {
		got = s.WriteFrame(g.next())
	}
	if !errors.Is(got, boom) {
		t.Fatalf("got %v", got)
	}
	// The keyframe that opened the new segment was still muxed into it.
	if !s.open || !s.segVideo || s.segStart != 2*time.Second {
		t.Fatalf("after sink error: open %v video %v start %v", s.open, s.segVideo, s.segStart)
	}
	// Malformed video: error, no panic, stream goes on.
	err := s.WriteFrame(Frame{Kind: Video, DTS: 10 * time.Second, PTS: 10 * time.Second, Data: []byte{0, 0, 1, 0, 0x41}})
	if err == nil || !strings.Contains(err.Error(), "overruns") {
		t.Fatalf("bad frame: %v", err)
	}
	// Oversized audio.
	err = s.WriteFrame(Frame{Kind: Audio, DTS: 10 * time.Second, PTS: 10 * time.Second, Data: make([]byte, 9000)})
	if err == nil {
		t.Fatal("oversized AAC accepted")
	}
	// Unknown kinds are dropped.
	before := s.Info().DroppedFrames
	if err := s.WriteFrame(Frame{Kind: Video | Audio, Data: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if s.Info().DroppedFrames != before+1 {
		t.Fatal("unknown kind not counted")
	}
}

func TestInfoConcurrent(t *testing.T) {
	s, _, _ := newTest(t, Config{}, true, true)
	g := newSynth(30, true, true)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				in := s.Info()
				_ = in.Codecs
				if in.Video != nil {
					_ = in.Video.FrameRate
				}
			}
		}
	}()
	g.run(t, s, 5*time.Second)
	if err := setAVC(s, avcCBase); err != nil {
		t.Fatal(err)
	}
	g.run(t, s, 7*time.Second)
	close(stop)
	wg.Wait()
}

func TestFlushThenContinue(t *testing.T) {
	s, c, _ := newTest(t, Config{}, true, true)
	g := newSynth(30, true, true)
	g.run(t, s, 3*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil { // nothing open: no-op
		t.Fatal(err)
	}
	n := len(c.segs)
	g.run(t, s, 5*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.segs) <= n || !c.segs[n].Discontinuity || c.segs[n].Start != 3*time.Second {
		t.Fatalf("after flush: starts %v", starts(c.segs))
	}
}

func TestMeasuredFrameRate(t *testing.T) {
	// Baseline 320x240 SPS without VUI.
	w := new(bitWriter).put(0x67, 8).put(66, 8).put(0xc0, 8).put(13, 8).
		put(1, 1).           // sps id 0
		put(1, 1).           // log2_max_frame_num_minus4 0
		put(0b011, 3).       // pic_order_cnt_type 2
		put(0b010, 3).       // max_num_ref_frames 1
		put(0, 1).           // gaps
		put(0b000010100, 9). // pic_width_in_mbs_minus1 19
		put(0b0001111, 7).   // pic_height_in_map_units_minus1 14
		put(1, 1).put(1, 1).put(0, 1).
		put(0, 1). // no VUI
		put(1, 1)  // rbsp stop bit
	sps := w.b
	pps := []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	rec := append([]byte{1, 66, 0xc0, 13, 0xff, 0xe1, 0, byte(len(sps))}, sps...)
	rec = append(rec, 1, 0, byte(len(pps)))
	rec = append(rec, pps...)

	c := &collect{}
	s := New(Config{Expect: Video, Logger: slog.New(&logRecorder{})}, c)
	if err := setAVC(s, rec); err != nil {
		t.Fatal(err)
	}
	if in := s.Info(); in.Video.Width != 320 || in.Video.Height != 240 || in.Video.FrameRate != 0 {
		t.Fatalf("before frames: %+v", in.Video)
	}
	data := avcc([]byte{0x65, 1})
	for i := 0; i < 60; i++ {
		d := time.Duration(i) * 40 * time.Millisecond
		if err := s.WriteFrame(Frame{Kind: Video, DTS: d, PTS: d, Key: i%25 == 0, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if fr := s.Info().Video.FrameRate; fr != 25 {
		t.Fatalf("measured frame rate %v", fr)
	}
}
