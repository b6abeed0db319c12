package segmenter

import (
	"errors"
	"testing"
	"time"

	"github.com/fount-live/fount/segmenter/codec"
)

func TestCanCarry(t *testing.T) {
	for id := codec.AVC; id <= codec.MP3; id++ {
		ts := id != codec.AV1 && id != codec.VP9 && id != codec.Opus && id != codec.FLAC
		if CanCarry(FormatTS, id) != ts || !CanCarry(FormatFMP4, id) {
			t.Errorf("%v: TS %v, fMP4 %v", id, CanCarry(FormatTS, id), CanCarry(FormatFMP4, id))
		}
	}
	if CanCarry(FormatFMP4, codec.Unknown) {
		t.Error("Unknown carried")
	}
}

// A video codec MPEG-TS cannot carry is refused; the stream starts with
// audio alone at once rather than waiting for the announced video, and the
// video frames are dropped as unused.
func TestRefusedTrack(t *testing.T) {
	s, c, _ := newTest(t, Config{Expect: Video | Audio}, false, false)
	err := s.SetVideoConfig(&codec.Video{Codec: codec.AV1})
	if !errors.Is(err, ErrNotCarried) {
		t.Fatalf("AV1 in TS: %v", err)
	}
	if s.started {
		t.Fatal("started without a track")
	}
	if err := setAAC(s, ascLC44Stereo); err != nil {
		t.Fatal(err)
	}
	if !s.started || s.tracks != Audio {
		t.Fatalf("started %v with %v", s.started, trackName(s.tracks))
	}
	g := newSynth(30, true, true)
	g.run(t, s, 3*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.segs) == 0 || c.segs[0].HasVideo || c.segs[0].Start != 0 {
		t.Fatalf("%d segments, first %+v", len(c.segs), c.segs[0])
	}
	if d := s.ctr.Dropped[DropUnusedTrack].Load(); d < 80 {
		t.Fatalf("%d video frames dropped as unused", d)
	}
	// Opus is refused the same way once started; the AAC track goes on.
	if err := s.SetAudioConfig(&codec.Audio{Codec: codec.Opus, SampleRate: 48000}); !errors.Is(err, ErrNotCarried) {
		t.Fatalf("Opus in TS: %v", err)
	}
	if s.Info().Audio.Codec != codec.AAC {
		t.Fatal("refused config replaced the carried one")
	}
}
