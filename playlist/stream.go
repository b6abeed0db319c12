package playlist

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/storage"
)

// State of a stream's publisher.
type State string

const (
	StateLive  State = "live"  // a publisher is connected
	StateIdle  State = "idle"  // the publisher left; waiting for a reconnect
	StateEnded State = "ended" // EXT-X-ENDLIST was appended
)

// Segment is a finished media segment handed to a Stream. The Stream reads
// Data, and the Data of the parts handed over since the last segment,
// during the call only: the segmenter may build the next segment in the
// same buffer (segmenter.Config.ReuseBuffer).
type Segment struct {
	// Data is the whole segment or, with PartsFollow, only its bytes
	// before the first part: the segment is then Data followed by the
	// parts handed over since the previous segment (segmenter.Config.PartsOnly).
	Data            []byte
	PartsFollow     bool
	Duration        time.Duration
	ProgramDateTime time.Time
	Discontinuity   bool
	// Start is the stream-timeline DTS of the segment's first frame:
	// renditions line their segment numbers up by it.
	Start time.Duration
	// StartPTS is the stream-timeline PTS of its first frame: the cues
	// due at or before it are marked on it (AddCue).
	StartPTS time.Duration
	// IFrames locate the segment's video keyframes, for the I-frame
	// playlist; read during the call only.
	IFrames []IFrame
}

// IFrame is one video keyframe's byte range in its segment, which alone
// (after the init segment, in fMP4) decodes to that picture.
type IFrame struct {
	Offset, Size int64
	Duration     time.Duration // until the next keyframe, or the segment's end
}

// Part is a finished LL-HLS partial segment of the segment being built. Its
// Data must stay as it is until the Segment it belongs to has been handed
// over (the Stream checks the segment against it then), and no longer;
// when that Segment has PartsFollow, only for the call.
type Part struct {
	Data         []byte
	Duration     time.Duration
	Independent  bool
	SegmentStart time.Duration // Segment.Start of the segment it belongs to
	// SegmentDue: the segment may end right after this part, so that the
	// next part is likely the next segment's first (segmenter.Part.SegmentDue).
	// The preload hint then names that one, a part that will exist.
	SegmentDue bool
}

const (
	playlistName = "index.m3u8"
	playlistType = storage.PlaylistType
	tsType       = storage.TSType
	mp4Type      = storage.MP4Type
)

// rendered is an immutable snapshot of a playlist, swapped atomically so
// that viewers read it without taking the stream's lock.
type rendered struct {
	body     []byte
	skipBody []byte // delta update (_HLS_skip=YES); same as body when nothing is skipped
	modTime  time.Time
	// The ETags of the four representations, and the Cache-Control of a
	// non-blocking answer, made once here rather than on every request.
	etag, etagSkip, etagGz, etagSkipGz string
	cacheControl                       string

	gz, gzSkip gzipped // compressed bodies, made on first demand
}

// Stream is the live state of one published name: its window of segments
// and parts, sequence numbers, and the rendered playlist.
type Stream struct {
	path   string // "app/name": also the storage prefix
	cfg    *Config
	totals *totals
	bufs   *sync.Pool // the registry's buffers for small media
	log    *slog.Logger

	mu            sync.Mutex
	state         State
	since         time.Time // when state was entered
	nextMSN       uint64
	discSeq       uint64
	pendingDisc   bool // next segment starts a new publish
	target        int  // EXT-X-TARGETDURATION, never lowered
	window        []*entry
	retired       []retiredEntry // left the window, deleted after the grace
	evicted       []retiredEntry // DVR: left the memory window but still listed; their memory goes after the grace
	open          openSegment    // the segment being built (parts so far)
	initVersion   int            // latest fMP4 init segment
	nextInit      int            // number of the next init segment
	inits         []string       // names of init segments stored
	lastPDT       time.Time
	lastSegSize   int64 // bytes of the last segment, to size the next one's mapping
	segmentsTotal uint64
	partsTotal    uint64
	lastPart      string              // name of the newest part
	lastPartAt    time.Time           // when it was handed over
	changed       chan struct{}       // closed and replaced on every change, waking blocked requests
	notifiers     []httploop.Notifier // event loops with requests parked on the stream (park.go)
	epoch         uint64              // moves when parked requests must all be asked again
	epochState    State               // the state at the last epoch
	created       time.Time
	samples       [rateWindow + 1]rateSample // ring, one per sweep
	nsamples      int
	rec           *recorder     // the open recording (Config.Record)
	lastEnd       time.Duration // Start + Duration of the last segment, on the stream's timeline
	lastEndPTS    time.Duration // StartPTS + Duration: where the next segment's first frame shows
	keys          *keyRing      // Config.Encrypt: the stream's keys (encrypt.go)
	haveEnd       bool          // lastEnd is known (a segment since this process took the stream)
	lastPDTEnd    time.Time     // the last segment's PDT plus its duration

	// Ad breaks and interstitials (daterange.go).
	pendingCues []Cue        // not yet due
	dateranges  []*dateRange // listed, by start
	openBreak   *dateRange   // the break started and not ended
	lastCue     *LastCue

	bytesIn  atomic.Uint64 // media bytes produced (segments)
	bytesOut atomic.Uint64 // media bytes served to viewers (segments, parts, inits)

	byName sync.Map // segment, part and init names → *object, for lock-free serving
	pl     atomic.Pointer[rendered]
	ipl    atomic.Pointer[rendered] // the I-frame playlist (renditions with video)

	// Renditions (group.go). A parent has variants and serves the
	// multivariant playlist; a rendition has group and its name.
	vars           atomic.Pointer[variants] // set once, when it becomes a parent
	group          *variants
	rendition      string
	info           atomic.Pointer[MediaInfo]
	bw             bandwidthStats
	grouped        bool   // has numbered a segment in its group (s.mu)
	lastMisaligned bool   // its last segment did not line up (s.mu)
	iframeSeq      uint64 // number of the next I-frame entry (s.mu)
	reportMSN      atomic.Uint64
	reportPart     atomic.Int64 // -1: no parts
	alignedSegs    atomic.Uint64
	misalignedSegs atomic.Uint64
	vtt            atomic.Bool // a WebVTT subtitle rendition (captions.go); set before its first segment
}

// Path returns "app/name".
func (s *Stream) Path() string { return s.path }

// State returns the publisher state.
func (s *Stream) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Stream) ext() string {
	if s.vtt.Load() {
		return ".vtt"
	}
	if s.cfg.FMP4 {
		return ".m4s"
	}
	return ".ts"
}

func (s *Stream) mediaType() string {
	if s.vtt.Load() {
		return vttType
	}
	if s.cfg.FMP4 {
		return mp4Type
	}
	return tsType
}

func initName(version int) string { return "init" + strconv.Itoa(version) + ".mp4" }

func (s *Stream) segmentName(msn uint64) string {
	return "seg" + strconv.FormatUint(msn, 10) + s.ext()
}

func (s *Stream) partName(msn uint64, i int) string {
	return "seg" + strconv.FormatUint(msn, 10) + "." + strconv.Itoa(i) + s.ext()
}

// Part adds a finished part of the segment being built and wakes the
// requests waiting for it.
func (s *Stream) Part(p Part) error {
	if s.keys != nil {
		if err := s.keys.ensure(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.state != StateLive {
		s.mu.Unlock()
		return fmt.Errorf("stream %s: part after the publisher left", s.path)
	}
	if len(s.open.parts) == 0 {
		s.alignLocked(p.SegmentStart)
		s.open.msn = s.nextMSN
		s.open.discontinuity = s.pendingDisc
		s.open.init = s.initVersion
		if s.keys != nil {
			s.open.key = s.keys.take(s.open.msn)
		}
	}
	if len(s.open.parts) == 0 && s.open.file == nil {
		// Parts are small and served from the mapping: room for a
		// segment twice the last one's size (a part beyond is read with
		// pread).
		s.open.file, s.open.end, s.open.allInFile = s.newMemFile(partsReserve+max(2*s.lastSegSize, 1<<20)), partsReserve, true
	}
	pt := &part{name: s.partName(s.nextMSN, len(s.open.parts)), duration: p.Duration, independent: p.Independent, data: p.Data}
	data := p.Data
	if k := s.open.key; k != nil {
		// A part is its own resource: encrypted on its own. Its clear
		// bytes are kept for the segment, which gets its own encryption.
		s.open.clear = append(s.open.clear, p.Data...)
		data = k.encrypt(p.Data)
		pt.data = nil
	}
	pt.obj = s.placePartLocked(pt.name, data)
	s.byName.Store(pt.name, pt.obj)
	s.open.parts = append(s.open.parts, pt)
	s.open.due = p.SegmentDue
	s.partsTotal++
	s.totals.parts.Add(1)
	s.lastPart, s.lastPartAt = pt.name, s.cfg.Now()
	s.showLocked(s.renderLocked())
	s.mu.Unlock()
	return nil
}

// Segment adds a finished segment at the live edge; the parts handed over
// since the previous segment are its parts. Storage is written before the
// playlist that lists the segment is published, so a viewer never sees a
// URL that 404s.
func (s *Stream) Segment(seg Segment) error {
	if s.keys != nil {
		if err := s.keys.ensure(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.state != StateLive {
		s.mu.Unlock()
		return fmt.Errorf("stream %s: segment after the publisher left", s.path)
	}
	if len(s.open.parts) == 0 {
		s.alignLocked(seg.Start)
	}
	msn := s.nextMSN
	size := int64(len(seg.Data))
	if seg.PartsFollow {
		for _, p := range s.open.parts {
			size += p.obj.size
		}
	}
	e := &entry{
		msn:           msn,
		name:          s.segmentName(msn),
		duration:      seg.Duration,
		pdt:           seg.ProgramDateTime,
		discontinuity: seg.Discontinuity || s.pendingDisc || s.open.discontinuity,
		init:          -1,
		size:          size,
		parts:         s.open.parts,
		iframes:       slices.Clone(seg.IFrames), // the caller may reuse its slice
		key:           s.open.key,
	}
	if s.keys != nil && e.key == nil {
		e.key = s.keys.take(msn)
	}
	clearParts := s.open.clear
	if s.group != nil && seg.Discontinuity {
		s.group.mu.Lock()
		s.group.markDisc(msn) // every rendition marks it, so their discontinuity sequences agree
		s.group.mu.Unlock()
	}
	file, allInFile := s.open.file, s.open.allInFile
	if s.cfg.FMP4 && !s.vtt.Load() {
		// The init in force when the segment began: the segmenter hands
		// a new init over before the first part of the segment needing it.
		e.init = s.initVersion
		if len(s.open.parts) > 0 {
			e.init = s.open.init
		}
	}
	// Program date-time comes from the wall clock; keep it from going
	// backwards when the clock steps.
	if e.pdt.Before(s.lastPDT) {
		e.pdt = s.lastPDT
	}
	s.lastPDT = e.pdt
	s.mu.Unlock()

	// A segment is its bytes before the first part (fMP4: the styp)
	// followed by its parts: the segmenter hands over only those first
	// bytes (PartsFollow), or the whole segment, which is then checked
	// against the parts. Either way, when the parts are all in their
	// memory file the segment is served from there, with nothing copied.
	if e.key != nil {
		return s.encryptedSegment(e, seg, clearParts, file)
	}
	prefix, partsFollow := seg.Data, seg.PartsFollow
	if !partsFollow && file != nil && allInFile {
		if pre, ok := partsPrefix(seg.Data, e.parts); ok {
			prefix, partsFollow = seg.Data[:pre], true
		}
	}
	shared := partsFollow && file != nil && allInFile && len(prefix) <= partsReserve
	// The whole segment's bytes, where something needs them: the
	// segmenter's if it kept them, else put together from the parts
	// (owned: a fresh slice nobody else holds).
	whole, owned := seg.Data, false
	if seg.PartsFollow {
		whole = nil
	}
	wholeBytes := func() error {
		if whole != nil {
			return nil
		}
		var err error
		whole, err = assemble(prefix, e.parts, size)
		owned = err == nil
		return err
	}
	if !s.cfg.inProcessStore || !shared {
		if err := wholeBytes(); err != nil {
			return s.segmentFailed(e, err)
		}
	}
	if !s.cfg.inProcessStore {
		// A store may keep the slice (S3 uploads later): its own copy.
		data := whole
		if !owned {
			data = bytes.Clone(whole)
		}
		owned = false
		if err := s.cfg.Store.Put(context.Background(), s.path+"/"+e.name, storage.Object{Data: data, ContentType: s.mediaType(), ModTime: e.pdt}); err != nil {
			// The segment is still served from memory; only the stored copy is
			// missing, so the stream goes on.
			s.totals.storageErrors.Add(1)
			e.missing = true
			s.log.Error("storing segment failed", "stream", s.path, "segment", e.name, "err", err)
		}
	}
	var o *object
	if shared {
		o = s.placeAfterPrefix(e, prefix, file)
	}
	if o == nil {
		if err := wholeBytes(); err != nil {
			return s.segmentFailed(e, err)
		}
		o = s.placeOwn(e, whole, owned, file)
	}
	s.byName.Store(e.name, o)
	s.finishSegment(e, seg)
	return nil
}

// finishSegment lists a segment whose bytes are placed and stored.
func (s *Stream) finishSegment(e *entry, seg Segment) {
	s.mu.Lock()
	for _, p := range e.parts {
		p.data = nil // served from the segment's file (or their own object) now
	}
	s.nextMSN++
	s.pendingDisc = false
	s.open = openSegment{msn: s.nextMSN, init: s.initVersion}
	s.segmentsTotal++
	s.totals.segments.Add(1)
	s.bytesIn.Add(uint64(e.size))
	s.lastSegSize = e.size
	s.lastEnd, s.lastEndPTS, s.haveEnd = seg.Start+seg.Duration, seg.StartPTS+seg.Duration, true
	if t := targetDurationFor(e.duration); t > s.target {
		s.target = t
	}
	e.iframeSeq = s.iframeSeq
	s.iframeSeq += uint64(len(e.iframes))
	s.lastPDTEnd = e.pdt.Add(e.duration)
	s.takeCuesLocked(e, seg.StartPTS)
	s.appendLocked(e)
	rw := s.recordLocked(e)
	r := s.renderLocked()
	s.showLocked(r)
	var ir *rendered
	remeasured, first := false, s.segmentsTotal == 1
	if s.group != nil {
		ir = s.renderIFramesLocked()
		remeasured = s.measureLocked()
	}
	s.mu.Unlock()
	s.storePlaylist(r)
	s.writeRecording(rw)
	if ir != nil {
		s.publishIFrames(ir)
	}
	if s.group != nil && (remeasured || first) {
		s.group.changed()
	}
}

// renderLocked renders the current state; s.mu must be held. It also wakes
// every blocked request: each change is one broadcast, not a poll per
// waiter.
func (s *Stream) renderLocked() *rendered {
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
	s.notifyLocked()
	if len(s.window) == 0 && len(s.open.parts) == 0 {
		return nil
	}
	var reports []renditionReport
	if s.group != nil {
		reports = s.groupRenderLocked()
	}
	s.pruneDateRangesLocked()
	p := mediaPlaylist{
		dateranges:     s.dateranges,
		markers:        s.cfg.AdMarkers,
		reports:        reports,
		targetDuration: s.target,
		discSeq:        s.discSeq,
		segments:       s.window,
		ended:          s.state == StateEnded,
		fmp4:           s.cfg.FMP4 && !s.vtt.Load(),
		initName:       initName,
		partTarget:     s.cfg.PartTarget,
		partHoldBack:   s.cfg.PartHoldBack,
	}
	if s.vtt.Load() {
		p.partTarget, p.partHoldBack = 0, 0 // WebVTT segments come whole (captions.go)
	}
	if p.partTarget > 0 {
		open := s.open
		p.open = &open
		if s.state == StateLive {
			p.hint = s.hintLocked()
		}
	}
	size, skipSize := 512, 512
	if old := s.pl.Load(); old != nil {
		size, skipSize = len(old.body)+256, len(old.skipBody)+256
	}
	body := p.render(make([]byte, 0, size), false)
	skipBody := body
	if p.partTarget > 0 && p.skippable() > 0 {
		// Its own size: a delta update of a long (DVR) playlist is a
		// small part of it.
		skipBody = p.render(make([]byte, 0, min(size, skipSize)), true)
	}
	maxAge := s.target / 2
	if p.ended {
		// An ended playlist no longer changes, save for a reconnect.
		maxAge = s.target
	}
	tag := `"` + strconv.FormatUint(s.nextMSN, 10) + "." + strconv.Itoa(len(s.open.parts)) + "-" +
		strconv.FormatUint(s.discSeq, 10) + "-" + string(s.state)
	return &rendered{
		body:         body,
		skipBody:     skipBody,
		etag:         tag + `"`,
		etagSkip:     tag + `-skip"`,
		etagGz:       tag + `-gz"`,
		etagSkipGz:   tag + `-skip-gz"`,
		modTime:      s.cfg.Now(),
		cacheControl: "public, max-age=" + strconv.Itoa(maxAge),
	}
}

// hintLocked names the part that comes next, for EXT-X-PRELOAD-HINT, or
// is "" when that name is not certain. A hinted part must come to exist
// while the stream is live: players ask for it before it does, and a 404
// is an error to them (Shaka: CRITICAL BAD_HTTP_STATUS). When the segment
// being built may end after its last part (Part.SegmentDue), the next
// part is the next segment's first: hinting the open segment's next index
// would name a part that the cut leaves unmade, while the next segment's
// first part comes either way, only later if the keyframe does.
func (s *Stream) hintLocked() string {
	n := len(s.open.parts)
	if n > 0 && !s.open.due {
		return s.partName(s.nextMSN, n)
	}
	if n > 0 {
		// The segment after an open one is numbered nextMSN+1 also in a
		// group: its alignment cannot jump (the open segment's made the
		// rendition grouped, and Segment clears pendingDisc).
		return s.partName(s.nextMSN+1, 0)
	}
	if !s.nextNumberKnownLocked() {
		return ""
	}
	return s.partName(s.nextMSN, 0)
}

// nextNumberKnownLocked reports whether the next segment to begin will be
// numbered nextMSN. A rendition's first segment in its group, or its
// first after a reconnect, may be numbered beyond it, in step with the
// other renditions (alignLocked), which only its start time tells.
func (s *Stream) nextNumberKnownLocked() bool {
	return s.group == nil || s.numbersOwnLocked() || s.grouped && !s.pendingDisc
}

// showLocked makes a rendered playlist the one viewers get. s.mu is held:
// a blocking request that finds, under s.mu, what it waits for (a part, a
// segment) then loads a playlist that lists it; and renders are shown in
// the order they were made.
func (s *Stream) showLocked(r *rendered) {
	if r != nil {
		s.pl.Store(r)
	}
}

// storePlaylist writes a copy of a rendered playlist to storage (for a
// file server reading the storage directory, and for a successor to
// continue from). Parts alone do not rewrite the stored copy: a file
// server cannot do blocking reloads anyway.
func (s *Stream) storePlaylist(r *rendered) {
	if r == nil {
		return
	}
	if err := s.cfg.Store.Put(context.Background(), s.path+"/"+playlistName, storage.Object{Data: r.body, ContentType: playlistType, ModTime: r.modTime}); err != nil {
		s.totals.storageErrors.Add(1)
		s.log.Error("storing playlist failed", "stream", s.path, "err", err)
	}
}
