package rtc

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/fount-live/fount/segmenter/codec"
)

// vp9Keyframe is a VP9 profile 0 keyframe of w×h: its uncompressed
// header's first fields (VP9 spec 6.2), then filler for n bytes in all.
func vp9Keyframe(w, h, n int) []byte {
	var bits []bool
	put := func(v uint, k int) {
		for i := k - 1; i >= 0; i-- {
			bits = append(bits, v>>i&1 == 1)
		}
	}
	put(2, 2)         // frame_marker
	put(0, 2)         // profile 0
	put(0, 1)         // show_existing_frame
	put(0, 1)         // frame_type: KEY_FRAME
	put(1, 1)         // show_frame
	put(0, 1)         // error_resilient_mode
	put(0x498342, 24) // frame_sync_code
	put(1, 3)         // color_space: BT.601
	put(0, 1)         // color_range
	put(uint(w-1), 16)
	put(uint(h-1), 16)
	out := make([]byte, n)
	for i, b := range bits {
		if b {
			out[i/8] |= 0x80 >> (i % 8)
		}
	}
	for i := (len(bits) + 7) / 8; i < n; i++ {
		out[i] = byte(i)
	}
	return out
}

// vp9Interframe is a VP9 profile 0 non-key frame of n bytes.
func vp9Interframe(n int) []byte {
	out := make([]byte, n)
	out[0] = 0x86 // frame_marker 2, profile 0, show_existing 0, non-key, shown
	for i := 1; i < n; i++ {
		out[i] = byte(i)
	}
	return out
}

// packetize runs a frame through the payloader of vc as a session does.
func packetize(vc *videoConf, pictureID uint16, frames ...[]byte) [][]*rtp.Packet {
	p := rtp.NewPacketizer(mtu, 102, 1, vc.payloader(pictureID), rtp.NewRandomSequencer(), 90000)
	var out [][]*rtp.Packet
	for _, f := range frames {
		out = append(out, p.Packetize(f, 3000))
	}
	return out
}

// TestPacketizeVP9: a VP9 keyframe of several packets goes out with the
// payload descriptor a browser needs (non-flexible mode: picture ID from
// the one given, begin and end of frame, no inter-picture prediction and
// the scalability structure with the picture's size on the keyframe),
// the marker on its last packet; the next frame is predicted and has the
// next picture ID. The payloads reassemble to the frames.
func TestPacketizeVP9(t *testing.T) {
	vc := newVideoConf(&codec.Video{Codec: codec.VP9, Profile: 0, Record: []byte{1, 0, 0, 0, 0, 10, 0x82, 2, 2, 2, 0, 0}})
	key, inter := vp9Keyframe(320, 180, 3000), vp9Interframe(500)
	data, ok := vc.frame(key, true)
	if !ok || !bytes.Equal(data, key) {
		t.Fatal("the VP9 frame was not passed as it is")
	}
	frames := packetize(vc, 0x1234, key, inter)
	if n := len(frames[0]); n < 3 {
		t.Fatalf("a 3000-byte keyframe in %d packets, want 3 or more at MTU %d", n, mtu)
	}
	for i, pkts := range frames {
		var got []byte
		for j, p := range pkts {
			var d codecs.VP9Packet
			payload, err := d.Unmarshal(p.Payload)
			if err != nil {
				t.Fatalf("frame %d packet %d: %v", i, j, err)
			}
			got = append(got, payload...)
			first, last := j == 0, j == len(pkts)-1
			if d.F || !d.I || d.PictureID != 0x1234+uint16(i) || d.B != first || d.E != last || p.Marker != last || d.P != (i == 1) {
				t.Errorf("frame %d packet %d: %+v marker %v", i, j, d, p.Marker)
			}
			if wantSS := i == 0 && first; d.V != wantSS || wantSS && (len(d.Width) != 1 || d.Width[0] != 320 || d.Height[0] != 180) {
				t.Errorf("frame %d packet %d: scalability structure %v %vx%v", i, j, d.V, d.Width, d.Height)
			}
			if len(p.Payload) > mtu-12 {
				t.Errorf("packet of %d bytes over the MTU", len(p.Payload))
			}
		}
		if want := [][]byte{key, inter}[i]; !bytes.Equal(got, want) {
			t.Errorf("frame %d reassembled to %d bytes, want its %d", i, len(got), len(want))
		}
	}
}

// obu makes an AV1 OBU of type typ with a size field.
func obu(typ byte, payload []byte) []byte {
	return append([]byte{typ<<3 | 2, byte(len(payload))}, payload...) // payloads < 128 bytes here
}

// TestAV1Frame: a keyframe's temporal unit starts with a sequence header
// (its own, moved first, or the configuration's), temporal delimiters go,
// and other frames lose theirs; a unit that is not whole OBUs is refused.
func TestAV1Frame(t *testing.T) {
	config := obu(obuSequenceHeader, []byte{0, 0, 0, 0x0a})
	own := obu(obuSequenceHeader, []byte{0, 0, 0, 0x0b})
	td := obu(obuTemporalDelimiter, nil)
	meta := obu(5, []byte{1, 2})
	frame := obu(6, []byte{0x10, 0x20, 0x30})
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	for _, c := range []struct {
		name string
		tu   []byte
		key  bool
		want []byte
	}{
		{"key without a sequence header", cat(td, frame), true, cat(config, frame)},
		{"key with its own, after metadata", cat(td, meta, own, frame), true, cat(own, meta, frame)},
		{"key, its own without a size field", cat(frame, []byte{obuSequenceHeader << 3, 0, 0, 0, 0x0b}), true, cat(own, frame)},
		{"not key", cat(td, own, frame), false, frame},
	} {
		got, ok := av1Frame(c.tu, c.key, config)
		if !ok || !bytes.Equal(got, c.want) {
			t.Errorf("%s: %x %v, want %x", c.name, got, ok, c.want)
		}
	}
	for _, bad := range [][]byte{{0x32, 9, 1}, {0x80}, {0x32, 0x80, 0x80}, {0x36}} {
		if _, ok := av1Frame(bad, true, config); ok {
			t.Errorf("%x taken", bad)
		}
	}
	// The configuration's sequence header, from an av1C whose configOBUs
	// hold it without a size field.
	if got := av1SequenceHeader([]byte{obuSequenceHeader << 3, 0, 0, 0, 0x0b}); !bytes.Equal(got, own) {
		t.Errorf("sequence header from configOBUs: %x, want %x", got, own)
	}
}

// TestPacketizeAV1: an AV1 keyframe goes out with its first packet
// marking a new coded video sequence (N, which browsers take for a
// keyframe) and the sequence header first; a frame too big for one packet
// is fragmented (Y, Z) and the last packet has the marker; a later frame
// has no N. The depacketized OBUs are the frame's, with size fields.
func TestPacketizeAV1(t *testing.T) {
	seq := obu(obuSequenceHeader, []byte{0, 0, 0, 0x0a})
	vc := newVideoConf(&codec.Video{Codec: codec.AV1, Profile: 0, Level: 8, Record: append([]byte{0x81, 0x08, 0x0c, 0}, seq...)})
	if !bytes.Equal(vc.seqHeader, seq) {
		t.Fatalf("sequence header from the record: %x", vc.seqHeader)
	}
	big := make([]byte, 2500)
	for i := range big {
		big[i] = byte(i)
	}
	// A frame OBU of 2500 bytes: its size as two bytes of LEB128.
	frameOBU := append([]byte{6<<3 | 2, byte(len(big)&0x7f | 0x80), byte(len(big) >> 7)}, big...)
	key, ok := vc.frame(append(obu(obuTemporalDelimiter, nil), frameOBU...), true)
	if !ok {
		t.Fatal("keyframe refused")
	}
	inter, _ := vc.frame(obu(6, []byte{1, 2, 3}), false)
	frames := packetize(vc, 0, key, inter)
	if n := len(frames[0]); n < 3 {
		t.Fatalf("a 2.5 kB keyframe in %d packets", n)
	}
	for i, pkts := range frames {
		var d codecs.AV1Depacketizer
		var got []byte
		for j, p := range pkts {
			n := p.Payload[0]&0x08 != 0
			if n != (i == 0 && j == 0) {
				t.Errorf("frame %d packet %d: N %v", i, j, n)
			}
			if p.Marker != (j == len(pkts)-1) {
				t.Errorf("frame %d packet %d: marker %v", i, j, p.Marker)
			}
			b, err := d.Unmarshal(p.Payload)
			if err != nil {
				t.Fatalf("frame %d packet %d: %v", i, j, err)
			}
			got = append(got, b...)
		}
		want := [][]byte{append(append([]byte(nil), seq...), frameOBU...), obu(6, []byte{1, 2, 3})}[i]
		if !bytes.Equal(got, want) {
			t.Errorf("frame %d depacketized to %d bytes %.20x…, want %d %.20x…", i, len(got), got, len(want), want)
		}
	}
}

// vpxOffer is chromiumOffer with Chromium's VP9 (profile-id 0 and 2) and
// AV1 formats in its video section.
var vpxOffer = strings.Replace(strings.Replace(chromiumOffer, "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 45 46", 1),
	"a=rtpmap:102 H264/90000", "a=rtpmap:98 VP9/90000\r\na=rtcp-fb:98 nack\r\na=rtcp-fb:98 nack pli\r\na=fmtp:98 profile-id=0\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n"+
		"a=rtpmap:100 VP9/90000\r\na=rtcp-fb:100 nack\r\na=fmtp:100 profile-id=2\r\na=rtpmap:101 rtx/90000\r\na=fmtp:101 apt=100\r\n"+
		"a=rtpmap:45 AV1/90000\r\na=rtcp-fb:45 nack\r\na=fmtp:45 level-idx=5;profile=0;tier=0\r\na=rtpmap:46 rtx/90000\r\na=fmtp:46 apt=45\r\n"+
		"a=rtpmap:102 H264/90000", 1)

// TestAnswerVP9AV1: a VP9 or AV1 stream's answer carries the offer's
// format of that codec in the stream's profile (pion answers with the
// offer's parameters: AV1's level-idx is the offer's), and no other video
// format; an offer without it, or only in other profiles, is refused
// with the reason; an HEVC stream is 404 naming HEVC.
func TestAnswerVP9AV1(t *testing.T) {
	srv := testServer(t)
	vp9 := &codec.Video{Codec: codec.VP9, Profile: 0}
	vp9p2 := &codec.Video{Codec: codec.VP9, Profile: 2}
	seq := obu(obuSequenceHeader, []byte{0, 0, 0, 0x0a})
	av1 := &codec.Video{Codec: codec.AV1, Profile: 0, Level: 8, Record: append([]byte{0x81, 0x08, 0x0c, 0}, seq...)}
	noVP9 := strings.Replace(vpxOffer, "VP9/90000", "VPX/90000", -1)
	noAV1 := strings.Replace(vpxOffer, "AV1/90000", "AVX/90000", -1)
	for _, c := range []struct {
		name   string
		v      *codec.Video
		offer  string
		want   []string // in the answer
		refuse string   // in the error
	}{
		{"vp9", vp9, vpxOffer, []string{"a=rtpmap:98 VP9/90000", "a=fmtp:98 profile-id=0"}, ""},
		{"vp9 profile 2", vp9p2, vpxOffer, []string{"a=rtpmap:100 VP9/90000", "a=fmtp:100 profile-id=2"}, ""},
		{"av1", av1, vpxOffer, []string{"a=rtpmap:45 AV1/90000", "a=fmtp:45 level-idx=5;profile=0;tier=0"}, ""},
		{"vp9, offer without", vp9, noVP9, nil, "the stream's video is VP9 profile-id=0; this offer has no VP9"},
		{"vp9 profile 2, offer of profile 0", vp9p2, strings.Replace(vpxOffer, "profile-id=2", "profile-id=0", 1), nil, "VP9 in other profiles only"},
		{"av1, offer without", av1, noAV1, nil, "the stream's video is AV1 profile=0; this offer has no AV1"},
		{"av1, H.264-only offer", av1, chromiumOffer, nil, "this offer has no AV1"},
	} {
		srv.Feed("live/x").VideoConfig(c.v)
		id, answer, err := srv.Answer(context.Background(), "live/x", []byte(c.offer))
		if c.refuse != "" {
			if !errors.Is(err, errBadOffer) || !strings.Contains(err.Error(), c.refuse) {
				t.Errorf("%s: %v, want a bad offer saying %q", c.name, err, c.refuse)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		srv.Delete(id)
		for _, w := range c.want {
			if !strings.Contains(answer, w) {
				t.Errorf("%s: no %q in the answer:\n%s", c.name, w, answer)
			}
		}
		if strings.Count(answer, "a=rtpmap:") != 1+strings.Count(answer, "rtx/90000") || strings.Contains(answer, "H264") {
			t.Errorf("%s: the answer has other video formats:\n%s", c.name, answer)
		}
	}
	if st, _ := srv.Stream("live/x"); !st.Video || st.VideoCodec != "AV1" {
		t.Errorf("StreamInfo %+v, want AV1 video", st)
	}
	srv.Feed("live/x").VideoConfig(&codec.Video{Codec: codec.HEVC})
	if _, _, err := srv.Answer(context.Background(), "live/x", []byte(vpxOffer)); !errors.Is(err, errNoStream) || !strings.Contains(err.Error(), "video is HEVC") {
		t.Errorf("an HEVC stream: %v, want no stream, naming HEVC", err)
	}
	if st, _ := srv.Stream("live/x"); st.Video || st.VideoCodec != "" {
		t.Errorf("StreamInfo %+v for HEVC, want no video", st)
	}
	srv.Feed("live/y")
	if _, _, err := srv.Answer(context.Background(), "live/y", []byte(vpxOffer)); !errors.Is(err, errNoStream) || !strings.Contains(err.Error(), "no video (yet)") {
		t.Errorf("a stream without video yet: %v", err)
	}
}

// FuzzAV1Frame: any bytes as an AV1 temporal unit from a publisher never
// panic; what is taken is whole OBUs with size fields (but the last),
// without temporal delimiters, a keyframe starting with its sequence
// header and another frame having none.
func FuzzAV1Frame(f *testing.F) {
	seq := obu(obuSequenceHeader, []byte{0, 0, 0, 0x0a})
	f.Add(append(obu(obuTemporalDelimiter, nil), obu(6, []byte{1, 2, 3})...), true)
	f.Add(bytes.Join([][]byte{obu(5, []byte{1}), seq, obu(6, []byte{4})}, nil), false)
	f.Add([]byte{obuSequenceHeader << 3, 0, 0, 0}, true)
	f.Add([]byte{0x36, 0x10, 0x81, 0x01}, true)
	f.Fuzz(func(t *testing.T, tu []byte, key bool) {
		out, ok := av1Frame(tu, key, seq)
		if !ok {
			return
		}
		var types []byte
		for b := out; len(b) > 0; {
			typ, whole, rest, ok := nextOBU(b)
			if !ok {
				t.Fatalf("output %x is not whole OBUs", out)
			}
			if len(rest) > 0 && whole[0]&2 == 0 {
				t.Fatalf("an OBU without a size field before the last in %x", out)
			}
			types, b = append(types, typ), rest
		}
		if bytes.IndexByte(types, obuTemporalDelimiter) >= 0 {
			t.Errorf("a temporal delimiter left in %x", out)
		}
		if n := bytes.Count(types, []byte{obuSequenceHeader}); key && (types[0] != obuSequenceHeader || n != 1) || !key && n != 0 {
			t.Errorf("key %v: OBU types %v", key, types)
		}
	})
}

// TestFeedCodecChange: a publisher back with another codec (or VP9/AV1
// profile) ends the sessions that negotiated the old one, at once and
// with the reason; HEVC, which is not sent, too.
func TestFeedCodecChange(t *testing.T) {
	for _, c := range []struct {
		to     *codec.Video
		reason string
	}{
		{&codec.Video{Codec: codec.VP9}, "the stream's video changed from H.264 profile-level-id=64001f to VP9 profile-id=0"},
		{&codec.Video{Codec: codec.HEVC}, "the stream's video changed to HEVC, which WebRTC playback does not send"},
		{highVideo, ""},
	} {
		f := newFeed("live/x", time.Now, nil)
		f.VideoConfig(highVideo)
		ctx, cancel := context.WithCancelCause(context.Background())
		s := &session{ctx: ctx, cancel: cancel}
		f.sessions[s] = struct{}{}
		f.viewers.Store(1)
		f.VideoConfig(c.to)
		if c.reason == "" {
			if ctx.Err() != nil || len(f.sessions) != 1 || !s.skip {
				t.Errorf("the same configuration again ended the session (%v) or did not have it wait for a keyframe", context.Cause(ctx))
			}
			continue
		}
		if err := context.Cause(ctx); err == nil || !strings.Contains(err.Error(), c.reason) || len(f.sessions) != 0 || f.viewers.Load() != 0 {
			t.Errorf("to %v: session ended with %v, %d sessions left, want %q", c.to.Codec, err, len(f.sessions), c.reason)
		}
	}
}
