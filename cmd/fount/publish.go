package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// publisher wires a publish to its playlist stream through a segmenter.
type publisher struct {
	reg  *playlist.Registry
	seg  segmenter.Config
	log  *slog.Logger
	hook *ingest.Webhook // nil unless --auth webhook

	mu       sync.Mutex
	sessions map[string]*session // latest session per stream path, for the API
}

func (p *publisher) Publish(_ context.Context, req ingest.PublishRequest) (ingest.Session, error) {
	st, err := p.reg.Publish(req.App + "/" + req.Name)
	if err != nil {
		return nil, err
	}
	s := &session{stream: st, cfg: p.seg, log: p.log.With("stream", st.Path()), hook: p.hook, remote: req.Remote.String()}
	p.mu.Lock()
	if p.sessions == nil {
		p.sessions = make(map[string]*session)
	}
	p.sessions[st.Path()] = s
	p.mu.Unlock()
	return s, nil
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
	stream *playlist.Stream
	cfg    segmenter.Config
	log    *slog.Logger

	// seg is set once, on the publisher's goroutine; atomic because the
	// API reads it from others.
	seg atomic.Pointer[segmenter.Segmenter]

	hook   *ingest.Webhook
	remote string
}

func (s *session) segmenter() *segmenter.Segmenter {
	seg := s.seg.Load()
	if seg == nil {
		cfg := s.cfg
		cfg.Logger = s.log
		seg = segmenter.New(cfg, sink{st: s.stream, partsOnly: cfg.PartsOnly && cfg.PartDuration > 0})
		s.seg.Store(seg)
	}
	return seg
}

func (s *session) Metadata(md ingest.Metadata) {
	if s.seg.Load() == nil {
		s.cfg.Expect = md.Tracks
	}
}

func (s *session) VideoConfig(v *codec.Video) error { return s.segmenter().SetVideoConfig(v) }
func (s *session) AudioConfig(a *codec.Audio) error { return s.segmenter().SetAudioConfig(a) }
func (s *session) Frame(f segmenter.Frame) error {
	return s.segmenter().WriteFrame(f)
}

func (s *session) Close() {
	// Deferred: should flushing panic (a segmenter broken by an earlier
	// panic; ingest recovers and logs it), the stream still goes idle and
	// its encoder can reconnect.
	defer func() {
		s.stream.Unpublish()
		if s.hook != nil {
			s.hook.Notify("publish_ended", map[string]any{"stream": s.stream.Path(), "client_ip": s.remote})
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
	partsOnly bool // segments come as the bytes before their parts
}

func (k sink) Segment(seg segmenter.Segment) error {
	if err := k.st.Segment(playlist.Segment{
		Data:            seg.Data,
		PartsFollow:     k.partsOnly,
		Duration:        seg.Duration,
		ProgramDateTime: seg.ProgramDateTime,
		Discontinuity:   seg.Discontinuity,
	}); err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	return nil
}

func (k sink) Part(p segmenter.Part) error {
	if err := k.st.Part(playlist.Part{Data: p.Data, Duration: p.Duration, Independent: p.Independent}); err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	return nil
}

func (k sink) Init(in segmenter.Init) error {
	if err := k.st.Init(in.Data); err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	return nil
}
