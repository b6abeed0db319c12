package main

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// mediaPlaylist is what a viewer needs from a playlist. URIs alias the
// body they were parsed from and are valid until it is reused; slices are
// reused across parses, so following a playlist allocates little.
type mediaPlaylist struct {
	variant    []byte // a multivariant playlist's first variant; nothing else is set
	target     time.Duration
	mediaSeq   uint64
	partTarget time.Duration // > 0: LL-HLS
	holdBack   time.Duration // PART-HOLD-BACK
	ended      bool
	segs       []plSegment
	parts      []plPart // of all segments, in order; segments hold ranges
	open       plSegment
	hint       []byte // EXT-X-PRELOAD-HINT TYPE=PART URI
}

type plSegment struct {
	uri      []byte
	dur      time.Duration
	pdt      time.Time // zero when the playlist has none
	mapURI   []byte    // EXT-X-MAP in effect
	from, to int       // parts[from:to]
}

type plPart struct {
	uri         []byte
	dur         time.Duration
	independent bool
}

func (p *mediaPlaylist) msn(i int) uint64 { return p.mediaSeq + uint64(i) }

// openMSN is the media sequence number of the segment after the last
// complete one: the one the open parts belong to.
func (p *mediaPlaylist) openMSN() uint64 { return p.mediaSeq + uint64(len(p.segs)) }

func (p *mediaPlaylist) segParts(s *plSegment) []plPart { return p.parts[s.from:s.to] }

var errNotPlaylist = errors.New("not an HLS playlist (no #EXTM3U)")

// parse reads a media or multivariant playlist.
func (p *mediaPlaylist) parse(b []byte) error {
	*p = mediaPlaylist{segs: p.segs[:0], parts: p.parts[:0]}
	if !bytes.HasPrefix(b, []byte("#EXTM3U")) {
		return errNotPlaylist
	}
	var (
		cur       plSegment // being built: pdt, map, parts, duration
		haveInf   bool
		streamInf bool
		mapURI    []byte
		prevEnd   time.Time
	)
	cur.from = 0
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		if line[0] != '#' {
			if streamInf {
				if p.variant == nil {
					p.variant = line
				}
				streamInf = false
				continue
			}
			if !haveInf {
				continue
			}
			cur.uri, cur.to, cur.mapURI = line, len(p.parts), mapURI
			if cur.pdt.IsZero() && !prevEnd.IsZero() {
				cur.pdt = prevEnd
			}
			if !cur.pdt.IsZero() {
				prevEnd = cur.pdt.Add(cur.dur)
			}
			p.segs = append(p.segs, cur)
			cur, haveInf = plSegment{from: len(p.parts)}, false
			continue
		}
		tagName, val, _ := bytes.Cut(line, []byte{':'})
		switch string(tagName) {
		case "#EXT-X-STREAM-INF":
			streamInf = true
		case "#EXT-X-TARGETDURATION":
			p.target = seconds(val)
		case "#EXT-X-MEDIA-SEQUENCE":
			p.mediaSeq, _ = strconv.ParseUint(string(val), 10, 64)
		case "#EXT-X-PART-INF":
			p.partTarget = seconds(attr(val, "PART-TARGET"))
		case "#EXT-X-SERVER-CONTROL":
			p.holdBack = seconds(attr(val, "PART-HOLD-BACK"))
		case "#EXT-X-MAP":
			mapURI = attr(val, "URI")
		case "#EXT-X-PROGRAM-DATE-TIME":
			if t, err := time.Parse(time.RFC3339Nano, string(val)); err == nil {
				cur.pdt = t
			}
		case "#EXT-X-PART":
			p.parts = append(p.parts, plPart{uri: attr(val, "URI"), dur: seconds(attr(val, "DURATION")), independent: string(attr(val, "INDEPENDENT")) == "YES"})
		case "#EXTINF":
			d, _, _ := bytes.Cut(val, []byte{','})
			cur.dur, haveInf = seconds(d), true
		case "#EXT-X-PRELOAD-HINT":
			if string(attr(val, "TYPE")) == "PART" {
				p.hint = attr(val, "URI")
			}
		case "#EXT-X-ENDLIST":
			p.ended = true
		}
	}
	// Parts after the last complete segment belong to the open one.
	cur.to, cur.mapURI = len(p.parts), mapURI
	if cur.pdt.IsZero() {
		cur.pdt = prevEnd
	}
	p.open = cur
	return nil
}

// seconds parses a decimal number of seconds.
func seconds(b []byte) time.Duration {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// attr returns the value of NAME in an attribute list, unquoted.
func attr(list []byte, name string) []byte {
	for len(list) > 0 {
		var k, v []byte
		k, list, _ = bytes.Cut(list, []byte{'='})
		if len(list) > 0 && list[0] == '"' {
			end := bytes.IndexByte(list[1:], '"')
			if end < 0 {
				v, list = list[1:], nil
			} else {
				v, list = list[1:1+end], list[2+end:]
			}
			list = bytes.TrimPrefix(list, []byte{','})
		} else {
			v, list, _ = bytes.Cut(list, []byte{','})
		}
		if string(bytes.TrimSpace(k)) == name {
			return v
		}
	}
	return nil
}
