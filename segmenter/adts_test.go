package segmenter

import (
	"testing"

	"github.com/fount-live/fount/segmenter/codec"
)

// bitWriter builds bit strings for tests.
type bitWriter struct {
	b []byte
	n int
}

func (w *bitWriter) put(v uint32, bits int) *bitWriter {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.b[len(w.b)-1] |= 1 << (7 - uint(w.n%8))
		}
		w.n++
	}
	return w
}

func checkADTS(t testing.TB, h []byte) (profile, sfi, ch, n int) {
	t.Helper()
	if len(h) < 7 || h[0] != 0xff || h[1]&0xf6 != 0xf0 || h[1]&1 != 1 {
		t.Fatalf("bad ADTS header %x", h)
	}
	profile = int(h[2] >> 6)
	sfi = int(h[2] >> 2 & 0xf)
	ch = int(h[2]&1)<<2 | int(h[3]>>6)
	n = int(h[3]&3)<<11 | int(h[4])<<3 | int(h[5]>>5)
	if h[5]&0x1f != 0x1f || h[6] != 0xfc {
		t.Fatalf("bad ADTS buffer fullness/blocks %x", h)
	}
	return
}

func TestADTS(t *testing.T) {
	c, err := codec.ParseAudio(codec.AAC, ascLC44Stereo)
	if err != nil {
		t.Fatal(err)
	}
	h, err := appendADTS(nil, c, 133)
	if err != nil {
		t.Fatal(err)
	}
	// The header ffmpeg (-c:a copy -f adts) wrote for the first, 133-byte,
	// frame of testdata/main.flv.
	if want := mustHex("fff15080119ffc"); string(h) != string(want) {
		t.Fatalf("header %x, want %x", h, want)
	}
	p, sfi, ch, n := checkADTS(t, h)
	if p != 1 || sfi != 4 || ch != 2 || n != 140 {
		t.Fatalf("fields %d %d %d %d", p, sfi, ch, n)
	}
	c6, err := codec.ParseAudio(codec.AAC, new(bitWriter).put(2, 5).put(3, 4).put(7, 4).put(0, 3).b)
	if err != nil {
		t.Fatal(err)
	}
	h, _ = appendADTS(nil, c6, maxADTSPayload)
	if _, _, ch, n := checkADTS(t, h); ch != 7 || n != 8191 {
		t.Fatalf("7.1 max: ch %d n %d", ch, n)
	}
	if _, err := appendADTS(nil, c, maxADTSPayload+1); err == nil {
		t.Fatal("oversized frame accepted")
	}
}

func FuzzASC(f *testing.F) {
	f.Add(ascLC44Stereo)
	f.Add(ascLC48Mono)
	f.Add(new(bitWriter).put(5, 5).put(6, 4).put(2, 4).put(3, 4).put(2, 5).b)
	f.Add(new(bitWriter).put(31, 5).put(10, 6).put(15, 4).put(32000, 24).b)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := codec.ParseAudio(codec.AAC, b)
		if err != nil {
			return
		}
		h, err := appendADTS(nil, c, 100)
		if err != nil {
			t.Fatal(err)
		}
		p, sfi, ch, n := checkADTS(t, h)
		if p != c.ADTSProfile || sfi != c.ADTSSampleIndex || ch != c.ChannelConfig || n != 107 {
			t.Fatalf("ADTS round trip: %d %d %d %d for %+v", p, sfi, ch, n, c)
		}
	})
}
