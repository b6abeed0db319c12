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

// parseVideoTag parses a video message body for the handler as it is
// today: it keeps track 0 (the legacy or ExHeader track, or trackId 0 of a
// Multitrack packet) and skips the other tracks, so that OBS's extra
// Multitrack renditions leave track 0 alone. Only H.264 is supported on
// track 0; another codec returns an error wrapping errUnsupportedCodec that
// names it. (A thin adapter over parseVideoMessage until the handler reads
// every track.)
func parseVideoTag(b []byte) (videoTag, error) {
	var (
		t     videoTag
		found bool
		ref   error
	)
	err := parseVideoMessage(b, func(p trackPacket) error {
		if p.track != 0 || found {
			return nil
		}
		found = true
		switch p.typ {
		case pktSeqStart, pktCodedFrames:
		default:
			return nil // end of sequence, metadata, unknown packet types
		}
		if p.fourcc != fourccAVC {
			ref = refuseVideo(p)
			return nil
		}
		t = videoTag{kind: tagFrame, key: p.key, cts: p.cts, data: p.data}
		if p.typ == pktSeqStart {
			t.kind, t.cts = tagConfig, 0
		}
		return nil
	})
	if err != nil {
		return videoTag{}, err
	}
	if ref != nil {
		return videoTag{}, ref
	}
	return t, nil
}

// refuseVideo is the errUnsupportedCodec error for a track-0 packet of a
// codec other than H.264.
func refuseVideo(p trackPacket) error {
	switch {
	case p.fourcc == fourccHEVC && p.typ == pktSeqStart && p.legacy:
		return refuseHEVC("id 12 (HEVC, non-standard FLV id)", p.data)
	case p.fourcc == fourccHEVC && p.typ == pktSeqStart:
		return refuseHEVC(`"hvc1" (Enhanced RTMP)`, p.data)
	case p.legacy:
		return fmt.Errorf("flv video codec id %d (%s): %w", p.flvID, legacyVideoCodecName(p.flvID), errUnsupportedCodec)
	}
	return fmt.Errorf("flv video codec %q (Enhanced RTMP): %w", fourccString(p.fourcc), errUnsupportedCodec)
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
	case flvCodecAVC:
		return "H.264"
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

// parseAudioTag parses an audio message body for the handler as it is
// today, keeping track 0 like parseVideoTag: legacy AAC or ExHeader "mp4a"
// on track 0 is supported, another codec on track 0 is errUnsupportedCodec,
// other tracks (OBS's extra ExHeader "mp4a" tracks) are skipped.
func parseAudioTag(b []byte) (audioTag, error) {
	var (
		t     audioTag
		found bool
		ref   error
	)
	err := parseAudioMessage(b, func(p trackPacket) error {
		if p.track != 0 || found {
			return nil
		}
		found = true
		switch p.typ {
		case pktSeqStart, pktCodedFrames:
		default:
			return nil
		}
		switch {
		case p.fourcc != fourccAAC && p.legacy:
			ref = fmt.Errorf("flv audio format %d (%s): %w", p.flvID, soundFormatName(p.flvID), errUnsupportedCodec)
		case p.fourcc != fourccAAC:
			ref = fmt.Errorf("flv audio codec %q (Enhanced RTMP): %w", fourccString(p.fourcc), errUnsupportedCodec)
		case p.typ == pktSeqStart:
			t = audioTag{kind: tagConfig, data: p.data}
		default:
			t = audioTag{kind: tagFrame, data: p.data}
		}
		return nil
	})
	if err != nil {
		return audioTag{}, err
	}
	if ref != nil {
		return audioTag{}, ref
	}
	return t, nil
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
