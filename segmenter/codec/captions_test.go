package codec

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/fount-live/fount/segmenter/codec/cctest"
)

func lenPrefixed(size int, nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		for i := size - 1; i >= 0; i-- {
			b = append(b, byte(len(n)>>(8*i)))
		}
		b = append(b, n...)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// x264's own SEI (user_data_unregistered, type 5), cut short: not captions.
const x264SEI = "06 05 16 dc45e9bde6d948b7962cd820d923eeef 7832363420 80"

func TestFindCaptions(t *testing.T) {
	idr := unhex(t, "65 88 84 00 33")
	cases := []struct {
		name  string
		id    ID
		size  int
		frame []byte
		want  Captions
		err   bool
	}{
		{"608 field 1", AVC, 4, lenPrefixed(4, unhex(t, x264SEI), cctest.SEI(cctest.PopOn("HI")[:2]...), idr), CEA608Field1, false},
		{"padding counts", AVC, 4, lenPrefixed(4, cctest.SEI(cctest.Padding)), CEA608Field1, false},
		{"2-byte lengths", AVC, 2, lenPrefixed(2, cctest.SEI(cctest.Padding)), CEA608Field1, false},
		// cc_count 3: field 1 invalid, field 2 valid, DTVCC start.
		{"608 field 2 and 708", AVC, 4, lenPrefixed(4, unhex(t, "06 04 14 b50031 47413934 03 43 ff f8 8080 fd 9420 ff 0201 ff 80")), CEA608Field2 | CEA708, false},
		{"process_cc_data_flag clear", AVC, 4, lenPrefixed(4, unhex(t, "06 04 0e b50031 47413934 03 01 ff fc 8080 ff 80")), 0, false},
		{"other provider", AVC, 4, lenPrefixed(4, unhex(t, "06 04 0e b5002f 47413934 03 41 ff fc 8080 ff 80")), 0, false},
		{"no SEI", AVC, 4, lenPrefixed(4, idr), 0, false},
		{"hevc prefix SEI", HEVC, 4, lenPrefixed(4, append([]byte{0x4e, 0x01}, cctest.SEI(cctest.Padding)[1:]...)), CEA608Field1, false},
		{"hevc NAL type 6 is not SEI", HEVC, 4, lenPrefixed(4, cctest.SEI(cctest.Padding)), 0, false},
		{"not a caption codec", AV1, 4, lenPrefixed(4, cctest.SEI(cctest.Padding)), 0, false},
		{"truncated length", AVC, 4, []byte{0, 0, 1}, 0, true},
		{"overrun", AVC, 4, []byte{0, 0, 0, 9, 6}, 0, true},
		{"truncated message", AVC, 4, lenPrefixed(4, unhex(t, "06 04 20 b50031")), 0, true},
		{"bad length size", AVC, 3, nil, 0, true},
	}
	for _, c := range cases {
		got, err := FindCaptions(c.id, c.frame, c.size)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%s: FindCaptions = %v, %v; want %v, error %v", c.name, got, err, c.want, c.err)
		}
		if err != nil {
			checkErr(t, err)
		}
	}
}

func TestFindCaptionsAllocs(t *testing.T) {
	frame := lenPrefixed(4, unhex(t, x264SEI), cctest.SEI(cctest.PopOn("HELLO FOUNT")...), unhex(t, "65 88 84 00 33"))
	if n := testing.AllocsPerRun(100, func() { _, _ = FindCaptions(AVC, frame, 4) }); n != 0 {
		t.Fatalf("FindCaptions allocates %v times a frame", n)
	}
}

func TestCaptionsString(t *testing.T) {
	if s := (CEA608Field1 | CEA708).String(); s != "608,708" {
		t.Fatal(s)
	}
}

func FuzzFindCaptions(f *testing.F) {
	f.Add(byte(AVC), byte(4), lenPrefixed(4, cctest.SEI(cctest.PopOn("HELLO")...)))
	f.Add(byte(HEVC), byte(4), lenPrefixed(4, append([]byte{0x4e, 0x01}, cctest.SEI(cctest.Padding)[1:]...)))
	f.Add(byte(AVC), byte(2), lenPrefixed(2, unhex(f, "06 04 14 b50031 47413934 03 43 ff f8 8080 fd 9420 ff 0201 ff 80")))
	f.Fuzz(func(t *testing.T, id, size byte, frame []byte) {
		c, err := FindCaptions(fuzzID(id), frame, int(size%5))
		if err != nil {
			checkErr(t, err)
		}
		if c&^(CEA608|CEA708) != 0 {
			t.Fatalf("unknown bits %b", c)
		}
	})
}
