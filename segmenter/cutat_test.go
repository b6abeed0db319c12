package segmenter

import (
	"log/slog"
	"testing"
	"time"
)

// TestCutAt: a requested cut begins a segment at the first keyframe whose
// PTS is at or after the requested time, cutting the segment being built
// short; the segments after it go on from there.
func TestCutAt(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"MPEG-TS", Config{}},
		{"fMP4 parts", Config{Format: FormatFMP4, PartDuration: 200 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Expect, cfg.TargetDuration, cfg.Logger = Video|Audio, 2*time.Second, slog.New(slog.DiscardHandler)
			sink := &collect{}
			s := New(cfg, sink)
			if err := setAVC(s, avcCHigh); err != nil {
				t.Fatal(err)
			}
			if err := setAAC(s, ascLC44Stereo); err != nil {
				t.Fatal(err)
			}
			g := newSynth(15, true, true) // a keyframe every 0.5 s
			g.run(t, s, 2500*time.Millisecond)
			// 2.7 s: the keyframe at DTS 3 s (PTS 3.067 s) is the first
			// presented at or after it; the segment that began at 2 s is
			// cut there, 1 s long, rather than at 4 s.
			if !s.CutAt(2700 * time.Millisecond) {
				t.Fatal("refused")
			}
			if got := s.PendingCuts(); len(got) != 1 {
				t.Fatalf("pending %v", got)
			}
			g.run(t, s, 8*time.Second)
			var starts []time.Duration
			for _, seg := range sink.segs {
				starts = append(starts, seg.Start)
			}
			want := []time.Duration{0, 2 * time.Second, 3 * time.Second, 5 * time.Second}
			if len(starts) < len(want) {
				t.Fatalf("segment starts %v", starts)
			}
			for i, w := range want {
				if starts[i] != w {
					t.Fatalf("segment starts %v, want %v...", starts, want)
				}
			}
			cut := sink.segs[2]
			if cut.StartPTS != 3*time.Second+2*frameDur || cut.StartPTS < 2700*time.Millisecond {
				t.Errorf("cut segment's StartPTS %v", cut.StartPTS)
			}
			if len(cut.IFrames) == 0 || cut.IFrames[0].Offset > 1000 {
				t.Errorf("cut segment does not start with its keyframe: %+v", cut.IFrames)
			}
			if got := s.PendingCuts(); len(got) != 0 {
				t.Errorf("pending after the cut %v", got)
			}
			if c.cfg.PartDuration > 0 {
				// The part before the cut says the segment may end.
				for i, p := range sink.parts {
					if i+1 < len(sink.parts) && sink.parts[i+1].SegmentStart == 3*time.Second && p.SegmentStart == 2*time.Second && !p.SegmentDue {
						t.Errorf("the part before the requested cut is not SegmentDue")
					}
				}
			}
		})
	}
}

// A request already passed cuts at the next keyframe; one a keyframe
// meets when it opens a segment anyway adds no cut.
func TestCutAtPassedAndAtBoundary(t *testing.T) {
	sink := &collect{}
	s := New(Config{Expect: Video | Audio, TargetDuration: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)}, sink)
	setAVC(s, avcCHigh)
	setAAC(s, ascLC44Stereo)
	g := newSynth(15, true, true)
	g.run(t, s, 2500*time.Millisecond)
	s.CutAt(time.Second)                // passed: the next keyframe (3 s)
	s.CutAt(4*time.Second + 2*frameDur) // the keyframe at DTS 4 s opens a segment anyway
	g.run(t, s, 6500*time.Millisecond)
	var starts []time.Duration
	for _, seg := range sink.segs {
		starts = append(starts, seg.Start)
	}
	if len(starts) != 4 || starts[2] != 2500*time.Millisecond || starts[3] != 4*time.Second {
		t.Fatalf("starts %v", starts)
	}
	if len(s.PendingCuts()) != 0 {
		t.Fatalf("pending %v", s.PendingCuts())
	}
}

// The per-frame path reads one atomic while a cut is pending.
func TestCutAtNoAllocs(t *testing.T) {
	s := New(Config{Expect: Video | Audio, TargetDuration: 2 * time.Second, ReuseBuffer: true, Logger: slog.New(slog.DiscardHandler)}, &countSegments{})
	setAVC(s, avcCHigh)
	setAAC(s, ascLC44Stereo)
	g := newSynth(60, true, true)
	for range 300 {
		s.WriteFrame(g.next())
	}
	s.CutAt(time.Hour)
	if n := testing.AllocsPerRun(200, func() { s.WriteFrame(g.next()) }); n != 0 {
		t.Errorf("%v allocations per frame with a cut pending", n)
	}
}
