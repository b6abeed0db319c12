package rtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
)

// Ingest is what WHIP needs of fount's publish path: the same
// authoriser and publisher the RTMP server has, so that a WHIP publish
// becomes a stream as an RTMP one does (HLS and WHEP at once).
type Ingest struct {
	App       string // the only application accepted, as for RTMP
	Auth      ingest.Authorizer
	Publisher ingest.Publisher
	// Format is the segment format: VP9 and AV1 are answered only for
	// fMP4 (MPEG-TS cannot carry them); H.264 always.
	Format segmenter.Format
}

// SetIngest turns WHIP ingest on (POST /APP/NAME/whip). Call it before
// the viewer port serves.
func (s *Server) SetIngest(in Ingest) {
	if in.Auth == nil {
		in.Auth = ingest.AllowAll{}
	}
	s.ingest = &in
}

// EndpointWHIP is the last element of a stream's WHIP URL: /APP/NAME/whip.
const EndpointWHIP = "whip"

// Errors of a WHIP publish, each its own status.
var (
	errNoAuth    = errors.New("unauthorised")           // 401
	errForbidden = errors.New("forbidden")              // 403
	errConflict  = errors.New("stream already live")    // 409
	errAuthDown  = errors.New("authoriser unavailable") // 503
)

// PublisherInfo describes a WHIP publisher, for the API.
type PublisherInfo struct {
	Stream  string // APP/NAME
	Remote  string // the publisher's address (the HTTP request's)
	Started time.Time
	Video   bool // a video track (H.264, VP9 or AV1) was negotiated
	Audio   bool // an Opus track was negotiated
}

// Publishers returns the WHIP publishers, by stream.
func (s *Server) Publishers() []PublisherInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PublisherInfo, 0, len(s.pubs))
	for _, w := range s.pubs {
		out = append(out, w.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// Publish authorises a WHIP publisher of stream APP/NAME (path) with the
// stream key key (the bearer token, "" if none), claims the stream and
// answers its offer; it returns the session's id and the SDP answer.
// Errors wrap errNoAuth, errForbidden, errConflict, errAuthDown,
// errNoStream, errBusy or errBadOffer, or are the server's own.
func (s *Server) Publish(ctx context.Context, path, key string, remote net.Addr, offer []byte) (id, answer string, err error) {
	in := s.ingest
	app, name, _ := strings.Cut(path, "/")
	if in == nil {
		return "", "", fmt.Errorf("%w: WHIP ingest is off on this server", errNoStream)
	}
	if app != in.App {
		return "", "", fmt.Errorf("%w: unknown application %q (publish to /%s/NAME/whip)", errNoStream, app, in.App)
	}
	po, err := checkPublishOffer(offer, in.Format)
	if err != nil {
		return "", "", err
	}
	if err := s.reserve(); err != nil {
		return "", "", err
	}
	reserved := true
	defer func() {
		if reserved {
			s.release()
		}
	}()
	public, err := s.authorize(ctx, in, app, name, key, remote)
	if err != nil {
		return "", "", err
	}
	sess, err := in.Publisher.Publish(ctx, ingest.PublishRequest{App: app, Name: public, Remote: remote})
	switch {
	case errors.Is(err, playlist.ErrStreamBusy):
		return "", "", fmt.Errorf("%w: %s is being published: %w", errConflict, path, err)
	case err != nil:
		return "", "", fmt.Errorf("%w: publish %s refused: %w", errForbidden, path, err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	w := newWHIPSession(s, hex.EncodeToString(b[:]), path, sess, remote, po)
	// The negotiated tracks are what the publisher announces: the
	// segmenter waits for them (as for RTMP's onMetaData).
	var tracks segmenter.Tracks
	if w.info.Video {
		tracks |= segmenter.Video
	}
	if w.info.Audio {
		tracks |= segmenter.Audio
	}
	sess.Metadata(ingest.Metadata{Tracks: tracks})
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	answer, err = w.newPeer(gctx)
	if err != nil {
		w.cancel(err)
		sess.Close()
		return "", "", err
	}
	s.mu.Lock()
	s.pending--
	reserved = false
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		_ = w.pc.Close()
		sess.Close()
		return "", "", fmt.Errorf("%w: the server is shutting down", errBusy)
	}
	s.pubs[w.id] = w
	s.mu.Unlock()
	s.wg.Go(w.run)
	video := "none"
	if w.info.Video {
		video = po.videoCodec.String()
	}
	w.log.Info("whip publish answered", "session", w.id, "remote", remote.String(), "video", video, "audio", w.info.Audio)
	return w.id, answer, nil
}

// reserve counts a WHIP session being set up against MaxSessions, which
// WHEP viewers share; release undoes it.
func (s *Server) reserve() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil || len(s.byID)+len(s.pubs)+s.pending >= s.cfg.MaxSessions {
		return fmt.Errorf("%w (at most %d, WHEP and WHIP together)", errBusy, s.cfg.MaxSessions)
	}
	s.pending++
	return nil
}

func (s *Server) release() {
	s.mu.Lock()
	s.pending--
	s.mu.Unlock()
}

// authorize runs the publish authorisation RTMP has, with the bearer
// token as the stream key. The public name is the URL's NAME: with
// --auth none (AllowAll) it is the key, as rtmp://HOST/APP/NAME's is, and
// a bearer token is not needed; otherwise the name the key maps to (the
// keys file's, or the webhook's {"name"}, or the key itself when the
// webhook gives none, as for RTMP) must be NAME, so that a URL says which
// stream it publishes.
func (s *Server) authorize(ctx context.Context, in *Ingest, app, name, key string, remote net.Addr) (string, error) {
	if _, none := in.Auth.(ingest.AllowAll); none {
		key = name
	}
	if key == "" {
		return "", fmt.Errorf("%w: no stream key: send it as \"Authorization: Bearer KEY\"", errNoAuth)
	}
	got, err := in.Auth.Authorize(ctx, ingest.AuthRequest{App: app, Key: key, Remote: remote, Metadata: map[string]string{"protocol": "whip", "name": name}})
	switch {
	case errors.Is(err, ingest.ErrWebhookUnavailable):
		return "", fmt.Errorf("%w: %w", errAuthDown, err)
	case err != nil:
		return "", fmt.Errorf("%w: %w", errForbidden, err)
	case got != name:
		return "", fmt.Errorf("%w: this stream key publishes %s/%s, not %s/%s", errForbidden, app, got, app, name)
	}
	return name, nil
}

// EndPublishers ends every WHIP publish and returns once they have ended
// (at most 5 s each): at shutdown, publishers go first, as RTMP's do, so
// that their last segments are flushed before the playlists end.
func (s *Server) EndPublishers() {
	s.mu.Lock()
	pubs := make([]*whipSession, 0, len(s.pubs))
	for _, w := range s.pubs {
		pubs = append(pubs, w)
		w.end("the server is shutting down")
	}
	s.mu.Unlock()
	for _, w := range pubs {
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// Disconnect ends the WHIP publish of stream path (APP/NAME), as the
// API's DELETE of a stream does for RTMP; false if it has none.
func (s *Server) Disconnect(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for _, w := range s.pubs {
		if w.info.Stream == path {
			w.end("disconnected by the API")
			found = true
		}
	}
	return found
}

// DeletePublish ends the WHIP session id and returns once its publish has
// ended; false if there is no such session.
func (s *Server) DeletePublish(id string) bool {
	s.mu.Lock()
	w := s.pubs[id]
	s.mu.Unlock()
	if w == nil {
		return false
	}
	w.end("ended by the publisher (DELETE)")
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
	}
	return true
}

// serveWHIP answers POST /APP/NAME/whip.
func (s *Server) serveWHIP(w http.ResponseWriter, r *http.Request, stream string) {
	h := w.Header()
	body, ok := readOffer(w, r)
	if !ok {
		return
	}
	key := ""
	if a := r.Header.Get("Authorization"); a != "" {
		k, ok := strings.CutPrefix(a, "Bearer ")
		if !ok {
			http.Error(w, "Authorization: want \"Bearer STREAMKEY\"", http.StatusUnauthorized)
			return
		}
		key = strings.TrimSpace(k)
	}
	id, answer, err := s.Publish(r.Context(), stream, key, remoteAddr(r), body)
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, errNoStream):
			code = http.StatusNotFound
		case errors.Is(err, errBadOffer):
			code = http.StatusBadRequest
		case errors.Is(err, errNoAuth):
			h.Set("WWW-Authenticate", `Bearer realm="fount"`)
			code = http.StatusUnauthorized
		case errors.Is(err, errForbidden):
			code = http.StatusForbidden
		case errors.Is(err, errConflict):
			code = http.StatusConflict
		case errors.Is(err, errBusy), errors.Is(err, errAuthDown):
			h.Set("Retry-After", "10")
			code = http.StatusServiceUnavailable
		}
		s.log.Warn("whip publish refused", "stream", stream, "status", code, "err", err)
		http.Error(w, err.Error(), code)
		return
	}
	for _, u := range s.cfg.STUN {
		h.Add("Link", "<"+u+`>; rel="ice-server"`)
	}
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", "/"+stream+"/"+EndpointWHIP+"/"+id)
	h.Set("ETag", `"`+id+`"`)
	h.Set("Accept-Patch", TrickleType)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// remoteAddr is the HTTP peer's address as a net.Addr.
func remoteAddr(r *http.Request) net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		return a
	}
	return &net.TCPAddr{}
}
