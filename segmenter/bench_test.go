package segmenter

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/segmenter/codec"
)

type discard struct{}

func (discard) Init(Init) error       { return nil }
func (discard) Part(Part) error       { return nil }
func (discard) Segment(Segment) error { return nil }

// BenchmarkWriteFrame measures the steady-state per-frame path: 30 fps
// ~5 KB video frames with a keyframe every 60 frames, interleaved with
// 44.1 kHz AAC frames, segments cut every 2 s.
func BenchmarkWriteFrame(b *testing.B) { benchWriteFrame(b, Config{}) }

// BenchmarkWriteFrameTSParts is BenchmarkWriteFrame with 200 ms LL-HLS parts.
func BenchmarkWriteFrameTSParts(b *testing.B) {
	benchWriteFrame(b, Config{PartDuration: 200 * time.Millisecond})
}

// BenchmarkWriteFrameFMP4 is BenchmarkWriteFrame muxing fMP4 (one fragment
// per segment).
func BenchmarkWriteFrameFMP4(b *testing.B) { benchWriteFrame(b, Config{Format: FormatFMP4}) }

// BenchmarkWriteFrameFMP4Parts is BenchmarkWriteFrameFMP4 with 200 ms parts
// (one fragment per part).
func BenchmarkWriteFrameFMP4Parts(b *testing.B) {
	benchWriteFrame(b, Config{Format: FormatFMP4, PartDuration: 200 * time.Millisecond})
}

func benchWriteFrame(b *testing.B, cfg Config) {
	cfg.Logger = slog.New(&logRecorder{})
	s := New(cfg, discard{})
	if err := setAVC(s, avcCHigh); err != nil {
		b.Fatal(err)
	}
	if err := setAAC(s, ascLC44Stereo); err != nil {
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
	_, params := avcParams(b)
	in := avcc([]byte{0x06, 5, 1, 0x80}, bytes.Repeat([]byte{0x65, 0x88}, 2500))
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		var err error
		buf, _, err = avccToAnnexB(buf, in, 4, params)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFrameFMP4PartsReuse is BenchmarkWriteFrameFMP4Parts with
// one segment buffer for the whole stream (Config.ReuseBuffer, as fount
// runs it): no segment-sized allocation per segment.
func BenchmarkWriteFrameFMP4PartsReuse(b *testing.B) {
	benchWriteFrame(b, Config{Format: FormatFMP4, PartDuration: 200 * time.Millisecond, ReuseBuffer: true})
}

// BenchmarkWriteFrameFMP4PartsOnly is BenchmarkWriteFrameFMP4PartsReuse
// with Config.PartsOnly (as fount runs LL-HLS): each part built in the
// same bytes, the segment left to the Sink.
func BenchmarkWriteFrameFMP4PartsOnly(b *testing.B) {
	benchWriteFrame(b, Config{Format: FormatFMP4, PartDuration: 200 * time.Millisecond, PartsOnly: true})
}

// BenchmarkWriteFrameCodecs is the per-frame path of each codec in each
// format that carries it, on real encoder output (needs ffmpeg), with
// parts and one reused segment buffer as fount runs it.
func BenchmarkWriteFrameCodecs(b *testing.B) {
	needFFmpeg(b)
	cs := newClipSet(b)
	for _, id := range []codec.ID{codec.AVC, codec.HEVC, codec.AV1, codec.VP9, codec.AAC, codec.Opus, codec.FLAC, codec.AC3, codec.EAC3, codec.MP3} {
		cl := cs.get(id)
		for _, format := range []Format{FormatTS, FormatFMP4} {
			if !CanCarry(format, id) {
				continue
			}
			b.Run(strings.ReplaceAll(id.String(), "-", "")+"/"+format.String(), func(b *testing.B) {
				next := loopClip(b, format, cl)
				for i := 0; i < 3*len(cl.frames); i++ {
					next()
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					next()
				}
			})
		}
	}
}
