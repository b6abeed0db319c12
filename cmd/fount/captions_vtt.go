package main

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
)

// Caption text (onTextData, onCaption) becomes WebVTT segments of the
// captioned stream's subtitles rendition, one per media segment, covering
// the same time (docs/markers.md, "Captions"). A text shows from its
// timestamp until the next text (an empty one clears it) or for
// maxCueDuration at most; a cue that spans segments is cut at their
// boundaries, each piece in its segment, so that players show it on
// without a duplicate.

const (
	maxCueDuration = 4 * time.Second
	maxCues        = 64 // texts kept for the segments to come
)

type vttCue struct {
	at   time.Duration
	text string // "" clears
}

// vttTrack is one publish's caption text, on the publisher's goroutine.
type vttTrack struct {
	cues []vttCue
	buf  []byte
}

func (v *vttTrack) add(at time.Duration, text string) {
	if n := len(v.cues); n > 0 && at < v.cues[n-1].at {
		at = v.cues[n-1].at // a text does not go back in time
	}
	if len(v.cues) >= maxCues {
		v.cues = append(v.cues[:0], v.cues[1:]...)
	}
	v.cues = append(v.cues, vttCue{at: at, text: text})
}

// end is cue i's end as known now.
func (v *vttTrack) end(i int) time.Duration {
	e := v.cues[i].at + maxCueDuration
	if i+1 < len(v.cues) {
		e = min(e, v.cues[i+1].at)
	}
	return e
}

// segment returns the WebVTT segment of [start, start+dur): its
// X-TIMESTAMP-MAP puts LOCAL 0 at start's 90 kHz MPEG-TS time, the media's
// timestamp there (RFC 8216 §3.5). The bytes are valid until the next call.
func (v *vttTrack) segment(start, dur time.Duration) []byte {
	end := start + dur
	b := append(v.buf[:0], "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:"...)
	b = strconv.AppendInt(b, mpegTS(start), 10)
	b = append(b, ",LOCAL:00:00:00.000\n"...)
	keep := 0
	for i, c := range v.cues {
		ce := v.end(i)
		if ce <= start && i+1 < len(v.cues) {
			keep = i + 1 // over: forgotten
			continue
		}
		if c.text == "" || ce <= start || c.at >= end {
			continue
		}
		b = append(b, '\n')
		b = appendVTTTime(b, max(c.at, start)-start)
		b = append(b, " --> "...)
		b = appendVTTTime(b, min(ce, end)-start)
		b = append(b, '\n')
		b = appendCueText(b, c.text)
		b = append(b, '\n')
	}
	v.cues = append(v.cues[:0], v.cues[keep:]...)
	v.buf = b
	return b
}

// mpegTS is d in 90 kHz ticks, modulo 2^33, as fount's segments stamp it.
func mpegTS(d time.Duration) int64 {
	return (int64(d)/100000*9 + int64(d)%100000*9/100000) & (1<<33 - 1)
}

func appendVTTTime(b []byte, d time.Duration) []byte {
	ms := d.Milliseconds()
	pad := func(b []byte, v int64, n int) []byte {
		s := strconv.FormatInt(v, 10)
		for range n - len(s) {
			b = append(b, '0')
		}
		return append(b, s...)
	}
	b = pad(b, ms/3600000, 2)
	b = append(b, ':')
	b = pad(b, ms/60000%60, 2)
	b = append(b, ':')
	b = pad(b, ms/1000%60, 2)
	b = append(b, '.')
	return pad(b, ms%1000, 3)
}

// appendCueText escapes text for a cue payload: no markup, no "-->", no
// blank line (which would end the cue).
func appendCueText(b []byte, text string) []byte {
	text = strings.ReplaceAll(text, "\r", "")
	first := true
	for line := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !first {
			b = append(b, '\n')
		}
		first = false
		for _, r := range line {
			switch r {
			case '&':
				b = append(b, "&amp;"...)
			case '<':
				b = append(b, "&lt;"...)
			case '>':
				b = append(b, "&gt;"...)
			default:
				b = append(b, string(r)...)
			}
		}
	}
	return b
}

// CaptionText takes a caption text message: the stream is captioned (at
// once, if its shape is not chosen yet) and gets its subtitles rendition.
//
// In a group of renditions (grouped pushes; a multitrack publisher's text
// goes to its first video track's rendition), the group's one WebVTT
// rendition is fed by one rendition's publisher at a time: the first
// whose text comes, until it leaves. The others keep their texts too (an
// encoder with one subtitle stream sends the same on every output), and
// the first of them to find the subtitles free, at a text or a segment,
// takes them over from its next segment on, without a discontinuity.
func (s *session) CaptionText(at time.Duration, ct ingest.CaptionText) {
	if s.ccCfg.Mode == "off" {
		return
	}
	if s.stream.IsGroup() {
		// A multitrack publisher's own session: its text is timed by, and
		// served beside, its first video track.
		if s.textTo != nil {
			s.textTo.CaptionText(at, ct)
		} else if !s.cc.textLogged {
			s.cc.textLogged = true
			s.log.Info("caption text is not served: it came before the publisher's first video track")
		}
		return
	}
	at += s.shift.off
	if s.stream.Rendition() != "" && s.stream.SignalledCaptions() == nil {
		// A rendition: the group signals captions, with this text, if its
		// multivariant playlist never went out.
		s.captionGroup("caption text")
	} else if s.stream.Captions() == nil && !s.cc.decided && s.stream.Rendition() == "" {
		s.cc.decided = true // the text comes first: it decides
		s.captioned()
	}
	if s.stream.SignalledCaptions() == nil {
		if !s.cc.textLogged {
			s.cc.textLogged = true
			if s.stream.Rendition() != "" {
				s.log.Info("caption text is not served: the stream's multivariant playlist went out without captions (see --captions on)")
			} else {
				s.log.Info("caption text is not served: the stream's shape was fixed without captions (see --captions on)")
			}
		}
		return
	}
	if s.vtt == nil {
		s.vtt = &vttTrack{}
	}
	s.cc.texts.Add(1)
	s.vtt.add(at, ct.Text)
	s.claimSubtitles()
}

// claimSubtitles has the session feed the stream's WebVTT rendition, if
// no other publisher does.
func (s *session) claimSubtitles() {
	if s.subs != nil || s.vtt == nil {
		return
	}
	subs, err := s.pub.reg.Subtitles(s.stream)
	if errors.Is(err, playlist.ErrStreamBusy) {
		if !s.cc.textLogged {
			s.cc.textLogged = true
			s.log.Info("caption text of this rendition is not served while another rendition's publisher feeds the subtitles; it takes them over if that one leaves")
		}
		return
	}
	if err != nil {
		if !s.cc.textLogged {
			s.cc.textLogged = true
			s.log.Warn("caption text is not served", "err", err)
		}
		return
	}
	s.subs = subs
	s.log.Info("caption text: serving a WebVTT subtitles rendition", "rendition", subs.Path())
}

// subtitlesSegment hands the subtitles rendition the WebVTT segment of a
// media segment just handed over.
func (s *session) subtitlesSegment(seg segmenter.Segment) {
	if s.subs == nil {
		s.claimSubtitles() // another rendition's publisher may have left
		if s.subs == nil {
			return
		}
	}
	if err := s.subs.Segment(playlist.Segment{
		Data: s.vtt.segment(seg.Start, seg.Duration), Duration: seg.Duration,
		ProgramDateTime: seg.ProgramDateTime, Discontinuity: seg.Discontinuity, Start: seg.Start, StartPTS: seg.StartPTS,
	}); err != nil {
		s.log.Warn("a WebVTT segment was not stored", "err", err)
	}
}
