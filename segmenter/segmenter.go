// Package segmenter turns the codec frames of one live stream into
// GOP-aligned HLS segments, MPEG-TS or fMP4/CMAF, optionally with LL-HLS
// partial segments.
//
// It owns where segments and parts begin and end (at keyframes for video,
// by duration for audio only) and their bytes: MPEG-TS, or fMP4 init
// segments and fragments. Codec configuration comes from package codec.
// It never names or stores what it makes (a Sink takes each Init, Part and
// Segment), never keeps a playlist window, and knows nothing of RTMP or
// HTTP.
//
// Timeline: Segment.Start is the DTS of the segment's first frame on the
// primary track (video when the stream has video, else audio): for video
// this is the DTS of the keyframe that opens the segment. MPEG-TS PTS/DTS are
// the stream timeline in 90 kHz units, modulo 2^33. fMP4 decode times (tfdt)
// are the stream timeline in the track's timescale (90 kHz video, the sample
// rate for audio), 64-bit; negative times are clamped to 0.
package segmenter

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fount-live/fount/segmenter/codec"
)

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

// MaxSegmentDuration is the default of Config.MaxSegmentDuration for a
// target duration: max(3 × target, 10 s).
func MaxSegmentDuration(target time.Duration) time.Duration {
	return max(3*target, defaultMaxSegment)
}

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

	video    *codec.Video
	videoSet *codec.Video // video as SetVideoConfig got it (video may be completed from a keyframe)
	audio    *codec.Audio
	// Codecs of the segment being built: a frame of another codec (the
	// configuration changed; the cut comes at the next keyframe) is not
	// written into it.
	segVCodec, segACodec codec.ID
	audioSamples         int    // samples of the last audio frame muxed; 0 = none yet
	refused              Tracks // tracks whose codec the format cannot carry (refuse)

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

	mux muxer      // the container, from the start on
	out *segWriter // mux's segment buffer
	fm  *fmp4Muxer // mux when it is fMP4, else nil; the tests read its styp

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
	// The PDT anchor: the wall clock when the timeline's first segment
	// opened and that segment's start. Later segments' PDT is the anchor
	// plus media time, so PDT follows EXTINF exactly; a discontinuity
	// anchors again.
	pdtWall  time.Time
	pdtStart time.Duration
	// pdtShown is the anchoring keyframe's PTS minus its DTS: a
	// segment's date is that of its first frame shown (what players map
	// it to), so a date asked for (timed metadata) is placed on the PTS
	// timeline that much after pdtStart.
	pdtShown time.Duration
	// pdtRefine: the open segment set the anchor, and its primary frames
	// may still move it earlier (refinePDT).
	pdtRefine bool
	pdtEnd    time.Time // the last finished segment's PDT plus its duration
	segDisc   bool
	segVideo  bool
	segAudio  bool
	nextCap   int
	emitted   uint64
	segInit   int // fMP4: Init version of the current segment

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
	partsFree   []Part // Config.ReuseBuffer: the last segment's Parts array, for the next
	// Audio that arrived after the open part's last video frame closed the
	// previous part: it goes into the part of the next video frame, so that
	// no part is left without video (a stranded audio-only part at the end of
	// a segment would have a duration of ~0).
	pend     []bufferedFrame
	pendData []byte
	// partDue: the open part is complete, but the next video frame may cut
	// the segment, so it stays open for the audio up to that cut; partDueD
	// is its duration, partDueEnd where it ends on the stream timeline.
	partDue    bool
	partDueD   time.Duration
	partDueEnd time.Duration

	// A cut held for the audio up to its keyframe's PTS (holdcut.go): the
	// keyframe and the video frames after it, and the ending segment's
	// duration.
	holding  bool
	held     []bufferedFrame
	heldData []byte
	holdDur  time.Duration

	// Keyframes of the current segment (Segment.IFrames): their ranges as
	// the muxer reports them (takeKeys), and where each came, relative to
	// segStart on the same clock as elapsed.
	iframes     []IFrame
	iframesFree []IFrame // Config.ReuseBuffer: the last segment's IFrames array, for the next
	keyAt       []time.Duration

	meta metaQueue // timed ID3 tags (AddMetadata)

	mu   sync.Mutex // guards info
	info Info
	ctr  *Counters // Config.Counters, or this segmenter's own

	// Requested cuts (CutAt), and the PTS of the frame being written and
	// of the segment's first frame (Segment.StartPTS).
	cuts        cutRequests
	curPTS      time.Duration
	segStartPTS time.Duration
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
		s.cfg.MaxSegmentDuration = MaxSegmentDuration(s.target)
	}
	if s.cfg.MaxSegmentBytes <= 0 {
		s.cfg.MaxSegmentBytes = defaultMaxSegmentBytes
	}
	s.ctr = cfg.Counters
	if s.ctr == nil {
		s.ctr = new(Counters)
	}
	s.cuts.init()
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
	if v := s.video; v != nil && (!s.started || s.tracks&Video != 0) {
		s.info.Video = &VideoInfo{
			Codec:          v.Codec,
			Codecs:         v.Codecs,
			Width:          v.Width,
			Height:         v.Height,
			FrameRate:      v.FrameRate,
			Transfer:       v.Transfer,
			VPS:            v.VPS,
			SPS:            v.SPS,
			PPS:            v.PPS,
			NALULengthSize: v.NALULengthSize,
			Config:         v,
		}
		codecs = append(codecs, v.Codecs)
	}
	if a := s.audio; a != nil && (!s.started || s.tracks&Audio != 0) {
		s.info.Audio = &AudioInfo{
			Codec:      a.Codec,
			Codecs:     a.Codecs,
			ObjectType: a.ObjectType,
			SampleRate: a.SampleRate,
			Channels:   a.Channels,
			Config:     a.Config,
			Audio:      a,
		}
		codecs = append(codecs, a.Codecs)
	}
	s.info.Codecs = strings.Join(codecs, ",")
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
	mux, err := newMuxer(s.cfg.Format, have, s.video, s.audio)
	if err != nil {
		return fmt.Errorf("segmenter: creating muxer: %w", err)
	}
	s.mux = mux
	s.out = mux.out()
	s.fm, _ = mux.(*fmp4Muxer)
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
	if f.Kind&s.refused != 0 {
		// A codec the format cannot carry (see refuse).
		s.countDrop(DropUnusedTrack)
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
		if s.video != nil && s.video.FrameRate > 0 {
			return time.Duration(float64(time.Second) / s.video.FrameRate)
		}
		return time.Second / 30
	}
	if s.at.lastDelta > 0 {
		return s.at.lastDelta
	}
	if d := s.audioFrame(); d > 0 {
		return d
	}
	return 1024 * time.Second / 44100
}

// nominalDuration is one frame's duration from the codec configuration, or
// else the measured one.
func (s *Segmenter) nominalDuration(k Kind) time.Duration {
	if k == Video && s.video != nil && s.video.FrameRate > 0 {
		return time.Duration(float64(time.Second) / s.video.FrameRate)
	}
	if k == Audio {
		if d := s.audioFrame(); d > 0 {
			return d
		}
	}
	return s.frameDuration(k)
}

// audioFrame is the duration of the last audio frame muxed (before the
// first: 1024 samples, an AAC frame), 0 without an audio configuration.
func (s *Segmenter) audioFrame() time.Duration {
	if s.audio == nil || s.audio.SampleRate <= 0 {
		return 0
	}
	n := s.audioSamples
	if n <= 0 {
		n = 1024
	}
	return time.Duration(int64(time.Second) * int64(n) / int64(s.audio.SampleRate))
}

// Flush ends the stream (end of publish): it emits the partial last segment
// if it has frames. Frames written afterwards start a new segment, flagged
// Discontinuity, at the next keyframe. A cut held for audio (holdcut.go) is
// made first. Audio deferred for a video frame that will not come (parts
// only; at most one video frame interval) is dropped.
func (s *Segmenter) Flush() error {
	var err error
	if !s.started {
		// Short stream: start with whatever configs arrived.
		err = s.maybeStart(true)
	}
	err = firstErr(err, s.releaseHeld())
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
