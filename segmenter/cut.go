package segmenter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

func (s *Segmenter) writeStarted(f Frame) error {
	if f.Kind&s.tracks == 0 {
		if (f.Kind == Video && s.video == nil) || (f.Kind == Audio && s.audio == nil) {
			// Still no sequence header: said when the first frame came.
			s.countDrop(DropNoConfig)
			return nil
		}
		s.warnLateTrack(f.Kind)
		s.countDrop(DropUnusedTrack)
		return nil
	}
	if len(f.Data) == 0 {
		s.countDrop(DropMalformed)
		return nil
	}
	if f.Kind == Video || s.tracks&Video == 0 {
		s.curPTS = f.PTS
	}
	if f.Kind == Video {
		return s.writeVideo(f)
	}
	if !s.holding {
		return s.writeAudio(f)
	}
	if s.holdsAudio(f) {
		return s.holdAudio(f)
	}
	return firstErr(s.releaseHold(), s.writeAudio(f))
}

// writeAudio muxes an audio frame, or defers it to the next part, or cuts
// there (audio-only, or video stalled).
func (s *Segmenter) writeAudio(f Frame) error {
	hasVideo := s.tracks&Video != 0
	delta, jumped := s.observe(&s.at, f.DTS, "audio")
	if hasVideo {
		if !s.open || (s.first && f.DTS < s.segStart) {
			s.countDrop(DropBeforeKeyframe)
			return nil
		}
		// Timestamps that jumped say nothing about a stall: the jump is
		// cut at the next keyframe.
		d := f.DTS - s.segStart
		stalled := !jumped && !s.pendingDisc && d > s.cfg.MaxSegmentDuration && f.DTS-s.vt.last > videoStall
		if stalled || s.segBytes() >= s.cfg.MaxSegmentBytes {
			// Video stalled while audio goes on: the segment would only
			// grow. Cut at this audio frame.
			s.noteCap(d, false)
			err := firstErr(s.flushPending(), s.cut(Audio, f.DTS, d, 0, false))
			return firstErr(err, s.muxAudio(f, true, jumped))
		}
		// Audio after the open part goes with the next video frame; after
		// a part kept open (partDue), only what is presented after its end.
		if s.partsOn && ((!s.partPrimary && !s.partForced) || (s.partDue && (jumped || s.pendingDisc || f.DTS >= s.partDueEnd))) {
			return s.deferAudio(f, jumped)
		}
		return s.muxAudio(f, false, jumped)
	}
	// Audio-only: every frame is a cut opportunity.
	if !s.open {
		err := s.openSegment(Audio, f.DTS)
		return firstErr(err, s.afterPrimary(Audio, s.muxAudio(f, true, jumped)))
	}
	step := delta
	if jumped {
		step = s.frameDuration(Audio)
	}
	if s.pendingDisc || s.elapsed+step+cutTolerance >= s.target || s.cutDue(f.PTS) {
		// A Sink error is reported after the frame is muxed, so that the
		// new segment still starts with it.
		err := s.cut(Audio, f.DTS, s.elapsed+step, 0, false)
		return firstErr(err, s.afterPrimary(Audio, s.muxAudio(f, true, jumped)))
	}
	s.elapsed += step
	return s.afterPrimary(Audio, s.muxAudio(f, false, jumped))
}

func (s *Segmenter) writeVideo(f Frame) error {
	if !s.holding {
		return s.placeVideo(f)
	}
	if s.holdsVideo(f) {
		return s.holdVideo(f)
	}
	err := s.releaseHold()
	s.curPTS = f.PTS
	return firstErr(err, s.placeVideo(f))
}

// placeVideo muxes a video frame, cutting (or holding the cut) where it
// opens a segment.
func (s *Segmenter) placeVideo(f Frame) error {
	delta, jumped := s.observe(&s.vt, f.DTS, "video")
	if f.Key && (!s.open || s.pendingDisc) && (s.video.Width == 0 || s.video.Height == 0) {
		// A VP9 record carries no picture size: the keyframe that opens
		// the segment (and the Init) gives it.
		if v, err := s.video.WithKeyframe(f.Data); err == nil && v != s.video {
			s.video = v
			s.publishInfo()
		}
	}
	// Convert first: a malformed frame is rejected before anything is muxed.
	if err := s.mux.prepareVideo(s.video, f); err != nil {
		s.countDrop(DropMalformed)
		return err
	}
	if jumped {
		s.haveKey = false
	}
	if !s.open {
		if !f.Key {
			s.countDrop(DropBeforeKeyframe)
			return nil
		}
		s.noteKeyframe(f.DTS)
		err := s.openSegment(Video, f.DTS)
		return firstErr(err, s.afterVideo(s.muxVideo(f, true)))
	}
	if !f.Key && s.video.Codec != s.segVCodec {
		// The codec changed and its first keyframe has not come: nothing
		// of it goes into a segment that declares the old one.
		s.countDrop(DropBeforeKeyframe)
		return nil
	}
	step := delta
	if jumped {
		step = s.frameDuration(Video)
	}
	if f.Key {
		s.noteKeyframe(f.DTS)
		if s.pendingDisc || s.elapsed+step+cutTolerance >= s.target || s.cutDue(f.PTS) {
			return s.cutAtKey(f, s.elapsed+step, jumped)
		}
		if s.overCap(s.elapsed + step) {
			s.noteCap(s.elapsed+step, true)
			return s.cutAtKey(f, s.elapsed+step, jumped)
		}
	} else {
		s.framesSince++
		if s.overCap(s.elapsed + step) {
			// No keyframe in sight: cut here all the same (see
			// Config.MaxSegmentDuration). The new segment starts with a
			// frame that needs the previous ones to decode.
			s.noteCap(s.elapsed+step, false)
			err := s.cut(Video, f.DTS, s.elapsed+step, f.DTS, !jumped)
			return firstErr(err, s.afterVideo(s.muxVideo(f, true)))
		}
	}
	var err error
	if s.partDue {
		err = s.closeDuePart(f.DTS, !jumped)
	}
	s.elapsed += step
	return firstErr(err, s.afterVideo(s.muxVideo(f, false)))
}

// overCap reports whether the segment being built, were it d long, would
// pass a cap.
func (s *Segmenter) overCap(d time.Duration) bool {
	return d > s.cfg.MaxSegmentDuration || s.segBytes() >= s.cfg.MaxSegmentBytes
}

// segBytes is the size so far of the segment being built.
func (s *Segmenter) segBytes() int { return s.handed + len(s.out.buf) }

// noteCap counts and logs a segment cut at a cap.
func (s *Segmenter) noteCap(d time.Duration, atKey bool) {
	s.ctr.CappedSegments.Add(1)
	lvl := slog.LevelDebug
	if !s.capWarned {
		s.capWarned = true
		lvl = slog.LevelWarn
	}
	msg := "segment cap reached without a keyframe: cutting at a non-keyframe; players already playing carry on, players joining at the next segment may show a damaged picture until the next keyframe (set the encoder's keyframe interval to the segment duration)"
	if atKey {
		msg = "segment cap reached: cutting at this keyframe before the target duration"
	}
	s.log.Log(context.Background(), lvl, msg, "duration", d, "bytes", s.segBytes(),
		"max_duration", s.cfg.MaxSegmentDuration, "max_bytes", s.cfg.MaxSegmentBytes)
}

// noteKeyframe measures the GOP and, without VUI timing, the frame rate.
func (s *Segmenter) noteKeyframe(dts time.Duration) {
	frames := s.framesSince + 1
	s.framesSince = 0
	prev, ok := s.lastKey, s.haveKey
	s.lastKey, s.haveKey = dts, true
	if !ok {
		return
	}
	gop := dts - prev
	if gop <= 0 {
		return
	}
	tooLong := gop > s.target
	if tooLong && !s.gopWarned {
		s.gopWarned = true
		s.log.Warn("encoder keyframe interval is longer than the segment target; segments will be as long as the GOP",
			"gop", gop, "target", s.target)
	}
	s.mu.Lock()
	s.info.GOP = gop
	if tooLong {
		s.info.GOPTooLong = true
	}
	if v := s.info.Video; v != nil && s.video.FrameRate == 0 {
		fr := float64(frames) / gop.Seconds()
		if v.FrameRate != fr {
			nv := *v
			nv.FrameRate = fr
			s.info.Video = &nv
		}
	}
	s.mu.Unlock()
}

func (s *Segmenter) openSegment(k Kind, start time.Duration) error {
	s.open = true
	s.segStart = start
	s.segStartPTS = s.curPTS
	s.takeCuts(s.curPTS)
	s.elapsed = 0
	s.segDisc = s.pendingDisc && s.emitted > 0
	if s.segDisc {
		s.countDisc()
	}
	if s.pendingDisc {
		// The other track's next frame is compared with this new start, not
		// with its own pre-discontinuity history, so that one jump seen on
		// both tracks does not cut twice.
		other := &s.at
		if k == Audio {
			other = &s.vt
		}
		other.seen = false
	}
	s.pendingDisc = false
	s.discCause = discNone
	s.jumpLogged = false
	s.segVideo, s.segAudio = false, false
	s.pdtRefine = false
	if s.pdtWall.IsZero() || s.segDisc || start < s.pdtStart {
		// Never before the end of what was listed: the clock can be
		// behind a timeline that ran faster than real time.
		s.pdtWall, s.pdtStart, s.pdtShown = s.wallNow(), start, max(s.segStartPTS-start, 0)
		if s.pdtWall.Before(s.pdtEnd) {
			s.pdtWall = s.pdtEnd
		}
		s.pdtRefine = true
	}
	pdt := s.pdtWall.Add(start - s.pdtStart)
	if pdt.Before(s.lastPDT) {
		pdt = s.lastPDT
	}
	s.segPDT, s.lastPDT = pdt, pdt
	if cap(s.out.buf) == 0 {
		// One buffer per segment, pre-sized from the previous one (x1.25), so
		// that parts (subslices of it) rarely see it reallocated.
		c := s.nextCap
		if c == 0 {
			c = 64 << 10
		}
		s.out.buf = make([]byte, 0, c)
	}
	if s.video != nil {
		s.segVCodec = s.video.Codec
	}
	if s.audio != nil {
		s.segACodec = s.audio.Codec
	}
	in, newInit, err := s.mux.startSegment(s.video, s.audio)
	if newInit {
		if serr := s.sink.Init(in); serr != nil {
			err = fmt.Errorf("segmenter: sink: %w", serr)
		}
	}
	s.segInit = s.mux.initVersion()
	s.partStart = len(s.out.buf)
	s.partBase = s.partStart
	s.handed, s.maxPart = 0, 0
	s.partStartEl = 0
	s.resetPart()
	s.segParts, s.partsFree = s.partsFree, nil
	s.iframes, s.iframesFree = s.iframesFree, nil
	s.keyAt = s.keyAt[:0]
	s.out.keys = s.out.keys[:0]
	return err
}

// countDisc counts the discontinuity the segment being opened carries.
func (s *Segmenter) countDisc() {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.discCause {
	case discJump:
		s.ctr.TimestampJumps.Add(1)
		s.info.TimestampJumps++
	case discConfig:
		s.ctr.ConfigChanges.Add(1)
		s.info.ConfigChanges++
	}
}

// cut finishes the current segment with the given duration and opens the
// next one at start. nextVideo is the DTS of the frame that opens the next
// segment when it is a video frame on the same time base (known).
func (s *Segmenter) cut(k Kind, start, duration, nextVideo time.Duration, known bool) error {
	err := s.finish(duration, nextVideo, known)
	err = firstErr(err, s.openSegment(k, start))
	s.first = false
	return err
}

func (s *Segmenter) finish(duration, nextVideo time.Duration, known bool) error {
	var err error
	if s.partsOn {
		if s.partFrames > 0 {
			d := duration - s.partStartEl
			if d < 0 {
				d = 0
			}
			err = s.closePart(s.clampPart(d), nextVideo, known, true)
		}
	} else if ferr := s.mux.flush(nextVideo, known, s.frameDuration(Video)); ferr != nil {
		err = fmt.Errorf("segmenter: muxing: %w", ferr)
	}
	iframes := s.segIFrames(duration)
	data := s.out.buf
	size := s.handed + len(data)
	// Room for a GOP a quarter bigger than this one: enough for a steady
	// encoder, and every byte of slack is held for the segment's life.
	s.nextCap = len(data) + len(data)/4 + 64<<10
	if s.partsOnly {
		// Only the bytes before the first part and one part at a time.
		s.nextCap = s.partBase + s.maxPart + s.maxPart/4 + 16<<10
	}
	s.out.buf = nil
	if (s.cfg.ReuseBuffer || s.partsOnly) && cap(data) <= 2*s.nextCap {
		// The Sink is done with it once the Segment call returns; a
		// buffer grown for an outsized segment is let go.
		s.out.buf = data[:0]
	}
	s.open = false
	s.pdtEnd = s.segPDT.Add(duration)
	parts := s.segParts
	s.segParts = nil
	if size == 0 {
		return err
	}
	seg := Segment{
		Data:            data,
		Size:            size,
		Start:           s.segStart,
		StartPTS:        s.segStartPTS,
		Duration:        duration,
		ProgramDateTime: s.segPDT,
		Discontinuity:   s.segDisc,
		HasVideo:        s.segVideo,
		HasAudio:        s.segAudio,
		Parts:           parts,
		InitVersion:     s.segInit,
		IFrames:         iframes,
	}
	s.emitted++
	s.mu.Lock()
	s.info.Segments++
	s.mu.Unlock()
	if serr := s.sink.Segment(seg); serr != nil && err == nil {
		err = fmt.Errorf("segmenter: sink: %w", serr)
	}
	if s.cfg.ReuseBuffer || s.partsOnly {
		// Segment.Parts and IFrames, like Data, were the Sink's until it
		// returned.
		clear(parts)
		s.partsFree = parts[:0]
		if iframes != nil {
			s.iframesFree = iframes[:0]
		}
	}
	return err
}

// takeKeys moves the keyframe ranges the muxer wrote since the last call
// into the segment's IFrames, as offsets into the whole segment: with
// PartsOnly the buffer holds only the part being built, after the handed
// bytes.
func (s *Segmenter) takeKeys() {
	for _, r := range s.out.keys {
		s.iframes = append(s.iframes, IFrame{Offset: s.handed + r.start, Size: r.end - r.start})
	}
	s.out.keys = s.out.keys[:0]
}

// segIFrames completes the segment's IFrames, duration long: each keyframe
// lasts until the next one or the segment's end. Nil when it has none.
func (s *Segmenter) segIFrames(duration time.Duration) []IFrame {
	s.takeKeys()
	f := s.iframes
	s.iframes = nil
	if len(f) != len(s.keyAt) {
		// One range per keyframe muxed, unless muxing one failed (and
		// returned its error): no index rather than a wrong one.
		s.log.Error("keyframe ranges do not match the keyframes; segment without IFrames",
			"ranges", len(f), "keyframes", len(s.keyAt))
		s.iframesFree = f[:0]
		return nil
	}
	if len(f) == 0 {
		s.iframesFree = f
		return nil
	}
	for i := range f {
		end := duration
		if i+1 < len(s.keyAt) {
			end = s.keyAt[i+1]
		}
		f[i].Duration = end - s.keyAt[i]
	}
	return f
}

// muxVideo writes the video frame prepared by the muxer.
func (s *Segmenter) muxVideo(f Frame, segStart bool) error {
	o := muxOpts{
		randomAccess: f.Key || segStart,
		disc:         (segStart && s.segDisc) || s.jumpNow,
		jumped:       s.jumpNow,
		est:          s.frameDuration(Video),
	}
	if err := s.mux.writeVideo(f, o); err != nil {
		return err
	}
	if s.meta.pending.Load() || len(s.meta.q) > 0 {
		s.muxMetadata(f.PTS)
	}
	if f.Key {
		s.keyAt = append(s.keyAt, s.elapsed)
	}
	s.segVideo = true
	if !s.partPrimary {
		s.partPrimary = true
		s.partIndep = f.Key
	}
	s.partFrames++
	return nil
}

var errZeroSamples = errors.New("segmenter: audio frame of 0 samples")

// muxAudio writes one audio frame of the current configuration.
func (s *Segmenter) muxAudio(f Frame, segStart, jump bool) error {
	audioOnly := s.tracks&Video == 0
	o := muxOpts{
		// Audio-only parts are all independent (TS: each starts with
		// PAT/PMT).
		randomAccess: segStart || (audioOnly && s.partsOn && s.partFrames == 0),
		disc:         (segStart && s.segDisc) || jump,
		jumped:       jump,
		est:          s.frameDuration(Audio),
	}
	if s.audio.Codec != s.segACodec {
		// The codec changed: its frames wait for the next segment (cut at
		// the next keyframe), which declares it.
		s.countDrop(DropBeforeKeyframe)
		return nil
	}
	n, err := s.audio.FrameSamples(f.Data)
	if err != nil || n <= 0 {
		s.countDrop(DropMalformed)
		if err == nil {
			err = errZeroSamples
		}
		return err
	}
	s.audioSamples = n
	o.samples = n
	if err := s.mux.writeAudio(s.audio, f, o); err != nil {
		if m, ok := err.(malformedError); ok {
			s.countDrop(DropMalformed)
			return m.err
		}
		return err
	}
	if (s.meta.pending.Load() || len(s.meta.q) > 0) && !s.holding {
		// Not while a cut is held: a tag due before the keyframe's PTS
		// goes with the keyframe, into the segment it opens, as it did
		// before the hold.
		s.muxMetadata(f.DTS)
	}
	s.segAudio = true
	if audioOnly {
		s.partPrimary, s.partIndep = true, true
	}
	s.partFrames++
	return nil
}
