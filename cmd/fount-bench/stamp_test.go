package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestStampRoundTrip(t *testing.T) {
	const w, h = 640, 360
	pix := make([]byte, w*h)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ms := range []uint64{0, 1, 1796281234567, 1<<48 - 1, rng.Uint64N(1 << 48)} {
		drawMotion(pix, w, h, int(ms%97))
		drawStamp(pix, w, ms)
		// Coding noise: every pixel off by up to ±60.
		for i := range pix {
			v := int(pix[i]) + rng.IntN(121) - 60
			pix[i] = byte(min(255, max(0, v)))
		}
		got, ok := readStamp(pix, w)
		if !ok || got != ms {
			t.Errorf("stamp %d read back as %d (check ok %v)", ms, got, ok)
		}
	}
}

func TestStampCheckRefuses(t *testing.T) {
	const w, h = 640, 360
	for _, fill := range []byte{0, 255, 128} {
		pix := make([]byte, w*h)
		for i := range pix {
			pix[i] = fill
		}
		if ms, ok := readStamp(pix, w); ok {
			t.Errorf("a plain picture of %d passed the check as %d", fill, ms)
		}
	}
	pix := make([]byte, w*h)
	drawStamp(pix, w, 1796281234567)
	b := stampBlock(w)
	for y := range b { // flip the first block: one wrong bit
		for x := range b {
			pix[y*w+x] ^= 0xff
		}
	}
	if ms, ok := readStamp(pix, w); ok {
		t.Errorf("a stamp with one bit flipped passed the check as %d", ms)
	}
}

func TestSummarizeGlass(t *testing.T) {
	p := glassPage{FirstFrameAt: 1}
	for i := range 300 { // 30 s at 10 samples/s: 1000 ms, then 1200 ms from 20 s
		at := float64(i) / 10
		lat := 1000.0
		if at >= 20 {
			lat = 1200
		}
		// The player runs at 0.9 of real time; the stream keeps pace.
		p.Samples = append(p.Samples, glassSample{at, lat, 0.9 * at, 1e12 + 900*at})
	}
	p.Stalls = []glassStall{{At: 3, Duration: 0.05}, {At: 40, Duration: 1}}
	p.Events = []glassEvent{{At: 1.5, Kind: "hls.js ERROR", Details: "bufferSeekOverHole"}, {At: 25, Kind: "warn"}}
	s := summarizeGlass(p, 10, 30)
	if s.Samples != 200 || s.Min != 1000 || s.Max != 1200 || s.P95 != 1200 {
		t.Errorf("samples %d min %v max %v p95 %v, want 200, 1000, 1200, 1200", s.Samples, s.Min, s.Max, s.P95)
	}
	if len(s.Drift) != 2 || s.Drift[0] != 1000 || s.Drift[1] != 1200 {
		t.Errorf("drift %v, want [1000 1200]", s.Drift)
	}
	if math.Abs(s.PlayerRate-0.9) > 1e-9 || math.Abs(s.StreamPace-1) > 1e-9 {
		t.Errorf("player rate %v, stream pace %v, want 0.9 and 1", s.PlayerRate, s.StreamPace)
	}
	if s.Stalls != 1 || s.StallSeconds != 0.05 {
		t.Errorf("stalls %d (%v s), want the one before the end of the window", s.Stalls, s.StallSeconds)
	}
	if len(s.StartEvents) != 1 || s.Events != 2 {
		t.Errorf("start events %q of %d, want the bufferSeekOverHole only", s.StartEvents, s.Events)
	}
}
