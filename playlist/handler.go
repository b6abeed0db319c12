package playlist

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/storage"
)

// Handler serves playlists, segments, parts and init segments at
// /APP/NAME/FILE, including LL-HLS blocking playlist reloads and blocking
// preload-hint part requests. Everything it writes comes from immutable
// snapshots, so no lock is held while bytes go to the network. An
// httploop.Server's loops answer plain requests from Lookup, with the same
// heads (httploop.Head), and hand the rest to it. It wraps itself in
// httploop.CORS so that it answers alike on its own (tests, an embedding);
// behind an httploop.Server, whose middleware has CORS already, the inner
// one sees the fields set and steps aside.
func (r *Registry) Handler() http.Handler {
	return httploop.CORS(http.HandlerFunc(r.serveHTTP))
}

func (r *Registry) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if ok, session := isWHEP(req.URL.Path); ok && req.URL.RawPath == "" {
		r.serveWHEP(w, req, session)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS") // OPTIONS: httploop.CORS answers it
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	// Exactly /APP/NAME/FILE, each a valid name (storage.ValidName, the
	// grammar publish names obey too): nothing can reach outside a stream's
	// own keys. Valid names never need escaping, so a path with any
	// percent-encoding (RawPath set) is not the canonical URL of anything;
	// refusing it keeps one URL per object, which caches rely on.
	if req.URL.RawPath != "" {
		notFound(w)
		return
	}
	if !r.allowed(w, req) {
		return
	}
	if r.cfg.Encrypt || r.cfg.KeyDir != "" {
		// Content keys, /APP/NAME/keys/ID.key (encrypt.go).
		if stream, id, ok := SplitKeyPath(req.URL.Path); ok {
			r.serveKey(w, req, stream, id)
			return
		}
	}
	if rp, id, file, ok := SplitRecordingPath(req.URL.Path); ok {
		r.serveRecording(w, req, rp, id, file)
		return
	}
	stream, file, ok := SplitPath(req.URL.Path)
	if !ok {
		notFound(w)
		return
	}
	if file == authName && strings.Count(stream, "/") == 1 {
		// The query may play the stream (allowed said yes): a CDN edge's
		// auth_request asks this (docs/reverse-proxy.md#signed-urls).
		w.Header().Set("Cache-Control", errorCacheControl)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	p := req.URL.Path[1:]
	s := r.Stream(stream)
	if s == nil {
		if r.cfg.Record && storage.IsMedia(file) {
			// A recording's segment, its stream gone.
			r.serveStored(w, req, p, file)
			return
		}
		notFound(w)
		return
	}
	if file == playlistName {
		r.servePlaylist(w, req, s)
		return
	}
	if file == iframesName {
		r.serveIFrames(w, req, s)
		return
	}
	if v, ok := s.byName.Load(file); ok {
		if serveMedia(w, req, s, v.(*object)) {
			return
		}
		// Its memory was just dropped: a segment of a DVR window is
		// still in storage (anything else is not found there).
	}
	if r.cfg.PartTarget > 0 {
		if msn, idx, ok := parsePartName(file); ok {
			r.awaitPart(w, req, s, file, msn, idx)
			return
		}
	}
	// Not in memory (e.g. written by an earlier process): try the store.
	r.serveStored(w, req, p, file)
}

// serveStored answers with the media object at key, read from the store.
func (r *Registry) serveStored(w http.ResponseWriter, req *http.Request, p, file string) {
	obj, err := r.cfg.Store.Get(req.Context(), p)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !storage.IsMedia(file)) {
		notFound(w)
		return
	}
	if err != nil {
		r.cfg.Logger.Error("reading from storage", "key", p, "err", err)
		http.Error(w, "storage error", http.StatusInternalServerError)
		return
	}
	serveMedia(w, req, nil, newObject(file, obj.Data, obj.ContentType, obj.ModTime))
}

// SplitPath splits a viewer path, /KEY with KEY as storage.SplitKey takes
// it, into the stream's path and FILE; ok is false for any other path.
func SplitPath(path string) (stream, file string, ok bool) {
	p, ok := strings.CutPrefix(path, "/")
	if !ok {
		return "", "", false
	}
	return storage.SplitKey(p)
}

// mediaCacheControl: names are never reused for other bytes, so media can
// be cached for good.
const mediaCacheControl = storage.ImmutableCacheControl

// errorCacheControl is the Cache-Control of an error answer: a 404 for a part or a
// segment that is about to exist must not stick in a cache.
const errorCacheControl = "no-cache"

// blockRequest is a parsed LL-HLS delivery directive.
type blockRequest struct {
	msn  uint64
	part int // -1 when _HLS_part is absent
	skip bool
}

// parseDirectives reads _HLS_msn, _HLS_part and _HLS_skip. It returns
// ok=false with a message for a malformed query.
// q is a url.Values or, for the loops, a rawQuery, which reads the same.
func parseDirectives[Q interface{ Get(string) string }](q Q) (br blockRequest, blocking bool, msg string) {
	br.part = -1
	if v := q.Get("_HLS_skip"); v != "" {
		if v != "YES" && v != "v2" {
			return br, false, "_HLS_skip must be YES or v2"
		}
		br.skip = true
	}
	msnStr, partStr := q.Get("_HLS_msn"), q.Get("_HLS_part")
	if msnStr == "" {
		if partStr != "" {
			return br, false, "_HLS_part needs _HLS_msn"
		}
		return br, false, ""
	}
	msn, err := strconv.ParseUint(msnStr, 10, 63)
	if err != nil {
		return br, false, "_HLS_msn must be a non-negative integer"
	}
	br.msn = msn
	if partStr != "" {
		part, err := strconv.ParseUint(partStr, 10, 31)
		if err != nil {
			return br, false, "_HLS_part must be a non-negative integer"
		}
		br.part = int(part)
	}
	return br, true, ""
}

// blockTimeout is how long a blocking request may wait: rfc8216bis asks
// servers to answer 503 after three target durations.
func (s *Stream) blockTimeout() time.Duration {
	if s.cfg.BlockTimeout > 0 {
		return s.cfg.BlockTimeout
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return 3 * time.Duration(s.target) * time.Second
}

func (r *Registry) servePlaylist(w http.ResponseWriter, req *http.Request, s *Stream) {
	h := w.Header()
	var br blockRequest
	blocking := false
	// A multivariant playlist has no parts to wait for: directives are
	// ignored, as for a player that sends them everywhere.
	if r.cfg.PartTarget > 0 && s.variants() == nil {
		var msg string
		br, blocking, msg = parseDirectives(req.URL.Query())
		if msg != "" {
			h.Set("Cache-Control", errorCacheControl)
			http.Error(w, msg, http.StatusBadRequest)
			return
		}
	}
	if blocking {
		status := r.wait(req.Context(), s, func() (bool, bool) { return s.hasPlaylistFor(br) })
		switch status {
		case waitTooFar:
			h.Set("Cache-Control", errorCacheControl)
			http.Error(w, "_HLS_msn is more than two segments ahead of the live edge", http.StatusBadRequest)
			return
		case waitTimeout:
			r.totals.blockTimeouts.Add(1)
			h.Set("Cache-Control", errorCacheControl)
			http.Error(w, playlistTimeoutMsg, http.StatusServiceUnavailable)
			return
		case waitBusy:
			h.Set("Cache-Control", errorCacheControl)
			h.Set("Retry-After", "1")
			http.Error(w, "too many blocking requests", http.StatusServiceUnavailable)
			return
		case waitGone:
			return
		}
	}
	pl := s.pl.Load()
	if pl == nil {
		// Published, but nothing is finished yet.
		h.Set("Cache-Control", errorCacheControl)
		http.Error(w, "stream has no segment yet", http.StatusNotFound)
		return
	}
	r.serveRendered(w, req, pl, r.playlistCacheControl(pl, blocking), br.skip)
}

// serveRendered answers with a rendered playlist, gzipped when the
// client takes it.
func (r *Registry) serveRendered(w http.ResponseWriter, req *http.Request, pl *rendered, cacheControl string, skip bool) {
	if q := carry(r, req.URL.RawQuery); q != "" {
		body, head := pl.answer(cacheControl, skip, false)
		body, head = signedAnswer(body, head, q)
		serveBytes(w, req, head, body)
		return
	}
	gzip := httploop.AcceptsGzip(req.Header.Get("Accept-Encoding")) && req.Header.Get("Range") == ""
	body, head := pl.answer(cacheControl, skip, gzip)
	serveBytes(w, req, head, body)
}

// answer is the body and head of a playlist answer.
func (pl *rendered) answer(cacheControl string, skip, gzip bool) ([]byte, httploop.Head) {
	body, etag := pl.representation(skip, gzip)
	return body, httploop.Head{ContentType: playlistType, CacheControl: cacheControl, ETag: etag, Gzip: gzip,
		Length: int64(len(body)), Modified: pl.modTime}
}

// serveIFrames answers a rendition's I-frame playlist.
func (r *Registry) serveIFrames(w http.ResponseWriter, req *http.Request, s *Stream) {
	h := w.Header()
	pl := s.ipl.Load()
	if pl == nil {
		h.Set("Cache-Control", errorCacheControl)
		http.Error(w, "no I-frame playlist: the stream is not a rendition with video, or has no keyframe yet", http.StatusNotFound)
		return
	}
	r.serveRendered(w, req, pl, r.playlistCacheControl(pl, false), false)
}

// playlistCacheControl is the Cache-Control of a playlist answer.
func (r *Registry) playlistCacheControl(pl *rendered, blocking bool) string {
	switch {
	case blocking:
		// The answer to a delivery directive depends on the URL alone and
		// stays a valid answer to it, so a CDN may cache it and collapse
		// identical requests.
		return r.blockingCacheControl
	case r.cfg.PartTarget > 0:
		// Players join with a plain request and then block; a stale copy
		// would only add latency.
		return storage.PlaylistCacheControl
	}
	return pl.cacheControl
}

// representation picks the body and ETag of a playlist answer. Playlists
// compress about 4:1; segments are already compressed media. Only the gzip
// answer carries Vary (set by the callers): a cache may hand the plain one
// to anybody, and a Vary on it makes nginx's proxy_cache_lock collapse
// concurrent misses far less well (3× the playlist requests at the origin
// in TestCDNEdgeNginx).
func (pl *rendered) representation(skip, gzip bool) (body []byte, etag string) {
	switch {
	case skip && gzip:
		// A delta update is another representation: it needs its own tag.
		return pl.gzSkip.get(pl.skipBody), pl.etagSkipGz
	case skip:
		return pl.skipBody, pl.etagSkip
	case gzip:
		return pl.gz.get(pl.body), pl.etagGz
	}
	return pl.body, pl.etag
}

// hasPlaylistFor reports whether the current playlist satisfies a delivery
// directive, and whether the directive is too far ahead to wait for.
func (s *Stream) hasPlaylistFor(br blockRequest) (ok, tooFar bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasPlaylistForLocked(br)
}

func (s *Stream) hasPlaylistForLocked(br blockRequest) (ok, tooFar bool) {
	if s.state == StateEnded {
		return true, false // nothing more will come: answer with what there is
	}
	// nextMSN is the segment being built; nextMSN-1 the last complete one.
	if br.msn > s.nextMSN+1 {
		return false, true
	}
	if br.msn < s.nextMSN {
		return true, false
	}
	if br.part < 0 || br.msn > s.nextMSN {
		return false, false
	}
	return br.part < len(s.open.parts), false
}

type waitStatus int

const (
	waitReady waitStatus = iota
	waitTooFar
	waitTimeout
	waitBusy
	waitGone // the client went away
)

// wait blocks until cond holds, bounded by the stream's block timeout.
// Waiters sleep on the stream's change channel: one wake-up per new part.
func (r *Registry) wait(ctx context.Context, s *Stream, cond func() (ok, tooFar bool)) waitStatus {
	ok, tooFar := cond()
	if ok {
		return waitReady
	}
	if tooFar {
		return waitTooFar
	}
	if r.totals.waiting.Add(1) > int64(r.cfg.MaxBlocking) || r.isDraining() {
		r.totals.waiting.Add(-1)
		return waitBusy
	}
	defer r.totals.waiting.Add(-1)
	timer := time.NewTimer(s.blockTimeout())
	defer timer.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if ok, tooFar = cond(); ok {
			return waitReady
		} else if tooFar {
			return waitTooFar
		}
		if ch == nil {
			return waitTimeout
		}
		select {
		case <-ch:
		case <-r.draining:
			return waitBusy
		case <-timer.C:
			return waitTimeout
		case <-ctx.Done():
			return waitGone
		}
	}
}

// parsePartName parses "segMSN.IDX.ext".
func parsePartName(file string) (msn uint64, idx int, ok bool) {
	rest, found := strings.CutPrefix(file, "seg")
	if !found {
		return 0, 0, false
	}
	a, rest, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	b, _, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	m, err1 := strconv.ParseUint(a, 10, 63)
	i, err2 := strconv.ParseUint(b, 10, 31)
	return m, int(i), err1 == nil && err2 == nil
}

// The 503s of blocking requests that waited their whole timeout.
const (
	playlistTimeoutMsg = "the requested part did not appear in time"
	partTimeoutMsg     = "the part did not appear in time"
)

// nextPartLocked reports whether part idx of segment msn is one that comes
// next, which a request may wait for; s.mu must be held.
func (s *Stream) nextPartLocked(msn uint64, idx int) bool {
	return s.state == StateLive &&
		(msn == s.nextMSN && idx == len(s.open.parts) || msn == s.nextMSN+1 && idx == 0)
}

// awaitPart answers a request for a part that does not exist yet: the open
// segment's next part and the next segment's first, one of which is the
// part EXT-X-PRELOAD-HINT names (hintLocked), are waited for; anything
// else is 404. The next segment's first part keeps being waited for when
// it becomes the open segment's next, or when the keyframe comes late and
// more parts of the open segment come first.
func (r *Registry) awaitPart(w http.ResponseWriter, req *http.Request, s *Stream, file string, msn uint64, idx int) {
	cond := func() (bool, bool) {
		if _, ok := s.byName.Load(file); ok {
			return true, false
		}
		s.mu.Lock()
		next := s.nextPartLocked(msn, idx)
		s.mu.Unlock()
		if !next {
			// Handed over since the look-up above (Part stores and counts
			// it in one locked step): found now, or truly not next.
			_, ok := s.byName.Load(file)
			return ok, !ok
		}
		return false, false
	}
	switch r.wait(req.Context(), s, cond) {
	case waitReady:
		if v, ok := s.byName.Load(file); ok && serveMedia(w, req, s, v.(*object)) {
			return
		}
		notFound(w)
	case waitTimeout:
		r.totals.blockTimeouts.Add(1)
		w.Header().Set("Cache-Control", errorCacheControl)
		http.Error(w, partTimeoutMsg, http.StatusServiceUnavailable)
	case waitBusy:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many blocking requests", http.StatusServiceUnavailable)
	case waitGone:
	default:
		notFound(w)
	}
}

// serveMedia answers with a media object; s, when known, counts the bytes.
// It answers nothing and returns false if the object's memory was dropped
// since it was looked up (it just expired, or left a DVR window's memory).
func serveMedia(w http.ResponseWriter, req *http.Request, s *Stream, o *object) bool {
	if o.file != nil && !o.file.acquire() {
		return false
	}
	if s != nil && req.Method == http.MethodGet {
		s.bytesOut.Add(uint64(o.size))
	}
	head := o.head()
	if o.file == nil {
		serveBytes(w, req, head, o.data)
		return true
	}
	defer o.file.Release()
	if conditional(req.Header) {
		head.SetEntityHeader(w.Header())
		http.ServeContent(w, req, "", o.mod, io.NewSectionReader(o.file, o.off, o.size))
		return true
	}
	if o.size < sendfileMin && s != nil {
		serveSmall(w, req, s, o, &head)
		return true
	}
	if !writeHead(w, req, &head) {
		return true
	}
	// Headers out first, so that net/http hands the whole body to the
	// connection's ReadFrom (sendfile(2) behind Listener) rather than
	// reading its first 512 bytes for content sniffing: two system calls
	// per response instead of three. An error here is the viewer going
	// away, which net/http sees too.
	http.NewResponseController(w).Flush()
	io.Copy(w, &section{m: o.file, off: o.off, n: o.size})
	return true
}

// head is the head of a 200 answer with the object.
func (o *object) head() httploop.Head {
	return httploop.Head{ContentType: o.ctype, CacheControl: mediaCacheControl, ETag: o.etag, Length: o.size, Modified: o.mod}
}

// sendfileMin is the size from which media in a memory file goes out with
// sendfile, from the Handler and from the loops (Lookup). Below it (LL-HLS
// parts: 70 KB for 200 ms at 2.75 Mbit/s) one write from the file's
// mapping costs less CPU than sendfile's page-by-page splicing:
// BenchmarkServeSegmentLoopback measures about +18 % CPU per 64 KiB with
// sendfile against a write from the heap (whole fount-bench runs could not
// tell the two apart from their noise).
const sendfileMin = 256 << 10

// serveSmall answers a plain GET or HEAD for a small object in a memory
// file with one write from the file's mapping, or (the object is past the
// mapping: a segment twice as big as the last) through a pooled buffer.
func serveSmall(w http.ResponseWriter, req *http.Request, s *Stream, o *object, head *httploop.Head) {
	if b := o.file.view(o.off, o.size); b != nil {
		if writeHead(w, req, head) {
			w.Write(b)
		}
		return
	}
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, sendfileMin)
		bp = &b
	}
	defer s.bufs.Put(bp)
	buf := (*bp)[:o.size]
	if _, err := o.file.ReadAt(buf, o.off); err != nil {
		s.log.Error("reading a memory file", "stream", s.path, "err", err)
		head.SetEntityHeader(w.Header())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if writeHead(w, req, head) {
		w.Write(buf)
	}
}

// conditional reports a Range or conditional request, which
// http.ServeContent answers.
func conditional(hdr http.Header) bool {
	return hdr.Get("Range") != "" || hdr.Get("If-None-Match") != "" || hdr.Get("If-Modified-Since") != "" ||
		hdr.Get("If-Match") != "" || hdr.Get("If-Unmodified-Since") != "" || hdr.Get("If-Range") != ""
}

// writeHead writes a 200's head, as the loops write it, and reports
// whether a body follows.
func writeHead(w http.ResponseWriter, req *http.Request, head *httploop.Head) bool {
	head.SetHeader(w.Header())
	w.WriteHeader(http.StatusOK)
	return req.Method != http.MethodHead
}

func mediaETag(name string, size int) string {
	return `"` + name + "-" + strconv.Itoa(size) + `"`
}

// serveBytes answers a plain GET or HEAD with one write of the bytes, and
// leaves ranges and conditional requests to http.ServeContent.
func serveBytes(w http.ResponseWriter, req *http.Request, head httploop.Head, data []byte) {
	if conditional(req.Header) {
		head.SetEntityHeader(w.Header())
		http.ServeContent(w, req, "", head.Modified, bytes.NewReader(data))
		return
	}
	if writeHead(w, req, &head) {
		w.Write(data)
	}
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", errorCacheControl)
	http.Error(w, "not found", http.StatusNotFound)
}
