//go:build linux

package httploop

import (
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// handOver gives the connection to Fallback with the bytes read so far.
func (l *loop) handOver(c *lconn, pending []byte) {
	delete(l.conns, c.fd)
	l.finish(c)
	// Out of the epoll set first: the descriptor net.FileConn makes
	// shares the socket, which would keep it in the set.
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, c.fd, nil)
	f := os.NewFile(uintptr(c.fd), "viewer")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		l.srv.cfg.Logger.Warn("http: handing a connection to net/http failed; closed", "err", err)
		return
	}
	l.srv.toFallback(&replayConn{Conn: l.srv.wrap(nc), pending: append([]byte(nil), pending...)})
}

// replayConn reads the bytes a loop read before the connection's own.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// ReadFrom keeps sendfile for what net/http answers.
func (c *replayConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite lets net/http half-close, as on its own connections.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
