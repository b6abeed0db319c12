package segmenter

import (
	"testing"
	"time"
)

// Discontinuities are counted by cause, once per flagged segment, in Info
// and in the shared Counters.
func TestCountersDiscontinuities(t *testing.T) {
	for _, format := range []Format{FormatTS, FormatFMP4} {
		ctr := new(Counters)
		s, c, _ := newTest(t, Config{Counters: ctr, Format: format}, true, true)
		g := newSynth(60, true, true)
		g.run(t, s, 4*time.Second)
		// A jump forward of an hour, seen on both tracks: one discontinuity.
		g.base += time.Hour
		g.run(t, s, 8*time.Second)
		// A new video configuration: one more.
		if err := setAVC(s, avcCBase); err != nil {
			t.Fatal(err)
		}
		g.run(t, s, 12*time.Second)
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		var disc int
		for _, seg := range c.segs {
			if seg.Discontinuity {
				disc++
			}
		}
		in := s.Info()
		if disc != 2 || in.TimestampJumps != 1 || in.ConfigChanges != 1 ||
			ctr.TimestampJumps.Load() != 1 || ctr.ConfigChanges.Load() != 1 {
			t.Errorf("format %d: %d discontinuities; info jumps %d changes %d; counters jumps %d changes %d",
				format, disc, in.TimestampJumps, in.ConfigChanges, ctr.TimestampJumps.Load(), ctr.ConfigChanges.Load())
		}
		if format == FormatFMP4 && len(c.inits) != 2 {
			t.Errorf("%d inits, want a second one for the new configuration", len(c.inits))
		}
	}
}

// Dropped frames are counted by reason.
func TestCountersDropReasons(t *testing.T) {
	ctr := new(Counters)
	s, _, _ := newTest(t, Config{Counters: ctr}, true, true)
	g := newSynth(30, true, true)
	g.nv = 10 // start mid-GOP: 20 video frames before the first keyframe
	g.base = -vTime(10)
	g.run(t, s, 3*time.Second)
	s.WriteFrame(Frame{Kind: Video, DTS: 5 * time.Second, Key: true}) // empty
	in := s.Info()
	bk, mal := ctr.Dropped[DropBeforeKeyframe].Load(), ctr.Dropped[DropMalformed].Load()
	if bk < 20 || mal != 1 || bk+mal != in.DroppedFrames {
		t.Errorf("before keyframe %d, malformed %d, info total %d", bk, mal, in.DroppedFrames)
	}
	if DropNoConfig.String() != "no_codec_config" || DropUnusedTrack.String() != "unused_track" {
		t.Error("drop reason names changed: they are metric labels")
	}
}

// Video frames without a sequence header: dropped and counted with one log
// line; a header that comes within configWait still starts the stream with
// video at the next keyframe.
func TestLateVideoSequenceHeader(t *testing.T) {
	ctr := new(Counters)
	s, c, l := newTest(t, Config{Counters: ctr, Expect: Video | Audio}, false, true)
	g := newSynth(60, true, true)
	g.run(t, s, 3*time.Second) // past ProbeDuration, within configWait
	if s.started {
		t.Fatal("started without the announced video's sequence header")
	}
	if err := setAVC(s, avcCHigh); err != nil {
		t.Fatal(err)
	}
	g.run(t, s, 9*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.segs) == 0 || !c.segs[0].HasVideo || c.segs[0].Start != 4*time.Second {
		t.Fatalf("segments start %v; want video from the keyframe at 4 s", starts(c.segs))
	}
	if n := ctr.Dropped[DropNoConfig].Load(); n != 90 {
		t.Errorf("%d frames dropped for lack of a sequence header, want 90", n)
	}
	if l.count("before their track's sequence header") != 1 {
		t.Error("want one log line for the frames without a sequence header")
	}
}

// A sequence header that never comes: after configWait the stream starts
// without video, and later video frames are still counted as lacking it.
func TestMissingVideoSequenceHeader(t *testing.T) {
	ctr := new(Counters)
	s, c, l := newTest(t, Config{Counters: ctr, Expect: Video | Audio}, false, true)
	g := newSynth(60, true, true)
	g.run(t, s, 4900*time.Millisecond)
	if s.started {
		t.Fatal("gave up on the video sequence header before configWait")
	}
	g.run(t, s, 10*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if !s.started || s.tracks != Audio || len(c.segs) == 0 || c.segs[0].Start != 0 {
		t.Fatalf("started %v tracks %v starts %v; want audio-only from 0", s.started, s.tracks, starts(c.segs))
	}
	if n := ctr.Dropped[DropNoConfig].Load(); n != 300 {
		t.Errorf("%d video frames counted without a sequence header, want 300", n)
	}
	if l.count("starting the stream without it") != 1 || l.count("track appeared after") != 0 {
		t.Error("want one line for giving up, none calling it a late track")
	}
}
