// Package playlist holds the live state of each stream and answers viewers
// from it.
//
// It owns: each stream's window of segments and LL-HLS parts, its media and
// discontinuity sequence numbers, reconnect windows and removal (Registry,
// Stream); rendition groups and their alignment (group.go, rendition.go);
// the rendering of media, multivariant and I-frame playlists as immutable
// snapshots; the media bytes viewers get, in memory files; what is written
// to and deleted from storage, and when; the handover state a successor
// adopts; and the HTTP answers for a stream's URLs (Handler, including
// LL-HLS blocking reloads), plus Lookup, the allocation-free look-up that
// playlist/httploop's event loops answer plain requests with.
//
// It never parses media or RTMP (segmenter and ingest hand it finished
// parts and segments, through its own Segment and Part types, so it imports
// neither), never touches a viewer's socket (httploop does), and never
// decides who may watch or publish.
package playlist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fount-live/fount/storage"
)

// ErrStreamBusy is returned when a name that already has a publisher is
// published again.
var ErrStreamBusy = errors.New("stream is already being published")

// ErrTooManyStreams is returned when a new name is published while
// Config.MaxStreams streams are held.
var ErrTooManyStreams = errors.New("too many streams")

// Config holds the playlist settings shared by all streams.
type Config struct {
	Store           storage.Store
	TargetDuration  time.Duration // segment target, for the initial EXT-X-TARGETDURATION
	WindowSize      int           // segments listed in the live playlist (default 6)
	ReconnectWindow time.Duration // how long an idle stream waits for its publisher (default 30 s)
	DeleteGrace     time.Duration // how long a segment is kept after it leaves the window (default: the window + 2 target durations, at least 10 s)
	// DVRWindow lists that much of the past in the live playlist (never
	// fewer than WindowSize segments); 0 lists WindowSize segments. Only
	// the last WindowSize segments (plus DeleteGrace) stay in memory: the
	// older ones are served from Store, which must keep them (a directory
	// or S3, not storage.Memory).
	DVRWindow time.Duration
	// Record keeps every stream as a recording (record.go), in Store,
	// which must keep what it is given (a directory or S3): recorded
	// segments are not deleted when they leave the window.
	Record bool
	// RecordRetention deletes finished recordings that ended longer ago;
	// 0 keeps them.
	RecordRetention time.Duration
	RemoveAfter     time.Duration // how long an ended playlist stays before removal (default 60 s)
	SweepInterval   time.Duration // how often Run checks timers (default 1 s)
	FMP4            bool          // segments are fMP4 (.m4s with an init segment) rather than MPEG-TS
	PartTarget      time.Duration // LL-HLS part target; 0 serves classic HLS
	PartHoldBack    time.Duration // EXT-X-SERVER-CONTROL PART-HOLD-BACK (0: 3 part targets, as rfc8216bis recommends; at least 2, as it requires)
	MaxBlocking     int           // blocking requests allowed to wait at once (default 10000)
	// MaxStreams bounds the streams held: live, idle (awaiting a
	// reconnect) and ended (until removed). Publishing a new name beyond
	// it is refused; a held name may always be published again.
	// Default 200.
	MaxStreams    int
	BlockTimeout  time.Duration // how long a blocking request waits before 503 (default: 3 target durations, per rfc8216bis)
	Now           func() time.Time
	Logger        *slog.Logger
	OnStreamEnded func(path string) // called (from Run) when a stream's reconnect window passes; must not block
	// HeapMedia keeps segments and parts on the Go heap rather than in
	// memory files (memfd, sent with sendfile): slower and bigger; for
	// tests and comparisons. Without memfd (not Linux) media is on the
	// heap anyway.
	HeapMedia bool
	// PlayAuth, if set, judges every viewer request (playauth.go); the
	// playlists it allows carry the request's query in their URIs.
	PlayAuth PlayAuth
	// WebRTC, if set, answers WebRTC playback (WHEP): POST
	// /APP/NAME/whep and the session URLs under it (whep.go). Without
	// it those paths are 404.
	WebRTC http.Handler

	// Encrypt encrypts every segment and part with AES-128 (encrypt.go),
	// with a fresh key every KeyRotation segments (0: one per publish).
	// Keys live in memory and, with KeyDir, in files there (cmd/fount
	// refuses a store that outlives the process without one of them), or
	// at a key server: KeyServer takes each new key at KeyURLTemplate
	// expanded, and fount serves none.
	Encrypt        bool
	KeyRotation    int
	KeyDir         string
	KeyURLTemplate string
	KeyServer      KeyServer

	// AdMarkers: how ad breaks are marked (daterange.go).
	AdMarkers AdMarkers

	inProcessStore bool        // Store keeps objects in this process: segments are not put in it
	recordings     *recCatalog // the recordings known, for freshID and the API
}

// inProcess is implemented by a store that keeps its objects in this
// process (storage.Memory). Segments put there would be a second copy, on
// the heap, of the media the registry already serves, and nothing reads
// them back: only playlists and inits go to such a store.
type inProcess interface{ InProcess() bool }

func (c Config) withDefaults() Config {
	if c.Store == nil {
		c.Store = storage.NewMemory()
	}
	ip, ok := c.Store.(inProcess)
	c.inProcessStore = ok && ip.InProcess()
	if c.TargetDuration <= 0 {
		c.TargetDuration = 2 * time.Second
	}
	if c.WindowSize <= 0 {
		c.WindowSize = 6
	}
	if c.ReconnectWindow <= 0 {
		c.ReconnectWindow = 30 * time.Second
	}
	if c.DeleteGrace <= 0 {
		// RFC 8216 §6.2.2: a removed segment stays available for its
		// duration plus that of the longest playlist that listed it; one
		// more target duration covers a CDN's cached playlist. Longer only
		// costs memory: every retired segment is held until then.
		c.DeleteGrace = max(time.Duration(c.WindowSize+2)*c.TargetDuration, 10*time.Second)
	}
	if c.RemoveAfter <= 0 {
		c.RemoveAfter = 60 * time.Second
	}
	if c.PartHoldBack == 0 {
		c.PartHoldBack = 3 * c.PartTarget
	}
	if c.PartHoldBack < 2*c.PartTarget {
		c.PartHoldBack = 2 * c.PartTarget // rfc8216bis: MUST be at least twice
	}
	if c.MaxBlocking <= 0 {
		c.MaxBlocking = 10000
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 200
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DVRWindow > 0 && c.inProcessStore {
		// Nothing would serve the segments memory no longer holds.
		c.Logger.Warn("DVR window off: it needs a store outside the process (a directory or S3) for what memory no longer holds", "dvr_window", c.DVRWindow)
		c.DVRWindow = 0
	}
	if c.Record && c.inProcessStore {
		c.Logger.Warn("recording off: it needs a store outside the process (a directory or S3)")
		c.Record = false
	}
	return c
}

// maxTombstones bounds the names whose sequence numbers are remembered after
// their stream was removed.
const maxTombstones = 10000

// tombstone is what outlives a removed stream so that publishing the name
// again never reuses a segment URL for different bytes.
type tombstone struct {
	nextMSN, discSeq uint64
	target, nextInit int
}

// Registry owns every stream by its "app/name" path.
type Registry struct {
	cfg    Config
	totals totals

	mu         sync.RWMutex
	streams    map[string]*Stream
	tombstones map[string]tombstone

	drainOnce sync.Once
	draining  chan struct{} // closed by Drain

	// blockingCacheControl is the Cache-Control of an answer to a delivery
	// directive (playlistCacheControl), made once.
	blockingCacheControl string

	smallBufs sync.Pool // *[]byte of sendfileMin bytes, for small media (see serveMedia)
}

// NewRegistry returns an empty registry; call Run to drive its timers.
func NewRegistry(cfg Config) *Registry {
	cfg = cfg.withDefaults()
	cfg.recordings = newRecCatalog()
	return &Registry{cfg: cfg, streams: make(map[string]*Stream), tombstones: make(map[string]tombstone), draining: make(chan struct{}),
		blockingCacheControl: "public, max-age=" + strconv.Itoa(max(1, 6*int(cfg.PartTarget/time.Second)))}
}

// Publish claims path for a new publisher. A stream that is waiting for its
// publisher to come back (or has ended but is still listed) continues with a
// discontinuity; a live one refuses with ErrStreamBusy.
func (r *Registry) Publish(path string) (*Stream, error) {
	if err := storage.ValidKey(path); err != nil {
		return nil, fmt.Errorf("publish %q: %w", path, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.streams[path]; ok {
		if g := s.variants(); g != nil && !g.multitrack && g.captions == nil {
			return nil, fmt.Errorf("publish %s: %w: it has renditions, pushed with ?variant=NAME", path, ErrShape)
		}
		if s.group != nil {
			return nil, fmt.Errorf("publish %s: %w: it is a rendition of %s", path, ErrShape, s.group.parent.path)
		}
		if err := s.resume(); err != nil {
			return nil, fmt.Errorf("publish %s: %w", path, err)
		}
		return s, nil
	}
	if len(r.streams) >= r.cfg.MaxStreams {
		r.totals.streamsRefused.Add(1)
		return nil, fmt.Errorf("publish %s: %w: %d held, the limit (ended streams count until removed)", path, ErrTooManyStreams, len(r.streams))
	}
	s, err := r.newStreamLocked(context.Background(), path, StateLive)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", path, err)
	}
	r.streams[path] = s
	return s, nil
}

// newStreamLocked makes the stream for path in the given state, numbering
// on from a tombstone or from a playlist an earlier process stored. r.mu
// is held.
func (r *Registry) newStreamLocked(ctx context.Context, path string, state State) (*Stream, error) {
	s := &Stream{
		path:    path,
		cfg:     &r.cfg,
		totals:  &r.totals,
		bufs:    &r.smallBufs,
		log:     r.cfg.Logger,
		state:   state,
		since:   r.cfg.Now(),
		target:  targetDurationFor(r.cfg.TargetDuration),
		created: r.cfg.Now(),
	}
	if r.cfg.Encrypt {
		s.keys = newKeyRing(s)
	}
	if t, ok := r.tombstones[path]; ok {
		s.nextMSN, s.discSeq, s.target, s.nextInit = t.nextMSN, t.discSeq, max(s.target, t.target), t.nextInit
		s.pendingDisc = true
		delete(r.tombstones, path)
	} else if rs, err := r.restore(ctx, path); err != nil {
		// Starting afresh could reuse URLs of the earlier process.
		return nil, fmt.Errorf("cannot continue the stored stream: %w", err)
	} else if rs != nil {
		s.window = rs.segments
		s.discSeq, s.target, s.nextInit = rs.discSeq, max(s.target, rs.target), rs.nextInit
		s.nextMSN = rs.firstMSN + uint64(len(rs.segments))
		s.pendingDisc = true
		if n := len(rs.segments); n > 0 {
			s.initVersion = rs.segments[n-1].init
			s.lastPDT = rs.segments[n-1].pdt
		}
		s.restoreCuesLocked(rs)
		// Viewers see the stored window at once, without ENDLIST.
		if rd := s.renderLocked(); rd != nil {
			s.pl.Store(rd)
		}
		r.cfg.Logger.Info("continuing a stream found in storage", "stream", path, "next_media_sequence", s.nextMSN, "segments", len(rs.segments))
		if r.cfg.Record {
			r.reopenRecording(ctx, s)
		}
	} else if msn, init, ok := r.cfg.recordings.recordedNumbering(path); ok {
		// Its recordings own the URLs of the earlier publishes.
		s.nextMSN, s.nextInit = msn, init
	}
	return s, nil
}

// Stream returns the stream at path, or nil.
func (r *Registry) Stream(path string) *Stream {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.streams[path]
}

// Streams returns every stream, sorted by path.
func (r *Registry) Streams() []*Stream {
	r.mu.RLock()
	out := make([]*Stream, 0, len(r.streams))
	for _, s := range r.streams {
		out = append(out, s)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// Run drives reconnect windows, segment deletion and stream removal until
// ctx is done.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Sweep()
		}
	}
}

// Sweep runs the timers once. A panic while sweeping one stream is
// recovered, logged and counted, and the other streams are swept: one
// stream's fault must not stop every stream's timers (Run is the only
// goroutine driving them). The faulty stream is tried again next sweep.
func (r *Registry) Sweep() {
	now := r.cfg.Now()
	for _, s := range r.Streams() {
		r.sweepStream(s, now)
	}
	r.expireRecordings(context.Background(), now)
}

func (r *Registry) sweepStream(s *Stream, now time.Time) {
	defer func() {
		if v := recover(); v != nil {
			r.totals.panics.Add(1)
			r.cfg.Logger.Error("panic while sweeping a stream; recovered", "stream", s.path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	if !s.sweep(now) {
		return
	}
	r.removeExpired(s)
}

// removeExpired takes an ended, expired stream out of the registry,
// remembering its numbering.
func (r *Registry) removeExpired(s *Stream) {
	r.mu.Lock()
	defer r.mu.Unlock() // deferred: a panic must not leave the registry locked
	if r.streams[s.path] != s || s.State() != StateEnded {
		return
	}
	delete(r.streams, s.path)
	st := s.Stats()
	if len(r.tombstones) >= maxTombstones {
		for k := range r.tombstones { // evict an arbitrary one
			delete(r.tombstones, k)
			break
		}
	}
	s.mu.Lock()
	r.tombstones[s.path] = tombstone{nextMSN: st.NextSequence, discSeq: s.discSeq, target: s.target, nextInit: s.nextInit}
	s.mu.Unlock()
	r.cfg.Logger.Info("stream removed", "stream", s.path)
}

// totals are registry-wide counters that outlive streams.
type totals struct {
	segments       atomic.Uint64
	parts          atomic.Uint64
	storageErrors  atomic.Uint64
	blockTimeouts  atomic.Uint64 // blocking requests answered 503
	waiting        atomic.Int64  // blocking requests waiting now (net/http's and the loops' parked)
	streamsRefused atomic.Uint64 // publishes of new names refused at MaxStreams
	panics         atomic.Uint64 // panics recovered while sweeping
	misaligned     atomic.Uint64 // rendition segments that did not line up with the others'
	memFiles       atomic.Int64  // memory files open
	memFileBytes   atomic.Int64  // media bytes in them
	memFileErrors  atomic.Uint64 // memory files that could not be made or written (media kept on the heap)
	memFileWarned  atomic.Bool
	recordedBytes  atomic.Uint64 // media bytes listed in recordings
	recDeleted     atomic.Uint64 // recordings deleted (API or retention)
	recDeletedB    atomic.Uint64 // their media bytes

	// Encryption (encrypt.go).
	keysCreated        atomic.Uint64 // keys made (and stored or handed to the key server)
	keyPostFailures    atomic.Uint64 // failed attempts to hand a key to the key server or key directory
	keyRotationsMissed atomic.Uint64 // rotations that kept the previous key
}

// RegistryStats is a snapshot for metrics.
type RegistryStats struct {
	Streams         map[State]int // streams by state
	Segments        uint64        // produced since start
	Parts           uint64
	StorageErrors   uint64 // failed storage writes and deletes
	BlockingWaiting int64  // blocking requests waiting now
	BlockTimeouts   uint64
	StreamsRefused  uint64 // publishes of new names refused at MaxStreams
	Panics          uint64 // panics recovered in Run (each logged with its stream)
	// MisalignedSegments counts rendition segments whose start did not
	// line up with the other renditions' (keyframes at other times).
	MisalignedSegments uint64
	MediaFiles         int64  // memory files holding segments and parts
	MediaFileBytes     int64  // media bytes in them (outside the Go heap)
	MediaFileErrors    uint64 // memory files that failed (that media is on the heap)
	KeysCreated        uint64 // encryption keys made
	KeyStoreFailures   uint64 // failed attempts to hand a new key to the key server or directory
	KeyRotationsMissed uint64 // rotations that kept the previous key (the next was not ready)
}

// Stats returns a snapshot of the registry.
func (r *Registry) Stats() RegistryStats {
	st := RegistryStats{
		Streams:            map[State]int{StateLive: 0, StateIdle: 0, StateEnded: 0},
		Segments:           r.totals.segments.Load(),
		Parts:              r.totals.parts.Load(),
		StorageErrors:      r.totals.storageErrors.Load(),
		BlockingWaiting:    r.totals.waiting.Load(),
		BlockTimeouts:      r.totals.blockTimeouts.Load(),
		StreamsRefused:     r.totals.streamsRefused.Load(),
		Panics:             r.totals.panics.Load(),
		MisalignedSegments: r.totals.misaligned.Load(),
		MediaFiles:         r.totals.memFiles.Load(),
		MediaFileBytes:     r.totals.memFileBytes.Load(),
		MediaFileErrors:    r.totals.memFileErrors.Load(),
		KeysCreated:        r.totals.keysCreated.Load(),
		KeyStoreFailures:   r.totals.keyPostFailures.Load(),
		KeyRotationsMissed: r.totals.keyRotationsMissed.Load(),
	}
	for _, s := range r.Streams() {
		st.Streams[s.State()]++
	}
	return st
}

// Ready reports an error unless storage accepts a write and a delete.
func (r *Registry) Ready(ctx context.Context) error {
	const key = "fount-readiness-probe"
	if err := r.cfg.Store.Put(ctx, key, storage.Object{Data: []byte("ok"), ContentType: "text/plain"}); err != nil {
		return fmt.Errorf("storage is not writable: %w", err)
	}
	if err := r.cfg.Store.Delete(ctx, key); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// EndAll appends EXT-X-ENDLIST to every stream, for shutdown.
func (r *Registry) EndAll() {
	for _, s := range r.Streams() {
		s.end(false)
	}
}
