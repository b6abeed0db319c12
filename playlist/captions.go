package playlist

import (
	"fmt"
	"strings"
)

// A stream whose video carries CEA-608 captions is served as a group of
// one rendition, CaptionRendition, so that its URL serves a multivariant
// playlist, the only place HLS signals captions (RFC 8216bis §4.4.6.1,
// §4.4.6.2: EXT-X-MEDIA TYPE=CLOSED-CAPTIONS and the CLOSED-CAPTIONS
// attribute of EXT-X-STREAM-INF). Like any group, it keeps that shape
// until it is removed: later publishes to it, with or without captions,
// feed the same rendition.

// CaptionRendition is the rendition a captioned stream's publisher feeds:
// APP/NAME/main/index.m3u8, beside APP/NAME/index.m3u8, the multivariant
// playlist.
const CaptionRendition = "main"

// ccGroup is the GROUP-ID of the captions' EXT-X-MEDIA.
const ccGroup = "cc"

// Captions describe a stream's CEA-608 service for players: CC1, the
// field-1 primary service that encoders fill.
type Captions struct {
	Name     string // NAME, what the player's menu shows
	Language string // LANGUAGE, a BCP 47 tag
}

// Validate refuses values that cannot be quoted-string attributes, or a
// language that is no BCP 47 tag shape.
func (c Captions) Validate() error {
	if c.Name == "" || strings.ContainsAny(c.Name, "\"\r\n") {
		return fmt.Errorf("captions name %q: want a non-empty name without quotes or line breaks", c.Name)
	}
	for _, part := range strings.Split(c.Language, "-") {
		if len(part) == 0 || len(part) > 8 || strings.Trim(part, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
			return fmt.Errorf("captions language %q: want a BCP 47 tag such as en or pt-BR", c.Language)
		}
	}
	return nil
}

// mediaTag is the EXT-X-MEDIA line (grafov/m3u8 writes no INSTREAM-ID).
func (c *Captions) mediaTag() string {
	return `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="` + ccGroup + `",NAME="` + c.Name +
		`",LANGUAGE="` + c.Language + `",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"` + "\n"
}

// addTo puts an EXT-X-MEDIA line before the first variant or other
// EXT-X-MEDIA of an encoded multivariant playlist.
func (*Captions) addTo(body, line string) string {
	i := strings.Index(body, "#EXT-X-MEDIA:")
	if j := strings.Index(body, "#EXT-X-STREAM-INF:"); i < 0 || j >= 0 && j < i {
		i = j
	}
	if i < 0 {
		return body
	}
	return body[:i] + line + body[i:]
}

// Captioned turns a stream just published (Publish), that never had a
// segment, into the captioned parent of one rendition, CaptionRendition,
// and returns that rendition, which the publisher then feeds. A stream
// already captioned returns its rendition. A stream with segments keeps
// its shape: ErrShape.
func (r *Registry) Captioned(s *Stream, cc Captions) (*Stream, error) {
	r.mu.Lock()
	if g := s.variants(); g == nil {
		s.mu.Lock()
		fresh := s.nextMSN == 0 && len(s.window) == 0 && len(s.open.parts) == 0 && s.segmentsTotal == 0
		if fresh {
			s.vars.Store(&variants{parent: s, captions: &cc})
			s.pl.Store(nil)
		}
		s.mu.Unlock()
		if !fresh {
			r.mu.Unlock()
			return nil, fmt.Errorf("captions on %s: %w", s.path, ErrShape)
		}
	} else if g.captions == nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("captions on %s: %w: it has renditions", s.path, ErrShape)
	}
	rend, err := r.memberLocked(s, CaptionRendition)
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("captions on %s: %w", s.path, err)
	}
	s.variants().changed()
	return rend, nil
}

// Captions returns the caption service a captioned stream (or its
// rendition) signals; nil for any other stream.
func (s *Stream) Captions() *Captions {
	g := s.variants()
	if g == nil {
		g = s.group
	}
	if g == nil {
		return nil
	}
	return g.captions
}

// A stream that signals captions — a captioned stream, or a group of
// renditions that signals them (CaptionGroup) — and whose encoder also
// sends caption text (onTextData, onCaption) gets a WebVTT subtitle
// rendition, SubtitlesRendition, listed as EXT-X-MEDIA TYPE=SUBTITLES
// from its first segment on. Its segments are WebVTT files (segN.vtt)
// lined up with the media's by start time, whole (no LL-HLS parts) and
// never in fMP4. One media rendition's publisher feeds it at a time: the
// one that holds it live (Subtitles).

// SubtitlesRendition is the WebVTT rendition of a captioned stream or of
// a group: APP/NAME/subs/index.m3u8.
const SubtitlesRendition = "subs"

// subsGroup is the GROUP-ID of the subtitles' EXT-X-MEDIA.
const subsGroup = "subs"

const vttType = "text/vtt; charset=utf-8"

// Subtitles returns the WebVTT rendition of rend's group, made at the
// first call, for rend's publisher to feed; its segments are handed over
// as WebVTT. The group must signal captions (its NAME and LANGUAGE are
// the subtitles'). While another publisher feeds it (it is live), it
// returns ErrStreamBusy; once that one leaves, the next call takes it
// over.
func (r *Registry) Subtitles(rend *Stream) (*Stream, error) {
	g := rend.group
	if g == nil || rend.vtt.Load() {
		return nil, fmt.Errorf("subtitles of %s: %w: not a captioned stream or a rendition", rend.path, ErrShape)
	}
	cc := g.signalled()
	if cc == nil {
		return nil, fmt.Errorf("subtitles of %s: %w: its multivariant playlist signals no captions", rend.path, ErrShape)
	}
	r.mu.Lock()
	s, err := r.memberLocked(g.parent, SubtitlesRendition)
	if err == nil {
		s.vtt.Store(true) // before its first segment
	}
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("subtitles of %s: %w", rend.path, err)
	}
	s.SetInfo(MediaInfo{Name: cc.Name, Language: cc.Language, Subtitles: true})
	g.changed() // live again (a publisher back, or another's taking over): listed again
	return s, nil
}

// subtitlesTag is the EXT-X-MEDIA line of a subtitles rendition.
func subtitlesTag(info *MediaInfo, uri string) string {
	return `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="` + subsGroup + `",NAME="` + info.Name + `",LANGUAGE="` + info.Language +
		`",DEFAULT=NO,AUTOSELECT=YES,URI="` + uri + `"` + "\n"
}

// A stream with renditions (grouped pushes, or a multitrack push) whose
// video carries captions signals them too, when a rendition finds them
// before the group's multivariant playlist is first rendered: its
// players never see the playlist change. Its renditions are the encoder's,
// so nothing else changes.

// signalled is the caption service the group's multivariant playlist
// lists; nil for none.
func (g *variants) signalled() *Captions {
	if g.captions != nil {
		return g.captions
	}
	return g.groupCC.Load()
}

// CaptionGroup has the group of rendition rend signal cc, and reports
// whether it does: true when it already did, or when its multivariant
// playlist was never rendered; false for a stream without renditions.
func (r *Registry) CaptionGroup(rend *Stream, cc Captions) bool {
	g := rend.group
	if g == nil {
		return false
	}
	if g.signalled() != nil {
		return true
	}
	g.renderMu.Lock() // no render in between
	ok := g.parent.pl.Load() == nil
	if ok {
		g.groupCC.Store(&cc)
	}
	g.renderMu.Unlock()
	return ok
}

// SignalledCaptions returns the caption service the stream's (or its
// group's) multivariant playlist lists: a captioned stream's, or a group
// of renditions' (CaptionGroup); nil for none.
func (s *Stream) SignalledCaptions() *Captions {
	g := s.variants()
	if g == nil {
		g = s.group
	}
	if g == nil {
		return nil
	}
	return g.signalled()
}
