package rtc

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Trickle ICE (RFC 9725 §4.3, the WHEP draft alike): a client that sent
// its offer before gathering every candidate PATCHes the rest to the
// session's URL as an SDP fragment (RFC 8840). fount's own candidates are
// all in the answer: it never trickles, and it does not restart ICE.

// TrickleType is the media type of a trickle ICE PATCH's body.
const TrickleType = "application/trickle-ice-sdpfrag"

const (
	// maxFragBytes bounds a PATCH's body: a browser's few candidates are
	// well under a kilobyte.
	maxFragBytes = 16 << 10
	// maxFragCandidates bounds the candidates of one PATCH.
	maxFragCandidates = 64
)

var (
	// errBadFrag wraps every reason a fragment is refused (400).
	errBadFrag = errors.New("bad trickle ICE fragment")
	// errRestart: the fragment names other ICE credentials, an ICE
	// restart, which fount does not do (422).
	errRestart = errors.New("ICE restart is not supported")
	// errNoSession: no such session on this endpoint (404).
	errNoSession = errors.New("no such WebRTC session")
	// errPrecondition: If-Match names another ICE session (412).
	errPrecondition = errors.New("If-Match does not match the session's ETag")
)

// fragCandidate is one remote candidate of a fragment, in the m= section
// it came in: mline is that section's index, mid its a=mid. An empty
// value is a=end-of-candidates.
type fragCandidate struct {
	mid   string
	mline uint16
	value string // "candidate:…", or "" for the end of candidates
}

// sdpFrag is what fount uses of a trickle ICE fragment.
type sdpFrag struct {
	ufrag, pwd string // the ICE credentials it names, "" if none
	cands      []fragCandidate
	discarded  int // candidates of a type or network fount cannot use
}

// parseSDPFrag reads an application/trickle-ice-sdpfrag body (RFC 8840
// §9): session-level attributes, then m= sections, each with its a=mid,
// a=ice-ufrag, a=ice-pwd, a=candidate and a=end-of-candidates lines.
// Candidates before any m= line are taken as the first section's: some
// clients send bare candidate lines. Other lines and attributes are
// ignored. Errors wrap errBadFrag.
func parseSDPFrag(body []byte) (sdpFrag, error) {
	var f sdpFrag
	if len(body) == 0 {
		return f, fmt.Errorf("%w: empty body, want a=candidate lines in an SDP fragment", errBadFrag)
	}
	if len(body) > maxFragBytes {
		return f, fmt.Errorf("%w: over %d bytes", errBadFrag, maxFragBytes)
	}
	mline, mid := -1, ""
	ended := false
	for n, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return f, fmt.Errorf("%w: line %d: %.40q is not an SDP line (x=value)", errBadFrag, n+1, line)
		}
		if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return f, fmt.Errorf("%w: line %d: control character", errBadFrag, n+1)
		}
		val := line[2:]
		if line[0] == 'm' {
			if fs := strings.Fields(val); len(fs) < 3 || !isPort(fs[1]) {
				return f, fmt.Errorf("%w: line %d: %.40q: want m=MEDIA PORT PROTO [FORMATS]", errBadFrag, n+1, line)
			}
			if mline++; mline > 64 {
				return f, fmt.Errorf("%w: over 64 m= sections", errBadFrag)
			}
			mid = ""
			continue
		}
		if line[0] != 'a' {
			continue
		}
		name, v, _ := strings.Cut(val, ":")
		switch name {
		case "mid":
			if mline < 0 {
				return f, fmt.Errorf("%w: line %d: a=mid before any m= line", errBadFrag, n+1)
			}
			if v == "" {
				return f, fmt.Errorf("%w: line %d: empty a=mid", errBadFrag, n+1)
			}
			mid = v
		case "ice-ufrag", "ice-pwd":
			if !isICEChars(v) {
				return f, fmt.Errorf("%w: line %d: a=%s %.40q: want letters, digits, + and /", errBadFrag, n+1, name, v)
			}
			p := &f.ufrag
			if name == "ice-pwd" {
				p = &f.pwd
			}
			if *p != "" && *p != v {
				return f, fmt.Errorf("%w: line %d: a second, different a=%s", errBadFrag, n+1, name)
			}
			*p = v
		case "candidate":
			if ended {
				return f, fmt.Errorf("%w: line %d: a=candidate after a=end-of-candidates", errBadFrag, n+1)
			}
			if _, err := ice.UnmarshalCandidate(v); err != nil {
				// RFC 9725 §4.3.2: a candidate of a transport the server
				// does not support is discarded, not refused.
				if errors.Is(err, ice.ErrUnknownCandidateTyp) || errors.Is(err, ice.ErrDetermineNetworkType) {
					f.discarded++
					continue
				}
				return f, fmt.Errorf("%w: line %d: a=candidate: %w", errBadFrag, n+1, err)
			}
			if len(f.cands) >= maxFragCandidates {
				return f, fmt.Errorf("%w: over %d candidates", errBadFrag, maxFragCandidates)
			}
			f.cands = append(f.cands, fragCandidate{mid: mid, mline: uint16(max(mline, 0)), value: "candidate:" + v})
		case "end-of-candidates":
			if !ended {
				ended = true
				f.cands = append(f.cands, fragCandidate{mid: mid, mline: uint16(max(mline, 0))})
			}
		}
	}
	if len(f.cands) == 0 && f.discarded == 0 && f.ufrag == "" && f.pwd == "" {
		return f, fmt.Errorf("%w: no a=candidate, a=end-of-candidates or ICE credentials in it", errBadFrag)
	}
	return f, nil
}

// isPort reports whether s is an SDP port (a number below 65536).
func isPort(s string) bool {
	p, err := strconv.ParseUint(s, 10, 16)
	return err == nil && p <= 65535
}

// isICEChars reports whether s is 1 to 256 ice-chars (RFC 8839 §5.4).
func isICEChars(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// Trickle adds the candidates of an SDP fragment to the session id of the
// WHEP (or, with whip, WHIP) endpoint of stream (APP/NAME). ifMatch is the
// request's If-Match: empty, "*", or ETags of which one must be the
// session's. Errors wrap errNoSession, errPrecondition, errBadFrag or
// errRestart.
func (s *Server) Trickle(stream, id string, whip bool, ifMatch string, body []byte) (added int, err error) {
	var pc *webrtc.PeerConnection
	s.mu.Lock()
	if whip {
		if w := s.pubs[id]; w != nil && w.info.Stream == stream {
			pc = w.pc
		}
	} else if ss := s.byID[id]; ss != nil && ss.feed.path == stream {
		pc = ss.pc
	}
	s.mu.Unlock()
	if pc == nil {
		return 0, fmt.Errorf("%w: %s", errNoSession, id)
	}
	if !etagMatches(ifMatch, `"`+id+`"`) {
		return 0, fmt.Errorf("%w (%s)", errPrecondition, `"`+id+`"`)
	}
	f, err := parseSDPFrag(body)
	if err != nil {
		return 0, err
	}
	if f.ufrag != "" || f.pwd != "" {
		ufrag, pwd := remoteCredentials(pc)
		if f.ufrag != "" && f.ufrag != ufrag || f.pwd != "" && f.pwd != pwd {
			return 0, fmt.Errorf("%w: the fragment's a=ice-ufrag/a=ice-pwd are not the offer's; end the session (DELETE) and POST a new offer", errRestart)
		}
	}
	for _, c := range f.cands {
		mid, mline := c.mid, c.mline
		init := webrtc.ICECandidateInit{Candidate: c.value, SDPMLineIndex: &mline}
		if mid != "" {
			init.SDPMid = &mid
		}
		// The parser has checked the syntax: what pion refuses now (an
		// mDNS name it cannot resolve, a closed session) is discarded,
		// as RFC 9725 §4.3.2 asks of candidates the server cannot use.
		if err := pc.AddICECandidate(init); err != nil {
			s.log.Debug("webrtc: a trickled candidate discarded", "session", id, "candidate", c.value, "err", err)
			continue
		}
		if c.value != "" {
			added++
		}
	}
	return added, nil
}

// etagMatches is If-Match's strong comparison (RFC 9110 §13.1.1). A PATCH
// without If-Match is taken: the ETag is optional for a session that
// does not restart ICE (RFC 9725 §4.3.1), and clients differ.
func etagMatches(ifMatch, etag string) bool {
	ifMatch = strings.TrimSpace(ifMatch)
	if ifMatch == "" || ifMatch == "*" {
		return true
	}
	for _, t := range strings.Split(ifMatch, ",") {
		if strings.TrimSpace(t) == etag {
			return true
		}
	}
	return false
}

// remoteCredentials are the ICE username fragment and password of the
// session's offer (session-level, else the first m= section's).
func remoteCredentials(pc *webrtc.PeerConnection) (ufrag, pwd string) {
	rd := pc.RemoteDescription()
	if rd == nil {
		return "", ""
	}
	// A copy of its text: Unmarshal would write to pion's own.
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(rd.SDP); err != nil {
		return "", ""
	}
	ufrag, _ = sd.Attribute("ice-ufrag")
	pwd, _ = sd.Attribute("ice-pwd")
	for _, md := range sd.MediaDescriptions {
		if ufrag == "" {
			ufrag, _ = md.Attribute("ice-ufrag")
		}
		if pwd == "" {
			pwd, _ = md.Attribute("ice-pwd")
		}
	}
	return ufrag, pwd
}

// servePatch answers a trickle ICE PATCH to a session's URL: 204 once its
// candidates are added.
func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, stream, id string, whip bool) {
	w.Header().Set("Accept-Patch", TrickleType)
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), TrickleType) {
		http.Error(w, "Content-Type must be "+TrickleType+" (trickle ICE, RFC 8840)", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFragBytes+1))
	if err != nil {
		http.Error(w, "reading the fragment: "+err.Error(), http.StatusBadRequest)
		return
	}
	added, err := s.Trickle(stream, id, whip, r.Header.Get("If-Match"), body)
	code := http.StatusNoContent
	switch {
	case errors.Is(err, errNoSession):
		code = http.StatusNotFound
	case errors.Is(err, errPrecondition):
		code = http.StatusPreconditionFailed
	case errors.Is(err, errBadFrag):
		code = http.StatusBadRequest
	case errors.Is(err, errRestart):
		// RFC 9725 §4.3.1: a session that supports trickle ICE but not
		// ICE restarts answers a restart 422 (Unprocessable Content),
		// and the session goes on with its ICE as it was.
		code = http.StatusUnprocessableEntity
	case err != nil:
		code = http.StatusInternalServerError
	}
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	s.log.Debug("webrtc: trickled candidates", "session", id, "added", added)
	// RFC 9725 §4.3.2: 204, no body and no ETag (the ICE session is the same).
	w.WriteHeader(code)
}
