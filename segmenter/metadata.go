package segmenter

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// TimedID3 is an ID3v2 tag (package id3 builds them) to mux at a
// presentation time: MPEG-TS as a PES of the timed ID3 stream, fMP4 as an
// emsg box (scheme https://aomedia.org/emsg/ID3).
//
// The time is PDT when it is not zero (the program date time of the
// stream's segments, Segment.ProgramDateTime plus media time), else PTS
// when HasPTS (the stream timeline of Frame.PTS), else the PTS of the next
// frame written. A time already past when the tag is dequeued is the next
// frame's.
type TimedID3 struct {
	Tag    []byte
	PTS    time.Duration
	HasPTS bool
	PDT    time.Time
}

// MaxQueuedMetadata bounds the tags waiting for their time.
const MaxQueuedMetadata = 64

// MaxMetadataSize is the largest tag AddMetadata takes: an MPEG-TS PES
// (whose length field counts its header too) holds one tag.
const MaxMetadataSize = 65000

// Errors AddMetadata refuses a tag with.
var (
	ErrMetadataQueueFull = errors.New("segmenter: too many timed metadata tags waiting")
	ErrMetadataTooLarge  = errors.New("segmenter: timed metadata tag too large")
)

// metaQueue holds the tags added from any goroutine (in, under mu) and
// those the segmenter's goroutine took, in time order (q).
type metaQueue struct {
	mu      sync.Mutex
	in      []TimedID3
	pending atomic.Bool // in is not empty: the one check per frame
	n       atomic.Int32

	q []queuedID3
}

type queuedID3 struct {
	pts time.Duration
	tag []byte
}

// AddMetadata queues an ID3 tag, muxed with the first frame whose PTS is at
// or after its time, into the segment (and part) holding that frame. Safe
// for concurrent use with the other methods. The tag is not copied.
func (s *Segmenter) AddMetadata(m TimedID3) error {
	mq := &s.meta
	if len(m.Tag) > MaxMetadataSize || len(m.Tag) == 0 {
		return ErrMetadataTooLarge
	}
	if mq.n.Add(1) > MaxQueuedMetadata {
		mq.n.Add(-1)
		return ErrMetadataQueueFull
	}
	mq.mu.Lock()
	mq.in = append(mq.in, m)
	mq.pending.Store(true)
	mq.mu.Unlock()
	return nil
}

// muxMetadata writes the queued tags due at a frame of presentation time
// pts that has just been muxed: after it (MPEG-TS: its PES follows the
// frame's, so that a segment's PAT and PMT come first), in the same part.
// A tag that cannot be muxed is logged and dropped: metadata never ends a
// stream. Called only when something is queued.
func (s *Segmenter) muxMetadata(pts time.Duration) {
	mq := &s.meta
	if mq.pending.Load() {
		s.takeMetadata(pts)
	}
	for len(mq.q) > 0 && mq.q[0].pts <= pts {
		m := mq.q[0]
		mq.q = mq.q[1:]
		mq.n.Add(-1)
		if err := s.mux.writeID3(m.pts, m.tag); err != nil {
			s.log.Warn("timed metadata dropped", "pts", m.pts, "bytes", len(m.tag), "err", err)
			continue
		}
		s.log.Debug("timed metadata muxed", "pts", m.pts, "bytes", len(m.tag))
	}
	if len(mq.q) == 0 {
		mq.q = nil
	}
}

// takeMetadata moves the tags added since the last call into q, with their
// times on the stream timeline; now is the current frame's PTS.
func (s *Segmenter) takeMetadata(now time.Duration) {
	mq := &s.meta
	mq.mu.Lock()
	in := mq.in
	mq.in = nil
	mq.pending.Store(false)
	mq.mu.Unlock()
	for _, m := range in {
		pts := now
		switch {
		case !m.PDT.IsZero() && !s.pdtWall.IsZero():
			pts = s.pdtStart + s.pdtShown + m.PDT.Sub(s.pdtWall)
		case m.HasPTS:
			pts = m.PTS
		}
		// A time already past (or on another timeline) is now.
		if pts < now || pts-now > jumpThreshold*360 {
			pts = now
		}
		mq.q = append(mq.q, queuedID3{pts: pts, tag: m.Tag})
	}
	slices.SortStableFunc(mq.q, func(a, b queuedID3) int {
		switch {
		case a.pts < b.pts:
			return -1
		case a.pts > b.pts:
			return 1
		}
		return 0
	})
}
