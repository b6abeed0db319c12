package ertmptest

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// h decodes hex with spaces, for byte layouts written out by hand from the
// E-RTMP v2 tables.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestMessageBodies(t *testing.T) {
	for _, c := range []struct {
		name string
		m    Message
		want string
	}{
		{
			// isExHeader 1, frameType 1 (key), packetType 0; FourCC; record
			"video SequenceStart hvc1",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: SequenceStart, Tracks: []TrackData{{FourCC: "hvc1", Data: h("0102")}}},
			"90 68766331 0102",
		},
		{
			// CodedFrames of avc1: SI24 composition time before the NALUs
			"video CodedFrames avc1 key cts 66",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: CodedFrames, Tracks: []TrackData{{FourCC: "avc1", CTS: 66, Data: h("00000001aa")}}},
			"91 61766331 000042 00000001aa",
		},
		{
			"video CodedFrames hvc1 negative cts",
			Message{Kind: Video, FrameType: InterFrame, PacketType: CodedFrames, Tracks: []TrackData{{FourCC: "hvc1", CTS: -2, Data: h("ee")}}},
			"a1 68766331 fffffe ee",
		},
		{
			"video CodedFramesX hvc1 inter",
			Message{Kind: Video, FrameType: InterFrame, PacketType: CodedFramesX, Tracks: []TrackData{{FourCC: "hvc1", Data: h("ee")}}},
			"a3 68766331 ee",
		},
		{
			// AV1 and VP9 CodedFrames have no composition time
			"video CodedFrames av01 key",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: CodedFrames, Tracks: []TrackData{{FourCC: "av01", CTS: 40, Data: h("12000a")}}},
			"91 61763031 12000a",
		},
		{
			"video CodedFrames vp09 inter, frame type 0 written as inter",
			Message{Kind: Video, PacketType: CodedFrames, Tracks: []TrackData{{FourCC: "vp09", Data: h("86")}}},
			"a1 76703039 86",
		},
		{
			"video SequenceEnd",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: SequenceEnd, Tracks: []TrackData{{FourCC: "av01"}}},
			"92 61763031",
		},
		{
			"video Metadata colorInfo",
			Message{Kind: Video, FrameType: CommandFrame, PacketType: Metadata, Tracks: []TrackData{{FourCC: "hvc1", Data: h("0200")}}},
			"d4 68766331 0200",
		},
		{
			// Command frame: UI8 command, no FourCC, no body
			"video command frame",
			Message{Kind: Video, FrameType: CommandFrame, PacketType: CodedFrames, Command: 1},
			"d1 01",
		},
		{
			// packetType 6 Multitrack; then multitrackType 0 << 4 | packetType 1; FourCC; trackId
			"video Multitrack OneTrack av01 key track 1",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: CodedFrames, Multitrack: true, MultitrackType: MultitrackOneTrack,
				Tracks: []TrackData{{TrackID: 1, FourCC: "av01", Data: h("0a0b")}}},
			"96 01 61763031 01 0a0b",
		},
		{
			"video Multitrack OneTrack avc1 inter keeps cts",
			Message{Kind: Video, FrameType: InterFrame, PacketType: CodedFrames, Multitrack: true,
				Tracks: []TrackData{{TrackID: 3, FourCC: "avc1", CTS: 33, Data: h("ff")}}},
			"a6 01 61766331 03 000021 ff",
		},
		{
			"video Multitrack OneTrack SequenceStart",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: SequenceStart, Multitrack: true,
				Tracks: []TrackData{{TrackID: 2, FourCC: "avc1", Data: h("01640028")}}},
			"96 00 61766331 02 01640028",
		},
		{
			// ManyTracks: one FourCC, then per track trackId and UI24 size
			"video Multitrack ManyTracks vp09",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: CodedFrames, Multitrack: true, MultitrackType: MultitrackManyTracks,
				Tracks: []TrackData{{TrackID: 0, FourCC: "vp09", Data: h("aabbcc")}, {TrackID: 2, FourCC: "vp09", Data: h("ddee")}}},
			"96 11 76703039 00 000003 aabbcc 02 000002 ddee",
		},
		{
			// size counts the SI24 composition time too
			"video Multitrack ManyTracks avc1 with cts",
			Message{Kind: Video, FrameType: InterFrame, PacketType: CodedFrames, Multitrack: true, MultitrackType: MultitrackManyTracks,
				Tracks: []TrackData{{TrackID: 0, FourCC: "avc1", CTS: 1, Data: h("aa")}, {TrackID: 1, FourCC: "avc1", CTS: 2, Data: h("bbcc")}}},
			"a6 11 61766331 00 000004 000001 aa 01 000005 000002 bbcc",
		},
		{
			// ManyTracksManyCodecs: no shared FourCC, one before each trackId
			"video Multitrack ManyTracksManyCodecs",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: CodedFrames, Multitrack: true, MultitrackType: MultitrackManyTracksManyCodecs,
				Tracks: []TrackData{{TrackID: 0, FourCC: "hvc1", CTS: 0, Data: h("dd")}, {TrackID: 1, FourCC: "av01", Data: h("ee")}}},
			"96 21 68766331 00 000004 000000 dd 61763031 01 000001 ee",
		},
		{
			// ModEx: packetType 7, UI8 size-1, data (UI24 nanoseconds), then
			// modExType 0 << 4 | the real packetType
			"video ModEx TimestampOffsetNano",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: CodedFrames, ModEx: []ModEx{TimestampOffsetNano(123456)},
				Tracks: []TrackData{{FourCC: "av01", Data: h("01")}}},
			"97 02 01e240 01 61763031 01",
		},
		{
			"video ModEx then Multitrack",
			Message{Kind: Video, FrameType: InterFrame, PacketType: CodedFramesX, ModEx: []ModEx{TimestampOffsetNano(999999)}, Multitrack: true,
				Tracks: []TrackData{{TrackID: 1, FourCC: "hvc1", Data: h("01")}}},
			"a7 02 0f423f 06 03 68766331 01 01",
		},
		{
			"video two ModEx entries",
			Message{Kind: Video, FrameType: KeyFrame, PacketType: SequenceEnd, ModEx: []ModEx{{Type: 5, Data: h("aa")}, TimestampOffsetNano(1)},
				Tracks: []TrackData{{FourCC: "vp09"}}},
			"97 00 aa 57 02 000001 02 76703039",
		},
		{
			// AudioPacketType: soundFormat 9 << 4 | packetType
			"audio SequenceStart Opus",
			Message{Kind: Audio, PacketType: SequenceStart, Tracks: []TrackData{{FourCC: "Opus", Data: []byte("OpusHead")}}},
			"90 4f707573 " + hex.EncodeToString([]byte("OpusHead")),
		},
		{
			"audio CodedFrames ec-3 ignores frame type and cts",
			Message{Kind: Audio, FrameType: KeyFrame, PacketType: CodedFrames, Tracks: []TrackData{{FourCC: "ec-3", CTS: 5, Data: h("0b77")}}},
			"91 65632d33 0b77",
		},
		{
			// audio Multitrack is packetType 5
			"audio Multitrack OneTrack mp4a",
			Message{Kind: Audio, PacketType: CodedFrames, Multitrack: true, Tracks: []TrackData{{TrackID: 1, FourCC: "mp4a", Data: h("21")}}},
			"95 01 6d703461 01 21",
		},
		{
			"audio Multitrack ManyTracksManyCodecs",
			Message{Kind: Audio, PacketType: CodedFrames, Multitrack: true, MultitrackType: MultitrackManyTracksManyCodecs,
				Tracks: []TrackData{{TrackID: 0, FourCC: "mp4a", Data: h("21")}, {TrackID: 1, FourCC: "fLaC", Data: h("fff8")}}},
			"95 21 6d703461 00 000001 21 664c6143 01 000002 fff8",
		},
		{
			"audio ModEx then ManyTracks",
			Message{Kind: Audio, PacketType: SequenceStart, ModEx: []ModEx{TimestampOffsetNano(0)}, Multitrack: true, MultitrackType: MultitrackManyTracks,
				Tracks: []TrackData{{TrackID: 0, FourCC: ".mp3"}, {TrackID: 1, FourCC: ".mp3"}}},
			"97 02 000000 05 10 2e6d7033 00 000000 01 000000",
		},
		{
			"audio MultichannelConfig",
			Message{Kind: Audio, PacketType: MultichannelConfig, Tracks: []TrackData{{FourCC: "Opus", Data: h("01 06 0000003f")}}},
			"94 4f707573 01 06 0000003f",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.m.Body()
			if err != nil {
				t.Fatal(err)
			}
			if want := h(c.want); !bytes.Equal(got, want) {
				t.Errorf("body\n got % x\nwant % x", got, want)
			}
		})
	}
}

func TestModExSizes(t *testing.T) {
	for _, n := range []int{1, 255, 256, 257, 65536} {
		data := bytes.Repeat([]byte{0x5A}, n)
		b, err := Message{Kind: Audio, PacketType: CodedFrames, ModEx: []ModEx{{Type: 3, Data: data}},
			Tracks: []TrackData{{FourCC: "mp4a"}}}.Body()
		if err != nil {
			t.Fatal(err)
		}
		var head []byte
		if n < 256 {
			head = []byte{0x97, byte(n - 1)}
		} else { // 0xFF: 256 or more, then UI16 size-1
			head = []byte{0x97, 0xFF, byte((n - 1) >> 8), byte(n - 1)}
		}
		want := append(append(head, data...), 0x31, 'm', 'p', '4', 'a')
		if !bytes.Equal(b, want) {
			t.Errorf("ModEx of %d bytes: got % x... (%d bytes), want % x... (%d bytes)", n, b[:min(6, len(b))], len(b), want[:6], len(want))
		}
	}
	for _, n := range []int{0, 65537} {
		if _, err := (Message{Kind: Audio, ModEx: []ModEx{{Data: make([]byte, n)}}, Tracks: []TrackData{{FourCC: "mp4a"}}}).Body(); err == nil {
			t.Errorf("ModEx of %d bytes: no error", n)
		}
	}
}

func TestMessageErrors(t *testing.T) {
	for name, m := range map[string]Message{
		"no kind":            {Tracks: []TrackData{{FourCC: "avc1"}}},
		"bad fourcc":         {Kind: Video, Tracks: []TrackData{{FourCC: "h264x"}}},
		"two plain tracks":   {Kind: Video, Tracks: []TrackData{{FourCC: "avc1"}, {FourCC: "avc1"}}},
		"no tracks":          {Kind: Audio, Multitrack: true, MultitrackType: MultitrackManyTracks},
		"two in OneTrack":    {Kind: Audio, Multitrack: true, Tracks: []TrackData{{FourCC: "mp4a"}, {FourCC: "mp4a"}}},
		"mixed ManyTracks":   {Kind: Audio, Multitrack: true, MultitrackType: MultitrackManyTracks, Tracks: []TrackData{{FourCC: "mp4a"}, {FourCC: "Opus"}}},
		"reserved multitrk":  {Kind: Audio, Multitrack: true, MultitrackType: 3, Tracks: []TrackData{{FourCC: "mp4a"}}},
		"cts out of range":   {Kind: Video, PacketType: CodedFrames, Tracks: []TrackData{{FourCC: "avc1", CTS: 1 << 23}}},
		"packet type > 15":   {Kind: Video, PacketType: 16, Tracks: []TrackData{{FourCC: "avc1"}}},
		"frame type > 7":     {Kind: Video, FrameType: 8, Tracks: []TrackData{{FourCC: "avc1"}}},
		"ModEx type > 15":    {Kind: Video, ModEx: []ModEx{{Type: 16, Data: []byte{0}}}, Tracks: []TrackData{{FourCC: "avc1"}}},
		"MTMC bad fourcc":    {Kind: Video, Multitrack: true, MultitrackType: MultitrackManyTracksManyCodecs, Tracks: []TrackData{{FourCC: "av1"}}},
		"ManyTracks no four": {Kind: Video, Multitrack: true, MultitrackType: MultitrackManyTracks, Tracks: []TrackData{{}}},
	} {
		if b, err := m.Body(); err == nil {
			t.Errorf("%s: no error, body % x", name, b)
		}
	}
}

func TestLegacyBodies(t *testing.T) {
	b, err := LegacyAVC(true, LegacyNALU, 66, h("00000002 0910"))
	if err != nil {
		t.Fatal(err)
	}
	// frame type 1 << 4 | CodecID 7; AVCPacketType 1; SI24 66
	if want := h("17 01 000042 00000002 0910"); !bytes.Equal(b, want) {
		t.Errorf("LegacyAVC key: % x, want % x", b, want)
	}
	b, _ = LegacyAVC(false, LegacySequenceHeader, -1, nil)
	if want := h("27 00 ffffff"); !bytes.Equal(b, want) {
		t.Errorf("LegacyAVC inter: % x, want % x", b, want)
	}
	if _, err := LegacyAVC(true, 1, -(1<<23)-1, nil); err == nil {
		t.Error("LegacyAVC accepts a composition time beyond SI24")
	}
	// SoundFormat 10 << 4 | rate 3 << 2 | size 1 << 1 | stereo 1
	if b, want := LegacyAAC(LegacySequenceHeader, h("1190")), h("af 00 1190"); !bytes.Equal(b, want) {
		t.Errorf("LegacyAAC: % x, want % x", b, want)
	}
	if b, want := LegacyMP3(48000, 2, h("fffb")), h("2f fffb"); !bytes.Equal(b, want) {
		t.Errorf("LegacyMP3 stereo: % x, want % x", b, want)
	}
	if b, want := LegacyMP3(22050, 1, nil), h("2a"); !bytes.Equal(b, want) {
		t.Errorf("LegacyMP3 22 kHz mono: % x, want % x", b, want)
	}
}

func TestAMF0(t *testing.T) {
	b, err := AMF0(nil, "onMetaData", ECMAArray{{"width", 640}, {"stereo", true}, {"m", Object{{"1", Object{{"a", nil}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := h("02 000a" + hex.EncodeToString([]byte("onMetaData")) +
		"08 00000003" +
		"0005" + hex.EncodeToString([]byte("width")) + "00 4084000000000000" +
		"0006" + hex.EncodeToString([]byte("stereo")) + "01 01" +
		"0001 6d 03 0001 31 03 0001 61 05 000009 000009" +
		"000009")
	if !bytes.Equal(b, want) {
		t.Errorf("AMF0\n got % x\nwant % x", b, want)
	}
	if _, err := AMF0(nil, []int{1}); err == nil {
		t.Error("AMF0 encodes a slice")
	}
	// The specification's own examples.
	if n := FourCCNumber("av01"); n != 1635135537 {
		t.Errorf("av01 = %v", n)
	}
	if n := FourCCNumber("Opus"); n != 1332770163 {
		t.Errorf("Opus = %v", n)
	}
}
