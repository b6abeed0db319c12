package rtc

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// TestFeedColdCopiesNothing: a stream nobody watches costs its
// publisher no allocation per frame (and so no copy).
func TestFeedColdCopiesNothing(t *testing.T) {
	f := newFeed("live/x", time.Now, nil)
	f.VideoConfig(highVideo)
	key := segmenter.Frame{Kind: segmenter.Video, Key: true, Data: []byte{0, 0, 0, 2, 0x65, 0x88}}
	p := segmenter.Frame{Kind: segmenter.Video, DTS: time.Millisecond, PTS: time.Millisecond, Data: []byte{0, 0, 0, 2, 0x41, 0x9a}}
	if n := testing.AllocsPerRun(100, func() { f.Frame(key); f.Frame(p) }); n != 0 {
		t.Errorf("%v allocations per frame pair without viewers, want 0", n)
	}
	if f.gop != nil {
		t.Error("a cold feed kept a GOP")
	}
}

// TestFeedKeepGOPWithoutViewers: with Config.KeepGOP a feed nobody
// watches keeps its last GOP from the keyframe on, so that the first
// viewer starts at once; a new keyframe starts a new GOP.
func TestFeedKeepGOPWithoutViewers(t *testing.T) {
	f := newFeed("live/x", time.Now, nil)
	f.always = true
	f.VideoConfig(highVideo)
	key := segmenter.Frame{Kind: segmenter.Video, Key: true, Data: []byte{0, 0, 0, 2, 0x65, 0x88}}
	p := segmenter.Frame{Kind: segmenter.Video, DTS: time.Millisecond, PTS: time.Millisecond, Data: []byte{0, 0, 0, 2, 0x41, 0x9a}}
	f.Frame(p) // before any keyframe: nothing to start with
	if len(f.gop) != 0 {
		t.Fatalf("kept %d frames before a keyframe", len(f.gop))
	}
	f.Frame(key)
	f.Frame(p)
	f.Frame(p)
	if len(f.gop) != 3 || !f.gop[0].key {
		t.Fatalf("GOP of %d frames (first key: %v), want 3 from the keyframe", len(f.gop), len(f.gop) > 0 && f.gop[0].key)
	}
	f.Frame(key)
	if len(f.gop) != 1 || !f.gop[0].key {
		t.Errorf("after a new keyframe the GOP has %d frames, want 1", len(f.gop))
	}
}

// TestAnnexB: length-prefixed NAL units become Annex-B, parameter sets
// first on a keyframe, access unit delimiters dropped; a length past the
// end is refused.
func TestAnnexB(t *testing.T) {
	params := []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2}
	au := []byte{0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 0xaa, 0xbb}
	got, ok := annexB(au, 4, true, params)
	want := append(append([]byte(nil), params...), 0, 0, 0, 1, 0x65, 0xaa, 0xbb)
	if !ok || !bytes.Equal(got, want) {
		t.Errorf("got %x %v, want %x", got, ok, want)
	}
	if _, ok := annexB([]byte{0, 0, 0, 9, 0x41}, 4, false, nil); ok {
		t.Error("a NAL length past the end was taken")
	}
}

// TestOpusPassedThrough: a stream whose audio is Opus gives its viewers
// an Opus track: a pion viewer that offers audio gets it in the answer
// and receives the packets, at 48 kHz timestamps that follow the frames'.
func TestOpusPassedThrough(t *testing.T) {
	srv := testServer(t)
	feed := srv.Feed("live/x")
	feed.AudioConfig(&codec.Audio{Codec: codec.Opus, SampleRate: 48000, Channels: 2})

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
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	var audioPackets, videoPackets atomic.Int32
	var firstTS, lastTS atomic.Uint32
	gotAudio := make(chan struct{})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				videoPackets.Add(1)
				continue
			}
			if audioPackets.Add(1) == 1 {
				firstTS.Store(p.Timestamp)
			}
			lastTS.Store(p.Timestamp)
			if audioPackets.Load() == 10 {
				close(gotAudio)
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	id, answer, err := srv.Answer(context.Background(), "live/x", []byte(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains([]byte(answer), []byte("opus/48000/2")) {
		t.Fatalf("no Opus in the answer:\n%s", answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	// The publisher: a keyframe, then 20 ms Opus packets and a P-frame
	// every 40 ms, until the viewer has ten audio packets.
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		at := time.Duration(i) * 20 * time.Millisecond
		if i%2 == 0 {
			feed.Frame(segmenter.Frame{Kind: segmenter.Video, DTS: at, PTS: at, Key: i%50 == 0, Data: []byte{0, 0, 0, 2, 0x65, byte(i)}})
		}
		feed.Frame(segmenter.Frame{Kind: segmenter.Audio, DTS: at, PTS: at, Data: []byte{0xfc, byte(i), 1, 2}})
		select {
		case <-gotAudio:
			srv.Delete(id)
			// Ten packets 20 ms apart: 9 × 960 ticks at 48 kHz.
			if d := lastTS.Load() - firstTS.Load(); d != 9*960 {
				t.Errorf("audio timestamps %d apart over ten packets, want %d", d, 9*960)
			}
			if videoPackets.Load() == 0 {
				t.Error("no video packet")
			}
			return
		case <-deadline:
			t.Fatalf("%d audio and %d video packets after 10 s", audioPackets.Load(), videoPackets.Load())
		case <-ticker.C:
		}
	}
}
