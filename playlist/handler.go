package playlist

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fount-live/fount/storage"
)

// Handler serves playlists and segments at /APP/NAME/index.m3u8 and
// /APP/NAME/SEGMENT. Everything it writes comes from immutable snapshots, so
// no lock is held while bytes go to the network.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(r.serveHTTP)
}

func (r *Registry) serveHTTP(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch req.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Range")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Date, ETag, Last-Modified")

	// Exactly APP/NAME/FILE, each a valid name: nothing can reach outside
	// a stream's own keys.
	p := strings.TrimPrefix(req.URL.Path, "/")
	app, rest, ok1 := strings.Cut(p, "/")
	name, file, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || strings.Contains(file, "/") || storage.ValidKey(p) != nil {
		notFound(w)
		return
	}
	s := r.Stream(app + "/" + name)
	if s == nil {
		notFound(w)
		return
	}
	if file == playlistName {
		pl := s.pl.Load()
		if pl == nil {
			// Published, but the first segment is not finished yet.
			h.Set("Cache-Control", "no-cache")
			http.Error(w, "stream has no segment yet", http.StatusNotFound)
			return
		}
		h.Set("Content-Type", playlistType)
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(pl.maxAge))
		h.Set("ETag", pl.etag)
		serveBytes(w, req, pl.body, pl.modTime)
		return
	}
	if v, ok := s.byName.Load(file); ok {
		e := v.(*entry)
		serveSegment(w, req, e.name, e.data, segmentType, e)
		return
	}
	// Not in memory (e.g. written by an earlier process): try the store.
	obj, err := r.cfg.Store.Get(req.Context(), p)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !strings.HasSuffix(file, ".ts")) {
		notFound(w)
		return
	}
	if err != nil {
		r.cfg.Logger.Error("reading segment from storage", "key", p, "err", err)
		http.Error(w, "storage error", http.StatusInternalServerError)
		return
	}
	serveSegment(w, req, file, obj.Data, obj.ContentType, nil)
}

func serveSegment(w http.ResponseWriter, req *http.Request, name string, data []byte, ctype string, e *entry) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	// Names are never reused for other bytes, so a segment can be cached
	// for good.
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", `"`+name+"-"+strconv.Itoa(len(data))+`"`)
	var mod time.Time
	if e != nil {
		mod = e.pdt
	}
	serveBytes(w, req, data, mod)
}

// serveBytes answers a plain GET or HEAD with one write of the stored bytes
// (the common case for players and CDNs), and leaves ranges and
// conditional requests to http.ServeContent.
func serveBytes(w http.ResponseWriter, req *http.Request, data []byte, mod time.Time) {
	hdr := req.Header
	if hdr.Get("Range") != "" || hdr.Get("If-None-Match") != "" || hdr.Get("If-Modified-Since") != "" ||
		hdr.Get("If-Match") != "" || hdr.Get("If-Unmodified-Since") != "" || hdr.Get("If-Range") != "" {
		http.ServeContent(w, req, "", mod, bytes.NewReader(data))
		return
	}
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	if !mod.IsZero() {
		h.Set("Last-Modified", mod.UTC().Format(http.TimeFormat))
	}
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		w.Write(data)
	}
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-cache")
	http.Error(w, "not found", http.StatusNotFound)
}
