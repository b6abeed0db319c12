package playlist

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
)

// memFile holds the bytes of one segment and of its parts (see
// partsReserve) in a memory file. It is written by its stream only,
// read by any number of requests at once, and closed when the last of
// them and its stream have let go of it.
type memFile struct {
	f       *os.File
	fd      int // f's descriptor, for sendfile from an event loop (Lookup)
	rc      syscall.RawConn
	totals  *totals
	mapped  []byte       // the file's first bytes, mapped read-only; unmapped with the file
	written int64        // bytes written; by the owning stream only
	refs    atomic.Int64 // the owner's reference plus one per request in flight
	dropped atomic.Bool  // the owner's reference is gone
}

// writeAt writes p at off; the owner's goroutine only.
func (m *memFile) writeAt(p []byte, off int64) error {
	if _, err := m.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("writing memory file: %w", err)
	}
	m.written += int64(len(p))
	m.totals.memFileBytes.Add(int64(len(p)))
	return nil
}

// ReadAt serves ranges and conditional requests (via http.ServeContent).
func (m *memFile) ReadAt(p []byte, off int64) (int, error) { return m.f.ReadAt(p, off) }

// view returns the mapped bytes [off, off+n), or nil if they are not all
// in the mapping. The caller holds a reference for as long as it uses them:
// the mapping goes when the file closes.
func (m *memFile) view(off, n int64) []byte {
	if off+n > int64(len(m.mapped)) {
		return nil
	}
	return m.mapped[off : off+n : off+n]
}

// acquire takes a reference for a request; false once the file is closed.
func (m *memFile) acquire() bool {
	for {
		n := m.refs.Load()
		if n <= 0 {
			return false
		}
		if m.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release lets go of a request's reference (an httploop.Releaser: the
// loops release what an answer from Lookup holds).
func (m *memFile) Release() {
	if m.refs.Add(-1) == 0 {
		m.totals.memFileBytes.Add(-m.written)
		m.totals.memFiles.Add(-1)
		m.f.Close()
		unmap(m.mapped)
	}
}

// drop lets go of the owner's reference, once however often it is called:
// the file closes when the requests sending from it are done.
func (m *memFile) drop() {
	if m != nil && m.dropped.CompareAndSwap(false, true) {
		m.Release()
	}
}

// section is a byte range of a memory file on its way to a viewer. It is
// not an *os.File on purpose: net would sendfile that from the file's
// shared offset. A sendfileConn sends it with its own offset; any other
// writer copies it with Read.
type section struct {
	m      *memFile
	off, n int64
}

func (s *section) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	n, err := s.m.f.ReadAt(p, s.off)
	s.off += int64(n)
	s.n -= int64(n)
	if err == io.EOF && s.n == 0 {
		err = nil
	}
	return n, err
}
