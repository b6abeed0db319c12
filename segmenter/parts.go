package segmenter

import (
	"fmt"
	"time"
)

// afterVideo runs after a video frame was muxed: audio deferred until this
// frame follows it into the same part, then the part is closed if the
// frame completes it.
func (s *Segmenter) afterVideo(err error) error {
	if err != nil {
		return err
	}
	if err := s.flushPending(); err != nil {
		return err
	}
	return s.afterPrimary(Video, nil)
}

// afterPrimary closes the open part right away when the primary-track frame
// just muxed completes it, without waiting for the next frame: when
// (frame DTS + its estimated duration) - part start >= PartDuration - 1ms,
// or when one more frame would not fit in PartDuration (+1 ms for
// millisecond timestamps), so that parts stay within PartDuration also when
// it is not a multiple of the frame duration.
//
// The estimate is the nominal frame duration (SPS frame rate, 1024 samples
// for AAC), not the last delta: millisecond timestamps make deltas jitter
// (33/34 ms at 30 fps), and the nominal one keeps part boundaries on the
// real frame grid (six 30 fps frames are exactly 200 ms).
func (s *Segmenter) afterPrimary(k Kind, err error) error {
	if err == nil && s.open {
		s.refinePDT()
	}
	if err != nil || !s.partsOn || !s.open {
		return err
	}
	est := s.nominalDuration(k)
	end := s.elapsed + est
	d := end - s.partStartEl
	// The slack is the timestamps' rounding: a difference of two
	// millisecond timestamps is up to 1 ms off the real grid, so a frame
	// that ends the part up to 1 ms late still fits (clampPart).
	if d >= s.cfg.PartDuration-time.Millisecond || d+est > s.cfg.PartDuration+time.Millisecond {
		if k == Video && s.dueOpen() {
			// The next frame may cut: the audio up to the cut (holdcut.go)
			// goes into this part, handed over at that frame.
			s.partDue, s.partDueD, s.partDueEnd = true, s.clampPart(d), s.segStart+end
			return nil
		}
		return s.closePart(s.clampPart(d), 0, false, s.segmentDue())
	}
	return nil
}

// clampPart rounds a part duration that exceeds PartDuration by no more than
// 2 ms (the fit slack above, plus a millisecond timestamp's rounding) down
// to PartDuration. The next part starts
// where the reported one ends, so the difference is not lost: it lengthens
// the next part, whose end is again measured from real timestamps (the
// "would not fit" rule above then closes it a frame early if needed). Parts
// longer than that only come after a gap or jump in the timestamps.
func (s *Segmenter) clampPart(d time.Duration) time.Duration {
	if d > s.cfg.PartDuration && d <= s.cfg.PartDuration+2*time.Millisecond {
		return s.cfg.PartDuration
	}
	return d
}

// deferAudio keeps an audio frame for the part of the next video frame.
// Should video stall, the audio is muxed into the open part after one part
// duration so that memory stays bounded.
func (s *Segmenter) deferAudio(f Frame, jumped bool) error {
	s.pend = append(s.pend, bufferedFrame{kind: Audio, dts: f.DTS, pts: f.DTS, jump: jumped, off: len(s.pendData), n: len(f.Data)})
	s.pendData = append(s.pendData, f.Data...)
	if f.DTS-s.pend[0].dts >= s.cfg.PartDuration || len(s.pendData) > maxProbeBytes {
		var err error
		if s.partDue {
			// No video frame came to close the part kept open.
			err = s.closePart(s.partDueD, 0, false, s.segmentDue())
		}
		s.partForced = true
		return firstErr(err, s.flushPending())
	}
	return nil
}

func (s *Segmenter) flushPending() error {
	if len(s.pend) == 0 {
		return nil
	}
	err := s.muxPending(s.pend)
	s.pend = s.pend[:0]
	s.pendData = s.pendData[:0]
	return err
}

// muxPending muxes deferred audio frames, in order.
func (s *Segmenter) muxPending(pend []bufferedFrame) error {
	var first error
	for _, bf := range pend {
		f := Frame{Kind: Audio, DTS: bf.dts, PTS: bf.pts, Data: s.pendData[bf.off : bf.off+bf.n]}
		if err := s.muxAudio(f, false, bf.jump); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Segmenter) dropPending() {
	for range s.pend {
		s.countDrop(DropBeforeKeyframe)
	}
	s.pend = s.pend[:0]
	s.pendData = s.pendData[:0]
}

// segmentDue reports, as a part is handed over (its bytes flushed), whether
// the primary track's next frame may close the segment: the cut rules of
// writeVideo and writeStarted (target reached, a discontinuity pending, a
// cap), applied to a frame one frame duration away. It errs towards true,
// the longer of the nominal and the last measured duration: a part flagged
// due that is followed by more of its segment costs a player a longer
// wait on the next segment's first part; one not flagged that ends its
// segment sends players after a part that never comes (Part.SegmentDue).
func (s *Segmenter) segmentDue() bool {
	k := Audio
	if s.tracks&Video != 0 {
		k = Video
	}
	next := s.elapsed + max(s.nominalDuration(k), s.frameDuration(k))
	return s.pendingDisc || next+cutTolerance >= s.target || s.overCap(next) || s.cutSoon(max(s.nominalDuration(k), s.frameDuration(k)))
}

func (s *Segmenter) resetPart() {
	s.partPrimary, s.partIndep, s.partForced, s.partDue = false, false, false, false
	s.partFrames = 0
}

// closePart hands over the open part: the bytes written since it opened
// (fMP4: its samples, written now as one fragment). due is its SegmentDue:
// true when the segment is being finished.
func (s *Segmenter) closePart(d, nextVideo time.Duration, known, due bool) error {
	if err := s.mux.flush(nextVideo, known, s.frameDuration(Video)); err != nil {
		return fmt.Errorf("segmenter: muxing: %w", err)
	}
	s.takeKeys() // before handed moves on
	end := len(s.out.buf)
	p := Part{Data: s.out.buf[s.partStart:end:end], Duration: d, Independent: s.partIndep, SegmentStart: s.segStart,
		SegmentDue: due}
	s.maxPart = max(s.maxPart, len(p.Data))
	s.partStartEl += d
	s.resetPart()
	if s.partsOnly {
		meta := p
		meta.Data = nil // its bytes are overwritten once the Sink has them
		s.segParts = append(s.segParts, meta)
	} else {
		s.segParts = append(s.segParts, p)
		s.partStart = end
	}
	err := s.sink.Part(p)
	if s.partsOnly {
		// The Sink has it now: the next part is built in the same bytes.
		s.handed += len(p.Data)
		s.out.buf = s.out.buf[:s.partBase]
		s.partStart = s.partBase
	}
	if err != nil {
		return fmt.Errorf("segmenter: sink: %w", err)
	}
	return nil
}
