// Package rtc serves live streams over WebRTC with pion: WHEP playback
// (RFC 9725) of the H.264, VP9 or AV1 (and Opus) a publisher sends, passed through
// as it is. It sits beside the segmenter as a second consumer of a
// stream's codec frames: cmd/fount hands each publish's frames to a Feed
// as well as to the segmenter, and the viewer port's router
// (playlist.Config.WebRTC) hands it the WHEP requests. It knows nothing
// of RTMP, HLS or play authorisation (the router checks that first).
// The pion API, ports and sessions live here so that WHIP ingest can
// share them later.
package rtc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Config holds the WebRTC settings.
type Config struct {
	// UDPAddr is the one UDP address every session's ICE uses (pion's UDP
	// mux), e.g. ":8189". ICE-TCP listens on the same port number, if it
	// can.
	UDPAddr string
	// PublicIPs are the addresses the host is reached at, when it is
	// behind a 1:1 NAT: the candidates name them instead of the local ones.
	PublicIPs []string
	// STUN servers ("stun:host:port") offered to viewers in the WHEP
	// answer's Link headers.
	STUN []string
	// MaxSessions bounds the sessions at once (default 200); one more is
	// answered 503.
	MaxSessions int
	// KeepGOP keeps every stream's last GOP (H.264, VP9, AV1), watched or not, so
	// that the first viewer of a stream starts on a keyframe at once too;
	// false keeps it only while the stream is watched over WebRTC (and
	// keepWarm after), sparing a copy of each frame of the others.
	KeepGOP bool
	// Listen opens the ports (e.g. with SO_REUSEPORT for a handover).
	Listen net.ListenConfig
	Logger *slog.Logger
	Now    func() time.Time
}

// Server is the WebRTC side of fount: the feeds of live streams, the
// viewers' sessions and the sockets they share.
type Server struct {
	cfg   Config
	log   *slog.Logger
	se    webrtc.SettingEngine
	udp   net.PacketConn
	tcp   net.Listener // nil if ICE-TCP could not listen
	mux   io.Closer
	tmux  io.Closer
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	mu    sync.Mutex
	feeds map[string]*Feed
	byID  map[string]*session
	total uint64 // sessions ever answered

	ingest  *Ingest                 // WHIP; nil: off (SetIngest)
	pubs    map[string]*whipSession // WHIP publishers' sessions
	pending int                     // WHIP sessions being set up, counted against MaxSessions
}

// New opens the UDP (and ICE-TCP) ports and returns the server.
func New(cfg Config) (*Server, error) {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	udp, err := cfg.Listen.ListenPacket(context.Background(), "udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("webrtc udp: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, udp: udp, feeds: map[string]*Feed{}, byID: map[string]*session{}, pubs: map[string]*whipSession{}}
	s.ctx, s.stop = context.WithCancel(context.Background())
	lf := &pionLogs{log: cfg.Logger}
	s.se.LoggerFactory = lf
	umux := webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), udp)
	s.mux = umux
	s.se.SetICEUDPMux(umux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	host, _, _ := net.SplitHostPort(cfg.UDPAddr)
	port := udp.LocalAddr().(*net.UDPAddr).Port
	if tcp, err := cfg.Listen.Listen(context.Background(), "tcp", net.JoinHostPort(host, strconv.Itoa(port))); err != nil {
		s.log.Warn("webrtc: ICE-TCP off: cannot listen on the UDP port's number", "err", err)
	} else {
		s.tcp = tcp
		tmux := webrtc.NewICETCPMux(lf.NewLogger("tcpmux"), tcp, 8)
		s.tmux = tmux
		s.se.SetICETCPMux(tmux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	s.se.SetNetworkTypes(networks)
	// A server's candidates are its addresses (or PublicIPs), never
	// mDNS names, and it asks no LAN for a browser's: the browser's checks
	// reach it and name their address (peer-reflexive).
	s.se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		s.se.SetIncludeLoopbackCandidate(true) // tests, and a host's own viewers
	}
	if len(cfg.PublicIPs) > 0 {
		s.se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	return s, nil
}

// Addr is the UDP address sessions use.
func (s *Server) Addr() net.Addr { return s.udp.LocalAddr() }

// TCPAddr is ICE-TCP's address, nil if it is off.
func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// Close ends every session and closes the ports; it returns once every
// goroutine the server started has ended.
func (s *Server) Close() {
	s.stop()
	s.mu.Lock()
	for _, f := range s.feeds {
		f.end("the server is shutting down")
	}
	for _, ss := range s.byID {
		ss.end("the server is shutting down")
	}
	for _, w := range s.pubs {
		w.end("the server is shutting down")
	}
	s.mu.Unlock()
	s.wg.Wait()
	_ = s.mux.Close()
	if s.tmux != nil {
		_ = s.tmux.Close()
	}
}

// Feed returns the feed of the stream at path (APP/NAME) for a publish to
// hand its media to: the stream's own if it is still there (a publisher
// back within the reconnect window keeps its viewers).
func (s *Server) Feed(path string) *Feed {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feeds[path]
	if f == nil || f.isEnded() {
		f = newFeed(path, s.cfg.Now, s.log)
		f.always = s.cfg.KeepGOP
		s.feeds[path] = f
	}
	return f
}

// End ends the stream at path: its viewers' sessions close.
func (s *Server) End(path string) {
	s.mu.Lock()
	f := s.feeds[path]
	delete(s.feeds, path)
	s.mu.Unlock()
	if f != nil {
		f.end("the stream ended")
	}
}

func (f *Feed) isEnded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ended
}

// Stats is a snapshot of the server.
type Stats struct {
	Sessions int    // open now (connecting or connected)
	Total    uint64 // answered since start
}

// Stats returns the server's counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Sessions: len(s.byID), Total: s.total}
}

// StreamInfo is what the API shows of a stream's WebRTC side.
type StreamInfo struct {
	Viewers int  // connected viewers
	Video   bool // the stream's video can be played (H.264, VP9 or AV1)
	Audio   bool // viewers get audio (Opus); AAC is not sent
	// BFrames: the video has B-frames, which browsers' WebRTC decoders
	// do not take (they show the keyframes only).
	BFrames bool
	// VideoCodec names the video viewers get ("H.264", "VP9", "AV1"); ""
	// when Video is false.
	VideoCodec string
}

// Stream returns the WebRTC side of the stream at path; ok is false if
// no publish has fed it.
func (s *Server) Stream(path string) (StreamInfo, bool) {
	s.mu.Lock()
	f := s.feeds[path]
	s.mu.Unlock()
	if f == nil {
		return StreamInfo{}, false
	}
	vc, opus := f.info()
	si := StreamInfo{Viewers: int(f.viewers.Load()), Video: vc != nil, Audio: opus, BFrames: f.bframes.Load()}
	if vc != nil {
		si.VideoCodec = vc.codec.String()
	}
	return si, true
}

func (s *Server) remove(ss *session) {
	s.mu.Lock()
	delete(s.byID, ss.id)
	s.mu.Unlock()
}

// errNoStream, errBusy: answered 404, 503.
var (
	errNoStream = errors.New("no such live stream")
	errBusy     = errors.New("too many WebRTC sessions")
)

// Answer makes a session for a viewer of the stream at path with this SDP
// offer and returns its id and the SDP answer. Errors wrap errNoStream,
// errBusy or errBadOffer, or are the server's own.
func (s *Server) Answer(ctx context.Context, path string, offer []byte) (id, answer string, err error) {
	s.mu.Lock()
	f := s.feeds[path]
	busy := len(s.byID)+len(s.pubs)+s.pending >= s.cfg.MaxSessions
	closed := s.ctx.Err() != nil
	s.mu.Unlock()
	if f == nil || f.isEnded() {
		return "", "", fmt.Errorf("%w: %s", errNoStream, path)
	}
	vc, opus, err := f.playable(path)
	if err != nil {
		return "", "", err
	}
	if busy || closed {
		return "", "", fmt.Errorf("%w (at most %d)", errBusy, s.cfg.MaxSessions)
	}
	info, err := checkOffer(offer, vc)
	if err != nil {
		return "", "", err
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	sctx, cancel := context.WithCancelCause(s.ctx)
	ss := &session{id: hex.EncodeToString(b[:16]), vNext: binary.BigEndian.Uint32(b[16:]), srv: s, feed: f, ctx: sctx, cancel: cancel, done: make(chan struct{}),
		connected: make(chan struct{}), q: make(chan *frame, queueFrames)}
	ss.log = s.log.With("stream", path)
	f.warm()
	gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
	defer gcancel()
	answer, err = s.newPeer(gctx, ss, string(offer), vc, info, opus)
	if err != nil {
		cancel(err)
		return "", "", err
	}
	s.mu.Lock()
	if len(s.byID)+len(s.pubs)+s.pending >= s.cfg.MaxSessions || s.ctx.Err() != nil {
		s.mu.Unlock()
		cancel(errBusy)
		_ = ss.pc.Close()
		return "", "", fmt.Errorf("%w (at most %d)", errBusy, s.cfg.MaxSessions)
	}
	s.byID[ss.id] = ss
	s.total++
	// Under the lock that saw the server open: Close cannot be waiting yet.
	s.wg.Go(ss.run)
	s.mu.Unlock()
	audio := "none"
	switch {
	case opus && ss.audio != nil:
		audio = "opus"
	case opus:
		audio = "opus, not asked for"
	case info.audio:
		audio = "refused: the stream's audio is not Opus (AAC cannot go to WebRTC untranscoded)"
	}
	ss.log.Info("webrtc viewer session answered", "session", ss.id, "video", ss.vformat, "audio", audio)
	return ss.id, answer, nil
}

// Delete ends the session id, and returns once it is cleaned up; false if
// there is no such session.
func (s *Server) Delete(id string) bool {
	s.mu.Lock()
	ss := s.byID[id]
	s.mu.Unlock()
	if ss == nil {
		return false
	}
	ss.end("ended by the viewer (DELETE)")
	select {
	case <-ss.done:
	case <-time.After(5 * time.Second):
	}
	return true
}

// ServeHTTP answers WHEP at /APP/NAME/whep (POST an offer) and the
// sessions' URLs /APP/NAME/whep/ID (DELETE, and PATCH for trickle ICE:
// trickle.go). The router has checked the path's names and the viewer's
// right to play; CORS is the viewer port's.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	stream, id, ok := SplitPath(r.URL.Path)
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	whip := strings.HasSuffix(stream, "/"+EndpointWHIP)
	stream = strings.TrimSuffix(strings.TrimSuffix(stream, "/"+EndpointWHIP), "/"+Endpoint)
	switch {
	case id == "" && whip:
		s.serveWHIP(w, r, stream)
		return
	case id == "":
		s.serveEndpoint(w, r, stream)
		return
	}
	switch r.Method {
	case http.MethodDelete:
		if whip && !s.DeletePublish(id) || !whip && !s.Delete(id) {
			http.Error(w, "no such WebRTC session", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		s.servePatch(w, r, stream, id, whip)
	default:
		h.Set("Allow", "PATCH, DELETE, OPTIONS")
		h.Set("Accept-Patch", TrickleType)
		http.Error(w, "method not allowed: PATCH trickle ICE candidates ("+TrickleType+") or DELETE the session", http.StatusMethodNotAllowed)
	}
}

// readOffer reads the SDP offer a WHEP or WHIP endpoint is POSTed, or
// answers the request's fault and returns false.
func readOffer(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "method not allowed: POST an SDP offer (application/sdp)", http.StatusMethodNotAllowed)
		return nil, false
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/sdp") {
		http.Error(w, "Content-Type must be application/sdp", http.StatusUnsupportedMediaType)
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOfferBytes+1))
	if err != nil {
		http.Error(w, "reading the offer: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

func (s *Server) serveEndpoint(w http.ResponseWriter, r *http.Request, stream string) {
	h := w.Header()
	body, ok := readOffer(w, r)
	if !ok {
		return
	}
	id, answer, err := s.Answer(r.Context(), stream, body)
	switch {
	case errors.Is(err, errNoStream):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case errors.Is(err, errBusy):
		h.Set("Retry-After", "10")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case errors.Is(err, errBadOffer):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		s.log.Error("webrtc: answering an offer", "stream", stream, "err", err)
		http.Error(w, "webrtc: "+err.Error(), http.StatusInternalServerError)
		return
	}
	for _, u := range s.cfg.STUN {
		h.Add("Link", "<"+u+`>; rel="ice-server"`)
	}
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", "/"+stream+"/whep/"+id)
	h.Set("ETag", `"`+id+`"`)
	h.Set("Accept-Patch", TrickleType)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// Endpoint is the last element of a stream's WHEP URL: /APP/NAME/whep.
const Endpoint = "whep"

// SplitPath reads a WHEP or WHIP path, /APP/NAME/whep or /APP/NAME/whep/ID
// (or whip), into the endpoint (APP/NAME/whep) and the session id ("" for
// the endpoint).
func SplitPath(p string) (endpoint, id string, ok bool) {
	p, ok = strings.CutPrefix(p, "/")
	parts := strings.Split(p, "/")
	if !ok || len(parts) < 3 || len(parts) > 4 || parts[2] != Endpoint && parts[2] != EndpointWHIP {
		return "", "", false
	}
	if len(parts) == 4 {
		id = parts[3]
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			return "", "", false
		}
	}
	return parts[0] + "/" + parts[1] + "/" + parts[2], id, parts[0] != "" && parts[1] != ""
}
