package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/rtc"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
	"github.com/fount-live/fount/storage"
)

// publisher wires a publish to its playlist stream through a segmenter.
type publisher struct {
	reg  *playlist.Registry
	seg  segmenter.Config
	log  *slog.Logger
	hook *ingest.Webhook // nil unless --auth webhook
	cc   captionFlags    // --captions (captions.go)
	rtc  *rtc.Server     // WebRTC playback; nil when off
	// streams are the per-stream settings from the config file
	// (streams.go), swapped on SIGHUP; nil for none.
	streams atomic.Pointer[streamTable]

	mu       sync.Mutex
	sessions map[string]*session // latest session per stream path, for the API

	metaStats metadataStats // timed metadata in, by source (api_metadata.go)
	cues      cueCounts     // cues taken, by kind and source (cue.go)
	eventSeq  atomic.Uint32 // the last splice event ID fount made (cue.go)
}

func (p *publisher) Publish(_ context.Context, req ingest.PublishRequest) (ingest.Session, error) {
	path := req.App + "/" + req.Name
	var (
		st  *playlist.Stream
		err error
	)
	if req.Variant != "" {
		st, err = p.reg.PublishRendition(path, req.Variant)
	} else {
		st, err = p.reg.Publish(path)
	}
	if err != nil {
		return nil, err
	}
	if st.Captions() != nil {
		cs, err := p.captionedSession(st, req.Remote.String())
		if err != nil {
			return nil, err
		}
		return cs, nil
	}
	s := p.newSession(st, p.seg, req.Remote.String())
	if st.IsGroup() {
		// A multitrack stream's encoder back with one track of each kind:
		// ingest does not split it, so its tracks are routed here to
		// renditions v0 and a0, and the stream keeps its shape.
		return &rejoined{session: s}, nil
	}
	return s, nil
}

func (p *publisher) newSession(st *playlist.Stream, cfg segmenter.Config, remote string) *session {
	// Every publisher's clock is checked against its stream's timeline:
	// a rendition's against the others', a single stream's against where
	// its previous publisher left it (playlist.Stream.TimelineOffset).
	s := &session{pub: p, stream: st, cfg: cfg, log: p.log.With("stream", st.Path()), hook: p.hook, name: st.Path(), remote: remote, shift: &shift{}}
	s.ccCfg = p.streams.Load().captionsFor(storage.TopStream(st.Path()), p.cc)
	p.mu.Lock()
	if p.sessions == nil {
		p.sessions = make(map[string]*session)
	}
	p.sessions[st.Path()] = s
	p.mu.Unlock()
	if p.rtc != nil && st.Rendition() == "" && !st.IsGroup() {
		s.tap = p.rtc.Feed(st.Path())
	}
	return s
}

// segmenterInfo returns what the stream's latest segmenter knows (codecs,
// resolution, GOP), if it has one.
func (p *publisher) segmenterInfo(path string) (segmenter.Info, bool) {
	p.mu.Lock()
	s := p.sessions[path]
	if s != nil && p.reg.Stream(path) == nil {
		delete(p.sessions, path) // the stream was removed
		s = nil
	}
	p.mu.Unlock()
	if s == nil {
		return segmenter.Info{}, false
	}
	seg := s.seg.Load()
	if seg == nil {
		return segmenter.Info{}, false
	}
	return seg.Info(), true
}

// session creates its segmenter at the first media or metadata message, so
// that the tracks announced in onMetaData can shape it.
type session struct {
	pub    *publisher
	stream *playlist.Stream
	cfg    segmenter.Config
	log    *slog.Logger

	// seg is set once, on the publisher's goroutine; atomic because the
	// API reads it from others.
	seg atomic.Pointer[segmenter.Segmenter]

	hook   *ingest.Webhook
	name   string // the stream published, for the webhook: a captioned stream's session feeds its rendition
	remote string
	kind   segmenter.Kind // a track session's one kind; 0 for a publisher's session
	shift  *shift

	// lastPTS is the PTS of the latest frame on the stream's timeline
	// (after shift), for cues "now" (cue.go); haveFrame once it is set.
	lastPTS   atomic.Int64
	haveFrame atomic.Bool
	sink      *sink            // the segmenter's, once made
	cc        ccWatch          // captions in the video (captions.go)
	ccCfg     captionFlags     // the stream's captions settings: its own (streams.go) over the global flags
	subs      *playlist.Stream // the WebVTT rendition, once caption text came (captions_vtt.go)
	vtt       *vttTrack
	// textTo: a multitrack publisher's session hands its caption text to
	// its first video track's (captions_vtt.go).
	textTo *session
	tap    frameTap // WebRTC playback's feed of the stream; nil if none
}

// frameTap is a second consumer of a publish's media beside the
// segmenter: WebRTC playback (rtc.Feed). It is called on the publisher's
// goroutine, with bytes valid only during the call, and must not block.
type frameTap interface {
	VideoConfig(*codec.Video)
	AudioConfig(*codec.Audio)
	Frame(segmenter.Frame)
}

func (s *session) segmenter() *segmenter.Segmenter {
	seg := s.seg.Load()
	if seg == nil {
		cfg := s.cfg
		cfg.Logger = s.log
		s.sink = &sink{st: s.stream, sess: s, partsOnly: cfg.PartsOnly && cfg.PartDuration > 0, rendition: s.stream.Rendition() != ""}
		seg = segmenter.New(cfg, s.sink)
		// Cues still waiting for their segment (the encoder reconnected
		// before it came) are cut for by the new segmenter.
		for _, at := range s.stream.PendingCueTimes() {
			seg.CutAt(at)
		}
		s.seg.Store(seg)
	}
	return seg
}

func (s *session) Metadata(md ingest.Metadata) {
	if s.seg.Load() == nil && s.kind == 0 {
		s.cfg.Expect = md.Tracks
	}
}

// SplitTracks: a publisher with several video or audio tracks (OBS's
// multitrack video) has each track served as a rendition, when the
// stream's shape allows (it never had a segment as one rendition).
func (s *session) SplitTracks() bool {
	ok := s.pub.reg.SplitTracks(s.stream)
	if !ok {
		s.log.Warn("several tracks on a stream first published with one: only track 0 is served (the stream keeps its shape until it ends)")
	}
	return ok
}

// TrackSession serves one track of a split publisher as rendition vID
// (video) or aID (audio).
func (s *session) TrackSession(kind segmenter.Kind, id uint8) (ingest.Session, error) {
	name := "v" + strconv.Itoa(int(id))
	if kind == segmenter.Audio {
		name = "a" + strconv.Itoa(int(id))
	}
	st, err := s.pub.reg.Rendition(s.stream, name)
	if err != nil {
		return nil, err
	}
	cfg := s.cfg
	cfg.Expect = kind
	ts := s.pub.newSession(st, cfg, s.remote)
	ts.kind = kind
	ts.shift = s.shift // the tracks of one publisher move together
	if kind == segmenter.Video {
		s.shift.video = true
		if s.textTo == nil {
			s.textTo = ts
		}
	}
	ts.hook = nil // the publisher's own session says when it ends
	return ts, nil
}

func (s *session) VideoConfig(v *codec.Video) error {
	s.shift.video = true
	s.captionsVideo(v)
	if s.tap != nil {
		s.tap.VideoConfig(v)
	}
	return s.segmenter().SetVideoConfig(v)
}

func (s *session) AudioConfig(a *codec.Audio) error {
	if s.tap != nil {
		s.tap.AudioConfig(a)
	}
	return s.segmenter().SetAudioConfig(a)
}

func (s *session) Frame(f segmenter.Frame) error {
	sh := s.shift
	if !sh.set {
		off := s.stream.TimelineOffset(f.DTS)
		if off != 0 && sh.video && (f.Kind != segmenter.Video || !f.Key) {
			// The offset puts the first keyframe where the timeline
			// goes on: frames before it (audio, mostly) wait for it,
			// and would be dropped before the first keyframe anyway.
			return nil
		}
		sh.set, sh.off = true, off
		if off != 0 {
			s.log.Info("the publisher's clock is not the stream's: its timestamps are moved onto the stream's timeline", "offset", off, "first_timestamp", f.DTS)
		}
	}
	f.DTS += sh.off
	f.PTS += sh.off
	if f.Kind == segmenter.Video || !sh.video {
		s.lastPTS.Store(int64(f.PTS))
		s.haveFrame.Store(true)
	}
	if f.Key && f.Kind == segmenter.Video && s.ccCfg.Mode != "off" {
		s.captionsKeyframe(f)
	}
	if s.tap != nil {
		// Before the segmenter, which may rewrite the bytes in place.
		s.tap.Frame(f)
	}
	return s.segmenter().WriteFrame(f)
}

// shift moves one publisher's timestamps onto its stream's timeline
// (playlist.Stream.TimelineOffset); shared by the sessions of a
// multitrack publisher's tracks, so that they stay in sync with each
// other. Used on the connection's read goroutine only.
type shift struct {
	set   bool
	off   time.Duration
	video bool // the publisher sends video: the offset is taken at its first keyframe
}

// rejoined is the session of a publisher with one track of each kind on
// a stream split into renditions before: its tracks go to renditions v0
// and a0 (made at their first configuration), which it closes with itself.
type rejoined struct {
	*session
	tracks [2]ingest.Session // video, audio
}

func (r *rejoined) track(kind segmenter.Kind) (ingest.Session, error) {
	i := 0
	if kind == segmenter.Audio {
		i = 1
	}
	if r.tracks[i] == nil {
		t, err := r.TrackSession(kind, 0)
		if err != nil {
			return nil, err
		}
		r.tracks[i] = t
	}
	return r.tracks[i], nil
}

func (r *rejoined) VideoConfig(v *codec.Video) error {
	t, err := r.track(segmenter.Video)
	if err != nil {
		return err
	}
	return t.VideoConfig(v)
}

func (r *rejoined) AudioConfig(a *codec.Audio) error {
	t, err := r.track(segmenter.Audio)
	if err != nil {
		return err
	}
	return t.AudioConfig(a)
}

// Frame finds its track's session, made with the configuration that came
// before any frame.
func (r *rejoined) Frame(f segmenter.Frame) error {
	i := 0
	if f.Kind == segmenter.Audio {
		i = 1
	}
	if t := r.tracks[i]; t != nil {
		return t.Frame(f)
	}
	return nil // no configuration yet: the segmenter would drop it too
}

func (r *rejoined) Close() {
	for _, t := range r.tracks {
		if t != nil {
			t.Close()
		}
	}
	r.session.Close()
}

func (s *session) Close() {
	// Deferred: should flushing panic (a segmenter broken by an earlier
	// panic; ingest recovers and logs it), the stream still goes idle and
	// its encoder can reconnect.
	defer func() {
		if s.subs != nil {
			s.subs.Unpublish()
		}
		s.stream.Unpublish()
		if s.hook != nil {
			s.hook.Notify("publish_ended", map[string]any{"stream": s.name, "client_ip": s.remote})
		}
	}()
	if seg := s.seg.Load(); seg != nil {
		if err := seg.Flush(); err != nil {
			s.log.Warn("flushing the last segment failed", "err", err)
		}
	}
}

// sink hands the segmenter's segments to the playlist.
type sink struct {
	st        *playlist.Stream
	sess      *session
	partsOnly bool // segments come as the bytes before their parts
	rendition bool // the stream is a rendition: the multivariant playlist needs its info
	infoSet   bool
	iframes   []playlist.IFrame // reused: the playlist copies what it keeps
}

// describe tells a rendition's stream what it carries, before its first
// part or segment and whenever it may have changed.
func (k *sink) describe() {
	if !k.rendition {
		return
	}
	seg := k.sess.seg.Load()
	if seg == nil {
		return
	}
	in := seg.Info()
	var mi playlist.MediaInfo
	if v := in.Video; v != nil {
		mi.VideoCodecs, mi.Width, mi.Height, mi.FrameRate, mi.VideoRange = v.Codecs, v.Width, v.Height, v.FrameRate, v.Transfer.String()
	}
	if a := in.Audio; a != nil {
		mi.AudioCodecs = a.Codecs
	}
	k.st.SetInfo(mi)
	k.infoSet = true
}

func (k *sink) Segment(seg segmenter.Segment) error {
	k.describe()
	k.iframes = k.iframes[:0]
	for _, f := range seg.IFrames {
		k.iframes = append(k.iframes, playlist.IFrame{Offset: int64(f.Offset), Size: int64(f.Size), Duration: f.Duration})
	}
	if err := k.st.Segment(playlist.Segment{
		Data:            seg.Data,
		PartsFollow:     k.partsOnly,
		Duration:        seg.Duration,
		ProgramDateTime: seg.ProgramDateTime,
		Discontinuity:   seg.Discontinuity,
		Start:           seg.Start,
		StartPTS:        seg.StartPTS,
		IFrames:         k.iframes,
	}); err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	k.sess.subtitlesSegment(seg)
	return nil
}

func (k *sink) Part(p segmenter.Part) error {
	if !k.infoSet {
		k.describe()
	}
	if err := k.st.Part(playlist.Part{Data: p.Data, Duration: p.Duration, Independent: p.Independent,
		SegmentStart: p.SegmentStart, SegmentDue: p.SegmentDue}); err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	return nil
}

func (k *sink) Init(in segmenter.Init) error {
	if err := k.st.Init(in.Data); err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	return nil
}
