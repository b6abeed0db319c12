package segmenter

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Requested cuts: a splice point (an SCTE-35 ad break's start or end, an
// HLS interstitial's date) must begin a segment, so that the playlist can
// mark that segment and a player or an ad stitcher can switch there. The
// segmenter honours a request at the first keyframe whose presentation
// time is at or after the requested time (audio only: the first frame),
// cutting the segment being built short if need be.

// noCut is the earliest request when there is none.
const noCut = math.MaxInt64

// maxCutRequests bounds the requests a segmenter holds: more are refused.
const maxCutRequests = 64

// cutRequests are the requested cuts not yet made. The per-frame path
// reads one atomic (the earliest request) and takes the lock only when a
// frame reaches it.
type cutRequests struct {
	earliest atomic.Int64 // noCut when there is none
	mu       sync.Mutex
	at       []time.Duration // ascending
}

func (c *cutRequests) init() { c.earliest.Store(noCut) }

// CutAt asks for a segment to begin at the first keyframe (audio-only
// streams: the first frame) whose PTS is at or after t, on the stream
// timeline that Frame.PTS is on. A keyframe at or after t that opens a
// segment anyway satisfies it. Safe for concurrent use with WriteFrame
// (an HTTP API calls it while the publisher writes); it reports false
// when too many requests are pending.
func (s *Segmenter) CutAt(t time.Duration) bool {
	c := &s.cuts
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.at) >= maxCutRequests {
		return false
	}
	i, found := slices.BinarySearch(c.at, t)
	if !found {
		c.at = slices.Insert(c.at, i, t)
	}
	c.earliest.Store(int64(c.at[0]))
	return true
}

// PendingCuts returns the requested cuts not yet made, ascending.
func (s *Segmenter) PendingCuts() []time.Duration {
	c := &s.cuts
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.at)
}

// cutDue reports whether a frame presented at pts reaches a requested cut.
// Allocation-free: one atomic load while nothing is requested.
func (s *Segmenter) cutDue(pts time.Duration) bool {
	e := s.cuts.earliest.Load()
	return e != noCut && int64(pts) >= e
}

// takeCuts drops the requests a segment opening at pts satisfies.
func (s *Segmenter) takeCuts(pts time.Duration) {
	if !s.cutDue(pts) {
		return
	}
	c := &s.cuts
	c.mu.Lock()
	n := 0
	for n < len(c.at) && c.at[n] <= pts {
		n++
	}
	c.at = c.at[:copy(c.at, c.at[n:])]
	if len(c.at) == 0 {
		c.earliest.Store(noCut)
	} else {
		c.earliest.Store(int64(c.at[0]))
	}
	c.mu.Unlock()
	s.ctr.RequestedCuts.Add(1)
}

// cutSoon reports whether a requested cut falls within d of the last
// frame: the next frame (a keyframe) may cut, so a part is SegmentDue.
func (s *Segmenter) cutSoon(d time.Duration) bool {
	e := s.cuts.earliest.Load()
	return e != noCut && int64(s.curPTS+d) >= e
}
