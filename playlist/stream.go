package playlist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fount-live/fount/storage"
)

// State of a stream's publisher.
type State string

const (
	StateLive  State = "live"  // a publisher is connected
	StateIdle  State = "idle"  // the publisher left; waiting for a reconnect
	StateEnded State = "ended" // EXT-X-ENDLIST was appended
)

// Segment is a finished media segment handed to a Stream.
type Segment struct {
	Data            []byte // never modified after the hand-over
	Duration        time.Duration
	ProgramDateTime time.Time
	Discontinuity   bool
}

const (
	playlistName = "index.m3u8"
	segmentType  = "video/mp2t"
	playlistType = "application/vnd.apple.mpegurl"
)

// rendered is an immutable snapshot of a playlist, swapped atomically so
// that viewers read it without taking the stream's lock.
type rendered struct {
	body    []byte
	etag    string
	modTime time.Time
	maxAge  int // seconds of Cache-Control max-age
}

// Stream is the live state of one published name: its window of segments,
// sequence numbers, and the rendered playlist.
type Stream struct {
	path string // "app/name": also the storage prefix
	cfg  *Config
	log  *slog.Logger

	mu            sync.Mutex
	state         State
	since         time.Time // when state was entered
	nextMSN       uint64
	discSeq       uint64
	pendingDisc   bool // next segment starts a new publish
	target        int  // EXT-X-TARGETDURATION, never lowered
	window        []*entry
	retired       []retiredEntry // left the window, deleted after the grace
	lastPDT       time.Time
	segmentsTotal uint64

	byName sync.Map // segment name → *entry, for lock-free serving
	pl     atomic.Pointer[rendered]
}

type retiredEntry struct {
	e     *entry
	since time.Time
}

// Path returns "app/name".
func (s *Stream) Path() string { return s.path }

// State returns the publisher state.
func (s *Stream) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Segment adds a finished segment at the live edge. It is called on the
// publisher's goroutine; storage writes happen before the playlist that lists
// the segment is published, so a viewer never sees a URL that 404s.
func (s *Stream) Segment(seg Segment) error {
	s.mu.Lock()
	if s.state != StateLive {
		s.mu.Unlock()
		return fmt.Errorf("stream %s: segment after the publisher left", s.path)
	}
	msn := s.nextMSN
	s.nextMSN++
	e := &entry{
		msn:           msn,
		name:          "seg" + strconv.FormatUint(msn, 10) + ".ts",
		duration:      seg.Duration,
		pdt:           seg.ProgramDateTime,
		discontinuity: seg.Discontinuity || s.pendingDisc,
		data:          seg.Data,
	}
	s.pendingDisc = false
	// Program date-time comes from the wall clock; keep it from going
	// backwards when the clock steps.
	if e.pdt.Before(s.lastPDT) {
		e.pdt = s.lastPDT
	}
	s.lastPDT = e.pdt
	s.mu.Unlock()

	ctx := context.Background()
	if err := s.cfg.Store.Put(ctx, s.path+"/"+e.name, storage.Object{Data: e.data, ContentType: segmentType, ModTime: e.pdt}); err != nil {
		// The segment is still served from memory; only the stored copy is
		// missing, so the stream goes on.
		s.log.Error("storing segment failed", "stream", s.path, "segment", e.name, "err", err)
	}
	s.byName.Store(e.name, e)

	s.mu.Lock()
	s.segmentsTotal++
	if t := targetDurationFor(e.duration); t > s.target {
		s.target = t
	}
	s.window = append(s.window, e)
	now := s.cfg.Now()
	for len(s.window) > s.cfg.WindowSize {
		old := s.window[0]
		if old.discontinuity {
			s.discSeq++
		}
		s.window = s.window[1:]
		s.retired = append(s.retired, retiredEntry{e: old, since: now})
	}
	r := s.renderLocked()
	s.mu.Unlock()
	s.publish(r)
	return nil
}

// renderLocked renders the current window; s.mu must be held.
func (s *Stream) renderLocked() *rendered {
	p := mediaPlaylist{
		targetDuration: s.target,
		discSeq:        s.discSeq,
		segments:       s.window,
		ended:          s.state == StateEnded,
	}
	var prev int
	if old := s.pl.Load(); old != nil {
		prev = len(old.body)
	}
	body := p.render(make([]byte, 0, prev+256))
	last := uint64(0)
	if n := len(s.window); n > 0 {
		last = s.window[n-1].msn
	}
	maxAge := s.target / 2
	if p.ended {
		// An ended playlist no longer changes, save for a reconnect.
		maxAge = s.target
	}
	return &rendered{
		body:    body,
		etag:    `"` + strconv.FormatUint(last, 10) + "-" + strconv.FormatUint(s.discSeq, 10) + "-" + strconv.FormatBool(p.ended) + `"`,
		modTime: s.cfg.Now(),
		maxAge:  maxAge,
	}
}

// publish makes a rendered playlist visible to viewers and stores a copy
// (for a file server reading the storage directory).
func (s *Stream) publish(r *rendered) {
	s.pl.Store(r)
	if err := s.cfg.Store.Put(context.Background(), s.path+"/"+playlistName, storage.Object{Data: r.body, ContentType: playlistType, ModTime: r.modTime}); err != nil {
		s.log.Error("storing playlist failed", "stream", s.path, "err", err)
	}
}

// Unpublish is called when the publisher disconnects: the stream waits for
// a reconnect for Config.ReconnectWindow, then ends.
func (s *Stream) Unpublish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateLive {
		return
	}
	s.state = StateIdle
	s.since = s.cfg.Now()
}

// end appends EXT-X-ENDLIST.
func (s *Stream) end() {
	s.mu.Lock()
	if s.state == StateEnded {
		s.mu.Unlock()
		return
	}
	s.state = StateEnded
	s.since = s.cfg.Now()
	var r *rendered
	if len(s.window) > 0 {
		r = s.renderLocked()
	}
	s.mu.Unlock()
	if r != nil {
		s.publish(r)
	}
}

// resume takes a new publisher on an idle or ended stream; numbering goes
// on and the next segment carries EXT-X-DISCONTINUITY.
func (s *Stream) resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == StateLive {
		return ErrStreamBusy
	}
	wasEnded := s.state == StateEnded
	s.state = StateLive
	s.since = s.cfg.Now()
	s.pendingDisc = s.nextMSN > 0
	if wasEnded && len(s.window) > 0 {
		// Drop the ENDLIST at once rather than at the next segment.
		r := s.renderLocked()
		s.pl.Store(r)
	}
	return nil
}

// sweep deletes retired segments whose grace has passed and reports whether
// the stream has expired entirely.
func (s *Stream) sweep(now time.Time) (expired bool) {
	s.mu.Lock()
	if s.state == StateIdle && now.Sub(s.since) >= s.cfg.ReconnectWindow {
		s.mu.Unlock()
		s.log.Info("stream ended: no reconnect within the window", "stream", s.path, "reconnect_window", s.cfg.ReconnectWindow)
		s.end()
		s.mu.Lock()
	}
	var drop []*entry
	n := 0
	for _, r := range s.retired {
		if now.Sub(r.since) >= s.cfg.DeleteGrace {
			drop = append(drop, r.e)
			n++
			continue
		}
		break
	}
	s.retired = s.retired[n:]
	expired = s.state == StateEnded && now.Sub(s.since) >= s.cfg.RemoveAfter
	if expired {
		for _, r := range s.retired {
			drop = append(drop, r.e)
		}
		for _, e := range s.window {
			if e.discontinuity {
				s.discSeq++ // keeps counting if the name is published again
			}
		}
		drop = append(drop, s.window...)
		s.retired, s.window = nil, nil
	}
	s.mu.Unlock()

	ctx := context.Background()
	for _, e := range drop {
		s.byName.Delete(e.name)
		if err := s.cfg.Store.Delete(ctx, s.path+"/"+e.name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.Warn("deleting segment failed", "stream", s.path, "segment", e.name, "err", err)
		}
	}
	if expired {
		s.pl.Store(nil)
		if err := s.cfg.Store.Delete(ctx, s.path+"/"+playlistName); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.Warn("deleting playlist failed", "stream", s.path, "err", err)
		}
	}
	return expired
}

// Stats is a snapshot of a stream for logs and the API.
type Stats struct {
	Path          string
	State         State
	Segments      uint64 // produced since the stream began
	NextSequence  uint64
	Discontinuity uint64
}

// Stats returns a snapshot.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Path: s.path, State: s.state, Segments: s.segmentsTotal, NextSequence: s.nextMSN, Discontinuity: s.discSeq}
}
