package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	rtmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/storage"
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
	frames   uint64       // frames handed to sessions
	meta     Metadata     // the last onMetaData
	metaBody []byte       // the last onMetaData's ECMA array, as sent (textdata.go)
	haveMeta bool

	// The message being read: its timestamp, and onPacket as a func value
	// made once.
	dts        time.Duration
	onPacketFn func(trackPacket) error

	videoTracks, audioTracks []*track
	unknownLayoutLogged      bool
	badTextLogged            bool // caption text (captiontext.go)

	// How tracks map onto sessions, decided at the first coded frame;
	// splitter is h.sess once the shape is shapeSplit.
	shape    shape
	splitter TrackSplitter
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
	q, qerr := url.ParseQuery(query)
	var md map[string]string
	if qerr == nil && len(q) > 0 {
		md = make(map[string]string, len(q))
		for k, v := range q {
			md[k] = v[0]
		}
	}
	variant, err := variantParam(query, q)
	if err != nil {
		h.server.counters.publishesRefused.Add(1)
		// The variant is not secret, but it is the peer's: quoted, cut short.
		h.log.Warn("rtmp publish refused: invalid variant", "key", KeyFingerprint(key), "variant", variant[:min(len(variant), 64)], "err", err)
		return fmt.Errorf("publish refused: %w", err)
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
	sess, err := h.pub.Publish(h.ctx, PublishRequest{App: h.app, Name: name, Variant: variant, Remote: h.remote})
	if err != nil {
		h.server.counters.publishesRefused.Add(1)
		h.log.Warn("rtmp publish refused", "stream", h.app+"/"+name, "variant", variant, "err", err)
		return fmt.Errorf("publish %s/%s refused: %w", h.app, name, err)
	}
	h.server.counters.publishesAccepted.Add(1)
	h.stats = &publishStats{stream: h.app + "/" + name, variant: variant, remote: h.remote.String(), started: time.Now(), conn: h.conn}
	h.stats.lastVideo.Store(noTimestamp)
	h.stats.lastAudio.Store(noTimestamp)
	h.server.pubs.add(h.stats)
	h.published = true
	h.sess = sess
	h.stream = h.app + "/" + name
	h.log = h.log.With("stream", h.stream)
	if variant != "" {
		h.log = h.log.With("variant", variant)
	}
	h.log.Info("publish started")
	return nil
}

func (h *handler) OnSetDataFrame(ts uint32, data *message.NetStreamSetDataFrame) error {
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
	h.metadataUpdate(ts, data.Payload)
	return nil
}

// OnUnknownDataMessage gets the data messages go-rtmp has no decoder of its
// own for (those textdata.go registers), their bodies unread. onTextData
// is both timed metadata (ID3) and caption text (the WebVTT rendition),
// as the session takes either; so its body is read once for both.
func (h *handler) OnUnknownDataMessage(ts uint32, data *message.DataMessage) error {
	if h.sess == nil || data.Encoding != message.EncodingTypeAMF0 {
		return nil
	}
	switch data.Name {
	case onTextData, onCaption, "onMetaData":
	case "onCuePoint":
		return h.onCuePoint(ts, data.Body)
	default:
		return nil
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(data.Body, maxAMFMessageSize+1)); err != nil {
		return fmt.Errorf("reading %s: %w", data.Name, err)
	}
	if data.Name != onCaption {
		h.onDataEvent(ts, data.Name, buf.Bytes())
	}
	if data.Name != "onMetaData" {
		h.captionText(ts, data.Name, buf.Bytes())
	}
	return nil
}

func (h *handler) OnVideo(ts uint32, payload io.Reader) error {
	return h.media(segmenter.Video, ts, payload)
}

func (h *handler) OnAudio(ts uint32, payload io.Reader) error {
	return h.media(segmenter.Audio, ts, payload)
}

// media reads one audio or video message and hands each of its tracks'
// packets to onPacket.
func (h *handler) media(kind segmenter.Kind, ts uint32, payload io.Reader) error {
	body, err := h.read(payload)
	if err != nil || h.sess == nil {
		return h.noSession(err, kindName(kind))
	}
	h.dts = h.clock.unwrap(ts)
	if h.clock.wrapped {
		h.noteWrap(h.dts)
	}
	h.stats.bytes.Add(uint64(len(body)))
	parse := parseVideoMessage
	if kind == segmenter.Audio {
		h.stats.lastAudio.Store(h.dts.Milliseconds())
		parse = parseAudioMessage
	} else {
		h.stats.lastVideo.Store(h.dts.Milliseconds())
	}
	if h.onPacketFn == nil {
		h.onPacketFn = h.onPacket // one method value per connection, not per message
	}
	err = parse(body, h.onPacketFn)
	if errors.Is(err, errUnknownMultitrackType) {
		// A layout newer than this parser: its tracks cannot be found,
		// but the next message may be one fount reads.
		if !h.unknownLayoutLogged {
			h.unknownLayoutLogged = true
			h.log.Warn("skipping Enhanced RTMP multitrack messages of an unknown layout", "kind", kindName(kind), "err", err)
		}
		return nil
	}
	return err
}

// variantParam returns the variant a publish query names, if any. A query
// that names a variant must name a valid one, and only one: a grouped push
// that turned into a plain publish would take the stream's main rendition.
// A "variant" whose value does not unescape (url.ParseQuery drops it) is
// still found in the raw query, and refused.
func variantParam(query string, q url.Values) (string, error) {
	vs, ok := q["variant"]
	if !ok {
		for pair := range strings.SplitSeq(query, "&") {
			if k, _, _ := strings.Cut(pair, "="); k == "variant" {
				return "", fmt.Errorf("%w: the variant (?variant=) is not a readable query value", ErrInvalidName)
			}
		}
		return "", nil
	}
	if len(vs) > 1 {
		return vs[0], fmt.Errorf("%w: %d variants (?variant=) in one publish, want one", ErrInvalidName, len(vs))
	}
	if !validName(vs[0]) {
		return vs[0], fmt.Errorf("%w: the variant (?variant=) is a rendition name (letters, digits, '-', '_' and '.', at most %d)", ErrInvalidName, storage.MaxNameLen)
	}
	return vs[0], nil
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

func (h *handler) OnClose() {
	if h.sess != nil {
		h.closeTrackSessions()
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
