package httploop

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unsafe"
)

// Origins says which pages' scripts may read the viewer answers (CORS).
// The zero value allows any page (Access-Control-Allow-Origin: *). A list
// allows those origins only: an answer to a request whose Origin is listed
// names it in Access-Control-Allow-Origin, any other gets no CORS field,
// and every answer carries Vary: Origin so that a cache (a CDN edge) keeps
// them apart.
type Origins struct {
	set map[string]string // each allowed origin to itself; nil: any origin
}

// NewOrigins reads a list of origins ("https://site.example",
// "http://localhost:3000"); "*" alone, or an empty list, allows any.
func NewOrigins(list []string) (Origins, error) {
	if len(list) == 0 || len(list) == 1 && list[0] == "*" {
		return Origins{}, nil
	}
	set := make(map[string]string, len(list))
	for _, o := range list {
		if o == "*" {
			return Origins{}, fmt.Errorf("origin %q: \"*\" allows any origin and goes alone", o)
		}
		u, err := url.Parse(o)
		if err != nil {
			return Origins{}, fmt.Errorf("origin %q: %w", o, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "/") {
			return Origins{}, fmt.Errorf("origin %q: want scheme://host[:port], as a browser sends it (e.g. https://www.example.com)", o)
		}
		// Browsers send scheme and host in lower case.
		o = strings.ToLower(o)
		set[o] = o
	}
	return Origins{set: set}, nil
}

// Any reports whether any origin is allowed.
func (o Origins) Any() bool { return o.set == nil }

// corsAnswer is what an answer's CORS fields say: allow is the value of
// Access-Control-Allow-Origin ("" for none), varyOrigin adds Origin to
// Vary.
type corsAnswer struct {
	allow      string
	varyOrigin bool
}

var anyOrigin = corsAnswer{allow: allowOrigin}

// answer is the CORS answer to a request with this Origin (nil: none). It
// does not allocate: the allowed value is the map's own string.
func (o Origins) answer(origin []byte) corsAnswer {
	if o.set == nil {
		return anyOrigin
	}
	if len(origin) > 0 {
		if v, ok := o.set[unsafe.String(unsafe.SliceData(origin), len(origin))]; ok {
			return corsAnswer{allow: v, varyOrigin: true}
		}
	}
	return corsAnswer{varyOrigin: true}
}

// CORS lets any page's script read the viewer answers: it sets
// Access-Control-Allow-Origin on every answer and
// Access-Control-Expose-Headers on those to GET and HEAD, and answers a
// preflight (OPTIONS) itself. The loops' answers carry the same fields
// (Head).
func CORS(next http.Handler) http.Handler { return Origins{}.middleware(next) }

// middleware is CORS for o's origins.
func (o Origins) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		_, done := h["Access-Control-Allow-Origin"]
		if _, vary := h["Vary"]; done || vary {
			// An outer CORS has answered for it (a handler that wraps
			// itself, behind the Server's middleware; Vary alone when it
			// refused the origin): setting the fields again would only
			// allocate, or allow what it refused.
			next.ServeHTTP(w, r)
			return
		}
		ca := o.answer([]byte(r.Header.Get("Origin")))
		if ca.varyOrigin {
			h.Set("Vary", "Origin")
		}
		if ca.allow != "" {
			h.Set("Access-Control-Allow-Origin", ca.allow)
		}
		switch r.Method {
		case http.MethodOptions:
			if ca.allow != "" {
				// POST, PATCH, DELETE and their headers: WebRTC
				// playback (WHEP, /APP/NAME/whep) from other sites' pages.
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS, POST, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Range, Authorization, Content-Type, If-Match")
				h.Set("Access-Control-Max-Age", "86400")
			}
			if webrtcSession(r.URL.Path) {
				// RFC 5789 §3.1: what a PATCH to it may carry (trickle
				// ICE, rtc's servePatch).
				h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodPost, http.MethodPatch, http.MethodDelete:
			if ca.allow != "" {
				h.Set("Access-Control-Expose-Headers", writeExposeHeaders)
			}
		case http.MethodGet, http.MethodHead:
			if ca.allow != "" {
				h.Set("Access-Control-Expose-Headers", exposeHeaders)
				// Resource timing's details (protocol, sizes, phases)
				// for the same pages: what player analytics measure.
				h.Set("Timing-Allow-Origin", ca.allow)
			}
		}
		next.ServeHTTP(w, r)
	})
}

const (
	allowOrigin = "*"
	// exposeHeaders lets a page's script read what players look at.
	exposeHeaders = "Content-Length, Content-Range, Date, ETag, Last-Modified, Age"
	// writeExposeHeaders: what a WHEP client reads of an answer.
	writeExposeHeaders = "Location, Link, ETag, Accept-Patch, Retry-After"
)

// webrtcSession reports whether p has the shape of a WebRTC session's URL,
// /APP/NAME/whep/ID or /APP/NAME/whip/ID (the router checks the names).
func webrtcSession(p string) bool {
	parts := strings.Split(p, "/")
	return len(parts) == 5 && parts[0] == "" && (parts[3] == "whep" || parts[3] == "whip") && parts[4] != ""
}
