package rtc

import (
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fount-live/fount/segmenter"
)

// serve sends a request to srv's handler and returns the recorder.
func serve(srv *Server, method, path, ctype, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// candidateLines matches an SDP's candidate lines.
var candidateLines = regexp.MustCompile(`(?m)^a=(candidate:|end-of-candidates).*\r?\n`)

// TestTrickle: a pion viewer POSTs its offer without a candidate, before
// gathering, then PATCHes its candidates as an SDP fragment (204); the
// server's ICE agent has them (a host candidate, not only the
// peer-reflexive one its checks would give), and the viewer connects and
// receives the stream's video.
func TestTrickle(t *testing.T) {
	srv := testServer(t)
	feed := srv.Feed("live/x")

	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	var videoPackets atomic.Int32
	gotVideo := make(chan struct{})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			if videoPackets.Add(1) == 5 {
				close(gotVideo)
			}
		}
	})
	connected := make(chan struct{})
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		if st == webrtc.ICEConnectionStateConnected {
			close(connected)
		}
	})
	offer, err := pc.CreateOffer(&webrtc.OfferOptions{OfferAnswerOptions: webrtc.OfferAnswerOptions{ICETricklingSupported: true}})
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	bare := candidateLines.ReplaceAllString(offer.SDP, "")
	rec := serve(srv, "POST", "/live/x/whep", "application/sdp", bare)
	if rec.Code != 201 {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	answer, loc, etag := rec.Body.String(), rec.Header().Get("Location"), rec.Header().Get("ETag")
	if rec.Header().Get("Accept-Patch") != TrickleType || !strings.Contains(answer, "a=ice-options:trickle") || !strings.Contains(answer, "a=candidate:") {
		t.Errorf("the answer does not offer trickle ICE, or lacks the server's candidates: %v\n%s", rec.Header(), answer)
	}

	<-gathered
	local := pc.LocalDescription().SDP
	cands := candidateLines.FindAllString(local, -1)
	if len(cands) < 2 { // a host candidate and the end
		t.Fatalf("the viewer gathered no candidate:\n%s", local)
	}
	ufrag := regexp.MustCompile(`a=ice-ufrag:(\S+)`).FindStringSubmatch(local)[1]
	pwd := regexp.MustCompile(`a=ice-pwd:(\S+)`).FindStringSubmatch(local)[1]
	frag := "a=ice-options:trickle\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\n" + strings.Join(cands, "")
	if rec := serve(srv, "PATCH", loc, TrickleType, frag, "If-Match", etag); rec.Code != 204 || rec.Header().Get("ETag") != "" || rec.Body.Len() != 0 {
		t.Fatalf("PATCH: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	// The viewer learns the server's candidates only now: its checks
	// cannot have reached the server before the PATCH.
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}

	id := loc[strings.LastIndex(loc, "/")+1:]
	srv.mu.Lock()
	spc := srv.byID[id].pc
	srv.mu.Unlock()
	host := false
	for _, st := range spc.GetStats() {
		if c, ok := st.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate && c.CandidateType == webrtc.ICECandidateTypeHost {
			host = true
		}
	}
	if !host {
		t.Error("the server's ICE agent has no host candidate of the viewer's: the PATCH added none")
	}

	ticker := time.NewTicker(40 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(15 * time.Second)
	for i := 0; ; i++ {
		at := time.Duration(i) * 40 * time.Millisecond
		feed.Frame(segmenter.Frame{Kind: segmenter.Video, DTS: at, PTS: at, Key: i%25 == 0, Data: []byte{0, 0, 0, 2, 0x65, byte(i)}})
		select {
		case <-gotVideo:
			select {
			case <-connected:
			default:
				t.Error("video without ICE connected")
			}
			if rec := serve(srv, "DELETE", loc, "", ""); rec.Code != 200 {
				t.Errorf("DELETE: %d", rec.Code)
			}
			return
		case <-deadline:
			t.Fatalf("%d video packets after 15 s", videoPackets.Load())
		case <-ticker.C:
		}
	}
}

// TestTrickleRefusals: what a PATCH is answered when it cannot be taken.
func TestTrickleRefusals(t *testing.T) {
	srv := testServer(t)
	srv.Feed("live/y").VideoConfig(highVideo)
	rec := serve(srv, "POST", "/live/x/whep", "application/sdp", chromiumOffer)
	if rec.Code != 201 {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	loc, etag := rec.Header().Get("Location"), rec.Header().Get("ETag")
	defer serve(srv, "DELETE", loc, "", "")
	id := loc[strings.LastIndex(loc, "/")+1:]
	good := "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=candidate:1 1 udp 2122260223 127.0.0.1 61764 typ host\r\na=end-of-candidates\r\n"
	for _, c := range []struct {
		name, path, ctype, ifMatch, body string
		code                             int
		says                             string
	}{
		{"good", loc, TrickleType, etag, good, 204, ""},
		{"no If-Match", loc, TrickleType, "", good, 204, ""},
		{"If-Match *", loc, TrickleType, "*", good, 204, ""},
		{"bad content type", loc, "application/sdp", etag, good, 415, TrickleType},
		{"content type with parameters", loc, TrickleType + "; charset=utf-8", etag, good, 204, ""},
		{"empty", loc, TrickleType, etag, "", 400, "empty body"},
		{"not SDP", loc, TrickleType, etag, "candidate 1 1 udp", 400, "not an SDP line"},
		{"bad candidate", loc, TrickleType, etag, "a=candidate:1 1 udp notanumber 127.0.0.1 9 typ host\r\n", 400, "a=candidate"},
		{"bad m line", loc, TrickleType, etag, "m=audio\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", 400, "m=MEDIA PORT PROTO"},
		{"nothing in it", loc, TrickleType, etag, "a=group:BUNDLE 0\r\n", 400, "no a=candidate"},
		{"unknown session", "/live/x/whep/0123456789abcdef0123456789abcdef", TrickleType, "", good, 404, "no such WebRTC session"},
		{"another stream's session", "/live/y/whep/" + id, TrickleType, "", good, 404, "no such WebRTC session"},
		{"a WHIP URL", "/live/x/whip/" + id, TrickleType, "", good, 404, "no such WebRTC session"},
		{"If-Match mismatch", loc, TrickleType, `"0123"`, good, 412, "If-Match"},
		{"ICE restart", loc, TrickleType, "*", strings.ReplaceAll(good, "ice-ufrag:abcd", "ice-ufrag:wxyz"), 422, "ICE restart"},
		{"ICE restart, new password", loc, TrickleType, etag, strings.ReplaceAll(good, "ice-pwd:abcdefghijklmnopqrstuvwx", "ice-pwd:abcdefghijklmnopqrstuvwz"), 422, "ICE restart"},
	} {
		rec := serve(srv, "PATCH", c.path, c.ctype, c.body, "If-Match", c.ifMatch)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.says) {
			t.Errorf("%s: %d %q, want %d saying %q", c.name, rec.Code, rec.Body, c.code, c.says)
		}
	}
	if rec := serve(srv, "GET", loc, "", ""); rec.Code != 405 || rec.Header().Get("Allow") != "PATCH, DELETE, OPTIONS" || rec.Header().Get("Accept-Patch") != TrickleType {
		t.Errorf("GET: %d %v", rec.Code, rec.Header())
	}
	if n := srv.Stats().Sessions; n != 1 {
		t.Errorf("%d sessions, want the one (a refused PATCH ends nothing)", n)
	}
}

// FuzzSDPFrag feeds any body to the trickle ICE fragment parser: it never
// panics, refuses with errBadFrag, or gives candidates pion can take.
func FuzzSDPFrag(f *testing.F) {
	f.Add([]byte("a=ice-options:trickle\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
		"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
		"a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1\r\na=end-of-candidates\r\n"))
	f.Add([]byte("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\n"))
	f.Add([]byte("a=candidate:1 1 udp 1 abc.local 9 typ host\n"))
	f.Add([]byte("a=candidate:1 1 udp 1 127.0.0.1 9 typ nonsense\n"))
	f.Add([]byte("m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:1\na=end-of-candidates\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := parseSDPFrag(body)
		if err != nil {
			if !errors.Is(err, errBadFrag) {
				t.Fatalf("refused with %v, want errBadFrag", err)
			}
			return
		}
		if len(fr.cands) > maxFragCandidates+1 {
			t.Errorf("%d candidates", len(fr.cands))
		}
		if fr.ufrag != "" && !isICEChars(fr.ufrag) || fr.pwd != "" && !isICEChars(fr.pwd) {
			t.Errorf("credentials %q %q", fr.ufrag, fr.pwd)
		}
		for i, c := range fr.cands {
			if c.value == "" && i != len(fr.cands)-1 || c.value != "" && !strings.HasPrefix(c.value, "candidate:") {
				t.Errorf("candidate %d: %q", i, c.value)
			}
		}
	})
}
