package ingest

import (
	"errors"
	"fmt"

	"github.com/fount-live/fount/segmenter"
)

// FLV codec and packet identifiers (FLV spec v10.1, Enhanced RTMP v1/v2).
const (
	flvCodecAVC   = 7
	flvCodecHEVC  = 12 // not in the FLV spec; some encoders and CDNs use it
	flvSoundAAC   = 10
	flvSoundExHdr = 9 // Enhanced RTMP audio: FourCC follows

	avcSeqHeader = 0
	avcNALU      = 1
	avcEndOfSeq  = 2

	// Enhanced RTMP video packet types.
	exSeqStart        = 0
	exCodedFrames     = 1
	exSeqEnd          = 2
	exCodedFramesX    = 3
	exMetadata        = 4
	exMPEG2TSSeqStart = 5

	frameKey     = 1
	frameCommand = 5
)

// tagKind says what an FLV audio or video tag carries.
type tagKind uint8

const (
	tagSkip   tagKind = iota // nothing for the segmenter (end of sequence, command frame, metadata)
	tagConfig                // a decoder configuration record / AudioSpecificConfig
	tagFrame                 // a coded frame
)

// videoTag is a parsed FLV video tag body.
type videoTag struct {
	kind tagKind
	key  bool
	cts  int32  // composition time offset in ms
	data []byte // aliases the tag body
}

// errUnsupportedCodec marks a track fount cannot remux; the caller ignores
// the track rather than dropping the publisher.
var errUnsupportedCodec = errors.New("unsupported codec")

// hevcRefusal is errUnsupportedCodec for an HEVC sequence start, with what
// the record says the encoder sends, so that the operator can see it.
type hevcRefusal struct {
	codec string // how the tag names the codec
	info  segmenter.HEVCInfo
	err   error // why the record could not be described, if it could not
}

func (e *hevcRefusal) Error() string {
	if e.err != nil {
		return fmt.Sprintf("flv video codec %s: undescribable HEVC (%v): %v", e.codec, e.err, errUnsupportedCodec)
	}
	return fmt.Sprintf("flv video codec %s: %s: %v", e.codec, e.info, errUnsupportedCodec)
}

func (e *hevcRefusal) Unwrap() error { return errUnsupportedCodec }

func refuseHEVC(codec string, record []byte) error {
	info, err := segmenter.DescribeHEVC(record)
	return &hevcRefusal{codec: codec, info: info, err: err}
}

// refusedTrackMessage is the log line for a track refused with err when
// the refusal can name the stream, e.g. "video track refused: HEVC Main 10
// 1920x1080 (hvc1.2.4.L120.90) is not supported, send H.264"; otherwise "".
func refusedTrackMessage(err error) string {
	var r *hevcRefusal
	if !errors.As(err, &r) || r.err != nil {
		return ""
	}
	return "video track refused: " + r.info.String() + " is not supported, send H.264"
}

// parseVideoTag parses a legacy or Enhanced RTMP video tag body. Only H.264
// is supported; other codecs return an error wrapping errUnsupportedCodec
// that names the codec.
func parseVideoTag(b []byte) (videoTag, error) {
	if len(b) < 1 {
		return videoTag{}, errors.New("flv video: empty tag")
	}
	if b[0]&0x80 != 0 {
		return parseExVideoTag(b)
	}
	frameType := b[0] >> 4
	codec := b[0] & 0x0f
	if frameType == frameCommand {
		return videoTag{kind: tagSkip}, nil
	}
	if codec == flvCodecHEVC && len(b) >= 5 && b[1] == avcSeqHeader {
		return videoTag{}, refuseHEVC("id 12 (HEVC, non-standard FLV id)", b[5:])
	}
	if codec != flvCodecAVC {
		return videoTag{}, fmt.Errorf("flv video codec id %d (%s): %w", codec, legacyVideoCodecName(codec), errUnsupportedCodec)
	}
	if len(b) < 5 {
		return videoTag{}, fmt.Errorf("flv video: AVC tag of %d bytes is shorter than its 5-byte header", len(b))
	}
	t := videoTag{key: frameType == frameKey, cts: cts24(b[2:5]), data: b[5:]}
	switch b[1] {
	case avcSeqHeader:
		t.kind = tagConfig
	case avcNALU:
		t.kind = tagFrame
	case avcEndOfSeq:
		t.kind = tagSkip
	default:
		return videoTag{}, fmt.Errorf("flv video: unknown AVC packet type %d", b[1])
	}
	return t, nil
}

// parseExVideoTag parses an Enhanced RTMP video tag: 1 byte of flags and
// packet type, a FourCC, then a packet-type-specific body.
func parseExVideoTag(b []byte) (videoTag, error) {
	if len(b) < 5 {
		return videoTag{}, fmt.Errorf("flv video: enhanced tag of %d bytes is shorter than its 5-byte header", len(b))
	}
	frameType := (b[0] >> 4) & 0x07
	pktType := b[0] & 0x0f
	fourcc := string(b[1:5])
	if frameType == frameCommand || pktType == exMetadata || pktType == exSeqEnd {
		return videoTag{kind: tagSkip}, nil
	}
	if fourcc == "hvc1" && pktType == exSeqStart {
		return videoTag{}, refuseHEVC(`"hvc1" (Enhanced RTMP)`, b[5:])
	}
	if fourcc != "avc1" {
		return videoTag{}, fmt.Errorf("flv video codec %q (Enhanced RTMP): %w", fourcc, errUnsupportedCodec)
	}
	t := videoTag{key: frameType == frameKey}
	switch pktType {
	case exSeqStart:
		t.kind, t.data = tagConfig, b[5:]
	case exCodedFrames:
		if len(b) < 8 {
			return videoTag{}, errors.New("flv video: enhanced coded frame without composition time")
		}
		t.kind, t.cts, t.data = tagFrame, cts24(b[5:8]), b[8:]
	case exCodedFramesX:
		t.kind, t.data = tagFrame, b[5:]
	default:
		return videoTag{}, fmt.Errorf("flv video: enhanced packet type %d is not supported", pktType)
	}
	return t, nil
}

// cts24 reads a signed 24-bit big-endian composition time.
func cts24(b []byte) int32 {
	v := int32(b[0])<<16 | int32(b[1])<<8 | int32(b[2])
	return v << 8 >> 8 // sign-extend
}

func legacyVideoCodecName(id byte) string {
	switch id {
	case 2:
		return "Sorenson H.263"
	case 3:
		return "Screen video"
	case 4:
		return "VP6"
	case 5:
		return "VP6 with alpha"
	case 6:
		return "Screen video v2"
	case 12:
		return "HEVC (non-standard FLV id)"
	}
	return "unknown"
}

// audioTag is a parsed FLV audio tag body.
type audioTag struct {
	kind tagKind
	data []byte
}

// parseAudioTag parses an FLV audio tag body; only AAC is supported.
func parseAudioTag(b []byte) (audioTag, error) {
	if len(b) < 1 {
		return audioTag{}, errors.New("flv audio: empty tag")
	}
	format := b[0] >> 4
	if format != flvSoundAAC {
		return audioTag{}, fmt.Errorf("flv audio format %d (%s): %w", format, soundFormatName(format), errUnsupportedCodec)
	}
	if len(b) < 2 {
		return audioTag{}, errors.New("flv audio: AAC tag without packet type")
	}
	switch b[1] {
	case 0:
		return audioTag{kind: tagConfig, data: b[2:]}, nil
	case 1:
		return audioTag{kind: tagFrame, data: b[2:]}, nil
	}
	return audioTag{}, fmt.Errorf("flv audio: unknown AAC packet type %d", b[1])
}

func soundFormatName(f byte) string {
	switch f {
	case 0, 3:
		return "PCM"
	case 1:
		return "ADPCM"
	case 2:
		return "MP3"
	case 4, 5, 6:
		return "Nellymoser"
	case 7:
		return "G.711 A-law"
	case 8:
		return "G.711 mu-law"
	case flvSoundExHdr:
		return "Enhanced RTMP audio (Opus, FLAC, AC-3...)"
	case 11:
		return "Speex"
	case 14:
		return "MP3 8 kHz"
	}
	return "unknown"
}
