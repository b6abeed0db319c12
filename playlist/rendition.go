package playlist

import (
	"context"
	"strconv"
	"time"

	"github.com/fount-live/fount/storage"
)

// iframesName is a rendition's I-frame playlist, beside its media playlist.
const iframesName = "iframes.m3u8"

// alignLocked numbers the segment a rendition starts at start (its
// stream-timeline DTS) in step with the other renditions of its group.
// s.mu is held. Alternative audio renditions of a multitrack push number
// their own segments: players line them up by time, not number.
func (s *Stream) alignLocked(start time.Duration) {
	g := s.group
	if g == nil {
		return
	}
	if s.numbersOwnLocked() {
		return
	}
	fresh := !s.grouped
	// A WebVTT rendition's segment follows a media segment that its start
	// already numbered: it may always take that number, also past a gap
	// (its publisher left, or another rendition's took it over).
	a := g.align(start, s.nextMSN, fresh || s.pendingDisc || s.vtt.Load(), s.pendingDisc)
	if a.aligned {
		s.alignedSegs.Add(1)
		if s.misalignedSegs.Load() > 0 && s.lastMisaligned {
			s.log.Info("rendition lines up with the others again", "stream", s.path, "media_sequence", a.msn)
		}
		s.lastMisaligned = false
	} else {
		s.misalignedSegs.Add(1)
		s.totals.misaligned.Add(1)
		if !s.lastMisaligned {
			s.log.Warn("rendition's keyframes do not line up with the other renditions': players may stall or skip when switching to or from it",
				"stream", s.path, "media_sequence", a.msn, "start", start)
		}
		s.lastMisaligned = true
	}
	if a.msn > s.nextMSN {
		if len(s.window) > 0 {
			s.fillGapsLocked(a.msn)
		}
		s.nextMSN = a.msn
		s.open.msn = a.msn
	}
	if fresh && len(s.window) == 0 {
		g.mu.Lock()
		s.discSeq = g.discsBefore(s.nextMSN)
		g.mu.Unlock()
	}
	s.grouped = true
}

// numbersOwnLocked reports whether a rendition of a group numbers its
// segments on its own: the alternative audio of a multitrack push (not
// its WebVTT rendition, which follows the video's numbers).
func (s *Stream) numbersOwnLocked() bool {
	in := s.info.Load()
	return s.group != nil && s.group.multitrack && in != nil && in.VideoCodecs == "" && !in.Subtitles
}

// fillGapsLocked lists the numbers from s.nextMSN up to msn, which the
// other renditions made while this one was away, as EXT-X-GAP segments:
// the numbering stays in step and players skip them.
func (s *Stream) fillGapsLocked(msn uint64) {
	from := s.nextMSN
	if n := uint64(s.cfg.WindowSize); msn-from > n {
		// More than a window: what was listed before all slides out.
		from = msn - n
	}
	pdt := s.lastPDT
	for m := from; m < msn; m++ {
		s.group.mu.Lock()
		d, ok := s.group.durationOf(m)
		s.group.mu.Unlock()
		if !ok {
			d = time.Duration(s.target) * time.Second
		}
		init := -1
		if s.cfg.FMP4 {
			init = s.initVersion
		}
		e := &entry{msn: m, name: s.segmentName(m), duration: d, pdt: pdt, gap: true, init: init, iframeSeq: s.iframeSeq}
		pdt = pdt.Add(d)
		if m == from && from > s.nextMSN {
			// The window's numbers would jump: everything before goes.
			for _, old := range s.window {
				if old.discontinuity {
					s.discSeq++
				}
				s.retired = append(s.retired, retiredEntry{e: old, since: s.cfg.Now()})
			}
			s.window = s.window[:0]
		}
		s.appendLocked(e)
		s.recordLocked(e) // a recording lists no gap: a discontinuity where it was
	}
}

// groupRenderLocked brings the group's discontinuities into this
// rendition's window, records what a rendition report of it says, and
// returns the reports of the other renditions. s.mu is held.
func (s *Stream) groupRenderLocked() []renditionReport {
	g := s.group
	g.mu.Lock()
	for _, e := range s.window {
		if !e.discontinuity && g.isDisc(e.msn) {
			e.discontinuity = true
		}
	}
	if len(s.open.parts) > 0 && !s.open.discontinuity && g.isDisc(s.open.msn) {
		s.open.discontinuity = true
	}
	members := g.members
	g.mu.Unlock()

	lastMSN, lastPart := uint64(0), int64(-1)
	switch {
	case len(s.open.parts) > 0:
		lastMSN, lastPart = s.open.msn, int64(len(s.open.parts)-1)
	case len(s.window) > 0:
		e := s.window[len(s.window)-1]
		lastMSN = e.msn
		if len(e.parts) > 0 {
			lastPart = int64(len(e.parts) - 1)
		}
	}
	s.reportMSN.Store(lastMSN)
	s.reportPart.Store(lastPart)
	if s.cfg.PartTarget <= 0 || s.vtt.Load() {
		return nil // rendition reports are an LL-HLS tag; WebVTT has no parts
	}
	var reports []renditionReport
	for _, o := range members {
		if o == s || o.vtt.Load() || o.pl.Load() == nil {
			continue
		}
		reports = append(reports, renditionReport{uri: "../" + o.rendition + "/" + playlistName, lastMSN: o.reportMSN.Load(), lastPart: int(o.reportPart.Load())})
	}
	return reports
}

// renderIFramesLocked renders the rendition's I-frame playlist; nil when
// it has no keyframes listed. s.mu is held.
func (s *Stream) renderIFramesLocked() *rendered {
	var n int
	var longest time.Duration
	for _, e := range s.window {
		n += len(e.iframes)
		for _, f := range e.iframes {
			longest = max(longest, f.Duration)
		}
	}
	if n == 0 {
		return nil
	}
	version := 4 // EXT-X-BYTERANGE and EXT-X-I-FRAMES-ONLY
	if s.cfg.FMP4 {
		version = 6
	}
	buf := make([]byte, 0, 128+n*64)
	buf = append(buf, "#EXTM3U\n#EXT-X-VERSION:"...)
	buf = strconv.AppendInt(buf, int64(version), 10)
	buf = append(buf, "\n#EXT-X-TARGETDURATION:"...)
	buf = strconv.AppendInt(buf, int64(max(s.target, targetDurationFor(longest))), 10)
	buf = append(buf, "\n#EXT-X-MEDIA-SEQUENCE:"...)
	first := s.window[0].iframeSeq
	buf = strconv.AppendUint(buf, first, 10)
	buf = append(buf, '\n')
	// Discontinuities count by I-frame entry here: those of the listed
	// segments before their first keyframe are tagged below, so only the
	// rendition's own sequence carries over.
	if s.discSeq > 0 {
		buf = append(buf, "#EXT-X-DISCONTINUITY-SEQUENCE:"...)
		buf = strconv.AppendUint(buf, s.discSeq, 10)
		buf = append(buf, '\n')
	}
	buf = append(buf, "#EXT-X-I-FRAMES-ONLY\n"...)
	lastInit, pendingDisc := -1, false
	for _, e := range s.window {
		pendingDisc = pendingDisc || e.discontinuity
		for _, f := range e.iframes {
			if pendingDisc {
				buf = append(buf, "#EXT-X-DISCONTINUITY\n"...)
				pendingDisc = false
			}
			if s.cfg.FMP4 && e.init != lastInit {
				buf = append(buf, "#EXT-X-MAP:URI=\""...)
				buf = append(buf, initName(e.init)...)
				buf = append(buf, "\"\n"...)
				lastInit = e.init
			}
			buf = append(buf, "#EXTINF:"...)
			buf = appendSeconds(buf, f.Duration)
			buf = append(buf, ",\n#EXT-X-BYTERANGE:"...)
			buf = strconv.AppendInt(buf, f.Size, 10)
			buf = append(buf, '@')
			buf = strconv.AppendInt(buf, f.Offset, 10)
			buf = append(buf, '\n')
			buf = append(buf, e.name...)
			buf = append(buf, '\n')
		}
	}
	if s.state == StateEnded {
		buf = append(buf, "#EXT-X-ENDLIST\n"...)
	}
	return newRendered(buf, "i"+strconv.FormatUint(s.iframeSeq, 10)+"-"+string(s.state), s.cfg.Now(), s.target/2)
}

// publishIFrames makes the I-frame playlist visible, and stores a copy.
func (s *Stream) publishIFrames(r *rendered) {
	s.ipl.Store(r)
	if err := s.cfg.Store.Put(context.Background(), s.path+"/"+iframesName, storage.Object{Data: r.body, ContentType: playlistType, ModTime: r.modTime}); err != nil {
		s.totals.storageErrors.Add(1)
		s.log.Error("storing the I-frame playlist failed", "stream", s.path, "err", err)
	}
}
