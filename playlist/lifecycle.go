package playlist

// A stream's life after its publisher: waiting for a reconnect, ending,
// resuming (stream.go has the publishing side).

// Unpublish is called when the publisher disconnects: the stream waits for
// a reconnect for Config.ReconnectWindow, then ends.
func (s *Stream) Unpublish() {
	if s.variants() != nil {
		return // a parent's state follows its renditions'
	}
	s.mu.Lock()
	if s.state != StateLive {
		s.mu.Unlock()
		return
	}
	s.state = StateIdle
	s.since = s.cfg.Now()
	// Parts of a segment that was never finished stay fetchable, for the
	// grace, but are no longer listed, and the preload hint goes away.
	s.abandonOpenLocked()
	r := s.renderLocked()
	s.showLocked(r)
	s.mu.Unlock()
	s.storePlaylist(r)
	s.groupChanged()
}

// groupChanged re-renders the multivariant playlist of the stream's group,
// if it has one, after a change of state.
func (s *Stream) groupChanged() {
	if s.group != nil {
		s.group.changed()
	}
}

// end appends EXT-X-ENDLIST. final: the stream is over (no reconnect
// within the window), not just this process (shutdown, handover), so an
// open ad break ends with it and cues not yet due are dropped; across a
// restart both carry on (daterange.go).
func (s *Stream) end(final bool) {
	s.mu.Lock()
	if s.state == StateEnded {
		s.mu.Unlock()
		return
	}
	s.state = StateEnded
	if final {
		s.endAtStreamEndLocked()
	}
	s.since = s.cfg.Now()
	s.abandonOpenLocked()
	r := s.renderLocked()
	s.showLocked(r)
	rw := s.finishRecordingLocked()
	s.mu.Unlock()
	s.storePlaylist(r)
	s.writeRecording(rw)
	s.groupChanged()
}

// resume takes a new publisher on an idle or ended stream; numbering goes
// on and the next segment carries EXT-X-DISCONTINUITY. A WebVTT rendition
// takes its discontinuities from its group's media instead (a media
// rendition's publisher back marks one for all; another rendition's
// publisher taking the subtitles over marks none), so that the
// discontinuity sequences agree.
func (s *Stream) resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == StateLive {
		return ErrStreamBusy
	}
	s.state = StateLive
	s.since = s.cfg.Now()
	s.pendingDisc = s.nextMSN > 0 && !s.vtt.Load()
	if s.keys != nil {
		s.keys.reset() // a new publish, a new key
	}
	// Drop the ENDLIST (if any) at once rather than at the next segment.
	s.showLocked(s.renderLocked())
	return nil
}
