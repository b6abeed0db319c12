package segmenter

import (
	"testing"
	"time"
)

// PDT follows the media timeline from the wall clock at the first segment,
// whatever the clock does meanwhile (frames that arrive in bursts, an
// encoder that lags or runs ahead); a discontinuity anchors it to the clock
// again, never before the end of the segment listed before it.
func TestProgramDateTimeFollowsMediaTime(t *testing.T) {
	irregular := func() func() time.Time {
		wall := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
		calls := 0
		return func() time.Time {
			// 1.1 s, 2.1 s, 3.1 s ... between calls: ahead of the media.
			calls++
			wall = wall.Add(time.Duration(calls)*time.Second + 100*time.Millisecond)
			return wall
		}
	}
	for name, now := range map[string]func() time.Time{
		"clock ahead":  irregular(),
		"clock behind": fakeClock(), // one second a call, fewer calls than segments
	} {
		t.Run(name, func(t *testing.T) {
			s, c, _ := newTest(t, Config{Expect: Video | Audio, Now: now}, true, true)
			g := newSynth(30, true, true)
			g.run(t, s, 10*time.Second)
			g.base += time.Hour // a jump: a discontinuity at the next keyframe
			g.run(t, s, 20*time.Second)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			anchor := -1
			for i, seg := range c.segs {
				if i > 0 {
					prev := c.segs[i-1]
					gap := seg.ProgramDateTime.Sub(prev.ProgramDateTime)
					if seg.Discontinuity && gap < prev.Duration || !seg.Discontinuity && gap != prev.Duration {
						t.Errorf("segment %d (discontinuity %v): PDT %v after the previous one, which lasts %v", i, seg.Discontinuity, gap, prev.Duration)
					}
				}
				if i == 0 || seg.Discontinuity {
					anchor = i
					continue
				}
				a := c.segs[anchor]
				if got, want := seg.ProgramDateTime.Sub(a.ProgramDateTime), seg.Start-a.Start; got != want {
					t.Errorf("segment %d: PDT %v after segment %d's, media %v", i, got, anchor, want)
				}
			}
			if anchor <= 0 {
				t.Fatalf("no discontinuity among %d segments", len(c.segs))
			}
		})
	}
}

// An encoder that starts with a backlog sends its first second of frames at
// once, then in real time. The timeline's PDT is the wall clock those later
// frames imply (arrival minus media time), not the first frame's late
// arrival; on the code before, every PDT was the backlog's length (here
// 1.2 s) after the frames' real arrival.
func TestProgramDateTimeSkipsStartupBurst(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	const backlog = 1200 * time.Millisecond // captured before the encoder sent anything
	wall := t0
	s, c, _ := newTest(t, Config{Expect: Video | Audio, Now: func() time.Time { return wall }}, true, true)
	g := newSynth(60, true, true)
	for {
		f := g.next()
		if f.DTS >= 5*time.Second {
			break
		}
		// Frames up to the backlog arrive 1 ms apart from t0; the rest
		// when captured, i.e. media time after t0-backlog, 40 ms later.
		wall = t0.Add(time.Duration(g.nv+g.na) * time.Millisecond)
		if real := t0.Add(f.DTS - backlog + 40*time.Millisecond); real.After(wall) {
			wall = real
		}
		if err := s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.segs) < 2 {
		t.Fatalf("%d segments, want at least 2", len(c.segs))
	}
	want := t0.Add(-backlog + 40*time.Millisecond)
	for i, seg := range c.segs {
		if got := seg.ProgramDateTime.Add(-seg.Start); got.Sub(want).Abs() > 5*time.Millisecond {
			t.Errorf("segment %d: PDT %v for media %v implies media 0 at %v, want %v (the real-time frames' clock)",
				i, seg.ProgramDateTime.Format("15:04:05.000"), seg.Start, got.Format("15:04:05.000"), want.Format("15:04:05.000"))
		}
	}
}

// A PDT is a date: it carries no monotonic clock reading, so differences
// between PDTs taken from two anchors (a reconnect's discontinuity) are
// the differences of the dates written, even when NTP moved the wall clock
// between them.
func TestProgramDateTimeHasNoMonotonicReading(t *testing.T) {
	s, c, _ := newTest(t, Config{Expect: Video | Audio, Now: time.Now}, true, true)
	g := newSynth(30, true, true)
	g.run(t, s, 4*time.Second)
	g.base += time.Hour
	g.run(t, s, 8*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.segs) < 3 {
		t.Fatalf("%d segments", len(c.segs))
	}
	for i, seg := range c.segs {
		// Round(0) strips the monotonic reading; == compares it too.
		if seg.ProgramDateTime != seg.ProgramDateTime.Round(0) {
			t.Errorf("segment %d: PDT %v carries a monotonic clock reading", i, seg.ProgramDateTime)
		}
	}
}
