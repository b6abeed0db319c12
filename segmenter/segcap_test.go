package segmenter

import (
	"testing"
	"time"
)

// An encoder that sends one keyframe and then never another must not grow
// the open segment without bound: at max(3 × target, 10 s) the segment is
// cut at a non-keyframe, the stream goes on, and every cut is counted.
func TestSegmentCapWithoutKeyframes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"ts", Config{}},
		{"fmp4", Config{Format: FormatFMP4}},
		{"fmp4 parts", Config{Format: FormatFMP4, PartDuration: 200 * time.Millisecond}},
		{"ts parts", Config{PartDuration: 200 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctr := new(Counters)
			cfg := tc.cfg
			cfg.Counters = ctr
			s, c, l := newTest(t, cfg, true, true)
			g := newSynth(1<<30, true, true) // a keyframe at 0, never again
			g.run(t, s, 65*time.Second)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			const maxDur = 10 * time.Second // max(3 × 2 s, 10 s)
			if len(c.segs) < 6 {
				t.Fatalf("%d segments for 65 s; the open segment kept growing", len(c.segs))
			}
			checkContiguous(t, c.segs)
			for i, seg := range c.segs {
				// Cut at the first frame past the cap: up to one frame
				// (34 ms with millisecond timestamps) over it.
				if seg.Duration > maxDur+34*time.Millisecond {
					t.Errorf("segment %d lasts %v, over the %v cap", i, seg.Duration, maxDur)
				}
				if i < len(c.segs)-1 && seg.Duration < maxDur {
					t.Errorf("segment %d lasts %v: cut before the cap", i, seg.Duration)
				}
				if tc.cfg.Format == FormatTS {
					ts := demuxTS(t, seg.Data)
					if ts.pmt == nil || len(ts.pes) == 0 {
						t.Errorf("segment %d: no PMT or no PES", i)
					}
				}
				if tc.cfg.PartDuration > 0 && i > 0 && seg.Parts[0].Independent {
					t.Errorf("segment %d: first part marked independent, but it starts on a non-keyframe", i)
				}
			}
			// Every segment but the last (ended by Flush) was cut at the cap.
			if got, want := ctr.CappedSegments.Load(), uint64(len(c.segs)-1); got != want {
				t.Errorf("CappedSegments %d, want %d", got, want)
			}
			if n := l.count("WARN segment cap reached without a keyframe"); n != 1 {
				t.Errorf("%d warnings, want 1 (later cuts at debug)", n)
			}
			if n := l.count("segment cap reached"); n != len(c.segs)-1 {
				t.Errorf("%d cap log lines, want %d", n, len(c.segs)-1)
			}
		})
	}
}

// A GOP exactly at the cap is cut at its keyframes, not before.
func TestSegmentCapLongGOPAtCap(t *testing.T) {
	ctr := new(Counters)
	s, c, _ := newTest(t, Config{Counters: ctr}, true, true)
	g := newSynth(300, true, true) // 10 s GOP
	g.run(t, s, 35*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := starts(c.segs); !equalDur(got, []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second}) {
		t.Fatalf("starts %v", got)
	}
	if n := ctr.CappedSegments.Load(); n != 0 {
		t.Errorf("CappedSegments %d, want 0", n)
	}
}

// The byte cap cuts a segment of a stream whose bitrate fills it before
// the duration cap.
func TestSegmentCapBytes(t *testing.T) {
	const capBytes = 256 << 10
	ctr := new(Counters)
	s, c, _ := newTest(t, Config{Counters: ctr, MaxSegmentBytes: capBytes}, true, true)
	g := newSynth(60, true, true)
	g.vSize = 20000 // ~600 kB/s
	g.run(t, s, 6*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	checkContiguous(t, c.segs)
	if ctr.CappedSegments.Load() == 0 {
		t.Fatal("no segment was capped")
	}
	for i, seg := range c.segs {
		// One frame (and its TS overhead) may land past the cap.
		if len(seg.Data) > capBytes+2*g.vSize {
			t.Errorf("segment %d: %d bytes, cap %d", i, len(seg.Data), capBytes)
		}
	}
}

// Video stops while audio goes on: the segment is cut at an audio frame
// once video has been missing for the cap, rather than growing with the
// audio for as long as the stall lasts.
func TestSegmentCapVideoStall(t *testing.T) {
	ctr := new(Counters)
	s, c, _ := newTest(t, Config{Counters: ctr}, true, true)
	g := newSynth(60, true, true)
	g.run(t, s, 3*time.Second)
	g.video = false // the camera stops; the microphone does not
	g.run(t, s, 45*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if ctr.CappedSegments.Load() == 0 {
		t.Fatal("no segment was capped")
	}
	for i, seg := range c.segs {
		if seg.Duration > 10*time.Second+24*time.Millisecond {
			t.Errorf("segment %d lasts %v", i, seg.Duration)
		}
	}
	checkContiguous(t, c.segs)
}
