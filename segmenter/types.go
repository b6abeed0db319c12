package segmenter

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fount-live/fount/segmenter/codec"
)

// Config configures a Segmenter. Zero values select the defaults.
type Config struct {
	TargetDuration time.Duration    // segment target; default 2s when zero
	Expect         Tracks           // tracks announced by the encoder's onMetaData; 0 = unknown
	ProbeDuration  time.Duration    // how long (by frame DTS) to wait for the announced/unknown tracks' configs before starting; default 1s
	Now            func() time.Time // wall clock for ProgramDateTime; nil = time.Now
	Logger         *slog.Logger     // nil = slog.Default()
	Format         Format           // output container; default MPEG-TS
	// PartDuration is the LL-HLS part target; 0 = no parts. A part is
	// handed over as soon as the frame that completes it is written, except
	// the one that may end its segment (SegmentDue), which waits for the
	// next video frame and, at a cut, for the audio presented before the
	// cutting keyframe (see holdcut.go). Part
	// durations are <= PartDuration (a part that would exceed it by up to
	// 1 ms of millisecond-timestamp rounding is reported as PartDuration, the
	// difference going to the next part); only a gap in the timestamps
	// (< 10 s, so not a discontinuity) can make one longer. A segment's part
	// durations sum to its Duration within 1 ms.
	PartDuration time.Duration
	// MaxSegmentDuration and MaxSegmentBytes cap the segment being built,
	// which otherwise grows until the next keyframe: an encoder that never
	// sends one (or has a GOP of minutes) must not grow it without bound.
	// At the cap the segment is cut at the next frame even if it is not a
	// keyframe, and the stream goes on: players already playing decode
	// straight on, a player that joins at such a segment may show a damaged
	// picture until the next keyframe. Defaults: max(3 × TargetDuration,
	// 10 s) and 64 MiB.
	MaxSegmentDuration time.Duration
	MaxSegmentBytes    int
	// Counters, when set, are process-wide totals this segmenter adds to
	// (shared by every stream's segmenter, read by the metrics).
	Counters *Counters
	// ReuseBuffer builds every segment in the same buffer: Part and
	// Segment Data (and Segment.Parts and IFrames) are then valid only
	// until the Sink call that hands the Segment over returns, and a Sink
	// that keeps them must copy them. It saves a segment-sized allocation per
	// segment, and the garbage. Off: each segment has a buffer of its own,
	// never written again.
	ReuseBuffer bool
	// PartsOnly, with PartDuration > 0, keeps only the part being built:
	// a part's bytes may be overwritten once Sink.Part returns. Segment.Data
	// is then only the bytes before the first part (fMP4: the styp; MPEG-TS:
	// none), Segment.Parts carry no Data, and the segment is those bytes
	// followed by its parts, which a Sink that serves it must have kept. A
	// stream then holds one part in memory rather than a whole segment.
	// Implies ReuseBuffer.
	PartsOnly bool
}

// Counters are totals over any number of segmenters: atomics, safe to read
// from any goroutine while segmenters add to them.
type Counters struct {
	// Discontinuities by cause: segments flagged Discontinuity because the
	// timestamps jumped, or because a codec configuration changed.
	TimestampJumps, ConfigChanges atomic.Uint64
	// Dropped counts frames not written, by DropReason.
	Dropped [NumDropReasons]atomic.Uint64
	// CappedSegments counts segments cut at MaxSegmentDuration or
	// MaxSegmentBytes rather than at a keyframe after the target.
	CappedSegments atomic.Uint64
	// RequestedCuts counts segments opened at a requested cut (CutAt).
	RequestedCuts atomic.Uint64
}

// DropReason says why a frame was not written.
type DropReason uint8

const (
	DropNoConfig       DropReason = iota // its track's codec configuration (sequence header) has not arrived
	DropBeforeKeyframe                   // before the stream's first video keyframe (or a flushed part's pending audio)
	DropUnusedTrack                      // its track is not part of the stream (appeared after the start)
	DropMalformed                        // empty, unparseable or of an unknown kind
	NumDropReasons                       // the number of reasons, for arrays indexed by DropReason
)

// String is the reason's metric label, e.g. "no_codec_config".
func (r DropReason) String() string {
	switch r {
	case DropNoConfig:
		return "no_codec_config"
	case DropBeforeKeyframe:
		return "before_keyframe"
	case DropUnusedTrack:
		return "unused_track"
	}
	return "malformed"
}

// Format is the segment container.
type Format uint8

const (
	FormatTS   Format = iota // MPEG-TS (default)
	FormatFMP4               // fMP4/CMAF
)

// String names the container: "MPEG-TS" or "fMP4".
func (f Format) String() string {
	if f == FormatFMP4 {
		return "fMP4"
	}
	return "MPEG-TS"
}

// Part is one LL-HLS partial segment of the segment being built.
//
// Data is a subslice (with capacity capped at its length) of the buffer the
// whole segment is built in: the segment's Data is its parts concatenated
// (fMP4: preceded by the styp), not a second copy. The bytes are not written
// again until the segment has been handed over (never, unless
// Config.ReuseBuffer; with Config.PartsOnly, once Sink.Part returns). Should
// the segment buffer have to grow while a segment is built (it is pre-sized
// from the previous segment, x1.25), parts handed over before keep pointing
// at the old array, which holds the same bytes.
type Part struct {
	Data        []byte
	Duration    time.Duration
	Independent bool // starts with a video keyframe (always true for audio-only)
	// SegmentStart is the Start of the segment this part belongs to (the
	// stream-timeline DTS of the segment's first frame), known from its
	// first part on: a playlist can number the segment by it (e.g. to align
	// renditions) before the segment is finished.
	SegmentStart time.Duration
	// SegmentDue says that the segment may end right after this part: it
	// has reached its target duration (or a cap, or a discontinuity is
	// pending), so the next keyframe (audio-only: the next frame) closes
	// it, and the next part will most likely be the next segment's first;
	// a keyframe that comes later (a GOP longer than the target) adds more
	// parts to this segment first. Without it, the next part is this
	// segment's: only what cannot be foreseen when this part is handed
	// over cuts the segment sooner (a timestamp jump or a new codec
	// configuration arriving after it, or a gap in the timestamps up to
	// the target just before a keyframe). A playlist names its
	// EXT-X-PRELOAD-HINT by it, so that the hinted part comes to exist.
	SegmentDue bool
}

// Init is an fMP4 initialization segment (ftyp+moov).
type Init struct {
	Data    []byte
	Version int // 0,1,2...: increases each time the codec configuration changes
}

// Segment is one finished media segment.
type Segment struct {
	Data            []byte        // a complete MPEG-TS or fMP4 (styp+fragments) segment, never modified after handing over; with Config.PartsOnly only the bytes before its first part
	Size            int           // the whole segment's bytes: len(Data) unless Config.PartsOnly
	Start           time.Duration // stream-timeline DTS of the segment's first frame (the opening keyframe when the stream has video)
	StartPTS        time.Duration // stream-timeline PTS of that frame: what CutAt compares
	Duration        time.Duration // next segment's Start minus this Start; for the final flushed one, last frame DTS + one frame duration - Start
	ProgramDateTime time.Time     // wall clock (Config.Now) when the timeline's first segment (the stream's first, or the first after a discontinuity) opened, plus this segment's Start minus that segment's; never decreases
	Discontinuity   bool          // timestamps jumped or codec config changed before this segment
	HasVideo        bool          // holds at least one video frame
	HasAudio        bool          // holds at least one audio frame
	Parts           []Part        // when PartDuration > 0: every part of this segment in order, the same slices handed to Sink.Part (without Data if Config.PartsOnly)
	InitVersion     int           // fMP4: which Init this segment needs; 0 for TS
	// IFrames are the segment's video keyframes in order (usually one, at
	// its start; more when the GOP is shorter than the segment); nil
	// without video keyframes (audio-only). With Config.ReuseBuffer (or
	// PartsOnly) the slice, like Parts, is valid only until the Sink call
	// that hands the Segment over returns.
	IFrames []IFrame
}

// IFrame locates one video keyframe inside its segment, for I-frame
// playlists (EXT-X-I-FRAMES-ONLY with EXT-X-BYTERANGE into the segment).
// The byte range alone decodes to exactly that keyframe: MPEG-TS: a PAT, a
// PMT and the keyframe's PES packets; fMP4: a fragment (moof+mdat) holding
// only the keyframe, to be read after the segment's Init.
type IFrame struct {
	Offset, Size int           // byte range within the whole segment (as served: with Config.PartsOnly, the segment is Data followed by its parts)
	Duration     time.Duration // until the next keyframe (or the segment's end, for the last)
}

// Sink receives inits, parts and segments, synchronously, in order. An error
// it returns is returned from the Segmenter call that produced the output.
type Sink interface {
	// Init (fMP4 only) comes before the first Part/Segment, and again after
	// a codec change, before the first segment that needs it.
	Init(Init) error
	// Part (PartDuration > 0 only) is each finished part, as soon as the
	// frame that completes it has been written (the last of a segment:
	// with the cut; see Config.PartDuration).
	Part(Part) error
	// Segment is the finished segment; its last Part was handed over just
	// before.
	Segment(Segment) error
}

// Info is a snapshot of what the segmenter knows about its stream.
type Info struct {
	Video         *VideoInfo    // nil if no video config
	Audio         *AudioInfo    // nil if no audio config
	Codecs        string        // HLS CODECS attribute, e.g. "avc1.64001f,mp4a.40.2"
	GOP           time.Duration // last measured keyframe interval
	GOPTooLong    bool          // a GOP was longer than TargetDuration
	Segments      uint64        // segments handed to the Sink so far
	DroppedFrames uint64        // frames dropped (before first keyframe, before config, unsupported)
	// Discontinuities this segmenter flagged, by cause (see Counters).
	TimestampJumps, ConfigChanges uint64
}

// VideoInfo describes the video track. Its slices must not be modified.
type VideoInfo struct {
	Codec          codec.ID       // codec.AVC, codec.HEVC, codec.AV1, codec.VP9
	Codecs         string         // RFC 6381: "avc1.64001f", "hvc1.1.6.L93.B0", "av01.0.08M.08", "vp09.00.10.08"
	Width, Height  int            // after cropping; 0 if not known yet (VP9 before its first keyframe)
	FrameRate      float64        // from the bitstream's timing if present, else measured, 0 if unknown
	Transfer       codec.Transfer // SDR, PQ or HLG (HLS VIDEO-RANGE)
	VPS, SPS, PPS  [][]byte       // AVC and HEVC parameter sets (VPS: HEVC only)
	NALULengthSize int            // AVC and HEVC
	Config         *codec.Video   // the whole configuration; read-only
}

// AudioInfo describes the audio track. Config must not be modified.
type AudioInfo struct {
	Codec      codec.ID // codec.AAC, codec.Opus, codec.FLAC, codec.AC3, codec.EAC3, codec.MP3
	Codecs     string   // RFC 6381: "mp4a.40.2", "opus", "fLaC", "ac-3", "ec-3", "mp4a.40.34"
	ObjectType int      // AAC audio object type
	SampleRate int
	Channels   int
	Config     []byte       // the codec's configuration (see codec.Audio.Config)
	Audio      *codec.Audio // the whole configuration; read-only
}
