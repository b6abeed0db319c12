package rtc

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// errBadOffer wraps every reason an offer is refused (400).
var errBadOffer = errors.New("bad offer")

// maxOfferBytes bounds an offer's body: browsers' are a few kilobytes.
const maxOfferBytes = 64 << 10

// offerInfo is what fount needs of a viewer's offer.
type offerInfo struct {
	// profileLevelID is the H.264 format to answer with: the offer's
	// profile and constraints that best fit the stream's (profileRank),
	// with the stream's level (level-asymmetry-allowed lets it differ).
	profileLevelID string
	audio          bool // the offer has an audio section that can receive
}

// checkOffer reads an SDP offer and finds in it the H.264 format
// (packetization-mode=1) that best fits the stream's profile
// (profileLevelID, as "64001f") in a video section that can receive. Any other offer is
// refused with an error wrapping errBadOffer.
func checkOffer(body []byte, profileLevelID string) (offerInfo, error) {
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
	want, err := hex.DecodeString(profileLevelID)
	if err != nil || len(want) != 3 {
		return info, fmt.Errorf("the stream's profile-level-id %q is not 3 bytes of hex", profileLevelID)
	}
	video := false
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
	case best == "":
		return info, fmt.Errorf("%w: no H.264 with packetization-mode=1 in the offer's video, which the stream (H.264 %s) needs", errBadOffer, profileName(want[0]))
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
	pts := map[string]map[string]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		if ok && strings.EqualFold(strings.TrimSpace(enc), "H264/90000") {
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
