//go:build !linux

package playlist

import (
	"errors"
	"net"
)

// newMemFile fails where there is no memfd: media stays on the Go heap.
func newMemFile(string, *totals) (*memFile, error) {
	return nil, errors.New("memory files need Linux (memfd_create)")
}

// Listener returns ln: without memory files there is nothing to sendfile.
func Listener(ln net.Listener) net.Listener { return ln }
