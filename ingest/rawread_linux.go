//go:build linux

package ingest

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// RawReadListener returns ln with its TCP connections read by a raw read(2)
// on their non-blocking descriptors, waiting for data in Go's poller as
// net.Conn.Read does (deadlines included). Server.Serve applies it to its
// listener; a caller that puts TLS over TCP (RTMPS) applies it to the TCP
// listener under the TLS one. Connections that are not *net.TCPConn pass
// unchanged.
//
// Why: net.Conn.Read enters the system call through entersyscall, which
// wakes the runtime's sysmon thread whenever it sleeps. An encoder writes a
// few hundred times a second and fount goes idle between writes, so nearly
// every read woke sysmon, which slept twice for 20 µs and parked again: with
// one ffmpeg publisher that cycle was most of fount's system calls (strace,
// 10 s: 1,447 futex and 1,977 nanosleep beside 2,357 reads; raw: 184 and
// 215). A read of a non-blocking socket never blocks, so entersyscall buys
// nothing here.
func RawReadListener(ln net.Listener) net.Listener { return rawListener{ln} }

type rawListener struct{ net.Listener }

func (l rawListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	return &rawConn{TCPConn: tc, rc: rc}, nil
}

type rawConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			got, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // nothing yet: wait in the poller
			}
			n, errno = int(got), e
			return true
		}
	})
	switch {
	case err != nil: // deadline passed, connection closed: a *net.OpError already
		return 0, err
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
