package rtc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// fakePublisher accepts every publish (or refuses them all with err) and
// counts the sessions it opened and those closed.
type fakePublisher struct {
	err          error
	mu           sync.Mutex
	open, closed int
}

func (p *fakePublisher) Publish(context.Context, ingest.PublishRequest) (ingest.Session, error) {
	if p.err != nil {
		return nil, p.err
	}
	p.mu.Lock()
	p.open++
	p.mu.Unlock()
	return &fakeSession{p: p}, nil
}

func (p *fakePublisher) counts() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open, p.closed
}

type fakeSession struct {
	p    *fakePublisher
	once sync.Once
}

func (*fakeSession) Metadata(ingest.Metadata)       {}
func (*fakeSession) VideoConfig(*codec.Video) error { return nil }
func (*fakeSession) AudioConfig(*codec.Audio) error { return nil }
func (*fakeSession) Frame(segmenter.Frame) error    { return nil }
func (s *fakeSession) Close() {
	closedTwice := true
	s.once.Do(func() {
		closedTwice = false
		s.p.mu.Lock()
		s.p.closed++
		s.p.mu.Unlock()
	})
	if closedTwice {
		panic("a publish's session closed twice")
	}
}

// pionPublishOffer is the offer of a pion publisher sending H.264 and Opus.
func pionPublishOffer(tb testing.TB) string {
	return pionOfferTo(tb, webrtc.RTPTransceiverDirectionSendonly)
}

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}

// FuzzPublish feeds any body to the offer handling a WHIP POST runs
// (Server.Publish: the SDP checks, the publish, pion's negotiation, the
// answer) on a loopback port, fMP4 segments: it never panics, refuses
// with errBadOffer, or answers with H.264, VP9, AV1 or Opus (never VP8)
// and a session that DELETE ends; every publish it opened is closed once.
func FuzzPublish(f *testing.F) {
	srv := testServer(f)
	pub := &fakePublisher{}
	srv.SetIngest(Ingest{App: "live", Publisher: pub, Format: segmenter.FormatFMP4})
	chromiumSend := strings.ReplaceAll(chromiumOffer, "a=recvonly", "a=sendonly")
	f.Add([]byte(pionPublishOffer(f)))
	f.Add([]byte(chromiumSend))
	f.Add([]byte(chromiumSend[:strings.Index(chromiumSend, "a=rtpmap:102")])) // VP8 video, Opus audio
	f.Add([]byte(chromiumOffer))
	f.Add([]byte(sendOffer("VP8/90000", "VP9/90000", "AV1/90000")))
	f.Add([]byte(sendOffer("AV1/90000", "rtx/90000")))
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=sendonly\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		id, answer, err := srv.Publish(context.Background(), "live/x", "", loopback, body)
		if err != nil {
			if !errors.Is(err, errBadOffer) {
				t.Fatalf("refused with %v, want errBadOffer", err)
			}
		} else {
			taken := false
			for _, c := range []string{"H264/90000", "VP9/90000", "AV1/90000", "opus/48000"} {
				taken = taken || strings.Contains(answer, c)
			}
			if !taken || strings.Contains(answer, "VP8/90000") || !strings.Contains(answer, "a=candidate:") {
				t.Errorf("answer without H.264, VP9, AV1 or Opus, with VP8, or without a candidate:\n%s", answer)
			}
			if !srv.DeletePublish(id) {
				t.Error("DELETE found no session")
			}
		}
		if open, closed := pub.counts(); open != closed {
			t.Fatalf("%d publishes opened, %d closed", open, closed)
		}
	})
}

// TestPublishRefusals: the statuses' errors, each with its reason.
func TestPublishRefusals(t *testing.T) {
	srv := testServer(t)
	offer := []byte(pionPublishOffer(t))
	if _, _, err := srv.Publish(context.Background(), "live/x", "", loopback, offer); !errors.Is(err, errNoStream) || !strings.Contains(err.Error(), "WHIP ingest is off") {
		t.Errorf("ingest off: %v", err)
	}
	busy := &fakePublisher{err: fmt.Errorf("publish live/x: %w", playlist.ErrStreamBusy)}
	srv.SetIngest(Ingest{App: "live", Publisher: busy})
	if _, _, err := srv.Publish(context.Background(), "live/x", "", loopback, offer); !errors.Is(err, errConflict) {
		t.Errorf("stream busy: %v, want errConflict", err)
	}
	if _, _, err := srv.Publish(context.Background(), "other/x", "", loopback, offer); !errors.Is(err, errNoStream) || !strings.Contains(err.Error(), "unknown application") {
		t.Errorf("another app: %v", err)
	}
	keys := &fakePublisher{}
	srv.SetIngest(Ingest{App: "live", Publisher: keys, Auth: mapAuth{"k1": "x", "k2": "y"}})
	for key, want := range map[string]error{"": errNoAuth, "bad": errForbidden, "k2": errForbidden} {
		if _, _, err := srv.Publish(context.Background(), "live/x", key, loopback, offer); !errors.Is(err, want) {
			t.Errorf("key %q: %v, want %v", key, err, want)
		}
	}
	id, _, err := srv.Publish(context.Background(), "live/x", "k1", loopback, offer)
	if err != nil {
		t.Fatalf("good key: %v", err)
	}
	if ps := srv.Publishers(); len(ps) != 1 || ps[0].Stream != "live/x" || !ps[0].Video || !ps[0].Audio {
		t.Errorf("publishers: %+v", ps)
	}
	srv.DeletePublish(id)
	if open, closed := keys.counts(); open != 1 || closed != 1 {
		t.Errorf("%d publishes opened, %d closed; want 1 and 1", open, closed)
	}
	// The API's disconnect ends a publish too.
	id, _, err = srv.Publish(context.Background(), "live/x", "k1", loopback, offer)
	if err != nil {
		t.Fatalf("publishing again: %v", err)
	}
	if srv.Disconnect("live/y") || !srv.Disconnect("live/x") {
		t.Error("Disconnect: wrong stream, or none found")
	}
	if srv.DeletePublish(id) {
		// DELETE waited for the end Disconnect began; the session is gone after it.
		if srv.DeletePublish(id) {
			t.Error("the session outlived Disconnect and DELETE")
		}
	}
	if open, closed := keys.counts(); open != 2 || closed != 2 {
		t.Errorf("%d publishes opened, %d closed; want 2 and 2", open, closed)
	}
}

// mapAuth maps keys to names as --auth keys does.
type mapAuth map[string]string

func (m mapAuth) Authorize(_ context.Context, req ingest.AuthRequest) (string, error) {
	if n, ok := m[req.Key]; ok {
		return n, nil
	}
	return "", ingest.ErrUnknownKey
}
