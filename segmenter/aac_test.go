package segmenter

import (
	"strings"
	"testing"
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

func TestParseASC(t *testing.T) {
	for _, tc := range []struct {
		name          string
		asc           []byte
		codec         string
		aot, rate, ch int
		profile, sfi  int
	}{
		{"ffmpeg LC 44.1k stereo", ascLC44Stereo, "mp4a.40.2", 2, 44100, 2, 1, 4},
		{"ffmpeg LC 48k mono", ascLC48Mono, "mp4a.40.2", 2, 48000, 1, 1, 3},
		{"explicit 24-bit rate", new(bitWriter).put(2, 5).put(15, 4).put(32000, 24).put(2, 4).b, "mp4a.40.2", 2, 32000, 2, 1, 5},
		{"HE-AAC explicit SBR", new(bitWriter).put(5, 5).put(6, 4).put(2, 4).put(3, 4).put(2, 5).b, "mp4a.40.5", 5, 24000, 2, 1, 6},
		{"HE-AACv2 PS", new(bitWriter).put(29, 5).put(6, 4).put(1, 4).put(3, 4).put(2, 5).b, "mp4a.40.29", 29, 24000, 1, 1, 6},
		{"AAC Main 5.1", new(bitWriter).put(1, 5).put(3, 4).put(6, 4).put(0, 3).b, "mp4a.40.1", 1, 48000, 6, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseASC(tc.asc)
			if err != nil {
				t.Fatal(err)
			}
			if c.codec() != tc.codec || c.objectType != tc.aot || c.sampleRate != tc.rate || c.channels != tc.ch ||
				c.adtsProfile != tc.profile || c.adtsSFI != tc.sfi {
				t.Fatalf("got %+v codec %s", c, c.codec())
			}
		})
	}
}

func TestParseASCErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		asc  []byte
		want string
	}{
		{"empty", nil, "aac config: truncated"},
		{"aot 0", new(bitWriter).put(0, 5).put(4, 4).put(2, 4).put(0, 3).b, "aac config: unsupported object type 0"},
		{"escape aot 42 (USAC)", new(bitWriter).put(31, 5).put(10, 6).put(4, 4).put(2, 4).b, "aac config: unsupported object type 42"},
		{"reserved rate index", new(bitWriter).put(2, 5).put(13, 4).put(2, 4).put(0, 3).b, "reserved sampling frequency index 13"},
		{"PCE channels", new(bitWriter).put(2, 5).put(4, 4).put(0, 4).put(0, 3).b, "channel configuration 0"},
		{"odd explicit rate", new(bitWriter).put(2, 5).put(15, 4).put(12345, 24).put(2, 4).b, "sample rate 12345 cannot be carried in ADTS"},
		{"truncated explicit rate", new(bitWriter).put(2, 5).put(15, 4).put(1, 7).b, "aac config: truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseASC(tc.asc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// checkADTS validates an ADTS header and returns profile, sfi, channels, frame length.
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
	c, err := parseASC(ascLC44Stereo)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.appendADTS(nil, 133)
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
	c6, _ := parseASC(new(bitWriter).put(2, 5).put(3, 4).put(7, 4).put(0, 3).b)
	h, _ = c6.appendADTS(nil, maxADTSPayload)
	if _, _, ch, n := checkADTS(t, h); ch != 7 || n != 8191 {
		t.Fatalf("7.1 max: ch %d n %d", ch, n)
	}
	if _, err := c.appendADTS(nil, maxADTSPayload+1); err == nil {
		t.Fatal("oversized frame accepted")
	}
}

func FuzzASC(f *testing.F) {
	f.Add(ascLC44Stereo)
	f.Add(ascLC48Mono)
	f.Add(new(bitWriter).put(5, 5).put(6, 4).put(2, 4).put(3, 4).put(2, 5).b)
	f.Add(new(bitWriter).put(31, 5).put(10, 6).put(15, 4).put(32000, 24).b)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseASC(b)
		if err != nil {
			return
		}
		h, err := c.appendADTS(nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		p, sfi, ch, n := checkADTS(t, h)
		if p != c.adtsProfile || sfi != c.adtsSFI || ch != c.channels || n != 107 {
			t.Fatalf("ADTS round trip: %d %d %d %d for %+v", p, sfi, ch, n, c)
		}
	})
}
