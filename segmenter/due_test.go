package segmenter

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"
)

// dueSink keeps the SegmentDue flags of every segment's parts, in order.
type dueSink struct {
	open []bool   // parts handed over since the last segment
	segs [][]bool // one per finished segment
}

func (c *dueSink) Init(Init) error { return nil }
func (c *dueSink) Part(p Part) error {
	c.open = append(c.open, p.SegmentDue)
	return nil
}
func (c *dueSink) Segment(Segment) error {
	c.segs = append(c.segs, c.open)
	c.open = nil
	return nil
}

// checkLastDue fails unless every segment's last part has SegmentDue: a
// segment that ended after a part without it would leave the part a
// playlist hinted next (the same segment's) unmade.
func (c *dueSink) checkLastDue(t *testing.T) {
	t.Helper()
	if len(c.open) != 0 {
		t.Errorf("%d parts handed over after the last segment", len(c.open))
	}
	for i, due := range c.segs {
		if len(due) == 0 || !due[len(due)-1] {
			t.Errorf("segment %d ended after a part without SegmentDue: %v", i, due)
		}
	}
}

// newDueSegmenter is a video and audio segmenter (High profile H.264,
// 44.1 kHz AAC, 200 ms parts) handing its parts and segments to a dueSink.
func newDueSegmenter(t *testing.T, format Format, partsOnly bool) (*Segmenter, *dueSink) {
	t.Helper()
	c := &dueSink{}
	s := New(Config{Expect: Video | Audio, Format: format, PartDuration: 200 * time.Millisecond, PartsOnly: partsOnly,
		Now: fakeClock(), Logger: slog.New(&logRecorder{})}, c)
	if err := setAVC(s, avcCHigh); err != nil {
		t.Fatal(err)
	}
	if err := setAAC(s, ascLC44Stereo); err != nil {
		t.Fatal(err)
	}
	return s, c
}

// TestPartSegmentDue: SegmentDue is set on exactly the parts after which
// the next keyframe cuts (2 s target, 200 ms parts, 30 fps: the 10th part
// of each segment with a 1 s or 2 s GOP), and with a 4 s GOP on every part
// from the target on, the segment then going on until the keyframe: the
// next segment, which those parts announce, does come. In both formats,
// with and without PartsOnly.
func TestPartSegmentDue(t *testing.T) {
	for _, tc := range []struct {
		gop   int // frames
		parts int // per segment
	}{{30, 10}, {60, 10}, {120, 20}} {
		for _, format := range []Format{FormatTS, FormatFMP4} {
			for _, only := range []bool{false, true} {
				t.Run(fmt.Sprintf("gop %d/%v/partsonly %v", tc.gop, format, only), func(t *testing.T) {
					s, c := newDueSegmenter(t, format, only)
					newSynth(tc.gop, true, true).run(t, s, 12*time.Second)
					if err := s.Flush(); err != nil {
						t.Fatal(err)
					}
					if want := 12 * 30 / max(tc.gop, 60); len(c.segs) != want {
						t.Fatalf("%d segments, want %d", len(c.segs), want)
					}
					for i, due := range c.segs {
						if len(due) != tc.parts {
							t.Errorf("segment %d: %d parts, want %d", i, len(due), tc.parts)
							continue
						}
						for j, d := range due {
							if d != (j >= 9) {
								t.Errorf("segment %d part %d: SegmentDue %v (from 1.8 s on the next keyframe cuts)", i, j, d)
							}
						}
					}
					c.checkLastDue(t)
				})
			}
		}
	}
}

// TestPartSegmentDueAudioOnly: audio-only segments are cut at a frame, and
// parts do not line up with the target: the last part (closed by the
// cut) is due, and at most the one before it, when the frame after it
// might have cut.
func TestPartSegmentDueAudioOnly(t *testing.T) {
	for _, format := range []Format{FormatTS, FormatFMP4} {
		t.Run(format.String(), func(t *testing.T) {
			c := &dueSink{}
			s := New(Config{Expect: Audio, Format: format, PartDuration: 200 * time.Millisecond,
				Now: fakeClock(), Logger: slog.New(&logRecorder{})}, c)
			if err := setAAC(s, ascLC44Stereo); err != nil {
				t.Fatal(err)
			}
			newSynth(1, false, true).run(t, s, 12*time.Second)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if len(c.segs) < 5 {
				t.Fatalf("%d segments", len(c.segs))
			}
			for i, due := range c.segs {
				for j, d := range due[:max(len(due)-2, 0)] {
					if d {
						t.Errorf("segment %d part %d of %d: SegmentDue %v, 200 ms or more before the cut", i, j, len(due), due)
					}
				}
			}
			c.checkLastDue(t)
		})
	}
}

// TestPartSegmentDueDiscontinuity: a codec configuration that changes
// mid-segment cuts at the next keyframe, before the target: the parts
// handed over after the change are due.
func TestPartSegmentDueDiscontinuity(t *testing.T) {
	s, c := newDueSegmenter(t, FormatFMP4, false)
	g := newSynth(30, true, true) // 1 s GOP: keyframes cut only at 2 s
	g.run(t, s, 2500*time.Millisecond)
	if err := setAVC(s, avcCBase); err != nil {
		t.Fatal(err)
	}
	g.run(t, s, 5*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// Segments [0,2), [2,3) (cut at the keyframe after the change), [3,5).
	if len(c.segs) != 3 {
		t.Fatalf("%d segments, want 3: %v", len(c.segs), c.segs)
	}
	c.checkLastDue(t)
	if due := c.segs[1]; len(due) < 3 || due[0] || !due[len(due)-2] {
		t.Errorf("segment cut by the new configuration: SegmentDue %v, want false at first, true after the change", due)
	}
}

// TestPartSegmentDueJitter: encoders' timestamps are not a steady 33.3 ms
// apart, nor GOPs a fixed length: with up to 5 ms of jitter on each video
// DTS and GOPs of 55-65 frames, every segment that a keyframe ends still
// ends after a part flagged due (the stream's last, ended by Flush, is
// not: a stream that ends leaves its hint unmade).
func TestPartSegmentDueJitter(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			s, c := newDueSegmenter(t, FormatFMP4, false)
			vt, na := time.Duration(0), 0
			nextKey := 0
			buf := make([]byte, 205)
			for n := 0; vt < 60*time.Second; n++ {
				base := time.Duration(n*1000/30) * time.Millisecond
				vt = max(vt+time.Millisecond, base+time.Duration(rng.IntN(11)-5)*time.Millisecond)
				for at := aTime(na); at <= vt; at = aTime(na) {
					if err := s.WriteFrame(Frame{Kind: Audio, DTS: at, PTS: at, Data: buf[:120]}); err != nil {
						t.Fatal(err)
					}
					na++
				}
				key := n == nextKey
				if key {
					nextKey += 55 + rng.IntN(11)
				}
				b := buf[:205]
				b[0], b[1], b[2], b[3], b[4] = 0, 0, 0, 201, 0x41
				if key {
					b[4] = 0x65
				}
				if err := s.WriteFrame(Frame{Kind: Video, DTS: vt, PTS: vt, Key: key, Data: b}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			c.segs = c.segs[:len(c.segs)-1]
			c.open = nil
			c.checkLastDue(t)
		})
	}
}
