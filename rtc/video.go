package rtc

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/fount-live/fount/segmenter/codec"
)

// videoConf is what a session needs of the stream's video configuration:
// H.264, VP9 or AV1, each passed through as the publisher sent it.
type videoConf struct {
	codec codec.ID // AVC, VP9 or AV1

	// H.264.
	nalLen    int
	paramSets []byte // the SPS and PPS in Annex-B, sent before each keyframe
	// profileLevelID is the avcC's profile, constraints and level as
	// SDP's profile-level-id ("64001f").
	profileLevelID string
	width, height  int

	// VP9 and AV1: profile is SDP's VP9 profile-id, AV1's profile (the
	// seq_profile); level and tier are AV1's level-idx and tier.
	profile, level, tier int
	// seqHeader is AV1's sequence header OBU (with its size field), sent
	// before each keyframe that comes without one: a viewer joining there
	// needs it, and the RTP format marks a new coded video sequence by it.
	seqHeader []byte
}

// newVideoConf returns the configuration sessions get for v; nil for a
// codec WebRTC playback does not send (HEVC), or a record too short.
func newVideoConf(v *codec.Video) *videoConf {
	if v == nil {
		return nil
	}
	switch v.Codec {
	case codec.AVC:
		if len(v.Record) < 4 {
			return nil
		}
		vc := &videoConf{codec: codec.AVC, nalLen: v.NALULengthSize, profileLevelID: hex.EncodeToString(v.Record[1:4]), width: v.Width, height: v.Height}
		for _, ps := range append(append([][]byte(nil), v.SPS...), v.PPS...) {
			vc.paramSets = append(append(vc.paramSets, 0, 0, 0, 1), ps...)
		}
		return vc
	case codec.VP9:
		return &videoConf{codec: codec.VP9, profile: v.Profile, width: v.Width, height: v.Height}
	case codec.AV1:
		vc := &videoConf{codec: codec.AV1, profile: v.Profile, level: v.Level, width: v.Width, height: v.Height}
		if v.HighTier {
			vc.tier = 1
		}
		if len(v.Record) > 4 {
			vc.seqHeader = av1SequenceHeader(v.Record[4:])
		}
		return vc
	}
	return nil
}

// format names what viewers negotiate, as logs show it ("VP9
// profile-id=0"); a stream whose format changes ends its sessions.
func (vc *videoConf) format() string {
	switch vc.codec {
	case codec.AVC:
		return "H.264 profile-level-id=" + vc.profileLevelID
	case codec.VP9:
		return "VP9 profile-id=" + strconv.Itoa(vc.profile)
	}
	return "AV1 profile=" + strconv.Itoa(vc.profile)
}

// capability is the format the session registers and answers with;
// profileLevelID is the H.264 one checkOffer chose.
func (vc *videoConf) capability(profileLevelID string) webrtc.RTPCodecCapability {
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	c := webrtc.RTPCodecCapability{ClockRate: 90000, RTCPFeedback: fb}
	switch vc.codec {
	case codec.AVC:
		c.MimeType = webrtc.MimeTypeH264
		c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profileLevelID
	case codec.VP9:
		c.MimeType = webrtc.MimeTypeVP9
		c.SDPFmtpLine = "profile-id=" + strconv.Itoa(vc.profile)
	case codec.AV1:
		// The AV1 RTP format's parameters: the stream's own profile,
		// level and tier. pion matches the offer's formats by profile
		// and answers with the offer's parameters: Chromium's
		// level-idx=5 (level 3.1) whatever the stream's level, which
		// goes out as it is.
		c.MimeType = webrtc.MimeTypeAV1
		c.SDPFmtpLine = fmt.Sprintf("level-idx=%d;profile=%d;tier=%d", vc.level, vc.profile, vc.tier)
	}
	return c
}

// payloader returns pion's payloader for the codec. pictureID starts
// VP9's picture IDs (a random one, as the RTP format asks).
func (vc *videoConf) payloader(pictureID uint16) rtp.Payloader {
	switch vc.codec {
	case codec.VP9:
		// Non-flexible mode: pion reads each frame's header (keyframe,
		// size) for the payload descriptor and its scalability structure.
		return &codecs.VP9Payloader{InitialPictureIDFn: func() uint16 { return pictureID & 0x7fff }}
	case codec.AV1:
		return &codecs.AV1Payloader{}
	}
	return &codecs.H264Payloader{}
}

// frame returns a frame's bytes as the payloader takes them, a copy
// (the publisher's buffer is reused): H.264 in Annex-B with the parameter
// sets before a keyframe; a VP9 frame or superframe as it is; an AV1
// temporal unit as av1Frame makes it. ok is false for a malformed frame.
func (vc *videoConf) frame(data []byte, key bool) (out []byte, ok bool) {
	switch vc.codec {
	case codec.AVC:
		return annexB(data, vc.nalLen, key, vc.paramSets)
	case codec.VP9:
		return append([]byte(nil), data...), len(data) > 0
	case codec.AV1:
		return av1Frame(data, key, vc.seqHeader)
	}
	return nil, false
}

// AV1 OBU types (AV1 spec 6.2.2).
const (
	obuSequenceHeader    = 1
	obuTemporalDelimiter = 2
)

// nextOBU splits the first OBU off b, a low-overhead bitstream (AV1 spec
// 5.2; what E-RTMP and ISOBMFF carry): its type, the whole OBU, and the
// rest. An OBU without a size field runs to the end of b. ok is false
// when b does not start with a whole OBU.
func nextOBU(b []byte) (typ byte, whole, rest []byte, ok bool) {
	if len(b) == 0 || b[0]&0x80 != 0 {
		return 0, nil, nil, false
	}
	typ = b[0] >> 3 & 15
	hl := 1
	if b[0]&4 != 0 { // obu_extension_flag
		hl = 2
	}
	if len(b) < hl {
		return 0, nil, nil, false
	}
	if b[0]&2 == 0 { // no obu_has_size_field: the rest of b
		return typ, b, nil, true
	}
	size, n := uint64(0), 0
	for {
		if hl+n >= len(b) || n == 8 {
			return 0, nil, nil, false
		}
		c := b[hl+n]
		size |= uint64(c&0x7f) << (7 * n)
		n++
		if c&0x80 == 0 {
			break
		}
	}
	end := uint64(hl + n)
	if size > uint64(len(b))-end {
		return 0, nil, nil, false
	}
	end += size
	return typ, b[:end], b[end:], true
}

// av1SequenceHeader returns the sequence header OBU among an av1C's
// configOBUs, with a size field (so that other OBUs may follow it); nil
// if there is none.
func av1SequenceHeader(obus []byte) []byte {
	for len(obus) > 0 {
		typ, whole, rest, ok := nextOBU(obus)
		if !ok {
			return nil
		}
		obus = rest
		if typ != obuSequenceHeader {
			continue
		}
		if whole[0]&2 != 0 {
			return append([]byte(nil), whole...)
		}
		hl := 1 + int(whole[0]>>2&1)
		out := append([]byte{whole[0] | 2}, whole[1:hl]...)
		for n := len(whole) - hl; ; n >>= 7 {
			if n < 0x80 {
				out = append(out, byte(n))
				break
			}
			out = append(out, byte(n&0x7f|0x80))
		}
		return append(out, whole[hl:]...)
	}
	return nil
}

// av1Frame makes an AV1 temporal unit ready for pion's AV1 payloader,
// which takes OBUs with or without size fields and drops temporal
// delimiters and padding itself: a keyframe starts with its sequence
// header (its own, else seqHeader), so that the payloader marks its first
// packet as starting a new coded video sequence (the N bit, by which
// browsers know a keyframe); other frames carry none, so that they are not
// taken for keyframes. Temporal delimiters are dropped here, so that the
// sequence header is the first OBU. ok is false when tu is not a sequence
// of whole OBUs.
func av1Frame(tu []byte, key bool, seqHeader []byte) (out []byte, ok bool) {
	out = make([]byte, 0, len(tu)+len(seqHeader))
	var own []byte
	for b := tu; len(b) > 0; {
		typ, whole, rest, ok := nextOBU(b)
		if !ok {
			return nil, false
		}
		b = rest
		switch {
		case typ == obuTemporalDelimiter:
		case typ == obuSequenceHeader:
			if own == nil {
				own = whole
			}
		default:
			out = append(out, whole...)
		}
	}
	if !key {
		return out, len(out) > 0
	}
	sh := seqHeader
	if own != nil {
		sh = own
	}
	if len(sh) > 0 && own != nil && own[0]&2 == 0 && len(out) > 0 {
		// An OBU without a size field can only be the last one.
		sh = av1SequenceHeader(own)
	}
	out = append(out, sh...)
	copy(out[len(sh):], out[:len(out)-len(sh)])
	copy(out, sh)
	return out, len(out) > len(sh)
}
