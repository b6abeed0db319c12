package segmenter

import (
	"time"

	"github.com/fount-live/fount/segmenter/codec"
)

// muxer is one segment container (MPEG-TS in ts.go, fMP4/CMAF in fmp4.go).
// The Segmenter decides where segments and parts begin and end; a muxer
// only turns frames into container bytes, appended to its segWriter, and
// keeps whatever state must run across segments (continuity counters,
// fragment sequence numbers, the current Init).
//
// One muxer lives as long as the Segmenter's track set; it is made when the
// stream starts (maybeStart). Every method is called from the Segmenter's
// goroutine; none may allocate per frame in the steady state.
type muxer interface {
	// out is the buffer the current segment is built in. The Segmenter
	// hands it over (or slices parts out of it) and may replace it.
	out() *segWriter
	// startSegment begins a segment with the given configs: fMP4 writes
	// the styp, and first returns a new Init when the configs differ from
	// those of the current one (newInit); TS writes nothing (its tables go
	// before the first random-access PES) but redeclares a stream whose
	// codec changed in the PMT.
	startSegment(v *codec.Video, a *codec.Audio) (in Init, newInit bool, err error)
	// initVersion is the version of the Init the current segment needs (0
	// for TS).
	initVersion() int
	// prepareVideo validates a video access unit and converts it for the
	// container, before the Segmenter decides whether it cuts there, so that
	// a malformed frame is rejected before anything is written. The result
	// is kept for the writeVideo call that follows.
	prepareVideo(v *codec.Video, f Frame) error
	// writeVideo muxes the access unit prepareVideo converted.
	writeVideo(f Frame, o muxOpts) error
	// writeAudio muxes one audio frame. A frame the container cannot carry
	// is reported as a malformedError.
	writeAudio(a *codec.Audio, f Frame, o muxOpts) error
	// writeID3 muxes a timed ID3 tag at presentation time pts, right after
	// the frame just written (MPEG-TS: a PES on the timed ID3 PID, declared
	// in the PMT from the first tag on; fMP4: an emsg box before the moof of
	// the fragment holding that frame).
	writeID3(pts time.Duration, tag []byte) error
	// flush ends a part, or a segment without parts: fMP4 writes the samples
	// added since the last flush as one fragment; TS has nothing pending.
	// nextVideo is the DTS of the next video frame when known; vEst is the
	// video frame duration to assume for the newest video sample otherwise.
	flush(nextVideo time.Duration, known bool, vEst time.Duration) error
}

// muxOpts are the per-frame facts a muxer needs from the cutting rules.
type muxOpts struct {
	// randomAccess: the frame starts a segment, is a video keyframe, or
	// starts an independent audio-only part (TS: random_access_indicator,
	// and tables before it).
	randomAccess bool
	// disc: TS discontinuity_indicator (a timestamp jump, or the first frame
	// of a segment flagged Discontinuity).
	disc bool
	// jumped: the frame's DTS jumped from its track's previous frame (fMP4
	// keeps the fragment's decode times contiguous).
	jumped bool
	// est is the duration to assume for the frame when its successor's DTS
	// says nothing (a jump).
	est time.Duration
	// samples is an audio frame's duration in samples at its sample rate
	// (codec.Audio.FrameSamples).
	samples int
}

// malformedError is a frame the muxer cannot carry; the Segmenter counts it
// as DropMalformed and returns the wrapped error.
type malformedError struct{ err error }

func (e malformedError) Error() string { return e.err.Error() }
func (e malformedError) Unwrap() error { return e.err }

// segWriter is the muxer's output: a byte slice that is handed over whole
// at the end of each segment and replaced by a fresh one.
type segWriter struct {
	buf []byte
	// keys are the ranges of buf, in order, that the muxer wrote for video
	// keyframes since the Segmenter last took them (Segment.IFrames): TS
	// PAT, PMT and the keyframe's PES; fMP4 the keyframe's own fragment.
	keys []byteRange
}

// byteRange is buf[start:end].
type byteRange struct{ start, end int }

func (w *segWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// newMuxer returns the muxer of format for the tracks, whose first
// configurations are v and a (nil for a track not in tracks).
func newMuxer(format Format, tracks Tracks, v *codec.Video, a *codec.Audio) (muxer, error) {
	if format == FormatFMP4 {
		return newFMP4Muxer(tracks), nil
	}
	m, err := newTSMuxer(tracks, v, a)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// CanCarry reports whether segments of format f can carry codec id:
// fMP4 carries every codec package codec knows; MPEG-TS carries H.264,
// HEVC, AAC, AC-3, E-AC-3 and MP3 (what HLS players read from TS), not AV1,
// VP9, Opus or FLAC.
func CanCarry(f Format, id codec.ID) bool {
	switch id {
	case codec.AVC, codec.HEVC, codec.AAC, codec.AC3, codec.EAC3, codec.MP3:
		return true
	case codec.AV1, codec.VP9, codec.Opus, codec.FLAC:
		return f == FormatFMP4
	}
	return false
}
