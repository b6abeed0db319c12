package segmenter

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fount-live/fount/segmenter/codec"
)

// avcParams parses avcCHigh and returns it with its parameter sets in
// Annex-B.
func avcParams(t testing.TB) (*codec.Video, []byte) {
	t.Helper()
	c, err := codec.ParseVideo(codec.AVC, avcCHigh)
	if err != nil {
		t.Fatal(err)
	}
	return c, paramSetsAnnexB(c)
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
	c, params := avcParams(t)
	aud := []byte{0x09, 0xf0}
	sei := []byte{0x06, 5, 1, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00}
	p := []byte{0x41, 0x9a, 0x02}
	ownSPS := []byte{0x67, 1, 2, 3}
	ownPPS := []byte{0x68, 4}
	sps, pps := c.SPS[0], c.PPS[0]
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
			out, isIDR, err := avccToAnnexB(nil, tc.in, 4, params)
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
	_, params := avcParams(t)
	in := avcc([]byte{0x06, 1, 2}, bytes.Repeat([]byte{0x65}, 5000))
	buf, _, _ := avccToAnnexB(nil, in, 4, params)
	if n := testing.AllocsPerRun(100, func() {
		buf, _, _ = avccToAnnexB(buf, in, 4, params)
	}); n != 0 {
		t.Fatalf("%v allocs per run", n)
	}
}

func FuzzAVCCToAnnexB(f *testing.F) {
	_, params := avcParams(f)
	f.Add(avcc([]byte{0x65, 1, 2, 3}), uint8(4))
	f.Add(avcc([]byte{0x09, 0xf0}, []byte{0x41, 1}), uint8(4))
	f.Add([]byte{3, 0x65, 1, 2}, uint8(1))
	f.Add([]byte{0, 3, 0x67, 1, 2}, uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, ls uint8) {
		out, _, err := avccToAnnexB(nil, b, int(ls), params)
		if err != nil {
			if len(out) != 0 {
				t.Fatal("output on error")
			}
			return
		}
		// Output is longer than input by at most AUD + params + start codes.
		if len(out) > 6+len(params)+len(b)*5 {
			t.Fatalf("output %d bytes for %d", len(out), len(b))
		}
		if len(out) < 5 || !bytes.Equal(out[:4], []byte{0, 0, 0, 1}) {
			t.Fatalf("output does not start with a start code: %x", out)
		}
	})
}

func TestHEVCToAnnexB(t *testing.T) {
	c, err := codec.ParseVideo(codec.HEVC, readHVCC(t, "main"))
	if err != nil {
		t.Fatal(err)
	}
	params := paramSetsAnnexB(c)
	if len(c.VPS) != 1 || len(c.SPS) != 1 || len(c.PPS) != 1 {
		t.Fatalf("%d VPS %d SPS %d PPS", len(c.VPS), len(c.SPS), len(c.PPS))
	}
	aud := []byte{0x46, 0x01, 0x50}
	idr := []byte{19 << 1, 1, 0xaf, 0x01}  // IDR_W_RADL
	cra := []byte{21 << 1, 1, 0xaf, 0x02}  // CRA
	trail := []byte{1 << 1, 1, 0xd0, 0x03} // TRAIL_R
	sei := []byte{39 << 1, 1, 5, 1, 0x80}
	vps, sps, pps := c.VPS[0], c.SPS[0], c.PPS[0]
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
		irap bool
	}{
		{"trail gets AUD", avcc(trail), annexB(aud, trail), false},
		{"idr gets AUD and params", avcc(sei, idr), annexB(aud, vps, sps, pps, sei, idr), true},
		{"cra gets params", avcc(cra), annexB(aud, vps, sps, pps, cra), true},
		{"own AUD kept first", avcc(aud, idr), annexB(aud, vps, sps, pps, idr), true},
		{"own params", avcc(vps, sps, pps, idr), annexB(aud, vps, sps, pps, idr), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, irap, err := toAnnexB(nil, tc.in, 4, params, true)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tc.want) || irap != tc.irap {
				t.Fatalf("got %x irap=%v\nwant %x", out, irap, tc.want)
			}
		})
	}
	if _, _, err := toAnnexB(nil, []byte{0, 0, 0, 9, 1}, 4, params, true); err == nil || !strings.Contains(err.Error(), "hevc frame:") {
		t.Errorf("overrun: %v", err)
	}
}

func TestStripTemporalDelimiter(t *testing.T) {
	seq := []byte{0x0a, 0x02, 0xaa, 0xbb}
	for _, tc := range []struct{ in, want []byte }{
		{append([]byte{0x12, 0x00}, seq...), seq},
		{seq, seq},
		{[]byte{0x12, 0x00}, []byte{}},
		{[]byte{0x12}, []byte{0x12}},
		{[]byte{0x16, 0x00, 0x00}, []byte{0x16, 0x00, 0x00}}, // extension flag: left alone
	} {
		if got := stripTemporalDelimiter(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("%x: got %x, want %x", tc.in, got, tc.want)
		}
	}
}

// readHVCC reads a real HEVCDecoderConfigurationRecord (the hvcC of a
// libx265 clip, testdata/README.md).
func readHVCC(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hevc", name+".hvcC"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
