package segmenter

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fount-live/fount/segmenter/codec"
)

// ErrNotCarried is returned (wrapped) by SetVideoConfig and
// SetAudioConfig for a codec the segment format cannot carry (see CanCarry).
var ErrNotCarried = errors.New("segment format cannot carry the codec")

// SetVideoConfig sets the video codec configuration (package codec parses
// it from the sequence start). An equal configuration (same codec and
// record) again is a no-op; a different one after the start (another
// codec, or new parameters) cuts a new segment, flagged Discontinuity, at
// the next keyframe, with a new Init for fMP4. A codec the format cannot
// carry is refused with ErrNotCarried. It may emit segments (buffered while
// probing), so it can return a Sink error.
func (s *Segmenter) SetVideoConfig(v *codec.Video) error {
	if v == nil || !v.Codec.Video() {
		return errors.New("segmenter: not a video configuration")
	}
	if !CanCarry(s.cfg.Format, v.Codec) {
		return s.refuse(Video, v.Codec)
	}
	s.refused &^= Video
	// Compared with the configuration as set, not as a keyframe may have
	// completed it (Video.WithKeyframe).
	if old := s.videoSet; old != nil && old.Codec == v.Codec && bytes.Equal(old.Record, v.Record) {
		return nil
	}
	// A held cut is made first: its frames are of the old configuration.
	herr := s.releaseHeld()
	old := s.video
	s.video, s.videoSet = v, v
	if s.started {
		if s.tracks&Video == 0 {
			s.warnLateTrack(Video)
			return herr
		}
		if old != nil {
			s.configChanged("video", old.Codec, v.Codec)
		}
	}
	s.publishInfo()
	return firstErr(herr, s.maybeStart(false))
}

// SetAudioConfig sets the audio codec configuration: from the sequence
// start (AAC, Opus, FLAC) or the first frame (AC-3, E-AC-3, MP3; see
// codec.AudioFromFrame). See SetVideoConfig.
func (s *Segmenter) SetAudioConfig(a *codec.Audio) error {
	if a == nil || !a.Codec.Audio() {
		return errors.New("segmenter: not an audio configuration")
	}
	if !CanCarry(s.cfg.Format, a.Codec) {
		return s.refuse(Audio, a.Codec)
	}
	if a.SampleRate <= 0 {
		return fmt.Errorf("segmenter: %v configuration without a sample rate", a.Codec)
	}
	s.refused &^= Audio
	if old := s.audio; old != nil && sameAudio(old, a) {
		return nil
	}
	herr := s.releaseHeld()
	old := s.audio
	s.audio = a
	if s.started {
		if s.tracks&Audio == 0 {
			s.warnLateTrack(Audio)
			return herr
		}
		if old != nil {
			s.configChanged("audio", old.Codec, a.Codec)
		}
	}
	s.publishInfo()
	return firstErr(herr, s.maybeStart(false))
}

// refuse answers a configuration of a codec the format cannot carry: the
// track's frames are dropped (DropUnusedTrack) until a configuration the
// format carries comes, and the start no longer waits for the track. The
// error wraps ErrNotCarried (and any Sink error of a start it allowed).
func (s *Segmenter) refuse(k Kind, id codec.ID) error {
	err := fmt.Errorf("segmenter: %w: %v in %v", ErrNotCarried, id, s.cfg.Format)
	s.refused |= k
	if s.started {
		return err
	}
	if s.cfg.Expect == 0 {
		s.cfg.Expect = Video | Audio
	}
	if s.cfg.Expect &^= k; s.cfg.Expect == 0 {
		return err
	}
	return errors.Join(err, s.maybeStart(false))
}

// sameAudio reports whether two audio configurations describe the same
// stream. Those made from frames (AC-3, E-AC-3, MP3) compare by what the
// frame headers say.
func sameAudio(x, y *codec.Audio) bool {
	return x.Codec == y.Codec && bytes.Equal(x.Config, y.Config) && x.SampleRate == y.SampleRate &&
		x.Channels == y.Channels && x.ObjectTypeIndication == y.ObjectTypeIndication
}

func (s *Segmenter) configChanged(track string, from, to codec.ID) {
	msg := "codec configuration changed; starting a new segment with a discontinuity"
	if from != to {
		msg = "codec changed; starting a new segment with a discontinuity"
	}
	s.log.Info(msg, "track", track, "from", from.String(), "to", to.String())
	s.setDisc(discConfig)
}
