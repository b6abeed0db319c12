package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fount-live/fount/segmenter"
)

// Enhanced RTMP v2 message grammar (veovera/enhanced-rtmp,
// docs/enhanced/enhanced-rtmp-v2.md), written from the specification's
// bitstream tables: a video or audio message body is parsed into zero or
// more per-track packets handed to a callback, without allocating.

// packetType is what a per-track packet carries, the same for audio and
// video (the wire values differ: see trackPacket.raw).
type packetType uint8

const (
	pktSeqStart           packetType = iota // decoder configuration record / AudioSpecificConfig / OpusHead...
	pktCodedFrames                          // coded frames (CodedFrames and CodedFramesX; legacy NALU / raw AAC)
	pktSeqEnd                               // end of sequence
	pktMetadata                             // video: AMF-encoded metadata (colorInfo), see parseColorInfo
	pktMultichannelConfig                   // audio: channel order/count/mapping, see parseMultichannelConfig
	pktMPEG2TSSeqStart                      // video: AV1 video descriptor for MPEG-2 TS carriage
	pktSkip                                 // a packet type fount does not know; raw holds it
)

func (t packetType) String() string {
	switch t {
	case pktSeqStart:
		return "SequenceStart"
	case pktCodedFrames:
		return "CodedFrames"
	case pktSeqEnd:
		return "SequenceEnd"
	case pktMetadata:
		return "Metadata"
	case pktMultichannelConfig:
		return "MultichannelConfig"
	case pktMPEG2TSSeqStart:
		return "MPEG2TSSequenceStart"
	}
	return "unknown"
}

// Wire values of the Enhanced RTMP packet types not declared in flv.go.
const (
	exVideoMultitrack = 6
	exModEx           = 7

	exAudioSeqStart           = 0
	exAudioCodedFrames        = 1
	exAudioSeqEnd             = 2
	exAudioMultichannelConfig = 4
	exAudioMultitrack         = 5

	// AvMultitrackType
	mtOneTrack             = 0
	mtManyTracks           = 1
	mtManyTracksManyCodecs = 2

	// ModEx types (the same value for audio and video)
	modExTimestampOffsetNano = 0

	flvSoundMP3   = 2
	flvSoundMP38k = 14
)

// FourCCs fount maps legacy FLV codec ids to.
var (
	fourccAVC  = [4]byte{'a', 'v', 'c', '1'}
	fourccHEVC = [4]byte{'h', 'v', 'c', '1'}
	fourccAAC  = [4]byte{'m', 'p', '4', 'a'}
	fourccMP3  = [4]byte{'.', 'm', 'p', '3'}
)

// trackPacket is one track's packet of a video or audio message. data
// aliases the message body: a callback that keeps it must copy it.
type trackPacket struct {
	kind          segmenter.Kind // segmenter.Video or segmenter.Audio
	track         uint8          // trackId; 0 outside Multitrack
	fourcc        [4]byte        // ExHeader FourCC, or the one a legacy codec id maps to; zero for a legacy id without one
	typ           packetType
	raw           uint8  // packet type as on the wire: ExHeader packet type, or legacy AVCPacketType/AACPacketType
	legacy        bool   // legacy FLV header (no ExHeader)
	flvID         uint8  // legacy: VideoCodecId or SoundFormat
	frameType     uint8  // video: VideoFrameType (1 key, 2 inter, ...)
	key           bool   // video: frameType is KeyFrame
	multitrack    bool   // carried in a Multitrack packet
	cts           int32  // composition time offset, ms (CodedFrames of avc1, hvc1, vvc1; legacy AVC/HEVC)
	tsOffsetNanos uint32 // ModEx TimestampOffsetNano, to add to the message timestamp
	data          []byte
}

// fourccString names a FourCC for log lines ("avc1", or "0x00000000").
func fourccString(f [4]byte) string {
	for _, c := range f {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%#08x", binary.BigEndian.Uint32(f[:]))
		}
	}
	return string(f[:])
}

// errUnknownMultitrackType marks a Multitrack packet whose AvMultitrackType
// is reserved (3..15): its tracks cannot be located, so the message cannot
// be parsed. A caller may treat it as a message to skip rather than as a
// malformed one.
var errUnknownMultitrackType = errors.New("reserved AvMultitrackType")

// parseVideoMessage parses a video message body (legacy FLV VideoTagHeader
// or ExVideoTagHeader) and calls fn for each track's packet, in order.
// Command frames produce no packet. A malformed body is an error naming the
// field; an unknown FourCC or packet type is not (the packet is passed up
// with typ pktSkip or its FourCC for the caller to skip). fn's error stops
// the parse and is returned as is.
func parseVideoMessage(b []byte, fn func(trackPacket) error) error {
	if len(b) < 1 {
		return errors.New("flv video: empty message")
	}
	p := trackPacket{kind: segmenter.Video, frameType: b[0] >> 4 & 7}
	p.key = p.frameType == frameKey
	if b[0]&0x80 == 0 {
		return parseLegacyVideo(p, b, fn)
	}
	pt := b[0] & 0x0f
	rest := b[1:]
	for pt == exModEx {
		var err error
		if pt, rest, err = readModEx(rest, &p.tsOffsetNanos, "flv video"); err != nil {
			return err
		}
	}
	if p.frameType == frameCommand && pt != exMetadata {
		return nil // VideoCommand UI8, no video body
	}
	if pt == exVideoMultitrack {
		return parseMultitrack(p, rest, fn, "flv video")
	}
	if len(rest) < 4 {
		return fmt.Errorf("flv video: ExHeader packet type %d: FourCC truncated (%d of 4 bytes)", pt, len(rest))
	}
	copy(p.fourcc[:], rest)
	return videoBody(p, pt, rest[4:], fn)
}

func parseLegacyVideo(p trackPacket, b []byte, fn func(trackPacket) error) error {
	if p.frameType == frameCommand {
		return nil
	}
	p.legacy, p.flvID = true, b[0]&0x0f
	switch p.flvID {
	case flvCodecAVC:
		p.fourcc = fourccAVC
	case flvCodecHEVC:
		p.fourcc = fourccHEVC
	default:
		// Another legacy codec (H.263, VP6...): passed up to be skipped.
		p.typ, p.data = pktCodedFrames, b[1:]
		return fn(p)
	}
	if len(b) < 5 {
		return fmt.Errorf("flv video: %s tag of %d bytes is shorter than its 5-byte header", legacyVideoCodecName(p.flvID), len(b))
	}
	p.raw = b[1]
	switch b[1] {
	case avcSeqHeader:
		p.typ = pktSeqStart
	case avcNALU:
		p.typ, p.cts = pktCodedFrames, cts24(b[2:5])
	case avcEndOfSeq:
		p.typ = pktSeqEnd
	default:
		p.typ = pktSkip
	}
	p.data = b[5:]
	return fn(p)
}

// videoBody makes the packet of one track's ExVideoTagBody.
func videoBody(p trackPacket, pt uint8, b []byte, fn func(trackPacket) error) error {
	p.raw = pt
	switch pt {
	case exSeqStart:
		p.typ = pktSeqStart
	case exCodedFrames:
		p.typ = pktCodedFrames
		if hasCTS(p.fourcc) {
			if len(b) < 3 {
				return fmt.Errorf("flv video: track %d %s CodedFrames: composition time truncated (%d of 3 bytes)", p.track, fourccString(p.fourcc), len(b))
			}
			p.cts = cts24(b)
			b = b[3:]
		}
	case exSeqEnd:
		p.typ = pktSeqEnd
	case exCodedFramesX:
		p.typ = pktCodedFrames
	case exMetadata:
		p.typ = pktMetadata
	case exMPEG2TSSeqStart:
		p.typ = pktMPEG2TSSeqStart
	default:
		p.typ = pktSkip
	}
	p.data = b
	return fn(p)
}

// hasCTS: CodedFrames of these FourCCs start with an SI24 composition time.
func hasCTS(f [4]byte) bool {
	return f == fourccAVC || f == fourccHEVC || f == [4]byte{'v', 'v', 'c', '1'}
}

// parseAudioMessage parses an audio message body (legacy FLV
// AudioTagHeader or ExAudioTagHeader) like parseVideoMessage. An empty body
// is RTMP's silence message: no packet, no error.
func parseAudioMessage(b []byte, fn func(trackPacket) error) error {
	if len(b) < 1 {
		return nil
	}
	p := trackPacket{kind: segmenter.Audio}
	if b[0]>>4 != flvSoundExHdr {
		return parseLegacyAudio(p, b, fn)
	}
	pt := b[0] & 0x0f
	rest := b[1:]
	for pt == exModEx {
		var err error
		if pt, rest, err = readModEx(rest, &p.tsOffsetNanos, "flv audio"); err != nil {
			return err
		}
	}
	if pt == exAudioMultitrack {
		return parseMultitrack(p, rest, fn, "flv audio")
	}
	if len(rest) < 4 {
		return fmt.Errorf("flv audio: ExHeader packet type %d: FourCC truncated (%d of 4 bytes)", pt, len(rest))
	}
	copy(p.fourcc[:], rest)
	return audioBody(p, pt, rest[4:], fn)
}

func parseLegacyAudio(p trackPacket, b []byte, fn func(trackPacket) error) error {
	p.legacy, p.flvID = true, b[0]>>4
	p.typ, p.data = pktCodedFrames, b[1:]
	switch p.flvID {
	case flvSoundAAC:
		p.fourcc = fourccAAC
		if len(b) < 2 {
			return errors.New("flv audio: AAC tag without packet type")
		}
		p.raw, p.data = b[1], b[2:]
		switch b[1] {
		case 0:
			p.typ = pktSeqStart
		case 1:
			p.typ = pktCodedFrames
		default:
			p.typ = pktSkip
		}
	case flvSoundMP3, flvSoundMP38k:
		p.fourcc = fourccMP3
	}
	return fn(p)
}

// audioBody makes the packet of one track's ExAudioTagBody.
func audioBody(p trackPacket, pt uint8, b []byte, fn func(trackPacket) error) error {
	p.raw = pt
	switch pt {
	case exAudioSeqStart:
		p.typ = pktSeqStart
	case exAudioCodedFrames:
		p.typ = pktCodedFrames
	case exAudioSeqEnd:
		p.typ = pktSeqEnd
	case exAudioMultichannelConfig:
		p.typ = pktMultichannelConfig
		if _, err := parseMultichannelConfig(b); err != nil {
			return fmt.Errorf("flv audio: track %d %s: %w", p.track, fourccString(p.fourcc), err)
		}
	default:
		p.typ = pktSkip
	}
	p.data = b
	return fn(p)
}

// readModEx reads one ModEx entry that follows a ModEx packet type: the
// data size (UI8 size-1, or 0xFF then UI16 size-1), the data, then
// ModExType (upper 4 bits) | the next packet type (lower 4 bits). A
// TimestampOffsetNano (UI24 ns) is stored in *nanos; other ModEx types are
// skipped.
func readModEx(b []byte, nanos *uint32, what string) (uint8, []byte, error) {
	if len(b) < 1 {
		return 0, nil, fmt.Errorf("%s: ModEx data size missing", what)
	}
	size := int(b[0]) + 1
	b = b[1:]
	if size == 256 {
		if len(b) < 2 {
			return 0, nil, fmt.Errorf("%s: ModEx 16-bit data size truncated (%d of 2 bytes)", what, len(b))
		}
		size = int(binary.BigEndian.Uint16(b)) + 1
		b = b[2:]
	}
	if size > len(b) {
		return 0, nil, fmt.Errorf("%s: ModEx data of %d bytes past the end of the message (%d left)", what, size, len(b))
	}
	data := b[:size]
	b = b[size:]
	if len(b) < 1 {
		return 0, nil, fmt.Errorf("%s: ModEx type and packet type byte missing", what)
	}
	typ, pt := b[0]>>4, b[0]&0x0f
	if typ == modExTimestampOffsetNano {
		if len(data) < 3 {
			return 0, nil, fmt.Errorf("%s: ModEx TimestampOffsetNano of %d bytes, want 3", what, len(data))
		}
		*nanos = uint32(data[0])<<16 | uint32(data[1])<<8 | uint32(data[2])
	}
	return pt, b[1:], nil
}

// parseMultitrack parses what follows a Multitrack packet type:
// AvMultitrackType | packet type, the FourCC shared by the tracks (unless
// ManyTracksManyCodecs), then per track [FourCC] trackId [UI24 size unless
// OneTrack] and the track's body.
func parseMultitrack(p trackPacket, b []byte, fn func(trackPacket) error, what string) error {
	if len(b) < 1 {
		return fmt.Errorf("%s: Multitrack type byte missing", what)
	}
	mt, pt := b[0]>>4, b[0]&0x0f
	b = b[1:]
	if mt > mtManyTracksManyCodecs {
		return fmt.Errorf("%s: AvMultitrackType %d: %w", what, mt, errUnknownMultitrackType)
	}
	if pt == exModEx || p.kind == segmenter.Video && pt == exVideoMultitrack || p.kind == segmenter.Audio && pt == exAudioMultitrack {
		return fmt.Errorf("%s: Multitrack packet type %d not allowed inside Multitrack", what, pt)
	}
	p.multitrack = true
	if mt != mtManyTracksManyCodecs {
		if len(b) < 4 {
			return fmt.Errorf("%s: Multitrack FourCC truncated (%d of 4 bytes)", what, len(b))
		}
		copy(p.fourcc[:], b)
		b = b[4:]
	}
	for first := true; first || mt != mtOneTrack && len(b) > 0; first = false {
		if mt == mtManyTracksManyCodecs {
			if len(b) < 4 {
				return fmt.Errorf("%s: Multitrack track FourCC truncated (%d of 4 bytes)", what, len(b))
			}
			copy(p.fourcc[:], b)
			b = b[4:]
		}
		if len(b) < 1 {
			return fmt.Errorf("%s: Multitrack trackId missing", what)
		}
		p.track = b[0]
		b = b[1:]
		track := b
		if mt != mtOneTrack {
			if len(b) < 3 {
				return fmt.Errorf("%s: Multitrack track %d size truncated (%d of 3 bytes)", what, p.track, len(b))
			}
			n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
			b = b[3:]
			if n > len(b) {
				return fmt.Errorf("%s: Multitrack track %d size %d past the end of the message (%d left)", what, p.track, n, len(b))
			}
			track, b = b[:n:n], b[n:]
		}
		// A direct call, not through a func value: fn must not escape, so
		// that a caller's closure stays on its stack.
		var err error
		if p.kind == segmenter.Video {
			err = videoBody(p, pt, track, fn)
		} else {
			err = audioBody(p, pt, track, fn)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// AudioChannelOrder values.
const (
	channelOrderUnspecified = 0
	channelOrderNative      = 1
	channelOrderCustom      = 2
)

// multichannelConfig is a parsed MultichannelConfig audio packet.
type multichannelConfig struct {
	order    uint8  // AudioChannelOrder: 0 unspecified, 1 native, 2 custom
	channels uint8  // channel count
	mapping  []byte // custom order: one AudioChannel per channel (aliases the packet)
	flags    uint32 // native order: AudioChannelMask bits of the channels present
}

// parseMultichannelConfig parses a MultichannelConfig body: order UI8,
// channel count UI8, then a UI8 per channel (custom order) or a UI32 mask
// (native order). It does not allocate.
func parseMultichannelConfig(b []byte) (multichannelConfig, error) {
	if len(b) < 2 {
		return multichannelConfig{}, fmt.Errorf("MultichannelConfig: channel order and count truncated (%d of 2 bytes)", len(b))
	}
	c := multichannelConfig{order: b[0], channels: b[1]}
	b = b[2:]
	switch c.order {
	case channelOrderCustom:
		if len(b) < int(c.channels) {
			return multichannelConfig{}, fmt.Errorf("MultichannelConfig: channel mapping truncated (%d of %d bytes)", len(b), c.channels)
		}
		c.mapping = b[:c.channels:c.channels]
	case channelOrderNative:
		if len(b) < 4 {
			return multichannelConfig{}, fmt.Errorf("MultichannelConfig: channel flags truncated (%d of 4 bytes)", len(b))
		}
		c.flags = binary.BigEndian.Uint32(b)
	}
	return c, nil
}
