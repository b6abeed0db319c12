package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestIDs(t *testing.T) {
	for _, tc := range []struct {
		fourcc string
		id     ID
		name   string
		video  bool
	}{
		{"avc1", AVC, "H.264", true}, {"hvc1", HEVC, "HEVC", true}, {"av01", AV1, "AV1", true}, {"vp09", VP9, "VP9", true},
		{"mp4a", AAC, "AAC", false}, {"Opus", Opus, "Opus", false}, {"fLaC", FLAC, "FLAC", false},
		{"ac-3", AC3, "AC-3", false}, {"ec-3", EAC3, "E-AC-3", false}, {".mp3", MP3, "MP3", false},
	} {
		id := FromFourCC([4]byte([]byte(tc.fourcc)))
		if id != tc.id || id.String() != tc.name || id.Video() != tc.video || id.Audio() == tc.video {
			t.Errorf("%s: %v %q video %v", tc.fourcc, id, id.String(), id.Video())
		}
	}
	for _, f := range []string{"vp08", "vvc1", "opus", "hev1", "\x00\x00\x00\x00"} {
		if id := FromFourCC([4]byte([]byte(f))); id != Unknown || id.Video() || id.Audio() {
			t.Errorf("%q: %v", f, id)
		}
	}
	if Unknown.String() != "codec(0)" || ID(200).String() != "codec(200)" {
		t.Error(Unknown.String())
	}
	for tr, want := range map[Transfer]string{TransferSDR: "SDR", TransferPQ: "PQ", TransferHLG: "HLG", 9: "SDR"} {
		if tr.String() != want {
			t.Errorf("%d: %s", tr, tr)
		}
	}
	for tc, want := range map[int]Transfer{1: TransferSDR, 14: TransferSDR, 16: TransferPQ, 18: TransferHLG, 2: TransferSDR} {
		if transferFrom(tc) != want {
			t.Errorf("transfer_characteristics %d: %v", tc, transferFrom(tc))
		}
	}
	// Wrong kinds are errors, not panics.
	if _, err := ParseVideo(AAC, nil); err == nil {
		t.Error("ParseVideo(AAC)")
	}
	if _, err := VideoFromKeyframe(Unknown, nil); err == nil {
		t.Error("VideoFromKeyframe(Unknown)")
	}
	for _, id := range []ID{AC3, EAC3, MP3, AVC} {
		if _, err := ParseAudio(id, nil); err == nil {
			t.Errorf("ParseAudio(%v)", id)
		}
	}
	for _, id := range []ID{AAC, Opus, FLAC, HEVC} {
		if _, err := AudioFromFrame(id, nil); err == nil {
			t.Errorf("AudioFromFrame(%v)", id)
		}
	}
	if _, err := (&Audio{Codec: VP9}).FrameSamples(nil); err == nil {
		t.Error("FrameSamples of video")
	}
}

func opusHead(ch int, preSkip uint16, rate uint32, family byte, table ...byte) []byte {
	b := []byte("OpusHead")
	b = append(b, 1, byte(ch))
	b = binary.LittleEndian.AppendUint16(b, preSkip)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = append(b, 0xfe, 0xff) // gain -2 (Q7.8)
	b = append(b, family)
	return append(b, table...)
}

func TestOpus(t *testing.T) {
	a, err := ParseAudio(Opus, append(opusHead(2, 312, 44100, 0), "trailing"...))
	if err != nil {
		t.Fatal(err)
	}
	if a.Channels != 2 || a.PreSkip != 312 || a.SampleRate != 48000 || a.Codecs != "opus" || len(a.Config) != 19 {
		t.Fatalf("%+v", a)
	}
	want := []byte{0, 2, 0x01, 0x38, 0, 0, 0xac, 0x44, 0xff, 0xfe, 0}
	if got := a.OpusDOps(); !bytes.Equal(got, want) {
		t.Errorf("dOps %x, want %x", got, want)
	}
	a, err = ParseAudio(Opus, opusHead(3, 0, 48000, 1, 2, 1, 0, 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.OpusDOps(); !bytes.Equal(got[11:], []byte{2, 1, 0, 2, 1}) || got[1] != 3 {
		t.Errorf("dOps with mapping %x", got)
	}
	if (&Audio{Codec: AAC}).OpusDOps() != nil || (&Audio{Codec: AAC}).FLACDfLa() != nil {
		t.Error("dOps/dfLa of AAC")
	}

	be := []byte("OpusHead")
	be = append(be, 1, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"big-endian", be, "big-endian"},
		{"short", opusHead(2, 0, 0, 0)[:18], "opus config: truncated OpusHead"},
		{"magic", append([]byte("OpusTags"), opusHead(2, 0, 0, 0)[8:]...), "opus config: magic"},
		{"version", append(append([]byte("OpusHead"), 0x10), opusHead(2, 0, 0, 0)[9:]...), "unsupported version 16"},
		{"no channels", opusHead(0, 0, 0, 0), "channel count 0"},
		{"3 channels family 0", opusHead(3, 0, 0, 0), "3 channels with mapping family 0"},
		{"9 channels family 1", opusHead(9, 0, 0, 1), "9 channels with mapping family 1"},
		{"table short", opusHead(2, 0, 0, 1, 1, 1, 0), "truncated channel mapping table"},
		{"no streams", opusHead(2, 0, 0, 255, 0, 0, 0, 1), "stream count 0"},
		{"mapping range", opusHead(2, 0, 0, 1, 1, 1, 0, 2), "channel 1 maps to stream 2 of 2"},
	} {
		if _, err := ParseAudio(Opus, tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}

	op := &Audio{Codec: Opus}
	for _, tc := range []struct {
		pkt  []byte
		want int
	}{
		{[]byte{0 << 3}, 480}, {[]byte{1 << 3}, 960}, {[]byte{2 << 3}, 1920}, {[]byte{3 << 3}, 2880},
		{[]byte{12 << 3}, 480}, {[]byte{13 << 3}, 960}, {[]byte{16 << 3}, 120}, {[]byte{17 << 3}, 240},
		{[]byte{30 << 3}, 480}, {[]byte{31 << 3}, 960}, {[]byte{31<<3 | 1}, 1920}, {[]byte{31<<3 | 2, 5}, 1920},
		{[]byte{31<<3 | 3, 6}, 5760}, {[]byte{16<<3 | 3, 48}, 5760}, {[]byte{3<<3 | 3, 0x82}, 5760},
	} {
		if n, err := op.FrameSamples(tc.pkt); n != tc.want || err != nil {
			t.Errorf("TOC %08b %x: %d %v, want %d", tc.pkt[0], tc.pkt, n, err, tc.want)
		}
	}
	for _, bad := range [][]byte{nil, {31<<3 | 3}, {31<<3 | 3, 0}, {31<<3 | 3, 7}, {3<<3 | 3, 3}} {
		if n, err := op.FrameSamples(bad); err == nil || !strings.HasPrefix(err.Error(), "opus packet: ") {
			t.Errorf("%x: %d %v", bad, n, err)
		}
	}
}

func TestFLAC(t *testing.T) {
	w := new(bitWriter).put(4096, 16).put(4096, 16).put(14, 24).put(9000, 24).put(48000, 20).put(5, 3).put(23, 5)
	w.put(0, 4).put(123456, 32)
	si := append(w.b, make([]byte, 16)...)
	if len(si) != 34 {
		t.Fatalf("STREAMINFO of %d bytes", len(si))
	}
	block := append([]byte{0, 0, 0, 34}, si...)
	for name, b := range map[string][]byte{
		"bare":             si,
		"block":            block,
		"fLaC":             append([]byte("fLaC"), block...),
		"fLaC and comment": append(append([]byte("fLaC"), block...), 0x84, 0, 0, 1, 0),
	} {
		a, err := ParseAudio(FLAC, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a.SampleRate != 48000 || a.Channels != 6 || a.BitsPerSample != 24 || !bytes.Equal(a.Config, si) || a.MaxBlockSize != 4096 {
			t.Errorf("%s: %+v", name, a)
		}
		if d := a.FLACDfLa(); !bytes.Equal(d[:8], []byte{0, 0, 0, 0, 0x80, 0, 0, 34}) || !bytes.Equal(d[8:], si) {
			t.Errorf("%s: dfLa %x", name, d)
		}
	}
	bad := func(off int, v byte) []byte { b := bytes.Clone(si); b[off] = v; return b }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", si[:20], "flac config: 20 bytes are neither"},
		{"first block not STREAMINFO", append([]byte("fLaC"), 4, 0, 0, 34), "first metadata block has type 4"},
		{"STREAMINFO length", append([]byte("fLaC"), 0x80, 0, 0, 33), "STREAMINFO length 33"},
		{"STREAMINFO truncated", append([]byte("fLaC"), block[:20]...), "truncated STREAMINFO"},
		{"header truncated", []byte("fLaC\x00"), "truncated metadata block header"},
		{"block size", bad(0, 0), "block sizes 0-4096"},
		{"rate 0", bad(10, 0), "sample rate 0"},
	} {
		if tc.name == "rate 0" {
			tc.b[11], tc.b[12] = 0, tc.b[12]&0x0f
		}
		if _, err := ParseAudio(FLAC, tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}

	fl := &Audio{Codec: FLAC}
	hdr := func(code byte, rest ...byte) []byte {
		return append([]byte{0xff, 0xf8, code<<4 | 9, 0x08}, rest...)
	}
	for _, tc := range []struct {
		f    []byte
		want int
	}{
		{hdr(1, 0), 192}, {hdr(2, 0), 576}, {hdr(5, 0), 4608}, {hdr(8, 0), 256}, {hdr(12, 0), 4096}, {hdr(15, 0), 32768},
		{hdr(6, 0x05, 99), 100},                                                // 1-byte frame number, 8-bit size
		{hdr(7, 0xc2, 0x80, 0x12, 0x33), 0x1234},                               // 2-byte number, 16-bit size
		{hdr(7, 0xfe, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0xff, 0xfe), 0xffff}, // 7-byte sample number (variable blocking)
		{append([]byte{0xff, 0xf9}, hdr(6, 0x00, 0)[2:]...), 1},
	} {
		if n, err := fl.FrameSamples(tc.f); n != tc.want || err != nil {
			t.Errorf("%x: %d %v, want %d", tc.f, n, err, tc.want)
		}
	}
	for _, f := range [][]byte{nil, {0xff, 0xf8, 0x19}, {0xff, 0xf4, 0x19, 0}, hdr(0, 0), hdr(6, 0x80, 1), hdr(6, 0xff, 1), hdr(6), hdr(6, 0x05), hdr(7, 0x05, 1), hdr(7, 0x05, 0xff, 0xff)} {
		if n, err := fl.FrameSamples(f); err == nil || !strings.HasPrefix(err.Error(), "flac frame: ") {
			t.Errorf("%x: %d %v", f, n, err)
		}
	}
}

func TestMP3(t *testing.T) {
	for _, tc := range []struct {
		hdr          []byte
		rate, ch, br int
		ot, samples  int
	}{
		{[]byte{0xff, 0xfb, 0x90, 0x64}, 44100, 2, 128000, 0x6b, 1152},
		{[]byte{0xff, 0xfb, 0xe4, 0xc0}, 48000, 1, 320000, 0x6b, 1152},
		{[]byte{0xff, 0xf3, 0x40, 0xc4}, 22050, 1, 32000, 0x69, 576}, // MPEG-2
		{[]byte{0xff, 0xe3, 0x10, 0x00}, 11025, 2, 8000, 0x69, 576},  // MPEG-2.5
	} {
		a, err := AudioFromFrame(MP3, tc.hdr)
		if err != nil {
			t.Fatalf("%x: %v", tc.hdr, err)
		}
		n, err := a.FrameSamples(tc.hdr)
		if a.SampleRate != tc.rate || a.Channels != tc.ch || a.BitRate != tc.br || a.ObjectTypeIndication != tc.ot || n != tc.samples || err != nil || a.Codecs != "mp4a.40.34" || a.Config != nil {
			t.Errorf("%x: %+v samples %d %v", tc.hdr, a, n, err)
		}
	}
	for _, tc := range []struct {
		hdr  []byte
		want error
	}{
		{[]byte{0xff, 0xfb, 0x90}, errMP3Truncated},
		{[]byte{0xff, 0x1b, 0x90, 0}, errMP3Sync},
		{[]byte{0xff, 0xeb, 0x90, 0}, errMP3Version},
		{[]byte{0xff, 0xfd, 0x90, 0}, errMP3Layer}, // layer II
		{[]byte{0xff, 0xfb, 0x00, 0}, errMP3Bitrate},
		{[]byte{0xff, 0xfb, 0xf0, 0}, errMP3Bitrate},
		{[]byte{0xff, 0xfb, 0x9c, 0}, errMP3Rate},
	} {
		if _, err := AudioFromFrame(MP3, tc.hdr); !errors.Is(err, tc.want) {
			t.Errorf("%x: %v, want %v", tc.hdr, err, tc.want)
		}
	}
}

// eac3Frame builds an E-AC-3 sync frame of size bytes.
func eac3Frame(strmtyp, substreamid, acmod int, lfe bool, chanmap int, bsmod int, size int) []byte {
	w := new(bitWriter).put(0x0b77, 16).put(uint32(strmtyp), 2).put(uint32(substreamid), 3).put(uint32(size/2-1), 11)
	w.put(0, 2).put(3, 2) // 48 kHz, six blocks
	w.put(uint32(acmod), 3).put(boolBit(lfe), 1).put(16, 5).put(27, 5).put(0, 1)
	if acmod == 0 {
		w.put(27, 5).put(0, 1)
	}
	if strmtyp == 1 {
		w.put(boolBit(chanmap >= 0), 1)
		if chanmap >= 0 {
			w.put(uint32(chanmap), 16)
		}
	}
	w.put(0, 1)                       // mixmdate
	w.put(1, 1).put(uint32(bsmod), 3) // infomdate, bsmod
	return append(w.b, make([]byte, size-len(w.b))...)
}

func TestAC3(t *testing.T) {
	// 7.1: 5.1 independent substream and a dependent one with Lrs/Rrs
	// (chanmap location 6, counted from the MSB; chan_loc bit 1, counted
	// from the LSB).
	f := append(eac3Frame(0, 0, 7, true, -1, 2, 64), eac3Frame(1, 0, 2, false, 1<<(15-6), 0, 64)...)
	a, err := AudioFromFrame(EAC3, f)
	if err != nil {
		t.Fatal(err)
	}
	// data_rate 2 × 64 × 8 × 48000 / 1536 = 32 kbit/s; one independent
	// substream; fscod 0, bsid 16, bsmod 2, acmod 7, lfe, one dependent
	// substream, chan_loc Lrs/Rrs.
	want := new(bitWriter).put(32, 13).put(0, 3).put(0, 2).put(16, 5).put(0, 2).put(2, 3).put(7, 3).put(1, 1).put(0, 3).put(1, 4).put(2, 9).b
	if !bytes.Equal(a.Config, want) || a.Channels != 8 || a.BSMod != 2 || a.SampleRate != 48000 || a.Blocks != 6 || a.BitRate != 32000 {
		t.Errorf("dec3 %x want %x, %+v", a.Config, want, a)
	}
	if n, err := a.FrameSamples(f); n != 1536 || err != nil {
		t.Errorf("FrameSamples %d %v", n, err)
	}
	// Two independent substreams (a second programme).
	a, err = AudioFromFrame(EAC3, append(eac3Frame(0, 0, 2, false, -1, 0, 64), eac3Frame(0, 1, 1, false, -1, 7, 64)...))
	if err != nil || a.Config[1]&7 != 1 || len(a.Config) != 8 || a.Channels != 2 {
		t.Errorf("two programmes: %x %v", a.Config, err)
	}
	// Dual mono (acmod 0) reads dialnorm2.
	if a, err = AudioFromFrame(EAC3, eac3Frame(0, 0, 0, false, -1, 5, 64)); err != nil || a.BSMod != 5 || a.Channels != 2 {
		t.Errorf("dual mono: %+v %v", a, err)
	}
	for chanmap, want := range map[int]int{
		1 << (15 - 5): 1, 1 << (15 - 12): 1 << 7, 1 << (15 - 14): 1 << 8, // Lc/Rc, Cvh, LFE2
		1<<15 | 1<<(15-13) | 1: 0, // L, reserved, LFE: nothing beyond 5.1
	} {
		if got := chanLoc(chanmap); got != want {
			t.Errorf("chanmap %016b: chan_loc %09b, want %09b", chanmap, got, want)
		}
	}
	for _, tc := range []struct {
		name string
		f    []byte
		want string
	}{
		{"dependent first", eac3Frame(1, 0, 2, false, -1, 0, 64), "dependent substream before"},
		{"substream id", eac3Frame(0, 1, 2, false, -1, 0, 64), "independent substream 1 after 0"},
		{"short", []byte{0x0b, 0x77, 0}, "e-ac-3 frame: truncated"},
		{"sync", make([]byte, 64), "e-ac-3 frame: syncword 0000"},
		{"bsid", ac3Frame(0, 8, 0), "bsid 8 is not E-AC-3"},
	} {
		if _, err := AudioFromFrame(EAC3, tc.f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}

	a, err = AudioFromFrame(AC3, ac3Frame(1, 8, 7))
	if err != nil {
		t.Fatal(err)
	}
	if a.SampleRate != 44100 || a.Channels != 6 || a.BitRate != 80000 || !bytes.Equal(a.Config, []byte{0x50, 0x3c, 0xa0}) {
		t.Errorf("%+v %x", a, a.Config)
	}
	for _, tc := range []struct {
		name string
		f    []byte
		want string
	}{
		{"E-AC-3 as AC-3", eac3Frame(0, 0, 2, false, -1, 0, 64), "bsid 16 is not AC-3"},
		{"fscod 3", ac3Frame(3, 8, 2), "reserved fscod 3"},
		{"frmsizecod", append(ac3Frame(0, 8, 2)[:4], 0x3f, 0x40, 0x40), "frmsizecod 63"},
		{"short", []byte{0x0b, 0x77, 0, 0, 0}, "ac-3 frame: truncated"},
		{"truncated bsi", ac3Frame(0, 8, 7)[:6], "ac-3 frame: truncated"},
		{"sync", make([]byte, 8), "ac-3 frame: syncword"},
	} {
		if _, err := AudioFromFrame(AC3, tc.f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// ac3Frame builds the start of an AC-3 sync frame: fscod, bsid 8 or other,
// bsmod 0, acmod, lfe on for acmod 7, frmsizecod 10 (80 kbit/s).
func ac3Frame(fscod, bsid, acmod int) []byte {
	w := new(bitWriter).put(0x0b77, 16).put(0, 16).put(uint32(fscod), 2).put(10, 6).put(uint32(bsid), 5).put(0, 3).put(uint32(acmod), 3)
	if acmod&1 != 0 && acmod != 1 {
		w.put(0, 2)
	}
	if acmod&4 != 0 {
		w.put(0, 2)
	}
	if acmod == 2 {
		w.put(0, 2)
	}
	w.put(boolBit(acmod == 7), 1)
	return append(w.b, make([]byte, 8)...)
}
