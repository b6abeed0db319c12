package playlist

import (
	"unsafe"

	"github.com/fount-live/fount/playlist/httploop"
)

// Lookup answers a plain GET or HEAD of path for an httploop.Server's
// loops (it is their httploop.Source): a playlist or a media object that
// exists, with the head and body the Handler would send. Anything else —
// an unknown stream or object, a stream with no playlist yet, an object
// that just expired — is false, and the loop hands the request to the
// Handler. It does not allocate (TestLookupAllocs).
func (r *Registry) Lookup(path []byte, gzip, head bool) (httploop.Answer, bool) {
	// path aliases the loop's read buffer: p serves the look-ups below
	// and is kept nowhere, so it need not be a copy.
	p := unsafe.String(unsafe.SliceData(path), len(path))
	stream, file, ok := SplitPath(p)
	if !ok {
		return httploop.Answer{}, false
	}
	s := r.Stream(stream)
	if s == nil {
		return httploop.Answer{}, false
	}
	if file == playlistName || file == iframesName {
		pl := s.pl.Load()
		if file == iframesName {
			pl = s.ipl.Load()
		}
		if pl == nil {
			return httploop.Answer{}, false
		}
		body, h := pl.answer(r.playlistCacheControl(pl, false), false, gzip)
		return httploop.Answer{Head: h, Body: body}, true
	}
	v, ok := s.byName.Load(file)
	if !ok {
		return httploop.Answer{}, false
	}
	o := v.(*object)
	a := httploop.Answer{Head: o.head()}
	if o.file == nil {
		a.Body = o.data
	} else {
		if !o.file.acquire() {
			return httploop.Answer{}, false // it just expired: the Handler answers 404
		}
		a.Hold = o.file
		// Small objects (LL-HLS parts) are written from the file's
		// mapping, segments go by sendfile (see sendfileMin).
		if o.size < sendfileMin {
			a.Body = o.file.view(o.off, o.size)
		}
		if a.Body == nil {
			a.File, a.Off, a.N = o.file.fd, o.off, o.size
		}
	}
	if !head {
		s.bytesOut.Add(uint64(o.size))
	}
	return a, true
}
