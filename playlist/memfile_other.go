//go:build !linux

package playlist

import (
	"errors"
	"net"
)

// newMemFile fails where there is no memfd: media stays on the Go heap.
func newMemFile(string, *totals, int64) (*memFile, error) {
	return nil, errors.New("memory files need Linux (memfd_create)")
}

func unmap([]byte) {}

// Listener returns ln: without memory files there is nothing to sendfile.
func Listener(ln net.Listener) net.Listener { return ln }

// WrapConn returns c: without memory files there is nothing to sendfile.
func WrapConn(c net.Conn) net.Conn { return c }
