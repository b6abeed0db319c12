package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/fount-live/fount/segmenter"
)

// Message bodies in these tests are built field by field from the Enhanced
// RTMP v2 bitstream description: cat concatenates bytes (int), strings and
// byte slices.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = append(b, byte(v))
		case byte:
			b = append(b, v)
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return b
}

func u24(n int) []byte { return []byte{byte(n >> 16), byte(n >> 8), byte(n)} }
func u16(n int) []byte { return []byte{byte(n >> 8), byte(n)} }

// Header bytes.
func exVideo(frameType, pt int) int { return 0x80 | frameType<<4 | pt }
func exAudio(pt int) int            { return flvSoundExHdr<<4 | pt }
func mtByte(mt, pt int) int         { return mt<<4 | pt }

// modExNano is a ModEx entry carrying TimestampOffsetNano ns, followed by
// the next packet type.
func modExNano(ns, next int) []byte {
	return cat(2, u24(ns), modExTimestampOffsetNano<<4|next) // size-1 = 2: 3 bytes of data
}

// pkt is the part of a trackPacket a test states.
type pkt struct {
	track  uint8
	fourcc string
	typ    packetType
	raw    uint8
	key    bool
	cts    int32
	nanos  uint32
	multi  bool
	legacy bool
	flvID  uint8
	data   string
}

func (p pkt) String() string {
	return fmt.Sprintf("{track %d %q %v raw %d key %v cts %d nanos %d multi %v legacy %v id %d data %x}",
		p.track, p.fourcc, p.typ, p.raw, p.key, p.cts, p.nanos, p.multi, p.legacy, p.flvID, p.data)
}

func toPkt(p trackPacket) pkt {
	f := string(p.fourcc[:])
	if p.fourcc == ([4]byte{}) {
		f = ""
	}
	return pkt{p.track, f, p.typ, p.raw, p.key, p.cts, p.tsOffsetNanos, p.multitrack, p.legacy, p.flvID, string(p.data)}
}

// trunc is a prefix of a valid message and the error it must give.
type trunc struct {
	n   int // bytes kept
	err string
}

type msgCase struct {
	name  string
	in    []byte
	want  []pkt
	cuts  []trunc
	isErr string // the whole message is an error containing this
}

func collect(parse func([]byte, func(trackPacket) error) error, b []byte) ([]pkt, error) {
	var got []pkt
	err := parse(b, func(p trackPacket) error {
		if p.data != nil && len(p.data) > 0 && !within(p.data, b) {
			return errors.New("data does not alias the message")
		}
		got = append(got, toPkt(p))
		return nil
	})
	return got, err
}

// within reports whether d is a sub-slice of b (constant time: the fuzz
// target calls it for every packet).
func within(d, b []byte) bool {
	if len(d) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	lo, hi := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))+uintptr(len(b))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(d)))
	return p >= lo && p+uintptr(len(d)) <= hi
}

func runMsgCases(t *testing.T, parse func([]byte, func(trackPacket) error) error, cases []msgCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := collect(parse, c.in)
			if c.isErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.isErr) {
					t.Fatalf("err %v, want one containing %q (packets %v)", err, c.isErr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("%x: %v", c.in, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("%x:\n got %v\nwant %v", c.in, got, c.want)
			}
			for _, cut := range c.cuts {
				if cut.n >= len(c.in) {
					t.Fatalf("cut %d of a %d-byte message", cut.n, len(c.in))
				}
				_, err := collect(parse, c.in[:cut.n])
				if err == nil || !strings.Contains(err.Error(), cut.err) {
					t.Errorf("cut at %d: err %v, want one containing %q", cut.n, err, cut.err)
				}
			}
		})
	}
}

var colorInfoPQ = cat(amf0String, u16(9), "colorInfo", amf0Object,
	u16(11), "colorConfig", amf0Object,
	u16(8), "bitDepth", amf0Number, f64(10),
	u16(14), "colorPrimaries", amf0Number, f64(9),
	u16(23), "transferCharacteristics", amf0Number, f64(16),
	u16(18), "matrixCoefficients", amf0Number, f64(9),
	u16(0), amf0ObjectEnd,
	u16(0), amf0ObjectEnd)

func f64(v float64) []byte {
	u := math.Float64bits(v)
	return []byte{byte(u >> 56), byte(u >> 48), byte(u >> 40), byte(u >> 32), byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}
}

func videoCases() []msgCase {
	const nal = "\x00\x00\x00\x02\x65\x88"
	const avcC = "\x01\x64\x00\x1f\xff"
	return []msgCase{
		// Legacy FLV VideoTagHeader: FrameType|CodecID, AVCPacketType, SI24 CTS.
		{name: "legacy avc seq header", in: cat(0x17, avcSeqHeader, 0, 0, 0, avcC),
			want: []pkt{{fourcc: "avc1", typ: pktSeqStart, key: true, legacy: true, flvID: 7, data: avcC}},
			cuts: []trunc{{1, "shorter than its 5-byte header"}, {2, "shorter than its 5-byte header"}, {4, "shorter than its 5-byte header"}}},
		{name: "legacy avc frame negative cts", in: cat(0x27, avcNALU, 0xff, 0xff, 0xdf, nal),
			want: []pkt{{fourcc: "avc1", typ: pktCodedFrames, raw: 1, cts: -33, legacy: true, flvID: 7, data: nal}}},
		{name: "legacy avc end of sequence", in: cat(0x17, avcEndOfSeq, 0, 0, 0),
			want: []pkt{{fourcc: "avc1", typ: pktSeqEnd, raw: 2, key: true, legacy: true, flvID: 7}}},
		{name: "legacy avc unknown packet type", in: cat(0x17, 9, 0, 0, 0, nal),
			want: []pkt{{fourcc: "avc1", typ: pktSkip, raw: 9, key: true, legacy: true, flvID: 7, data: nal}}},
		{name: "legacy hevc id 12", in: cat(0x1c, avcNALU, 0, 0, 40, nal),
			want: []pkt{{fourcc: "hvc1", typ: pktCodedFrames, raw: 1, key: true, cts: 40, legacy: true, flvID: 12, data: nal}},
			cuts: []trunc{{3, "HEVC (non-standard FLV id) tag of 3 bytes is shorter than its 5-byte header"}}},
		{name: "legacy vp6 passed up", in: cat(0x14, 0, 1, 2),
			want: []pkt{{typ: pktCodedFrames, key: true, legacy: true, flvID: 4, data: "\x00\x01\x02"}}},
		{name: "legacy command frame", in: cat(0x57, 0)},
		{name: "empty", in: nil, isErr: "flv video: empty message"},

		// ExVideoTagHeader: IsExHeader|FrameType|PacketType, FourCC, body.
		{name: "ex avc1 seq start", in: cat(exVideo(1, exSeqStart), "avc1", avcC),
			want: []pkt{{fourcc: "avc1", typ: pktSeqStart, key: true, data: avcC}},
			cuts: []trunc{{1, "FourCC truncated (0 of 4 bytes)"}, {3, "FourCC truncated (2 of 4 bytes)"}}},
		{name: "ex avc1 coded frames cts", in: cat(exVideo(1, exCodedFrames), "avc1", 0, 0, 66, nal),
			want: []pkt{{fourcc: "avc1", typ: pktCodedFrames, raw: 1, key: true, cts: 66, data: nal}},
			cuts: []trunc{{5, "avc1 CodedFrames: composition time truncated (0 of 3 bytes)"}, {7, "composition time truncated (2 of 3 bytes)"}}},
		{name: "ex hvc1 coded frames negative cts", in: cat(exVideo(2, exCodedFrames), "hvc1", 0xff, 0xff, 0xff, nal),
			want: []pkt{{fourcc: "hvc1", typ: pktCodedFrames, raw: 1, cts: -1, data: nal}},
			cuts: []trunc{{6, "hvc1 CodedFrames: composition time truncated (1 of 3 bytes)"}}},
		{name: "ex vvc1 coded frames cts", in: cat(exVideo(1, exCodedFrames), "vvc1", 0, 1, 0, nal),
			want: []pkt{{fourcc: "vvc1", typ: pktCodedFrames, raw: 1, key: true, cts: 256, data: nal}}},
		{name: "ex av01 coded frames no cts", in: cat(exVideo(1, exCodedFrames), "av01", 0x12, 0, 0x0a),
			want: []pkt{{fourcc: "av01", typ: pktCodedFrames, raw: 1, key: true, data: "\x12\x00\x0a"}}},
		{name: "ex vp09 coded frames empty", in: cat(exVideo(2, exCodedFrames), "vp09"),
			want: []pkt{{fourcc: "vp09", typ: pktCodedFrames, raw: 1}}},
		{name: "ex avc1 coded frames x", in: cat(exVideo(2, exCodedFramesX), "avc1", nal),
			want: []pkt{{fourcc: "avc1", typ: pktCodedFrames, raw: 3, data: nal}}},
		{name: "ex hvc1 seq end", in: cat(exVideo(1, exSeqEnd), "hvc1"),
			want: []pkt{{fourcc: "hvc1", typ: pktSeqEnd, raw: 2, key: true}}},
		{name: "ex metadata colorInfo", in: cat(exVideo(1, exMetadata), "hvc1", colorInfoPQ),
			want: []pkt{{fourcc: "hvc1", typ: pktMetadata, raw: 4, key: true, data: string(colorInfoPQ)}}},
		{name: "ex command frame metadata still parsed", in: cat(exVideo(frameCommand, exMetadata), "av01", colorInfoPQ),
			want: []pkt{{fourcc: "av01", typ: pktMetadata, raw: 4, data: string(colorInfoPQ)}}},
		{name: "ex command frame skipped", in: cat(exVideo(frameCommand, exCodedFrames), 1)},
		{name: "ex command frame without command byte", in: cat(exVideo(frameCommand, exSeqStart))},
		{name: "ex av01 mpeg2ts seq start", in: cat(exVideo(1, exMPEG2TSSeqStart), "av01", 0x80, 4, 0x81),
			want: []pkt{{fourcc: "av01", typ: pktMPEG2TSSeqStart, raw: 5, key: true, data: "\x80\x04\x81"}}},
		{name: "ex unknown packet type passed up", in: cat(exVideo(1, 9), "avc1", 1, 2),
			want: []pkt{{fourcc: "avc1", typ: pktSkip, raw: 9, key: true, data: "\x01\x02"}}},
		{name: "ex unknown fourcc passed up", in: cat(exVideo(1, exCodedFrames), "vp08", 1, 2, 3),
			want: []pkt{{fourcc: "vp08", typ: pktCodedFrames, raw: 1, key: true, data: "\x01\x02\x03"}}},

		// ModEx loop: size (UI8 size-1 | 0xFF UI16 size-1), data, ModExType|PacketType.
		{name: "modex timestamp offset nano", in: cat(exVideo(1, exModEx), modExNano(500_000, exCodedFrames), "avc1", 0, 0, 33, nal),
			want: []pkt{{fourcc: "avc1", typ: pktCodedFrames, raw: 1, key: true, cts: 33, nanos: 500_000, data: nal}},
			cuts: []trunc{{1, "ModEx data size missing"}, {2, "ModEx data of 3 bytes past the end of the message (0 left)"},
				{4, "ModEx data of 3 bytes past the end of the message (2 left)"}, {5, "ModEx type and packet type byte missing"},
				{7, "FourCC truncated (1 of 4 bytes)"}, {11, "composition time truncated (1 of 3 bytes)"}}},
		{name: "modex twice, last offset wins", in: cat(exVideo(2, exModEx), modExNano(1, exModEx), modExNano(999_999, exCodedFramesX), "hvc1", nal),
			want: []pkt{{fourcc: "hvc1", typ: pktCodedFrames, raw: 3, nanos: 999_999, data: nal}},
			cuts: []trunc{{6, "ModEx data size missing"}}},
		{name: "modex 16-bit size", in: cat(exVideo(1, exModEx), 0xff, u16(299), 0, 1, 2, bytes.Repeat([]byte{0}, 297), modExTimestampOffsetNano<<4|exSeqStart, "avc1", avcC),
			want: []pkt{{fourcc: "avc1", typ: pktSeqStart, key: true, nanos: 0x102, data: avcC}},
			cuts: []trunc{{2, "ModEx 16-bit data size truncated (0 of 2 bytes)"}, {3, "ModEx 16-bit data size truncated (1 of 2 bytes)"},
				{4, "ModEx data of 300 bytes past the end of the message (0 left)"}, {304, "ModEx type and packet type byte missing"}}},
		{name: "modex unknown type skipped", in: cat(exVideo(1, exModEx), 0, 0xaa, 3<<4|exSeqEnd, "av01"),
			want: []pkt{{fourcc: "av01", typ: pktSeqEnd, raw: 2, key: true}}},
		{name: "modex nano too short", in: cat(exVideo(1, exModEx), 1, 0, 0, modExTimestampOffsetNano<<4|exSeqEnd, "av01"),
			isErr: "ModEx TimestampOffsetNano of 2 bytes, want 3"},
		{name: "modex then command", in: cat(exVideo(frameCommand, exModEx), modExNano(7, exCodedFrames), 0)},

		// Multitrack: AvMultitrackType|PacketType, [FourCC], per track [FourCC] trackId [UI24 size] body.
		{name: "multitrack one track (OBS rendition)", in: cat(exVideo(1, exVideoMultitrack), mtByte(mtOneTrack, exCodedFrames), "avc1", 2, 0, 0, 66, nal),
			want: []pkt{{track: 2, fourcc: "avc1", typ: pktCodedFrames, raw: 1, key: true, cts: 66, multi: true, data: nal}},
			cuts: []trunc{{1, "Multitrack type byte missing"}, {2, "Multitrack FourCC truncated (0 of 4 bytes)"}, {5, "Multitrack FourCC truncated (3 of 4 bytes)"},
				{6, "Multitrack trackId missing"}, {8, "flv video: track 2 avc1 CodedFrames: composition time truncated (1 of 3 bytes)"}}},
		{name: "multitrack one track seq start", in: cat(exVideo(1, exVideoMultitrack), mtByte(mtOneTrack, exSeqStart), "hvc1", 1, avcC),
			want: []pkt{{track: 1, fourcc: "hvc1", typ: pktSeqStart, key: true, multi: true, data: avcC}}},
		{name: "multitrack many tracks", in: cat(exVideo(1, exVideoMultitrack), mtByte(mtManyTracks, exCodedFramesX), "av01",
			0, u24(3), 0x12, 0, 0x0a,
			1, u24(0),
			2, u24(2), 0x32, 0x10),
			want: []pkt{
				{track: 0, fourcc: "av01", typ: pktCodedFrames, raw: 3, key: true, multi: true, data: "\x12\x00\x0a"},
				{track: 1, fourcc: "av01", typ: pktCodedFrames, raw: 3, key: true, multi: true},
				{track: 2, fourcc: "av01", typ: pktCodedFrames, raw: 3, key: true, multi: true, data: "\x32\x10"}},
			cuts: []trunc{{6, "Multitrack trackId missing"}, {7, "Multitrack track 0 size truncated (0 of 3 bytes)"}, {9, "Multitrack track 0 size truncated (2 of 3 bytes)"},
				{11, "Multitrack track 0 size 3 past the end of the message (1 left)"}, {15, "Multitrack track 1 size truncated (1 of 3 bytes)"},
				{22, "Multitrack track 2 size 2 past the end of the message (1 left)"}}},
		{name: "multitrack many tracks with cts per track", in: cat(exVideo(2, exVideoMultitrack), mtByte(mtManyTracks, exCodedFrames), "avc1",
			0, u24(3+len(nal)), 0, 0, 33, nal,
			1, u24(3), 0, 0, 66),
			want: []pkt{
				{track: 0, fourcc: "avc1", typ: pktCodedFrames, raw: 1, cts: 33, multi: true, data: nal},
				{track: 1, fourcc: "avc1", typ: pktCodedFrames, raw: 1, cts: 66, multi: true}}},
		{name: "multitrack cts past the track size", in: cat(exVideo(2, exVideoMultitrack), mtByte(mtManyTracks, exCodedFrames), "avc1", 0, u24(2), 0, 0, 33),
			isErr: "track 0 avc1 CodedFrames: composition time truncated (2 of 3 bytes)"},
		{name: "multitrack many tracks many codecs", in: cat(exVideo(1, exVideoMultitrack), mtByte(mtManyTracksManyCodecs, exSeqStart),
			"avc1", 0, u24(len(avcC)), avcC,
			"vp08", 1, u24(2), 9, 9,
			"av01", 2, u24(4), 0x81, 8, 12, 0),
			want: []pkt{
				{track: 0, fourcc: "avc1", typ: pktSeqStart, key: true, multi: true, data: avcC},
				{track: 1, fourcc: "vp08", typ: pktSeqStart, key: true, multi: true, data: "\x09\x09"},
				{track: 2, fourcc: "av01", typ: pktSeqStart, key: true, multi: true, data: "\x81\x08\x0c\x00"}},
			cuts: []trunc{{2, "Multitrack track FourCC truncated (0 of 4 bytes)"}, {4, "Multitrack track FourCC truncated (2 of 4 bytes)"},
				{6, "Multitrack trackId missing"}, {7, "Multitrack track 0 size truncated (0 of 3 bytes)"}, {14, "Multitrack track 0 size 5 past the end of the message (4 left)"},
				{17, "Multitrack track FourCC truncated (2 of 4 bytes)"}}},
		{name: "multitrack with modex", in: cat(exVideo(1, exModEx), modExNano(250, exVideoMultitrack), mtByte(mtOneTrack, exCodedFramesX), "hvc1", 1, nal),
			want: []pkt{{track: 1, fourcc: "hvc1", typ: pktCodedFrames, raw: 3, key: true, nanos: 250, multi: true, data: nal}}},
		{name: "multitrack unknown packet type", in: cat(exVideo(1, exVideoMultitrack), mtByte(mtManyTracks, 12), "avc1", 0, u24(1), 7, 1, u24(0)),
			want: []pkt{{track: 0, fourcc: "avc1", typ: pktSkip, raw: 12, key: true, multi: true, data: "\x07"}, {track: 1, fourcc: "avc1", typ: pktSkip, raw: 12, key: true, multi: true}}},
		{name: "multitrack nested", in: cat(exVideo(1, exVideoMultitrack), mtByte(mtOneTrack, exVideoMultitrack), "avc1", 0), isErr: "Multitrack packet type 6 not allowed inside Multitrack"},
		{name: "multitrack modex inside", in: cat(exVideo(1, exVideoMultitrack), mtByte(mtOneTrack, exModEx), "avc1", 0), isErr: "Multitrack packet type 7 not allowed inside Multitrack"},
		{name: "multitrack reserved type", in: cat(exVideo(1, exVideoMultitrack), mtByte(3, exCodedFrames), "avc1", 0), isErr: "AvMultitrackType 3: reserved AvMultitrackType"},
	}
}

func TestParseVideoMessage(t *testing.T) {
	runMsgCases(t, parseVideoMessage, videoCases())
	_, err := collect(parseVideoMessage, cat(exVideo(1, exVideoMultitrack), mtByte(15, 0)))
	if !errors.Is(err, errUnknownMultitrackType) {
		t.Fatalf("reserved multitrack type: %v", err)
	}
}

func audioCases() []msgCase {
	const asc = "\x11\x90"
	const opusHead = "OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
	return []msgCase{
		// Legacy FLV AudioTagHeader: SoundFormat|rate|size|type, [AACPacketType].
		{name: "legacy aac config", in: cat(0xaf, 0, asc), want: []pkt{{fourcc: "mp4a", typ: pktSeqStart, legacy: true, flvID: 10, data: asc}},
			cuts: []trunc{{1, "AAC tag without packet type"}}},
		{name: "legacy aac raw", in: cat(0xaf, 1, 0x21, 0x10), want: []pkt{{fourcc: "mp4a", typ: pktCodedFrames, raw: 1, legacy: true, flvID: 10, data: "\x21\x10"}}},
		{name: "legacy aac unknown packet type", in: cat(0xaf, 7, 1), want: []pkt{{fourcc: "mp4a", typ: pktSkip, raw: 7, legacy: true, flvID: 10, data: "\x01"}}},
		{name: "legacy mp3", in: cat(0x2f, 0xff, 0xfb), want: []pkt{{fourcc: ".mp3", typ: pktCodedFrames, legacy: true, flvID: 2, data: "\xff\xfb"}}},
		{name: "legacy mp3 8 kHz", in: cat(0xe2, 0xff, 0xf3), want: []pkt{{fourcc: ".mp3", typ: pktCodedFrames, legacy: true, flvID: 14, data: "\xff\xf3"}}},
		{name: "legacy mp3 header only", in: cat(0x2f), want: []pkt{{fourcc: ".mp3", typ: pktCodedFrames, legacy: true, flvID: 2}}},
		{name: "legacy pcm passed up", in: cat(0x3f, 1, 2), want: []pkt{{typ: pktCodedFrames, legacy: true, flvID: 3, data: "\x01\x02"}}},
		{name: "silence message", in: nil},

		// ExAudioTagHeader: 9<<4|AudioPacketType, FourCC, body.
		{name: "ex opus seq start", in: cat(exAudio(exAudioSeqStart), "Opus", opusHead), want: []pkt{{fourcc: "Opus", typ: pktSeqStart, data: opusHead}},
			cuts: []trunc{{1, "flv audio: ExHeader packet type 0: FourCC truncated (0 of 4 bytes)"}, {4, "FourCC truncated (3 of 4 bytes)"}}},
		{name: "ex flac coded frames", in: cat(exAudio(exAudioCodedFrames), "fLaC", 0xff, 0xf8), want: []pkt{{fourcc: "fLaC", typ: pktCodedFrames, raw: 1, data: "\xff\xf8"}}},
		{name: "ex ac-3", in: cat(exAudio(exAudioCodedFrames), "ac-3", 0x0b, 0x77), want: []pkt{{fourcc: "ac-3", typ: pktCodedFrames, raw: 1, data: "\x0b\x77"}}},
		{name: "ex ec-3", in: cat(exAudio(exAudioCodedFrames), "ec-3", 0x0b, 0x77), want: []pkt{{fourcc: "ec-3", typ: pktCodedFrames, raw: 1, data: "\x0b\x77"}}},
		{name: "ex mp3", in: cat(exAudio(exAudioCodedFrames), ".mp3", 0xff, 0xfb), want: []pkt{{fourcc: ".mp3", typ: pktCodedFrames, raw: 1, data: "\xff\xfb"}}},
		{name: "ex mp4a seq start", in: cat(exAudio(exAudioSeqStart), "mp4a", asc), want: []pkt{{fourcc: "mp4a", typ: pktSeqStart, data: asc}}},
		{name: "ex seq end", in: cat(exAudio(exAudioSeqEnd), "Opus"), want: []pkt{{fourcc: "Opus", typ: pktSeqEnd, raw: 2}}},
		{name: "ex reserved packet type 3", in: cat(exAudio(3), "Opus", 1), want: []pkt{{fourcc: "Opus", typ: pktSkip, raw: 3, data: "\x01"}}},
		{name: "ex unknown fourcc", in: cat(exAudio(exAudioCodedFrames), "alac", 1), want: []pkt{{fourcc: "alac", typ: pktCodedFrames, raw: 1, data: "\x01"}}},
		// MultichannelConfig: order UI8, count UI8, [mapping UI8[count] | flags UI32].
		{name: "ex multichannel custom", in: cat(exAudio(exAudioMultichannelConfig), "Opus", channelOrderCustom, 3, 0, 1, 2),
			want: []pkt{{fourcc: "Opus", typ: pktMultichannelConfig, raw: 4, data: "\x02\x03\x00\x01\x02"}},
			cuts: []trunc{{5, "MultichannelConfig: channel order and count truncated (0 of 2 bytes)"}, {6, "(1 of 2 bytes)"}, {7, "channel mapping truncated (0 of 3 bytes)"}, {9, "channel mapping truncated (2 of 3 bytes)"}}},
		{name: "ex multichannel native", in: cat(exAudio(exAudioMultichannelConfig), "ac-3", channelOrderNative, 6, 0, 0, 0, 0x3f),
			want: []pkt{{fourcc: "ac-3", typ: pktMultichannelConfig, raw: 4, data: "\x01\x06\x00\x00\x00\x3f"}},
			cuts: []trunc{{7, "channel flags truncated (0 of 4 bytes)"}, {10, "flv audio: track 0 ac-3: MultichannelConfig: channel flags truncated (3 of 4 bytes)"}}},
		{name: "ex multichannel unspecified", in: cat(exAudio(exAudioMultichannelConfig), "Opus", channelOrderUnspecified, 2),
			want: []pkt{{fourcc: "Opus", typ: pktMultichannelConfig, raw: 4, data: "\x00\x02"}}},
		{name: "ex modex", in: cat(exAudio(exModEx), modExNano(20_833, exAudioCodedFrames), "Opus", 0xfc),
			want: []pkt{{fourcc: "Opus", typ: pktCodedFrames, raw: 1, nanos: 20_833, data: "\xfc"}},
			cuts: []trunc{{1, "flv audio: ModEx data size missing"}, {3, "ModEx data of 3 bytes past the end"}, {5, "ModEx type and packet type byte missing"}, {6, "FourCC truncated (0 of 4 bytes)"}}},
		{name: "ex modex 16-bit size", in: cat(exAudio(exModEx), 0xff, u16(255), bytes.Repeat([]byte{1}, 256), 1<<4|exAudioSeqEnd, "fLaC"),
			want: []pkt{{fourcc: "fLaC", typ: pktSeqEnd, raw: 2}},
			cuts: []trunc{{3, "ModEx 16-bit data size truncated (1 of 2 bytes)"}, {100, "ModEx data of 256 bytes past the end of the message (96 left)"}}},

		// Multitrack (OBS's extra audio tracks are ExHeader "mp4a" OneTrack).
		{name: "multitrack one track mp4a (OBS)", in: cat(exAudio(exAudioMultitrack), mtByte(mtOneTrack, exAudioCodedFrames), "mp4a", 1, 0x21, 0x10),
			want: []pkt{{track: 1, fourcc: "mp4a", typ: pktCodedFrames, raw: 1, multi: true, data: "\x21\x10"}},
			cuts: []trunc{{1, "flv audio: Multitrack type byte missing"}, {4, "Multitrack FourCC truncated (2 of 4 bytes)"}, {6, "Multitrack trackId missing"}}},
		{name: "multitrack many tracks", in: cat(exAudio(exAudioMultitrack), mtByte(mtManyTracks, exAudioSeqStart), "mp4a", 1, u24(2), asc, 2, u24(2), 0x12, 0x10),
			want: []pkt{{track: 1, fourcc: "mp4a", typ: pktSeqStart, multi: true, data: asc}, {track: 2, fourcc: "mp4a", typ: pktSeqStart, multi: true, data: "\x12\x10"}},
			cuts: []trunc{{8, "Multitrack track 1 size truncated (1 of 3 bytes)"}, {10, "Multitrack track 1 size 2 past the end of the message (0 left)"}, {13, "Multitrack track 2 size truncated (0 of 3 bytes)"}}},
		{name: "multitrack many tracks many codecs", in: cat(exAudio(exAudioMultitrack), mtByte(mtManyTracksManyCodecs, exAudioCodedFrames),
			"Opus", 0, u24(1), 0xfc, "ac-3", 1, u24(2), 0x0b, 0x77),
			want: []pkt{{track: 0, fourcc: "Opus", typ: pktCodedFrames, raw: 1, multi: true, data: "\xfc"}, {track: 1, fourcc: "ac-3", typ: pktCodedFrames, raw: 1, multi: true, data: "\x0b\x77"}},
			cuts: []trunc{{5, "Multitrack track FourCC truncated (3 of 4 bytes)"}, {13, "Multitrack track FourCC truncated (2 of 4 bytes)"}}},
		{name: "multitrack multichannel per track", in: cat(exAudio(exAudioMultitrack), mtByte(mtManyTracks, exAudioMultichannelConfig), "Opus",
			0, u24(2), channelOrderUnspecified, 2, 1, u24(3), channelOrderCustom, 2, 0),
			isErr: "flv audio: track 1 Opus: MultichannelConfig: channel mapping truncated (1 of 2 bytes)"},
		{name: "multitrack with modex", in: cat(exAudio(exModEx), modExNano(3, exAudioMultitrack), mtByte(mtOneTrack, exAudioSeqEnd), "mp4a", 4),
			want: []pkt{{track: 4, fourcc: "mp4a", typ: pktSeqEnd, raw: 2, nanos: 3, multi: true}}},
		{name: "multitrack nested", in: cat(exAudio(exAudioMultitrack), mtByte(mtOneTrack, exAudioMultitrack), "mp4a", 0), isErr: "Multitrack packet type 5 not allowed inside Multitrack"},
		{name: "multitrack reserved type", in: cat(exAudio(exAudioMultitrack), mtByte(9, 0), "mp4a", 0), isErr: "AvMultitrackType 9"},
	}
}

func TestParseAudioMessage(t *testing.T) {
	runMsgCases(t, parseAudioMessage, audioCases())
}

// TestParseMessageCallbackError: every packet names its kind, and fn's
// error stops the parse and comes back unchanged.
func TestParseMessageCallbackError(t *testing.T) {
	stop := errors.New("stop")
	check := func(cases []msgCase, parse func([]byte, func(trackPacket) error) error, kind segmenter.Kind) {
		for _, c := range cases {
			if len(c.want) == 0 {
				continue
			}
			calls := 0
			err := parse(c.in, func(p trackPacket) error {
				calls++
				if p.kind != kind {
					t.Errorf("%s: kind %v, want %v", c.name, p.kind, kind)
				}
				return stop
			})
			if err != stop || calls != 1 {
				t.Errorf("%s: %v after %d calls", c.name, err, calls)
			}
		}
	}
	check(videoCases(), parseVideoMessage, segmenter.Video)
	check(audioCases(), parseAudioMessage, segmenter.Audio)
}

// TestParseMessageAllocs: parsing any layout allocates nothing.
func TestParseMessageAllocs(t *testing.T) {
	var msgs [][]byte
	var kinds []bool
	for _, c := range videoCases() {
		if c.isErr == "" {
			msgs, kinds = append(msgs, c.in), append(kinds, true)
		}
	}
	for _, c := range audioCases() {
		if c.isErr == "" {
			msgs, kinds = append(msgs, c.in), append(kinds, false)
		}
	}
	var n, size int
	fn := func(p trackPacket) error {
		n++
		size += len(p.data) + int(p.track)
		return nil
	}
	allocs := testing.AllocsPerRun(50, func() {
		for i, m := range msgs {
			var err error
			if kinds[i] {
				err = parseVideoMessage(m, fn)
			} else {
				err = parseAudioMessage(m, fn)
			}
			if err != nil {
				panic(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per run of %d messages", allocs, len(msgs))
	}
	if n == 0 || size == 0 {
		t.Fatal("no packets")
	}
	// A closure made per message, capturing the caller's locals (as a
	// handler's would), stays on the stack: fn does not escape.
	allocs = testing.AllocsPerRun(50, func() {
		for i, m := range msgs {
			var frames, bytes int
			var last trackPacket
			fn := func(p trackPacket) error {
				frames++
				bytes += len(p.data)
				last = p
				return nil
			}
			if kinds[i] {
				_ = parseVideoMessage(m, fn)
			} else {
				_ = parseAudioMessage(m, fn)
			}
			size += frames + bytes + int(last.track)
		}
	})
	if allocs != 0 {
		t.Fatalf("per-message closures: %.1f allocations per run", allocs)
	}
	// The side parsers allocate nothing either.
	mc := []byte{channelOrderCustom, 2, 0, 1}
	allocs = testing.AllocsPerRun(50, func() {
		if _, err := parseMultichannelConfig(mc); err != nil {
			panic(err)
		}
		if _, _, err := parseColorInfo(colorInfoPQ[:]); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("adapters and side parsers: %.1f allocations per run", allocs)
	}
}

func TestParseMultichannelConfig(t *testing.T) {
	c, err := parseMultichannelConfig([]byte{channelOrderCustom, 3, 0, 1, 3, 0xee})
	if err != nil || c.order != channelOrderCustom || c.channels != 3 || !bytes.Equal(c.mapping, []byte{0, 1, 3}) || c.flags != 0 {
		t.Fatalf("custom: %+v %v", c, err)
	}
	c, err = parseMultichannelConfig([]byte{channelOrderNative, 6, 0, 0, 0, 0x3f})
	if err != nil || c.order != channelOrderNative || c.channels != 6 || c.mapping != nil || c.flags != 0x3f {
		t.Fatalf("native: %+v %v", c, err)
	}
	c, err = parseMultichannelConfig([]byte{channelOrderUnspecified, 2})
	if err != nil || c.order != 0 || c.channels != 2 {
		t.Fatalf("unspecified: %+v %v", c, err)
	}
	// A reserved order carries only the count.
	if c, err = parseMultichannelConfig([]byte{7, 2}); err != nil || c.order != 7 || c.channels != 2 {
		t.Fatalf("reserved order: %+v %v", c, err)
	}
	for _, bad := range [][]byte{nil, {channelOrderCustom}, {channelOrderCustom, 2, 0}, {channelOrderNative, 2, 0, 0, 0}} {
		if _, err := parseMultichannelConfig(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestParseColorInfo(t *testing.T) {
	obj := func(props ...any) []byte {
		return cat(append(append([]any{amf0Object}, props...), u16(0), amf0ObjectEnd)...)
	}
	prop := func(k string, v []byte) []byte { return cat(u16(len(k)), k, v) }
	num := func(v float64) []byte { return cat(amf0Number, f64(v)) }
	name := cat(amf0String, u16(9), "colorInfo")
	hlg := cat(name, cat(amf0ECMAArray, 0, 0, 0, 3), // ECMA array form; the count is a hint
		prop("colorConfig", obj(prop("transferCharacteristics", num(18)), prop("bitDepth", num(10)), prop("colorPrimaries", num(9)), prop("matrixCoefficients", num(9)))),
		prop("hdrCll", obj(prop("maxFall", num(400)), prop("maxCLL", num(1000)))),
		prop("hdrMdcv", obj(prop("redX", num(0.708)), prop("redY", num(0.292)), prop("greenX", num(0.17)), prop("greenY", num(0.797)),
			prop("blueX", num(0.131)), prop("blueY", num(0.046)), prop("whitePointX", num(0.3127)), prop("whitePointY", num(0.329)),
			prop("maxLuminance", num(1000)), prop("minLuminance", num(0.0001)))),
		prop("extra", cat(amf0String, u16(2), "hi")),
		u16(0), amf0ObjectEnd)

	c, ok, err := parseColorInfo(colorInfoPQ)
	if err != nil || !ok || !c.set || c.transfer() != "PQ" || c.bitDepth != 10 || c.colorPrimaries != 9 || c.matrixCoefficients != 9 {
		t.Fatalf("PQ: %+v %v %v", c, ok, err)
	}
	c, ok, err = parseColorInfo(hlg)
	want := colorInfo{set: true, bitDepth: 10, colorPrimaries: 9, transferCharacteristics: 18, matrixCoefficients: 9, maxFALL: 400, maxCLL: 1000,
		redX: 0.708, redY: 0.292, greenX: 0.17, greenY: 0.797, blueX: 0.131, blueY: 0.046, whiteX: 0.3127, whiteY: 0.329, maxLuminance: 1000, minLuminance: 0.0001}
	if err != nil || !ok || c != want || c.transfer() != "HLG" {
		t.Fatalf("HLG:\n got %+v %v %v\nwant %+v", c, ok, err, want)
	}
	// Resets: Undefined, null, an empty object.
	for _, v := range [][]byte{{amf0Undefined}, {amf0Null}, obj()} {
		if c, ok, err := parseColorInfo(cat(name, v)); err != nil || !ok || c.set || c.transfer() != "SDR" {
			t.Errorf("reset %x: %+v %v %v", v, c, ok, err)
		}
	}
	// SDR, other names around it, a non-number where a number goes.
	sdr := cat(amf0String, u16(5), "other", amf0Boolean, 1,
		name, obj(prop("colorConfig", obj(prop("transferCharacteristics", num(1)), prop("bitDepth", cat(amf0String, u16(1), "8"))))))
	if c, ok, err := parseColorInfo(sdr); err != nil || !ok || c.transfer() != "SDR" || c.transferCharacteristics != 1 || c.bitDepth != 0 {
		t.Fatalf("SDR: %+v %v %v", c, ok, err)
	}
	// Out-of-range code points and NaN read as 0.
	odd := cat(name, obj(prop("colorConfig", obj(prop("transferCharacteristics", num(1e9)), prop("bitDepth", num(math.NaN()))))))
	if c, _, err := parseColorInfo(odd); err != nil || c.transferCharacteristics != 0 || c.bitDepth != 0 {
		t.Fatalf("odd: %+v %v", c, err)
	}
	if _, ok, err := parseColorInfo(cat(amf0String, u16(1), "x", amf0Number, f64(1))); err != nil || ok {
		t.Fatalf("no colorInfo: %v %v", ok, err)
	}
	// Every truncation is an error.
	for _, b := range [][]byte{colorInfoPQ, hlg} {
		for n := 1; n < len(b); n++ {
			if _, _, err := parseColorInfo(b[:n]); err == nil {
				t.Fatalf("prefix of %d bytes of %x accepted", n, b)
			}
		}
	}
	for _, bad := range [][]byte{
		{amf0Number},                                // a name that is not a string
		cat(name, amf0Number, f64(1)),               // colorInfo not an object
		cat(name, obj(prop("colorConfig", num(3)))), // colorConfig not an object
	} {
		if _, _, err := parseColorInfo(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

// obsMessages is OBS's multitrack layout built from a real FLV (ffmpeg's
// H.264/AAC): track 0 as the legacy tags themselves, tracks 1 and 2 as
// Multitrack OneTrack "avc1" copies of each video tag, and one extra audio
// track as ExHeader Multitrack OneTrack "mp4a" copies of each audio tag.
// legacy counts the track-0 frames.
func obsMessages(t testing.TB) (msgs []flvTag, legacy int) {
	for _, tag := range readFLV(t, "../segmenter/testdata/main.flv") {
		b := tag.body
		switch tag.typ {
		case 9:
			msgs = append(msgs, tag)
			if b[1] == avcNALU {
				legacy++
			}
			for track := 1; track <= 2; track++ {
				var m []byte
				hdr := exVideo(int(b[0]>>4), exVideoMultitrack)
				switch b[1] {
				case avcSeqHeader:
					m = cat(hdr, mtByte(mtOneTrack, exSeqStart), "avc1", track, b[5:])
				case avcNALU:
					m = cat(hdr, mtByte(mtOneTrack, exCodedFrames), "avc1", track, b[2:5], b[5:])
				default:
					m = cat(hdr, mtByte(mtOneTrack, exSeqEnd), "avc1", track)
				}
				msgs = append(msgs, flvTag{typ: 9, ts: tag.ts, body: m})
			}
		case 8:
			msgs = append(msgs, tag)
			if b[1] == 1 {
				legacy++
			}
			pt := exAudioCodedFrames
			if b[1] == 0 {
				pt = exAudioSeqStart
			}
			msgs = append(msgs, flvTag{typ: 8, ts: tag.ts, body: cat(exAudio(exAudioMultitrack), mtByte(mtOneTrack, pt), "mp4a", 1, b[2:])})
		}
	}
	return msgs, legacy
}

// TestOBSLayout: every track of OBS's layout comes through the parser on
// its own, and the handler keeps track 0 whole (issue 13: the Multitrack
// renditions and the extra ExHeader "mp4a" track switched track 0 off).
func TestOBSLayout(t *testing.T) {
	msgs, legacy := obsMessages(t)
	type key struct {
		kind  segmenter.Kind
		track uint8
		typ   packetType
	}
	count := map[key]int{}
	var cts int64
	fn := func(p trackPacket) error {
		count[key{p.kind, p.track, p.typ}]++
		cts += int64(p.cts)
		return nil
	}
	for _, m := range msgs {
		parse := parseAudioMessage
		if m.typ == 9 {
			parse = parseVideoMessage
		}
		if err := parse(m.body, fn); err != nil {
			t.Fatalf("%x: %v", m.body[:min(len(m.body), 16)], err)
		}
	}
	v0, a0 := count[key{segmenter.Video, 0, pktCodedFrames}], count[key{segmenter.Audio, 0, pktCodedFrames}]
	if v0 == 0 || a0 == 0 || v0+a0 != legacy || cts == 0 {
		t.Fatalf("track 0: %d video + %d audio frames of %d; counts %v", v0, a0, legacy, count)
	}
	for _, k := range []key{{segmenter.Video, 1, pktCodedFrames}, {segmenter.Video, 2, pktCodedFrames}} {
		if count[k] != v0 {
			t.Errorf("video track %d: %d frames, want %d", k.track, count[k], v0)
		}
	}
	if n := count[key{segmenter.Audio, 1, pktCodedFrames}]; n != a0 {
		t.Errorf("audio track 1: %d frames, want %d", n, a0)
	}
	for _, k := range []key{{segmenter.Video, 0, pktSeqStart}, {segmenter.Video, 1, pktSeqStart}, {segmenter.Video, 2, pktSeqStart}, {segmenter.Audio, 0, pktSeqStart}, {segmenter.Audio, 1, pktSeqStart}} {
		if count[k] != 1 {
			t.Errorf("%v track %d: %d sequence starts", k.kind, k.track, count[k])
		}
	}

	// Through today's handler: no track ignored, every track-0 frame in.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &handler{ctx: context.Background(), cfg: &Config{}, log: log, done: func() {}, server: &Server{}, stats: &publishStats{}, stream: "live/obs"}
	h.sess = segSession{segmenter.New(segmenter.Config{Expect: segmenter.Video | segmenter.Audio, Logger: log}, countSink{})}
	for _, m := range msgs {
		var err error
		if m.typ == 9 {
			err = h.OnVideo(m.ts, bytes.NewReader(m.body))
		} else {
			err = h.OnAudio(m.ts, bytes.NewReader(m.body))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if h.frames != uint64(legacy) {
		t.Fatalf("handler: %d track-0 frames of %d", h.frames, legacy)
	}
	// Every track is known, configured and counted; track 0 alone feeds
	// the playlist.
	want := map[key]int{{segmenter.Video, 0, 0}: v0, {segmenter.Video, 1, 0}: v0, {segmenter.Video, 2, 0}: v0, {segmenter.Audio, 0, 0}: a0, {segmenter.Audio, 1, 0}: a0}
	got := 0
	for _, ts := range [][]*track{h.videoTracks, h.audioTracks} {
		for _, tr := range ts {
			st := tr.stat.snapshot()
			n, ok := want[key{tr.kind, tr.id, 0}]
			if !ok || st.Frames != uint64(n) || st.Skipped != "" || st.Codecs == "" || st.InPlaylist != (tr.id == 0) {
				t.Errorf("%s track %d: %+v, want %d frames, configured, in playlist %v", st.Kind, tr.id, st, n, tr.id == 0)
			}
			got++
		}
	}
	if got != len(want) {
		t.Errorf("%d tracks, want %d", got, len(want))
	}
}

// amf0Meta builds an onMetaData body by hand: values are AMF0-encoded
// bytes, keyed in the given order.
func amf0Obj(marker byte, kv ...any) []byte {
	b := []byte{marker}
	if marker == amf0ECMAArray {
		b = append(b, 0, 0, 0, byte(len(kv)/2))
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		b = append(b, cat(u16(len(k)), k, kv[i+1].([]byte))...)
	}
	return append(b, 0, 0, amf0ObjectEnd)
}

func amf0Num(v float64) []byte { return cat(amf0Number, f64(v)) }
func amf0Str(s string) []byte  { return cat(amf0String, u16(len(s)), s) }
func fourccNum(s string) float64 {
	return float64(uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3]))
}

func TestParseMetadataEnhanced(t *testing.T) {
	onMeta := func(kv ...any) []byte { return cat(amf0Str("onMetaData"), amf0Obj(amf0ECMAArray, kv...)) }
	md, err := parseMetadata(onMeta(
		"width", amf0Num(1920), "height", amf0Num(1080),
		"videocodecid", amf0Num(fourccNum("hvc1")), "audiocodecid", amf0Num(fourccNum("Opus")),
		"videoTrackIdInfoMap", amf0Obj(amf0Object,
			"2", amf0Obj(amf0Object, "width", amf0Num(640), "height", amf0Num(360), "videodatarate", amf0Num(800), "videocodecid", amf0Num(fourccNum("av01"))),
			"1", amf0Obj(amf0Object, "width", amf0Num(1280), "height", amf0Num(720), "framerate", amf0Num(30), "videodatarate", amf0Num(2500),
				"videocodecid", amf0Num(fourccNum("avc1")), "name", amf0Str("720p")),
			"x", amf0Num(1), // not a trackId
			"3", amf0Num(7), // not an object
		),
		"audioTrackIdInfoMap", amf0Obj(amf0ECMAArray,
			"1", amf0Obj(amf0Object, "audiodatarate", amf0Num(160), "channels", amf0Num(2), "samplerate", amf0Num(48000),
				"audiocodecid", amf0Num(fourccNum("mp4a")), "language", amf0Str("en")),
		),
	))
	if err != nil {
		t.Fatal(err)
	}
	if md.Width != 1920 || md.VideoCodec != fourccHEVC || md.AudioCodec != [4]byte{'O', 'p', 'u', 's'} || md.Tracks != segmenter.Video|segmenter.Audio {
		t.Fatalf("top level: %+v", md)
	}
	wantV := []TrackInfo{
		{ID: 1, Codec: fourccAVC, Width: 1280, Height: 720, FrameRate: 30, Bitrate: 2500, Name: "720p"},
		{ID: 2, Codec: [4]byte{'a', 'v', '0', '1'}, Width: 640, Height: 360, Bitrate: 800},
	}
	wantA := []TrackInfo{{ID: 1, Codec: fourccAAC, Bitrate: 160, Channels: 2, SampleRate: 48000, Language: "en"}}
	if fmt.Sprint(md.VideoTrackInfo()) != fmt.Sprint(wantV) || fmt.Sprint(md.AudioTrackInfo()) != fmt.Sprint(wantA) {
		t.Fatalf("tracks:\n%+v\n%+v", md.VideoTrackInfo(), md.AudioTrackInfo())
	}
	// Metadata stays comparable (the handler compares announcements).
	md2, _ := parseMetadata(onMeta("videoTrackIdInfoMap", amf0Obj(amf0Object, "1", amf0Obj(amf0Object, "width", amf0Num(1280)))))
	if md2 == md || md2.NumVideoTracks != 1 || md2.VideoTracks[0].Width != 1280 {
		t.Fatalf("%+v", md2)
	}

	// Codec ids: legacy numbers, FourCC numbers, FourCC strings.
	for _, c := range []struct {
		v, a         []byte
		vWant, aWant string
		tracks       segmenter.Tracks
	}{
		{amf0Num(7), amf0Num(10), "avc1", "mp4a", segmenter.Video | segmenter.Audio},
		{amf0Num(12), amf0Num(2), "hvc1", ".mp3", segmenter.Video | segmenter.Audio},
		{amf0Num(fourccNum("avc1")), amf0Num(14), "avc1", ".mp3", segmenter.Video | segmenter.Audio},
		{amf0Num(fourccNum("vp09")), amf0Num(fourccNum("fLaC")), "vp09", "fLaC", segmenter.Video | segmenter.Audio},
		{amf0Str("av01"), amf0Str("ec-3"), "av01", "ec-3", segmenter.Video | segmenter.Audio},
		{amf0Num(fourccNum(".mp3")), amf0Num(fourccNum("ac-3")), ".mp3", "ac-3", segmenter.Audio}, // an audio FourCC as the video codec
		{amf0Num(4), amf0Num(11), "", "", 0},                                                      // VP6, Speex: no FourCC
		{amf0Num(1 << 24), amf0Num(1.5e9 + 0.5), "", "", 0},                                       // not printable, not an integer
		{amf0Str("toolong"), amf0Num(-1), "", "", 0},
	} {
		md, err := parseMetadata(onMeta("videocodecid", c.v, "audiocodecid", c.a))
		str := func(f [4]byte) string {
			if f == ([4]byte{}) {
				return ""
			}
			return string(f[:])
		}
		if err != nil || str(md.VideoCodec) != c.vWant || str(md.AudioCodec) != c.aWant || md.Tracks != c.tracks {
			t.Errorf("%x %x: %q %q %v (%v), want %q %q %v", c.v, c.a, md.VideoCodec, md.AudioCodec, md.Tracks, err, c.vWant, c.aWant, c.tracks)
		}
	}

	// More tracks than Metadata keeps: the lowest trackIds.
	var kv []any
	for i := 20; i >= 1; i-- {
		kv = append(kv, fmt.Sprint(i), amf0Obj(amf0Object, "width", amf0Num(float64(i))))
	}
	md, err = parseMetadata(onMeta("videoTrackIdInfoMap", amf0Obj(amf0Object, kv...)))
	if err != nil || md.NumVideoTracks != MaxTrackInfo || md.VideoTracks[0].ID != 1 || md.VideoTracks[MaxTrackInfo-1].ID != MaxTrackInfo {
		t.Fatalf("many tracks: %+v %v", md.VideoTrackInfo(), err)
	}
}
