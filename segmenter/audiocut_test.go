package segmenter

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// segAudio returns the decode times of the audio frames a segment holds,
// read back from its bytes (TS: the audio PES PTS; fMP4: the audio track's
// tfdt plus the sample durations), and the end of its last one.
func segAudio(t *testing.T, format Format, data []byte, rate int64) (times []time.Duration, end time.Duration) {
	t.Helper()
	if format == FormatTS {
		for _, p := range demuxTS(t, data).pes {
			if p.pid == audioPID {
				times = append(times, time.Duration(p.pts)*time.Second/90000)
			}
		}
		if len(times) > 0 {
			end = times[len(times)-1] + aacDur
		}
		return times, end
	}
	for _, fr := range fragments(t, data) {
		for _, run := range fr {
			if run.id != 2 {
				continue
			}
			tk := int64(run.tfdt)
			for _, d := range run.durs {
				times = append(times, time.Duration(tk)*time.Second/time.Duration(rate))
				tk += int64(d)
			}
			end = time.Duration(tk) * time.Second / time.Duration(rate)
		}
	}
	return times, end
}

// TestAudioReachesKeyframePTS: with B-frames a keyframe is presented a
// composition delay after its DTS, and so is the end of the video of the
// segment it closes. The audio of every segment (and of its last part) must
// reach that keyframe's PTS, within one audio frame, and the next segment's
// audio start there: hls.js waits for both tracks to be buffered up to a
// boundary (an interstitial's) before it crosses it. No frame is lost or
// moved in time: every input audio frame comes out once, in order, at its
// own time.
func TestAudioReachesKeyframePTS(t *testing.T) {
	st := readFLV(t, "testdata/main.flv")
	var cutAt func(time.Duration)
	type source struct {
		name    string
		feed    func(write func(Frame))
		bframes bool
	}
	sources := []source{
		{"synth", func(write func(Frame)) {
			synthFeed(newSynth(30, true, true), 7*time.Second)(write)
		}, true},
		{"synth cut at", func(write func(Frame)) {
			// A keyframe every 0.5 s: only the 1 s target and the
			// requested cut (at the keyframe of DTS 2.5 s) cut.
			cutAt(2300 * time.Millisecond)
			synthFeed(newSynth(15, true, true), 7*time.Second)(write)
		}, true},
		{"synth no B-frames", func(write func(Frame)) {
			g := newSynth(30, true, true)
			g.bframes = false
			synthFeed(g, 7*time.Second)(write)
		}, false},
		{"main.flv", func(write func(Frame)) {
			for _, f := range st.frames {
				write(f)
			}
		}, true},
	}
	var cur *Segmenter
	cutAt = func(d time.Duration) {
		if !cur.CutAt(d) {
			t.Fatal("CutAt refused")
		}
	}
	for _, format := range []Format{FormatTS, FormatFMP4} {
		for _, pd := range []time.Duration{0, 200 * time.Millisecond} {
			for _, src := range sources {
				t.Run(fmt.Sprintf("%v/parts %v/%s", format, pd, src.name), func(t *testing.T) {
					c := &collect{}
					s := New(Config{Expect: Video | Audio, Format: format, PartDuration: pd, TargetDuration: time.Second,
						Now: fakeClock(), Logger: slog.New(&logRecorder{})}, c)
					cur = s
					if err := setAVC(s, avcCHigh); err != nil {
						t.Fatal(err)
					}
					if err := setAAC(s, ascLC44Stereo); err != nil {
						t.Fatal(err)
					}
					var in []time.Duration
					src.feed(func(f Frame) {
						if f.Kind == Audio {
							in = append(in, f.DTS)
						}
						if err := s.WriteFrame(f); err != nil {
							t.Fatal(err)
						}
					})
					if err := s.Flush(); err != nil {
						t.Fatal(err)
					}
					if len(c.segs) < 3 {
						t.Fatalf("%d segments", len(c.segs))
					}
					var out []time.Duration
					var prevEnd time.Duration
					lo, hi := time.Hour, -time.Hour // audio end minus the next keyframe's PTS
					for i, seg := range c.segs {
						times, end := segAudio(t, format, seg.Data, 44100)
						if len(times) == 0 {
							t.Fatalf("segment %d: no audio", i)
						}
						if d := times[0] - prevEnd; i > 0 && format == FormatFMP4 && (d < -time.Millisecond || d > time.Millisecond) {
							t.Errorf("segment %d: audio starts at %v, the previous segment's ended at %v", i, times[0], prevEnd)
						}
						prevEnd = end
						out = append(out, times...)
						if i+1 == len(c.segs) {
							break
						}
						// The next segment opens with the keyframe that
						// ends this segment's video presentation.
						next := c.segs[i+1].StartPTS
						if src.bframes && next <= c.segs[i+1].Start {
							t.Fatalf("segment %d: keyframe PTS %v not after its DTS %v", i+1, next, c.segs[i+1].Start)
						}
						lo, hi = min(lo, end-next), max(hi, end-next)
						last := times[len(times)-1]
						if last >= next || end < next-time.Millisecond {
							t.Errorf("segment %d: last audio frame %v..%v, next keyframe PTS %v: audio ends %v from the video's end",
								i, last, end, next, end-next)
						}
						if pd > 0 {
							// The segment's last part holds the audio up to the
							// keyframe, so that no part stays short of it.
							lp := seg.Parts[len(seg.Parts)-1]
							if format == FormatFMP4 {
								pt, pend := segAudio(t, format, lp.Data, 44100)
								if len(pt) == 0 || pend != end {
									t.Errorf("segment %d: last part's audio ends at %v, the segment's at %v", i, pend, end)
								}
							} else {
								// TS parts are the segment's bytes in order.
								before := seg.Data[:len(seg.Data)-len(lp.Data)]
								if bt, _ := segAudio(t, format, before, 0); len(bt) >= len(times) {
									t.Errorf("segment %d: no audio in its last part", i)
								}
							}
						}
					}
					t.Logf("%d segments: audio ends %v to %v from the next keyframe's PTS", len(c.segs), lo, hi)
					if src.name == "synth cut at" && !slices.ContainsFunc(c.segs, func(seg Segment) bool { return seg.Start == 2500*time.Millisecond }) {
						t.Errorf("no segment at the requested cut")
					}
					// Every audio frame once, in order, at its own time
					// (millisecond input, 90 kHz or sample-rate output);
					// with parts, Flush drops the audio after the last
					// video frame (a few frames).
					if len(out) > len(in) || len(out) < len(in)-5 || (pd == 0 && len(out) != len(in)) {
						t.Fatalf("%d audio frames out, %d in", len(out), len(in))
					}
					for k := range out {
						if d := out[k] - in[k]; d < -time.Millisecond || d > time.Millisecond {
							t.Fatalf("audio frame %d: at %v, written at %v", k, out[k], in[k])
						}
					}
					for i := 0; i+1 < len(c.segs); i++ {
						if c.segs[i].Start+c.segs[i].Duration != c.segs[i+1].Start {
							t.Errorf("segment %d: start %v + duration %v != next start %v", i, c.segs[i].Start, c.segs[i].Duration, c.segs[i+1].Start)
						}
					}
				})
			}
		}
	}
}

// countAV counts the video and audio frames in a segment's bytes.
func countAV(t *testing.T, format Format, data []byte) (v, a int) {
	t.Helper()
	if format == FormatTS {
		for _, p := range demuxTS(t, data).pes {
			switch p.pid {
			case videoPID:
				v++
			case audioPID:
				a++
			}
		}
		return v, a
	}
	for _, fr := range fragments(t, data) {
		for _, run := range fr {
			if run.id == 1 {
				v += len(run.durs)
			} else {
				a += len(run.durs)
			}
		}
	}
	return v, a
}

// atSink is a collect that notes the frame being written at each Segment.
type atSink struct {
	collect
	cur *Frame
	at  []Frame
}

func (c *atSink) Segment(s Segment) error {
	c.at = append(c.at, *c.cur)
	return c.collect.Segment(s)
}

// TestHeldCutBounds: a cut held for audio (B-frames) is never held for
// long nor lost: it is made without the audio when the audio stops (once
// video is holdMargin past the keyframe's PTS), before a timestamp jump
// (which then cuts, flagged, at the next keyframe, not at the held one),
// before a new codec configuration, and by Flush. No video frame is lost,
// and the segments stay contiguous.
func TestHeldCutBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *Segmenter, g *synth, write func(Frame))
		// Checks of the segments, beyond contiguity and frame counts.
		check func(t *testing.T, c *atSink)
	}{
		{"audio stops", func(t *testing.T, s *Segmenter, g *synth, write func(Frame)) {
			for f := g.next(); f.DTS < 5*time.Second; f = g.next() {
				if f.Kind == Video || f.DTS < 2050*time.Millisecond || f.DTS >= 3500*time.Millisecond {
					write(f)
				}
			}
		}, func(t *testing.T, c *atSink) {
			// Segment [1 s, 2 s) is handed over at the first video frame
			// past the margin after the keyframe's PTS (2.067 s).
			if at := c.at[1]; at.Kind != Video || at.DTS <= 2*time.Second+2*frameDur+holdMargin || at.DTS > 2*time.Second+2*frameDur+holdMargin+frameDur+time.Millisecond {
				t.Errorf("segment 1 handed over at the %v frame at %v", at.Kind, at.DTS)
			}
		}},
		{"timestamps jump", func(t *testing.T, s *Segmenter, g *synth, write func(Frame)) {
			synthFeed(g, 2050*time.Millisecond)(write)
			g.base += time.Hour
			synthFeed(g, 5*time.Second)(write)
		}, func(t *testing.T, c *atSink) {
			for i, seg := range c.segs {
				if want := seg.Start == time.Hour+3*time.Second; seg.Discontinuity != want {
					t.Errorf("segment %d at %v: Discontinuity %v", i, seg.Start, seg.Discontinuity)
				}
			}
		}},
		{"timestamps jump back", func(t *testing.T, s *Segmenter, g *synth, write func(Frame)) {
			g.base = 30 * time.Second
			synthFeed(g, 2050*time.Millisecond)(write)
			g.base -= 20 * time.Second
			synthFeed(g, 5*time.Second)(write)
		}, func(t *testing.T, c *atSink) {
			for i, seg := range c.segs {
				if want := seg.Start == 13*time.Second; seg.Discontinuity != want {
					t.Errorf("segment %d at %v: Discontinuity %v", i, seg.Start, seg.Discontinuity)
				}
			}
		}},
		{"flush", func(t *testing.T, s *Segmenter, g *synth, write func(Frame)) {
			synthFeed(g, 2040*time.Millisecond)(write)
		}, func(t *testing.T, c *atSink) {
			if n := len(c.segs); n != 3 || c.segs[2].Start != 2*time.Second {
				t.Errorf("%d segments, the last at %v", n, c.segs[n-1].Start)
			}
		}},
		{"new configuration", func(t *testing.T, s *Segmenter, g *synth, write func(Frame)) {
			synthFeed(g, 2040*time.Millisecond)(write)
			if err := setAVC(s, avcCBase); err != nil {
				t.Fatal(err)
			}
			synthFeed(g, 4*time.Second)(write)
		}, func(t *testing.T, c *atSink) {
			if len(c.segs) != 4 || c.segs[2].Start != 2*time.Second || c.segs[2].Discontinuity || !c.segs[3].Discontinuity ||
				c.segs[2].InitVersion != 0 || (c.segs[3].InitVersion != 1 && len(c.inits) > 0) {
				for _, seg := range c.segs {
					t.Logf("segment at %v: discontinuity %v, init %d", seg.Start, seg.Discontinuity, seg.InitVersion)
				}
				t.Error("want segments at 0, 1, 2 (the held cut, made before the change) and 3 s (the first after it, a discontinuity)")
			}
		}},
	} {
		for _, format := range []Format{FormatTS, FormatFMP4} {
			for _, pd := range []time.Duration{0, 200 * time.Millisecond} {
				t.Run(fmt.Sprintf("%s/%v/parts %v", tc.name, format, pd), func(t *testing.T) {
					var cur Frame
					c := &atSink{cur: &cur}
					s := New(Config{Expect: Video | Audio, Format: format, PartDuration: pd, TargetDuration: time.Second,
						Now: fakeClock(), Logger: slog.New(&logRecorder{})}, c)
					if err := setAVC(s, avcCHigh); err != nil {
						t.Fatal(err)
					}
					if err := setAAC(s, ascLC44Stereo); err != nil {
						t.Fatal(err)
					}
					var nv, na int
					tc.run(t, s, newSynth(30, true, true), func(f Frame) {
						cur = Frame{Kind: f.Kind, DTS: f.DTS, PTS: f.PTS, Key: f.Key}
						if f.Kind == Video {
							nv++
						} else {
							na++
						}
						if err := s.WriteFrame(f); err != nil {
							t.Fatal(err)
						}
					})
					cur = Frame{}
					if err := s.Flush(); err != nil {
						t.Fatal(err)
					}
					var v, a int
					for i, seg := range c.segs {
						sv, sa := countAV(t, format, seg.Data)
						v, a = v+sv, a+sa
						if i+1 < len(c.segs) && !c.segs[i+1].Discontinuity && seg.Start+seg.Duration != c.segs[i+1].Start {
							t.Errorf("segment %d: start %v + duration %v != next start %v", i, seg.Start, seg.Duration, c.segs[i+1].Start)
						}
					}
					// With parts, Flush drops the audio deferred after the
					// last video frame.
					if v != nv || a > na || (pd == 0 && a != na) {
						t.Errorf("%d video and %d audio frames out, %d and %d in", v, a, nv, na)
					}
					tc.check(t, c)
				})
			}
		}
	}
}

// TestHeldCutMetadata: a timed ID3 tag due between a cutting keyframe's DTS
// and its PTS goes with the keyframe, into the segment it opens, as before
// cuts were held: the audio muxed into the ending segment while the cut is
// held (presented up to that PTS) does not take it.
func TestHeldCutMetadata(t *testing.T) {
	tags := testTags(t)
	s, c, _ := newTest(t, Config{TargetDuration: time.Second}, true, true)
	g := newSynth(30, true, true)
	g.run(t, s, 1500*time.Millisecond)
	// The keyframe at DTS 2 s is presented at 2.067 s; the audio frame at
	// 2.063 s goes into the segment before it.
	if err := s.AddMetadata(TimedID3{Tag: tags[0], PTS: 2050 * time.Millisecond, HasPTS: true}); err != nil {
		t.Fatal(err)
	}
	g.run(t, s, 3*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, seg := range c.segs {
		n := 0
		for _, p := range demuxTS(t, seg.Data).pes {
			if p.pid == id3PID {
				n++
			}
		}
		if want := seg.Start == 2*time.Second; (n == 1) != want {
			t.Errorf("segment %d at %v: %d tags", i, seg.Start, n)
		}
	}
}
