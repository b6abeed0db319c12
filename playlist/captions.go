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

// withCaptions puts the captions' EXT-X-MEDIA before the first variant or
// other EXT-X-MEDIA of an encoded multivariant playlist.
func (c *Captions) addTo(body string) string {
	i := strings.Index(body, "#EXT-X-MEDIA:")
	if j := strings.Index(body, "#EXT-X-STREAM-INF:"); i < 0 || j >= 0 && j < i {
		i = j
	}
	if i < 0 {
		return body
	}
	return body[:i] + c.mediaTag() + body[i:]
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
