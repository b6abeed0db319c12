package segmenter

import (
	"bytes"
	"testing"
	"time"
	"unsafe"
)

// copySink keeps copies of what it is handed, as a Sink must with
// ReuseBuffer, and notes each segment buffer's address.
type copySink struct {
	segs, parts [][]byte
	arrays      map[*byte]int
}

func (c *copySink) Init(Init) error { return nil }
func (c *copySink) Part(p Part) error {
	c.parts = append(c.parts, bytes.Clone(p.Data))
	return nil
}
func (c *copySink) Segment(s Segment) error {
	c.segs = append(c.segs, bytes.Clone(s.Data))
	c.arrays[unsafe.SliceData(s.Data)]++
	return nil
}

// ReuseBuffer builds every segment in one buffer, and the bytes handed
// over are exactly those of a segmenter that allocates one per segment.
func TestReuseBuffer(t *testing.T) {
	st := readFLV(t, "testdata/main.flv")
	for _, format := range []Format{FormatTS, FormatFMP4} {
		run := func(reuse bool) *copySink {
			c := &copySink{arrays: map[*byte]int{}}
			st.feed(t, Config{TargetDuration: time.Second, Format: format, PartDuration: 300 * time.Millisecond, ReuseBuffer: reuse}, c)
			return c
		}
		fresh, reused := run(false), run(true)
		if len(fresh.segs) < 4 || len(fresh.segs) != len(reused.segs) || len(fresh.parts) != len(reused.parts) {
			t.Fatalf("format %d: %d/%d segments, %d/%d parts", format, len(fresh.segs), len(reused.segs), len(fresh.parts), len(reused.parts))
		}
		for i := range fresh.segs {
			if !bytes.Equal(fresh.segs[i], reused.segs[i]) {
				t.Fatalf("format %d: segment %d differs with ReuseBuffer", format, i)
			}
		}
		for i := range fresh.parts {
			if !bytes.Equal(fresh.parts[i], reused.parts[i]) {
				t.Fatalf("format %d: part %d differs with ReuseBuffer", format, i)
			}
		}
		if len(fresh.arrays) != len(fresh.segs) {
			t.Fatalf("format %d: without ReuseBuffer %d segments shared %d buffers", format, len(fresh.segs), len(fresh.arrays))
		}
		// The first segments may outgrow the pre-sized buffer; then one
		// buffer serves on.
		if len(reused.arrays) > len(reused.segs)/2 {
			t.Fatalf("format %d: with ReuseBuffer %d segments used %d buffers", format, len(reused.segs), len(reused.arrays))
		}
		t.Logf("format %d: %d segments in %d buffers", format, len(reused.segs), len(reused.arrays))
	}
}
