package main

import "testing"

// TestGlassFreezes: the gaps counted are those in the window; the
// longest gap is the samples' when every frame was decoded; Chromium's
// freeze counts are the window's difference.
func TestGlassFreezes(t *testing.T) {
	p := glassPage{FirstFrameAt: 2}
	for i := range 900 { // 30 s at 30 fps, a 250 ms hole at 15 s
		at := float64(i) / 30
		if at >= 15 {
			at += 0.25 - 1.0/30
		}
		p.Samples = append(p.Samples, glassSample{at, 100, at, 1e12 + 1000*at})
	}
	p.Gaps = []glassGap{{At: 2 + 3, Gap: 0.4}, {At: 2 + 15 - 1.0/30, Gap: 0.25}}
	for i := range 31 {
		r := glassRTC{At: 2 + float64(i), FramesDecoded: 30 * i}
		if i >= 16 {
			r.FreezeCount, r.TotalFreezesDuration = 2, 0.65 // one before the window (at 3 s), one in it
		} else if i >= 4 {
			r.FreezeCount, r.TotalFreezesDuration = 1, 0.4
		}
		p.RTC = append(p.RTC, r)
	}
	s := summarizeGlass(p, 10, 30)
	if s.Gaps != 1 || s.LongestGapMs < 249 || s.LongestGapMs > 251 {
		t.Errorf("gaps %d, longest %.1f ms; want 1 and 250", s.Gaps, s.LongestGapMs)
	}
	if c := s.RTC; c == nil || c.FreezeCount != 1 || c.TotalFreezesDuration < 0.2499 || c.TotalFreezesDuration > 0.2501 || c.FramesDecoded != 570 {
		t.Errorf("webrtc window %+v, want 1 freeze of 0.25 s and 570 frames", c)
	}
	p.Undecoded, p.Gaps = 1, nil
	if s := summarizeGlass(p, 10, 30); s.LongestGapMs != 0 {
		t.Errorf("longest gap %.1f ms from samples with a frame undecoded", s.LongestGapMs)
	}
	if s := summarizeGlass(glassPage{}, 10, 30); s.RTC != nil {
		t.Errorf("webrtc stats %+v without snapshots", s.RTC)
	}
}
