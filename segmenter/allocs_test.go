package segmenter

import (
	"log/slog"
	"testing"
	"time"
)

// TestNoAllocsPerSegment backs the claims that the per-frame path
// allocates nothing in the steady state (the muxer interface: "none may
// allocate per frame in the steady state"; fmp4.go: "the steady state
// allocates nothing per fragment"; ts.go: the PES path "must not allocate
// per frame"; docs/architecture.md and docs/performance.md), and
// Config.ReuseBuffer's "saves a segment-sized allocation per segment", with
// synthetic H.264 + AAC, so that it runs without ffmpeg and in -short
// (TestZeroAllocsPerFrame covers every codec on real encoder output).
//
// One run is a whole 2 s segment (60 video frames, a keyframe at each
// start, and the AAC frames between them), cut and handed over: an
// allocation once per segment or per part shows as one per run, where a
// per-frame average would round it away.
func TestNoAllocsPerSegment(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"MPEG-TS", Config{ReuseBuffer: true}},
		{"MPEG-TS parts", Config{ReuseBuffer: true, PartDuration: 200 * time.Millisecond}},
		{"MPEG-TS parts only", Config{PartsOnly: true, PartDuration: 200 * time.Millisecond}},
		{"fMP4", Config{Format: FormatFMP4, ReuseBuffer: true}},
		{"fMP4 parts", Config{Format: FormatFMP4, ReuseBuffer: true, PartDuration: 200 * time.Millisecond}},
		{"fMP4 parts only", Config{Format: FormatFMP4, PartsOnly: true, PartDuration: 200 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			segs := &countSegments{}
			writeSegment := newSegmentWriter(t, c.cfg, segs)
			for range 5 { // warm up: the buffers settle
				writeSegment()
			}
			before := segs.n
			if n := testing.AllocsPerRun(20, writeSegment); n != 0 {
				t.Errorf("%v allocations per segment", n)
			}
			// AllocsPerRun runs it once more to warm up.
			if got := segs.n - before; got != 21 {
				t.Fatalf("%d segments in 21 runs", got)
			}
		})
	}
	// Without ReuseBuffer each segment gets a buffer of its own: the
	// allocation ReuseBuffer saves. Only logged: its count is not a claim.
	for _, format := range []Format{FormatTS, FormatFMP4} {
		writeSegment := newSegmentWriter(t, Config{Format: format, PartDuration: 200 * time.Millisecond}, &countSegments{})
		for range 5 {
			writeSegment()
		}
		t.Logf("%v without ReuseBuffer: %v allocations per segment", format, testing.AllocsPerRun(20, writeSegment))
	}
}

// newSegmentWriter returns a func that writes the next 2 s segment of a
// 30 fps H.264 (~5 KB frames, B-frame timestamps) + 44.1 kHz AAC stream:
// 60 video frames, the first a keyframe (which hands the previous segment
// over), and the audio frames in decode order before each.
func newSegmentWriter(t *testing.T, cfg Config, sink Sink) func() {
	cfg.Expect = Video | Audio
	cfg.TargetDuration = 2 * time.Second
	cfg.Logger = slog.New(slog.DiscardHandler)
	s := New(cfg, sink)
	if err := setAVC(s, avcCHigh); err != nil {
		t.Fatal(err)
	}
	if err := setAAC(s, ascLC44Stereo); err != nil {
		t.Fatal(err)
	}
	g := newSynth(60, true, true)
	g.vSize = 5000
	return func() {
		for end := g.nv + 60; g.nv < end; {
			if err := s.WriteFrame(g.next()); err != nil {
				panic(err)
			}
		}
	}
}

// countSegments is a Sink that keeps nothing and counts segments.
type countSegments struct{ n int }

func (c *countSegments) Init(Init) error       { return nil }
func (c *countSegments) Part(Part) error       { return nil }
func (c *countSegments) Segment(Segment) error { c.n++; return nil }
