package segmenter

import (
	"testing"
	"time"
)

const (
	frameDur = time.Second / 30
	aacDur   = 1024 * time.Second / 44100
)

// synth produces interleaved synthetic frames: 30 fps video with a keyframe
// every gop frames (PTS = DTS + 2 frames, like B-frames) and 44.1 kHz AAC.
type synth struct {
	base    time.Duration
	gop     int
	video   bool
	audio   bool
	nv, na  int
	vBuf    []byte
	aBuf    []byte
	vSize   int
	bframes bool
}

func newSynth(gop int, video, audio bool) *synth {
	return &synth{gop: gop, video: video, audio: audio, vSize: 200, bframes: true}
}

// vTime and aTime give frame n's DTS in whole milliseconds, as RTMP does.
func vTime(n int) time.Duration { return time.Duration(n*1000/30) * time.Millisecond }
func aTime(n int) time.Duration {
	return time.Duration(int64(n)*1024*1000/44100) * time.Millisecond
}

// next returns the next frame in DTS order. The returned Data is reused.
// synthPatterns[odd] holds byte(i) (|1 when odd) for i in [0, len): frame
// payloads are windows of it, copied rather than built byte by byte, so
// that benchmarks measure the segmenter more than the generator.
var synthPatterns [2][]byte

func synthPattern(n int, odd bool) []byte {
	k := 0
	if odd {
		k = 1
	}
	p := synthPatterns[k]
	for i := len(p); i < n; i++ {
		b := byte(i)
		if odd {
			b |= 1
		}
		p = append(p, b)
	}
	synthPatterns[k] = p
	return p
}

func (g *synth) next() Frame {
	vt := g.base + vTime(g.nv)
	at := g.base + aTime(g.na)
	if g.video && (!g.audio || vt <= at) {
		key := g.nv%g.gop == 0
		nalType := byte(0x41)
		if key {
			nalType = 0x65
		}
		n := g.vSize
		g.vBuf = append(g.vBuf[:0], byte(n>>24), byte(n>>16), byte(n>>8), byte(n), nalType)
		// The same bytes as byte(g.nv+i)|1 for i in [1, n), copied.
		off := g.nv % 256
		g.vBuf = append(g.vBuf, synthPattern(off+n, true)[off+1:off+n]...)
		g.nv++
		pts := vt
		if g.bframes {
			pts += 2 * frameDur
		}
		return Frame{Kind: Video, DTS: vt, PTS: pts, Key: key, Data: g.vBuf}
	}
	off := g.na % 256
	g.aBuf = append(g.aBuf[:0], synthPattern(off+120, false)[off:off+120]...)
	g.na++
	return Frame{Kind: Audio, DTS: at, PTS: at, Data: g.aBuf}
}

// run writes frames until the media time reaches end (relative to base).
func (g *synth) run(t testing.TB, s *Segmenter, end time.Duration) {
	t.Helper()
	for {
		f := g.next()
		if f.DTS-g.base >= end {
			// Put the frame back by undoing the counter.
			if f.Kind == Video {
				g.nv--
			} else {
				g.na--
			}
			return
		}
		if err := s.WriteFrame(f); err != nil {
			t.Fatalf("WriteFrame(%v at %v): %v", f.Kind, f.DTS, err)
		}
	}
}
