// Package ingest is fount's RTMP server: it accepts publishers (ffmpeg, OBS,
// GStreamer), turns their FLV audio and video tags into codec frames on a
// 64-bit timeline, and hands them to a Publisher. It knows nothing of HLS.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	rtmp "github.com/yutopp/go-rtmp"

	"github.com/fount-live/fount/segmenter"
)

// Publisher receives publishes. It is implemented by the wiring in cmd/.
type Publisher interface {
	// Publish claims a stream name; an error refuses the publish.
	Publish(ctx context.Context, req PublishRequest) (Session, error)
}

// PublishRequest describes an encoder asking to publish.
type PublishRequest struct {
	App    string
	Name   string // the stream key, validated
	Remote net.Addr
}

// Session receives one publisher's media, in order, on the connection's read
// goroutine. Byte slices are only valid during the call.
type Session interface {
	Metadata(Metadata)
	VideoConfig(avcDecoderConfigurationRecord []byte) error
	AudioConfig(audioSpecificConfig []byte) error
	Frame(segmenter.Frame) error
	// Close is called once when the publisher stops or disconnects.
	Close()
}

// Metadata is what fount reads from the encoder's onMetaData.
type Metadata struct {
	Tracks                   segmenter.Tracks // supported tracks the encoder announced
	Width, Height, FrameRate float64
	VideoBitrate             float64 // kbit/s as announced
	AudioBitrate             float64
	Encoder                  string
}

// Config holds the RTMP server settings.
type Config struct {
	App            string        // the only application accepted (default "live")
	ReadTimeout    time.Duration // a silent peer is dropped after this (default 10 s)
	WriteTimeout   time.Duration // a peer that does not read is dropped after this (default 10 s)
	MaxMessageSize uint32        // largest RTMP message accepted (default 8 MiB: a 4K keyframe is a few MB)
	Auth           Authorizer    // decides publishes and public names (nil: AllowAll)
	Logger         *slog.Logger
}

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
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 8 << 20
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

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup

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
	go func() { done <- srv.Serve(&backoffListener{Listener: ln, ctx: ctx}) }()
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
		server:       s,
	}
	c.filter = newChunkFilter(deadlineReader{c}, chunkLimits{MaxMessageSize: s.cfg.MaxMessageSize})
	done := s.wg.Done
	s.mu.Lock()
	if s.closed {
		// go-rtmp calls OnConnect from its own goroutine, possibly after
		// Serve stopped: refuse the late connection.
		done = func() {}
		nc.Close()
	} else {
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.counters.connections.Add(1)
	}
	s.mu.Unlock()
	h := &handler{ctx: ctx, cfg: &s.cfg, pub: s.pub, log: log, remote: nc.RemoteAddr(), done: done, server: s, conn: c}
	return c, &rtmp.ConnConfig{
		Handler:                   h,
		SkipHandshakeVerification: true,
		ControlState: rtmp.StreamControlStateConfig{
			MaxChunkStreams:   64,
			MaxMessageStreams: 8,
			MaxMessageSize:    s.cfg.MaxMessageSize,
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
	server       *Server
	closeOnce    sync.Once
}

func (c *conn) Read(p []byte) (int, error) { return c.filter.Read(p) }

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
		if _, ok := c.server.conns[c]; ok {
			delete(c.server.conns, c)
			c.server.counters.connections.Add(-1)
		}
		c.server.mu.Unlock()
	})
	return err
}

// deadlineReader reads from the raw connection with a fresh read deadline,
// so an encoder that goes silent is dropped within the read timeout.
type deadlineReader struct{ c *conn }

func (d deadlineReader) Read(p []byte) (int, error) {
	if err := d.c.Conn.SetReadDeadline(time.Now().Add(d.c.readTimeout)); err != nil {
		return 0, err
	}
	n, err := d.c.Conn.Read(p)
	d.c.server.counters.bytesIn.Add(uint64(n))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		d.c.server.counters.timeouts.Add(1)
		err = fmt.Errorf("no data from the peer for %s: %w", d.c.readTimeout, err)
	}
	return n, err
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

// validName reports whether s is usable as an app or stream name: letters,
// digits, '-', '_' and '.', not "." or "..", at most 128 bytes.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
