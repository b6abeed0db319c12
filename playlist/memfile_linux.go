//go:build linux

package playlist

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// newMemFile makes an empty memory file: a memfd, i.e. shared memory
// outside the Go heap that the kernel can hand to a socket with
// sendfile(2), and that costs the collector nothing. The first mapSize
// bytes are also mapped read-only, so that small objects are written to
// the socket straight from them (see sendfileMin); bytes written beyond
// are read with pread. Nothing past what has been written is ever read
// through the mapping (that would be SIGBUS past the file's end).
func newMemFile(name string, t *totals, mapSize int64) (*memFile, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	var mapped []byte
	if mapSize > 0 {
		if mapped, err = unix.Mmap(fd, 0, int(mapSize), unix.PROT_READ, unix.MAP_SHARED); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("mapping a memory file: %w", err)
		}
	}
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		unmap(mapped)
		return nil, fmt.Errorf("memory file: %w", err)
	}
	m := &memFile{f: f, fd: fd, rc: rc, totals: t, mapped: mapped}
	m.refs.Store(1)
	t.memFiles.Add(1)
	return m, nil
}

func unmap(b []byte) {
	if b != nil {
		unix.Munmap(b)
	}
}

// sendTo sends the section to a socket with sendfile(2), waiting (and
// honouring the socket's write deadline) whenever its buffer is full. The
// caller holds a reference on the file.
func (s *section) sendTo(sock syscall.RawConn) (written int64, err error) {
	var serr error
	cerr := s.m.rc.Control(func(ffd uintptr) {
		werr := sock.Write(func(sfd uintptr) bool {
			for s.n > 0 {
				off := s.off
				n, e := unix.Sendfile(int(sfd), int(ffd), &off, int(min(s.n, 1<<30)))
				if n > 0 {
					s.off += int64(n)
					s.n -= int64(n)
					written += int64(n)
				}
				switch {
				case e == unix.EAGAIN:
					return false // wait until the socket can take more
				case e == unix.EINTR:
				case e != nil:
					serr = os.NewSyscallError("sendfile", e)
					return true
				case n == 0:
					serr = io.ErrUnexpectedEOF // the file is shorter than the section
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if cerr != nil {
		return written, cerr
	}
	return written, serr
}

// Listener wraps the viewers' listener so that media in memory files goes
// to the socket with sendfile(2): net/http hands a response body to its
// connection's ReadFrom, and these connections recognise a section of a
// memory file there. Everything else goes through as usual. Without it
// (e.g. behind httptest) the same bodies are copied with pread and write.
func Listener(ln net.Listener) net.Listener { return sendfileListener{ln} }

type sendfileListener struct{ net.Listener }

func (l sendfileListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return WrapConn(c), nil
}

// WrapConn makes a TCP connection one that sends media in memory files
// with sendfile, as Listener's are (an httploop.Config's WrapConn).
func WrapConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &sendfileConn{TCPConn: tc, raw: rc}
}

type sendfileConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *sendfileConn) ReadFrom(r io.Reader) (int64, error) {
	if s, ok := r.(*section); ok {
		return s.sendTo(c.raw)
	}
	return c.TCPConn.ReadFrom(r)
}
