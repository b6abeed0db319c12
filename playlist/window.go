package playlist

import (
	"context"
	"errors"
	"time"

	"github.com/fount-live/fount/storage"
)

// A stream's windows: the segments its playlist lists (with a DVR window,
// much more than it keeps in memory), when a segment leaves memory and
// storage, and when a stream that lost its publisher ends and goes.

// retiredEntry is a segment (or a segment's abandoned parts) that left
// the memory window at since: its memory goes after the grace.
type retiredEntry struct {
	e     *entry
	since time.Time
}

// appendLocked adds a finished (or gap) segment to the window and slides
// it. s.mu is held.
//
// The window is what the playlist lists. Without a DVR window that is the
// last WindowSize segments, all in memory. With one it is every segment
// whose media lies within Config.DVRWindow of the live edge (never fewer
// than WindowSize); only the last WindowSize of them are the memory
// window: an older one is evicted (its memory files dropped after the
// grace, so it is served from storage) but stays listed until it leaves
// the DVR window, and is deleted from storage only then (after the grace).
func (s *Stream) appendLocked(e *entry) {
	s.window = append(s.window, e)
	now := s.cfg.Now()
	n := s.cfg.WindowSize
	if dvr := s.cfg.DVRWindow; dvr > 0 && len(s.window) > n {
		// Keep the segments after the first one that ends at least
		// DVRWindow before the live edge: the first kept one starts
		// that far back, or as far as anything is listed.
		var tail time.Duration
		keep := 0
		for i := len(s.window) - 1; i >= 0; i-- {
			keep++
			tail += s.window[i].duration
			if tail >= dvr {
				break
			}
		}
		n = max(n, keep)
		if old := s.window[len(s.window)-s.cfg.WindowSize-1]; !old.evicted {
			old.evicted = true
			s.evicted = append(s.evicted, retiredEntry{e: old, since: now})
		}
	}
	for len(s.window) > n {
		old := s.window[0]
		if old.discontinuity {
			s.discSeq++
		}
		s.window = s.window[1:]
		s.retired = append(s.retired, retiredEntry{e: old, since: now})
	}
}

// abandonOpenLocked gives up the segment being built (its publisher left,
// or the stream ended): its parts, no longer listed, are retired like a
// segment leaving the window, and dropped with their file after the grace.
func (s *Stream) abandonOpenLocked() {
	if len(s.open.parts) > 0 || s.open.file != nil {
		s.retired = append(s.retired, retiredEntry{e: &entry{parts: s.open.parts, file: s.open.file}, since: s.cfg.Now()})
	}
	s.open = openSegment{msn: s.nextMSN, init: s.initVersion}
}

// sweep deletes retired segments whose grace has passed and reports whether
// the stream has expired entirely.
func (s *Stream) sweep(now time.Time) (expired bool) {
	s.mu.Lock()
	s.sampleLocked(now)
	if s.state == StateIdle && s.variants() == nil && now.Sub(s.since) >= s.cfg.ReconnectWindow {
		s.mu.Unlock()
		s.log.Info("stream ended: no reconnect within the window", "stream", s.path, "reconnect_window", s.cfg.ReconnectWindow)
		s.end(true)
		if s.cfg.OnStreamEnded != nil {
			s.cfg.OnStreamEnded(s.path)
		}
		s.mu.Lock()
	}
	var drop []*entry
	n := 0
	for _, r := range s.retired {
		if now.Sub(r.since) < s.cfg.DeleteGrace {
			break
		}
		drop = append(drop, r.e)
		n++
	}
	s.retired = s.retired[n:]
	// DVR: segments that left the memory window a grace ago are served
	// from storage from now on; their memory goes (their parts, listed
	// only near the live edge, with it).
	var evict []*entry
	n = 0
	for _, r := range s.evicted {
		if now.Sub(r.since) < s.cfg.DeleteGrace {
			break
		}
		evict = append(evict, r.e)
		n++
	}
	s.evicted = s.evicted[n:]
	if len(s.evicted) == 0 {
		s.evicted = nil // let the backing array go
	}
	var evictFiles []*memFile
	var evictNames []string
	for _, e := range evict {
		if e.gap {
			continue // nothing in memory, nor in storage
		}
		evictNames = append(evictNames, e.name)
		for _, p := range e.parts {
			evictNames = append(evictNames, p.name)
		}
		evictFiles = append(evictFiles, e.file, e.partsFile)
		e.parts, e.file, e.partsFile = nil, nil, nil
	}
	expired = s.state == StateEnded && now.Sub(s.since) >= s.cfg.RemoveAfter
	var inits []string
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
		s.retired, s.window, s.evicted = nil, nil, nil
		inits, s.inits = s.inits, nil
		s.pl.Store(nil)
	}
	s.mu.Unlock()

	ctx := context.Background()
	del := func(name string) {
		s.byName.Delete(name)
		if err := s.cfg.Store.Delete(ctx, s.path+"/"+name); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.totals.storageErrors.Add(1)
			s.log.Warn("deleting from storage failed", "stream", s.path, "name", name, "err", err)
		}
	}
	// The names go before the files: a look-up that still finds one
	// and then fails to acquire its file falls back to storage.
	for _, name := range evictNames {
		s.byName.Delete(name)
	}
	for _, f := range evictFiles {
		f.drop()
	}
	for _, e := range drop {
		for _, p := range e.parts {
			s.byName.Delete(p.name) // parts live in memory only
		}
		switch {
		case e.name == "":
		case s.cfg.Record:
			// A recording lists it: the recording owns the object now.
			s.byName.Delete(e.name)
		default:
			del(e.name)
		}
		// Requests still sending from the files keep them open until done.
		e.file.drop()
		e.partsFile.drop()
	}
	if expired {
		for _, name := range inits {
			if s.cfg.Record {
				s.byName.Delete(name)
			} else {
				del(name)
			}
		}
		del(playlistName)
		// Parts of an unfinished last segment.
		s.byName.Range(func(k, _ any) bool { s.byName.Delete(k); return true })
	}
	return expired
}
