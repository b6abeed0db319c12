package playlist

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// The EXT-X-DATERANGE and CUE tags as written into media playlists, and
// read back from a stored playlist on a restart (daterange.go keeps the
// stream's cue state).

// appendDateRange writes one EXT-X-DATERANGE.
func appendDateRange(buf []byte, d *dateRange) []byte {
	// A quoted-string has no escapes (RFC 8216bis 4.2): the value goes
	// between the quotes as it is (the API refuses quotes and line
	// breaks); Go's quoting would turn a backslash into two.
	buf = append(buf, "#EXT-X-DATERANGE:ID=\""...)
	buf = append(buf, d.id...)
	buf = append(buf, '"')
	if d.class != "" {
		buf = append(buf, ",CLASS=\""...)
		buf = append(buf, d.class...)
		buf = append(buf, '"')
	}
	buf = append(buf, ",START-DATE=\""...)
	buf = d.start.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000Z07:00")
	buf = append(buf, '"')
	if d.ended {
		buf = append(buf, ",DURATION="...)
		buf = appendSeconds(buf, d.duration)
	}
	if d.planned > 0 {
		buf = append(buf, ",PLANNED-DURATION="...)
		buf = appendSeconds(buf, d.planned)
	}
	for _, a := range d.attrs {
		buf = append(buf, ',')
		buf = append(buf, a.Name...)
		buf = append(buf, '=')
		if a.Quoted {
			buf = append(buf, '"')
			buf = append(buf, a.Value...)
			buf = append(buf, '"')
		} else {
			buf = append(buf, a.Value...)
		}
	}
	buf = appendHexAttr(buf, ",SCTE35-CMD=", d.cmd)
	buf = appendHexAttr(buf, ",SCTE35-OUT=", d.out)
	buf = appendHexAttr(buf, ",SCTE35-IN=", d.in)
	return append(buf, '\n')
}

func appendHexAttr(buf []byte, name string, b []byte) []byte {
	if len(b) == 0 {
		return buf
	}
	buf = append(buf, name...)
	buf = append(buf, "0x"...)
	return hex.AppendEncode(buf, b)
}

// appendCueTag writes a segment's EXT-X-CUE tag.
func appendCueTag(buf []byte, c cueTag) []byte {
	switch c.kind {
	case cueTagOut:
		buf = append(buf, "#EXT-X-CUE-OUT"...)
		if c.duration > 0 {
			buf = append(buf, ":DURATION="...)
			buf = appendSeconds(buf, c.duration)
		}
		buf = append(buf, '\n')
	case cueTagCont:
		buf = append(buf, "#EXT-X-CUE-OUT-CONT:ElapsedTime="...)
		buf = appendSeconds(buf, c.elapsed)
		if c.duration > 0 {
			buf = append(buf, ",Duration="...)
			buf = appendSeconds(buf, c.duration)
		}
		buf = append(buf, '\n')
	case cueTagIn:
		buf = append(buf, "#EXT-X-CUE-IN\n"...)
	}
	return buf
}

// parseAttrs reads an attribute list (NAME=value,NAME="quoted",...) in
// order.
func parseAttrs(s string) ([]Attr, bool) {
	var out []Attr
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return nil, false
		}
		a := Attr{Name: name}
		if strings.HasPrefix(rest, "\"") {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, false
			}
			a.Value, a.Quoted, rest = rest[1:1+end], true, rest[2+end:]
		} else if i := strings.IndexByte(rest, ','); i >= 0 {
			a.Value, rest = rest[:i], rest[i:]
		} else {
			a.Value, rest = rest, ""
		}
		out = append(out, a)
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, false
		}
		s = rest[1:]
	}
	return out, true
}

// parseDateRange reads an EXT-X-DATERANGE fount wrote, for restore.
func parseDateRange(line string) (*dateRange, bool) {
	attrs, ok := parseAttrs(strings.TrimPrefix(line, "#EXT-X-DATERANGE:"))
	if !ok {
		return nil, false
	}
	d := &dateRange{}
	secs := func(v string) (time.Duration, bool) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1e9 {
			return 0, false
		}
		return time.Duration(f * float64(time.Second)), true
	}
	hexv := func(v string) []byte {
		b, _ := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X"))
		return b
	}
	for _, a := range attrs {
		switch {
		case a.Name == "ID":
			d.id = a.Value
		case a.Name == "CLASS":
			d.class = a.Value
		case a.Name == "START-DATE":
			t, err := time.Parse(time.RFC3339Nano, a.Value)
			if err != nil {
				return nil, false
			}
			d.start = t
		case a.Name == "DURATION":
			d.duration, d.ended = secs(a.Value)
		case a.Name == "PLANNED-DURATION":
			d.planned, _ = secs(a.Value)
		case a.Name == "SCTE35-OUT":
			d.out = hexv(a.Value)
		case a.Name == "SCTE35-IN":
			d.in = hexv(a.Value)
		case a.Name == "SCTE35-CMD":
			d.cmd = hexv(a.Value)
		case strings.HasPrefix(a.Name, "X-"):
			d.attrs = append(d.attrs, a)
		}
	}
	if d.id == "" || d.start.IsZero() {
		return nil, false
	}
	return d, true
}

// restoreCuesLocked takes the dateranges of a stored playlist and finds
// the break it left open (its SCTE35-OUT daterange without DURATION, or
// with --ad-markers cue its CUE-OUT without CUE-IN): that break stays
// open, and one with a planned duration still returns when it is over.
func (s *Stream) restoreCuesLocked(rs *restored) {
	s.dateranges = rs.dateranges
	for _, d := range s.dateranges {
		if len(d.out) > 0 || d.planned > 0 && d.class == "" {
			if d.ended {
				s.openBreak = nil
			} else {
				s.openBreak = d
			}
		}
	}
	if s.openBreak == nil && len(rs.segments) > 0 {
		last := rs.segments[len(rs.segments)-1]
		if k := last.cue.kind; k == cueTagOut || k == cueTagCont {
			// Only the cue tags tell of it: its start is where the
			// CUE-OUT was, or the elapsed time before the last segment.
			start, msn := last.pdt.Add(-last.cue.elapsed), last.msn
			for _, e := range rs.segments {
				if e.cue.kind == cueTagOut {
					start, msn = e.pdt, e.msn
				}
			}
			s.openBreak = &dateRange{id: "break-" + strconv.FormatInt(start.UnixMilli(), 10), start: start, msn: msn, planned: last.cue.duration, source: "restore"}
			if last.cue.kind == cueTagOut {
				s.openBreak.planned = last.cue.duration
			}
			s.dateranges = append(s.dateranges, s.openBreak)
		}
	}
	if b := s.openBreak; b != nil {
		if b.planned > 0 {
			s.pendingCues = append(s.pendingCues, Cue{Kind: CueIn, ID: b.id, Source: "restore", atDate: b.start.Add(b.planned)})
		}
		s.log.Info("an ad break open in the stored playlist stays open", "stream", s.path, "id", b.id, "start_date", b.start, "planned_duration", b.planned)
	}
}
