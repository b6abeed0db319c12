package ertmptest

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"
)

func TestLoadMP4Codecs(t *testing.T) {
	for _, c := range []struct{ video, audio string }{
		{"avc1", "mp4a"}, {"hvc1", "Opus"}, {"av01", "fLaC"}, {"vp09", "ac-3"}, {"", "ec-3"}, {"", ".mp3"},
	} {
		t.Run(c.video+c.audio, func(t *testing.T) {
			start := time.Now()
			tracks := clip(t, ClipSpec{Video: c.video, Audio: c.audio, Duration: time.Second, BFrames: 2})
			for _, tr := range tracks {
				t.Logf("%s %s %dx%d %d Hz %dch: %d samples, %.0f kbit/s, config %s", tr.Kind, tr.FourCC, tr.Width, tr.Height,
					tr.SampleRate, tr.Channels, len(tr.Samples), tr.Bitrate(), hex.EncodeToString(tr.Config))
				if len(tr.Samples) == 0 {
					t.Fatalf("%s: no samples", tr.FourCC)
				}
				if !tr.Samples[0].Key {
					t.Errorf("%s: first sample is not a keyframe", tr.FourCC)
				}
			}
			t.Logf("took %s", time.Since(start))
			want := 0
			if c.video != "" {
				want++
				v, _ := Find(tracks, Video)
				if v.FourCC != c.video {
					t.Errorf("video FourCC %q, want %q", v.FourCC, c.video)
				}
			}
			a, _ := Find(tracks, Audio)
			if a.FourCC != c.audio {
				t.Errorf("audio FourCC %q, want %q", a.FourCC, c.audio)
			}
			if want+1 != len(tracks) {
				t.Errorf("%d tracks", len(tracks))
			}
			_ = bytes.Equal
		})
	}
}
