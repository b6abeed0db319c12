// Package ingest is fount's RTMP server: it accepts publishers (ffmpeg, OBS,
// GStreamer), turns their FLV audio and video tags into codec frames on a
// 64-bit timeline, and hands them to a Publisher.
//
// It owns the RTMP connections: the handshake and chunk stream (go-rtmp,
// behind a filter that repairs extended timestamps and enforces the limits
// go-rtmp lacks), timeouts, connection and publisher limits, RTMPS
// certificates, and the publish decision (an Authorizer: AllowAll, Keys or
// a Webhook) with the mapping from stream key to public name. It reads
// legacy and Enhanced RTMP message bodies, multitrack included, and unwraps
// RTMP's 32-bit timestamps. It reads no FLV files (package ingest/flv does,
// for tools and tests).
//
// It never cuts or muxes segments, never writes storage (it uses only
// storage's name grammar) and knows nothing of HLS.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	rtmp "github.com/yutopp/go-rtmp"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
	"github.com/fount-live/fount/storage"
)

// Publisher receives publishes. It is implemented by the wiring in cmd/.
type Publisher interface {
	// Publish claims a stream name; an error refuses the publish.
	Publish(ctx context.Context, req PublishRequest) (Session, error)
}

// PublishRequest describes an encoder asking to publish.
type PublishRequest struct {
	App  string
	Name string // the public stream name (the key, or what the authoriser maps it to), validated
	// Variant is the rendition a grouped push adds to stream Name
	// (rtmp://HOST/APP/NAME?variant=RENDITION), validated as a name; ""
	// for a plain publish.
	Variant string
	Remote  net.Addr
}

// Session receives one publisher's media, in order, on the connection's read
// goroutine. Byte slices are only valid during the call.
type Session interface {
	Metadata(Metadata)
	// VideoConfig and AudioConfig set the codec configuration of a track
	// the session takes (track 0 of each kind, or the one track of a
	// TrackSplitter's session), from the publisher's first coded frame on.
	// An error wrapping segmenter.ErrNotCarried skips that track; any
	// other ends the publish.
	VideoConfig(*codec.Video) error
	AudioConfig(*codec.Audio) error
	// Frame takes a frame of a track the session takes; an error ends the
	// publish.
	Frame(segmenter.Frame) error
	// Close is called once when the publisher stops or disconnects.
	Close()
}

// TrackSplitter is implemented by a Session that can take each of an
// Enhanced RTMP publisher's tracks on a session of its own, as renditions.
//
// A publisher's shape is decided at its first coded frame. If by then more
// than one video or more than one audio track has started (and is not
// skipped), SplitTracks is asked; when it says yes, every track, both track
// 0s included, gets a session from TrackSession (a track that starts later
// gets one when it starts), and the splitting session itself keeps only
// Metadata and Close. Track sessions are closed before it. An error from
// TrackSession skips that track, or ends the publish for a track 0.
type TrackSplitter interface {
	// SplitTracks is asked once, when the publisher's shape is decided;
	// false keeps today's behaviour (track 0s on this session, others counted).
	SplitTracks() bool
	// TrackSession returns the session that takes track (kind, id) alone:
	// its configuration and frames (video only or audio only).
	TrackSession(kind segmenter.Kind, id uint8) (Session, error)
}

// Config holds the RTMP server settings.
type Config struct {
	App          string        // the only application accepted (default "live")
	ReadTimeout  time.Duration // idle timeout: a silent peer is dropped after this (default 10 s)
	WriteTimeout time.Duration // a peer that does not read is dropped after this (default 10 s)
	// HandshakeTimeout is the time from accept to a successful publish
	// (handshake, connect, createStream, publish); a connection that has
	// not published by then is closed (default 5 s: encoders take well
	// under a second).
	HandshakeTimeout time.Duration
	MaxMessageSize   uint32 // largest RTMP message accepted (default DefaultMaxMessageSize; RTMP carries none above MaxRTMPMessageSize)
	// ChunkSize is the RTMP chunk size fount announces to every client
	// right after the handshake and writes its own chunks in (default
	// DefaultChunkSize). Encoders that mirror the server's chunk size, as
	// ffmpeg does, then send their media in chunks this large instead of
	// RTMP's default 128 bytes, one system call per chunk.
	ChunkSize uint32
	// MaxConnections bounds the open RTMP connections (default 1000). At
	// the limit a new connection closes the oldest one that has not
	// published, so idle sockets cannot lock out an encoder.
	MaxConnections int
	MaxPublishers  int        // publishing connections at once (default 100); beyond it publish is refused
	Auth           Authorizer // decides publishes and public names (nil: AllowAll)
	Logger         *slog.Logger
}

// DefaultChunkSize is the chunk size fount announces (Config.ChunkSize),
// chosen by measurement with ffmpeg publishers (docs/performance.md).
const DefaultChunkSize = 64 << 10

const (
	// DefaultMaxMessageSize is Config.MaxMessageSize's default: one video
	// frame, and a 4K keyframe is a few MB.
	DefaultMaxMessageSize = 8 << 20
	// MaxRTMPMessageSize is the largest message RTMP can carry: a message
	// header's length field is 24 bits.
	MaxRTMPMessageSize = 1<<24 - 1
)

func (c Config) withDefaults() Config {
	if c.App == "" {
		c.App = "live"
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 1000
	}
	if c.MaxPublishers <= 0 {
		c.MaxPublishers = 100
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server accepts RTMP connections.
type Server struct {
	cfg Config
	pub Publisher

	mu         sync.Mutex
	conns      map[*conn]struct{}
	fresh      connList // not yet past RTMP connect, oldest first: evicted first
	joined     connList // past connect, not publishing yet, oldest first
	publishing int      // publish slots taken (see guardedHandler)
	closed     bool
	wg         sync.WaitGroup

	evictLog, handshakeLog rateLimit

	counters counters
	pubs     publishers
}

// NewServer returns a server that hands publishes to pub.
func NewServer(cfg Config, pub Publisher) *Server {
	return &Server{cfg: cfg.withDefaults(), pub: pub, conns: make(map[*conn]struct{})}
}

// Serve accepts connections on ln until ctx is done, then closes ln and
// every connection and waits for their handlers to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := rtmp.NewServer(&rtmp.ServerConfig{
		OnConnect: func(nc net.Conn) (io.ReadWriteCloser, *rtmp.ConnConfig) { return s.onConnect(ctx, nc) },
	})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(&backoffListener{Listener: RawReadListener(ln), ctx: ctx}) }()
	var err error
	select {
	case <-ctx.Done():
		srv.Close()
		// go-rtmp registers the listener inside Serve; if Close came first
		// it would accept forever, so close the listener ourselves too.
		ln.Close()
		<-done
	case err = <-done:
	}
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close() // takes s.mu itself
	}
	s.wg.Wait()
	if errors.Is(err, rtmp.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) onConnect(ctx context.Context, nc net.Conn) (io.ReadWriteCloser, *rtmp.ConnConfig) {
	log := s.cfg.Logger.With("remote", nc.RemoteAddr().String())
	c := &conn{
		Conn:         nc,
		readTimeout:  s.cfg.ReadTimeout,
		writeTimeout: s.cfg.WriteTimeout,
		handshakeBy:  time.Now().Add(s.cfg.HandshakeTimeout),
		server:       s,
	}
	// Once: the panic recovery in OnClose may have to call it again.
	done := sync.OnceFunc(s.wg.Done)
	var victim *conn
	admitted := false
	s.mu.Lock()
	switch {
	case s.closed:
		// go-rtmp calls OnConnect from its own goroutine, possibly after
		// Serve stopped: refuse the late connection.
		done = func() {}
		nc.Close()
	case len(s.conns) >= s.cfg.MaxConnections && s.fresh.head == nil && s.joined.head == nil:
		// Every slot publishes: nothing may be evicted.
		done = func() {}
		nc.Close()
		s.counters.connsRefused.Add(1)
	default:
		if len(s.conns) >= s.cfg.MaxConnections {
			victim = s.fresh.head
			if victim == nil {
				victim = s.joined.head
			}
			// The victim gives up its slot here, under the lock, not when
			// its Close below returns: that waits for the victim's own
			// goroutine to wake from its read, which in a flood of
			// accepts can take long enough for hundreds more to be
			// admitted past the limit meanwhile.
			s.untrack(victim)
		}
		s.conns[c] = struct{}{}
		s.fresh.push(c)
		s.wg.Add(1)
		s.counters.connections.Add(1)
		admitted = true
	}
	s.mu.Unlock()
	if victim != nil {
		s.counters.connsEvicted.Add(1)
		victim.Close()
		if ok, suppressed := s.evictLog.allow(); ok {
			s.cfg.Logger.Info("rtmp connection limit reached: closed the oldest connection that had not published to admit a new one",
				"max_connections", s.cfg.MaxConnections, "closed", victim.RemoteAddr().String(), "since", time.Since(victim.handshakeBy.Add(-s.cfg.HandshakeTimeout)).Round(time.Millisecond),
				"more_since_last_line", suppressed)
		}
	}
	if admitted {
		s.awaitFirstByte(c)
	}
	c.filter = newChunkFilter(deadlineReader{c}, chunkLimits{MaxMessageSize: s.cfg.MaxMessageSize})
	c.filter.onChunkSize = func(v uint32) { c.peerChunkSize.Store(v) }
	h := &handler{ctx: ctx, cfg: &s.cfg, pub: s.pub, log: log, remote: nc.RemoteAddr(), done: done, server: s, conn: c}
	return c, &rtmp.ConnConfig{
		Handler:                   &guardedHandler{h: h, s: s, c: c},
		SkipHandshakeVerification: true,
		// go-rtmp is given the filter's limits; the filter, reading first,
		// refuses first.
		ControlState: rtmp.StreamControlStateConfig{
			MaxChunkStreams:   c.filter.lim.MaxChunkStreams,
			MaxMessageStreams: 8,
			MaxMessageSize:    c.filter.lim.MaxMessageSize,
		},
		Logger: newLogBridge(log, &s.counters),
	}
}

// conn applies read and write deadlines to every I/O call (go-rtmp sets
// none) and filters what go-rtmp reads through the chunk filter.
type conn struct {
	net.Conn
	filter       *chunkFilter
	readTimeout  time.Duration
	writeTimeout time.Duration
	handshakeBy  time.Time // the publish must have succeeded by then
	server       *Server
	closeOnce    sync.Once

	published atomic.Bool
	stream    atomic.Pointer[string] // "app/name" once publishing, for panic logs
	// peerChunkSize is the chunk size the client announced (Set Chunk
	// Size), 0 while it uses RTMP's default of 128 bytes.
	peerChunkSize atomic.Uint32

	peek   [1]byte // the first byte, read by awaitFirstByte
	peeked bool    // peek is still to be read

	// The server's list of connections not publishing yet, under server.mu.
	list       *connList
	prev, next *conn
}

// Read recovers a panic in the chunk filter: go-rtmp recovers panics in its
// message loop but not in the handshake, which reads through here too.
func (c *conn) Read(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.server.recovered(c, "read", r)
			n, err = 0, fmt.Errorf("%s read: %v", errRecoveredPanic, r)
		}
	}()
	return c.filter.Read(p)
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.server.mu.Lock()
		c.server.untrack(c)
		c.server.mu.Unlock()
	})
	return err
}

// untrack takes c out of the open connections and its eviction list, if
// it is still there; s.mu is held.
func (s *Server) untrack(c *conn) {
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.counters.connections.Add(-1)
	}
	if c.list != nil {
		c.list.remove(c)
	}
}

// deadlineReader reads from the raw connection with a fresh read deadline,
// so an encoder that goes silent is dropped within the read timeout, and a
// connection that has not published is dropped at its handshake deadline
// however it trickles bytes.
type deadlineReader struct{ c *conn }

func (d deadlineReader) Read(p []byte) (int, error) {
	if d.c.peeked && len(p) > 0 {
		d.c.peeked = false
		p[0] = d.c.peek[0]
		return 1, nil
	}
	deadline := time.Now().Add(d.c.readTimeout)
	handshaking := !d.c.published.Load()
	if handshaking && d.c.handshakeBy.Before(deadline) {
		deadline = d.c.handshakeBy
	}
	if err := d.c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := d.c.Conn.Read(p)
	d.c.server.counters.bytesIn.Add(uint64(n))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if handshaking && !time.Now().Before(d.c.handshakeBy) {
			d.c.server.handshakeTimedOut(d.c)
			return n, fmt.Errorf("%s (%s): %w", errHandshakeTimeout, d.c.server.cfg.HandshakeTimeout, err)
		}
		d.c.server.counters.timeouts.Add(1)
		err = fmt.Errorf("no data from the peer for %s: %w", d.c.readTimeout, err)
	}
	return n, err
}

// awaitFirstByte waits, on go-rtmp's goroutine for this connection and
// before go-rtmp allocates its ~90 KiB of buffers for it, until the peer
// sends its first byte or its handshake deadline passes: sockets that never
// send anything (scanners, idle junk) then cost a goroutine and a few
// hundred bytes each. The byte goes to the chunk filter first.
func (s *Server) awaitFirstByte(c *conn) {
	// go-rtmp does not recover panics on this goroutine before its
	// message loop: a panic here would end the process.
	defer func() {
		if v := recover(); v != nil {
			s.recovered(c, "first read", v)
			c.peeked = false
			c.Close()
		}
	}()
	if err := c.Conn.SetReadDeadline(c.handshakeBy); err != nil {
		c.Close()
		return
	}
	n, err := c.Conn.Read(c.peek[:])
	if n == 1 {
		c.peeked = true
		s.counters.bytesIn.Add(1)
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.handshakeTimedOut(c)
	}
	// go-rtmp still gets the connection, closed: it fails at once.
	c.Close()
}

// errHandshakeTimeout starts the error of a connection closed by the
// handshake timeout; the log bridge recognises it.
const errHandshakeTimeout = "no publish within the handshake timeout"

// handshakeTimedOut gives up c's slot and counts the timeout, unless c
// was evicted (or closed) meanwhile: each connection is counted by one
// limit only, and one that timed out is no longer chosen for eviction.
// The caller closes c.
func (s *Server) handshakeTimedOut(c *conn) {
	s.mu.Lock()
	_, open := s.conns[c]
	s.untrack(c)
	s.mu.Unlock()
	if !open {
		return
	}
	s.counters.handshakeTimeouts.Add(1)
	// Junk connections come in floods: one line per 10 s, with a count.
	if ok, suppressed := s.handshakeLog.allow(); ok {
		s.cfg.Logger.Info("rtmp connection closed: "+errHandshakeTimeout, "remote", c.RemoteAddr().String(),
			"handshake_timeout", s.cfg.HandshakeTimeout, "more_since_last_line", suppressed)
	}
}

// connList is a doubly linked list of connections, oldest first; the
// server's mutex guards it.
type connList struct{ head, tail *conn }

func (l *connList) push(c *conn) {
	c.list, c.prev, c.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *connList) remove(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.list, c.prev, c.next = nil, nil, nil
}

// connected moves c to the second eviction tier once its RTMP connect was
// accepted: a peer that got this far is more likely an encoder than junk.
func (s *Server) connected(c *conn) {
	s.mu.Lock()
	if c.list == &s.fresh {
		s.fresh.remove(c)
		s.joined.push(c)
	}
	s.mu.Unlock()
}

// reservePublisher takes a publish slot, or reports false at MaxPublishers.
func (s *Server) reservePublisher() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publishing >= s.cfg.MaxPublishers {
		return false
	}
	s.publishing++
	return true
}

func (s *Server) releasePublisher() {
	s.mu.Lock()
	s.publishing--
	s.mu.Unlock()
}

// startedPublishing takes c off the eviction lists and the handshake
// deadline.
func (s *Server) startedPublishing(c *conn, stream string) {
	c.stream.Store(&stream)
	c.published.Store(true)
	s.mu.Lock()
	if c.list != nil {
		c.list.remove(c)
	}
	s.mu.Unlock()
}

// rateLimit lets one log line through per interval and counts the rest.
type rateLimit struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const rateLimitInterval = 10 * time.Second

func (r *rateLimit) allow() (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < rateLimitInterval {
		r.suppressed++
		return false, 0
	}
	r.last = now
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}

// backoffListener pauses after a failed Accept (e.g. out of file
// descriptors) instead of letting go-rtmp's accept loop spin.
type backoffListener struct {
	net.Listener
	ctx context.Context
}

func (l *backoffListener) Accept() (net.Conn, error) {
	delay := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil || errors.Is(err, net.ErrClosed) || l.ctx.Err() != nil {
			return c, err
		}
		select {
		case <-time.After(delay):
		case <-l.ctx.Done():
			return nil, err
		}
		delay = min(2*delay, time.Second)
	}
}

// validName reports whether s is usable as an app or stream name. It is
// storage's grammar (storage.ValidName), so that a name accepted here is
// one that playlist routing and every store accept too.
func validName(s string) bool {
	return storage.ValidName(s) == nil
}
