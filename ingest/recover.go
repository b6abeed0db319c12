package ingest

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	rtmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"
)

// guardedHandler is what go-rtmp calls for one connection: it applies the
// connection and publisher limits around the handler, and turns a panic in
// any callback (ours, the Session's, the segmenter's) into an error that
// closes this connection only. go-rtmp v0.0.7 recovers panics in its
// message loop too, but logs them as a protocol error without our stack or
// stream name, and does not cover OnClose, which runs in a deferred Close.
// Closing goes through OnClose → Session.Close as for any disconnect, so
// the stream goes idle and its encoder can reconnect.
type guardedHandler struct {
	h        *handler
	s        *Server
	c        *conn
	reserved bool // holds one of the server's MaxPublishers slots
}

var _ rtmp.Handler = (*guardedHandler)(nil)

// errRecoveredPanic starts the error that closes a connection after a
// panic; the log bridge recognises it.
const errRecoveredPanic = "recovered panic in"

// recovered logs and counts a panic recovered on connection c.
func (s *Server) recovered(c *conn, where string, v any) {
	s.counters.panics.Add(1)
	stream := ""
	if p := c.stream.Load(); p != nil {
		stream = *p
	}
	s.cfg.Logger.Error("panic in an RTMP connection; closing it", "stream", stream, "remote", c.RemoteAddr().String(),
		"in", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}

// guard is deferred by every callback: it recovers a panic and makes the
// callback return an error, which makes go-rtmp close the connection.
func (g *guardedHandler) guard(where string, err *error) {
	if v := recover(); v != nil {
		g.s.recovered(g.c, where, v)
		*err = fmt.Errorf("%s %s: %v", errRecoveredPanic, where, v)
	}
}

func (g *guardedHandler) OnServe(conn *rtmp.Conn) {
	defer func() {
		if v := recover(); v != nil {
			g.s.recovered(g.c, "OnServe", v)
			g.c.Close()
		}
	}()
	g.h.OnServe(conn)
}

func (g *guardedHandler) OnConnect(ts uint32, cmd *message.NetConnectionConnect) (err error) {
	defer g.guard("OnConnect", &err)
	if err = g.h.OnConnect(ts, cmd); err == nil {
		g.s.connected(g.c)
	}
	return err
}

func (g *guardedHandler) OnCreateStream(ts uint32, cmd *message.NetConnectionCreateStream) (err error) {
	defer g.guard("OnCreateStream", &err)
	return g.h.OnCreateStream(ts, cmd)
}

func (g *guardedHandler) OnReleaseStream(ts uint32, cmd *message.NetConnectionReleaseStream) (err error) {
	defer g.guard("OnReleaseStream", &err)
	return g.h.OnReleaseStream(ts, cmd)
}

func (g *guardedHandler) OnDeleteStream(ts uint32, cmd *message.NetStreamDeleteStream) (err error) {
	defer g.guard("OnDeleteStream", &err)
	return g.h.OnDeleteStream(ts, cmd)
}

// OnPublish takes one of MaxPublishers slots before the handler authorises
// and claims the stream, and gives it back if the publish fails.
func (g *guardedHandler) OnPublish(ctx *rtmp.StreamContext, ts uint32, cmd *message.NetStreamPublish) (err error) {
	defer g.guard("OnPublish", &err)
	if g.reserved || g.h.app == "" {
		// A second publish, or one before connect: the handler refuses it.
		return g.h.OnPublish(ctx, ts, cmd)
	}
	if !g.s.reservePublisher() {
		g.s.counters.publishesRefused.Add(1)
		g.s.counters.publisherLimit.Add(1)
		key, _, _ := strings.Cut(cmd.PublishingName, "?")
		g.h.log.Warn("rtmp publish refused: the publisher limit is reached (--max-publishers)",
			"max_publishers", g.s.cfg.MaxPublishers, "key", KeyFingerprint(key))
		return fmt.Errorf("publish refused: %d publishers already, the limit", g.s.cfg.MaxPublishers)
	}
	g.reserved = true
	err = g.h.OnPublish(ctx, ts, cmd)
	if g.h.published {
		g.s.startedPublishing(g.c, g.h.stream)
	} else {
		g.reserved = false
		g.s.releasePublisher()
	}
	return err
}

func (g *guardedHandler) OnPlay(ctx *rtmp.StreamContext, ts uint32, cmd *message.NetStreamPlay) (err error) {
	defer g.guard("OnPlay", &err)
	return g.h.OnPlay(ctx, ts, cmd)
}

func (g *guardedHandler) OnFCPublish(ts uint32, cmd *message.NetStreamFCPublish) (err error) {
	defer g.guard("OnFCPublish", &err)
	return g.h.OnFCPublish(ts, cmd)
}

func (g *guardedHandler) OnFCUnpublish(ts uint32, cmd *message.NetStreamFCUnpublish) (err error) {
	defer g.guard("OnFCUnpublish", &err)
	return g.h.OnFCUnpublish(ts, cmd)
}

func (g *guardedHandler) OnSetDataFrame(ts uint32, data *message.NetStreamSetDataFrame) (err error) {
	defer g.guard("OnSetDataFrame", &err)
	return g.h.OnSetDataFrame(ts, data)
}

func (g *guardedHandler) OnAudio(ts uint32, payload io.Reader) (err error) {
	defer g.guard("OnAudio", &err)
	return g.h.OnAudio(ts, payload)
}

func (g *guardedHandler) OnVideo(ts uint32, payload io.Reader) (err error) {
	defer g.guard("OnVideo", &err)
	return g.h.OnVideo(ts, payload)
}

func (g *guardedHandler) OnUnknownMessage(ts uint32, msg message.Message) (err error) {
	defer g.guard("OnUnknownMessage", &err)
	return g.h.OnUnknownMessage(ts, msg)
}

func (g *guardedHandler) OnUnknownCommandMessage(ts uint32, cmd *message.CommandMessage) (err error) {
	defer g.guard("OnUnknownCommandMessage", &err)
	return g.h.OnUnknownCommandMessage(ts, cmd)
}

func (g *guardedHandler) OnUnknownDataMessage(ts uint32, data *message.DataMessage) (err error) {
	defer g.guard("OnUnknownDataMessage", &err)
	return g.h.OnUnknownDataMessage(ts, data)
}

// OnClose runs once, from go-rtmp's Close. Should the handler's OnClose
// panic (a Session whose state the first panic broke), what it did not get
// to is done here, so that Serve's wait and Stats stay right.
func (g *guardedHandler) OnClose() {
	defer func() {
		if v := recover(); v != nil {
			g.s.recovered(g.c, "OnClose", v)
			if g.h.stats != nil {
				g.s.pubs.remove(g.h.stats)
			}
			g.h.done()
		}
		if g.reserved {
			g.reserved = false
			g.s.releasePublisher()
		}
	}()
	g.h.OnClose()
}
