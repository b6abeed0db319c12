package main

import (
	"fmt"
	"sync/atomic"

	"github.com/spf13/pflag"

	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// Captions (docs/markers.md, "Captions"). CEA-608/708 caption data rides in
// the video's SEI and passes through the remux untouched; what fount adds
// is the signalling, which HLS puts in the multivariant playlist only. A
// stream's shape (one media playlist, or a multivariant playlist) is fixed
// from its first publish, so the choice is made at the first video keyframe
// of that publish, before any segment and so before any playlist:
//
//   - --captions auto (the default): the stream is captioned when that
//     keyframe's SEI carries CEA-608 cc_data. Caption encoders send cc_data
//     with every frame (608 runs at a constant rate, padding when silent).
//   - --captions on: every stream with video is captioned (declared).
//   - --captions off: nothing is looked at or signalled.
//
// A stream's own settings in the config file (streams.go) stand in for
// the three flags; a session takes them once, at its publish (ccCfg).
//
// Every keyframe is checked after that too, for the API and the logs
// (captions that come or go), never other frames: a keyframe's SEI NAL
// units only, without allocating.

// captionFlags are the flags of captions.
type captionFlags struct {
	Mode     string // auto, on or off
	Name     string
	Language string
}

func (c *captionFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.Mode, "captions", c.Mode, "CEA-608 captions in the video's SEI: auto (signal them, CLOSED-CAPTIONS and a multivariant playlist, for a stream whose first keyframe carries them), on (signal them for every stream with video) or off; per stream: the config file's streams key")
	fs.StringVar(&c.Name, "captions-name", c.Name, "NAME of the captions' EXT-X-MEDIA (CC1), what players' caption menus show; per stream: the config file's streams key")
	fs.StringVar(&c.Language, "captions-language", c.Language, "LANGUAGE of the captions' EXT-X-MEDIA (CC1), a BCP 47 tag; per stream: the config file's streams key")
}

func (c captionFlags) validate() error {
	if err := validCaptionsMode(c.Mode); err != nil {
		return fmt.Errorf("--captions %w", err)
	}
	if err := (playlist.Captions{Name: c.Name, Language: c.Language}).Validate(); err != nil {
		return fmt.Errorf("--captions-name/--captions-language: %w", err)
	}
	return nil
}

// validCaptionsMode checks a --captions value (or a stream's captions).
func validCaptionsMode(mode string) error {
	switch mode {
	case "auto", "on", "off":
		return nil
	}
	return fmt.Errorf("%q: want auto, on or off", mode)
}

func defaultCaptionFlags() captionFlags {
	return captionFlags{Mode: "auto", Name: "English", Language: "en"}
}

// ccWatch is a session's view of the captions in its video; used on the
// publisher's read goroutine, but seen, which the API reads.
type ccWatch struct {
	id         codec.ID
	lengthSize int
	decided    bool // the first keyframe was seen: the stream's shape is chosen
	last       codec.Captions
	badLogged  bool
	textLogged bool
	seen       atomic.Uint32 // codec.Captions of the latest keyframe
	texts      atomic.Uint64 // caption text messages taken (captions_vtt.go)
}

// captionsVideo notes the codec whose frames are checked.
func (s *session) captionsVideo(v *codec.Video) {
	s.cc.id, s.cc.lengthSize = v.Codec, v.NALULengthSize
}

// captionsKeyframe checks a video keyframe's SEI for cc_data, before the
// segmenter takes it: at the stream's first, it may turn the stream into a
// captioned one.
func (s *session) captionsKeyframe(f segmenter.Frame) {
	w := &s.cc
	c, err := codec.FindCaptions(w.id, f.Data, w.lengthSize)
	if err != nil && !w.badLogged {
		w.badLogged = true
		s.log.Warn("a keyframe's SEI could not be read for captions (logged once per publish)", "err", err)
	}
	w.seen.Store(uint32(c))
	if c != w.last {
		if c&codec.CEA608 != 0 || c&codec.CEA708 != 0 {
			s.log.Info("captions found in the video", "captions", c.String())
		} else {
			s.log.Info("captions gone from the video")
		}
		w.last = c
	}
	if w.decided {
		return
	}
	w.decided = true
	if s.ccCfg.Mode == "on" || c&codec.CEA608 != 0 {
		s.captioned()
	}
}

// captioned turns the session's stream, at its first keyframe, into a
// captioned one and moves the session onto its rendition.
func (s *session) captioned() {
	cc := playlist.Captions{Name: s.ccCfg.Name, Language: s.ccCfg.Language}
	if s.stream.Captions() != nil {
		return
	}
	if s.stream.Rendition() != "" {
		// A rendition of a group: the group signals them, if it is not
		// too late.
		if s.stream.SignalledCaptions() == nil && !s.captionGroup("captions in the video") {
			s.log.Info("captions are passed through but not signalled: the stream's multivariant playlist was out before they came")
		}
		return
	}
	rend, err := s.pub.reg.Captioned(s.stream, cc)
	if err != nil {
		s.log.Info("captions are passed through but not signalled: the stream's shape was fixed before they came", "err", err)
		return
	}
	s.log.Info("captions signalled: the stream serves a multivariant playlist", "rendition", rend.Path(), "name", cc.Name, "language", cc.Language)
	s.moveTo(rend)
}

// captionGroup has the group of the session's rendition signal its
// captions, if its multivariant playlist never went out, and reports
// whether it does.
func (s *session) captionGroup(why string) bool {
	cc := playlist.Captions{Name: s.ccCfg.Name, Language: s.ccCfg.Language}
	if !s.pub.reg.CaptionGroup(s.stream, cc) {
		return false
	}
	s.log.Info("captions signalled for the stream's renditions", "by", why, "name", cc.Name, "language", cc.Language)
	return true
}

// moveTo has the session feed rend instead of its stream; only before the
// segmenter handed anything to its sink (the first keyframe).
func (s *session) moveTo(rend *playlist.Stream) {
	old := s.stream
	s.stream = rend
	s.log = s.pub.log.With("stream", rend.Path())
	if s.sink != nil {
		s.sink.st, s.sink.rendition = rend, true
	}
	s.pub.mu.Lock()
	if s.pub.sessions[old.Path()] == s {
		delete(s.pub.sessions, old.Path())
	}
	s.pub.sessions[rend.Path()] = s
	s.pub.mu.Unlock()
}

// captionedSession is a new publish to a stream already captioned: it
// feeds the stream's rendition.
func (p *publisher) captionedSession(st *playlist.Stream, remote string) (*session, error) {
	rend, err := p.reg.Captioned(st, *st.Captions())
	if err != nil {
		return nil, err
	}
	s := p.newSession(rend, p.seg, remote)
	s.name = st.Path()
	s.cc.decided = true
	if p.rtc != nil {
		// WebRTC plays the publish at the stream's own path, as it did
		// before the captions made it a group (moveTo keeps the tap).
		s.tap = p.rtc.Feed(st.Path())
	}
	return s, nil
}

// apiCaptions is the captions part of a stream in the API.
type apiCaptions struct {
	// Signalled: the multivariant playlist lists CC1 (name and language).
	Signalled  bool   `json:"signalled"`
	Name       string `json:"name,omitempty"`
	Language   string `json:"language,omitempty"`
	InstreamID string `json:"instream_id,omitempty"`
	// InVideo: what the latest keyframe's SEI carried, "608", "708",
	// "608,708", or "" (none, or no keyframe checked).
	InVideo string `json:"in_video"`
	// Texts: caption text messages (onTextData, onCaption) taken by the
	// publish, served as the WebVTT rendition Subtitles.
	Texts     uint64 `json:"texts"`
	Subtitles string `json:"subtitles,omitempty"`
}

// captionsJSON is a stream's captions for the API; nil when there is
// nothing to say.
func (a *api) captionsJSON(s *playlist.Stream) *apiCaptions {
	out := &apiCaptions{}
	if cc := s.SignalledCaptions(); cc != nil {
		out.Signalled, out.Name, out.Language, out.InstreamID = true, cc.Name, cc.Language, "CC1"
	}
	path := s.Path()
	if s.Captions() != nil && s.Rendition() == "" {
		path += "/" + playlist.CaptionRendition
	}
	a.pub.mu.Lock()
	sess := a.pub.sessions[path]
	a.pub.mu.Unlock()
	if sess != nil {
		out.InVideo = codec.Captions(sess.cc.seen.Load()).String()
		out.Texts = sess.cc.texts.Load()
	}
	if out.Texts > 0 || s.IsGroup() && a.reg.Stream(s.Path()+"/"+playlist.SubtitlesRendition) != nil {
		out.Subtitles = playlist.SubtitlesRendition // a group's: whichever rendition feeds it
	}
	if !out.Signalled && out.InVideo == "" {
		return nil
	}
	return out
}
