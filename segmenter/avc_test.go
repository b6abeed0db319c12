package segmenter

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseAVCConfigReal(t *testing.T) {
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
			c, err := parseAVCConfig(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.codec(); got != tc.codec {
				t.Errorf("codec %q, want %q", got, tc.codec)
			}
			si := c.spsInfo
			if si.width != tc.w || si.height != tc.h {
				t.Errorf("size %dx%d, want %dx%d", si.width, si.height, tc.w, tc.h)
			}
			if si.frameRate != tc.fps {
				t.Errorf("frame rate %v, want %v", si.frameRate, tc.fps)
			}
			if si.chromaFormatIDC != tc.chroma {
				t.Errorf("chroma_format_idc %d, want %d", si.chromaFormatIDC, tc.chroma)
			}
			if c.nalLengthSize != tc.nalLengthSize || len(c.sps) != 1 || len(c.pps) != 1 {
				t.Errorf("lengthSize %d, %d SPS, %d PPS", c.nalLengthSize, len(c.sps), len(c.pps))
			}
			want := append(append([]byte{0, 0, 0, 1}, c.sps[0]...), append([]byte{0, 0, 0, 1}, c.pps[0]...)...)
			if !bytes.Equal(c.paramSetsAnnex, want) {
				t.Errorf("param sets %x", c.paramSetsAnnex)
			}
		})
	}
}

func TestParseAVCConfigErrors(t *testing.T) {
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
			_, err := parseAVCConfig(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseSPSTruncated(t *testing.T) {
	c, err := parseAVCConfig(avcCHigh)
	if err != nil {
		t.Fatal(err)
	}
	sps := c.sps[0]
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

// avcc builds an AVCC access unit with 4-byte lengths.
func avcc(nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		b = append(b, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

func annexB(nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

func TestAVCCToAnnexB(t *testing.T) {
	c, err := parseAVCConfig(avcCHigh)
	if err != nil {
		t.Fatal(err)
	}
	aud := []byte{0x09, 0xf0}
	sei := []byte{0x06, 5, 1, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00}
	p := []byte{0x41, 0x9a, 0x02}
	ownSPS := []byte{0x67, 1, 2, 3}
	ownPPS := []byte{0x68, 4}
	sps, pps := c.sps[0], c.pps[0]
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []byte
		wantIDR bool
	}{
		{"p frame gets AUD", avcc(p), annexB(aud, p), false},
		{"idr gets AUD and params", avcc(sei, idr), annexB(aud, sps, pps, sei, idr), true},
		{"idr with AUD keeps it first", avcc(aud, sei, idr), annexB(aud, sps, pps, sei, idr), true},
		{"idr with own params", avcc(ownSPS, ownPPS, idr), annexB(aud, ownSPS, ownPPS, idr), true},
		{"empty NALUs skipped", avcc(nil, p), annexB(aud, p), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, isIDR, err := avccToAnnexB(nil, tc.in, 4, c.paramSetsAnnex)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tc.want) || isIDR != tc.wantIDR {
				t.Fatalf("got %x idr=%v\nwant %x", out, isIDR, tc.want)
			}
		})
	}
	// Length sizes 1 and 2.
	out, _, err := avccToAnnexB(nil, []byte{3, 0x41, 1, 2}, 1, nil)
	if err != nil || !bytes.Equal(out, annexB(aud, []byte{0x41, 1, 2})) {
		t.Fatalf("1-byte lengths: %x %v", out, err)
	}
	out, _, err = avccToAnnexB(out, []byte{0, 2, 0x41, 1}, 2, nil)
	if err != nil || !bytes.Equal(out, annexB(aud, []byte{0x41, 1})) {
		t.Fatalf("2-byte lengths: %x %v", out, err)
	}
	// Overruns.
	for _, bad := range [][]byte{
		{0, 0, 0, 5, 0x41, 1},
		{0, 0, 0},
		{0xff, 0xff, 0xff, 0xff, 0x41},
		append(avcc(p), 0, 0, 0, 9),
	} {
		if _, _, err := avccToAnnexB(nil, bad, 4, nil); err == nil || !strings.Contains(err.Error(), "avc frame:") {
			t.Errorf("%x: error %v", bad, err)
		}
	}
	if _, _, err := avccToAnnexB(nil, avcc(p), 3, nil); err == nil {
		t.Error("length size 3 accepted")
	}
}

func TestAVCCToAnnexBNoAllocs(t *testing.T) {
	c, _ := parseAVCConfig(avcCHigh)
	in := avcc([]byte{0x06, 1, 2}, bytes.Repeat([]byte{0x65}, 5000))
	buf, _, _ := avccToAnnexB(nil, in, 4, c.paramSetsAnnex)
	if n := testing.AllocsPerRun(100, func() {
		buf, _, _ = avccToAnnexB(buf, in, 4, c.paramSetsAnnex)
	}); n != 0 {
		t.Fatalf("%v allocs per run", n)
	}
}

func FuzzAVCConfig(f *testing.F) {
	f.Add(avcCHigh)
	f.Add(avcCBase)
	f.Add(avcCHi422)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseAVCConfig(b)
		if err != nil {
			return
		}
		if c.spsInfo.width <= 0 || c.spsInfo.height <= 0 {
			t.Fatalf("accepted config with size %dx%d", c.spsInfo.width, c.spsInfo.height)
		}
		_ = c.codec()
	})
}

func FuzzAVCCToAnnexB(f *testing.F) {
	c, _ := parseAVCConfig(avcCHigh)
	f.Add(avcc([]byte{0x65, 1, 2, 3}), uint8(4))
	f.Add(avcc([]byte{0x09, 0xf0}, []byte{0x41, 1}), uint8(4))
	f.Add([]byte{3, 0x65, 1, 2}, uint8(1))
	f.Add([]byte{0, 3, 0x67, 1, 2}, uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, ls uint8) {
		out, _, err := avccToAnnexB(nil, b, int(ls), c.paramSetsAnnex)
		if err != nil {
			if len(out) != 0 {
				t.Fatal("output on error")
			}
			return
		}
		// Output is longer than input by at most AUD + params + start codes.
		if len(out) > 6+len(c.paramSetsAnnex)+len(b)*5 {
			t.Fatalf("output %d bytes for %d", len(out), len(b))
		}
		if len(out) < 5 || !bytes.Equal(out[:4], []byte{0, 0, 0, 1}) {
			t.Fatalf("output does not start with a start code: %x", out)
		}
	})
}
