package httploop

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

// Config configures a Server.
type Config struct {
	// Source answers the plain requests the loops serve themselves.
	Source Source
	// Viewer answers every request that neither the loops nor Routes
	// answer, behind the viewer middleware: CleanPathsOnly, the Observer,
	// Recover and CORS, the steps a loop takes too.
	Viewer http.Handler
	// Routes, if set, answers the requests that one of its patterns
	// matches (method and path), behind path cleaning only: the port's own
	// endpoints, such as health checks, which are not viewer requests.
	Routes *http.ServeMux
	// Observer, if set, is told of every viewer request answered and of
	// every panic recovered; without one, panics are logged.
	Observer Observer
	// Fallback is the net/http server for what the loops do not answer,
	// on the connections they hand it. Its timeouts and MaxHeaderBytes
	// are the loops' too, with net/http's meaning (IdleTimeout and
	// ReadHeaderTimeout zero: ReadTimeout's). NewServer sets its Handler,
	// which must be nil.
	Fallback *http.Server
	// WrapConn, if set, wraps every connection Fallback serves (e.g. to
	// send a body with sendfile from its ReadFrom).
	WrapConn func(net.Conn) net.Conn
	// Loops is the number of event loops: 0 means one per GOMAXPROCS, a
	// negative number none (Fallback serves every connection). Event
	// loops need Linux; elsewhere there are none.
	Loops int
	// Origins are the pages whose scripts may read viewer answers (CORS);
	// the zero value allows any.
	Origins Origins
	// Logger gets what goes wrong with connections and loops (and panics,
	// without an Observer); slog.Default() if nil.
	Logger *slog.Logger
}

// Server serves a viewer port. Plain GET and HEAD requests that the Source
// answers are answered by event loops: one goroutine per loop waits in Go's
// poller on an epoll descriptor for all of its connections, writes the
// response head and hands the body to the kernel (write, or sendfile from a
// file), with no goroutine, no request object and no header map per
// request. Any other request (LL-HLS blocking reloads, ranges,
// conditionals, errors, health checks) hands its connection, with the
// bytes already read, to Fallback, which keeps it. With a goroutine per
// connection and net/http alone, fount used about 1.4x nginx's CPU for 3,000
// classic viewers; with the loops, 0.84-0.95x (docs/performance.md).
type Server struct {
	cfg         Config
	obs         Observer
	maxHead     int           // MaxHeaderBytes
	idle, head  time.Duration // the loops' timeouts: between requests, for a request head,
	write       time.Duration // and for writing one response
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

// NewServer makes a Server. It panics if Fallback or Viewer is missing, or
// Fallback has a Handler.
func NewServer(cfg Config) *Server {
	if cfg.Fallback == nil || cfg.Viewer == nil || cfg.Fallback.Handler != nil {
		panic("httploop: NewServer needs a Viewer and a Fallback without a Handler")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Loops == 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if !loopsSupported {
		cfg.Loops = 0
	}
	fb := cfg.Fallback
	s := &Server{cfg: cfg, obs: cfg.Observer, maxHead: fb.MaxHeaderBytes, idle: fb.IdleTimeout, head: fb.ReadHeaderTimeout,
		write: fb.WriteTimeout, handed: make(chan net.Conn, 64), quit: make(chan struct{})}
	if s.obs == nil {
		s.obs = logObserver{cfg.Logger}
	}
	if s.maxHead <= 0 {
		s.maxHead = http.DefaultMaxHeaderBytes
	}
	if s.idle == 0 {
		s.idle = fb.ReadTimeout
	}
	if s.head == 0 {
		s.head = fb.ReadTimeout
	}
	fb.Handler = s.handler()
	return s
}

// handler is Fallback's: path cleaning, then Routes, or the viewer
// middleware and Viewer.
func (s *Server) handler() http.Handler {
	viewer := observe(s.obs, Recover(s.cfg.Origins.middleware(s.cfg.Viewer), s.obs.Panicked))
	routes := s.cfg.Routes
	return CleanPathsOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if routes != nil {
			if h, pattern := routes.Handler(r); pattern != "" {
				h.ServeHTTP(w, r)
				return
			}
		}
		viewer.ServeHTTP(w, r)
	}))
}

// Serve accepts connections on ln until Shutdown or Close, and then returns
// http.ErrServerClosed. It may be called once.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.Loops <= 0 {
		return s.cfg.Fallback.Serve(wrappedListener{ln, s.wrap})
	}
	s.mu.Lock()
	if s.ln != nil {
		s.mu.Unlock()
		return errors.New("httploop: Server.Serve called twice")
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
		s.toFallback(s.wrap(c))
		return
	}
	l := s.loops[int(s.next.Add(1))%len(s.loops)]
	l.add(fd)
}

// wrap applies Config.WrapConn.
func (s *Server) wrap(c net.Conn) net.Conn {
	if s.cfg.WrapConn == nil {
		return c
	}
	return s.cfg.WrapConn(c)
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

// wrappedListener applies Config.WrapConn to what it accepts.
type wrappedListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrappedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}
