package segmenter

import (
	"bytes"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// assembleSink keeps copies of parts, as a Sink must with PartsOnly, and
// makes each segment from its Data and the parts handed over since the
// previous one.
type assembleSink struct {
	segs, parts [][]byte
	sizes       []int
	pending     []byte
	partArrays  map[*byte]bool // where parts were built
	partMeta    [][]Part       // Segment.Parts as handed over
}

func (c *assembleSink) Init(Init) error { return nil }
func (c *assembleSink) Part(p Part) error {
	c.parts = append(c.parts, bytes.Clone(p.Data))
	c.pending = append(c.pending, p.Data...)
	c.partArrays[unsafe.SliceData(p.Data)] = true
	return nil
}
func (c *assembleSink) Segment(s Segment) error {
	c.segs = append(c.segs, append(bytes.Clone(s.Data), c.pending...))
	c.sizes = append(c.sizes, s.Size)
	// Segment.Parts, like Data, is the Sink's only during the call
	// (Config.ReuseBuffer, which PartsOnly implies).
	c.partMeta = append(c.partMeta, slices.Clone(s.Parts))
	c.pending = nil
	return nil
}

// PartsOnly hands over the same parts, and segments that are their
// prefix followed by those parts, as a segmenter that keeps whole
// segments; it builds every part in the same bytes.
func TestPartsOnly(t *testing.T) {
	st := readFLV(t, "testdata/main.flv")
	for _, format := range []Format{FormatTS, FormatFMP4} {
		feed := func(cfg Config, sink Sink) {
			cfg.TargetDuration, cfg.Format, cfg.PartDuration = time.Second, format, 300*time.Millisecond
			st.feed(t, cfg, sink)
		}
		whole := &collect{}
		feed(Config{}, whole)
		only := &assembleSink{partArrays: map[*byte]bool{}}
		feed(Config{PartsOnly: true}, only)

		if len(whole.segs) < 4 || len(whole.segs) != len(only.segs) || len(whole.parts) != len(only.parts) {
			t.Fatalf("format %d: %d/%d segments, %d/%d parts", format, len(whole.segs), len(only.segs), len(whole.parts), len(only.parts))
		}
		for i, seg := range whole.segs {
			if !bytes.Equal(seg.Data, only.segs[i]) {
				t.Fatalf("format %d: segment %d: prefix + parts (%d bytes) differs from the whole segment (%d bytes)", format, i, len(only.segs[i]), len(seg.Data))
			}
			if only.sizes[i] != len(seg.Data) || seg.Size != len(seg.Data) {
				t.Fatalf("format %d: segment %d: Size %d with PartsOnly, %d without; want %d", format, i, only.sizes[i], seg.Size, len(seg.Data))
			}
			if len(only.partMeta[i]) != len(seg.Parts) {
				t.Fatalf("format %d: segment %d lists %d parts, want %d", format, i, len(only.partMeta[i]), len(seg.Parts))
			}
			for j, p := range only.partMeta[i] {
				if p.Data != nil || p.Duration != seg.Parts[j].Duration || p.Independent != seg.Parts[j].Independent {
					t.Fatalf("format %d: segment %d part %d: %d bytes, %v, %v; want no bytes, %v, %v", format, i, j, len(p.Data), p.Duration, p.Independent, seg.Parts[j].Duration, seg.Parts[j].Independent)
				}
			}
		}
		for i, p := range whole.parts {
			if !bytes.Equal(p.Data, only.parts[i]) {
				t.Fatalf("format %d: part %d differs with PartsOnly", format, i)
			}
		}
		// Every part at the same place, but for the first segments, which
		// may outgrow the buffer before it is sized from them.
		if len(only.partArrays) > 3 {
			t.Fatalf("format %d: %d parts were built in %d places, want one buffer reused", format, len(only.parts), len(only.partArrays))
		}
		t.Logf("format %d: %d segments, %d parts built in %d places", format, len(only.segs), len(only.parts), len(only.partArrays))
	}
}
