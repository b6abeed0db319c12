package playlist

import (
	"math"
	"strconv"
	"time"
)

// entry is one segment of a stream as the playlist knows it.
type entry struct {
	msn           uint64
	name          string // URI relative to the playlist
	duration      time.Duration
	pdt           time.Time
	discontinuity bool
	data          []byte
}

// mediaPlaylist is what a render needs; kept apart from Stream so that
// rendering is a pure function that tests can drive directly.
type mediaPlaylist struct {
	targetDuration int // seconds
	discSeq        uint64
	segments       []*entry
	ended          bool
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

// render writes an RFC 8216 live media playlist into buf and returns it.
func (p *mediaPlaylist) render(buf []byte) []byte {
	buf = append(buf, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:"...)
	buf = strconv.AppendInt(buf, int64(p.targetDuration), 10)
	buf = append(buf, "\n#EXT-X-MEDIA-SEQUENCE:"...)
	var first uint64
	if len(p.segments) > 0 {
		first = p.segments[0].msn
	}
	buf = strconv.AppendUint(buf, first, 10)
	if p.discSeq > 0 {
		buf = append(buf, "\n#EXT-X-DISCONTINUITY-SEQUENCE:"...)
		buf = strconv.AppendUint(buf, p.discSeq, 10)
	}
	buf = append(buf, "\n#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	for _, s := range p.segments {
		// A segment's discontinuity counts in EXT-X-DISCONTINUITY-SEQUENCE
		// only once it has slid out, so a listed one is always tagged.
		if s.discontinuity {
			buf = append(buf, "#EXT-X-DISCONTINUITY\n"...)
		}
		buf = append(buf, "#EXT-X-PROGRAM-DATE-TIME:"...)
		buf = s.pdt.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z07:00")
		buf = append(buf, "\n#EXTINF:"...)
		buf = strconv.AppendFloat(buf, s.duration.Seconds(), 'f', 3, 64)
		buf = append(buf, ",\n"...)
		buf = append(buf, s.name...)
		buf = append(buf, '\n')
	}
	if p.ended {
		buf = append(buf, "#EXT-X-ENDLIST\n"...)
	}
	return buf
}
