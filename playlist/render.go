package playlist

import (
	"math"
	"strconv"
	"time"
)

// entry is one complete segment of a stream as the playlist knows it.
type entry struct {
	msn           uint64
	name          string // URI relative to the playlist
	duration      time.Duration
	pdt           time.Time
	discontinuity bool
	init          int // fMP4: init segment version; -1 for TS
	size          int64
	parts         []*part
	file          *memFile // holds the segment (and its parts, most often); nil on the heap
	partsFile     *memFile // the parts' own file, when the segment could not share it
	gap           bool     // EXT-X-GAP: a rendition's number with no media (it joined late or reconnected)
	iframes       []IFrame // its video keyframes, for the I-frame playlist
	iframeSeq     uint64   // I-frame playlist number of its first keyframe
	evicted       bool     // DVR: left the memory window (queued in Stream.evicted)
	missing       bool     // storing it failed: served from memory while listed, but not recorded
	lines         []byte   // its rendered lines without parts, made on first need (render)
	key           *segKey  // Config.Encrypt: its key and IV (encrypt.go)
	cue           cueTag   // its EXT-X-CUE tag (daterange.go)
}

// part is one LL-HLS partial segment.
type part struct {
	name        string
	duration    time.Duration
	independent bool
	data        []byte // until its segment is finished (borrowed from the segmenter)
	obj         *object
}

// openSegment is the segment being built: its parts are listed after the
// last complete segment.
type openSegment struct {
	msn           uint64
	discontinuity bool
	init          int
	parts         []*part
	file          *memFile // the parts' memory file; nil on the heap
	end           int64    // where the next part goes in file
	allInFile     bool     // every part so far went to file, in order
	due           bool     // the last part is SegmentDue: the next one is likely the next segment's first
	key           *segKey  // Config.Encrypt: the key and IV of the segment and its parts
	clear         []byte   // Config.Encrypt: the parts' clear bytes, for the segment's own encryption
}

// renditionReport is an EXT-X-RENDITION-REPORT for another rendition of
// the same stream.
type renditionReport struct {
	uri      string
	lastMSN  uint64
	lastPart int
}

// mediaPlaylist is what a render needs; kept apart from Stream so that
// rendering is a pure function that tests can drive directly.
type mediaPlaylist struct {
	targetDuration int // seconds
	discSeq        uint64
	segments       []*entry
	ended          bool
	fmp4           bool
	initName       func(version int) string

	// Low-latency HLS; partTarget == 0 means classic HLS.
	partTarget   time.Duration
	partHoldBack time.Duration // what a player's live latency settles near
	open         *openSegment  // may have no parts yet
	hint         string        // URI of the next part, for EXT-X-PRELOAD-HINT
	reports      []renditionReport

	// Ad breaks and interstitials (daterange.go).
	dateranges []*dateRange
	markers    AdMarkers
}

// targetDurationFor returns the EXT-X-TARGETDURATION for a segment duration:
// RFC 8216 4.3.3.1 requires every EXTINF, rounded to the nearest integer, to
// be <= the target.
func targetDurationFor(d time.Duration) int {
	t := int(math.Round(d.Seconds()))
	if t < 1 {
		t = 1
	}
	return t
}

// canSkipUntil is the EXT-X-SERVER-CONTROL CAN-SKIP-UNTIL: the spec wants at
// least six target durations.
func (p *mediaPlaylist) canSkipUntil() time.Duration {
	return 6 * time.Duration(p.targetDuration) * time.Second
}

func appendSeconds(buf []byte, d time.Duration) []byte {
	return strconv.AppendFloat(buf, d.Seconds(), 'f', 3, 64)
}

// version is the lowest EXT-X-VERSION that covers the tags used:
// EXT-X-MAP in a media playlist needs 6, EXT-X-SKIP needs 9 (and LL-HLS
// players expect it with parts).
func (p *mediaPlaylist) version() int {
	switch {
	case p.partTarget > 0:
		return 9
	case p.fmp4:
		return 6
	}
	return 3
}

// render writes an RFC 8216bis media playlist into buf. skip asks for a
// delta update (EXT-X-SKIP) as requested with _HLS_skip=YES.
func (p *mediaPlaylist) render(buf []byte, skip bool) []byte {
	ll := p.partTarget > 0
	buf = append(buf, "#EXTM3U\n#EXT-X-VERSION:"...)
	buf = strconv.AppendInt(buf, int64(p.version()), 10)
	buf = append(buf, "\n#EXT-X-TARGETDURATION:"...)
	buf = strconv.AppendInt(buf, int64(p.targetDuration), 10)
	buf = append(buf, '\n')
	if ll {
		buf = append(buf, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL="...)
		buf = appendSeconds(buf, p.canSkipUntil())
		buf = append(buf, ",PART-HOLD-BACK="...)
		buf = appendSeconds(buf, p.partHoldBack)
		buf = append(buf, "\n#EXT-X-PART-INF:PART-TARGET="...)
		buf = appendSeconds(buf, p.partTarget)
		buf = append(buf, '\n')
	}
	buf = append(buf, "#EXT-X-MEDIA-SEQUENCE:"...)
	var first uint64
	if len(p.segments) > 0 {
		first = p.segments[0].msn
	} else if p.open != nil {
		first = p.open.msn
	}
	buf = strconv.AppendUint(buf, first, 10)
	buf = append(buf, '\n')

	segs := p.segments
	var skipped int
	discSeq := p.discSeq
	if skip && ll {
		skipped = p.skippable()
		segs = segs[skipped:]
	}
	if discSeq > 0 {
		buf = append(buf, "#EXT-X-DISCONTINUITY-SEQUENCE:"...)
		buf = strconv.AppendUint(buf, discSeq, 10)
		buf = append(buf, '\n')
	}
	buf = append(buf, "#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	if skipped > 0 {
		buf = append(buf, "#EXT-X-SKIP:SKIPPED-SEGMENTS="...)
		buf = strconv.AppendInt(buf, int64(skipped), 10)
		buf = append(buf, '\n')
	}

	// Parts are listed only near the live edge: for the segments that end
	// within three target durations of it (rfc8216bis 6.2.2).
	partsFrom := len(segs)
	if ll {
		var tail time.Duration
		for partsFrom > 0 && tail < 3*time.Duration(p.targetDuration)*time.Second {
			partsFrom--
			tail += segs[partsFrom].duration
		}
	}
	// Dateranges whose segment is not listed (slid out: an open break;
	// skipped in a delta update, which repeats them) come first; the
	// others just before their segment.
	var firstListed uint64
	if len(segs) > 0 {
		firstListed = segs[0].msn
	} else if p.open != nil {
		firstListed = p.open.msn
	}
	drs := p.markers.dateranges() && len(p.dateranges) > 0
	if drs {
		for _, d := range p.dateranges {
			if d.msn < firstListed || len(segs) == 0 || d.msn > segs[len(segs)-1].msn {
				buf = appendDateRange(buf, d)
			}
		}
	}
	cues := p.markers.cueTags()
	lastInit := -1
	keyed := false // an EXT-X-KEY is in force: an EXT-X-MAP must end it (keyNone)
	for i, s := range segs {
		// A discontinuity counts in EXT-X-DISCONTINUITY-SEQUENCE only once
		// its segment has slid out, so a listed one is always tagged.
		if s.discontinuity {
			buf = append(buf, "#EXT-X-DISCONTINUITY\n"...)
		}
		if p.fmp4 && s.init != lastInit {
			if keyed {
				buf = append(buf, keyNone...)
				keyed = false
			}
			buf = p.appendMap(buf, s.init)
			lastInit = s.init
		}
		if keyed && s.key == nil {
			buf = append(buf, keyNone...) // a clear segment after encrypted ones (restored)
		}
		keyed = s.key != nil
		if drs {
			for _, d := range p.dateranges {
				if d.msn == s.msn {
					buf = appendDateRange(buf, d)
				}
			}
		}
		if cues && s.cue.kind != cueTagNone {
			buf = appendCueTag(buf, s.cue)
		}
		if i >= partsFrom {
			buf = s.appendLines(buf, true)
			continue
		}
		// Away from the live edge a segment's lines never change: made
		// once, they are copied on every render (a 2 h DVR window lists
		// 3,600 segments, rendered again on every part).
		if s.lines == nil {
			s.lines = s.appendLines(make([]byte, 0, 80), false)
		}
		buf = append(buf, s.lines...)
	}
	if ll && p.open != nil && !p.ended {
		if len(p.open.parts) > 0 {
			if p.open.discontinuity {
				buf = append(buf, "#EXT-X-DISCONTINUITY\n"...)
			}
			if p.fmp4 && p.open.init != lastInit {
				if keyed {
					buf = append(buf, keyNone...)
					keyed = false
				}
				buf = p.appendMap(buf, p.open.init)
			}
			if p.open.key != nil {
				buf = appendKeyLine(buf, p.open.key, "")
			} else if keyed {
				buf = append(buf, keyNone...)
			}
			buf = appendParts(buf, p.open.parts)
		}
		if p.hint != "" {
			buf = append(buf, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""...)
			buf = append(buf, p.hint...)
			buf = append(buf, "\"\n"...)
		}
	}
	for _, r := range p.reports {
		buf = append(buf, "#EXT-X-RENDITION-REPORT:URI=\""...)
		buf = append(buf, r.uri...)
		buf = append(buf, "\",LAST-MSN="...)
		buf = strconv.AppendUint(buf, r.lastMSN, 10)
		if r.lastPart >= 0 {
			buf = append(buf, ",LAST-PART="...)
			buf = strconv.AppendInt(buf, int64(r.lastPart), 10)
		}
		buf = append(buf, '\n')
	}
	if p.ended {
		buf = append(buf, "#EXT-X-ENDLIST\n"...)
	}
	return buf
}

// appendLines writes the segment's EXT-X-KEY, EXT-X-PROGRAM-DATE-TIME, its parts if
// asked for, EXT-X-GAP, EXTINF and URI.
func (e *entry) appendLines(buf []byte, parts bool) []byte {
	if e.key != nil {
		// Its own key line, IV and all, before each segment: a delta
		// update or a sliding window never loses the key of the first
		// segment it lists.
		buf = appendKeyLine(buf, e.key, "")
	}
	buf = append(buf, "#EXT-X-PROGRAM-DATE-TIME:"...)
	buf = e.pdt.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z07:00")
	buf = append(buf, '\n')
	if parts {
		buf = appendParts(buf, e.parts)
	}
	if e.gap {
		buf = append(buf, "#EXT-X-GAP\n"...)
	}
	buf = append(buf, "#EXTINF:"...)
	buf = appendSeconds(buf, e.duration)
	buf = append(buf, ",\n"...)
	buf = append(buf, e.name...)
	return append(buf, '\n')
}

// skippable counts the segments a delta update leaves out: those older
// than CAN-SKIP-UNTIL from the live edge.
func (p *mediaPlaylist) skippable() int {
	var tail time.Duration
	keep := len(p.segments)
	for keep > 0 && tail+p.segments[keep-1].duration <= p.canSkipUntil() {
		tail += p.segments[keep-1].duration
		keep--
	}
	return keep
}

func (p *mediaPlaylist) appendMap(buf []byte, version int) []byte {
	buf = append(buf, "#EXT-X-MAP:URI=\""...)
	buf = append(buf, p.initName(version)...)
	return append(buf, "\"\n"...)
}

func appendParts(buf []byte, parts []*part) []byte {
	for _, pt := range parts {
		buf = append(buf, "#EXT-X-PART:DURATION="...)
		buf = strconv.AppendFloat(buf, pt.duration.Seconds(), 'f', 5, 64)
		buf = append(buf, ",URI=\""...)
		buf = append(buf, pt.name...)
		buf = append(buf, '"')
		if pt.independent {
			buf = append(buf, ",INDEPENDENT=YES"...)
		}
		buf = append(buf, '\n')
	}
	return buf
}
