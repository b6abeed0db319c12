package playlist

import (
	"bytes"
	"unsafe"

	"github.com/fount-live/fount/playlist/httploop"
)

// Blocking requests on the event loops: Lookup answers Wait for an LL-HLS
// blocking playlist reload or preload-hint part that is not there yet, and
// the loop parks the request on its stream (a waitable) with no goroutine,
// until the stream's progress reaches what the request waits for. The
// Handler's wait is the same for net/http; both count in totals.waiting.

// partBits: a stream's progress is nextMSN<<partBits | parts of the open
// segment, which grows with every part and every segment.
const partBits = 20

// waitable is a Stream as the loops see it: its methods are for them only.
type waitable Stream

var _ httploop.Waitable = (*waitable)(nil)

// progressLocked is the stream's progress and epoch; s.mu must be held.
func (s *Stream) progressLocked() (pos, epoch uint64) {
	return s.nextMSN<<partBits | uint64(len(s.open.parts)), s.epoch
}

// Progress implements httploop.Waitable.
func (w *waitable) Progress() (pos, epoch uint64) {
	s := (*Stream)(w)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progressLocked()
}

// Subscribe implements httploop.Waitable.
func (w *waitable) Subscribe(n httploop.Notifier, pos, epoch uint64) {
	s := (*Stream)(w)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, e := s.progressLocked(); p != pos || e != epoch {
		n.Notify(w)
		return
	}
	for _, have := range s.notifiers {
		if have == n {
			return
		}
	}
	s.notifiers = append(s.notifiers, n)
}

// Unpark implements httploop.Waitable.
func (w *waitable) Unpark(timedOut bool) {
	s := (*Stream)(w)
	s.totals.waiting.Add(-1)
	if timedOut {
		s.totals.blockTimeouts.Add(1)
	}
}

// notifyLocked tells the loops subscribed that the stream changed, once
// each; s.mu must be held. A state change also moves the epoch, so that
// every parked request is asked again (an idle stream's parts are
// abandoned, an ended one answers everything at once).
func (s *Stream) notifyLocked() {
	if s.state != s.epochState {
		s.epoch++
		s.epochState = s.state
	}
	for i, n := range s.notifiers {
		n.Notify((*waitable)(s))
		s.notifiers[i] = nil
	}
	s.notifiers = s.notifiers[:0]
}

// wakeAll moves the epoch: every parked request is asked again.
func (s *Stream) wakeAll() {
	s.mu.Lock()
	s.epoch++
	s.notifyLocked()
	s.mu.Unlock()
}

// until is the progress at which a blocking playlist request may be
// answered: part br.part of segment br.msn there, or segment br.msn done.
func (br blockRequest) until() uint64 {
	if br.part < 0 {
		return (br.msn + 1) << partBits
	}
	return br.msn<<partBits | uint64(br.part+1)
}

// blockState is hasPlaylistFor with the progress it saw.
func (s *Stream) blockState(br blockRequest) (ok, tooFar bool, pos, epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, tooFar = s.hasPlaylistForLocked(br)
	pos, epoch = s.progressLocked()
	return ok, tooFar, pos, epoch
}

// park is Lookup's Wait for a request on s until progress until, or its
// Decline when no more requests may wait (the Handler then answers 503).
func (r *Registry) park(s *Stream, pos, epoch, until uint64, timeoutMsg string) (httploop.Answer, httploop.Verdict) {
	if r.totals.waiting.Add(1) > int64(r.cfg.MaxBlocking) || r.isDraining() {
		r.totals.waiting.Add(-1)
		return httploop.Answer{}, httploop.Decline
	}
	return httploop.Answer{Park: httploop.Park{On: (*waitable)(s), Pos: pos, Epoch: epoch, Until: until,
		Timeout: s.blockTimeout(), TimeoutMsg: timeoutMsg}}, httploop.Wait
}

// lookupPart is Lookup for a part not there yet: the ones awaitPart waits
// for are parked, anything else is the Handler's (a 404).
func (r *Registry) lookupPart(s *Stream, msn uint64, idx int) (httploop.Answer, httploop.Verdict) {
	s.mu.Lock()
	next := s.nextPartLocked(msn, idx)
	pos, epoch := s.progressLocked()
	s.mu.Unlock()
	if !next {
		return httploop.Answer{}, httploop.Decline
	}
	return r.park(s, pos, epoch, msn<<partBits|uint64(idx+1), partTimeoutMsg)
}

// rawQuery is a plain request's query (httploop.Request.Query): its Get
// reads it as url.Values.Get reads url.ParseQuery's result, without
// allocating.
type rawQuery []byte

func (q rawQuery) Get(key string) string {
	for rest := []byte(q); len(rest) > 0; {
		var kv []byte
		kv, rest, _ = bytes.Cut(rest, []byte("&"))
		k, v, _ := bytes.Cut(kv, []byte("="))
		if string(k) == key {
			return unsafe.String(unsafe.SliceData(v), len(v))
		}
	}
	return ""
}
