package rtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// sendOffer is a sendonly offer with one video section of the given
// formats (rtpmap encodings), payload types 96 on in that order; H.264
// says packetization-mode=1, rtx repeats the format before it.
func sendOffer(encodings ...string) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n")
	pts := make([]string, len(encodings))
	for i := range encodings {
		pts[i] = fmt.Sprint(96 + i)
	}
	b.WriteString("m=video 9 UDP/TLS/RTP/SAVPF " + strings.Join(pts, " ") + "\r\nc=IN IP4 0.0.0.0\r\n")
	b.WriteString("a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n")
	b.WriteString("a=fingerprint:sha-256 9D:0B:55:4C:B4:6A:1F:24:40:5A:E0:DD:1E:F9:D2:1F:E1:24:EA:4E:7E:3F:2B:0C:AE:43:7C:B0:8A:5B:E2:6E\r\n")
	b.WriteString("a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n")
	for i, e := range encodings {
		fmt.Fprintf(&b, "a=rtpmap:%s %s\r\n", pts[i], e)
		switch {
		case strings.HasPrefix(e, "H264"):
			fmt.Fprintf(&b, "a=fmtp:%s packetization-mode=1;profile-level-id=42e01f\r\n", pts[i])
		case strings.HasPrefix(e, "rtx") && i > 0:
			fmt.Fprintf(&b, "a=fmtp:%s apt=%s\r\n", pts[i], pts[i-1])
		case strings.HasPrefix(e, "VP9"):
			fmt.Fprintf(&b, "a=fmtp:%s profile-id=0\r\n", pts[i])
		}
	}
	return b.String()
}

// TestPublishOfferCodecs: the video codec an offer gets (H.264 first,
// else VP9 or AV1 in the offer's order, the formats of that codec only),
// and the refusals: VP8 or H.265 alone, VP9 and AV1 with MPEG-TS
// segments.
func TestPublishOfferCodecs(t *testing.T) {
	fmp4, ts := segmenter.FormatFMP4, segmenter.FormatTS
	for _, c := range []struct {
		name   string
		offer  string
		format segmenter.Format
		want   codec.ID
		pts    []webrtc.PayloadType
		err    []string
	}{
		{"H.264 first", sendOffer("VP9/90000", "AV1/90000", "H264/90000"), fmp4, codec.AVC, []webrtc.PayloadType{98}, nil},
		{"VP9, offered before AV1", sendOffer("VP8/90000", "rtx/90000", "VP9/90000", "rtx/90000", "AV1/90000", "VP9/90000"), fmp4, codec.VP9, []webrtc.PayloadType{98, 101}, nil},
		{"AV1, offered before VP9", sendOffer("VP8/90000", "AV1/90000", "VP9/90000"), fmp4, codec.AV1, []webrtc.PayloadType{97}, nil},
		{"H.264 in TS", sendOffer("VP9/90000", "H264/90000"), ts, codec.AVC, []webrtc.PayloadType{97}, nil},
		{"VP8 only", sendOffer("VP8/90000", "rtx/90000"), fmp4, 0, nil,
			[]string{"video VP8 offered", "H.264 (packetization-mode=1), VP9 or AV1 video", "do not play VP8", "does not transcode"}},
		{"H.265 only", sendOffer("H265/90000"), fmp4, 0, nil, []string{"video H265 offered", "VP9 or AV1"}},
		{"VP9 in TS", sendOffer("VP9/90000"), ts, 0, nil, []string{"VP9 (MPEG-TS segments cannot carry it: --segment-format fmp4 can)", "fount takes H.264 (packetization-mode=1) video and Opus"}},
		{"AV1 at another clock rate", sendOffer("AV1/48000"), fmp4, 0, nil, []string{"video AV1 offered"}},
		{"VP9 and Opus in TS", sendOffer("VP9/90000") + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=sendonly\r\n", ts, 0, nil, []string{"Opus alone, which MPEG-TS segments cannot carry"}},
		{"Opus alone in fMP4", "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=sendonly\r\n", fmp4, 0, nil, nil},
	} {
		po, err := checkPublishOffer([]byte(c.offer), c.format)
		if c.err != nil {
			if !errors.Is(err, errBadOffer) {
				t.Errorf("%s: %v, want errBadOffer", c.name, err)
				continue
			}
			for _, s := range c.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%s: %q does not say %q", c.name, err, s)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var pts []webrtc.PayloadType
		for _, f := range po.video {
			pts = append(pts, f.PayloadType)
		}
		if po.videoCodec != c.want || fmt.Sprint(pts) != fmt.Sprint(c.pts) {
			t.Errorf("%s: %v %v, want %v %v", c.name, po.videoCodec, pts, c.want, c.pts)
		}
	}
}

// TestWHIPAnswerCodec: a publish offering VP8, VP9 and AV1 (no H.264) is
// answered with VP9 alone, at its payload type.
func TestWHIPAnswerCodec(t *testing.T) {
	srv := testServer(t)
	srv.SetIngest(Ingest{App: "live", Publisher: &fakePublisher{}, Format: segmenter.FormatFMP4})
	id, answer, err := srv.Publish(context.Background(), "live/x", "", loopback, []byte(sendOffer("VP8/90000", "VP9/90000", "AV1/90000")))
	if err != nil {
		t.Fatal(err)
	}
	srv.DeletePublish(id)
	if !strings.Contains(answer, "a=rtpmap:97 VP9/90000") || strings.Contains(answer, "VP8") || strings.Contains(answer, "AV1") {
		t.Errorf("answer:\n%s", answer)
	}
}

// ivfFrames reads the frames of an IVF file of testdata. vp9.ivf and
// av1.ivf are ten 96x64 frames, a keyframe every five, from
//
//	ffmpeg -f lavfi -i testsrc2=size=96x64:rate=30 -frames:v 10 -g 5 -lag-in-frames 0 -b:v 300k \
//	  -c:v libvpx-vp9 -deadline realtime -cpu-used 8 vp9.ivf
//	  (-c:v libaom-av1 -usage realtime -cpu-used 8 av1.ivf)
func ivfFrames(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		b, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

// TestWHIPDepacketize sends VP9 and AV1 frames (ffmpeg's, three times
// over: 30 frames) through pion's payloaders in packets of at most 300
// bytes, losing the first packet of frame 2, into a publish's track: the
// first keyframe gives the configuration (the size from the bitstream),
// keyframes are flagged by their bitstream, frames come out as sent (AV1
// without its temporal delimiters), at their RTP time, and the loss drops
// the video to the next keyframe.
func TestWHIPDepacketize(t *testing.T) {
	for _, c := range []struct {
		file, mime string
		payloader  rtp.Payloader
		id         codec.ID
		codecs     string
	}{
		{"vp9.ivf", webrtc.MimeTypeVP9, &codecs.VP9Payloader{}, codec.VP9, "vp09.00.10.08"},
		{"av1.ivf", webrtc.MimeTypeAV1, &codecs.AV1Payloader{}, codec.AV1, "av01.0.00M.08"},
	} {
		t.Run(c.id.String(), func(t *testing.T) {
			frames := ivfFrames(t, c.file)
			if len(frames) != 10 {
				t.Fatalf("%d frames in %s", len(frames), c.file)
			}
			frames = append(append(frames, frames...), frames...)
			rec := &recSession{}
			w := &whipSession{sess: rec, log: slog.New(slog.DiscardHandler)}
			tr, err := newTrack(webrtc.RTPCodecTypeVideo, c.mime)
			if err != nil {
				t.Fatal(err)
			}
			seq := uint16(65530) // the sequence numbers wrap
			for i, f := range frames {
				payloads := c.payloader.Payload(300, f)
				for j, pl := range payloads {
					seq++
					if i == 2 && j == 0 {
						continue // lost
					}
					p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 1000 + uint32(i)*3000,
						Marker: j == len(payloads)-1, SSRC: 1}, Payload: pl}
					if err := w.push(tr, p); err != nil {
						t.Fatal(err)
					}
				}
			}
			if len(rec.video) != 1 || rec.video[0].Codec != c.id || rec.video[0].Codecs != c.codecs || rec.video[0].Width != 96 || rec.video[0].Height != 64 {
				t.Fatalf("configurations %+v, want one %s 96x64", rec.video, c.codecs)
			}
			var got []string
			for _, f := range rec.frames {
				i := int(f.DTS / (time.Second / 30))
				want := frames[i]
				if c.id == codec.AV1 {
					want = bytes.TrimPrefix(want, []byte{0x12, 0}) // the temporal delimiter: not sent
				}
				if !bytes.Equal(f.Data, want) {
					t.Errorf("frame %d: %d bytes, want %d as sent", i, len(f.Data), len(want))
				}
				if f.DTS != f.PTS || f.DTS != time.Duration(i)*time.Second/30 && f.DTS != time.Duration(i)*time.Second/30-1 {
					t.Errorf("frame %d at DTS %v PTS %v", i, f.DTS, f.PTS)
				}
				if f.Key != (i%5 == 0) {
					t.Errorf("frame %d: key %v", i, f.Key)
				}
				got = append(got, fmt.Sprint(i))
			}
			// Frame 2 is lost, 3 and 4 refer to it; the last waits for a
			// packet after it.
			want := "0 1 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28"
			if strings.Join(got, " ") != want {
				t.Errorf("frames %s, want %s", strings.Join(got, " "), want)
			}
		})
	}
}
