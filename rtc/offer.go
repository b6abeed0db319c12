package rtc

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/fount-live/fount/segmenter/codec"
)

// errBadOffer wraps every reason an offer is refused (400).
var errBadOffer = errors.New("bad offer")

// maxOfferBytes bounds an offer's body: browsers' are a few kilobytes.
const maxOfferBytes = 64 << 10

// offerInfo is what fount needs of a viewer's offer.
type offerInfo struct {
	// profileLevelID is the H.264 format to answer with (H.264 streams): the offer's
	// profile and constraints that best fit the stream's (profileRank),
	// with the stream's level (level-asymmetry-allowed lets it differ).
	profileLevelID string
	audio          bool // the offer has an audio section that can receive
}

// checkOffer reads an SDP offer and finds in it, in a video section that
// can receive, the stream's video format: for H.264 the format
// (packetization-mode=1) that best fits the stream's profile; for VP9 and
// AV1 one of the stream's profile. Any other offer is refused with an
// error wrapping errBadOffer.
func checkOffer(body []byte, vc *videoConf) (offerInfo, error) {
	var info offerInfo
	if len(body) == 0 {
		return info, fmt.Errorf("%w: empty body, want an SDP offer", errBadOffer)
	}
	if len(body) > maxOfferBytes {
		return info, fmt.Errorf("%w: offer over %d bytes", errBadOffer, maxOfferBytes)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return info, fmt.Errorf("%w: not SDP: %w", errBadOffer, err)
	}
	var want []byte
	if vc.codec == codec.AVC {
		var err error
		if want, err = hex.DecodeString(vc.profileLevelID); err != nil || len(want) != 3 {
			return info, fmt.Errorf("the stream's profile-level-id %q is not 3 bytes of hex", vc.profileLevelID)
		}
	}
	video, found, otherProfile := false, false, ""
	best, bestRank := "", 0
	for _, md := range sd.MediaDescriptions {
		if md == nil || md.MediaName.Port.Value == 0 || direction(md) == "sendonly" || direction(md) == "inactive" {
			continue
		}
		switch md.MediaName.Media {
		case "audio":
			info.audio = true
		case "video":
			video = true
			if vc.codec != codec.AVC {
				// VP9's profile-id and AV1's profile are 0 when absent
				// (their RTP formats say so).
				key, enc := "profile-id", "VP9/90000"
				if vc.codec == codec.AV1 {
					key, enc = "profile", "AV1/90000"
				}
				for _, params := range videoFormats(md, enc) {
					p, ok := params[key]
					if !ok {
						p = "0"
					}
					if p == strconv.Itoa(vc.profile) {
						found = true
					} else {
						otherProfile = p
					}
				}
				continue
			}
			for _, params := range h264Formats(md) {
				plid, err := hex.DecodeString(params["profile-level-id"])
				if params["packetization-mode"] != "1" || err != nil || len(plid) != 3 {
					continue
				}
				if r := profileRank(want, plid); r > bestRank {
					best, bestRank = hex.EncodeToString([]byte{plid[0], plid[1], want[2]}), r
				}
			}
		}
	}
	switch {
	case !video:
		return info, fmt.Errorf("%w: no video section that can receive (m=video, recvonly or sendrecv)", errBadOffer)
	case vc.codec == codec.AVC && best == "":
		return info, fmt.Errorf("%w: no H.264 with packetization-mode=1 in the offer's video, which the stream (H.264 %s) needs", errBadOffer, profileName(want[0]))
	case vc.codec != codec.AVC && !found:
		what := "VP9 profile-id=" + strconv.Itoa(vc.profile)
		if vc.codec == codec.AV1 {
			what = "AV1 profile=" + strconv.Itoa(vc.profile)
		}
		if otherProfile != "" {
			return info, fmt.Errorf("%w: the stream's video is %s; this offer has %v in other profiles only", errBadOffer, what, vc.codec)
		}
		return info, fmt.Errorf("%w: the stream's video is %s; this offer has no %v", errBadOffer, what, vc.codec)
	}
	info.profileLevelID = best
	return info, nil
}

// profileRank ranks an offered H.264 profile (profile-level-id bytes) for
// a stream of profile want: the stream's own profile first (its own
// constraints best), then one whose decoders must decode it (High 4:4:4
// Predictive decodes High and High 10), then any other, Main before
// Baseline. Browsers decode any profile with their one H.264 decoder, and
// Chromium offers no High (64) for receiving: it gets High 4:4:4
// Predictive (f4), which covers High. 0: not H.264 fount can send.
func profileRank(want, offered []byte) int {
	switch {
	case offered[0] == want[0] && offered[1] == want[1]:
		return 6
	case offered[0] == want[0]:
		return 5
	case offered[0] == 244 && (want[0] == 100 || want[0] == 110 || want[0] == 122):
		return 4
	case offered[0] == 77:
		return 3
	case offered[0] == 66 && offered[1]&0x40 != 0: // constrained baseline
		return 2
	}
	return 1
}

// direction returns a media section's direction attribute ("" if none).
func direction(md *sdp.MediaDescription) string {
	for _, a := range md.Attributes {
		switch a.Key {
		case "sendonly", "recvonly", "sendrecv", "inactive":
			return a.Key
		}
	}
	return ""
}

// h264Formats returns a video section's H.264 formats: payload type to
// fmtp parameters.
func h264Formats(md *sdp.MediaDescription) map[string]map[string]string {
	return videoFormats(md, "H264/90000")
}

// videoFormats returns a media section's formats of encoding enc (as
// rtpmap names it, "VP9/90000"): payload type to fmtp parameters.
func videoFormats(md *sdp.MediaDescription, enc string) map[string]map[string]string {
	pts := map[string]map[string]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, e, ok := strings.Cut(a.Value, " ")
		if ok && strings.EqualFold(strings.TrimSpace(e), enc) {
			pts[pt] = map[string]string{}
		}
	}
	for _, a := range md.Attributes {
		if a.Key != "fmtp" {
			continue
		}
		pt, params, _ := strings.Cut(a.Value, " ")
		m, ok := pts[pt]
		if !ok {
			continue
		}
		for _, kv := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			m[strings.ToLower(k)] = v
		}
	}
	return pts
}

// profileName names an H.264 profile_idc.
func profileName(idc byte) string {
	switch idc {
	case 66:
		return "Baseline"
	case 77:
		return "Main"
	case 100:
		return "High"
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4"
	}
	return "profile " + strconv.Itoa(int(idc))
}
