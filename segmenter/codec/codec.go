package codec

import (
	"errors"
	"fmt"
	"strconv"
)

// ID names a codec fount knows. The zero value is Unknown.
type ID uint8

// The codecs fount carries.
const (
	Unknown ID = iota
	AVC
	HEVC
	AV1
	VP9
	AAC
	Opus
	FLAC
	AC3
	EAC3
	MP3
)

// String returns the codec's common name ("H.264", "E-AC-3", ...), as logs
// and the API show it.
func (id ID) String() string {
	switch id {
	case AVC:
		return "H.264"
	case HEVC:
		return "HEVC"
	case AV1:
		return "AV1"
	case VP9:
		return "VP9"
	case AAC:
		return "AAC"
	case Opus:
		return "Opus"
	case FLAC:
		return "FLAC"
	case AC3:
		return "AC-3"
	case EAC3:
		return "E-AC-3"
	case MP3:
		return "MP3"
	}
	return fmt.Sprintf("codec(%d)", uint8(id))
}

// Video reports whether id is a video codec.
func (id ID) Video() bool { return id >= AVC && id <= VP9 }

// Audio reports whether id is an audio codec.
func (id ID) Audio() bool { return id >= AAC && id <= MP3 }

// FromFourCC maps an Enhanced RTMP FourCC to an ID. FourCCs of codecs fount
// does not carry (e.g. "vp08", "vvc1") give Unknown.
func FromFourCC(f [4]byte) ID {
	switch string(f[:]) {
	case "avc1":
		return AVC
	case "hvc1":
		return HEVC
	case "av01":
		return AV1
	case "vp09":
		return VP9
	case "mp4a":
		return AAC
	case "Opus":
		return Opus
	case "fLaC":
		return FLAC
	case "ac-3":
		return AC3
	case "ec-3":
		return EAC3
	case ".mp3":
		return MP3
	}
	return Unknown
}

// Transfer is the transfer characteristic of a video stream, as far as HLS
// distinguishes them (the VIDEO-RANGE attribute).
type Transfer uint8

// The transfer functions HLS names. Everything not PQ or HLG counts as SDR.
const (
	TransferSDR Transfer = iota
	TransferPQ
	TransferHLG
)

// String returns the HLS VIDEO-RANGE value: "SDR", "PQ" or "HLG".
func (t Transfer) String() string {
	switch t {
	case TransferPQ:
		return "PQ"
	case TransferHLG:
		return "HLG"
	}
	return "SDR"
}

// transferFrom maps an ITU-T H.273 transfer_characteristics value (shared by
// H.264, HEVC, AV1 and VP9) to a Transfer.
func transferFrom(tc int) Transfer {
	switch tc {
	case 16: // SMPTE ST 2084
		return TransferPQ
	case 18: // ARIB STD-B67
		return TransferHLG
	}
	return TransferSDR
}

// Video is a parsed video decoder configuration. It owns its bytes and is
// read-only once made, so it may be shared between goroutines.
type Video struct {
	Codec     ID
	Codecs    string   // RFC 6381 CODECS value: "avc1.64001f", "hvc1.1.6.L93.B0", "av01.0.08M.08", "vp09.00.10.08"
	Width     int      // displayed size after cropping; 0 if unknown
	Height    int      // (VP9 records carry no size: see WithKeyframe)
	FrameRate float64  // from the bitstream's timing information, 0 if absent
	Transfer  Transfer // from the VUI colour description, AV1 color_config or vpcC
	// Record is the decoder configuration record as it goes into the sample
	// entry: the avcC, hvcC, av1C or vpcC box payload (vpcC with its
	// version and flags), without the box header.
	Record []byte

	// AVC and HEVC.
	NALULengthSize int      // bytes of each NAL unit's length prefix in frames: 1, 2 or 4
	VPS, SPS, PPS  [][]byte // parameter set NAL units (VPS only for HEVC), views into Record

	Profile        int  // AVC profile_idc, HEVC general_profile_idc, AV1 seq_profile, VP9 profile
	Level          int  // AVC level_idc, HEVC general_level_idc, AV1 seq_level_idx[0], VP9 level (10 = 1.0)
	BitDepth       int  // luma bit depth
	BitDepthChroma int  // chroma bit depth (AV1 and VP9: the same as luma)
	HighTier       bool // HEVC general_tier_flag, AV1 seq_tier[0]
	// ChromaFormat is chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
	ChromaFormat int
	// ColorPrimaries, TransferCharacteristics and MatrixCoefficients are the
	// ITU-T H.273 code points from the bitstream; 2 (unspecified) if absent.
	ColorPrimaries, TransferCharacteristics, MatrixCoefficients int
	FullRange                                                   bool // full-range sample values, not limited (video range)

	hevc hevcPTL // HEVC: the record's general profile, tier and level
}

// ParseVideo parses the body of a video sequence start: an avcC, hvcC, av1C
// or vpcC record (for VP9 with or without the box's version and flags). The
// record is copied.
func ParseVideo(id ID, record []byte) (*Video, error) {
	switch id {
	case AVC:
		return parseAVC(record)
	case HEVC:
		return parseHEVC(record)
	case AV1:
		return parseAV1C(record)
	case VP9:
		return parseVPCC(record)
	}
	return nil, fmt.Errorf("codec: %v is not a video codec", id)
}

// VideoFromKeyframe builds a configuration from a keyframe's in-band data,
// for encoders that send an empty or placeholder sequence start: AVC and
// HEVC frames of 4-byte length-prefixed NAL units carrying SPS and PPS (and
// VPS), an AV1 temporal unit with a sequence header OBU, a VP9 frame or
// superframe holding a keyframe. The Record is what a real sequence start
// would carry (byte for byte what ffmpeg writes, except x265's SEI in hvcC).
// A VP9 keyframe carries no colour primaries or transfer function: its
// Transfer is SDR, and E-RTMP colorInfo metadata is the only source of HDR.
// HEVC and VP9 levels: HEVC takes the SPS's; VP9's is the lowest whose
// picture size fits.
func VideoFromKeyframe(id ID, frame []byte) (*Video, error) {
	switch id {
	case AVC:
		return avcFromKeyframe(frame)
	case HEVC:
		return hevcFromKeyframe(frame)
	case AV1:
		return av1FromTemporalUnit(frame)
	case VP9:
		return vp9FromKeyframe(frame)
	}
	return nil, fmt.Errorf("codec: %v is not a video codec", id)
}

// WithKeyframe returns v with what a keyframe tells and the record does
// not: a VP9 vpcC carries no picture size, so the first keyframe gives it;
// an AV1 record without a sequence header (or an MPEG-2 TS descriptor) is
// replaced by the one the keyframe's sequence header makes. When the size
// is known, or for AVC and HEVC, it returns v itself. v is not modified.
func (v *Video) WithKeyframe(frame []byte) (*Video, error) {
	if v.Width > 0 && v.Height > 0 {
		return v, nil
	}
	switch v.Codec {
	case AV1:
		return av1FromTemporalUnit(frame)
	case VP9:
	default:
		return v, nil
	}
	h, err := vp9KeyframeHeader(frame)
	if err != nil {
		return nil, err
	}
	c := *v
	c.Width, c.Height = h.width, h.height
	return &c, nil
}

// Audio is a parsed audio configuration. It owns its bytes and is read-only
// once made, so it may be shared between goroutines.
type Audio struct {
	Codec      ID
	Codecs     string // RFC 6381 CODECS value: "mp4a.40.2", "mp4a.40.34", "opus", "fLaC", "ac-3", "ec-3"
	SampleRate int    // Hz; Opus: always 48000, the rate of its timestamps
	Channels   int
	// Config is the codec's configuration: AAC AudioSpecificConfig; Opus
	// OpusHead (RFC 7845, little-endian, from "OpusHead"); FLAC the 34-byte
	// STREAMINFO; AC-3/E-AC-3 the dac3/dec3 box payload; MP3 nil.
	Config []byte

	ObjectType int // AAC audio object type as signalled (2 LC, 5 SBR, 29 PS)
	// ObjectTypeIndication is the MPEG-4 systems objectTypeIndication of the
	// esds for MP3: 0x6B for MPEG-1 audio, 0x69 for MPEG-2 (and 2.5).
	ObjectTypeIndication int
	PreSkip              int // Opus: samples at 48 kHz to drop at the start
	BitRate              int // bit/s when the header says (AC-3, E-AC-3, MP3); 0 otherwise
	BitsPerSample        int // FLAC

	// AAC: what an ADTS header needs.
	ADTSProfile     int // core object type - 1
	ADTSSampleIndex int // sampling_frequency_index
	ChannelConfig   int // channelConfiguration (1-7; 7 is 7.1, eight channels)

	// AC-3 and E-AC-3 bit stream information of the first (independent)
	// substream.
	BSID, BSMod, ACMod int
	LFE                bool // lfeon: a low-frequency effects channel is present
	Blocks             int  // E-AC-3 audio blocks per sync frame (6 for AC-3)

	// FLAC STREAMINFO block sizes.
	MinBlockSize, MaxBlockSize int
}

// ParseAudio parses the body of an audio sequence start: an AAC
// AudioSpecificConfig, an Opus OpusHead (RFC 7845 §5.1, little-endian) or
// a FLAC header ("fLaC" and metadata blocks, or a bare 34-byte STREAMINFO).
// AC-3, E-AC-3 and MP3 have no sequence start: use AudioFromFrame.
func ParseAudio(id ID, config []byte) (*Audio, error) {
	switch id {
	case AAC:
		return parseASC(config)
	case Opus:
		return parseOpusHead(config)
	case FLAC:
		return parseFLACHeader(config)
	case AC3, EAC3, MP3:
		return nil, fmt.Errorf("%v: no sequence start: the configuration comes from a frame", id)
	}
	return nil, fmt.Errorf("codec: %v is not an audio codec", id)
}

// AudioFromFrame builds the configuration of the codecs that have no
// sequence start from a coded frame: an AC-3 or E-AC-3 access unit (one or
// more sync frames) or an MP3 frame.
func AudioFromFrame(id ID, frame []byte) (*Audio, error) {
	switch id {
	case AC3:
		return ac3FromFrame(frame)
	case EAC3:
		return eac3FromFrame(frame)
	case MP3:
		return mp3FromFrame(frame)
	case AAC, Opus, FLAC:
		return nil, fmt.Errorf("%v: the configuration comes from the sequence start, not a frame", id)
	}
	return nil, fmt.Errorf("codec: %v is not an audio codec", id)
}

// FrameSamples returns how many samples (at SampleRate) a coded frame
// lasts: AAC 1024, AC-3 1536, E-AC-3 256 per audio block, MP3 1152 or 576,
// FLAC the block size in the frame header, Opus the duration the TOC byte
// gives (at 48 kHz). It allocates nothing.
func (a *Audio) FrameSamples(frame []byte) (int, error) {
	switch a.Codec {
	case AAC:
		// 960-sample AAC frames are not made by any encoder that speaks RTMP.
		return 1024, nil
	case AC3:
		if len(frame) < 2 || frame[0] != 0x0b || frame[1] != 0x77 {
			return 0, errAC3Sync
		}
		return 1536, nil
	case EAC3:
		return eac3FrameSamples(frame)
	case MP3:
		return mp3FrameSamples(frame)
	case FLAC:
		return flacFrameSamples(frame)
	case Opus:
		return opusFrameSamples(frame)
	}
	return 0, errNotAudio
}

var errNotAudio = errors.New("codec: FrameSamples of a configuration that is not audio")

// ProfileName names the profile as the codec's specification does: HEVC
// "Main", "Main 10", "Main 4:2:2 10", ... (H.265 Annex A); H.264 "High",
// "High 10", ...; AV1 "Main", "High", "Professional"; VP9 "Profile 0" to
// "Profile 3". A profile without a name gives "profile N".
func (v *Video) ProfileName() string {
	switch v.Codec {
	case HEVC:
		return v.hevc.profileName()
	case AVC:
		switch v.Profile {
		case 66:
			return "Baseline"
		case 77:
			return "Main"
		case 88:
			return "Extended"
		case 100:
			return "High"
		case 110:
			return "High 10"
		case 122:
			return "High 4:2:2"
		case 244:
			return "High 4:4:4 Predictive"
		}
	case AV1:
		switch v.Profile {
		case 0:
			return "Main"
		case 1:
			return "High"
		case 2:
			return "Professional"
		}
	case VP9:
		return "Profile " + strconv.Itoa(v.Profile)
	}
	return "profile " + strconv.Itoa(v.Profile)
}

// String describes the stream for logs and the API, e.g.
// "HEVC Main 10 1920x1080 (hvc1.2.4.L120.90)".
func (v *Video) String() string {
	return fmt.Sprintf("%v %s %dx%d (%s)", v.Codec, v.ProfileName(), v.Width, v.Height, v.Codecs)
}

// LevelName returns the level as a number, "4" or "5.1", for HEVC; for other
// codecs "level N" with the raw value.
func (v *Video) LevelName() string {
	if v.Codec == HEVC {
		return hevcLevel(v.hevc.levelIDC)
	}
	return "level " + strconv.Itoa(v.Level)
}
