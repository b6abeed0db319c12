package rtc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// publishOffer is what fount takes of a WHIP publisher's offer: the
// formats of its sending sections that HLS can carry, to be registered
// with pion as they were offered (payload type and fmtp line), so that
// the answer names exactly them.
type publishOffer struct {
	sdp []byte
	// video holds the formats of one codec, videoCodec (codec.Unknown
	// when none), in the offer's order: H.264 with packetization-mode=1
	// when offered, else VP9 or AV1, whichever the offer lists first.
	video      []webrtc.RTPCodecParameters
	videoCodec codec.ID
	opus       []webrtc.RTPCodecParameters // Opus/48000/2
	// refusedVideo names the video formats offered and refused (VP8, …),
	// for the error when nothing else is left.
	refusedVideo []string
}

// videoFeedback is the RTCP feedback fount asks of a publisher's video:
// NACK for lost packets, PLI and FIR for keyframes (at start, after a loss).
var videoFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}

// checkPublishOffer reads a WHIP offer (RFC 9725: the publisher sends):
// it needs a video section with H.264 (packetization-mode=1), VP9 or AV1,
// or an audio section with Opus, each sendonly or sendrecv. H.264 comes
// first when offered: every HLS player takes it, in either segment
// format. VP9 and AV1 go only into fMP4 segments (format). VP8 (which
// fMP4 HLS players do not take, and fount does not transcode) and H.265
// over RTP are not taken, so their sections are answered rejected; an
// offer with nothing fount can take is refused with an error wrapping
// errBadOffer.
func checkPublishOffer(body []byte, format segmenter.Format) (publishOffer, error) {
	po := publishOffer{sdp: body}
	if len(body) == 0 {
		return po, fmt.Errorf("%w: empty body, want an SDP offer", errBadOffer)
	}
	if len(body) > maxOfferBytes {
		return po, fmt.Errorf("%w: offer over %d bytes", errBadOffer, maxOfferBytes)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return po, fmt.Errorf("%w: not SDP: %w", errBadOffer, err)
	}
	sending := false
	offered := map[codec.ID][]webrtc.RTPCodecParameters{}
	var later []codec.ID // VP9 and AV1, in the offer's order
	for _, md := range sd.MediaDescriptions {
		if md == nil || md.MediaName.Port.Value == 0 {
			continue
		}
		if d := direction(md); d == "recvonly" || d == "inactive" {
			continue
		}
		sending = true
		rtpmaps, fmtps := formats(md)
		switch md.MediaName.Media {
		case "video":
			for _, pt := range md.MediaName.Formats {
				name, rate, _ := strings.Cut(rtpmaps[pt], "/")
				id, mime := codec.Unknown, ""
				switch {
				case rate != "90000":
				case strings.EqualFold(name, "H264"):
					id, mime = codec.AVC, webrtc.MimeTypeH264
				case strings.EqualFold(name, "VP9"):
					id, mime = codec.VP9, webrtc.MimeTypeVP9
				case strings.EqualFold(name, "AV1"):
					id, mime = codec.AV1, webrtc.MimeTypeAV1
				}
				n, err := strconv.ParseUint(pt, 10, 8)
				switch {
				case id == codec.Unknown:
					if name != "" && !strings.EqualFold(name, "rtx") && !strings.EqualFold(name, "red") &&
						!strings.EqualFold(name, "ulpfec") && !strings.EqualFold(name, "flexfec-03") {
						po.refusedVideo = append(po.refusedVideo, name)
					}
					continue
				case err != nil || id == codec.AVC && !h264Mode1(fmtps[pt]):
					continue
				case id != codec.AVC && !segmenter.CanCarry(format, id):
					po.refusedVideo = append(po.refusedVideo, name+" (MPEG-TS segments cannot carry it: --segment-format fmp4 can)")
					continue
				}
				if id != codec.AVC && len(offered[id]) == 0 {
					later = append(later, id)
				}
				offered[id] = append(offered[id], webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(n), RTPCodecCapability: webrtc.RTPCodecCapability{
					MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtps[pt], RTCPFeedback: videoFeedback,
				}})
			}
		case "audio":
			for _, pt := range md.MediaName.Formats {
				n, err := strconv.ParseUint(pt, 10, 8)
				if err != nil || !strings.EqualFold(rtpmaps[pt], "opus/48000/2") {
					continue
				}
				po.opus = append(po.opus, webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(n), RTPCodecCapability: webrtc.RTPCodecCapability{
					MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: fmtps[pt],
				}})
			}
		}
	}
	switch {
	case len(offered[codec.AVC]) > 0:
		po.videoCodec = codec.AVC
	case len(later) > 0:
		po.videoCodec = later[0]
	}
	po.video = offered[po.videoCodec]
	takes := "H.264 (packetization-mode=1), VP9 or AV1 video and Opus (48000/2) audio"
	if !segmenter.CanCarry(format, codec.VP9) {
		takes = "H.264 (packetization-mode=1) video and Opus (48000/2) audio"
	}
	switch {
	case !sending:
		return po, fmt.Errorf("%w: no media section that sends (m=video or m=audio, sendonly or sendrecv)", errBadOffer)
	case len(po.video) == 0 && len(po.opus) == 0 && len(po.refusedVideo) > 0:
		why := ""
		for _, n := range po.refusedVideo {
			if strings.EqualFold(n, "VP8") {
				why = " (HLS players do not play VP8 from fMP4 segments, and fount does not transcode)"
			}
		}
		return po, fmt.Errorf("%w: no codec fount can take: video %s offered; fount takes %s%s",
			errBadOffer, strings.Join(po.refusedVideo, ", "), takes, why)
	case len(po.video) == 0 && len(po.opus) == 0:
		return po, fmt.Errorf("%w: no codec fount can take: it takes %s", errBadOffer, takes)
	case len(po.video) == 0 && !segmenter.CanCarry(format, codec.Opus):
		// The publish would hold nothing: Opus is dropped from TS.
		return po, fmt.Errorf("%w: no codec fount can take: Opus alone, which MPEG-TS segments cannot carry (--segment-format fmp4 can); fount takes %s here", errBadOffer, takes)
	}
	return po, nil
}

// formats returns a section's rtpmap encodings ("H264/90000") and fmtp
// lines by payload type.
func formats(md *sdp.MediaDescription) (rtpmaps, fmtps map[string]string) {
	rtpmaps, fmtps = map[string]string{}, map[string]string{}
	for _, a := range md.Attributes {
		pt, v, _ := strings.Cut(a.Value, " ")
		switch a.Key {
		case "rtpmap":
			rtpmaps[pt] = strings.TrimSpace(v)
		case "fmtp":
			if len(v) > 512 {
				v = v[:512] // pion copies it into the answer: bounded
			}
			fmtps[pt] = strings.TrimSpace(v)
		}
	}
	return rtpmaps, fmtps
}

// h264Mode1 reports whether an fmtp line says packetization-mode=1 (the
// mode pion's depacketizer and every WebRTC sender use; mode 0 has no
// FU-A, so frames bigger than a packet cannot be sent in it).
func h264Mode1(fmtp string) bool {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, "packetization-mode") {
			return strings.TrimSpace(v) == "1"
		}
	}
	return false
}
