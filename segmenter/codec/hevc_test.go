package codec

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/hevc"
)

func readHVCC(t testing.TB, name string) []byte {
	t.Helper()
	return readTestdata(t, "hevc/"+name+".hvcC")
}

// The records are the hvcC boxes of libx265 clips (testdata/README.md); the
// expected profile and size are what ffprobe reports for those clips.
var hevcCases = []struct {
	file    string
	codec   string
	profile string
	level   string
	w, h    int
	chroma  int
	depth   int
}{
	{"main", "hvc1.1.6.L93.90", "Main", "3.1", 1280, 720, 1, 8},
	{"main10", "hvc1.2.4.L93.90", "Main 10", "3.1", 1280, 720, 1, 10},
	{"main10_1080", "hvc1.2.4.L120.90", "Main 10", "4", 1920, 1080, 1, 10},
	// 4:2:2 with a conformance window (coded 648x368) counted in chroma samples.
	{"rext422", "hvc1.4.10.L63.9D.8", "Main 4:2:2 10", "2.1", 642, 362, 2, 8},
}

func TestHEVCReal(t *testing.T) {
	for _, tc := range hevcCases {
		t.Run(tc.file, func(t *testing.T) {
			rec := readHVCC(t, tc.file)
			v, err := ParseVideo(HEVC, rec)
			if err != nil {
				t.Fatal(err)
			}
			if v.Codecs != tc.codec || v.ProfileName() != tc.profile || v.LevelName() != tc.level {
				t.Errorf("codec %q profile %q level %q, want %q %q %q", v.Codecs, v.ProfileName(), v.LevelName(), tc.codec, tc.profile, tc.level)
			}
			if v.Width != tc.w || v.Height != tc.h || v.ChromaFormat != tc.chroma || v.BitDepth != tc.depth {
				t.Errorf("%dx%d chroma %d depth %d", v.Width, v.Height, v.ChromaFormat, v.BitDepth)
			}
			// x265 writes one VPS, SPS and PPS (and a settings SEI) and
			// 4-byte lengths, and VUI timing: 30 or 25 fps.
			if len(v.VPS) != 1 || len(v.SPS) != 1 || len(v.PPS) != 1 || v.NALULengthSize != 4 {
				t.Errorf("%d VPS %d SPS %d PPS, length size %d", len(v.VPS), len(v.SPS), len(v.PPS), v.NALULengthSize)
			}
			if v.BitDepthChroma != tc.depth || v.HighTier {
				t.Errorf("chroma depth %d high tier %v", v.BitDepthChroma, v.HighTier)
			}
			if want := "HEVC " + tc.profile + " " + strconv.Itoa(tc.w) + "x" + strconv.Itoa(tc.h) + " (" + tc.codec + ")"; v.String() != want {
				t.Errorf("String() = %q, want %q", v.String(), want)
			}
			if v.FrameRate != 30 && v.FrameRate != 25 {
				t.Errorf("frame rate %v", v.FrameRate)
			}
			if v.Transfer != TransferSDR {
				t.Errorf("transfer %v", v.Transfer)
			}
			if !bytes.Contains(v.SPS[0], []byte{0, 0, 3}) {
				t.Error("test SPS has no emulation prevention byte")
			}
		})
	}
}

// TestHEVCAgainstMP4FF checks the codec string and size against mp4ff's
// independent HEVC parser.
func TestHEVCAgainstMP4FF(t *testing.T) {
	for _, tc := range hevcCases {
		rec := readHVCC(t, tc.file)
		dcr, err := hevc.DecodeHEVCDecConfRec(rec)
		if err != nil {
			t.Fatal(err)
		}
		sps, err := hevc.ParseSPSNALUnit(dcr.GetNalusForType(hevc.NALU_SPS)[0])
		if err != nil {
			t.Fatal(err)
		}
		v, err := ParseVideo(HEVC, rec)
		if err != nil {
			t.Fatal(err)
		}
		w, h := sps.ImageSize()
		if want := hevc.CodecString("hvc1", sps); v.Codecs != want || v.Width != int(w) || v.Height != int(h) {
			t.Errorf("%s: %s %dx%d, mp4ff %s %dx%d", tc.file, v.Codecs, v.Width, v.Height, want, w, h)
		}
		if vui := sps.VUI; vui != nil && vui.TimingInfoPresentFlag {
			if want := float64(vui.TimeScale) / float64(vui.NumUnitsInTick); v.FrameRate != want {
				t.Errorf("%s: frame rate %v, mp4ff %v", tc.file, v.FrameRate, want)
			}
		}
	}
}

// hevcRecord builds a record around the given NAL units (one array each).
func hevcRecord(header []byte, nals ...[]byte) []byte {
	b := append([]byte{}, header...)
	b = append(b, byte(len(nals)))
	for _, n := range nals {
		b = append(b, 0x80|n[0]>>1&0x3f, 0, 1, byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

// putUE writes an unsigned exp-Golomb code.
func putUE(w *bitWriter, v uint32) *bitWriter {
	n := 0
	for x := v + 1; x > 1; x >>= 1 {
		n++
	}
	return w.put(0, n).put(v+1, n+1)
}

func boolBit(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func TestHEVCErrors(t *testing.T) {
	rec := readHVCC(t, "main")
	real, err := ParseVideo(HEVC, rec)
	if err != nil {
		t.Fatal(err)
	}
	header := rec[:22]
	vps, sps, pps := real.VPS[0], real.SPS[0], real.PPS[0]
	mod := func(i int, v byte) []byte { b := bytes.Clone(rec); b[i] = v; return b }

	spsW := func(f func(w *bitWriter)) []byte {
		// A minimal SPS: NAL header, VPS id 0, no sub-layers, a
		// profile_tier_level for Main 3.1, then what f writes.
		w := new(bitWriter).put(0x4201, 16).put(0, 4).put(0, 3).put(1, 1)
		w.put(0x01, 8).put(0x60000000, 32).put(0x90000000, 32).put(0, 16).put(93, 8)
		f(w)
		return w.b
	}
	sizeSPS := func(w, h uint32, crop ...uint32) []byte {
		return spsW(func(b *bitWriter) {
			putUE(b, 0)           // sps_seq_parameter_set_id
			putUE(b, 1)           // chroma_format_idc
			putUE(putUE(b, w), h) // size
			b.put(boolBit(len(crop) > 0), 1)
			for _, c := range crop {
				putUE(b, c)
			}
			putUE(putUE(b, 0), 0) // bit depths
			b.put(1, 1)           // stop bit, so the RBSP is not all zeros
		})
	}
	if si, err := parseHEVCSPS(sizeSPS(1920, 1088, 0, 0, 0, 4)); err != nil || si.width != 1920 || si.height != 1080 {
		t.Fatalf("hand-built SPS: %+v %v", si, err)
	}

	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "hevc config: truncated record (0 bytes)"},
		{"short", rec[:22], "truncated record (22 bytes)"},
		{"version", mod(0, 0), "unsupported configurationVersion 0"},
		{"length size 3", mod(21, rec[21]&^3|2), "invalid NALU length size 3"},
		{"truncated array header", rec[:24], "truncated array 0 header"},
		{"too many NAL units", append(bytes.Clone(rec[:22]), 1, 0xa0, 0xff, 0xff, 0, 2, 0x40, 1), "claims 65535 NAL units"},
		{"truncated NAL length", append(bytes.Clone(rec[:22]), 1, 0xa0, 0, 2, 0, 6, 0x40, 1, 2, 3, 4, 5, 0), "truncated NAL unit length"},
		{"NAL overruns", hevcRecord(header, vps)[:40], "overruns the record"},
		{"NAL without header", append(bytes.Clone(rec[:22]), 1, 0xa0, 0, 1, 0, 1, 0x40, 0), "lacks a header"},
		{"wrong NAL type", append(bytes.Clone(rec[:22]), 1, 0xa1, 0, 1, 0, 2, 0x40, 1), "NAL unit of type 32 in an array of type 33"},
		{"no VPS", hevcRecord(header, sps, pps), "no VPS"},
		{"no SPS", hevcRecord(header, vps, pps), "no SPS"},
		{"no PPS", hevcRecord(header, vps, sps), "no PPS"},
		{"truncated SPS", hevcRecord(header, vps, sps[:12], pps), "hevc sps: truncated"},
		{"SPS of 2 bytes", hevcRecord(header, vps, sps[:2], pps), "hevc sps: truncated"},
		{"zero width", hevcRecord(header, vps, sizeSPS(0, 720), pps), "coded size 0x720 out of range"},
		{"huge height", hevcRecord(header, vps, sizeSPS(1280, 1<<20), pps), "out of range"},
		{"cropped away", hevcRecord(header, vps, sizeSPS(64, 64, 16, 16, 0, 0), pps), "empty picture"},
		{"sps id", hevcRecord(header, vps, spsW(func(w *bitWriter) { putUE(w, 16); w.put(1, 8) }), pps), "sps_seq_parameter_set_id 16 out of range"},
		{"chroma format", hevcRecord(header, vps, spsW(func(w *bitWriter) { putUE(putUE(w, 0), 4); w.put(1, 8) }), pps), "chroma_format_idc 4 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVideo(HEVC, tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// sps_max_sub_layers_minus1 = 7 is reserved.
	bad := bytes.Clone(sps)
	bad[2] = bad[2]&^0x0e | 7<<1
	if _, err := parseHEVCSPS(bad); err == nil || !strings.Contains(err.Error(), "sps_max_sub_layers_minus1 7") {
		t.Errorf("sub layers 7: %v", err)
	}
	if _, err := parseHEVCSPS(vps); err == nil || !strings.Contains(err.Error(), "NAL type 32") {
		t.Errorf("VPS as SPS: %v", err)
	}
	// A record in which the arrays are followed by junk still parses.
	if _, err := ParseVideo(HEVC, append(bytes.Clone(rec), 1, 2, 3)); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}
	// Every prefix of a real record fails cleanly.
	for n := range len(rec) - 1 {
		if _, err := ParseVideo(HEVC, rec[:n]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
	// Keyframes without their parameter sets.
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"no VPS", avcc(sps, pps), "hevc keyframe: no VPS"},
		{"no SPS", avcc(vps, pps), "hevc keyframe: no SPS"},
		{"no PPS", avcc(vps, sps), "hevc keyframe: no PPS"},
		{"bad SPS", avcc(vps, sps[:5], pps), "hevc keyframe: hevc sps: truncated"},
		{"overrun", []byte{0, 0, 1, 0, 0x40}, "hevc keyframe: NALU length 256 overruns"},
	} {
		if _, err := VideoFromKeyframe(HEVC, tc.frame); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestHEVCSubLayers parses an SPS whose profile_tier_level has sub-layer
// profiles and levels, the part x265 does not exercise.
func TestHEVCSubLayers(t *testing.T) {
	w := new(bitWriter).put(0x4201, 16).put(0, 4).put(2, 3).put(1, 1) // two sub-layers beyond the first
	w.put(0x22, 8).put(0x20000000, 32).put(0x90000000, 32).put(0, 16).put(123, 8)
	w.put(1, 1).put(1, 1) // sub-layer 0: profile and level present
	w.put(0, 1).put(1, 1) // sub-layer 1: level only
	w.put(0, 12)          // reserved_zero_2bits for i = 2..7
	w.put(0xffffffff, 32).put(0xffffffff, 32).put(0xffffff, 24).put(0xff, 8)
	w.put(0xff, 8)
	putUE(w, 0) // sps_seq_parameter_set_id
	putUE(w, 2) // chroma_format_idc 4:2:2
	putUE(putUE(w, 512), 512)
	w.put(0, 1)           // no conformance window
	putUE(putUE(w, 2), 2) // bit depth 10
	w.put(1, 1)
	si, err := parseHEVCSPS(w.b)
	if err != nil {
		t.Fatal(err)
	}
	if si.chromaFormatIDC != 2 || si.width != 512 || si.height != 512 || si.bitDepthLuma != 10 || si.maxSubLayersMinus1 != 2 {
		t.Fatalf("%+v", si)
	}
}

func TestHEVCProfileNames(t *testing.T) {
	rext := func(flags uint64) hevcPTL {
		c := hevcPTL{profileIDC: 4}
		for i := range 6 {
			c.constraints[i] = byte(flags >> (40 - 8*uint(i)))
		}
		return c
	}
	// Bits from the top: progressive, interlaced, non-packed, frame-only,
	// max_12bit, max_10bit, max_8bit, max_422, max_420, max_mono, intra,
	// one_picture_only (H.265 table A.2).
	flags := func(s string) uint64 {
		v, err := strconv.ParseUint(strings.ReplaceAll(s, " ", ""), 2, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v << (48 - 4 - 9)
	}
	for _, tc := range []struct {
		c    hevcPTL
		want string
	}{
		{hevcPTL{profileIDC: 1}, "Main"},
		{hevcPTL{profileIDC: 3}, "Main Still Picture"},
		{hevcPTL{profileIDC: 0, compat: 1 << (31 - 2)}, "Main 10"},
		{hevcPTL{profileIDC: 0}, "profile 0"},
		{hevcPTL{profileIDC: 31}, "profile 31"},
		{hevcPTL{profileSpace: 2, profileIDC: 1}, "profile B1"},
		{rext(flags("111 111 001")), "Monochrome"},
		{rext(flags("100 111 001")), "Monochrome 12"},
		{rext(flags("100 110 001")), "Main 12"},
		{rext(flags("110 100 001")), "Main 4:2:2 10"},
		{rext(flags("111 000 001")), "Main 4:4:4"},
		{rext(flags("110 000 100")), "Main 4:4:4 10 Intra"},
		{rext(flags("000 000 110")), "Main 4:4:4 16 Still Picture"},
	} {
		if got := tc.c.profileName(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
	if got := (hevcPTL{profileSpace: 1, profileIDC: 1, highTier: true, levelIDC: 153, compat: 0x40000000, constraints: [6]byte{0xb0}}).codecs(); got != "hvc1.A1.2.H153.B0" {
		t.Errorf("codec %q", got)
	}
	for idc, want := range map[byte]string{93: "3.1", 120: "4", 186: "6.2", 0: "0", 100: "level_idc 100"} {
		if got := hevcLevel(idc); got != want {
			t.Errorf("level %d: %q, want %q", idc, got, want)
		}
	}
}
