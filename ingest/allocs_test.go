package ingest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fount-live/fount/segmenter"
)

// TestPerFrameNoAllocs backs "It is the per-frame path: no allocation"
// (onPacket, tracks.go) and docs/architecture.md's per-frame path for the
// usual publisher, one track of each kind into one segmenter, with the
// segmenter as fount runs it (one reused segment buffer; LL-HLS parts
// only): an FLV tag as go-rtmp hands it over, copied out of its buffer,
// parsed, its timestamp unwrapped, muxed and cut. TestSplitTracksAllocs
// covers the split publisher.
//
// One run is the whole 4 s clip, two segments (and their parts), so that
// an allocation per segment or per part counts too.
func TestPerFrameNoAllocs(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  segmenter.Config
	}{
		{"MPEG-TS", segmenter.Config{ReuseBuffer: true}},
		{"fMP4 parts only", segmenter.Config{Format: segmenter.FormatFMP4, PartDuration: 200 * time.Millisecond, PartsOnly: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clip, tags, seg := newClipLoop(t, c.cfg)
			for range 3 { // warm up: the buffers settle
				clip()
			}
			before := seg.Info()
			if n := testing.AllocsPerRun(10, clip); n != 0 {
				t.Errorf("%v allocations per run of the clip (%d tags)", n, tags)
			}
			// The steady state: two segments cut per run (AllocsPerRun
			// makes one run more to warm up), nothing dropped, no
			// discontinuity.
			after := seg.Info()
			if after.Segments-before.Segments != 22 || after.DroppedFrames != 0 || after.TimestampJumps != 0 || after.ConfigChanges != 0 {
				t.Errorf("before %+v, after %+v", before, after)
			}
		})
	}
}

// newClipLoop returns a func that feeds a handler the next loop of
// segmenter/testdata/main.flv (640x360 H.264 + AAC from ffmpeg) on a
// continuing timeline, its sequence headers sent once; the number of tags
// in the clip; and the segmenter.
func newClipLoop(t *testing.T, cfg segmenter.Config) (func(), int, *segmenter.Segmenter) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var media []flvTag
	var end uint32
	for _, tag := range readFLV(t, "../segmenter/testdata/main.flv") {
		if tag.typ == 8 || tag.typ == 9 {
			media = append(media, tag)
			end = max(end, tag.ts)
		}
	}
	cfg.Expect = segmenter.Video | segmenter.Audio
	cfg.Logger = log
	h := &handler{ctx: context.Background(), cfg: &Config{}, log: log, done: func() {}, server: &Server{}, stats: &publishStats{}}
	seg := segmenter.New(cfg, countSink{})
	h.sess = segSession{seg}
	// Each loop starts after the clip's last frame of either track (its
	// audio runs ~90 ms past its video), so that no track's timestamps go
	// backwards: a jump would be a discontinuity and a logged warning.
	shift := end + 40
	var loop uint32
	var r bytes.Reader
	return func() {
		for _, tag := range media {
			if loop > 0 && tag.body[1] == 0 { // sequence headers only once
				continue
			}
			r.Reset(tag.body)
			var err error
			if tag.typ == 9 {
				err = h.OnVideo(tag.ts+loop*shift, &r)
			} else {
				err = h.OnAudio(tag.ts+loop*shift, &r)
			}
			if err != nil {
				panic(err)
			}
		}
		loop++
	}, len(media), seg
}

// TestChunkFilterNoAllocsPerChunk backs docs/performance.md's "0 per
// chunk" for the chunk filter: once a connection's chunk streams are open,
// reading chunks through it allocates nothing, whether the type-3 chunks
// carry the repeated extended timestamp it removes or not. One run is 100
// audio and video messages in 200 chunks (about 470 KB).
func TestChunkFilterNoAllocsPerChunk(t *testing.T) {
	for _, ext := range []bool{false, true} {
		e := newChunkEnc(true)
		e.setChunkSize(4096)
		ts := uint32(1000)
		if ext {
			ts = 20_000_000 // beyond 0xFFFFFF: extended timestamps
		}
		e.message(0, 6, ts, 9, 1, testPayload(5000, 0))
		e.message(0, 4, ts, 8, 1, testPayload(400, 0))
		head := len(e.buf)
		for i := range 50 {
			if ext {
				e.message(0, 6, ts+uint32(i)*33, 9, 1, testPayload(9000, byte(i)))
				e.message(0, 4, ts+uint32(i)*33, 8, 1, testPayload(400, byte(i)))
			} else {
				e.message(1, 6, 33, 9, 1, testPayload(9000, byte(i)))
				e.message(1, 4, 23, 8, 1, testPayload(400, byte(i)))
			}
		}
		src := &cycleReader{b: e.buf, from: head}
		f := newChunkFilter(src, chunkLimits{})
		buf := make([]byte, 4096) // go-rtmp's bufio.Reader size
		// A body's worth of filtered bytes, less what the filter drops.
		readBody := func() {
			for got := 0; got < len(e.buf)-head-4096; {
				n, err := f.Read(buf)
				if err != nil {
					panic(err)
				}
				got += n
			}
		}
		readBody() // the handshake, the chunk streams opened, a body
		if n := testing.AllocsPerRun(20, readBody); n != 0 {
			t.Errorf("extended timestamps %v: %v allocations per %d bytes of chunks", ext, n, len(e.buf)-head)
		}
	}
}

// cycleReader reads b, then b[from:] over and over.
type cycleReader struct {
	b         []byte
	from, off int
}

func (r *cycleReader) Read(p []byte) (int, error) {
	if r.off == len(r.b) {
		r.off = r.from
	}
	k := copy(p, r.b[r.off:])
	r.off += k
	return k, nil
}
