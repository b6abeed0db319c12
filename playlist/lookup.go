package playlist

import (
	"unsafe"

	"github.com/fount-live/fount/playlist/httploop"
)

// Lookup answers a plain GET or HEAD for an httploop.Server's loops (it is
// their httploop.Source): a playlist or a media object that exists, with
// the head and body the Handler would send (Serve), and an LL-HLS blocking
// request for what is not there yet, which the loop parks (Wait; park.go).
// Anything else — an unknown stream or object, a stream with no playlist
// yet, an object that just expired, a malformed or too-far directive, a
// blocking request beyond MaxBlocking — is Decline, and the loop hands the
// request to the Handler, which answers it. It does not allocate
// (TestLookupAllocs).
func (r *Registry) Lookup(req httploop.Request) (httploop.Answer, httploop.Verdict) {
	// req.Path aliases the loop's read buffer: p serves the look-ups below
	// and is kept nowhere, so it need not be a copy.
	p := unsafe.String(unsafe.SliceData(req.Path), len(req.Path))
	stream, file, ok := SplitPath(p)
	if !ok || !r.quickAllowed(p, req.Query) {
		return httploop.Answer{}, httploop.Decline
	}
	s := r.Stream(stream)
	if s == nil {
		return httploop.Answer{}, httploop.Decline
	}
	if file == playlistName {
		return r.lookupPlaylist(s, req)
	}
	if file == iframesName {
		pl := s.ipl.Load()
		if pl == nil {
			return httploop.Answer{}, httploop.Decline
		}
		return r.playlistAnswer(pl, r.playlistCacheControl(pl, false), false, req)
	}
	v, ok := s.byName.Load(file)
	if !ok {
		if r.cfg.PartTarget > 0 {
			if msn, idx, ok := parsePartName(file); ok {
				if a, verdict := r.lookupPart(s, msn, idx); verdict != httploop.Decline {
					return a, verdict
				}
				// Handed over since the look-up above (Part stores it and
				// moves the stream on in one locked step): serve it here,
				// or the connection would go to net/http for good.
				v, ok = s.byName.Load(file)
			}
		}
		if !ok {
			return httploop.Answer{}, httploop.Decline
		}
	}
	o := v.(*object)
	a := httploop.Answer{Head: o.head()}
	if o.file == nil {
		a.Body = o.data
	} else {
		if !o.file.acquire() {
			return httploop.Answer{}, httploop.Decline // it just expired: the Handler answers 404
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
	if !req.Head {
		s.bytesOut.Add(uint64(o.size))
	}
	return a, httploop.Serve
}

// lookupPlaylist is Lookup of a media or multivariant playlist, as
// servePlaylist answers it.
func (r *Registry) lookupPlaylist(s *Stream, req httploop.Request) (httploop.Answer, httploop.Verdict) {
	br := blockRequest{part: -1}
	blocking := false
	if r.cfg.PartTarget > 0 && s.variants() == nil && req.Query != nil {
		var msg string
		if br, blocking, msg = parseDirectives(rawQuery(req.Query)); msg != "" {
			return httploop.Answer{}, httploop.Decline // the Handler's 400
		}
	}
	if blocking {
		ok, tooFar, pos, epoch := s.blockState(br)
		if tooFar {
			return httploop.Answer{}, httploop.Decline // the Handler's 400
		}
		if !ok {
			return r.park(s, pos, epoch, br.until(), playlistTimeoutMsg)
		}
	}
	pl := s.pl.Load()
	if pl == nil {
		return httploop.Answer{}, httploop.Decline
	}
	return r.playlistAnswer(pl, r.playlistCacheControl(pl, blocking), br.skip, req)
}

// playlistAnswer is the loops' answer with a rendered playlist: with play
// authorization, the body with the request's query in its URIs (an
// allocation per request: each viewer's differs).
func (r *Registry) playlistAnswer(pl *rendered, cacheControl string, skip bool, req httploop.Request) (httploop.Answer, httploop.Verdict) {
	if q := carry(r, req.Query); q != "" {
		body, h := pl.answer(cacheControl, skip, false)
		body, h = signedAnswer(body, h, q)
		return httploop.Answer{Head: h, Body: body}, httploop.Serve
	}
	body, h := pl.answer(cacheControl, skip, req.Gzip)
	return httploop.Answer{Head: h, Body: body}, httploop.Serve
}
