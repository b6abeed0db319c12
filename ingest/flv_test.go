package ingest

import (
	"bytes"
	"errors"
	"math"
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
		{"avc end of sequence", []byte{0x17, 2, 0, 0, 0}, videoTag{kind: tagSkip, key: true, data: []byte{}}, ""},
		{"command frame", []byte{0x57, 0}, videoTag{kind: tagSkip}, ""},
		{"enhanced avc seq start", append([]byte{0x90, 'a', 'v', 'c', '1'}, 1, 0x64), videoTag{kind: tagConfig, key: true, data: []byte{1, 0x64}}, ""},
		{"enhanced avc coded frames", append([]byte{0x91, 'a', 'v', 'c', '1', 0, 0, 33}, nalu...), videoTag{kind: tagFrame, key: true, cts: 33, data: nalu}, ""},
		{"enhanced avc frames x", append([]byte{0xa3, 'a', 'v', 'c', '1'}, nalu...), videoTag{kind: tagFrame, data: nalu}, ""},
		{"empty", nil, videoTag{}, "empty tag"},
		{"short avc", []byte{0x17, 1, 0}, videoTag{}, "shorter than its 5-byte header"},
		{"bad avc packet type", []byte{0x17, 9, 0, 0, 0}, videoTag{}, "unknown AVC packet type 9"},
		{"vp6", []byte{0x14, 0}, videoTag{}, "VP6"},
		{"enhanced hevc", []byte{0x90, 'h', 'v', 'c', '1', 1}, videoTag{}, `"hvc1"`},
		{"enhanced short", []byte{0x90, 'a', 'v'}, videoTag{}, "shorter than its 5-byte header"},
		{"enhanced frames no cts", []byte{0x91, 'a', 'v', 'c', '1', 0}, videoTag{}, "without composition time"},
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
	for _, in := range [][]byte{{0x2f, 0}, {0x9f, 0}, {0x7e, 0}} {
		if _, err := parseAudioTag(in); !errors.Is(err, errUnsupportedCodec) {
			t.Errorf("%x: %v, want unsupported codec", in, err)
		}
	}
	for _, in := range [][]byte{nil, {0xaf}, {0xaf, 7}} {
		if _, err := parseAudioTag(in); err == nil || errors.Is(err, errUnsupportedCodec) {
			t.Errorf("%x: %v, want a malformed-tag error", in, err)
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

func FuzzParseTags(f *testing.F) {
	f.Add([]byte{0x17, 1, 0, 0, 66, 0, 0, 0, 2, 0x65, 0x88})
	f.Add([]byte{0x91, 'a', 'v', 'c', '1', 0, 0, 33, 1})
	f.Add([]byte{0xaf, 0, 0x11, 0x90})
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := parseVideoTag(b); err == nil && len(v.data) > len(b) {
			t.Fatal("video data longer than the tag")
		}
		if a, err := parseAudioTag(b); err == nil && len(a.data) > len(b) {
			t.Fatal("audio data longer than the tag")
		}
		parseMetadata(b)
	})
}
