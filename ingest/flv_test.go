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
	// Enhanced RTMP announces FourCCs; a codec fount does not know is not a
	// track the segmenter waits for.
	buf.Reset()
	enc.Encode("onMetaData")
	enc.Encode(amf0.ECMAArray{"videocodecid": float64(uint32('h')<<24 | uint32('v')<<16 | uint32('c')<<8 | uint32('1')), "audiocodecid": "mp4a"})
	if md, err := parseMetadata(buf.Bytes()); err != nil || md.Tracks != segmenter.Video|segmenter.Audio {
		t.Fatalf("enhanced: %+v %v", md, err)
	}
	buf.Reset()
	enc.Encode("onMetaData")
	enc.Encode(amf0.ECMAArray{"videocodecid": "vp08", "audiocodecid": "mp4a"})
	if md, err := parseMetadata(buf.Bytes()); err != nil || md.Tracks != segmenter.Audio {
		t.Fatalf("enhanced vp08: %+v %v", md, err)
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

// TestHandlerTracks: HEVC, legacy FLV id 12 or Enhanced RTMP hvc1, is a
// codec like any other now; a codec fount does not remux is skipped with one
// log line and a count, and the other kind goes on; an unreadable record
// ends the publish on track 0 but only skips any other track.
func TestHandlerTracks(t *testing.T) {
	hvcC := hvcCNoSEI(t, "main10_1080")
	newHandler := func() (*handler, *bytes.Buffer) {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		h := &handler{ctx: context.Background(), cfg: &Config{}, log: log, done: func() {}, server: &Server{}, stats: &publishStats{}, stream: "live/x"}
		h.sess = segSession{segmenter.New(segmenter.Config{Expect: segmenter.Video | segmenter.Audio, Logger: log, Format: segmenter.FormatFMP4}, countSink{})}
		return h, &logs
	}
	const idr = "\x00\x00\x00\x03\x26\x01\xaf" // an IDR_W_RADL NAL unit, length-prefixed
	for _, c := range []struct{ seq, key []byte }{
		{append([]byte{0x90, 'h', 'v', 'c', '1'}, hvcC...), append([]byte{0x90 | exCodedFramesX, 'h', 'v', 'c', '1'}, idr...)},
		{append([]byte{0x1c, 0, 0, 0, 0}, hvcC...), append([]byte{0x1c, 1, 0, 0, 0}, idr...)}, // the non-standard FLV id 12
	} {
		h, logs := newHandler()
		if err := h.OnVideo(0, bytes.NewReader(c.seq)); err != nil {
			t.Fatal(err)
		}
		// The configuration is read, and kept until the first frame
		// decides which session takes the track.
		st := h.videoTracks[0].stat.snapshot()
		if st.Codec != "HEVC" || st.Codecs != "hvc1.2.4.L120.90" || st.Width != 1920 || st.InPlaylist || st.Skipped != "" || logs.Len() != 0 {
			t.Errorf("%x: %+v\n%s", c.seq[:5], st, logs)
		}
		if err := h.OnVideo(0, bytes.NewReader(c.key)); err != nil {
			t.Fatal(err)
		}
		if st := h.videoTracks[0].stat.snapshot(); !st.InPlaylist || st.Skipped != "" || st.Frames != 1 || h.frames != 1 || logs.Len() != 0 {
			t.Errorf("%x after a keyframe: %+v\n%s", c.seq[:5], st, logs)
		}
	}

	// VP6: skipped once, however many tags; AAC goes on.
	h, logs := newHandler()
	for i := range 3 {
		if err := h.OnVideo(uint32(i*33), bytes.NewReader([]byte{0x14, 0, 1, 2})); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.OnAudio(0, bytes.NewReader([]byte{0xaf, 0, 0x11, 0x90})); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "rtmp track skipped"); n != 1 || !strings.Contains(logs.String(), "VP6") || h.server.counters.tracksSkipped.Load() != 1 {
		t.Errorf("%d skip lines, %d counted:\n%s", n, h.server.counters.tracksSkipped.Load(), logs)
	}
	if a := h.audioTracks[0].stat.snapshot(); !a.InPlaylist || a.Codecs != "mp4a.40.2" {
		t.Errorf("audio after a skipped video track: %+v", a)
	}

	// A broken record: the end of the publish on track 0, a skip on track 1.
	h, _ = newHandler()
	if err := h.OnVideo(0, bytes.NewReader(append([]byte{0x90, 'h', 'v', 'c', '1'}, hvcC[:30]...))); err == nil || !strings.Contains(err.Error(), "video sequence header") {
		t.Errorf("broken track-0 record: %v", err)
	}
	h, _ = newHandler()
	one := append([]byte{0x90 | exVideoMultitrack, mtOneTrack<<4 | exSeqStart, 'h', 'v', 'c', '1', 1}, hvcC[:30]...)
	if err := h.OnVideo(0, bytes.NewReader(one)); err != nil {
		t.Fatalf("broken track-1 record: %v", err)
	}
	if st := h.videoTracks[0].stat.snapshot(); st.ID != 1 || st.Skipped == "" {
		t.Errorf("broken track-1 record: %+v", st)
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
		fuzzHandler(t, b)
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

// fuzzHandler feeds b to a publishing handler as a video and an audio
// message, twice (a sequence start, then frames): whatever the tracks,
// codecs and configurations it names, the handler and the segmenter behind
// it return an error or nothing, never panic.
func fuzzHandler(t *testing.T, b []byte) {
	log := slog.New(slog.DiscardHandler)
	h := &handler{ctx: context.Background(), cfg: &Config{}, log: log, done: func() {}, server: &Server{}, stats: &publishStats{}, stream: "live/fuzz"}
	h.sess = segSession{segmenter.New(segmenter.Config{Logger: log, Format: segmenter.FormatFMP4, PartDuration: 200 * time.Millisecond}, countSink{})}
	for i := range 2 {
		if h.OnVideo(uint32(i*40), bytes.NewReader(b)) != nil || h.OnAudio(uint32(i*40), bytes.NewReader(b)) != nil {
			return
		}
	}
	for _, ts := range [][]*track{h.videoTracks, h.audioTracks} {
		for _, tr := range ts {
			if st := tr.stat.snapshot(); st.InPlaylist && tr.id != 0 {
				t.Fatalf("track %d in the playlist: %+v", tr.id, st)
			}
		}
	}
	// And split into renditions: only a track with a session is in.
	h = &handler{ctx: context.Background(), cfg: &Config{}, log: log, done: func() {}, server: &Server{}, stats: &publishStats{}, stream: "live/fuzz"}
	h.sess = nopSplitter{}
	for i := range 2 {
		if h.OnVideo(uint32(i*40), bytes.NewReader(b)) != nil || h.OnAudio(uint32(i*40), bytes.NewReader(b)) != nil {
			break
		}
	}
	for _, ts := range [][]*track{h.videoTracks, h.audioTracks} {
		for _, tr := range ts {
			if st := tr.stat.snapshot(); st.InPlaylist && tr.sess == nil {
				t.Fatalf("track %d in the playlist without a session: %+v", tr.id, st)
			}
		}
	}
	h.OnClose()
}
