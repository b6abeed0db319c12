package ertmptest

import (
	"errors"
	"fmt"
)

// Kind says whether a track or message is video or audio.
type Kind uint8

// Kinds of tracks and messages.
const (
	Video Kind = iota + 1
	Audio
)

// String returns "video" or "audio".
func (k Kind) String() string {
	switch k {
	case Video:
		return "video"
	case Audio:
		return "audio"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// FrameType is the 3-bit VideoFrameType of an ExHeader video message (and
// the 4-bit frame type of a legacy one).
type FrameType uint8

// Video frame types (E-RTMP v2, enum VideoFrameType).
const (
	KeyFrame             FrameType = 1
	InterFrame           FrameType = 2
	DisposableInterFrame FrameType = 3
	GeneratedKeyFrame    FrameType = 4
	CommandFrame         FrameType = 5
)

// PacketType is a VideoPacketType or AudioPacketType. The values that the
// two enums share are named once; the others are only valid for one kind.
type PacketType uint8

// Packet types (E-RTMP v2, enums VideoPacketType and AudioPacketType).
const (
	SequenceStart PacketType = 0 // video and audio
	CodedFrames   PacketType = 1 // video and audio
	SequenceEnd   PacketType = 2 // video and audio
	CodedFramesX  PacketType = 3 // video only: CodedFrames with an implied composition time of 0 (AVC, HEVC, VVC)
	// Metadata is a video packet whose body is AMF-encoded metadata (colorInfo).
	Metadata             PacketType = 4
	MultichannelConfig   PacketType = 4 // audio only
	MPEG2TSSequenceStart PacketType = 5 // video only

	videoMultitrack PacketType = 6
	audioMultitrack PacketType = 5
	modEx           PacketType = 7 // video and audio
)

// AvMultitrackType is the multitrack layout of a Multitrack message.
type AvMultitrackType uint8

// Multitrack layouts (E-RTMP v2, enum AvMultitrackType).
const (
	MultitrackOneTrack             AvMultitrackType = 0
	MultitrackManyTracks           AvMultitrackType = 1
	MultitrackManyTracksManyCodecs AvMultitrackType = 2
)

// ModExTimestampOffsetNano is the only ModEx type the specification defines
// (VideoPacketModExType and AudioPacketModExType both give it the value 0).
const ModExTimestampOffsetNano uint8 = 0

// ModEx is one entry of the ModEx loop at the start of an ExHeader message.
type ModEx struct {
	Type uint8  // 4-bit ModEx type, e.g. ModExTimestampOffsetNano
	Data []byte // 1 to 65536 bytes
}

// TimestampOffsetNano returns the ModEx entry that adds ns nanoseconds
// (0..999999 by the specification; up to 2^24-1 can be written) to the
// message's millisecond timestamp. Its data is a UI24.
func TimestampOffsetNano(ns uint32) ModEx {
	return ModEx{Type: ModExTimestampOffsetNano, Data: []byte{byte(ns >> 16), byte(ns >> 8), byte(ns)}}
}

// TrackData is one track's part of an ExHeader message.
type TrackData struct {
	// TrackID is the multitrack trackId; ignored when the message is not
	// multitrack.
	TrackID uint8
	// FourCC is the codec: "avc1", "hvc1", "av01", "vp09", "vp08", "vvc1",
	// "mp4a", "Opus", "fLaC", "ac-3", "ec-3", ".mp3" (any 4 bytes are written
	// as given).
	FourCC string
	// CTS is the composition time offset in milliseconds, written as an SI24
	// before Data in video CodedFrames of avc1, hvc1 and vvc1 only.
	CTS int32
	// Data is the payload: a configuration record, coded frames, AMF
	// metadata or a multichannel configuration.
	Data []byte
}

// Message describes one ExHeader video or audio message body. Body writes it.
type Message struct {
	Kind Kind
	// FrameType is written in video messages (the specification's keyframe
	// flag); 0 is written as InterFrame. Ignored for audio.
	FrameType FrameType
	// Command is the VideoCommand byte of a video message whose FrameType is
	// CommandFrame and whose PacketType is not Metadata; such a message has
	// no FourCC and no payload.
	Command uint8
	// PacketType applies to every track of the message.
	PacketType PacketType
	// ModEx entries are written first, in order.
	ModEx []ModEx
	// Multitrack makes this a Multitrack message of MultitrackType.
	Multitrack     bool
	MultitrackType AvMultitrackType
	// Tracks holds exactly one track unless Multitrack is set with
	// MultitrackManyTracks or MultitrackManyTracksManyCodecs. In MultitrackManyTracks
	// every track must have the same FourCC.
	Tracks []TrackData
}

// hasCTS says whether a video CodedFrames payload of this codec starts with
// an SI24 composition time offset.
func hasCTS(fourcc string) bool {
	return fourcc == "avc1" || fourcc == "hvc1" || fourcc == "vvc1"
}

func appendFourCC(b []byte, f string) ([]byte, error) {
	if len(f) != 4 {
		return b, fmt.Errorf("fourcc %q is not 4 bytes", f)
	}
	return append(b, f...), nil
}

func appendUI24(b []byte, v uint32) []byte {
	return append(b, byte(v>>16), byte(v>>8), byte(v))
}

func appendSI24(b []byte, v int32) ([]byte, error) {
	if v < -(1<<23) || v >= 1<<23 {
		return b, fmt.Errorf("composition time %d ms does not fit an SI24", v)
	}
	return appendUI24(b, uint32(v)&0xFFFFFF), nil
}

// Body returns the message body as the specification lays it out.
func (m Message) Body() ([]byte, error) {
	var multitrackPT, fourBits PacketType
	switch m.Kind {
	case Video:
		multitrackPT = videoMultitrack
		ft := m.FrameType
		if ft == 0 {
			ft = InterFrame
		}
		if ft > 7 {
			return nil, fmt.Errorf("video frame type %d does not fit 3 bits", ft)
		}
		fourBits = PacketType(0x80 | uint8(ft)<<4)
	case Audio:
		multitrackPT = audioMultitrack
		fourBits = PacketType(9 << 4) // SoundFormat ExHeader
	default:
		return nil, fmt.Errorf("message kind %d is neither video nor audio", m.Kind)
	}
	if m.PacketType > 15 {
		return nil, fmt.Errorf("packet type %d does not fit 4 bits", m.PacketType)
	}
	command := m.Kind == Video && m.FrameType == CommandFrame && m.PacketType != Metadata

	// The packet type that follows the ModEx loop.
	next := m.PacketType
	if m.Multitrack && !command {
		next = multitrackPT
	}
	first := next
	if len(m.ModEx) > 0 {
		first = modEx
	}
	b := []byte{byte(fourBits) | byte(first)}
	for i, x := range m.ModEx {
		n := len(x.Data)
		switch {
		case n < 1 || n > 1<<16:
			return nil, fmt.Errorf("ModEx data of %d bytes: must be 1 to 65536", n)
		case n < 256:
			b = append(b, byte(n-1))
		default: // UI8 0xFF says "256 or more": a UI16 (size-1) follows
			b = append(b, 0xFF, byte((n-1)>>8), byte(n-1))
		}
		b = append(b, x.Data...)
		if x.Type > 15 {
			return nil, fmt.Errorf("ModEx type %d does not fit 4 bits", x.Type)
		}
		pt := next
		if i < len(m.ModEx)-1 {
			pt = modEx
		}
		b = append(b, x.Type<<4|byte(pt))
	}
	if command {
		return append(b, m.Command), nil
	}

	if !m.Multitrack {
		if len(m.Tracks) != 1 {
			return nil, fmt.Errorf("a message that is not multitrack carries 1 track, not %d", len(m.Tracks))
		}
		t := m.Tracks[0]
		var err error
		if b, err = appendFourCC(b, t.FourCC); err != nil {
			return nil, err
		}
		return m.appendPayload(b, t)
	}

	mt := m.MultitrackType
	switch {
	case mt > MultitrackManyTracksManyCodecs:
		return nil, fmt.Errorf("multitrack type %d is reserved", mt)
	case len(m.Tracks) == 0:
		return nil, errors.New("a multitrack message without tracks")
	case mt == MultitrackOneTrack && len(m.Tracks) != 1:
		return nil, fmt.Errorf("a OneTrack message carries 1 track, not %d", len(m.Tracks))
	}
	b = append(b, byte(mt)<<4|byte(m.PacketType))
	var err error
	if mt != MultitrackManyTracksManyCodecs {
		for _, t := range m.Tracks[1:] {
			if t.FourCC != m.Tracks[0].FourCC {
				return nil, fmt.Errorf("tracks of one multitrack codec differ: %q and %q", m.Tracks[0].FourCC, t.FourCC)
			}
		}
		if b, err = appendFourCC(b, m.Tracks[0].FourCC); err != nil {
			return nil, err
		}
	}
	for _, t := range m.Tracks {
		if mt == MultitrackManyTracksManyCodecs {
			if b, err = appendFourCC(b, t.FourCC); err != nil {
				return nil, err
			}
		}
		b = append(b, t.TrackID)
		if mt == MultitrackOneTrack {
			if b, err = m.appendPayload(b, t); err != nil {
				return nil, err
			}
			continue
		}
		// sizeOfTrack counts the bytes after itself up to the next track.
		at := len(b)
		b = append(b, 0, 0, 0)
		if b, err = m.appendPayload(b, t); err != nil {
			return nil, err
		}
		n := len(b) - at - 3
		if n > 0xFFFFFF {
			return nil, fmt.Errorf("track %d payload of %d bytes does not fit a UI24 size", t.TrackID, n)
		}
		b[at], b[at+1], b[at+2] = byte(n>>16), byte(n>>8), byte(n)
	}
	return b, nil
}

func (m Message) appendPayload(b []byte, t TrackData) ([]byte, error) {
	if m.Kind == Video && m.PacketType == CodedFrames && hasCTS(t.FourCC) {
		var err error
		if b, err = appendSI24(b, t.CTS); err != nil {
			return nil, fmt.Errorf("track %d: %w", t.TrackID, err)
		}
	}
	return append(b, t.Data...), nil
}

// Legacy FLV packet types of AVC (AVCPacketType) and AAC (AACPacketType).
const (
	LegacySequenceHeader uint8 = 0 // AVC sequence header / AAC sequence header
	LegacyNALU           uint8 = 1 // AVC NALU / AAC raw
	LegacyEndOfSequence  uint8 = 2 // AVC only
)

// LegacyAVC returns a legacy FLV video body (CodecID 7): frame type, AVC
// packet type, SI24 composition time in ms, then data.
func LegacyAVC(key bool, packetType uint8, cts int32, data []byte) ([]byte, error) {
	ft := InterFrame
	if key {
		ft = KeyFrame
	}
	b := []byte{byte(ft)<<4 | 7, packetType}
	b, err := appendSI24(b, cts)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}

// soundRateBits is the legacy 2-bit SoundRate nearest to hz (AAC always
// signals 3 = 44 kHz; decoders read the real rate from the config).
func soundRateBits(hz int) byte {
	switch {
	case hz == 0 || hz >= 44100:
		return 3
	case hz >= 22050:
		return 2
	case hz >= 11025:
		return 1
	}
	return 0
}

// LegacyAAC returns a legacy FLV audio body (SoundFormat 10): 0xAF (44 kHz,
// 16-bit, stereo, as the legacy specification requires for AAC), the AAC
// packet type, then data.
func LegacyAAC(packetType uint8, data []byte) []byte {
	b := []byte{10<<4 | 3<<2 | 1<<1 | 1, packetType}
	return append(b, data...)
}

// LegacyMP3 returns a legacy FLV audio body (SoundFormat 2) for one or more
// MP3 frames.
func LegacyMP3(sampleRate, channels int, data []byte) []byte {
	st := byte(0)
	if channels > 1 {
		st = 1
	}
	b := []byte{2<<4 | soundRateBits(sampleRate)<<2 | 1<<1 | st}
	return append(b, data...)
}
