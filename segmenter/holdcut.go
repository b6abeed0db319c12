package segmenter

import "time"

// Held cuts. With B-frames a keyframe is presented a composition delay
// (commonly two frames) after its DTS, and so is the end of the video of
// the segment it closes: the video presents up to the keyframe's PTS. The
// audio frames presented before that PTS belong to that segment too, or its
// audio ends that much before its video, and a player that waits for both
// tracks to be buffered up to the boundary (hls.js before an interstitial)
// stalls there. They arrive after the keyframe (frames come in DTS order),
// so the cut is held: the keyframe and the video frames after it wait (not
// muxed), the audio before the keyframe's PTS goes into the ending segment
// (and its last part), and the cut is made once the audio reaches that PTS,
// or at a bound (audio late by more than holdMargin, a timestamp jump, a
// new configuration, Flush). Nothing is re-timed: frames only move to the
// other side of the boundary, and Segment.Duration is still the next
// keyframe's DTS minus this one's. Without B-frames (PTS = DTS) no cut is
// held. With parts, the part that completes a segment near its target
// stays open (partDue) until the next video frame, so that this audio (and
// without B-frames, the audio between the last video frame and the
// keyframe) has a part to go into: a part handed over at its last video
// frame would leave it only an audio-only part of ~0 duration.

const (
	// holdMargin: the cut is made without the audio once a video frame
	// arrives this far past the keyframe's PTS (the audio is late, stalled
	// or absent). Encoders interleave audio and video within tens of
	// milliseconds.
	holdMargin = 250 * time.Millisecond
	// maxHoldDelay: a composition delay larger than this is not waited
	// for (no encoder delays presentation by a second).
	maxHoldDelay = time.Second
	// maxHeld bounds the video frames held (at 120 fps, the margin and a
	// composition delay of half a second).
	maxHeld = 96
)

// canHold reports whether the cut at keyframe f (with its segment's
// duration known) waits for the audio presented before f: the stream has
// audio, this segment has some and the next audio frame may still come
// before f's PTS, f is presented later than decoded (B-frames), and the
// cut is on one timeline (no jump or discontinuity). With parts, the
// ending part must still be open with video in it: an audio-only last part
// would last ~0.
func (s *Segmenter) canHold(f Frame, jumped bool) bool {
	if s.tracks&Audio == 0 || jumped || s.pendingDisc || !s.segAudio || !s.at.seen {
		return false
	}
	if f.PTS <= f.DTS || f.PTS-f.DTS > maxHoldDelay {
		return false
	}
	if s.at.last+s.frameDuration(Audio)-time.Millisecond >= f.PTS {
		return false // the next audio frame starts at or after the PTS
	}
	return !s.partsOn || s.partPrimary
}

// cutAtKey cuts the segment at keyframe f, duration long, or holds the cut
// (see canHold).
func (s *Segmenter) cutAtKey(f Frame, duration time.Duration, jumped bool) error {
	hold := s.canHold(f, jumped)
	if hold {
		s.holding, s.holdDur = true, duration
		s.held = append(s.held[:0], bufferedFrame{kind: Video, dts: f.DTS, pts: f.PTS, key: true, n: len(f.Data)})
		s.heldData = append(s.heldData[:0], f.Data...)
	}
	var err error
	if s.partsOn && s.partPrimary && !jumped && !s.pendingDisc {
		// Audio deferred past the end of the open part (partDue) and
		// presented before this keyframe ends this segment.
		err = s.flushPendingBefore(f.PTS)
	}
	if hold {
		return err
	}
	err = firstErr(err, s.cut(Video, f.DTS, duration, f.DTS, !jumped))
	return firstErr(err, s.afterVideo(s.muxVideo(f, true)))
}

// holdsVideo reports whether a video frame arriving while a cut is held is
// held too, rather than ending the hold first: not a keyframe, on the same
// timeline, within the margin, within the bounds.
func (s *Segmenter) holdsVideo(f Frame) bool {
	key := s.held[0]
	return !f.Key && !s.pendingDisc && s.vt.seen && f.DTS >= s.vt.last && f.DTS-s.vt.last <= jumpThreshold &&
		f.DTS <= key.pts+holdMargin && len(s.held) < maxHeld && len(s.heldData)+len(f.Data) <= maxProbeBytes &&
		s.video.Codec == s.segVCodec
}

// holdVideo keeps a video frame until the held cut is made. It is checked
// now, so that a malformed frame is refused as it arrives.
func (s *Segmenter) holdVideo(f Frame) error {
	s.observe(&s.vt, f.DTS, "video")
	if err := s.mux.prepareVideo(s.video, f); err != nil {
		s.countDrop(DropMalformed)
		return err
	}
	s.framesSince++
	s.held = append(s.held, bufferedFrame{kind: Video, dts: f.DTS, pts: f.PTS, key: f.Key, off: len(s.heldData), n: len(f.Data)})
	s.heldData = append(s.heldData, f.Data...)
	return nil
}

// holdsAudio reports whether an audio frame arriving while a cut is held
// belongs to the ending segment: presented before the keyframe, on the
// same timeline.
func (s *Segmenter) holdsAudio(f Frame) bool {
	return f.DTS < s.held[0].pts && !s.pendingDisc && s.at.seen && f.DTS >= s.at.last && f.DTS-s.at.last <= jumpThreshold
}

// holdAudio muxes an audio frame into the ending segment (its last part).
func (s *Segmenter) holdAudio(f Frame) error {
	s.observe(&s.at, f.DTS, "audio")
	return s.muxAudio(f, false, false)
}

// releaseHold makes the held cut: it finishes the ending segment, opens the
// next at the held keyframe and muxes the held video frames into it, as
// writeVideo would have.
func (s *Segmenter) releaseHold() error {
	s.holding = false
	jumpNow := s.jumpNow
	s.jumpNow = false // no held frame jumped
	key := s.held[0]
	s.curPTS = key.pts
	err := s.cut(Video, key.dts, s.holdDur, key.dts, true)
	prev := key.dts
	for i, bf := range s.held {
		f := Frame{Kind: Video, DTS: bf.dts, PTS: bf.pts, Key: bf.key, Data: s.heldData[bf.off : bf.off+bf.n]}
		s.curPTS = f.PTS
		if perr := s.mux.prepareVideo(s.video, f); perr != nil {
			// Checked as it arrived: cannot fail now.
			err = firstErr(err, perr)
			continue
		}
		if i > 0 {
			s.elapsed += f.DTS - prev
			if s.partDue {
				err = firstErr(err, s.closeDuePart(f.DTS, true))
			}
		}
		prev = f.DTS
		err = firstErr(err, s.afterVideo(s.muxVideo(f, i == 0)))
	}
	s.held = s.held[:0]
	s.heldData = s.heldData[:0]
	s.jumpNow = jumpNow
	return err
}

// releaseHeld makes the held cut, if there is one.
func (s *Segmenter) releaseHeld() error {
	if !s.holding {
		return nil
	}
	return s.releaseHold()
}

// dueOpen reports whether the part a video frame has just completed stays
// open (partDue): the next video frame may cut the segment and there is
// audio to end it with.
func (s *Segmenter) dueOpen() bool {
	return s.tracks&(Video|Audio) == Video|Audio && s.segAudio && !s.pendingDisc && s.segmentDue()
}

// closeDuePart hands over the part kept open (partDue) when the video frame
// at next does not cut (a GOP longer than the target). Its SegmentDue is
// what it would have been when its last video frame was muxed.
func (s *Segmenter) closeDuePart(next time.Duration, known bool) error {
	return s.closePart(s.partDueD, next, known, s.segmentDue())
}

// flushPendingBefore muxes the deferred audio frames presented before t
// into the open part and keeps the rest, in the same buffers. It stops at a
// frame that jumped.
func (s *Segmenter) flushPendingBefore(t time.Duration) error {
	n := 0
	for n < len(s.pend) && s.pend[n].dts < t && !s.pend[n].jump {
		n++
	}
	if n == 0 {
		return nil
	}
	if n == len(s.pend) {
		return s.flushPending()
	}
	err := s.muxPending(s.pend[:n])
	off := s.pend[n].off
	s.pend = s.pend[:copy(s.pend, s.pend[n:])]
	s.pendData = s.pendData[:copy(s.pendData, s.pendData[off:])]
	for i := range s.pend {
		s.pend[i].off -= off
	}
	return err
}
