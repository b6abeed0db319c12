package playlist

import (
	"bytes"
	"context"
	"net/http"
	"strings"

	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/playlist/playauth"
)

// PlayAuth judges viewer requests (Config.PlayAuth); *playauth.Auth is
// one. stream is the APP/NAME the request belongs to.
type PlayAuth interface {
	// Quick allows a request without blocking or allocating, or leaves
	// it to Check (false).
	Quick(stream string, query []byte) bool
	// Check returns 0 for a request that may be served, else the status
	// to answer (403, 503) and a one-line reason.
	Check(ctx context.Context, stream string, req *http.Request) (status int, reason string)
}

// authName is the file a CDN edge asks to check a viewer's query
// (/APP/NAME/auth): 204 if it may play APP/NAME.
const authName = "auth"

// topOf returns the APP/NAME a viewer path (/APP/NAME/...) belongs to.
func topOf(path string) (string, bool) {
	p, ok := strings.CutPrefix(path, "/")
	i := strings.IndexByte(p, '/')
	if !ok || i <= 0 {
		return "", false
	}
	j := strings.IndexByte(p[i+1:], '/')
	if j <= 0 {
		return "", false
	}
	return p[:i+1+j], true
}

// allowed runs Config.PlayAuth on a request for the net/http path and
// answers the refusal itself; true means go on.
func (r *Registry) allowed(w http.ResponseWriter, req *http.Request) bool {
	if r.cfg.PlayAuth == nil {
		return true
	}
	top, ok := topOf(req.URL.Path)
	if !ok {
		return true // not a stream's object: the handler's 404
	}
	status, reason := r.cfg.PlayAuth.Check(req.Context(), top, req)
	if status == 0 {
		return true
	}
	h := w.Header()
	h.Set("Cache-Control", errorCacheControl)
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	http.Error(w, reason, status)
	return false
}

// quickAllowed is allowed's check for the loops: false declines the
// request to the handler, which judges it fully.
func (r *Registry) quickAllowed(path string, query []byte) bool {
	if r.cfg.PlayAuth == nil {
		return true
	}
	top, ok := topOf(path)
	return ok && r.cfg.PlayAuth.Quick(top, query)
}

// carry is the query that the URIs of a playlist answering a request
// with this raw query carry ("" for none): with play authorization, the
// viewer's own parameters (its token), so that a player that drops the
// query of relative URIs still gets in.
func carry[Q string | []byte](r *Registry, query Q) string {
	if r.cfg.PlayAuth == nil || len(query) == 0 {
		return ""
	}
	return string(playauth.Carry(nil, query))
}

// withQuery returns playlist body with q added to every relative URI: the
// URI lines and every URI="..." attribute (maps, parts, preload hints,
// rendition reports, keys, renditions, I-frame playlists). Absolute URIs
// (another host: a key server) keep theirs.
func withQuery(body []byte, q string) []byte {
	out := make([]byte, 0, len(body)+bytes.Count(body, []byte("\n"))*(len(q)+1))
	for len(body) > 0 {
		line, rest, nl := bytes.Cut(body, []byte("\n"))
		body = rest
		switch {
		case len(line) == 0:
		case line[0] != '#':
			out = appendURI(out, line, q)
			line = nil
		default:
			for {
				i := bytes.Index(line, []byte(`URI="`))
				if i < 0 {
					break
				}
				i += len(`URI="`)
				j := bytes.IndexByte(line[i:], '"')
				if j < 0 {
					break
				}
				out = append(out, line[:i]...)
				out = appendURI(out, line[i:i+j], q)
				line = line[i+j:]
			}
		}
		out = append(out, line...)
		if nl {
			out = append(out, '\n')
		}
	}
	return out
}

// appendURI appends uri with q added, or as it is if absolute.
func appendURI(out, uri []byte, q string) []byte {
	out = append(out, uri...)
	if bytes.Contains(uri, []byte("://")) {
		return out
	}
	if bytes.IndexByte(uri, '?') >= 0 {
		out = append(out, '&')
	} else {
		out = append(out, '?')
	}
	return append(out, q...)
}

// signedAnswer is a playlist answer for a viewer with query q: the body
// with q in its URIs, never gzipped (each viewer's is its own) and with no
// ETag (the rendered one names the body without q).
func signedAnswer(body []byte, h httploop.Head, q string) ([]byte, httploop.Head) {
	body = withQuery(body, q)
	h.Gzip, h.ETag, h.Length = false, "", int64(len(body))
	return body, h
}
