// Package segmenter turns the codec frames of one live stream into
// GOP-aligned HLS segments, MPEG-TS or fMP4/CMAF, optionally with LL-HLS
// partial segments. It knows nothing of RTMP or HTTP.
//
// Timeline: Segment.Start is the DTS of the segment's first frame on the
// primary track (video when the stream has video, else audio): for video
// this is the DTS of the keyframe that opens the segment. MPEG-TS PTS/DTS are
// the stream timeline in 90 kHz units, modulo 2^33. fMP4 decode times (tfdt)
// are the stream timeline in the track's timescale (90 kHz video, the sample
// rate for audio), 64-bit; negative times are clamped to 0.
package segmenter

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
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
	// handed over as soon as the frame that completes it is written. Part
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
	// Segment Data (and Segment.Parts) are then valid only until the Sink
	// call that hands the Segment over returns, and a Sink that keeps
	// bytes must copy them. It saves a segment-sized allocation per
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
}

// DropReason says why a frame was not written.
type DropReason uint8

const (
	DropNoConfig       DropReason = iota // its track's codec configuration (sequence header) has not arrived
	DropBeforeKeyframe                   // before the stream's first video keyframe (or a flushed part's pending audio)
	DropUnusedTrack                      // its track is not part of the stream (appeared after the start)
	DropMalformed                        // empty, unparseable or of an unknown kind
	NumDropReasons
)

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
	Duration        time.Duration // next segment's Start minus this Start; for the final flushed one, last frame DTS + one frame duration - Start
	ProgramDateTime time.Time     // wall clock (Config.Now) when this segment's first frame was written; never decreases
	Discontinuity   bool          // timestamps jumped or codec config changed before this segment
	HasVideo        bool
	HasAudio        bool
	Parts           []Part // when PartDuration > 0: every part of this segment in order, the same slices handed to Sink.Part (without Data if Config.PartsOnly)
	InitVersion     int    // fMP4: which Init this segment needs; 0 for TS
}

// Sink receives inits, parts and segments, synchronously, in order. An error
// it returns is returned from the Segmenter call that produced the output.
type Sink interface {
	// Init (fMP4 only) comes before the first Part/Segment, and again after
	// a codec change, before the first segment that needs it.
	Init(Init) error
	// Part (PartDuration > 0 only) is each finished part, as soon as the
	// frame that completes it has been written.
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
	Segments      uint64
	DroppedFrames uint64 // frames dropped (before first keyframe, before config, unsupported)
	// Discontinuities this segmenter flagged, by cause (see Counters).
	TimestampJumps, ConfigChanges uint64
}

// VideoInfo describes the H.264 track. Its slices must not be modified.
type VideoInfo struct {
	Codec          string  // "avc1.PPCCLL"
	Width, Height  int     // after cropping
	FrameRate      float64 // from SPS VUI timing if present, else measured, 0 if unknown
	SPS, PPS       [][]byte
	NALULengthSize int
}

// AudioInfo describes the AAC track. Config must not be modified.
type AudioInfo struct {
	Codec      string // "mp4a.40.2"
	ObjectType int
	SampleRate int
	Channels   int
	Config     []byte // the AudioSpecificConfig
}

const (
	defaultTarget = 2 * time.Second
	defaultProbe  = time.Second
	// jumpThreshold: a DTS moving backwards, or forwards by more than this,
	// from the previous frame of the same track is a discontinuity.
	jumpThreshold = 10 * time.Second
	// cutTolerance lets a keyframe cut a segment that is this much short of
	// the target, so that rounding (30 fps in ns or ms) does not push cuts a
	// whole GOP later.
	cutTolerance = time.Millisecond
	// Segment caps (Config.MaxSegmentDuration, MaxSegmentBytes): a
	// segment longer than this is rarely what the encoder meant, and 64 MiB
	// is 10 s of a 50 Mbit/s stream.
	defaultMaxSegment      = 10 * time.Second
	defaultMaxSegmentBytes = 64 << 20
	// videoStall: audio this far ahead of the last video frame means video
	// has stopped (encoders interleave within a few hundred ms).
	videoStall = 2 * time.Second
	// Bounds on what is buffered while probing for track configs.
	maxProbeBytes  = 32 << 20
	maxProbeFrames = 8192
	// configWait: while video frames arrive without their sequence
	// header, the start waits this long (by DTS) for the header rather
	// than ProbeDuration, so that a late header still gives the stream its
	// video; past it the stream starts without video.
	configWait = 5 * time.Second
)

// discCause is why a discontinuity is pending.
type discCause uint8

const (
	discNone discCause = iota
	discJump
	discConfig
)

type trackState struct {
	seen      bool
	last      time.Duration // DTS of the previous frame
	lastDelta time.Duration // last normal (non-jump, positive) DTS delta
	warned    bool          // "track appeared after start" logged
}

type bufferedFrame struct {
	kind     Kind
	dts, pts time.Duration
	key      bool
	jump     bool // deferred audio: the frame jumped on its track
	off, n   int
}

// Segmenter cuts one stream into segments. SetVideoConfig, SetAudioConfig,
// WriteFrame and Flush must be called from one goroutine (or serialised by
// the caller); Info may be called concurrently from any goroutine.
type Segmenter struct {
	cfg    Config
	sink   Sink
	log    *slog.Logger
	now    func() time.Time
	target time.Duration

	video *avcConfig
	audio *aacConfig

	// Probing: before the track set is decided.
	started     bool
	tracks      Tracks
	probeSeen   bool
	probeFirst  time.Duration
	probeFrames []bufferedFrame
	probeData   []byte
	noConfig    Tracks // tracks whose frames arrived before their config (logged)
	firstDTS    [2]time.Duration
	firstSeen   Tracks // tracks whose first frame was seen (firstDTS valid)

	mux *tsMuxer   // FormatTS
	fm  *fmp4Muxer // FormatFMP4
	out *segWriter // the segment buffer of mux or fm

	vt, at      trackState
	pendingDisc bool // cut at the next opportunity and flag Discontinuity
	discCause   discCause
	jumpLogged  bool
	jumpNow     bool // the frame being written jumped on its track
	gopWarned   bool
	capWarned   bool // "segment cap reached" logged at Warn once
	lastKey     time.Duration
	haveKey     bool // lastKey valid (no jump since)
	framesSince int  // video frames since lastKey

	// Current segment.
	open     bool
	first    bool // the current segment is the stream's first
	segStart time.Duration
	elapsed  time.Duration // primary-track time from segStart to the last primary frame
	segPDT   time.Time
	lastPDT  time.Time
	segDisc  bool
	segVideo bool
	segAudio bool
	nextCap  int
	emitted  uint64
	annexB   []byte // TS: the video frame being written, Annex-B
	vdata    []byte // fMP4: the video frame being written, AVCC with 4-byte lengths
	audioBuf []byte
	segInit  int // fMP4: Init version of the current segment

	// Parts (PartDuration > 0).
	partsOn     bool
	partsOnly   bool          // Config.PartsOnly in effect: handed-over parts leave the buffer
	partBase    int           // length of the segment's bytes before its first part
	handed      int           // PartsOnly: bytes of this segment's parts no longer in the buffer
	maxPart     int           // largest part of this segment
	partStart   int           // offset in the segment buffer where the open part begins
	partStartEl time.Duration // open part's start, relative to segStart
	partPrimary bool          // the open part has a primary-track frame
	partFrames  int           // frames muxed into the open part
	partIndep   bool
	partForced  bool // deferred audio was muxed into the open part without video
	segParts    []Part
	// Audio that arrived after the open part's last video frame closed the
	// previous part: it goes into the part of the next video frame, so that
	// no part is left without video (a stranded audio-only part at the end of
	// a segment would have a duration of ~0).
	pend     []bufferedFrame
	pendData []byte

	mu   sync.Mutex // guards info
	info Info
	ctr  *Counters // Config.Counters, or this segmenter's own
}

// New returns a Segmenter that hands finished segments to sink.
func New(cfg Config, sink Sink) *Segmenter {
	s := &Segmenter{cfg: cfg, sink: sink, log: cfg.Logger, now: cfg.Now, target: cfg.TargetDuration}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.target <= 0 {
		s.target = defaultTarget
	}
	if s.cfg.ProbeDuration <= 0 {
		s.cfg.ProbeDuration = defaultProbe
	}
	s.cfg.Expect &= Video | Audio
	s.partsOn = cfg.PartDuration > 0
	s.partsOnly = s.partsOn && cfg.PartsOnly
	if s.cfg.MaxSegmentDuration <= 0 {
		s.cfg.MaxSegmentDuration = max(3*s.target, defaultMaxSegment)
	}
	if s.cfg.MaxSegmentBytes <= 0 {
		s.cfg.MaxSegmentBytes = defaultMaxSegmentBytes
	}
	s.ctr = cfg.Counters
	if s.ctr == nil {
		s.ctr = new(Counters)
	}
	return s
}

// Info returns a snapshot of the stream's state. Safe for concurrent use.
func (s *Segmenter) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.info
	if in.Video != nil {
		v := *in.Video
		in.Video = &v
	}
	if in.Audio != nil {
		a := *in.Audio
		in.Audio = &a
	}
	return in
}

func (s *Segmenter) countDrop(r DropReason) {
	s.ctr.Dropped[r].Add(1)
	s.mu.Lock()
	s.info.DroppedFrames++
	s.mu.Unlock()
}

// publishInfo refreshes the codec part of Info. Only tracks that are (or,
// before the start, may still be) part of the output are described.
func (s *Segmenter) publishInfo() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info.Video, s.info.Audio = nil, nil
	var codecs []string
	if s.video != nil && (!s.started || s.tracks&Video != 0) {
		fr := s.video.spsInfo.frameRate
		s.info.Video = &VideoInfo{
			Codec:          s.video.codec(),
			Width:          s.video.spsInfo.width,
			Height:         s.video.spsInfo.height,
			FrameRate:      fr,
			SPS:            s.video.sps,
			PPS:            s.video.pps,
			NALULengthSize: s.video.nalLengthSize,
		}
		codecs = append(codecs, s.video.codec())
	}
	if s.audio != nil && (!s.started || s.tracks&Audio != 0) {
		s.info.Audio = &AudioInfo{
			Codec:      s.audio.codec(),
			ObjectType: s.audio.objectType,
			SampleRate: s.audio.sampleRate,
			Channels:   s.audio.channels,
			Config:     s.audio.raw,
		}
		codecs = append(codecs, s.audio.codec())
	}
	s.info.Codecs = joinComma(codecs)
}

// trackName names a track set for logs.
func trackName(t Tracks) string {
	switch t {
	case Video:
		return "video"
	case Audio:
		return "audio"
	case Video | Audio:
		return "video+audio"
	}
	return "none"
}

func joinComma(ss []string) string {
	var b bytes.Buffer
	for i, c := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c)
	}
	return b.String()
}

// SetVideoConfig sets the H.264 configuration from an FLV AVC sequence header
// (an AVCDecoderConfigurationRecord). The same bytes again are a no-op;
// different bytes after the start cut a new segment, flagged Discontinuity,
// at the next keyframe. It may emit segments (buffered while probing), so it
// can return a Sink error.
func (s *Segmenter) SetVideoConfig(record []byte) error {
	if s.video != nil && bytes.Equal(s.video.raw, record) {
		return nil
	}
	c, err := parseAVCConfig(record)
	if err != nil {
		return err
	}
	old := s.video
	s.video = c
	if s.started {
		if s.tracks&Video == 0 {
			s.warnLateTrack(Video)
			return nil
		}
		if old != nil {
			s.configChanged("video")
		}
	}
	s.publishInfo()
	return s.maybeStart(false)
}

// SetAudioConfig sets the AAC configuration from an FLV AAC sequence header
// (an AudioSpecificConfig). See SetVideoConfig.
func (s *Segmenter) SetAudioConfig(asc []byte) error {
	if s.audio != nil && bytes.Equal(s.audio.raw, asc) {
		return nil
	}
	c, err := parseASC(asc)
	if err != nil {
		return err
	}
	old := s.audio
	s.audio = c
	if s.started {
		if s.tracks&Audio == 0 {
			s.warnLateTrack(Audio)
			return nil
		}
		if old != nil {
			s.configChanged("audio")
		}
	}
	s.publishInfo()
	return s.maybeStart(false)
}

func (s *Segmenter) configChanged(track string) {
	s.log.Info("codec configuration changed; starting a new segment with a discontinuity", "track", track)
	s.setDisc(discConfig)
}

// setDisc makes the next segment a discontinuity; the first cause seen is
// the one counted.
func (s *Segmenter) setDisc(c discCause) {
	if !s.pendingDisc || s.discCause == discNone {
		s.discCause = c
	}
	s.pendingDisc = true
}

func (s *Segmenter) warnLateTrack(k Kind) {
	ts := &s.vt
	name := "video"
	if k == Audio {
		ts, name = &s.at, "audio"
	}
	if !ts.warned {
		ts.warned = true
		s.log.Warn("track appeared after the stream started; ignoring it", "track", name)
	}
}

func (s *Segmenter) have() Tracks {
	var t Tracks
	if s.video != nil {
		t |= Video
	}
	if s.audio != nil {
		t |= Audio
	}
	return t
}

// maybeStart decides the track set if the expected configs are all present,
// or if force is set (probe time over) and at least one is.
func (s *Segmenter) maybeStart(force bool) error {
	if s.started {
		return nil
	}
	want := s.cfg.Expect
	if want == 0 {
		want = Video | Audio
	}
	have := s.have()
	if have == 0 || (!force && have&want != want) {
		return nil
	}
	if s.cfg.Format == FormatFMP4 {
		s.fm = newFMP4Muxer(have)
		s.out = &s.fm.w
	} else {
		mux, err := newTSMuxer(have)
		if err != nil {
			return fmt.Errorf("segmenter: creating muxer: %w", err)
		}
		s.mux = mux
		s.out = &mux.w
	}
	s.started = true
	s.tracks = have
	s.first = true
	s.publishInfo()
	s.log.Debug("segmenter started", "video", have&Video != 0, "audio", have&Audio != 0)

	frames, data := s.probeFrames, s.probeData
	s.probeFrames, s.probeData = nil, nil
	var firstErr error
	for _, bf := range frames {
		f := Frame{Kind: bf.kind, DTS: bf.dts, PTS: bf.pts, Key: bf.key, Data: data[bf.off : bf.off+bf.n]}
		if err := s.writeStarted(f); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// WriteFrame adds one frame. f.Data is not retained. A malformed frame is
// dropped and reported as an error; a Sink error is returned as is.
func (s *Segmenter) WriteFrame(f Frame) error {
	if f.Kind != Video && f.Kind != Audio {
		s.countDrop(DropMalformed)
		return nil
	}
	s.noteFirst(f)
	if s.started {
		return s.writeStarted(f)
	}
	if !s.probeSeen {
		s.probeSeen = true
		s.probeFirst = f.DTS
	}
	if (f.Kind == Video && s.video == nil) || (f.Kind == Audio && s.audio == nil) {
		s.countDrop(DropNoConfig)
		if s.noConfig&f.Kind == 0 {
			s.noConfig |= f.Kind
			s.log.Warn("frames before their track's sequence header (decoder configuration); dropping them until it arrives",
				"track", trackName(f.Kind), "dts", f.DTS)
		}
	} else {
		s.probeFrames = append(s.probeFrames, bufferedFrame{
			kind: f.Kind, dts: f.DTS, pts: f.PTS, key: f.Key, off: len(s.probeData), n: len(f.Data),
		})
		s.probeData = append(s.probeData, f.Data...)
	}
	// Only video is waited for: without it the stream would be a different
	// kind (audio-only), while audio missing its header costs less than a
	// later start.
	wait := s.cfg.ProbeDuration
	missing := s.noConfig &^ s.have() & Video
	if missing != 0 {
		wait = max(wait, configWait)
	}
	force := f.DTS-s.probeFirst >= wait ||
		len(s.probeData) > maxProbeBytes || len(s.probeFrames) > maxProbeFrames
	if force && missing != 0 && s.have() != 0 {
		s.log.Warn("no sequence header arrived for a track whose frames did; starting the stream without it",
			"track", trackName(missing), "waited", f.DTS-s.probeFirst)
	}
	return s.maybeStart(force)
}

// noteFirst logs a track whose first frame comes far (more than a second)
// from the other track's: players and the A/V skew show it, and the first
// segments lack that track.
func (s *Segmenter) noteFirst(f Frame) {
	i, other := 0, Audio
	if f.Kind == Audio {
		i, other = 1, Video
	}
	if s.firstSeen&f.Kind != 0 {
		return
	}
	s.firstSeen |= f.Kind
	s.firstDTS[i] = f.DTS
	if s.firstSeen&other == 0 {
		return
	}
	if d := f.DTS - s.firstDTS[1-i]; d > time.Second || d < -time.Second {
		s.log.Warn("track starts far from the other one", "track", trackName(f.Kind), "after", d)
	}
}

// observe updates the track's timing and reports the delta to the previous
// frame, or whether it was a jump.
func (s *Segmenter) observe(ts *trackState, dts time.Duration, track string) (delta time.Duration, jumped bool) {
	s.jumpNow = false
	if ts.seen {
		delta = dts - ts.last
		if delta < 0 || delta > jumpThreshold {
			jumped = true
			if !s.pendingDisc || !s.jumpLogged {
				s.log.Warn("timestamp jump; next segment will be a discontinuity",
					"track", track, "from", ts.last, "to", dts)
				s.jumpLogged = true
			}
			s.setDisc(discJump)
			s.jumpNow = true
		} else if delta > 0 {
			ts.lastDelta = delta
		}
	}
	ts.seen = true
	ts.last = dts
	return delta, jumped
}

// frameDuration estimates one frame's duration on a track.
func (s *Segmenter) frameDuration(k Kind) time.Duration {
	if k == Video {
		if s.vt.lastDelta > 0 {
			return s.vt.lastDelta
		}
		if s.video != nil && s.video.spsInfo.frameRate > 0 {
			return time.Duration(float64(time.Second) / s.video.spsInfo.frameRate)
		}
		return time.Second / 30
	}
	if s.at.lastDelta > 0 {
		return s.at.lastDelta
	}
	if s.audio != nil && s.audio.sampleRate > 0 {
		return time.Duration(int64(time.Second) * 1024 / int64(s.audio.sampleRate))
	}
	return 1024 * time.Second / 44100
}

func (s *Segmenter) writeStarted(f Frame) error {
	if f.Kind&s.tracks == 0 {
		if (f.Kind == Video && s.video == nil) || (f.Kind == Audio && s.audio == nil) {
			// Still no sequence header: said when the first frame came.
			s.countDrop(DropNoConfig)
			return nil
		}
		s.warnLateTrack(f.Kind)
		s.countDrop(DropUnusedTrack)
		return nil
	}
	if len(f.Data) == 0 {
		s.countDrop(DropMalformed)
		return nil
	}
	hasVideo := s.tracks&Video != 0
	if f.Kind == Video {
		return s.writeVideo(f)
	}
	delta, jumped := s.observe(&s.at, f.DTS, "audio")
	if hasVideo {
		if !s.open || (s.first && f.DTS < s.segStart) {
			s.countDrop(DropBeforeKeyframe)
			return nil
		}
		// Timestamps that jumped say nothing about a stall: the jump is
		// cut at the next keyframe.
		d := f.DTS - s.segStart
		stalled := !jumped && !s.pendingDisc && d > s.cfg.MaxSegmentDuration && f.DTS-s.vt.last > videoStall
		if stalled || s.segBytes() >= s.cfg.MaxSegmentBytes {
			// Video stalled while audio goes on: the segment would only
			// grow. Cut at this audio frame.
			s.noteCap(d, false)
			err := firstErr(s.flushPending(), s.cut(Audio, f.DTS, d, 0, false))
			return firstErr(err, s.muxAudio(f, true, jumped))
		}
		if s.partsOn && !s.partPrimary && !s.partForced {
			return s.deferAudio(f, jumped)
		}
		return s.muxAudio(f, false, jumped)
	}
	// Audio-only: every frame is a cut opportunity.
	if !s.open {
		err := s.openSegment(Audio, f.DTS)
		return firstErr(err, s.afterPrimary(Audio, s.muxAudio(f, true, jumped)))
	}
	step := delta
	if jumped {
		step = s.frameDuration(Audio)
	}
	if s.pendingDisc || s.elapsed+step+cutTolerance >= s.target {
		// A Sink error is reported after the frame is muxed, so that the
		// new segment still starts with it.
		err := s.cut(Audio, f.DTS, s.elapsed+step, 0, false)
		return firstErr(err, s.afterPrimary(Audio, s.muxAudio(f, true, jumped)))
	}
	s.elapsed += step
	return s.afterPrimary(Audio, s.muxAudio(f, false, jumped))
}

func (s *Segmenter) writeVideo(f Frame) error {
	delta, jumped := s.observe(&s.vt, f.DTS, "video")
	// Convert first: a malformed frame is rejected before anything is muxed.
	var err error
	if s.fm != nil {
		s.vdata, err = normalizeAVCC(s.fm.nvbuf[:0], f.Data, s.video.nalLengthSize)
		if s.video.nalLengthSize != 4 && err == nil {
			s.fm.nvbuf = s.vdata
		}
	} else {
		s.annexB, _, err = avccToAnnexB(s.annexB, f.Data, s.video.nalLengthSize, s.video.paramSetsAnnex)
	}
	if err != nil {
		s.countDrop(DropMalformed)
		return err
	}
	if jumped {
		s.haveKey = false
	}
	if !s.open {
		if !f.Key {
			s.countDrop(DropBeforeKeyframe)
			return nil
		}
		s.noteKeyframe(f.DTS)
		err := s.openSegment(Video, f.DTS)
		return firstErr(err, s.afterVideo(s.muxVideo(f, true)))
	}
	step := delta
	if jumped {
		step = s.frameDuration(Video)
	}
	if f.Key {
		s.noteKeyframe(f.DTS)
		if s.pendingDisc || s.elapsed+step+cutTolerance >= s.target {
			err := s.cut(Video, f.DTS, s.elapsed+step, f.DTS, !jumped)
			return firstErr(err, s.afterVideo(s.muxVideo(f, true)))
		}
		if s.overCap(s.elapsed + step) {
			s.noteCap(s.elapsed+step, true)
			err := s.cut(Video, f.DTS, s.elapsed+step, f.DTS, !jumped)
			return firstErr(err, s.afterVideo(s.muxVideo(f, true)))
		}
	} else {
		s.framesSince++
		if s.overCap(s.elapsed + step) {
			// No keyframe in sight: cut here all the same (see
			// Config.MaxSegmentDuration). The new segment starts with a
			// frame that needs the previous ones to decode.
			s.noteCap(s.elapsed+step, false)
			err := s.cut(Video, f.DTS, s.elapsed+step, f.DTS, !jumped)
			return firstErr(err, s.afterVideo(s.muxVideo(f, true)))
		}
	}
	s.elapsed += step
	return s.afterVideo(s.muxVideo(f, false))
}

// overCap reports whether the segment being built, were it d long, would
// pass a cap.
func (s *Segmenter) overCap(d time.Duration) bool {
	return d > s.cfg.MaxSegmentDuration || s.segBytes() >= s.cfg.MaxSegmentBytes
}

// segBytes is the size so far of the segment being built.
func (s *Segmenter) segBytes() int { return s.handed + len(s.out.buf) }

// noteCap counts and logs a segment cut at a cap.
func (s *Segmenter) noteCap(d time.Duration, atKey bool) {
	s.ctr.CappedSegments.Add(1)
	lvl := slog.LevelDebug
	if !s.capWarned {
		s.capWarned = true
		lvl = slog.LevelWarn
	}
	msg := "segment cap reached without a keyframe: cutting at a non-keyframe; players already playing carry on, players joining at the next segment may show a damaged picture until the next keyframe (set the encoder's keyframe interval to the segment duration)"
	if atKey {
		msg = "segment cap reached: cutting at this keyframe before the target duration"
	}
	s.log.Log(context.Background(), lvl, msg, "duration", d, "bytes", s.segBytes(),
		"max_duration", s.cfg.MaxSegmentDuration, "max_bytes", s.cfg.MaxSegmentBytes)
}

// afterVideo runs after a video frame was muxed: audio deferred until this
// frame follows it into the same part, then the part is closed if the
// frame completes it.
func (s *Segmenter) afterVideo(err error) error {
	if err != nil {
		return err
	}
	if err := s.flushPending(); err != nil {
		return err
	}
	return s.afterPrimary(Video, nil)
}

// afterPrimary closes the open part right away when the primary-track frame
// just muxed completes it, without waiting for the next frame: when
// (frame DTS + its estimated duration) - part start >= PartDuration - 1ms,
// or when one more frame would not fit in PartDuration (+1 ms for
// millisecond timestamps), so that parts stay within PartDuration also when
// it is not a multiple of the frame duration.
//
// The estimate is the nominal frame duration (SPS frame rate, 1024 samples
// for AAC), not the last delta: millisecond timestamps make deltas jitter
// (33/34 ms at 30 fps), and the nominal one keeps part boundaries on the
// real frame grid (six 30 fps frames are exactly 200 ms).
func (s *Segmenter) afterPrimary(k Kind, err error) error {
	if err != nil || !s.partsOn || !s.open {
		return err
	}
	est := s.nominalDuration(k)
	end := s.elapsed + est
	d := end - s.partStartEl
	if d >= s.cfg.PartDuration-time.Millisecond || d+est > s.cfg.PartDuration+time.Millisecond/2 {
		return s.closePart(s.clampPart(d), 0, false)
	}
	return nil
}

// clampPart rounds a part duration that exceeds PartDuration by no more than
// 1 ms (millisecond timestamps) down to PartDuration. The next part starts
// where the reported one ends, so the difference is not lost: it lengthens
// the next part, whose end is again measured from real timestamps (the
// "would not fit" rule above then closes it a frame early if needed). Parts
// longer than that only come after a gap or jump in the timestamps.
func (s *Segmenter) clampPart(d time.Duration) time.Duration {
	if d > s.cfg.PartDuration && d <= s.cfg.PartDuration+time.Millisecond {
		return s.cfg.PartDuration
	}
	return d
}

// nominalDuration is one frame's duration from the codec configuration, or
// else the measured one.
func (s *Segmenter) nominalDuration(k Kind) time.Duration {
	if k == Video && s.video != nil && s.video.spsInfo.frameRate > 0 {
		return time.Duration(float64(time.Second) / s.video.spsInfo.frameRate)
	}
	if k == Audio && s.audio != nil && s.audio.sampleRate > 0 {
		return time.Duration(int64(time.Second) * 1024 / int64(s.audio.sampleRate))
	}
	return s.frameDuration(k)
}

// deferAudio keeps an audio frame for the part of the next video frame.
// Should video stall, the audio is muxed into the open part after one part
// duration so that memory stays bounded.
func (s *Segmenter) deferAudio(f Frame, jumped bool) error {
	s.pend = append(s.pend, bufferedFrame{kind: Audio, dts: f.DTS, pts: f.DTS, jump: jumped, off: len(s.pendData), n: len(f.Data)})
	s.pendData = append(s.pendData, f.Data...)
	if f.DTS-s.pend[0].dts >= s.cfg.PartDuration || len(s.pendData) > maxProbeBytes {
		s.partForced = true
		return s.flushPending()
	}
	return nil
}

func (s *Segmenter) flushPending() error {
	if len(s.pend) == 0 {
		return nil
	}
	var first error
	for _, bf := range s.pend {
		f := Frame{Kind: Audio, DTS: bf.dts, PTS: bf.pts, Data: s.pendData[bf.off : bf.off+bf.n]}
		if err := s.muxAudio(f, false, bf.jump); err != nil && first == nil {
			first = err
		}
	}
	s.pend = s.pend[:0]
	s.pendData = s.pendData[:0]
	return first
}

func (s *Segmenter) dropPending() {
	for range s.pend {
		s.countDrop(DropBeforeKeyframe)
	}
	s.pend = s.pend[:0]
	s.pendData = s.pendData[:0]
}

// noteKeyframe measures the GOP and, without VUI timing, the frame rate.
func (s *Segmenter) noteKeyframe(dts time.Duration) {
	frames := s.framesSince + 1
	s.framesSince = 0
	prev, ok := s.lastKey, s.haveKey
	s.lastKey, s.haveKey = dts, true
	if !ok {
		return
	}
	gop := dts - prev
	if gop <= 0 {
		return
	}
	tooLong := gop > s.target
	if tooLong && !s.gopWarned {
		s.gopWarned = true
		s.log.Warn("encoder keyframe interval is longer than the segment target; segments will be as long as the GOP",
			"gop", gop, "target", s.target)
	}
	s.mu.Lock()
	s.info.GOP = gop
	if tooLong {
		s.info.GOPTooLong = true
	}
	if v := s.info.Video; v != nil && s.video.spsInfo.frameRate == 0 {
		fr := float64(frames) / gop.Seconds()
		if v.FrameRate != fr {
			nv := *v
			nv.FrameRate = fr
			s.info.Video = &nv
		}
	}
	s.mu.Unlock()
}

func (s *Segmenter) openSegment(k Kind, start time.Duration) error {
	s.open = true
	s.segStart = start
	s.elapsed = 0
	s.segDisc = s.pendingDisc && s.emitted > 0
	if s.segDisc {
		s.countDisc()
	}
	if s.pendingDisc {
		// The other track's next frame is compared with this new start, not
		// with its own pre-discontinuity history, so that one jump seen on
		// both tracks does not cut twice.
		other := &s.at
		if k == Audio {
			other = &s.vt
		}
		other.seen = false
	}
	s.pendingDisc = false
	s.discCause = discNone
	s.jumpLogged = false
	s.segVideo, s.segAudio = false, false
	pdt := s.now()
	if pdt.Before(s.lastPDT) {
		pdt = s.lastPDT
	}
	s.segPDT, s.lastPDT = pdt, pdt
	if cap(s.out.buf) == 0 {
		// One buffer per segment, pre-sized from the previous one (x1.25), so
		// that parts (subslices of it) rarely see it reallocated.
		c := s.nextCap
		if c == 0 {
			c = 64 << 10
		}
		s.out.buf = make([]byte, 0, c)
	}
	var err error
	if s.fm != nil {
		if s.fm.needInit(s.video, s.audio) {
			var in Init
			in, err = s.fm.makeInit(s.video, s.audio)
			if err == nil {
				if serr := s.sink.Init(in); serr != nil {
					err = fmt.Errorf("segmenter: sink: %w", serr)
				}
			}
		}
		s.segInit = s.fm.initN
		s.fm.startSegment()
	}
	s.partStart = len(s.out.buf)
	s.partBase = s.partStart
	s.handed, s.maxPart = 0, 0
	s.partStartEl = 0
	s.resetPart()
	s.segParts = nil
	return err
}

// countDisc counts the discontinuity the segment being opened carries.
func (s *Segmenter) countDisc() {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.discCause {
	case discJump:
		s.ctr.TimestampJumps.Add(1)
		s.info.TimestampJumps++
	case discConfig:
		s.ctr.ConfigChanges.Add(1)
		s.info.ConfigChanges++
	}
}

func (s *Segmenter) resetPart() {
	s.partPrimary, s.partIndep, s.partForced = false, false, false
	s.partFrames = 0
}

// cut finishes the current segment with the given duration and opens the
// next one at start. nextVideo is the DTS of the frame that opens the next
// segment when it is a video frame on the same time base (known).
func (s *Segmenter) cut(k Kind, start, duration, nextVideo time.Duration, known bool) error {
	err := s.finish(duration, nextVideo, known)
	err = firstErr(err, s.openSegment(k, start))
	s.first = false
	return err
}

// estimates returns the fallback duration estimates, in ticks, of the
// newest video and audio samples of an fMP4 fragment.
func (s *Segmenter) estimates() (v, a int64) {
	if s.tracks&Video != 0 {
		v = toTicks(s.frameDuration(Video), videoTimescale)
	}
	return v, 1024 // AAC: 1024 samples per frame in the track's timescale
}

// closePart hands over the open part: the bytes written since it opened
// (fMP4: its samples, written now as one fragment).
func (s *Segmenter) closePart(d, nextVideo time.Duration, known bool) error {
	if s.fm != nil {
		ve, ae := s.estimates()
		if err := s.fm.flush(nextVideo, known, ve, ae); err != nil {
			return fmt.Errorf("segmenter: muxing: %w", err)
		}
	}
	end := len(s.out.buf)
	p := Part{Data: s.out.buf[s.partStart:end:end], Duration: d, Independent: s.partIndep}
	s.maxPart = max(s.maxPart, len(p.Data))
	s.partStartEl += d
	s.resetPart()
	if s.partsOnly {
		s.segParts = append(s.segParts, Part{Duration: p.Duration, Independent: p.Independent})
	} else {
		s.segParts = append(s.segParts, p)
		s.partStart = end
	}
	err := s.sink.Part(p)
	if s.partsOnly {
		// The Sink has it now: the next part is built in the same bytes.
		s.handed += len(p.Data)
		s.out.buf = s.out.buf[:s.partBase]
		s.partStart = s.partBase
	}
	if err != nil {
		return fmt.Errorf("segmenter: sink: %w", err)
	}
	return nil
}

func (s *Segmenter) finish(duration, nextVideo time.Duration, known bool) error {
	var err error
	if s.partsOn {
		if s.partFrames > 0 {
			d := duration - s.partStartEl
			if d < 0 {
				d = 0
			}
			err = s.closePart(s.clampPart(d), nextVideo, known)
		}
	} else if s.fm != nil {
		ve, ae := s.estimates()
		if ferr := s.fm.flush(nextVideo, known, ve, ae); ferr != nil {
			err = fmt.Errorf("segmenter: muxing: %w", ferr)
		}
	}
	data := s.out.buf
	size := s.handed + len(data)
	// Room for a GOP a quarter bigger than this one: enough for a steady
	// encoder, and every byte of slack is held for the segment's life.
	s.nextCap = len(data) + len(data)/4 + 64<<10
	if s.partsOnly {
		// Only the bytes before the first part and one part at a time.
		s.nextCap = s.partBase + s.maxPart + s.maxPart/4 + 16<<10
	}
	s.out.buf = nil
	if (s.cfg.ReuseBuffer || s.partsOnly) && cap(data) <= 2*s.nextCap {
		// The Sink is done with it once the Segment call returns; a
		// buffer grown for an outsized segment is let go.
		s.out.buf = data[:0]
	}
	s.open = false
	parts := s.segParts
	s.segParts = nil
	if size == 0 {
		return err
	}
	seg := Segment{
		Data:            data,
		Size:            size,
		Start:           s.segStart,
		Duration:        duration,
		ProgramDateTime: s.segPDT,
		Discontinuity:   s.segDisc,
		HasVideo:        s.segVideo,
		HasAudio:        s.segAudio,
		Parts:           parts,
		InitVersion:     s.segInit,
	}
	s.emitted++
	s.mu.Lock()
	s.info.Segments++
	s.mu.Unlock()
	if serr := s.sink.Segment(seg); serr != nil && err == nil {
		err = fmt.Errorf("segmenter: sink: %w", serr)
	}
	return err
}

func (s *Segmenter) muxVideo(f Frame, segStart bool) error {
	if s.fm != nil {
		s.fm.addVideo(f, s.vdata, s.jumpNow, toTicks(s.frameDuration(Video), videoTimescale))
	} else {
		disc := (segStart && s.segDisc) || s.jumpNow
		if err := s.mux.writePES(videoPID, f.DTS, f.PTS, s.annexB, f.Key || segStart, disc); err != nil {
			return fmt.Errorf("segmenter: muxing video: %w", err)
		}
	}
	s.segVideo = true
	if !s.partPrimary {
		s.partPrimary = true
		s.partIndep = f.Key
	}
	s.partFrames++
	return nil
}

func (s *Segmenter) muxAudio(f Frame, segStart, jump bool) error {
	audioOnly := s.tracks&Video == 0
	if s.fm != nil {
		s.fm.addAudio(f, jump, 1024)
	} else {
		var err error
		s.audioBuf, err = s.audio.appendADTS(s.audioBuf[:0], len(f.Data))
		if err != nil {
			s.countDrop(DropMalformed)
			return err
		}
		s.audioBuf = append(s.audioBuf, f.Data...)
		disc := (segStart && s.segDisc) || jump
		// Audio-only parts are all independent: each starts with PAT/PMT.
		ra := segStart || (audioOnly && s.partsOn && s.partFrames == 0)
		if err := s.mux.writePES(audioPID, f.DTS, f.DTS, s.audioBuf, ra, disc); err != nil {
			return fmt.Errorf("segmenter: muxing audio: %w", err)
		}
	}
	s.segAudio = true
	if audioOnly {
		s.partPrimary, s.partIndep = true, true
	}
	s.partFrames++
	return nil
}

// Flush ends the stream (end of publish): it emits the partial last segment
// if it has frames. Frames written afterwards start a new segment, flagged
// Discontinuity, at the next keyframe. Audio deferred for a video frame that
// will not come (parts only; at most one video frame interval) is dropped.
func (s *Segmenter) Flush() error {
	var err error
	if !s.started {
		// Short stream: start with whatever configs arrived.
		err = s.maybeStart(true)
	}
	if !s.open {
		return err
	}
	s.dropPending()
	primary := Audio
	if s.tracks&Video != 0 {
		primary = Video
	}
	if ferr := s.finish(s.elapsed+s.frameDuration(primary), 0, false); ferr != nil && err == nil {
		err = ferr
	}
	s.first = false
	s.pendingDisc = true
	s.haveKey = false
	return err
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
