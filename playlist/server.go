package playlist

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ServerConfig configures a viewer Server.
type ServerConfig struct {
	// Fallback answers every request the event loops do not, on the
	// connections they hand it; its Handler is the whole viewer port
	// (health checks, metrics instrumentation, this registry's Handler).
	Fallback *http.Server
	// Loops is the number of event loops: 0 means one per GOMAXPROCS, a
	// negative number none (Fallback serves every connection). Event loops
	// need Linux; elsewhere there are none.
	Loops int
	// Timeouts of the loops' connections, as in http.Server: between
	// requests, from a request's first byte to its last header, and for
	// writing one response.
	IdleTimeout, ReadHeaderTimeout, WriteTimeout time.Duration
	// MaxHeaderBytes bounds a request head the loops read; a bigger one is
	// handed to Fallback, which refuses it.
	MaxHeaderBytes int
	// Observe, if set, is told of every request a loop answered: its path,
	// status and the body bytes written (the metrics Fallback's handler
	// keeps for its own requests).
	Observe func(path string, status int, bodyBytes int64)
	// Panicked, if set, is called when a loop recovered a panic (the
	// connection it was answering is closed; the others go on).
	Panicked func()
	Logger   *slog.Logger
}

// Server serves viewers. Plain GET and HEAD requests for a playlist or a
// media object that exists — nearly all a player or a CDN edge sends — are
// answered by event loops: one goroutine per loop waits on epoll for all
// of its connections, writes the response head and hands the body to the
// kernel (write, or sendfile from a memory file), with no goroutine, no
// request object and no header map per request. Any other request (LL-HLS
// blocking reloads, ranges, conditionals, errors, health checks) hands its
// connection, with the bytes already read, to Fallback, which keeps it.
// With a goroutine per connection and net/http alone, fount served a viewer
// for more CPU than nginx; with the loops, 0.84-0.95x nginx's at 3,000
// viewers (docs/performance.md).
type Server struct {
	reg         *Registry
	cfg         ServerConfig
	loops       []*loop
	next        atomic.Uint32 // round-robin over loops
	handed      chan net.Conn // connections for Fallback
	quit        chan struct{} // closed by Shutdown and Close
	quitOnce    sync.Once
	closed      atomic.Bool // Close: drop connections mid-response too
	noKeepAlive atomic.Bool
	wg          sync.WaitGroup // the loops and Fallback's Serve
	mu          sync.Mutex
	ln          net.Listener // set by Serve
}

// NewServer makes a viewer server for r.
func (r *Registry) NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	if cfg.Loops == 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if !loopsSupported {
		cfg.Loops = 0
	}
	return &Server{reg: r, cfg: cfg, handed: make(chan net.Conn, 64), quit: make(chan struct{})}
}

// Serve accepts connections on ln until Shutdown or Close, and then returns
// http.ErrServerClosed. It may be called once.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.Loops <= 0 {
		return s.cfg.Fallback.Serve(Listener(ln))
	}
	s.mu.Lock()
	if s.ln != nil {
		s.mu.Unlock()
		return errors.New("playlist: Server.Serve called twice")
	}
	select {
	case <-s.quit:
		s.mu.Unlock()
		return http.ErrServerClosed
	default:
	}
	s.ln = ln
	for range s.cfg.Loops {
		l, err := newLoop(s)
		if err != nil {
			s.mu.Unlock()
			s.Close()
			return err
		}
		s.loops = append(s.loops, l)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); l.run() }()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.cfg.Fallback.Serve(&handedListener{s: s, addr: ln.Addr()})
	}()
	s.mu.Unlock()

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-s.quit:
				return http.ErrServerClosed
			default:
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of descriptors, like net/http: wait, then try again.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.cfg.Logger.Warn("http: accept failed; retrying", "err", err, "in", delay)
				select {
				case <-time.After(delay):
				case <-s.quit:
					return http.ErrServerClosed
				}
				continue
			}
			return err
		}
		delay = 0
		s.adopt(c)
	}
}

// adopt gives a new connection to a loop, or to Fallback if it is not TCP.
func (s *Server) adopt(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		s.toFallback(c)
		return
	}
	fd, err := detach(tc)
	if err != nil {
		s.cfg.Logger.Warn("http: taking a connection into an event loop; net/http serves it", "err", err)
		s.toFallback(wrapConn(c))
		return
	}
	l := s.loops[int(s.next.Add(1))%len(s.loops)]
	l.add(fd)
}

// toFallback queues a connection for Fallback, or closes it when the
// server is stopping.
func (s *Server) toFallback(c net.Conn) {
	select {
	case s.handed <- c:
	case <-s.quit:
		c.Close()
	}
}

// SetKeepAlivesEnabled(false) makes the loops close each connection after
// its current response, and idle ones at once; it is passed on to
// Fallback.
func (s *Server) SetKeepAlivesEnabled(on bool) {
	s.noKeepAlive.Store(!on)
	s.cfg.Fallback.SetKeepAlivesEnabled(on)
	s.wakeLoops()
}

// Shutdown stops accepting, closes idle connections, lets responses in
// flight finish, and waits for them until ctx ends (then see Close).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	errc := make(chan error, 1)
	go func() { errc <- s.cfg.Fallback.Shutdown(ctx) }()
	done := make(chan struct{})
	go func() { s.waitLoops(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-errc
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.closed.Store(true)
	s.stop()
	err := s.cfg.Fallback.Close()
	s.wg.Wait()
	return err
}

func (s *Server) stop() {
	s.quitOnce.Do(func() {
		s.mu.Lock()
		close(s.quit)
		if s.ln != nil {
			s.ln.Close()
		}
		s.mu.Unlock()
	})
	s.wakeLoops()
}

// loopsNow returns the loops Serve has started so far.
func (s *Server) loopsNow() []*loop {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loops
}

func (s *Server) wakeLoops() {
	for _, l := range s.loopsNow() {
		l.wakeup()
	}
}

func (s *Server) waitLoops() {
	for _, l := range s.loopsNow() {
		<-l.done
	}
}

// handedListener is what Fallback accepts from: the connections the loops
// handed over.
type handedListener struct {
	s    *Server
	addr net.Addr
}

func (h *handedListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.s.handed:
		return c, nil
	case <-h.s.quit:
		return nil, net.ErrClosed
	}
}

func (h *handedListener) Close() error   { return nil } // the Server's quit ends Accept
func (h *handedListener) Addr() net.Addr { return h.addr }
