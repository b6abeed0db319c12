package codec

import (
	"errors"
)

// mp3Header is an MPEG audio frame header (ISO/IEC 11172-3 2.4.1.3,
// 13818-3 for the lower rates, and the unofficial MPEG-2.5).
type mp3Header struct {
	version  int // 1 MPEG-1, 2 MPEG-2, 25 MPEG-2.5
	rate     int
	channels int
	kbps     int
}

var (
	errMP3Truncated = errors.New("mp3 frame: truncated header")
	errMP3Sync      = errors.New("mp3 frame: no frame sync")
	errMP3Version   = errors.New("mp3 frame: reserved version")
	errMP3Layer     = errors.New("mp3 frame: not layer III")
	errMP3Rate      = errors.New("mp3 frame: reserved sampling frequency")
	errMP3Bitrate   = errors.New("mp3 frame: bad bitrate index")
)

func parseMP3Header(f []byte) (mp3Header, error) {
	var h mp3Header
	if len(f) < 4 {
		return h, errMP3Truncated
	}
	if f[0] != 0xff || f[1]&0xe0 != 0xe0 {
		return h, errMP3Sync
	}
	switch f[1] >> 3 & 3 {
	case 0:
		h.version = 25
	case 2:
		h.version = 2
	case 3:
		h.version = 1
	default:
		return h, errMP3Version
	}
	if f[1]>>1&3 != 1 {
		return h, errMP3Layer
	}
	bi := int(f[2] >> 4)
	if bi == 0 || bi == 15 {
		// Free format (0) cannot be sized from the header alone.
		return h, errMP3Bitrate
	}
	ri := int(f[2] >> 2 & 3)
	if ri == 3 {
		return h, errMP3Rate
	}
	h.rate = [3]int{44100, 48000, 32000}[ri]
	if h.version == 1 {
		h.kbps = [15]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}[bi]
	} else {
		h.rate /= 2
		if h.version == 25 {
			h.rate /= 2
		}
		h.kbps = [15]int{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}[bi]
	}
	h.channels = 2
	if f[3]>>6 == 3 {
		h.channels = 1
	}
	return h, nil
}

// mp3FromFrame describes an MP3 stream by the header of one frame.
//
// Codecs is "mp4a.40.34" (MPEG-4 audio object type 34, Layer-3), the value
// Apple's HLS authoring rules give for MP3 and the one hls.js recognises as
// MP3 to pick its MSE type. RFC 6381's other spelling, "mp4a.6B" (or
// "mp4a.69" for MPEG-2 rates), names the esds objectTypeIndication rather
// than the audio object type; ObjectTypeIndication carries that value for
// the muxer's esds, where it belongs.
func mp3FromFrame(f []byte) (*Audio, error) {
	h, err := parseMP3Header(f)
	if err != nil {
		return nil, err
	}
	a := &Audio{
		Codec:                MP3,
		Codecs:               "mp4a.40.34",
		SampleRate:           h.rate,
		Channels:             h.channels,
		BitRate:              h.kbps * 1000,
		ObjectTypeIndication: 0x6b,
	}
	if h.version != 1 {
		a.ObjectTypeIndication = 0x69
	}
	return a, nil
}

// mp3FrameSamples returns 1152 for MPEG-1 Layer III, 576 for MPEG-2 and 2.5.
func mp3FrameSamples(f []byte) (int, error) {
	h, err := parseMP3Header(f)
	if err != nil {
		return 0, err
	}
	if h.version == 1 {
		return 1152, nil
	}
	return 576, nil
}
