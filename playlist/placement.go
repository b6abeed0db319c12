package playlist

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/fount-live/fount/storage"
)

// Where a stream's media bytes live: segments and parts in memory files
// (sent with sendfile), on the heap where those are unavailable, and how a
// finished segment is placed after the parts that already hold its bytes.

// object is a servable media object, with its response headers' values
// made once rather than per request. Its bytes are a section of a memory
// file (segments and parts) or a heap slice (inits, objects read back from
// storage, and media where memory files are unavailable).
type object struct {
	data  []byte   // when file is nil
	file  *memFile // holds the bytes at [off, off+size)
	off   int64
	size  int64
	ctype string
	mod   time.Time
	etag  string
}

func newObject(name string, data []byte, ctype string, mod time.Time) *object {
	return &object{data: data, size: int64(len(data)), ctype: ctype, mod: mod, etag: mediaETag(name, len(data))}
}

func newFileObject(name string, m *memFile, off, size int64, ctype string, mod time.Time) *object {
	return &object{file: m, off: off, size: size, ctype: ctype, mod: mod, etag: mediaETag(name, int(size))}
}

// partsReserve is where the first part of a segment goes in the segment's
// memory file. The finished segment is then served from the same file, with
// whatever the segmenter put before its first part (fMP4: the styp box)
// written just below: no second copy of an LL-HLS segment. A page, so that
// the prefix touches one page and the parts start page-aligned.
const partsReserve = 4096

// newMemFile makes a memory file for the stream's media, or returns nil
// (logged once per process) if memory files are off or failing: the media
// then stays on the Go heap.
func (s *Stream) newMemFile(mapSize int64) *memFile {
	if s.cfg.HeapMedia {
		return nil
	}
	m, err := newMemFile("fount:"+s.path, s.totals, mapSize)
	if err != nil {
		s.memFileFailed(err)
		return nil
	}
	return m
}

func (s *Stream) memFileFailed(err error) {
	s.totals.memFileErrors.Add(1)
	if s.totals.memFileWarned.CompareAndSwap(false, true) {
		s.log.Warn("media kept on the Go heap: a memory file failed (slower, and more memory; see fount_media_file_errors_total)", "stream", s.path, "err", err)
	}
}

// placePartLocked appends a part to the open segment's memory file, or
// keeps it on the heap if there is none or the write fails.
func (s *Stream) placePartLocked(name string, data []byte) *object {
	if f := s.open.file; f != nil {
		err := f.writeAt(data, s.open.end)
		if err == nil {
			o := newFileObject(name, f, s.open.end, int64(len(data)), s.mediaType(), time.Time{})
			s.open.end += int64(len(data))
			return o
		}
		s.memFileFailed(err)
	}
	s.open.allInFile = false
	return newObject(name, bytes.Clone(data), s.mediaType(), time.Time{})
}

// assemble makes a segment from the bytes before its first part and its
// parts' stored bytes.
func assemble(prefix []byte, parts []*part, size int64) ([]byte, error) {
	b := make([]byte, size)
	n := copy(b, prefix)
	for _, p := range parts {
		o := p.obj
		if o.file == nil {
			n += copy(b[n:], o.data)
			continue
		}
		if _, err := o.file.ReadAt(b[n:n+int(o.size)], o.off); err != nil {
			return nil, fmt.Errorf("reading part %s back: %w", p.name, err)
		}
		n += int(o.size)
	}
	return b[:n], nil
}

// placeAfterPrefix writes the bytes before a segment's first part just
// below its parts in their file, and serves the segment from there. It
// returns nil if that write fails.
func (s *Stream) placeAfterPrefix(e *entry, prefix []byte, file *memFile) *object {
	pre := int64(len(prefix))
	if pre > 0 {
		if err := file.writeAt(prefix, partsReserve-pre); err != nil {
			s.memFileFailed(err)
			return nil
		}
	}
	e.file = file
	return newFileObject(e.name, file, partsReserve-pre, e.size, s.mediaType(), e.pdt)
}

// placeOwn puts a segment that cannot be served from its parts' file in a
// memory file of its own (its parts keep theirs until the segment is
// dropped), or on the heap if that fails; owned data is kept as it is.
func (s *Stream) placeOwn(e *entry, data []byte, owned bool, partsFile *memFile) *object {
	e.partsFile = partsFile
	if m := s.newMemFile(int64(len(data))); m != nil {
		err := m.writeAt(data, 0)
		if err == nil {
			e.file = m
			return newFileObject(e.name, m, 0, e.size, s.mediaType(), e.pdt)
		}
		m.drop()
		s.memFileFailed(err)
	}
	if !owned {
		data = bytes.Clone(data)
	}
	return newObject(e.name, data, s.mediaType(), e.pdt)
}

// segmentFailed gives up a segment whose parts could not be read back from
// their memory file.
func (s *Stream) segmentFailed(e *entry, err error) error {
	s.memFileFailed(err)
	s.mu.Lock()
	s.abandonOpenLocked()
	s.mu.Unlock()
	return fmt.Errorf("stream %s: segment %s: %w", s.path, e.name, err)
}

// partsPrefix reports whether b is some bytes (no more than partsReserve)
// followed by the parts' bytes, in order, and how many. The parts are
// normally the same memory, which bytes.Equal sees at once.
func partsPrefix(b []byte, parts []*part) (int, bool) {
	pre := len(b)
	for _, p := range parts {
		pre -= len(p.data)
	}
	if pre < 0 || pre > partsReserve {
		return 0, false
	}
	rest := b[pre:]
	for _, p := range parts {
		if !bytes.Equal(rest[:len(p.data)], p.data) {
			return 0, false
		}
		rest = rest[len(p.data):]
	}
	return pre, true
}

// Init stores an fMP4 initialization segment; the segments and parts that
// follow use it. The stream numbers init segments itself, across publishes
// and restarts, so that a new publisher's first init never overwrites an
// earlier one under the same URL.
func (s *Stream) Init(data []byte) error {
	s.mu.Lock()
	version := s.nextInit
	s.nextInit++
	s.mu.Unlock()
	name := initName(version)
	now := s.cfg.Now()
	if err := s.cfg.Store.Put(context.Background(), s.path+"/"+name, storage.Object{Data: data, ContentType: mp4Type, ModTime: now}); err != nil {
		s.totals.storageErrors.Add(1)
		s.log.Error("storing init segment failed", "stream", s.path, "init", name, "err", err)
	}
	s.byName.Store(name, newObject(name, data, mp4Type, now))
	s.mu.Lock()
	s.initVersion = version
	if len(s.open.parts) == 0 {
		s.open.init = version
	}
	s.inits = append(s.inits, name)
	s.mu.Unlock()
	return nil
}
