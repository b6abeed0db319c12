package playlist

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fount-live/fount/storage"
)

// A stream published in several renditions (grouped pushes, one per
// rendition, or one multitrack push whose tracks become renditions) is a
// parent Stream at APP/NAME, whose playlist is the multivariant one, and a
// Stream per rendition at APP/NAME/RENDITION. Each rendition keeps its own
// window, numbering, parts and blocking reloads; the group lines their
// media sequence and discontinuity sequence numbers up by the start
// timestamps of their segments, so that a player switching renditions
// finds segment N at the same time in each.

// ErrShape is returned when a publish would change a stream's shape: a
// rendition pushed to a stream published without renditions, or a plain
// push to a stream that has them. A stream keeps its shape until it is
// removed, so that its URL never changes meaning under a player.
var ErrShape = errors.New("the stream's shape (one rendition or several) is fixed until it ends")

// alignTolerance is how far apart two renditions' segment starts may be
// and still be the same segment. Renditions of one encoder carry the same
// timestamps to the millisecond; different segments are a GOP (a second
// or more) apart.
const alignTolerance = 100 * time.Millisecond

// maxGroupStarts bounds the segment starts a group remembers for
// alignment: a rendition more than this many segments behind the others
// is misaligned anyway.
const maxGroupStarts = 64

// maxGroupDiscs bounds the discontinuity sequence numbers remembered;
// older ones are only counted.
const maxGroupDiscs = 1024

// groupStart is the start of one segment number in the group's timeline.
type groupStart struct {
	msn   uint64
	start time.Duration
	dur   time.Duration // 0 until the next start is known
	at    time.Time     // wall clock when it was numbered
}

// variants is the group of renditions of one stream.
type variants struct {
	parent     *Stream
	multitrack bool      // renditions are one encoder's tracks (video and audio apart)
	captions   *Captions // a captioned stream's one rendition (captions.go); set at creation
	// groupCC: the captions of a group of renditions (pushed or tracks),
	// set before its multivariant playlist is first rendered (captions.go).
	groupCC atomic.Pointer[Captions]

	mu       sync.Mutex
	members  []*Stream // in the order of their first publish
	starts   []groupStart
	discs    []uint64 // media sequence numbers with a discontinuity, ascending
	discBase uint64   // discontinuities forgotten from discs
	dirty    bool     // the multivariant playlist needs rendering

	renderMu sync.Mutex // one multivariant render at a time, in order

	recID   string     // the recording the renditions share (g.mu)
	recOpen int        // renditions whose recording recID is open (g.mu)
	recMu   sync.Mutex // one write of the multivariant recording playlist at a time
	recBody []byte     // the last one written (recMu)

	dates map[string]*groupDates // the cues' dates, by ID (mu; daterange.go)
}

// members returns the renditions in publish order.
func (g *variants) snapshot() []*Stream {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*Stream(nil), g.members...)
}

// startLocked returns the remembered start nearest to t within the
// tolerance.
func (g *variants) startNear(t time.Duration) (groupStart, bool) {
	i := sort.Search(len(g.starts), func(i int) bool { return g.starts[i].start >= t-alignTolerance })
	if i < len(g.starts) && g.starts[i].start <= t+alignTolerance {
		return g.starts[i], true
	}
	return groupStart{}, false
}

func (g *variants) addStart(msn uint64, t time.Duration) {
	if n := len(g.starts); n > 0 {
		last := &g.starts[n-1]
		if msn <= last.msn || t <= last.start {
			return // the starts stay ascending in both
		}
		if msn == last.msn+1 {
			last.dur = t - last.start
		}
	}
	g.starts = append(g.starts, groupStart{msn: msn, start: t, at: g.parent.cfg.Now()})
	if len(g.starts) > maxGroupStarts {
		g.starts = append(g.starts[:0], g.starts[len(g.starts)-maxGroupStarts:]...)
	}
}

// durationOf is the duration of segment msn as the group knows it.
func (g *variants) durationOf(msn uint64) (time.Duration, bool) {
	for _, s := range g.starts {
		if s.msn == msn && s.dur > 0 {
			return s.dur, true
		}
	}
	return 0, false
}

func (g *variants) markDisc(msn uint64) {
	i := sort.Search(len(g.discs), func(i int) bool { return g.discs[i] >= msn })
	if i < len(g.discs) && g.discs[i] == msn {
		return
	}
	g.discs = append(g.discs, 0)
	copy(g.discs[i+1:], g.discs[i:])
	g.discs[i] = msn
	if len(g.discs) > maxGroupDiscs {
		g.discBase++
		g.discs = g.discs[1:]
	}
}

func (g *variants) isDisc(msn uint64) bool {
	i := sort.Search(len(g.discs), func(i int) bool { return g.discs[i] >= msn })
	return i < len(g.discs) && g.discs[i] == msn
}

// discsBefore counts the discontinuities at numbers below msn: the
// EXT-X-DISCONTINUITY-SEQUENCE of a playlist starting at msn.
func (g *variants) discsBefore(msn uint64) uint64 {
	return g.discBase + uint64(sort.Search(len(g.discs), func(i int) bool { return g.discs[i] >= msn }))
}

// alignment is what a rendition's segment start was matched to.
type alignment struct {
	msn     uint64
	aligned bool // matched the others' segment at that number, or led it
}

// align numbers the segment a rendition starts at t. next is the number the
// rendition would use on its own; jump allows a number beyond it (the
// rendition's first segment, or its first after a reconnect); resumed
// marks the segment as a discontinuity for every rendition.
func (g *variants) align(t time.Duration, next uint64, jump, resumed bool) alignment {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := alignment{msn: next}
	if st, ok := g.startNear(t); ok && (st.msn == next || jump && st.msn > next) {
		a = alignment{msn: st.msn, aligned: true}
	} else {
		n := len(g.starts)
		switch {
		case n == 0:
			a.aligned = true
		case t > g.starts[n-1].start && (next == g.starts[n-1].msn+1 || jump && next <= g.starts[n-1].msn+1):
			// This rendition reached the next cut first: the others follow.
			a = alignment{msn: g.starts[n-1].msn + 1, aligned: true}
		case jump && next <= g.starts[n-1].msn:
			// Its timestamps are not the others' (another encoder, or one
			// that restarted its clock): number on from the newest segment,
			// so that the numbers stay in step even though the cuts do not.
			a.msn = g.starts[n-1].msn + 1
		}
		if a.aligned {
			g.addStart(a.msn, t)
		}
	}
	if resumed {
		g.markDisc(a.msn)
	}
	return a
}

// maxClockSkew is how far a new publish's first timestamp may be from
// where the group's timeline is now and still count as the same clock.
const maxClockSkew = 5 * time.Second

// TimelineOffset returns what to add to the timestamps of a new publish to
// a group (a rendition's, or a multitrack publisher's for all its tracks),
// whose first timestamp is first. An encoder whose clock agrees with the
// group's (renditions of one encoder; a reconnect that kept its clock)
// gets 0. One whose clock restarted or never agreed is moved onto the
// group's timeline, its first keyframe onto the others' next cut, so that
// its segments start at the same timestamps as theirs from the first one
// (exactly so when its keyframe interval is theirs).
func (s *Stream) TimelineOffset(first time.Duration) time.Duration {
	g := s.group
	if p := s.variants(); p != nil {
		g = p
	}
	if g == nil {
		return s.continueOffset(first)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.starts)
	if n == 0 {
		return 0
	}
	newest := g.starts[n-1]
	now := newest.start + g.parent.cfg.Now().Sub(newest.at)
	if d := first - now; d >= -maxClockSkew && d <= maxClockSkew {
		return 0
	}
	dur := newest.dur
	if dur <= 0 && n > 1 {
		dur = g.starts[n-2].dur
	}
	if dur <= 0 {
		dur = g.parent.cfg.TargetDuration
	}
	k := (now - newest.start + dur - 1) / dur
	return newest.start + max(k, 1)*dur - first
}

// continueOffset is a single stream's TimelineOffset: a publisher coming
// back (a reconnect, or the name published again before it was removed)
// whose clock starts elsewhere, as an encoder's does on every connect, is
// moved to go on where the last segment ended, so that the stream's (and
// its recording's) timeline runs on through the discontinuity rather than
// jumping back. A clock already within maxClockSkew of it is kept.
func (s *Stream) continueOffset(first time.Duration) time.Duration {
	s.mu.Lock()
	end, ok := s.lastEnd, s.haveEnd
	s.mu.Unlock()
	if !ok {
		return 0
	}
	if d := first - end; d >= -maxClockSkew && d <= maxClockSkew {
		return 0
	}
	return end - first
}

// PublishRendition claims rendition rend of the stream at path (grouped
// pushes, or a multitrack push's track): the stream at path serves the
// multivariant playlist listing its renditions. A live rendition refuses
// with ErrStreamBusy; a stream published without renditions with
// ErrShape.
func (r *Registry) PublishRendition(path, rend string) (*Stream, error) {
	if err := storage.ValidName(rend); err != nil {
		return nil, fmt.Errorf("publish %s rendition %q: %w", path, rend, err)
	}
	if rend == playlistName || strings.HasPrefix(rend, "seg") || strings.HasPrefix(rend, "init") {
		return nil, fmt.Errorf("publish %s rendition %q: a rendition may not be named like the stream's own files", path, rend)
	}
	if rend == SubtitlesRendition {
		return nil, fmt.Errorf("publish %s rendition %q: the name is the stream's WebVTT subtitles rendition's", path, rend)
	}
	if err := storage.ValidKey(path + "/" + rend); err != nil {
		return nil, fmt.Errorf("publish %s rendition %q: %w", path, rend, err)
	}
	r.mu.Lock()
	parent, err := r.parentLocked(path, false)
	if err != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("publish %s rendition %s: %w", path, rend, err)
	}
	s, err := r.memberLocked(parent, rend)
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("publish %s rendition %s: %w", path, rend, err)
	}
	parent.variants().changed()
	return s, nil
}

// SplitTracks turns a stream just published (Publish) into the parent of
// renditions made from its publisher's tracks, when its shape allows:
// a stream that never had a segment, or one already split. It reports
// whether the stream is now a parent; the publish keeps the single shape
// otherwise.
func (r *Registry) SplitTracks(s *Stream) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.variants() != nil {
		return true
	}
	if s.group != nil {
		return false // a rendition already (a captioned stream's): no group in a group
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextMSN > 0 || len(s.window) > 0 || len(s.open.parts) > 0 || s.segmentsTotal > 0 {
		return false
	}
	s.vars.Store(&variants{parent: s, multitrack: true})
	s.pl.Store(nil)
	return true
}

// Rendition adds rendition rend to the split stream parent (SplitTracks).
func (r *Registry) Rendition(parent *Stream, rend string) (*Stream, error) {
	if parent.variants() == nil {
		return nil, fmt.Errorf("rendition %s of %s: %w", rend, parent.path, ErrShape)
	}
	if err := storage.ValidKey(parent.path + "/" + rend); err != nil {
		return nil, fmt.Errorf("rendition %s of %s: %w", rend, parent.path, err)
	}
	r.mu.Lock()
	s, err := r.memberLocked(parent, rend)
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("rendition %s of %s: %w", rend, parent.path, err)
	}
	parent.variants().changed()
	return s, nil
}

// parentLocked returns the parent stream at path, made if needed. r.mu is
// held.
func (r *Registry) parentLocked(path string, multitrack bool) (*Stream, error) {
	if s, ok := r.streams[path]; ok {
		if s.variants() == nil {
			return nil, ErrShape
		}
		return s, nil
	}
	if len(r.streams) >= r.cfg.MaxStreams {
		r.totals.streamsRefused.Add(1)
		return nil, fmt.Errorf("%w: %d held, the limit (ended streams count until removed)", ErrTooManyStreams, len(r.streams))
	}
	s := &Stream{
		path: path, cfg: &r.cfg, totals: &r.totals, bufs: &r.smallBufs, log: r.cfg.Logger,
		state: StateLive, since: r.cfg.Now(), target: targetDurationFor(r.cfg.TargetDuration), created: r.cfg.Now(),
	}
	s.vars.Store(&variants{parent: s, multitrack: multitrack})
	r.streams[path] = s
	delete(r.tombstones, path)
	return s, nil
}

// memberLocked claims rendition rend of parent. r.mu is held.
func (r *Registry) memberLocked(parent *Stream, rend string) (*Stream, error) {
	g := parent.variants()
	path := parent.path + "/" + rend
	if s, ok := r.streams[path]; ok {
		if s.group != g {
			if s.group == nil || s.State() != StateEnded {
				return nil, ErrShape
			}
			// An ended rendition of a group removed before it: it joins
			// the new group.
			s.mu.Lock()
			s.group, s.grouped = g, false
			s.mu.Unlock()
			g.mu.Lock()
			g.members = append(g.members, s)
			g.mu.Unlock()
		}
		if err := s.resume(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if len(r.streams) >= r.cfg.MaxStreams {
		r.totals.streamsRefused.Add(1)
		return nil, fmt.Errorf("%w: %d held, the limit (ended streams count until removed)", ErrTooManyStreams, len(r.streams))
	}
	s, err := r.newStreamLocked(context.Background(), path, StateLive)
	if err != nil {
		return nil, err
	}
	s.group, s.rendition = g, rend
	r.streams[path] = s
	g.mu.Lock()
	g.members = append(g.members, s)
	g.mu.Unlock()
	return s, nil
}

// Rendition returns the rendition's name, "" for a stream without
// renditions.
func (s *Stream) Rendition() string { return s.rendition }

// variants returns the renditions of a parent, nil for any other stream.
func (s *Stream) variants() *variants { return s.vars.Load() }

// IsGroup reports whether the stream serves a multivariant playlist.
func (s *Stream) IsGroup() bool { return s.variants() != nil }

// Renditions returns a group's renditions in publish order.
func (s *Stream) Renditions() []*Stream {
	if g := s.variants(); g != nil {
		return g.snapshot()
	}
	return nil
}

// Alignment reports a rendition's segments that lined up with the other
// renditions', and those that did not.
func (s *Stream) Alignment() (aligned, misaligned uint64) {
	return s.alignedSegs.Load(), s.misalignedSegs.Load()
}
