package segmenter

import (
	"bytes"
	"log/slog"
	"testing"
)

type discard struct{}

func (discard) Segment(Segment) error { return nil }

// BenchmarkWriteFrame measures the steady-state per-frame path: 30 fps
// ~5 KB video frames with a keyframe every 60 frames, interleaved with
// 44.1 kHz AAC frames, segments cut every 2 s.
func BenchmarkWriteFrame(b *testing.B) {
	s := New(Config{Logger: slog.New(&logRecorder{})}, discard{})
	if err := s.SetVideoConfig(avcCHigh); err != nil {
		b.Fatal(err)
	}
	if err := s.SetAudioConfig(ascLC44Stereo); err != nil {
		b.Fatal(err)
	}
	g := newSynth(60, true, true)
	g.vSize = 5000
	// Warm up: scratch buffers and segment buffer sizes settle.
	for i := 0; i < 1000; i++ {
		if err := s.WriteFrame(g.next()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var bytesIn int64
	for i := 0; i < b.N; i++ {
		f := g.next()
		bytesIn += int64(len(f.Data))
		if err := s.WriteFrame(f); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(bytesIn / int64(b.N))
}

func BenchmarkAVCCToAnnexB(b *testing.B) {
	c, err := parseAVCConfig(avcCHigh)
	if err != nil {
		b.Fatal(err)
	}
	in := avcc([]byte{0x06, 5, 1, 0x80}, bytes.Repeat([]byte{0x65, 0x88}, 2500))
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		buf, _, err = avccToAnnexB(buf, in, 4, c.paramSetsAnnex)
		if err != nil {
			b.Fatal(err)
		}
	}
}
