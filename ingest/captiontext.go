package ingest

import (
	"errors"
	"fmt"
	"time"
)

// Caption text sent as AMF0 data messages beside the media, which fount
// turns into a WebVTT subtitle rendition (docs/markers.md, "Captions"):
//
//   - onTextData with an ECMA array {type: "Text", text: "..."}, as
//     ffmpeg's FLV muxer writes a text subtitle stream (libavformat
//     flvenc.c) and its RTMP output sends it; Wowza's caption injection
//     adds language and trackid ({text, language, trackid}).
//   - onCaption with an object {text: "..."} or a string, as some caption
//     inserters send.
//
// Neither carries a duration: a text shows until the next one (an empty
// text clears it), for at most a few seconds (the session decides).

// CaptionText is one caption text message.
type CaptionText struct {
	Text     string
	Language string // "" when not sent
	TrackID  int    // Wowza's trackid; 0 when not sent
}

// CaptionTextSession is implemented by a Session that takes caption text;
// at is on the media's timeline.
type CaptionTextSession interface {
	CaptionText(at time.Duration, ct CaptionText)
}

// The data messages read as caption text.
const (
	onTextData = "onTextData"
	onCaption  = "onCaption"
)

// captionText hands a caption text data message to the session.
func (h *handler) captionText(ts uint32, name string, body []byte) {
	cs, ok := h.sess.(CaptionTextSession)
	if !ok || h.sess == nil {
		return
	}
	ct, err := parseCaptionText(name, body)
	if err != nil {
		// Advisory, like metadata: a line, never a dropped stream.
		if !h.badTextLogged {
			h.badTextLogged = true
			h.log.Warn("ignoring unreadable caption text (logged once per publish)", "message", name, "err", err)
		}
		return
	}
	// On the media's timeline: the last media message's, moved by this
	// message's distance from it (32-bit, so across a wrap too).
	last := uint32(h.dts.Milliseconds())
	at := h.dts + time.Duration(int32(ts-last))*time.Millisecond
	cs.CaptionText(max(at, 0), ct)
}

// parseCaptionText reads the AMF0 values after an onTextData or onCaption
// name: an object or ECMA array with a text property, or (onCaption) a
// string.
func parseCaptionText(name string, body []byte) (CaptionText, error) {
	if err := checkAMF0(body, 1); err != nil {
		return CaptionText{}, fmt.Errorf("%s: %w", name, err)
	}
	r := amf0Reader{b: body}
	if len(body) > 0 && (body[0] == amf0String || body[0] == amf0LongString) {
		v, err := r.scalar()
		if err != nil {
			return CaptionText{}, fmt.Errorf("%s: %w", name, err)
		}
		return CaptionText{Text: string(v.str)}, nil
	}
	isObj, err := r.object()
	if err != nil || !isObj {
		return CaptionText{}, fmt.Errorf("%s: not an object or string (%v)", name, err)
	}
	var ct CaptionText
	found := false
	err = r.properties(func(k []byte) error {
		switch string(k) {
		case "text", "language", "lang", "trackid":
			v, err := r.scalar()
			if err != nil {
				return err
			}
			isStr := v.marker == amf0String || v.marker == amf0LongString
			switch string(k) {
			case "text":
				if !isStr {
					return errors.New("text is not a string")
				}
				ct.Text, found = string(v.str), true
			case "trackid":
				ct.TrackID = int(v.number())
			default:
				if isStr && len(v.str) <= 35 { // a BCP 47 tag, or an ISO 639-2 code
					ct.Language = string(v.str)
				}
			}
			return nil
		}
		return r.skip()
	})
	if err != nil {
		return CaptionText{}, fmt.Errorf("%s: %w", name, err)
	}
	if !found {
		return CaptionText{}, fmt.Errorf("%s: no text", name)
	}
	return ct, nil
}
