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

	amf0 "github.com/yutopp/go-amf0"
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
// "@setDataFrame".
func parseMetadata(p []byte) (result Metadata, err error) {
	// go-amf0 trusts declared lengths; bound them by the payload first.
	if err := checkAMF0(p, 2); err != nil {
		return Metadata{}, fmt.Errorf("onMetaData: %w", err)
	}
	// go-amf0 panics on some valid AMF0 (an object and a strict array in
	// one ECMA array): metadata is advisory, so that is an error, not a
	// dropped publisher.
	defer func() {
		if r := recover(); r != nil {
			result, err = Metadata{}, fmt.Errorf("onMetaData: undecodable AMF0: %v", r)
		}
	}()
	dec := amf0.NewDecoder(bytes.NewReader(p))
	var name string
	if err := dec.Decode(&name); err != nil {
		return Metadata{}, fmt.Errorf("metadata name: %w", err)
	}
	if name != "onMetaData" {
		return Metadata{}, fmt.Errorf("data frame %q is not onMetaData", name)
	}
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return Metadata{}, fmt.Errorf("onMetaData: %w", err)
	}
	var m map[string]interface{}
	switch t := v.(type) {
	case amf0.ECMAArray:
		m = t
	case map[string]interface{}:
		m = t
	default:
		return Metadata{}, fmt.Errorf("onMetaData is a %T, not an object", v)
	}
	num := func(k string) float64 {
		f, _ := m[k].(float64)
		return f
	}
	md := Metadata{
		Width: num("width"), Height: num("height"), FrameRate: num("framerate"),
		VideoBitrate: num("videodatarate"), AudioBitrate: num("audiodatarate"),
	}
	md.Encoder, _ = m["encoder"].(string)
	if codecIs(m["videocodecid"], flvCodecAVC, "avc1") {
		md.Tracks |= segmenter.Video
	}
	if codecIs(m["audiocodecid"], flvSoundAAC, "mp4a") {
		md.Tracks |= segmenter.Audio
	}
	md.VideoCodec = metaFourCC(m["videocodecid"], segmenter.Video)
	md.AudioCodec = metaFourCC(m["audiocodecid"], segmenter.Audio)
	md.NumVideoTracks = trackInfoMap(m["videoTrackIdInfoMap"], segmenter.Video, &md.VideoTracks)
	md.NumAudioTracks = trackInfoMap(m["audioTrackIdInfoMap"], segmenter.Audio, &md.AudioTracks)
	return md, nil
}

// metaFourCC reads an onMetaData codec id: a legacy FLV id (mapped to its
// FourCC where it has one), a FourCC packed into a number (big-endian, as
// Enhanced RTMP sends it) or a FourCC string.
func metaFourCC(v interface{}, kind segmenter.Kind) (f [4]byte) {
	switch t := v.(type) {
	case float64:
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
	case string:
		if len(t) == 4 && isFourCC([4]byte([]byte(t))) {
			copy(f[:], t)
			return f
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
// that are not a trackId, and entries beyond len(out) are dropped.
func trackInfoMap(v interface{}, kind segmenter.Kind, out *[MaxTrackInfo]TrackInfo) int {
	var m map[string]interface{}
	switch t := v.(type) {
	case amf0.ECMAArray:
		m = t
	case map[string]interface{}:
		m = t
	default:
		return 0
	}
	type entry struct {
		id  int
		key string
	}
	var ids []entry
	for k := range m {
		id, err := strconv.Atoi(k)
		if err != nil || id < 0 || id > 255 {
			continue
		}
		ids = append(ids, entry{id, k})
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].id < ids[j].id || ids[i].id == ids[j].id && ids[i].key < ids[j].key })
	n := 0
	for i, en := range ids {
		if n == len(out) {
			break
		}
		if i > 0 && ids[i-1].id == en.id {
			continue // "1" and "01": the first only
		}
		id := en.id
		var e map[string]interface{}
		switch t := m[en.key].(type) {
		case amf0.ECMAArray:
			e = t
		case map[string]interface{}:
			e = t
		default:
			continue
		}
		num := func(k string) float64 {
			f, _ := e[k].(float64)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return 0
			}
			return f
		}
		ti := TrackInfo{ID: uint8(id), Width: num("width"), Height: num("height"), FrameRate: num("framerate"),
			SampleRate: num("samplerate"), Channels: num("channels")}
		if kind == segmenter.Video {
			ti.Codec, ti.Bitrate = metaFourCC(e["videocodecid"], kind), num("videodatarate")
		} else {
			ti.Codec, ti.Bitrate = metaFourCC(e["audiocodecid"], kind), num("audiodatarate")
		}
		ti.Name, _ = e["name"].(string)
		ti.Language, _ = e["language"].(string)
		out[n] = ti
		n++
	}
	return n
}

// codecIs matches a metadata codec id given as a legacy FLV number, a
// FourCC string, or a FourCC packed into a number (Enhanced RTMP).
func codecIs(v interface{}, id float64, fourcc string) bool {
	switch t := v.(type) {
	case float64:
		cc := float64(uint32(fourcc[0])<<24 | uint32(fourcc[1])<<16 | uint32(fourcc[2])<<8 | uint32(fourcc[3]))
		return t == id || t == cc
	case string:
		return t == fourcc
	}
	return false
}
