package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	amf0 "github.com/yutopp/go-amf0"

	"github.com/fount-live/fount/segmenter"
)

func TestParseVideoTag(t *testing.T) {
	nalu := []byte{0, 0, 0, 2, 0x65, 0x88}
	cases := []struct {
		name    string
		in      []byte
		want    videoTag
		wantErr string
	}{
		{"avc seq header", append([]byte{0x17, 0, 0, 0, 0}, 1, 0x64), videoTag{kind: tagConfig, key: true, data: []byte{1, 0x64}}, ""},
		{"avc keyframe cts 66", append([]byte{0x17, 1, 0, 0, 66}, nalu...), videoTag{kind: tagFrame, key: true, cts: 66, data: nalu}, ""},
		{"avc inter negative cts", append([]byte{0x27, 1, 0xff, 0xff, 0xdf}, nalu...), videoTag{kind: tagFrame, cts: -33, data: nalu}, ""},
		{"avc end of sequence", []byte{0x17, 2, 0, 0, 0}, videoTag{kind: tagSkip}, ""},
		{"command frame", []byte{0x57, 0}, videoTag{kind: tagSkip}, ""},
		{"enhanced avc seq start", append([]byte{0x90, 'a', 'v', 'c', '1'}, 1, 0x64), videoTag{kind: tagConfig, key: true, data: []byte{1, 0x64}}, ""},
		{"enhanced avc coded frames", append([]byte{0x91, 'a', 'v', 'c', '1', 0, 0, 33}, nalu...), videoTag{kind: tagFrame, key: true, cts: 33, data: nalu}, ""},
		{"enhanced avc frames x", append([]byte{0xa3, 'a', 'v', 'c', '1'}, nalu...), videoTag{kind: tagFrame, data: nalu}, ""},
		{"empty", nil, videoTag{}, "empty message"},
		{"short avc", []byte{0x17, 1, 0}, videoTag{}, "shorter than its 5-byte header"},
		{"unknown avc packet type skipped", []byte{0x17, 9, 0, 0, 0}, videoTag{kind: tagSkip}, ""},
		{"vp6", []byte{0x14, 0}, videoTag{}, "VP6"},
		{"enhanced hevc", []byte{0x90, 'h', 'v', 'c', '1', 1}, videoTag{}, `"hvc1"`},
		{"enhanced short", []byte{0x90, 'a', 'v'}, videoTag{}, "FourCC truncated (2 of 4 bytes)"},
		{"enhanced frames no cts", []byte{0x91, 'a', 'v', 'c', '1', 0}, videoTag{}, "composition time truncated (1 of 3 bytes)"},
		// Issue 13: OBS's Multitrack renditions (tracks 1..) and a ModEx
		// prefix no longer read as an unsupported FourCC.
		{"multitrack track 1 skipped", append([]byte{0x96, mtOneTrack<<4 | exCodedFramesX, 'a', 'v', 'c', '1', 1}, nalu...), videoTag{kind: tagSkip}, ""},
		{"multitrack track 0 kept", append([]byte{0x96, mtManyTracks<<4 | exCodedFramesX, 'a', 'v', 'c', '1', 0, 0, 0, 6}, nalu...), videoTag{kind: tagFrame, key: true, data: nalu}, ""},
		{"modex avc frames", append([]byte{0x97, 2, 0, 0x01, 0xf4, exCodedFrames, 'a', 'v', 'c', '1', 0, 0, 33}, nalu...), videoTag{kind: tagFrame, key: true, cts: 33, data: nalu}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseVideoTag(c.in)
			if c.wantErr != "" {
				if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.wantErr)) {
					t.Fatalf("err %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.kind != c.want.kind || got.key != c.want.key || got.cts != c.want.cts || !bytes.Equal(got.data, c.want.data) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
	if _, err := parseVideoTag([]byte{0x12, 0}); !errors.Is(err, errUnsupportedCodec) {
		t.Errorf("H.263 is not marked unsupported: %v", err)
	}
}

func TestParseAudioTag(t *testing.T) {
	if a, err := parseAudioTag([]byte{0xaf, 0, 0x11, 0x90}); err != nil || a.kind != tagConfig || !bytes.Equal(a.data, []byte{0x11, 0x90}) {
		t.Fatalf("aac config: %+v %v", a, err)
	}
	if a, err := parseAudioTag([]byte{0xaf, 1, 0x21, 0x10}); err != nil || a.kind != tagFrame || !bytes.Equal(a.data, []byte{0x21, 0x10}) {
		t.Fatalf("aac frame: %+v %v", a, err)
	}
	// ExHeader "mp4a" on track 0 is AAC too.
	if a, err := parseAudioTag([]byte{0x90, 'm', 'p', '4', 'a', 0x11, 0x90}); err != nil || a.kind != tagConfig || !bytes.Equal(a.data, []byte{0x11, 0x90}) {
		t.Fatalf("ExHeader aac config: %+v %v", a, err)
	}
	for _, in := range [][]byte{{0x2f, 0}, {0x91, 'O', 'p', 'u', 's', 0}, {0x7e, 0}} {
		if _, err := parseAudioTag(in); !errors.Is(err, errUnsupportedCodec) {
			t.Errorf("%x: %v, want unsupported codec", in, err)
		}
	}
	for _, in := range [][]byte{{0xaf}, {0x9f, 0}} {
		if _, err := parseAudioTag(in); err == nil || errors.Is(err, errUnsupportedCodec) {
			t.Errorf("%x: %v, want a malformed-tag error", in, err)
		}
	}
	// Nothing for the segmenter, no error: RTMP's silence message, an
	// unknown AAC packet type, and (issue 13) OBS's extra audio tracks.
	for _, in := range [][]byte{nil, {0xaf, 7}, {0x95, mtOneTrack<<4 | exAudioCodedFrames, 'm', 'p', '4', 'a', 1, 0x21}} {
		if a, err := parseAudioTag(in); err != nil || a.kind != tagSkip || a.data != nil {
			t.Errorf("%x: %+v %v, want nothing", in, a, err)
		}
	}
}

func TestTimelineUnwrap(t *testing.T) {
	var tl timeline
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	steps := []struct {
		in   uint32
		want time.Duration
	}{
		{math.MaxUint32 - 40, ms(math.MaxUint32 - 40)}, // starts near the wrap
		{math.MaxUint32 - 60, ms(math.MaxUint32 - 60)}, // small step back (A/V interleave)
		{math.MaxUint32, ms(math.MaxUint32)},
		{25, ms(math.MaxUint32 + 26)}, // wrapped
		{1000, ms(math.MaxUint32 + 1001)},
	}
	for i, s := range steps {
		if got := tl.unwrap(s.in); got != s.want {
			t.Fatalf("step %d: unwrap(%d) = %v, want %v", i, s.in, got, s.want)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	var buf bytes.Buffer
	enc := amf0.NewEncoder(&buf)
	enc.Encode("onMetaData")
	enc.Encode(amf0.ECMAArray{"width": 1280.0, "height": 720.0, "framerate": 30.0, "videocodecid": 7.0, "audiocodecid": 10.0, "encoder": "obs-output module"})
	md, err := parseMetadata(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if md.Tracks != segmenter.Video|segmenter.Audio || md.Width != 1280 || md.Height != 720 || md.FrameRate != 30 || md.Encoder != "obs-output module" {
		t.Fatalf("%+v", md)
	}
	// Enhanced RTMP announces FourCCs; HEVC is not a track fount will use.
	buf.Reset()
	enc.Encode("onMetaData")
	enc.Encode(amf0.ECMAArray{"videocodecid": float64(uint32('h')<<24 | uint32('v')<<16 | uint32('c')<<8 | uint32('1')), "audiocodecid": "mp4a"})
	if md, err := parseMetadata(buf.Bytes()); err != nil || md.Tracks != segmenter.Audio {
		t.Fatalf("enhanced: %+v %v", md, err)
	}
	for _, bad := range [][]byte{nil, {2, 0, 3, 'a', 'b', 'c'}, {2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 0, 0}} {
		if _, err := parseMetadata(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"show", "my-stream_1", "a.b", "A9"} {
		if !validName(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", ".", "..", "a..b", "a/b", "a b", "a%2f", "ü", "a\x00", string(make([]byte, 129))} {
		if validName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// hvcCNoSEI reads a real HEVCDecoderConfigurationRecord (segmenter's test
// data, made by libx265) and drops its SEI arrays: x265's settings SEI is
// 2 KB, which only slows fuzzing down.
func hvcCNoSEI(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "segmenter", "testdata", "hevc", name+".hvcC"))
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte{}, b[:23]...)
	kept := 0
	for p, i := 23, 0; i < int(b[22]); i++ {
		start := p
		n := int(binary.BigEndian.Uint16(b[p+1:]))
		p += 3
		for j := 0; j < n; j++ {
			p += 2 + int(binary.BigEndian.Uint16(b[p:]))
		}
		if typ := b[start] & 0x3f; typ != 39 && typ != 40 {
			out = append(out, b[start:p]...)
			kept++
		}
	}
	out[22] = byte(kept)
	return out
}

func TestHEVCRefusalLog(t *testing.T) {
	hvcC := hvcCNoSEI(t, "main10_1080")
	seqStart := append([]byte{0x90, 'h', 'v', 'c', '1'}, hvcC...)
	_, err := parseVideoTag(seqStart)
	if !errors.Is(err, errUnsupportedCodec) {
		t.Fatalf("hvc1 sequence start: %v", err)
	}
	const want = "video track refused: HEVC Main 10 1920x1080 (hvc1.2.4.L120.90) is not supported, send H.264"
	if got := refusedTrackMessage(err); got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	// The same stream with the non-standard FLV codec id 12.
	_, err = parseVideoTag(append([]byte{0x1c, 0, 0, 0, 0}, hvcC...))
	if got := refusedTrackMessage(err); got != want {
		t.Fatalf("codec id 12: %q (%v)", got, err)
	}
	// A record that cannot be described is still refused, with the reason.
	_, err = parseVideoTag(append([]byte{0x90, 'h', 'v', 'c', '1'}, hvcC[:30]...))
	if !errors.Is(err, errUnsupportedCodec) || refusedTrackMessage(err) != "" || !strings.Contains(err.Error(), "hevc config:") {
		t.Fatalf("broken record: %v", err)
	}

	// Through the handler: one line per publisher, however many HEVC tags.
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := &handler{ctx: context.Background(), cfg: &Config{}, log: log, done: func() {}, server: &Server{}, stats: &publishStats{}, stream: "live/x"}
	h.sess = segSession{segmenter.New(segmenter.Config{Expect: segmenter.Video | segmenter.Audio, Logger: log}, countSink{})}
	frame := []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0, 0, 0, 0, 3, 0x26, 1, 0xaf}
	for i, tag := range [][]byte{seqStart, frame, frame, seqStart} {
		if err := h.OnVideo(uint32(i*33), bytes.NewReader(tag)); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), want); n != 1 || strings.Count(logs.String(), "\n") != 1 {
		t.Fatalf("%d refusal lines in\n%s", n, logs.String())
	}
	if h.ignored&segmenter.Video == 0 {
		t.Fatal("video track not ignored")
	}
}

// TestMetadataHugeClaims: AMF0 lengths and counts that exceed the message
// must be refused before go-amf0 allocates them (found by FuzzParseTags: a
// strict array claiming 2^31-1 elements was a fatal out-of-memory).
func TestMetadataHugeClaims(t *testing.T) {
	name := []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'}
	deep := bytes.Repeat([]byte{amf0StrictArray, 0, 0, 0, 1}, 100_000)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"strict array", append(bytes.Clone(name), amf0StrictArray, 0x7f, 0xff, 0xff, 0xff), "strict array of 2147483647 elements in 0 bytes"},
		{"nested strict array", append(bytes.Clone(name), amf0ECMAArray, 0, 0, 0, 1, 0, 1, 'a', amf0StrictArray, 0xff, 0xff, 0xff, 0xff, 5), "strict array of 4294967295 elements in 1 bytes"},
		{"long string", append(bytes.Clone(name), amf0LongString, 0xff, 0xff, 0xff, 0xf0), "string of 4294967280 bytes in 0"},
		{"XML document", append(bytes.Clone(name), amf0XMLDocument, 0xff, 0xff, 0xff, 0xf0, 'x'), "string of 4294967280 bytes in 1"},
		{"long string name", []byte{amf0LongString, 0x7f, 0xff, 0xff, 0xff}, "string of 2147483647 bytes in 0"},
		{"truncated number", append(bytes.Clone(name), amf0Number, 1, 2), "truncated"},
		{"deep nesting", append(bytes.Clone(name), deep...), "nested deeper than 32"},
		{"deep objects", append(bytes.Clone(name), bytes.Repeat([]byte{amf0Object, 0, 1, 'k'}, 100_000)...), "nested deeper than 32"},
		{"movie clip", append(bytes.Clone(name), 4), "unsupported marker 0x4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			_, err := parseMetadata(tc.b)
			runtime.ReadMemStats(&m1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if a := m1.TotalAlloc - m0.TotalAlloc; a > 1<<20 {
				t.Fatalf("%d bytes allocated", a)
			}
		})
	}
	// Real metadata with nested values still parses.
	var buf bytes.Buffer
	enc := amf0.NewEncoder(&buf)
	enc.Encode("onMetaData")
	enc.Encode(amf0.ECMAArray{"width": 640.0, "stereo": true, "encoder": "Lavf", "date": nil})
	if md, err := parseMetadata(buf.Bytes()); err != nil || md.Width != 640 || md.Encoder != "Lavf" {
		t.Fatalf("%+v %v", md, err)
	}
	// Every AMF0 type the walker knows, nested, in bounds.
	valid := append(bytes.Clone(name), amf0Object, 0, 1, 'o', amf0TypedObject, 0, 1, 'C', 0, 1, 'n', amf0Number, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, amf0ObjectEnd,
		0, 1, 'a', amf0StrictArray, 0, 0, 0, 3, amf0Boolean, 1, amf0Null, amf0Date, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 1, 'l', amf0LongString, 0, 0, 0, 1, 'x', 0, 1, 'r', amf0Reference, 0, 1, 0, 1, 'u', amf0Undefined, 0, 0, amf0ObjectEnd)
	if err := checkAMF0(valid, 2); err != nil {
		t.Fatalf("valid AMF0 refused: %v", err)
	}
	for n := range len(valid) - 1 {
		if err := checkAMF0(valid[:n], 2); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
	// go-amf0 panics (reflect.Value.Index on an interface) on this valid
	// AMF0, an object and a strict array in an ECMA array; parseMetadata's
	// own reader reads it.
	// (This is what amf0.NewEncoder writes for {"obj": {"k": 2}, "width":
	// 640, "stereo": true, "encoder": "Lavf", "list": [1, "a", null]}.)
	keyframes, _ := hex.DecodeString("02000a6f6e4d65746144617461080000000500036f626a0300016b00400000000000000000000900057769647468004084000000000000000673746572656f01010007656e636f6465720200044c61766600046c6973740a00000003003ff00000000000000200016105000009")
	if err := checkAMF0(keyframes, 2); err != nil {
		t.Fatal(err)
	}
	if md, err := parseMetadata(keyframes); err != nil || md.Width != 640 || md.Encoder != "Lavf" {
		t.Fatalf("nested strict array: %+v %v", md, err)
	}
}

// tagSeeds returns tag bodies for FuzzParseTags: the real tags of an
// ffmpeg-made FLV (frames cut short: their payload is not parsed here) and
// Enhanced RTMP headers (FourCCs avc1, hvc1, av01, vp09 and every packet
// type; audio ex headers) built around real payloads.
func tagSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	var avcC, nalus, asc []byte
	seen := map[string]bool{}
	for _, tag := range readFLV(t, "../segmenter/testdata/main.flv") {
		body := tag.body
		var k string
		switch tag.typ {
		case 9:
			k = fmt.Sprintf("v%x/%d", body[0], body[1])
			if body[1] == 0 {
				avcC = body[5:]
			} else if nalus == nil && body[0]>>4 == 1 {
				nalus = body[5:min(len(body), 64)]
			}
		case 8:
			k = fmt.Sprintf("a%x/%d", body[0], body[1])
			if body[1] == 0 {
				asc = body[2:]
			}
		default:
			k = "script"
		}
		if !seen[k] {
			seen[k] = true
			seeds = append(seeds, body[:min(len(body), 64)])
		}
	}
	hvcC := hvcCNoSEI(t, "main10_1080")
	configs := map[string][]byte{
		"avc1": avcC,
		"hvc1": hvcC,
		"av01": {0x81, 0x08, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x42, 0xab, 0xbf, 0xc3, 0x70, 0x0b, 0xe0}, // av1C with a sequence header OBU
		"vp09": {1, 0, 0, 0, 0x00, 0x1f, 0x80, 0x02, 0x02, 0x02, 0, 0},                                           // vpcC (FullBox)
	}
	for _, fourcc := range []string{"avc1", "hvc1", "av01", "vp09"} {
		for pkt := byte(0); pkt <= 7; pkt++ {
			for _, frameType := range []byte{1, 2, 5} {
				b := append([]byte{0x80 | frameType<<4 | pkt}, fourcc...)
				switch pkt {
				case exSeqStart:
					b = append(b, configs[fourcc]...)
				case exCodedFrames:
					b = append(append(b, 0, 0, 66), nalus...)
				case exCodedFramesX, exMPEG2TSSeqStart:
					b = append(b, nalus...)
				case exMetadata:
					b = append(b, 2, 0, 9, 'c', 'o', 'l', 'o', 'r', 'I', 'n', 'f', 'o', 3, 0, 0, 9)
				}
				seeds = append(seeds, b)
			}
		}
	}
	seeds = append(seeds, append([]byte{0x1c, 0, 0, 0, 0}, hvcC...)) // HEVC with FLV id 12
	for _, a := range []struct {
		fourcc string
		body   []byte
	}{{"mp4a", asc}, {"Opus", []byte("OpusHead\x01\x02")}, {"fLaC", []byte("fLaC")}, {"ac-3", nil}, {".mp3", nil}} {
		for pkt := byte(0); pkt <= 2; pkt++ {
			seeds = append(seeds, append(append([]byte{flvSoundExHdr<<4 | pkt}, a.fourcc...), a.body...))
		}
	}
	// Enhanced RTMP v2 layouts: every case of the E-RTMP table tests
	// (Multitrack, ModEx, MultichannelConfig, colorInfo), OBS's layout.
	for _, c := range append(videoCases(), audioCases()...) {
		seeds = append(seeds, c.in)
	}
	obs, _ := obsMessages(t)
	for i, m := range obs {
		if i < 12 {
			seeds = append(seeds, m.body[:min(len(m.body), 64)])
		}
	}
	return seeds
}

func FuzzParseTags(f *testing.F) {
	for _, s := range tagSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		v, err := parseVideoTag(b)
		checkVideoTag(t, b, v, err)
		if v2, err2 := parseVideoTag(b); fmt.Sprint(v2, err2) != fmt.Sprint(v, err) {
			t.Fatal("video: not deterministic")
		}
		a, err := parseAudioTag(b)
		switch {
		case err != nil:
			if a.kind != tagSkip || a.data != nil {
				t.Fatalf("audio: %+v with error %v", a, err)
			}
		case a.kind == tagSkip:
		case !within(a.data, b):
			t.Fatalf("audio: data outside the tag")
		}
		checkMessage(t, b, parseVideoMessage, segmenter.Video)
		checkMessage(t, b, parseAudioMessage, segmenter.Audio)
		if c, err := parseMultichannelConfig(b); err == nil {
			if c.order == channelOrderCustom && (len(c.mapping) != int(c.channels) || !within(c.mapping, b)) || c.order != channelOrderCustom && c.mapping != nil {
				t.Fatalf("multichannel: %+v", c)
			}
		} else if c.channels != 0 || c.mapping != nil {
			t.Fatalf("multichannel: %+v with error %v", c, err)
		}
		if c, ok, err := parseColorInfo(b); err != nil && (ok || c != colorInfo{}) || !ok && c.set {
			t.Fatalf("colorInfo: %+v %v %v", c, ok, err)
		}
		if md, err := parseMetadata(b); err == nil {
			if md.Tracks&^(segmenter.Video|segmenter.Audio) != 0 || md.NumVideoTracks > MaxTrackInfo || md.NumAudioTracks > MaxTrackInfo {
				t.Fatalf("metadata: %+v", md)
			}
			for i := 1; i < md.NumVideoTracks; i++ {
				if md.VideoTracks[i].ID <= md.VideoTracks[i-1].ID {
					t.Fatalf("metadata: video tracks out of order: %+v", md.VideoTrackInfo())
				}
			}
		}
		if !bytes.Equal(in, b) {
			t.Fatal("input modified")
		}
	})
}

// checkMessage asserts what parseVideoMessage/parseAudioMessage promise
// for any input: packets of the kind asked for, data within the message,
// track 0 outside Multitrack, no more packets than bytes, an error only
// with the first bytes it names, determinism, fn's error returned as is,
// and the side parsers safe on what the packets carry.
func checkMessage(t *testing.T, b []byte, parse func([]byte, func(trackPacket) error) error, kind segmenter.Kind) {
	t.Helper()
	var pkts []trackPacket
	err := parse(b, func(p trackPacket) error {
		pkts = append(pkts, p)
		return nil
	})
	if len(pkts) > len(b) {
		t.Fatalf("%v: %d packets from %d bytes", kind, len(pkts), len(b))
	}
	for _, p := range pkts {
		switch {
		case p.kind != kind:
			t.Fatalf("%v: packet of kind %v", kind, p.kind)
		case !within(p.data, b):
			t.Fatalf("%v: data outside the message", kind)
		case !p.multitrack && p.track != 0:
			t.Fatalf("%v: track %d outside Multitrack", kind, p.track)
		case p.typ > pktSkip:
			t.Fatalf("%v: packet type %d", kind, p.typ)
		case p.legacy && (kind == segmenter.Video && b[0]&0x80 != 0 || kind == segmenter.Audio && b[0]>>4 == flvSoundExHdr):
			t.Fatalf("%v: ExHeader parsed as legacy", kind)
		case p.cts < -1<<23 || p.cts >= 1<<23 || p.tsOffsetNanos >= 1<<24:
			t.Fatalf("%v: cts %d, offset %d", kind, p.cts, p.tsOffsetNanos)
		case p.cts != 0 && p.typ != pktCodedFrames:
			t.Fatalf("%v: cts %d on %v", kind, p.cts, p.typ)
		case p.key && kind == segmenter.Audio:
			t.Fatalf("audio key frame")
		}
		switch p.typ {
		case pktMetadata:
			parseColorInfo(p.data)
		case pktMultichannelConfig:
			if _, err := parseMultichannelConfig(p.data); err != nil {
				t.Fatalf("%v: MultichannelConfig passed up that does not parse: %v", kind, err)
			}
		}
	}
	if err != nil && !strings.HasPrefix(err.Error(), map[segmenter.Kind]string{segmenter.Video: "flv video: ", segmenter.Audio: "flv audio: "}[kind]) {
		t.Fatalf("%v: error %q does not say what it parsed", kind, err)
	}
	var again []trackPacket
	err2 := parse(b, func(p trackPacket) error {
		again = append(again, p)
		return nil
	})
	if fmt.Sprint(pkts, err) != fmt.Sprint(again, err2) {
		t.Fatalf("%v: not deterministic", kind)
	}
	if len(pkts) > 0 {
		stop := errors.New("stop")
		if err := parse(b, func(trackPacket) error { return stop }); err != stop {
			t.Fatalf("%v: callback error came back as %v", kind, err)
		}
	}
}

// checkVideoTag asserts what parseVideoTag promises for any input: it is
// the first track-0 packet of parseVideoMessage, kept if H.264 and refused
// as unsupported otherwise.
func checkVideoTag(t *testing.T, b []byte, v videoTag, err error) {
	t.Helper()
	var (
		p0    trackPacket
		found bool
	)
	msgErr := parseVideoMessage(b, func(p trackPacket) error {
		if p.track == 0 && !found {
			p0, found = p, true
		}
		return nil
	})
	if (msgErr != nil) != (err != nil && !errors.Is(err, errUnsupportedCodec)) {
		t.Fatalf("video: tag error %v, message error %v", err, msgErr)
	}
	if err != nil {
		if v.kind != tagSkip || v.key || v.cts != 0 || v.data != nil {
			t.Fatalf("video: %+v with error %v", v, err)
		}
		if msg := refusedTrackMessage(err); msg != "" {
			if p0.fourcc != fourccHEVC || !strings.HasPrefix(msg, "video track refused: HEVC ") || !strings.HasSuffix(msg, " is not supported, send H.264") {
				t.Fatalf("video: refusal %q for %x", msg, b[:min(len(b), 5)])
			}
		}
		if errors.Is(err, errUnsupportedCodec) && (!found || p0.fourcc == fourccAVC) {
			t.Fatalf("video: H.264 refused as unsupported: %v", err)
		}
		return
	}
	switch v.kind {
	case tagSkip:
		if found && p0.fourcc == fourccAVC && (p0.typ == pktSeqStart || p0.typ == pktCodedFrames) {
			t.Fatalf("video: H.264 %v skipped", p0.typ)
		}
		return
	case tagConfig, tagFrame:
	default:
		t.Fatalf("video: kind %d", v.kind)
	}
	if !found || p0.fourcc != fourccAVC {
		t.Fatalf("video: %x accepted as H.264", b[:min(len(b), 8)])
	}
	if v.key != p0.key || len(v.data) != len(p0.data) || len(v.data) > 0 && &v.data[0] != &p0.data[0] || !within(v.data, b) {
		t.Fatalf("video: %+v from %+v", v, p0)
	}
	if v.kind == tagConfig && v.cts != 0 || v.kind == tagFrame && v.cts != p0.cts {
		t.Fatalf("video: cts %d from %+v", v.cts, p0)
	}
}
