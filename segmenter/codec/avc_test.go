package codec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseAVCReal(t *testing.T) {
	for _, tc := range []struct {
		name          string
		rec           []byte
		codec         string
		w, h          int
		fps           float64
		chroma        int
		nalLengthSize int
	}{
		{"high 640x360 cropped", avcCHigh, "avc1.64001e", 640, 360, 30, 1, 4},
		{"baseline 320x240", avcCBase, "avc1.42c00d", 320, 240, 25, 1, 4},
		{"high422 scaling lists", avcCHi422, "avc1.7a000b", 176, 144, 25, 2, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ParseVideo(AVC, tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			if v.Codecs != tc.codec {
				t.Errorf("codec %q, want %q", v.Codecs, tc.codec)
			}
			if v.Width != tc.w || v.Height != tc.h {
				t.Errorf("size %dx%d, want %dx%d", v.Width, v.Height, tc.w, tc.h)
			}
			if v.FrameRate != tc.fps {
				t.Errorf("frame rate %v, want %v", v.FrameRate, tc.fps)
			}
			if v.ChromaFormat != tc.chroma || v.BitDepth != 8 {
				t.Errorf("chroma_format_idc %d depth %d, want %d 8", v.ChromaFormat, v.BitDepth, tc.chroma)
			}
			if v.NALULengthSize != tc.nalLengthSize || len(v.SPS) != 1 || len(v.PPS) != 1 || len(v.VPS) != 0 {
				t.Errorf("lengthSize %d, %d SPS, %d PPS", v.NALULengthSize, len(v.SPS), len(v.PPS))
			}
			if got := v.String(); !strings.HasPrefix(got, "H.264 ") || !strings.HasSuffix(got, "("+tc.codec+")") || strings.Contains(got, "profile ") {
				t.Errorf("String() = %q", got)
			}
			if !bytes.Equal(v.Record, tc.rec) || v.Transfer != TransferSDR || v.Codec != AVC {
				t.Errorf("record %x transfer %v codec %v", v.Record, v.Transfer, v.Codec)
			}
			// A keyframe that carries the same SPS and PPS in-band gives
			// the same record.
			kf, err := VideoFromKeyframe(AVC, avcc(v.SPS[0], v.PPS[0], []byte{0x65, 0x88, 0x84}))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kf.Record, tc.rec) {
				t.Errorf("record from keyframe\n%x\nwant\n%x", kf.Record, tc.rec)
			}
		})
	}
}

func TestParseAVCErrors(t *testing.T) {
	trunc := func(n int) []byte { return avcCHigh[:n] }
	badVersion := bytes.Clone(avcCHigh)
	badVersion[0] = 0
	lenSize3 := bytes.Clone(avcCHigh)
	lenSize3[4] = 0xfe
	noSPS := []byte{1, 0x64, 0, 0x1e, 0xff, 0xe0, 1, 0, 1, 0x68}
	spsWrongType := bytes.Clone(avcCHigh)
	spsWrongType[8] = 0x68
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "avc config: truncated record"},
		{"version", badVersion, "unsupported configurationVersion 0"},
		{"length size 3", lenSize3, "invalid NALU length size 3"},
		{"truncated SPS", trunc(20), "avc config: truncated SPS"},
		{"truncated SPS length", trunc(7), "avc config: truncated SPS length"},
		{"truncated PPS count", trunc(34), "avc config: truncated PPS count"},
		{"truncated PPS", trunc(38), "avc config: truncated PPS"},
		{"no SPS", noSPS, "avc config: no SPS"},
		{"SPS type", spsWrongType, "SPS entry has NAL type 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVideo(AVC, tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	v, _ := ParseVideo(AVC, avcCHigh)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"no SPS", avcc(v.PPS[0], []byte{0x65, 1}), "avc keyframe: no SPS"},
		{"no PPS", avcc(v.SPS[0], []byte{0x65, 1}), "avc keyframe: no PPS"},
		{"overrun", []byte{0, 0, 0, 9, 0x67}, "avc keyframe: NALU length 9 overruns"},
		{"short length", []byte{0, 0, 1}, "avc keyframe: truncated NALU length"},
		{"short SPS", avcc([]byte{0x67, 0x64}, v.PPS[0]), "avc keyframe: sps: truncated"},
	} {
		if _, err := VideoFromKeyframe(AVC, tc.frame); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestParseSPSTruncated(t *testing.T) {
	v, err := ParseVideo(AVC, avcCHigh)
	if err != nil {
		t.Fatal(err)
	}
	sps := v.SPS[0]
	// Every prefix that ends before the cropping fields must fail cleanly.
	for n := 0; n < 8; n++ {
		if _, err := parseSPS(sps[:n]); err == nil {
			t.Errorf("prefix %d: no error", n)
		}
	}
	// A VUI cut short loses the frame rate, not the size.
	si, err := parseSPS(sps[:12])
	if err != nil {
		t.Fatal(err)
	}
	if si.width != 640 || si.height != 360 || si.frameRate != 0 {
		t.Errorf("got %+v", si)
	}
	if _, err := parseSPS(sps[:6]); !errors.Is(err, errTruncated) && !errors.Is(err, errSPSTruncated) {
		t.Errorf("truncation does not wrap a truncation error: %v", err)
	}
}

func TestExpGolomb(t *testing.T) {
	// 1 | 010 | 011 | 00100 | 00101 | 0001000 -> ue 0,1,2,3,4,7 ; se of the same: 0,1,-1,2,-2,4
	b := []byte{0b10100110, 0b01000010, 0b10001000}
	r := &bitReader{b: b}
	var got []uint32
	for i := 0; i < 6; i++ {
		got = append(got, r.ue())
	}
	if r.err != nil || !equalU32(got, []uint32{0, 1, 2, 3, 4, 7}) {
		t.Fatalf("ue %v err %v", got, r.err)
	}
	r = &bitReader{b: b}
	var se []int32
	for i := 0; i < 6; i++ {
		se = append(se, r.se())
	}
	if want := []int32{0, 1, -1, 2, -2, 4}; r.err != nil || len(se) != 6 || se[5] != want[5] || se[2] != want[2] {
		t.Fatalf("se %v", se)
	}
	r = &bitReader{b: []byte{0, 0, 0, 0, 0}}
	r.ue()
	if r.err == nil {
		t.Fatal("expected error on over-long code")
	}
	if got := unescapeRBSP([]byte{1, 0, 0, 3, 1, 0, 0, 3, 0, 3}); !bytes.Equal(got, []byte{1, 0, 0, 1, 0, 0, 0, 3}) {
		t.Fatalf("unescape %x", got)
	}
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// avcc builds an access unit of NAL units with 4-byte lengths.
func avcc(nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		b = append(b, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}
