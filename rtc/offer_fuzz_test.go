package rtc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/fount-live/fount/segmenter/codec"
)

// highVideo is an H.264 High (level 3.1) configuration as a publish
// gives it; only what the feed reads of it.
var highVideo = &codec.Video{Codec: codec.AVC, Record: []byte{1, 0x64, 0x00, 0x1f, 0xff, 0xe1}, NALULengthSize: 4,
	SPS: [][]byte{{0x67, 0x64, 0x00, 0x1f, 0xac}}, PPS: [][]byte{{0x68, 0xeb, 0xe3, 0xcb}}}

// testServer is a Server on a loopback port with one live stream,
// live/x, whose video is highVideo.
func testServer(tb testing.TB) *Server {
	tb.Helper()
	srv, err := New(Config{UDPAddr: "127.0.0.1:0", MaxSessions: 4})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	srv.Feed("live/x").VideoConfig(highVideo)
	return srv
}

// pionOffer is the offer of a pion viewer receiving video and audio.
func pionOffer(tb testing.TB) string {
	return pionOfferTo(tb, webrtc.RTPTransceiverDirectionRecvonly)
}

// pionOfferTo is a pion offer with a video and an audio section in dir.
func pionOfferTo(tb testing.TB, dir webrtc.RTPTransceiverDirection) string {
	tb.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			tb.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return offer.SDP
}

// chromiumOffer has the shape of a Chromium recvonly offer: audio first,
// many video formats, RTX, H.264 in several profiles.
const chromiumOffer = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 9D:0B:55:4C:B4:6A:1F:24:40:5A:E0:DD:1E:F9:D2:1F:E1:24:EA:4E:7E:3F:2B:0C:AE:43:7C:B0:8A:5B:E2:6E\r\na=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 9D:0B:55:4C:B4:6A:1F:24:40:5A:E0:DD:1E:F9:D2:1F:E1:24:EA:4E:7E:3F:2B:0C:AE:43:7C:B0:8A:5B:E2:6E\r\na=setup:actpass\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n" +
	"a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n" +
	"a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\na=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n" +
	"a=rtpmap:104 H264/90000\r\na=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\na=rtpmap:105 rtx/90000\r\na=fmtp:105 apt=104\r\n" +
	"a=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:107 rtx/90000\r\na=fmtp:107 apt=106\r\n" +
	"a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\na=rtpmap:109 rtx/90000\r\na=fmtp:109 apt=108\r\n" +
	"a=rtpmap:127 H264/90000\r\na=rtcp-fb:127 nack\r\na=rtcp-fb:127 nack pli\r\na=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034\r\na=rtpmap:125 rtx/90000\r\na=fmtp:125 apt=127\r\n"

// FuzzAnswer feeds any body to the offer handling a WHEP POST runs
// (Server.Answer: the SDP checks, pion's negotiation, the answer) on a
// loopback port, for an H.264, a VP9 and an AV1 stream: it never panics,
// refuses with errBadOffer, or answers with the stream's codec and a
// session that DELETE ends.
func FuzzAnswer(f *testing.F) {
	srv := testServer(f)
	srv.Feed("live/vp9").VideoConfig(&codec.Video{Codec: codec.VP9})
	srv.Feed("live/av1").VideoConfig(&codec.Video{Codec: codec.AV1, Record: []byte{0x81, 0, 0x0c, 0, 0x0a, 2, 0, 0}})
	f.Add([]byte(vpxOffer))
	f.Add([]byte(pionOffer(f)))
	f.Add([]byte(chromiumOffer))
	f.Add([]byte(strings.ReplaceAll(chromiumOffer, "profile-level-id=640034", "profile-level-id=4d0034")))
	f.Add([]byte(strings.ReplaceAll(chromiumOffer, "a=recvonly", "a=sendonly")))
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=64001f\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		for path, enc := range map[string]string{"live/x": "H264/90000", "live/vp9": "VP9/90000", "live/av1": "AV1/90000"} {
			id, answer, err := srv.Answer(context.Background(), path, body)
			if err != nil {
				if !errors.Is(err, errBadOffer) {
					t.Fatalf("%s: refused with %v, want errBadOffer", path, err)
				}
				continue
			}
			if !strings.Contains(answer, enc) || !strings.Contains(answer, "a=candidate:") {
				t.Errorf("%s: answer without %s or a candidate:\n%s", path, enc, answer)
			}
			if !srv.Delete(id) {
				t.Errorf("%s: DELETE found no session", path)
			}
		}
	})
}

// TestAnswerProfiles: the answer carries the offer's H.264 format that
// best fits the stream's profile; an offer without H.264 is refused with
// the reason.
func TestAnswerProfiles(t *testing.T) {
	srv := testServer(t)
	_, answer, err := srv.Answer(context.Background(), "live/x", []byte(chromiumOffer))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "a=rtpmap:127 H264/90000") || !strings.Contains(answer, "m=audio 0 ") {
		t.Errorf("want Chromium's High format (127) and the audio refused:\n%s", answer)
	}
	// Chromium 156 offers no High for receiving: High 4:4:4 Predictive
	// (f4), which High decoders' superset is, or else Main.
	noHigh := strings.ReplaceAll(chromiumOffer, "profile-level-id=640034", "profile-level-id=f40034")
	if _, answer, err := srv.Answer(context.Background(), "live/x", []byte(noHigh)); err != nil || !strings.Contains(answer, "profile-level-id=f400") {
		t.Errorf("an offer without High: %v\n%s", err, answer)
	}
	noF4 := strings.ReplaceAll(chromiumOffer, "profile-level-id=640034", "profile-level-id=42e034")
	if _, answer, err := srv.Answer(context.Background(), "live/x", []byte(noF4)); err != nil || !strings.Contains(answer, "profile-level-id=4d001f") {
		t.Errorf("an offer without High or f4: %v\n%s", err, answer)
	}
	vp8 := chromiumOffer[:strings.Index(chromiumOffer, "a=rtpmap:102")]
	if _, _, err := srv.Answer(context.Background(), "live/x", []byte(vp8)); !errors.Is(err, errBadOffer) || !strings.Contains(err.Error(), "no H.264") {
		t.Errorf("a VP8-only offer: %v", err)
	}
	if _, _, err := srv.Answer(context.Background(), "live/none", []byte(chromiumOffer)); !errors.Is(err, errNoStream) {
		t.Errorf("no stream: %v", err)
	}
}
