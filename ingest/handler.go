package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	rtmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/fount-live/fount/segmenter"
)

// handler is one RTMP connection's go-rtmp handler. go-rtmp calls it from
// the connection's read goroutine only, so it needs no lock.
type handler struct {
	rtmp.DefaultHandler
	ctx    context.Context
	cfg    *Config
	pub    Publisher
	log    *slog.Logger
	remote net.Addr
	done   func()
	server *Server
	conn   *conn
	stats  *publishStats // while publishing

	app       string
	stream    string // "app/name" while publishing
	sess      Session
	published bool

	clock    timeline
	buf      bytes.Buffer // reused for every media message
	ignored  segmenter.Tracks
	frames   uint64
	meta     Metadata // the last onMetaData
	haveMeta bool
}

// OnServe runs after the handshake, before any message: it announces
// fount's chunk size, so that its replies go out in few chunks and, above
// all, so that encoders which mirror it (ffmpeg) publish in large chunks.
// The announcement is the first message the client reads, and go-rtmp
// writes everything after it in the new size.
func (h *handler) OnServe(c *rtmp.Conn) {
	size := h.cfg.ChunkSize
	if err := c.GetChunkStreamer().SelfState().SetChunkSize(size); err != nil {
		h.log.Error("rtmp: cannot use the configured chunk size", "chunk_size", size, "err", err)
		h.conn.Close()
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.WriteTimeout)
	defer cancel()
	if err := c.Write(ctx, controlChunkStream, 0, &rtmp.ChunkMessage{Message: &message.SetChunkSize{ChunkSize: size}}); err != nil {
		// Our own chunks are now larger than the client expects: the
		// connection cannot go on.
		h.log.Debug("rtmp: announcing the chunk size failed", "err", err)
		h.conn.Close()
	}
}

// controlChunkStream is the chunk stream of protocol control messages
// (RTMP 1.0 §5.4).
const controlChunkStream = 2

func (h *handler) OnConnect(_ uint32, cmd *message.NetConnectionConnect) error {
	app := strings.Trim(cmd.Command.App, "/")
	// Some encoders put a query string (tokens) on the app.
	app, _, _ = strings.Cut(app, "?")
	if app != h.cfg.App {
		h.log.Warn("rtmp connect refused: unknown application", "app", app, "want", h.cfg.App)
		return fmt.Errorf("unknown application %q (publish to rtmp://HOST/%s/KEY)", app, h.cfg.App)
	}
	h.app = app
	h.log.Debug("rtmp connect", "app", app, "flash_ver", cmd.Command.FlashVer)
	return nil
}

func (h *handler) OnPublish(_ *rtmp.StreamContext, _ uint32, cmd *message.NetStreamPublish) error {
	if h.app == "" {
		return errors.New("publish before connect")
	}
	if h.published {
		return h.refuseSecondPublish()
	}
	key, query, _ := strings.Cut(cmd.PublishingName, "?")
	if key == "" || len(key) > 1024 {
		h.server.counters.publishesRefused.Add(1)
		h.log.Warn("rtmp publish refused: empty or oversized stream key", "key_length", len(key))
		return errors.New("invalid stream key")
	}
	// Extra publish parameters (rtmp://HOST/live/KEY?a=b) go to the
	// authoriser as metadata.
	var md map[string]string
	if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
		md = make(map[string]string, len(q))
		for k, v := range q {
			md[k] = v[0]
		}
	}
	auth := h.cfg.Auth
	if auth == nil {
		auth = AllowAll{}
	}
	name, err := auth.Authorize(h.ctx, AuthRequest{App: h.app, Key: key, Remote: h.remote, Metadata: md})
	if err != nil {
		// The key is secret: only its fingerprint is logged.
		h.server.counters.publishesRefused.Add(1)
		h.log.Warn("rtmp publish refused by authorisation", "key", KeyFingerprint(key), "err", err)
		return fmt.Errorf("publish refused: %w", err)
	}
	sess, err := h.pub.Publish(h.ctx, PublishRequest{App: h.app, Name: name, Remote: h.remote})
	if err != nil {
		h.server.counters.publishesRefused.Add(1)
		h.log.Warn("rtmp publish refused", "stream", h.app+"/"+name, "err", err)
		return fmt.Errorf("publish %s/%s refused: %w", h.app, name, err)
	}
	h.server.counters.publishesAccepted.Add(1)
	h.stats = &publishStats{stream: h.app + "/" + name, remote: h.remote.String(), started: time.Now(), conn: h.conn}
	h.stats.lastVideo.Store(noTimestamp)
	h.stats.lastAudio.Store(noTimestamp)
	h.server.pubs.add(h.stats)
	h.published = true
	h.sess = sess
	h.stream = h.app + "/" + name
	h.log = h.log.With("stream", h.stream)
	h.log.Info("publish started")
	return nil
}

func (h *handler) OnSetDataFrame(_ uint32, data *message.NetStreamSetDataFrame) error {
	if h.sess == nil {
		return nil
	}
	md, err := parseMetadata(data.Payload)
	if err != nil {
		// Metadata is advisory: a bad one is worth a line, not a dropped stream.
		h.log.Warn("ignoring unreadable onMetaData", "err", err)
		return nil
	}
	// Some encoders (GStreamer's flvmux) repeat onMetaData many times a
	// second: log the first one, and a changed one.
	lvl := slog.LevelDebug
	if !h.haveMeta || md != h.meta {
		lvl = slog.LevelInfo
	}
	h.meta, h.haveMeta = md, true
	h.log.Log(context.Background(), lvl, "stream metadata", "width", md.Width, "height", md.Height, "fps", md.FrameRate, "encoder", md.Encoder)
	h.sess.Metadata(md)
	return nil
}

func (h *handler) OnVideo(ts uint32, payload io.Reader) error {
	body, err := h.read(payload)
	if err != nil || h.sess == nil {
		return h.noSession(err, "video")
	}
	dts := h.clock.unwrap(ts)
	if h.clock.wrapped {
		h.noteWrap(dts)
	}
	h.stats.bytes.Add(uint64(len(body)))
	h.stats.lastVideo.Store(dts.Milliseconds())
	if h.ignored&segmenter.Video != 0 {
		return nil
	}
	tag, err := parseVideoTag(body)
	if errors.Is(err, errUnsupportedCodec) {
		h.ignoreTrack(segmenter.Video, err)
		return nil
	}
	if err != nil {
		return err
	}
	switch tag.kind {
	case tagConfig:
		if err := h.sess.VideoConfig(tag.data); err != nil {
			return fmt.Errorf("video sequence header: %w", err)
		}
	case tagFrame:
		h.frames++
		return h.sess.Frame(segmenter.Frame{
			Kind: segmenter.Video,
			DTS:  dts,
			PTS:  dts + time.Duration(tag.cts)*time.Millisecond,
			Key:  tag.key,
			Data: tag.data,
		})
	}
	return nil
}

func (h *handler) OnAudio(ts uint32, payload io.Reader) error {
	body, err := h.read(payload)
	if err != nil || h.sess == nil {
		return h.noSession(err, "audio")
	}
	dts := h.clock.unwrap(ts)
	if h.clock.wrapped {
		h.noteWrap(dts)
	}
	h.stats.bytes.Add(uint64(len(body)))
	h.stats.lastAudio.Store(dts.Milliseconds())
	if h.ignored&segmenter.Audio != 0 {
		return nil
	}
	tag, err := parseAudioTag(body)
	if errors.Is(err, errUnsupportedCodec) {
		h.ignoreTrack(segmenter.Audio, err)
		return nil
	}
	if err != nil {
		return err
	}
	switch tag.kind {
	case tagConfig:
		if err := h.sess.AudioConfig(tag.data); err != nil {
			return fmt.Errorf("audio sequence header: %w", err)
		}
	case tagFrame:
		h.frames++
		return h.sess.Frame(segmenter.Frame{Kind: segmenter.Audio, DTS: dts, PTS: dts, Data: tag.data})
	}
	return nil
}

// read copies a message payload out of go-rtmp's reused buffer into ours,
// the one copy of media bytes on the ingest path.
func (h *handler) read(payload io.Reader) ([]byte, error) {
	h.buf.Reset()
	if _, err := h.buf.ReadFrom(payload); err != nil {
		return nil, fmt.Errorf("reading media message: %w", err)
	}
	return h.buf.Bytes(), nil
}

// noteWrap logs and counts the publisher's timestamps passing 2^32 ms: not
// an error (the timeline goes on), but rare enough to be worth a line.
func (h *handler) noteWrap(dts time.Duration) {
	h.server.counters.timestampWraps.Add(1)
	h.log.Info("rtmp timestamps wrapped past 2^32 ms (49.7 days); the stream's timeline continues", "timeline", dts)
}

// refuseSecondPublish answers a second publish on a connection that is
// already publishing. Returning a plain error would make go-rtmp close the
// connection and so end the first publish too; go-rtmp (v0.0.7) sends the
// peer NetStream.Publish.Failed and then ignores an error of this type only,
// so the refusal costs the peer its second stream and nothing else.
func (h *handler) refuseSecondPublish() error {
	h.server.counters.publishesRefused.Add(1)
	h.log.Warn("rtmp publish refused: this connection already published; the first publish carries on")
	return &message.UnknownCommandBodyDecodeError{Name: "publish"}
}

// OnUnknownCommandMessage gets the commands go-rtmp does not handle in the
// stream's state: a publish outside its place (before connect/createStream,
// or again on a publishing stream) and commands fount has no use for.
func (h *handler) OnUnknownCommandMessage(_ uint32, cmd *message.CommandMessage) error {
	if cmd.CommandName != "publish" {
		h.log.Debug("ignoring rtmp command", "command", cmd.CommandName)
		return nil
	}
	if h.published {
		// Again on the stream it publishes: refused, go-rtmp answers nothing.
		h.refuseSecondPublish()
		return nil
	}
	h.server.counters.publishesRefused.Add(1)
	h.log.Warn("rtmp publish refused: publish before connect and createStream")
	return errors.New("publish before connect and createStream")
}

// OnUnknownMessage gets messages go-rtmp does not handle in the stream's
// state. Audio or video there was sent before (or beside) a publish: the
// peer does not follow the protocol, so the connection is closed. Other
// messages (user control, acknowledgements) are harmless.
func (h *handler) OnUnknownMessage(_ uint32, msg message.Message) error {
	switch msg.(type) {
	case *message.AudioMessage:
		return h.noSession(nil, "audio")
	case *message.VideoMessage:
		return h.noSession(nil, "video")
	}
	h.log.Debug("ignoring rtmp message", "type", fmt.Sprintf("%T", msg))
	return nil
}

func (h *handler) noSession(err error, kind string) error {
	if err != nil {
		return err
	}
	h.log.Warn("media before publish", "kind", kind)
	return fmt.Errorf("%s message before publish", kind)
}

func (h *handler) ignoreTrack(k segmenter.Tracks, err error) {
	h.ignored |= k
	// Once per publisher: an ignored track is not parsed again.
	if msg := refusedTrackMessage(err); msg != "" {
		h.log.Warn(msg, "stream", h.stream)
		return
	}
	h.log.Warn("ignoring track: fount remuxes H.264 video and AAC audio only", "err", err)
}

func (h *handler) OnClose() {
	if h.sess != nil {
		h.sess.Close()
		h.server.pubs.remove(h.stats)
		h.log.Info("publish ended", "frames", h.frames)
		h.sess = nil
	} else if !h.published {
		// go-rtmp says nothing of a peer that hangs up (even mid-message)
		// before publishing; debug, as port scanners and health checks do.
		h.log.Debug("rtmp connection closed before publishing", "connected", h.app != "")
	}
	h.done()
}

// parseMetadata reads the onMetaData ECMA array that follows
// "@setDataFrame", with fount's own AMF0 reader: go-amf0 fails on valid
// metadata (nested objects after other properties, as Enhanced RTMP's
// videoTrackIdInfoMap is, read as "unexpected EOF"; an object and a strict
// array in one ECMA array panic).
func parseMetadata(p []byte) (Metadata, error) {
	// Bound every declared length and the nesting by the payload first.
	if err := checkAMF0(p, 2); err != nil {
		return Metadata{}, fmt.Errorf("onMetaData: %w", err)
	}
	r := amf0Reader{b: p}
	name, err := r.string()
	if err != nil {
		return Metadata{}, fmt.Errorf("metadata name: %w", err)
	}
	if string(name) != "onMetaData" {
		return Metadata{}, fmt.Errorf("data frame %q is not onMetaData", name)
	}
	if isObj, err := r.object(); err != nil || !isObj {
		return Metadata{}, fmt.Errorf("onMetaData is not an object (%v)", err)
	}
	var md Metadata
	err = r.properties(func(k []byte) error {
		switch string(k) {
		case "width", "height", "framerate", "videodatarate", "audiodatarate":
			v, err := r.scalar()
			n := v.number()
			switch string(k) {
			case "width":
				md.Width = n
			case "height":
				md.Height = n
			case "framerate":
				md.FrameRate = n
			case "videodatarate":
				md.VideoBitrate = n
			default:
				md.AudioBitrate = n
			}
			return err
		case "encoder":
			v, err := r.scalar()
			if v.marker == amf0String || v.marker == amf0LongString {
				md.Encoder = string(v.str)
			}
			return err
		case "videocodecid":
			v, err := r.scalar()
			md.VideoCodec = metaFourCC(v, segmenter.Video)
			return err
		case "audiocodecid":
			v, err := r.scalar()
			md.AudioCodec = metaFourCC(v, segmenter.Audio)
			return err
		case "videoTrackIdInfoMap":
			n, err := r.trackInfoMap(segmenter.Video, &md.VideoTracks)
			md.NumVideoTracks = n
			return err
		case "audioTrackIdInfoMap":
			n, err := r.trackInfoMap(segmenter.Audio, &md.AudioTracks)
			md.NumAudioTracks = n
			return err
		}
		return r.skip()
	})
	if err != nil {
		return Metadata{}, fmt.Errorf("onMetaData: %w", err)
	}
	if md.VideoCodec == fourccAVC {
		md.Tracks |= segmenter.Video
	}
	if md.AudioCodec == fourccAAC {
		md.Tracks |= segmenter.Audio
	}
	return md, nil
}

// amf0Scalar is a number, boolean or string value; marker says which (any
// other value is skipped and only its marker kept).
type amf0Scalar struct {
	marker byte
	num    float64
	str    []byte // aliases the message
}

// number is the value as a finite number, 0 if it is not one.
func (v amf0Scalar) number() float64 {
	if v.marker != amf0Number || math.IsNaN(v.num) || math.IsInf(v.num, 0) {
		return 0
	}
	return v.num
}

// scalar reads any value, keeping numbers, booleans and strings.
func (r *amf0Reader) scalar() (amf0Scalar, error) {
	if r.p >= len(r.b) {
		return amf0Scalar{}, errAMF0Truncated
	}
	v := amf0Scalar{marker: r.b[r.p]}
	switch v.marker {
	case amf0Number:
		if len(r.b)-r.p < 9 {
			return v, errAMF0Truncated
		}
		v.num = math.Float64frombits(binary.BigEndian.Uint64(r.b[r.p+1:]))
		r.p += 9
		return v, nil
	case amf0Boolean:
		if len(r.b)-r.p < 2 {
			return v, errAMF0Truncated
		}
		if r.b[r.p+1] != 0 {
			v.num = 1
		}
		r.p += 2
		return v, nil
	case amf0String:
		var err error
		v.str, err = r.string()
		return v, err
	case amf0LongString:
		if len(r.b)-r.p < 5 {
			return v, errAMF0Truncated
		}
		n := int(binary.BigEndian.Uint32(r.b[r.p+1:]))
		if n > len(r.b)-r.p-5 {
			return v, errAMF0Truncated
		}
		v.str = r.b[r.p+5 : r.p+5+n]
		r.p += 5 + n
		return v, nil
	}
	return v, r.skip()
}

// properties calls fn for each property of an object or ECMA array whose
// start object() has read; fn reads (or skips) the value.
func (r *amf0Reader) properties(fn func(k []byte) error) error {
	for {
		k, done, err := r.next()
		if err != nil || done {
			return err
		}
		if err := fn(k); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
}

// metaFourCC reads an onMetaData codec id: a legacy FLV id (mapped to its
// FourCC where it has one), a FourCC packed into a number (big-endian, as
// Enhanced RTMP sends it) or a FourCC string; zero otherwise.
func metaFourCC(v amf0Scalar, kind segmenter.Kind) (f [4]byte) {
	switch v.marker {
	case amf0Number:
		t := v.num
		switch {
		case kind == segmenter.Video && t == flvCodecAVC:
			return fourccAVC
		case kind == segmenter.Video && t == flvCodecHEVC:
			return fourccHEVC
		case kind == segmenter.Audio && t == flvSoundAAC:
			return fourccAAC
		case kind == segmenter.Audio && (t == flvSoundMP3 || t == flvSoundMP38k):
			return fourccMP3
		case t >= 1<<24 && t <= math.MaxUint32 && t == math.Trunc(t):
			binary.BigEndian.PutUint32(f[:], uint32(t))
			if isFourCC(f) {
				return f
			}
		}
	case amf0String, amf0LongString:
		if len(v.str) == 4 && isFourCC([4]byte(v.str)) {
			return [4]byte(v.str)
		}
	}
	return [4]byte{}
}

// isFourCC: four printable ASCII characters.
func isFourCC(f [4]byte) bool {
	for _, c := range f {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// trackInfoMap reads a videoTrackIdInfoMap or audioTrackIdInfoMap (an
// object keyed by trackId "1", "2"...) into out in trackId order and
// returns how many entries it kept. Entries that are not objects, keys
// that are not a trackId (0..255), repeated trackIds and entries beyond
// len(out) are dropped.
func (r *amf0Reader) trackInfoMap(kind segmenter.Kind, out *[MaxTrackInfo]TrackInfo) (int, error) {
	if isObj, err := r.object(); err != nil || !isObj {
		if errors.Is(err, errAMF0NotObject) {
			return 0, r.skip()
		}
		return 0, err
	}
	var all []TrackInfo
	seen := map[int]bool{}
	err := r.properties(func(k []byte) error {
		id, err := strconv.Atoi(string(k))
		if err != nil || id < 0 || id > 255 || seen[id] || r.p >= len(r.b) || r.b[r.p] != amf0Object && r.b[r.p] != amf0ECMAArray {
			return r.skip()
		}
		seen[id] = true
		ti := TrackInfo{ID: uint8(id)}
		r.object()
		err = r.properties(func(k []byte) error {
			v, err := r.scalar()
			switch string(k) {
			case "width":
				ti.Width = v.number()
			case "height":
				ti.Height = v.number()
			case "framerate":
				ti.FrameRate = v.number()
			case "videodatarate", "audiodatarate":
				if string(k) == "videodatarate" == (kind == segmenter.Video) {
					ti.Bitrate = v.number()
				}
			case "samplerate":
				ti.SampleRate = v.number()
			case "channels":
				ti.Channels = v.number()
			case "videocodecid", "audiocodecid":
				if string(k) == "videocodecid" == (kind == segmenter.Video) {
					ti.Codec = metaFourCC(v, kind)
				}
			case "name":
				ti.Name = string(v.str)
			case "language":
				ti.Language = string(v.str)
			}
			return err
		})
		all = append(all, ti)
		return err
	})
	if err != nil {
		return 0, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return copy(out[:], all), nil
}
