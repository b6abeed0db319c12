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
	// profileLevelID is the H.264 format to answer with: the offer's own
	// profile and constraints for the stream's profile_idc, with the
	// stream's level (level-asymmetry-allowed lets the level differ).
	profileLevelID string
	audio          bool // the offer has an audio section that can receive
}

// checkOffer reads an SDP offer and finds in it an H.264 format
// (packetization-mode=1) of the stream's profile (profileLevelID, as
// "64001f") in a video section that can receive. Any other offer is
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
	video, h264 := false, false
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
				if params["packetization-mode"] != "1" || err != nil || len(plid) != 3 || plid[0] != want[0] {
					continue
				}
				h264 = true
				if info.profileLevelID == "" || plid[1] == want[1] {
					info.profileLevelID = hex.EncodeToString([]byte{plid[0], plid[1], want[2]})
				}
			}
		}
	}
	switch {
	case !video:
		return info, fmt.Errorf("%w: no video section that can receive (m=video, recvonly or sendrecv)", errBadOffer)
	case !h264:
		return info, fmt.Errorf("%w: no H.264 with packetization-mode=1 and profile %s (profile_idc %d) in the offer's video, which the stream needs", errBadOffer, profileName(want[0]), want[0])
	}
	return info, nil
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
