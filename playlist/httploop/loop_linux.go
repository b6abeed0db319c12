//go:build linux

package httploop

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const loopsSupported = true

// detach takes a connection out of the Go runtime: its descriptor is
// duplicated and the original closed, which removes it from Go's poller
// without shutting the socket down.
func detach(tc *net.TCPConn) (int, error) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup: %w", derr)
	}
	tc.Close()
	return fd, nil
}

// loop is one event loop: a goroutine that waits for its connections in
// Go's poller, on its epoll descriptor (see run). Everything but adds and
// done is owned by that goroutine.
type loop struct {
	srv    *Server
	ep     int // epoll
	wakeFd int // eventfd: new connections, shutdown, keep-alive off
	done   chan struct{}

	mu       sync.Mutex
	adds     []int
	notified []Waitable // moved on since the loop last looked (Notify)
	exited   bool

	conns        map[int]*lconn
	buf          []byte // read buffer, shared by the loop's connections
	head         []byte // response head scratch
	date         []byte // the Date header's value, made once a second
	dateSec      int64
	answering    []byte // the path of the request being answered, for a panic's report
	quitting     bool
	quitSeen     bool // idle connections were closed for the shutdown
	keepAliveOff bool // as last seen

	// Parked requests (stateParked), by what they wait for.
	parked     map[Waitable]*parkGroup
	moved      []Waitable // notified, taken from under mu
	due        []*lconn   // scratch: the parked requests to ask again
	nextExpiry time.Time  // no parked request times out before it (zero: none parked)
	deadline   time.Time  // the poller's deadline now
	rearm      bool       // a request parked with a timeout before deadline
}

type connState uint8

const (
	stateIdle    connState = iota // waiting for a request
	stateHead                     // part of a request head read
	stateWriting                  // a response is going out
	stateParked                   // a blocking request waits (park)
)

// lconn is one connection of a loop.
type lconn struct {
	fd    int
	state connState
	since time.Time // when the state began: for the timeouts
	in    []byte    // an incomplete request head, or pipelined requests, kept between events
	close bool      // close once the response is out
	epOut bool      // registered for EPOLLOUT (waiting to write) rather than EPOLLIN

	// The response going out: out (head) then body, then n bytes of the
	// file descriptor file from off with sendfile. ref is released when
	// it is done.
	out    []byte
	ownOut []byte // out's storage when it had to outlive the loop's scratch
	body   []byte
	file   int
	off, n int64
	ref    Releaser

	// While parked: what the request waits for, and when it times out.
	// expired: it timed out, and the next answer is the 503.
	park    Park
	parkEnd time.Time
	expired bool
}

func newLoop(s *Server) (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile puts it in Go's poller (run).
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}); err != nil {
		unix.Close(ep)
		unix.Close(wfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return &loop{
		srv: s, ep: ep, wakeFd: wfd, done: make(chan struct{}),
		conns: make(map[int]*lconn), parked: make(map[Waitable]*parkGroup),
		buf:  make([]byte, s.maxHead+4096),
		head: make([]byte, 0, 1024),
	}, nil
}

// add gives the loop a connection's descriptor.
func (l *loop) add(fd int) {
	l.mu.Lock()
	if l.exited {
		l.mu.Unlock()
		unix.Close(fd)
		return
	}
	l.adds = append(l.adds, fd)
	l.mu.Unlock()
	l.wakeup()
}

func (l *loop) wakeup() {
	one := [8]byte{1}
	unix.Write(l.wakeFd, one[:])
}

func (l *loop) run() {
	// The loop waits in Go's poller, on its epoll descriptor, rather than
	// in a blocking epoll_wait: a goroutine blocked in a system call has
	// its P taken away by sysmon 20 µs in, which costs a thread hand-off
	// (futex) per wake-up and keeps sysmon polling at its fastest —
	// together more CPU than net/http saved (strace: 0.6 futex and 4
	// nanosleep calls per request).
	epf := os.NewFile(uintptr(l.ep), "epoll")
	defer func() {
		epf.Close()
		close(l.done)
	}()
	rc, err := epf.SyscallConn()
	if err != nil {
		l.srv.cfg.Logger.Error("http: event loop cannot wait on epoll; its connections are closed", "err", err)
		l.exit()
		return
	}
	events := make([]unix.EpollEvent, 256)
	lastSweep := time.Now()
	for {
		l.deadline = lastSweep.Add(time.Second) // the sweep's tick
		if !l.nextExpiry.IsZero() && l.nextExpiry.Before(l.deadline) {
			l.deadline = l.nextExpiry
		}
		l.rearm = false
		epf.SetReadDeadline(l.deadline)
		var werr error
		err := rc.Read(func(uintptr) bool {
			for {
				n, err := rawEpollPoll(l.ep, events)
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					werr = err
					return true
				}
				if n == 0 {
					return false // drained: park until the descriptor is readable
				}
				now := time.Now()
				for _, ev := range events[:n] {
					if int(ev.Fd) == l.wakeFd {
						l.woken(now)
						continue
					}
					if c := l.conns[int(ev.Fd)]; c != nil {
						l.event(c, ev.Events, now)
					}
				}
				if l.quitting || l.rearm {
					return true
				}
			}
		})
		if werr == nil && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			werr = err
		}
		if werr != nil {
			l.srv.cfg.Logger.Error("http: waiting on epoll failed; the loop's connections are closed", "err", werr)
			l.exit()
			return
		}
		now := time.Now()
		if !l.nextExpiry.IsZero() && !now.Before(l.nextExpiry) {
			l.expire(now)
		}
		if now.Sub(lastSweep) >= time.Second {
			lastSweep = now
			l.sweep(now)
		}
		if l.quitting && (len(l.conns) == 0 || l.srv.closed.Load()) {
			l.exit()
			return
		}
	}
}

// exit closes every connection and the loop's own descriptors.
func (l *loop) exit() {
	l.mu.Lock()
	l.exited = true
	adds := l.adds
	l.adds = nil
	l.mu.Unlock()
	for _, fd := range adds {
		unix.Close(fd)
	}
	for _, c := range l.conns {
		l.close(c)
	}
	unix.Close(l.wakeFd) // l.ep closes with run's file
}

// woken takes new connections and notices shutdown and keep-alive off.
func (l *loop) woken(now time.Time) {
	var b [8]byte
	unix.Read(l.wakeFd, b[:])
	l.mu.Lock()
	adds := l.adds
	l.adds = nil
	moved := append(l.moved[:0], l.notified...)
	l.notified = l.notified[:0]
	l.mu.Unlock()
	for i, w := range moved {
		l.retry(w, now)
		moved[i] = nil
	}
	l.moved = moved[:0]
	select {
	case <-l.srv.quit:
		l.quitting = true
	default:
	}
	// When shutdown or keep-alive off is first seen, idle connections
	// close; those accepted later are answered once and closed.
	closeIdle := false
	if l.quitting && !l.quitSeen {
		l.quitSeen, closeIdle = true, true
	}
	if off := l.srv.noKeepAlive.Load(); off != l.keepAliveOff {
		l.keepAliveOff = off
		closeIdle = closeIdle || off
	}
	if closeIdle {
		for _, c := range l.conns {
			if c.state == stateIdle && len(c.in) == 0 {
				l.close(c)
			} else {
				c.close = true // after the answer under way
			}
		}
	}
	// New connections last: accepted around a shutdown or keep-alive
	// off, they are not idle ones to close (their request may be on its
	// way, and a close would reset it) but are answered once and closed.
	for _, fd := range adds {
		if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
			l.srv.cfg.Logger.Warn("http: epoll_ctl add failed; connection closed", "err", err)
			unix.Close(fd)
			continue
		}
		l.conns[fd] = &lconn{fd: fd, since: now}
	}
}

// sweep closes connections past their timeout.
func (l *loop) sweep(now time.Time) {
	for _, c := range l.conns {
		limit := l.srv.idle
		switch c.state {
		case stateHead:
			limit = l.srv.head
		case stateWriting:
			limit = l.srv.write
		case stateParked:
			continue // its own timeout (expire)
		}
		if limit > 0 && now.Sub(c.since) > limit {
			l.close(c)
		}
	}
}

// event handles readiness of one connection. A panic closes that
// connection only, and is reported to the Observer.
func (l *loop) event(c *lconn, events uint32, now time.Time) {
	defer func() {
		if v := recover(); v != nil {
			defer l.close(c)
			p := Panic{Path: string(l.answering), Remote: peer(c.fd), Value: v, Stack: debug.Stack(), Loop: true}
			l.answering = nil
			l.srv.obs.Panicked(p)
		}
	}()
	if c.state == stateWriting {
		switch l.flush(c) {
		case flushDone:
			l.watch(c, false)
			c.state, c.since = stateIdle, now
			if len(c.in) > 0 { // pipelined
				l.serve(c, append(l.buf[:0], c.in...), now)
			}
		case flushWait:
		}
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) == 0 {
		return
	}
	if c.state == stateParked {
		l.parkedRead(c)
		return
	}
	kept := copy(l.buf, c.in)
	n, err := rawRead(c.fd, l.buf[kept:])
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil || n == 0:
		l.close(c) // the viewer went away
		return
	}
	c.in = c.in[:0]
	l.serve(c, l.buf[:kept+n], now)
}

// serve answers the requests in data, as long as they are plain and the
// socket takes the answers at once.
func (l *loop) serve(c *lconn, data []byte, now time.Time) {
	for len(data) > 0 {
		req, res := parseRequest(data, l.srv.maxHead)
		switch res {
		case parseMore:
			c.in = append(c.in[:0], data...)
			if c.state != stateHead {
				c.state, c.since = stateHead, now
			}
			return
		case parseOther:
			l.handOver(c, data)
			return
		}
		switch l.answer(c, req, now) {
		case Decline:
			l.handOver(c, data)
			return
		case Wait:
			// The request stays in c.in, with any pipelined after it, to
			// be parsed again when it is asked again.
			c.in = append(c.in[:0], data...)
			l.park(c, now)
			return
		}
		data = data[req.size:]
		c.state, c.since = stateWriting, now
		switch l.flush(c) {
		case flushClosed:
			return
		case flushWait:
			c.in = append(c.in[:0], data...)
			l.watch(c, true)
			return
		}
	}
	c.state, c.since = stateIdle, now
}

// watch switches the connection's interest between reading and writing.
func (l *loop) watch(c *lconn, out bool) {
	if c.epOut == out {
		return
	}
	ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if out {
		ev = unix.EPOLLOUT
	}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)}); err != nil {
		l.close(c)
		return
	}
	c.epOut = out
}

// answer sets up the response to a plain request with a clean path that
// the Source answers (Serve), or keeps the Source's Park in c (Wait), and
// reports Decline (net/http answers) for any other request. A request that
// timed out parked gets its 503. It allocates nothing itself
// (TestLoopAnswerAllocs); in fount neither the Source nor the Observer
// does (playlist's TestLookupAllocs and TestLoopRequestAllocs, cmd/fount's
// TestObserveAllocs).
func (l *loop) answer(c *lconn, req plainRequest, now time.Time) Verdict {
	if !cleanPath(req.path) {
		return Decline
	}
	if c.expired {
		c.expired = false
		l.answerError(c, req, http.StatusServiceUnavailable, c.park.TimeoutMsg, now)
		c.park = Park{}
		return Serve
	}
	l.answering = req.path
	a, v := l.srv.cfg.Source.Lookup(Request{Path: req.path, Query: req.query, Gzip: req.gzip, Head: req.head})
	switch v {
	case Wait:
		l.answering = nil
		c.park = a.Park
		return Wait
	case Serve:
	default:
		l.answering = nil
		return Decline
	}
	c.close = req.close || l.quitting || l.srv.noKeepAlive.Load()
	c.ref = a.Hold
	c.out = a.Head.appendResponse(l.head[:0], c.close, l.dateNow(now), l.srv.cfg.Origins.answer(req.origin))
	var n int64
	if !req.head {
		n = a.Head.Length
		switch {
		case a.Body != nil:
			c.body = a.Body
		case a.N > 0:
			c.file, c.off, c.n = a.File, a.Off, a.N
		}
	}
	l.srv.obs.Observe(req.path, http.StatusOK, n)
	l.answering = nil
	return Serve
}

// answerError sets up an error answer, head and body in the scratch.
func (l *loop) answerError(c *lconn, req plainRequest, status int, msg string, now time.Time) {
	c.close = req.close || l.quitting || l.srv.noKeepAlive.Load()
	c.out = appendError(l.head[:0], status, msg, req.head, c.close, l.dateNow(now), l.srv.cfg.Origins.answer(req.origin))
	var n int64
	if !req.head {
		n = int64(len(msg) + 1)
	}
	l.srv.obs.Observe(req.path, status, n)
}

// dateNow is the Date header's value, made once a second.
func (l *loop) dateNow(now time.Time) []byte {
	if sec := now.Unix(); sec != l.dateSec {
		l.dateSec, l.date = sec, now.UTC().AppendFormat(l.date[:0], http.TimeFormat)
	}
	return l.date
}

// peer is the address of a connection's client, for a panic's report.
func peer(fd int) string {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return ""
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String()
	}
	return ""
}

type flushResult uint8

const (
	flushDone   flushResult = iota // the response is out
	flushWait                      // the socket is full: wait for EPOLLOUT
	flushClosed                    // the connection failed, or was to close after the response
)

// flush writes what is left of the response.
func (l *loop) flush(c *lconn) flushResult {
	for len(c.out) > 0 || len(c.body) > 0 {
		var n int
		var err error
		switch {
		case len(c.out) > 0 && len(c.body) > 0:
			n, err = rawWritev(c.fd, c.out, c.body)
		case len(c.out) > 0 && c.n > 0:
			// The head waits for sendfile's first bytes and leaves in
			// their packet (as nginx's tcp_nopush), not in one of its
			// own through the network stack.
			n, err = rawSend(c.fd, c.out, unix.MSG_MORE)
		case len(c.out) > 0:
			n, err = rawSend(c.fd, c.out, 0)
		default:
			n, err = rawSend(c.fd, c.body, 0)
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			if len(c.out) > 0 {
				// out is in the loop's scratch, which the next
				// connection reuses.
				c.ownOut = append(c.ownOut[:0], c.out...)
				c.out = c.ownOut
			}
			return flushWait
		}
		if err != nil {
			l.close(c)
			return flushClosed
		}
		k := min(n, len(c.out))
		c.out, n = c.out[k:], n-k
		c.body = c.body[n:]
	}
	for c.n > 0 {
		off := c.off
		n, err := rawSendfile(c.fd, c.file, &off, int(min(c.n, 1<<30)))
		if n > 0 {
			c.off += int64(n)
			c.n -= int64(n)
		}
		switch {
		case err == unix.EAGAIN:
			return flushWait
		case err == unix.EINTR:
		case err != nil || n == 0:
			// n == 0: the file is shorter than the answer said, which
			// cannot be; the viewer gets a short body and the close.
			if err == nil {
				l.srv.cfg.Logger.Error("http: an answer's file is shorter than its length")
			}
			l.close(c)
			return flushClosed
		}
	}
	l.finish(c)
	if c.close {
		l.close(c)
		return flushClosed
	}
	return flushDone
}

// finish lets go of what the last response held.
func (l *loop) finish(c *lconn) {
	if c.ref != nil {
		c.ref.Release()
	}
	c.out, c.body, c.ref, c.n = nil, nil, nil, 0
	if cap(c.ownOut) > 4096 {
		c.ownOut = nil
	}
}

func (l *loop) close(c *lconn) {
	if l.conns[c.fd] != c {
		return
	}
	if c.state == stateParked {
		l.unpark(c, false)
	}
	l.finish(c)
	unix.Close(c.fd) // also takes it out of the epoll set
	delete(l.conns, c.fd)
}
