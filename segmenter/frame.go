package segmenter

import "time"

// Kind tells which track a frame belongs to.
type Kind uint8

// The kinds, one bit each, so that Tracks can hold several.
const (
	Video Kind = 1 << iota
	Audio
)

// Tracks is a set of Kinds, e.g. Video|Audio.
type Tracks = Kind

// Frame is one codec-level access unit on the stream's 64-bit timeline.
//
// Data is only valid during the call that receives it: the caller reuses its
// buffer for the next frame, so a segmenter copies (or muxes) what it keeps.
type Frame struct {
	Kind Kind
	DTS  time.Duration // decode time on the unwrapped stream timeline
	PTS  time.Duration // presentation time (DTS + composition offset); == DTS for audio
	Key  bool          // video: a keyframe (IDR) that a segment may start with
	// Data is one access unit. Video: H.264 and HEVC length-prefixed NAL
	// units (the configuration's NALULengthSize), AV1 a temporal unit of
	// OBUs (low-overhead format, as in MP4 samples), VP9 a frame or
	// superframe. Audio: one raw AAC frame, Opus packet, FLAC frame, AC-3
	// or E-AC-3 sync frame, or MP3 frame.
	Data []byte
}
