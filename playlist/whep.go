package playlist

import (
	"net/http"
	"strings"

	"github.com/fount-live/fount/storage"
)

// whepName is the last element of a stream's WebRTC playback (WHEP)
// endpoint, /APP/NAME/whep; its sessions are /APP/NAME/whep/ID. WebRTC
// ingest (WHIP) is alike at /APP/NAME/whip.
const (
	whepName = "whep"
	whipName = "whip"
)

// isWHEP reports whether p is a WHEP or WHIP endpoint (/APP/NAME/whep,
// session false) or one of its sessions (/APP/NAME/whep/ID), with valid
// names.
func isWHEP(p string) (ok, session bool) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if !strings.HasPrefix(p, "/") || len(parts) < 3 || len(parts) > 4 || parts[2] != whepName && parts[2] != whipName ||
		storage.ValidName(parts[0]) != nil || storage.ValidName(parts[1]) != nil {
		return false, false
	}
	return true, len(parts) == 4
}

// serveWHEP routes a WHEP request to Config.WebRTC. An offer (POST to the
// endpoint) passes the play check of a playlist request for its stream:
// the token in the query, or the same query as "Authorization: Bearer
// expires=…&token=…" (WHEP clients send bearer tokens). A session's URL
// is unguessable and needs no token: a DELETE or a trickle ICE PATCH
// carries none. A WHIP publish is the publish authorisation's (rtc, with
// ingest's Authorizer): its bearer token is the stream key, not a play
// token.
func (r *Registry) serveWHEP(w http.ResponseWriter, req *http.Request, session bool) {
	if r.cfg.WebRTC == nil {
		w.Header().Set("Cache-Control", errorCacheControl)
		msg := "WebRTC playback is off on this server"
		if p := strings.Split(req.URL.Path, "/"); len(p) > 3 && p[3] == whipName {
			msg = "WebRTC ingest (WHIP) is off on this server: it needs --webrtc-udp-addr"
		}
		http.Error(w, msg, http.StatusNotFound)
		return
	}
	if !session && req.Method == http.MethodPost && !strings.HasSuffix(req.URL.Path, "/"+whipName) {
		if bearer, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && req.URL.RawQuery == "" {
			req = req.Clone(req.Context())
			req.URL.RawQuery = strings.TrimSpace(bearer)
		}
		if !r.allowed(w, req) {
			return
		}
	}
	r.cfg.WebRTC.ServeHTTP(w, req)
}
