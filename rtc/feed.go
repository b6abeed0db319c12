package rtc

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// Limits of what a feed keeps of its stream for viewers who join.
const (
	// maxGOPBytes and maxGOPFrames bound the group of pictures a feed
	// keeps; a longer one is dropped and the next viewer waits for the
	// next keyframe.
	maxGOPBytes  = 16 << 20
	maxGOPFrames = 1200
	// keepWarm: after its last viewer leaves, a feed goes on keeping
	// the GOP this long, so that a viewer who comes back (a reload)
	// starts at once. A stream nobody watches over WebRTC costs no copy.
	keepWarm = time.Minute
)

// frame is one access unit as sent: H.264 in Annex-B (the parameter sets
// before each keyframe), a VP9 frame, an AV1 temporal unit (videoConf's
// frame), or one Opus packet. Shared read-only by every
// viewer's queue.
type frame struct {
	data  []byte
	pts   time.Duration
	dts   time.Duration
	key   bool
	audio bool
}

// Feed is one stream's media as WebRTC viewers get it: the publisher's
// session hands it codec configurations and frames (on the publisher's
// goroutine), it copies them (always, or only while someone watches or
// watched within keepWarm) and never blocks: a viewer whose queue is full
// skips to the next keyframe.
type Feed struct {
	path string
	now  func() time.Time
	log  *slog.Logger

	// bframes: an H.264 frame came whose presentation time is not its
	// decode time. Browsers' WebRTC H.264 decoders cannot reorder: they
	// show such a stream's keyframes only.
	bframes atomic.Bool
	avc     atomic.Bool // the video is H.264: frames are checked for B-frames

	viewers atomic.Int32 // len(sessions), read without the lock on the hot path
	// coldAfter is the Unix nanosecond time after which a feed without
	// viewers stops copying frames; written under mu.
	coldAfter atomic.Int64

	// copying: the last frame was copied (the publisher's goroutine only).
	copying bool
	// always: copy frames and keep the GOP with no viewer too (Config's
	// KeepGOP); set before the feed is handed out.
	always bool

	mu       sync.Mutex
	video    *videoConf // nil: no video WebRTC sends (yet)
	vcodec   codec.ID   // the stream's video codec, sent or not
	audio    *codec.Audio
	gop      []*frame // from the last keyframe on, video only
	gopBytes int
	sessions map[*session]struct{}
	ended    bool
}

func newFeed(path string, now func() time.Time, log *slog.Logger) *Feed {
	return &Feed{path: path, now: now, log: log, sessions: make(map[*session]struct{})}
}

// VideoConfig takes the stream's video configuration: H.264, VP9 and AV1
// are served, any other codec (HEVC) leaves the stream without WebRTC
// video.
func (f *Feed) VideoConfig(v *codec.Video) {
	vc := newVideoConf(v)
	f.avc.Store(vc != nil && vc.codec == codec.AVC)
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.video; old != nil && v != nil && (vc == nil || old.format() != vc.format()) {
		// Sessions negotiated the old format: they end (and get no
		// frame of the new one meanwhile), and their viewers come back
		// with the new one, or learn that it is not sent.
		var reason string
		switch {
		case vc == nil:
			reason = "the stream's video changed to " + v.Codec.String() + ", which WebRTC playback does not send"
		case old.codec == codec.AVC && vc.codec == codec.AVC:
			reason = "the stream's H.264 profile changed"
		default:
			reason = "the stream's video changed from " + old.format() + " to " + vc.format()
		}
		for s := range f.sessions {
			s.end(reason)
			delete(f.sessions, s)
		}
		f.viewers.Store(0)
		f.coldAfter.Store(f.now().Add(keepWarm).UnixNano())
	}
	f.video = vc
	f.vcodec = codec.Unknown
	if v != nil {
		f.vcodec = v.Codec
	}
	f.gop, f.gopBytes = nil, 0
	for s := range f.sessions {
		s.skip = true // a publisher back: its viewers resume at its keyframe
	}
}

// AudioConfig takes the stream's audio configuration. Only Opus can go to
// a browser as it is; AAC (what RTMP mostly carries) is not sent.
func (f *Feed) AudioConfig(a *codec.Audio) {
	f.mu.Lock()
	f.audio = a
	f.mu.Unlock()
}

// opus reports whether the stream's audio is Opus, which viewers get.
func (f *Feed) opus() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.audio != nil && f.audio.Codec == codec.Opus
}

// Frame takes one frame of the stream. Nobody watching (and nobody for
// keepWarm): it returns at once, copying nothing.
func (f *Feed) Frame(fr segmenter.Frame) {
	if fr.Kind == segmenter.Video && fr.PTS != fr.DTS && !f.bframes.Load() && f.avc.Load() {
		f.bframes.Store(true)
		f.log.Warn("the stream's video has B-frames: browsers' WebRTC players show only its keyframes (encode without B-frames for WebRTC viewers, e.g. x264 -bf 0)", "stream", f.path)
	}
	if !f.always && f.viewers.Load() == 0 && f.now().UnixNano() > f.coldAfter.Load() {
		if f.copying { // gone cold: let the GOP go
			f.copying = false
			f.mu.Lock()
			f.gop, f.gopBytes = nil, 0
			f.mu.Unlock()
		}
		return
	}
	f.copying = true
	f.mu.Lock()
	defer f.mu.Unlock()
	var out *frame
	switch {
	case fr.Kind == segmenter.Video && f.video != nil:
		data, ok := f.video.frame(fr.Data, fr.Key)
		if !ok {
			return // malformed: the segmenter counts it
		}
		out = &frame{data: data, pts: fr.PTS, dts: fr.DTS, key: fr.Key}
		f.keep(out)
	case fr.Kind == segmenter.Audio && f.audio != nil && f.audio.Codec == codec.Opus:
		out = &frame{data: append([]byte(nil), fr.Data...), pts: fr.PTS, dts: fr.DTS, audio: true}
	default:
		return
	}
	for s := range f.sessions {
		s.offer(out)
	}
}

// keep adds a video frame to the GOP kept for viewers who join.
func (f *Feed) keep(fr *frame) {
	if fr.key {
		f.gop, f.gopBytes = f.gop[:0:0], 0
	} else if len(f.gop) == 0 {
		return // no keyframe yet: nothing a viewer could start with
	}
	if len(f.gop) >= maxGOPFrames || f.gopBytes+len(fr.data) > maxGOPBytes {
		f.gop, f.gopBytes = nil, 0
		return
	}
	f.gop = append(f.gop, fr)
	f.gopBytes += len(fr.data)
}

// join adds s to the feed's viewers and queues the kept GOP for it, so
// that it starts with a keyframe at once. false: the stream has ended.
func (f *Feed) join(s *session) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return false
	}
	f.sessions[s] = struct{}{}
	f.viewers.Store(int32(len(f.sessions)))
	s.start(f.gop)
	return true
}

// warm has the feed copy frames from now on for keepWarm, so that the
// viewer about to connect finds a GOP.
func (f *Feed) warm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.now().Add(keepWarm).UnixNano(); t > f.coldAfter.Load() {
		f.coldAfter.Store(t)
	}
}

// leave removes s; the feed stays warm for keepWarm.
func (f *Feed) leave(s *session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, s)
	f.viewers.Store(int32(len(f.sessions)))
	if len(f.sessions) == 0 {
		f.coldAfter.Store(f.now().Add(keepWarm).UnixNano())
	}
}

// end ends every session of the feed: its stream is over.
func (f *Feed) end(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = true
	f.gop, f.gopBytes = nil, 0
	for s := range f.sessions {
		s.end(reason)
	}
}

// info returns what a viewer's session negotiates with: the video
// configuration (nil: none yet, or a codec WebRTC does not send) and
// whether audio is Opus.
func (f *Feed) info() (*videoConf, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.video, f.audio != nil && f.audio.Codec == codec.Opus
}

// playable is info for a viewer's offer to the stream at path, or an
// error wrapping errNoStream that says why the stream has no video a
// session could get: none yet, or a codec WebRTC playback does not send.
func (f *Feed) playable(path string) (*videoConf, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.video != nil:
		return f.video, f.audio != nil && f.audio.Codec == codec.Opus, nil
	case f.vcodec != codec.Unknown:
		return nil, false, fmt.Errorf("%w: %s's video is %v, which WebRTC playback does not send (it sends H.264, VP9 and AV1)", errNoStream, path, f.vcodec)
	}
	return nil, false, fmt.Errorf("%w: %s has no video (yet)", errNoStream, path)
}

// annexB converts an access unit of length-prefixed NAL units to Annex-B,
// with params (SPS and PPS, Annex-B) first when key. Access unit
// delimiters are left out. ok is false when a length runs past the end.
func annexB(au []byte, nalLen int, key bool, params []byte) (out []byte, ok bool) {
	n := len(au) + 16
	if key {
		n += len(params)
	}
	out = make([]byte, 0, n)
	if key {
		out = append(out, params...)
	}
	for len(au) > 0 {
		if len(au) < nalLen {
			return nil, false
		}
		size := 0
		for _, b := range au[:nalLen] {
			size = size<<8 | int(b)
		}
		au = au[nalLen:]
		if size > len(au) {
			return nil, false
		}
		if size > 0 && au[0]&0x1f != 9 {
			out = append(append(out, 0, 0, 0, 1), au[:size]...)
		}
		au = au[size:]
	}
	return out, len(out) > 0
}
