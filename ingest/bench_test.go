package ingest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/fount-live/fount/ingest/flv"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// flvTag is one tag of an FLV file.
type flvTag struct {
	typ  byte // 8 audio, 9 video, 18 script
	ts   uint32
	body []byte
}

// readFLV reads the tags of an FLV file (a test helper: ingest itself gets
// tags from RTMP messages, never from files).
func readFLV(t testing.TB, path string) []flvTag {
	t.Helper()
	tags, err := flv.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]flvTag, len(tags))
	for i, g := range tags {
		out[i] = flvTag{typ: g.Type, ts: g.Timestamp, body: g.Data}
	}
	return out
}

// segSession feeds a segmenter, as cmd/fount's wiring does.
type segSession struct{ seg *segmenter.Segmenter }

func (s segSession) Metadata(Metadata)                {}
func (s segSession) VideoConfig(v *codec.Video) error { return s.seg.SetVideoConfig(v) }
func (s segSession) AudioConfig(a *codec.Audio) error { return s.seg.SetAudioConfig(a) }
func (s segSession) Frame(f segmenter.Frame) error    { return s.seg.WriteFrame(f) }
func (s segSession) Close()                           {}
func (countSink) Segment(seg segmenter.Segment) error { return nil }
func (countSink) Part(segmenter.Part) error           { return nil }
func (countSink) Init(segmenter.Init) error           { return nil }

type countSink struct{}

// BenchmarkPerFrame measures the whole per-frame ingest path: an FLV tag as
// go-rtmp hands it over → copy out of its buffer → tag parsing → timeline →
// segmenter (Annex-B/ADTS, MPEG-TS muxing, cutting). One op is one tag.
func BenchmarkPerFrame(b *testing.B) {
	tags := readFLV(b, "../segmenter/testdata/main.flv")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var media []flvTag
	var size int64
	for _, t := range tags {
		if t.typ == 8 || t.typ == 9 {
			media = append(media, t)
			size += int64(len(t.body))
		}
	}
	h := &handler{ctx: context.Background(), cfg: &Config{}, log: log, done: func() {}, server: &Server{}, stats: &publishStats{}}
	// As fount runs it: every segment built in one reused buffer.
	h.sess = segSession{segmenter.New(segmenter.Config{Expect: segmenter.Video | segmenter.Audio, Logger: log, ReuseBuffer: true}, countSink{})}
	var r bytes.Reader
	// The file is 4 s; loop it with timestamps shifted so the timeline runs
	// on. The shift is past the largest timestamp (audio ends after the
	// last video tag): a shift from the last tag would move audio back,
	// which the segmenter takes as a jump and a discontinuity every loop.
	var loop, last uint32
	for _, t := range media {
		last = max(last, t.ts+40)
	}
	b.SetBytes(size / int64(len(media)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(media)
		if k == 0 && i > 0 {
			loop++
		}
		t := media[k]
		if loop > 0 && t.body[1] == 0 { // sequence headers only once
			continue
		}
		r.Reset(t.body)
		var err error
		if t.typ == 9 {
			err = h.OnVideo(t.ts+loop*last, &r)
		} else {
			err = h.OnAudio(t.ts+loop*last, &r)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
