package rtc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// publishOffer is what fount takes of a WHIP publisher's offer: the
// formats of its sending sections that HLS can carry, to be registered
// with pion as they were offered (payload type and fmtp line), so that
// the answer names exactly them.
type publishOffer struct {
	sdp  []byte
	h264 []webrtc.RTPCodecParameters // H.264 with packetization-mode=1, the offer's order
	opus []webrtc.RTPCodecParameters // Opus/48000/2
	// refusedVideo names the video formats offered and refused (VP8, …),
	// for the error when nothing else is left.
	refusedVideo []string
}

// checkPublishOffer reads a WHIP offer (RFC 9725: the publisher sends):
// it needs a video section with H.264 (packetization-mode=1) or an audio
// section with Opus, each sendonly or sendrecv. VP8 (which fMP4 HLS
// players do not take), VP9, AV1 and H.265 over RTP are not depacketized
// here, so their sections are answered rejected; an offer with nothing
// fount can take is refused with an error wrapping errBadOffer.
func checkPublishOffer(body []byte) (publishOffer, error) {
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
				enc := rtpmaps[pt]
				name, _, _ := strings.Cut(enc, "/")
				if !strings.EqualFold(enc, "H264/90000") {
					if name != "" && !strings.EqualFold(name, "rtx") && !strings.EqualFold(name, "red") &&
						!strings.EqualFold(name, "ulpfec") && !strings.EqualFold(name, "flexfec-03") {
						po.refusedVideo = append(po.refusedVideo, name)
					}
					continue
				}
				n, err := strconv.ParseUint(pt, 10, 8)
				if err != nil || !h264Mode1(fmtps[pt]) {
					continue
				}
				po.h264 = append(po.h264, webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(n), RTPCodecCapability: webrtc.RTPCodecCapability{
					MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: fmtps[pt],
					RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}},
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
	case !sending:
		return po, fmt.Errorf("%w: no media section that sends (m=video or m=audio, sendonly or sendrecv)", errBadOffer)
	case len(po.h264) == 0 && len(po.opus) == 0 && len(po.refusedVideo) > 0:
		return po, fmt.Errorf("%w: no codec fount can take: video %s offered, fount takes H.264 (packetization-mode=1) video and Opus audio", errBadOffer, strings.Join(po.refusedVideo, ", "))
	case len(po.h264) == 0 && len(po.opus) == 0:
		return po, fmt.Errorf("%w: no codec fount can take: it takes H.264 (packetization-mode=1) video and Opus (48000/2) audio", errBadOffer)
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
