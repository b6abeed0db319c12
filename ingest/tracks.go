package ingest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// A publisher's tracks. Legacy FLV carries one video and one audio track
// (track 0); Enhanced RTMP adds more by trackId (OBS's multitrack video,
// extra audio tracks). Which tracks feed which session is decided at the
// publisher's first coded frame (see TrackSplitter): track 0 of each kind
// feeds the publish's session, the others being parsed, configured and
// counted, so that the API shows what the encoder sends; or, for a
// multitrack publisher whose session splits, each track feeds a session of
// its own. Until then configurations are kept in the track. A track fount
// cannot use is skipped with one log line and a metric, and never stops the
// other tracks.

// track is one (kind, trackId) of a publisher, owned by the connection's
// read goroutine; stat is what other goroutines may read.
type track struct {
	kind   segmenter.Kind
	id     uint8
	fourcc [4]byte
	codec  codec.ID
	video  *codec.Video // the configuration in force, nil until known
	audio  *codec.Audio
	// inband: the sequence start was empty (ffmpeg's tee muxer without
	// +global_header, some hardware encoders): the configuration comes
	// from the first keyframe's in-band parameter sets.
	inband  bool
	skipped bool // its packets are dropped; logged once
	started bool // a sequence start or frame named its codec
	// sess is the session the track feeds: nil while the shape is
	// undecided, and for a track that feeds none. Kept here so that the
	// per-frame path finds it without a lookup.
	sess Session
	stat *trackStat
}

// unsized: the video configuration lacks the picture size (a VP9 vpcC) and
// waits for the first keyframe to learn it before it is used.
func (t *track) unsized() bool { return t.video != nil && t.video.Width == 0 }

// trackStat is a track's description and counters as the API shows them.
// Its fields are written on the read goroutine and read by Stats.
type trackStat struct {
	mu   sync.Mutex // guards desc
	desc TrackStats // everything but the counters

	frames, bytes     atomic.Uint64
	firstDTS, lastDTS atomic.Int64 // ms; noTimestamp before the first frame
}

// TrackStats describes one track of a publisher.
type TrackStats struct {
	Kind       string // "video" or "audio"
	ID         uint8  // Enhanced RTMP trackId; 0 for legacy FLV
	Codec      string // "H.264", "AV1", "Opus", ... or the FourCC fount does not know
	Codecs     string // RFC 6381 CODECS value, once configured
	Width      int
	Height     int
	FrameRate  float64
	Range      string // video: "SDR", "PQ" or "HLG" (from the bitstream, or colorInfo metadata)
	SampleRate int
	Channels   int
	// InPlaylist: the track feeds a session (track 0 of its kind, or any
	// track of a publisher split into renditions), which took its
	// configuration (the segment format carries the codec).
	InPlaylist bool
	Skipped    string // why its packets are dropped; "" if they are not
	Frames     uint64
	Bytes      uint64
	Bitrate    float64 // bit/s over its timestamps so far
}

func (s *trackStat) setDesc(f func(*TrackStats)) {
	s.mu.Lock()
	f(&s.desc)
	s.mu.Unlock()
}

func (s *trackStat) snapshot() TrackStats {
	s.mu.Lock()
	d := s.desc
	s.mu.Unlock()
	d.Frames, d.Bytes = s.frames.Load(), s.bytes.Load()
	if first, last := s.firstDTS.Load(), s.lastDTS.Load(); first != noTimestamp && last > first {
		d.Bitrate = float64(d.Bytes) * 8 / (time.Duration(last-first) * time.Millisecond).Seconds()
	}
	return d
}

func (s *trackStat) count(dts time.Duration, n int) {
	s.frames.Add(1)
	s.bytes.Add(uint64(n))
	ms := dts.Milliseconds()
	if s.firstDTS.Load() == noTimestamp { // one writer: the read goroutine
		s.firstDTS.Store(ms)
	}
	s.lastDTS.Store(ms)
}

// track returns the state of (kind, id), made on first use.
func (h *handler) track(kind segmenter.Kind, id uint8) *track {
	ts := &h.videoTracks
	if kind == segmenter.Audio {
		ts = &h.audioTracks
	}
	for _, t := range *ts {
		if t.id == id {
			return t
		}
	}
	t := &track{kind: kind, id: id, stat: &trackStat{}}
	t.stat.firstDTS.Store(noTimestamp)
	t.stat.desc = TrackStats{Kind: kindName(kind), ID: id}
	*ts = append(*ts, t)
	h.stats.addTrack(t.stat)
	return t
}

func kindName(k segmenter.Kind) string {
	if k == segmenter.Audio {
		return "audio"
	}
	return "video"
}

// onPacket handles one track's packet of the message being read; h.dts is
// the message's timestamp. It is the per-frame path: no allocation.
func (h *handler) onPacket(p trackPacket) error {
	t := h.track(p.kind, p.track)
	if (!t.started || p.fourcc != t.fourcc) && (p.typ == pktSeqStart || p.typ == pktCodedFrames) {
		if err := h.codecChange(t, p); err != nil {
			return err
		}
	}
	if p.typ == pktCodedFrames && h.shape == shapeUndecided {
		if err := h.decideShape(); err != nil {
			return err
		}
	}
	if t.skipped {
		return nil
	}
	dts := h.dts + time.Duration(p.tsOffsetNanos)
	switch p.typ {
	case pktSeqStart:
		return h.sequenceStart(t, p)
	case pktCodedFrames:
		return h.codedFrame(t, p, dts)
	case pktMPEG2TSSeqStart:
		// AV1's other sequence start (an MPEG-2 TS video descriptor):
		// used only when no av1C came, completed by the first keyframe's
		// sequence header.
		if t.codec == codec.AV1 && t.video == nil {
			v, err := codec.ParseAV1TSDescriptor(p.data)
			if err != nil {
				return h.badConfig(t, err)
			}
			return h.setVideo(t, v)
		}
	case pktMetadata:
		if c, ok, err := parseColorInfo(p.data); err == nil && ok {
			t.stat.setDesc(func(d *TrackStats) { d.Range = c.transfer() })
		}
	}
	return nil
}

// codecChange starts a track over with the codec p names: a new encoder
// session (a reconnect is a new connection) or a codec switch mid-publish.
// A track keeps its session across a switch.
func (h *handler) codecChange(t *track, p trackPacket) error {
	t.started, t.fourcc, t.codec = true, p.fourcc, codec.FromFourCC(p.fourcc)
	t.video, t.audio, t.inband, t.skipped = nil, nil, false, false
	name := t.codec.String()
	if t.codec == codec.Unknown {
		name = fourccString(p.fourcc)
		if p.legacy && p.fourcc == ([4]byte{}) {
			name = legacyCodecName(p.kind, p.flvID)
		}
	}
	t.stat.setDesc(func(d *TrackStats) {
		*d = TrackStats{Kind: d.Kind, ID: d.ID, Codec: name}
	})
	if t.codec == codec.Unknown {
		h.skipTrack(t, fmt.Sprintf("codec %s is not one fount remuxes (H.264, HEVC, AV1, VP9; AAC, Opus, FLAC, AC-3, E-AC-3, MP3)", name))
	}
	// A track that starts after the shape was decided.
	return h.attach(t)
}

// shape is how a publisher's tracks map onto sessions.
type shape uint8

const (
	shapeUndecided shape = iota // before the first coded frame: configurations are kept
	shapeSingle                 // track 0 of each kind feeds h.sess; other tracks are counted
	shapeSplit                  // every track feeds a session of its own, from the TrackSplitter
)

// decideShape fixes the publisher's shape at its first coded frame (see
// TrackSplitter), gives each track that has started its session, and hands
// over the configurations kept until then.
func (h *handler) decideShape() error {
	h.shape = shapeSingle
	if sp, ok := h.sess.(TrackSplitter); ok && (liveTracks(h.videoTracks) > 1 || liveTracks(h.audioTracks) > 1) && sp.SplitTracks() {
		h.shape, h.splitter = shapeSplit, sp
		h.log.Info("multitrack publisher: each track is a rendition of its own",
			"video_tracks", liveTracks(h.videoTracks), "audio_tracks", liveTracks(h.audioTracks))
	}
	for _, ts := range [...][]*track{h.videoTracks, h.audioTracks} {
		for _, t := range ts {
			if err := h.attach(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// liveTracks counts the tracks that have started and are not skipped.
func liveTracks(ts []*track) int {
	n := 0
	for _, t := range ts {
		if t.started && !t.skipped {
			n++
		}
	}
	return n
}

// attach gives t the session it feeds, once the shape is decided and t has
// started, and hands it t's configuration if that is known.
func (h *handler) attach(t *track) error {
	if t.sess != nil || !t.started || t.skipped {
		return nil
	}
	switch h.shape {
	case shapeUndecided:
		return nil
	case shapeSingle:
		if t.id != 0 {
			return nil
		}
		t.sess = h.sess
	case shapeSplit:
		s, err := h.splitter.TrackSession(t.kind, t.id)
		if err == nil && s == nil {
			err = errors.New("no session and no error")
		}
		if err != nil {
			if t.id == 0 {
				return fmt.Errorf("%s track 0 rendition: %w", kindName(t.kind), err)
			}
			h.skipTrack(t, "no rendition session: "+err.Error())
			return nil
		}
		t.sess = s
	}
	return h.handConfig(t)
}

// handConfig hands t's configuration, once complete, to the session t
// feeds; while it feeds none the track keeps it.
func (h *handler) handConfig(t *track) error {
	switch {
	case t.sess == nil:
		return nil
	case t.kind == segmenter.Video && t.video != nil && !t.unsized():
		return h.feedConfig(t, t.sess.VideoConfig(t.video))
	case t.kind == segmenter.Audio && t.audio != nil:
		return h.feedConfig(t, t.sess.AudioConfig(t.audio))
	}
	return nil
}

// closeTrackSessions closes the sessions of a split publisher's tracks;
// the publish's own session is closed after them.
func (h *handler) closeTrackSessions() {
	if h.shape != shapeSplit {
		return // track sessions are h.sess itself
	}
	for _, ts := range [...][]*track{h.videoTracks, h.audioTracks} {
		for _, t := range ts {
			if t.sess != nil {
				t.sess.Close()
				t.sess = nil
			}
		}
	}
}

// skipTrack drops t's packets from now on (until its codec changes), with
// one log line and a count.
func (h *handler) skipTrack(t *track, why string) {
	t.skipped = true
	t.stat.setDesc(func(d *TrackStats) { d.Skipped, d.InPlaylist = why, false })
	h.server.counters.tracksSkipped.Add(1)
	h.log.Warn("rtmp track skipped", "kind", kindName(t.kind), "track", t.id, "reason", why)
}

func (h *handler) sequenceStart(t *track, p trackPacket) error {
	if t.kind == segmenter.Video {
		if len(p.data) == 0 {
			if !t.inband {
				h.log.Info("empty video sequence header: taking the configuration from the first keyframe", "track", t.id, "codec", t.codec)
			}
			t.inband = true
			return nil
		}
		v, err := codec.ParseVideo(t.codec, p.data)
		if err != nil {
			return h.badConfig(t, err)
		}
		t.inband = false
		return h.setVideo(t, v)
	}
	switch t.codec {
	case codec.AC3, codec.EAC3, codec.MP3:
		// No sequence start in their E-RTMP mapping; a stray one says
		// nothing the frames do not.
		return nil
	}
	a, err := codec.ParseAudio(t.codec, p.data)
	if err != nil {
		return h.badConfig(t, err)
	}
	return h.setAudio(t, a)
}

// badConfig: an unreadable configuration on track 0 ends the publish, as
// it always has (the stream cannot be played); on another track it only
// skips that track.
func (h *handler) badConfig(t *track, err error) error {
	if t.id == 0 {
		return fmt.Errorf("%s sequence header: %w", kindName(t.kind), err)
	}
	h.skipTrack(t, "unreadable sequence header: "+err.Error())
	return nil
}

func (h *handler) setVideo(t *track, v *codec.Video) error {
	t.video = v
	if t.unsized() {
		return nil // used once a keyframe gives the size
	}
	return h.useVideo(t, v)
}

func (h *handler) useVideo(t *track, v *codec.Video) error {
	t.stat.setDesc(func(d *TrackStats) {
		d.Codecs, d.Width, d.Height, d.FrameRate = v.Codecs, v.Width, v.Height, v.FrameRate
		if d.Range == "" || v.Transfer != codec.TransferSDR {
			d.Range = v.Transfer.String()
		}
	})
	return h.handConfig(t)
}

func (h *handler) setAudio(t *track, a *codec.Audio) error {
	t.audio = a
	t.stat.setDesc(func(d *TrackStats) { d.Codecs, d.SampleRate, d.Channels = a.Codecs, a.SampleRate, a.Channels })
	return h.handConfig(t)
}

// feedConfig reads a session's answer to a track's configuration: a codec
// the segment format cannot carry skips the track, not the stream.
func (h *handler) feedConfig(t *track, err error) error {
	switch {
	case err == nil:
		t.stat.setDesc(func(d *TrackStats) { d.InPlaylist = true })
		return nil
	case errors.Is(err, segmenter.ErrNotCarried):
		h.skipTrack(t, err.Error())
		return nil
	}
	if t.id != 0 {
		return fmt.Errorf("%s track %d sequence header: %w", kindName(t.kind), t.id, err)
	}
	return fmt.Errorf("%s sequence header: %w", kindName(t.kind), err)
}

func (h *handler) codedFrame(t *track, p trackPacket, dts time.Duration) error {
	if err := h.configFromFrame(t, p); err != nil || t.skipped {
		return err
	}
	t.stat.count(dts, len(p.data))
	if t.sess == nil {
		return nil
	}
	h.frames++
	f := segmenter.Frame{Kind: t.kind, DTS: dts, PTS: dts, Data: p.data}
	if t.kind == segmenter.Video {
		f.PTS += time.Duration(p.cts) * time.Millisecond
		f.Key = p.key
	}
	// An error ends the publish, from a track's session as from h.sess.
	return t.sess.Frame(f)
}

// configFromFrame completes a configuration that only frames can give:
// parameter sets after an empty sequence header, a VP9 picture size, the
// whole configuration of AC-3, E-AC-3 and MP3.
func (h *handler) configFromFrame(t *track, p trackPacket) error {
	switch {
	case t.kind == segmenter.Video && t.inband && t.video == nil && p.key:
		v, err := codec.VideoFromKeyframe(t.codec, p.data)
		if err != nil {
			h.skipTrack(t, "empty sequence header and no parameter sets in the first keyframe: "+err.Error())
			return nil
		}
		return h.setVideo(t, v)
	case t.unsized() && p.key:
		v, err := t.video.WithKeyframe(p.data)
		if err != nil || v.Width == 0 {
			h.skipTrack(t, fmt.Sprintf("no picture size in the sequence header or the first keyframe (%v)", err))
			return nil
		}
		t.video = v
		return h.useVideo(t, v)
	case t.kind == segmenter.Audio && t.audio == nil:
		switch t.codec {
		case codec.AC3, codec.EAC3, codec.MP3:
			a, err := codec.AudioFromFrame(t.codec, p.data)
			if err != nil {
				h.skipTrack(t, "unreadable first frame: "+err.Error())
				return nil
			}
			return h.setAudio(t, a)
		}
	}
	return nil
}

func legacyCodecName(k segmenter.Kind, id uint8) string {
	if k == segmenter.Audio {
		return soundFormatName(id)
	}
	return legacyVideoCodecName(id)
}
