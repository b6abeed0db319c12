package segmenter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/hevc"
)

func readHVCC(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hevc", name+".hvcC"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The records are the hvcC boxes of libx265 clips (testdata/README.md); the
// expected profile and size are what ffprobe reports for those clips.
var hevcCases = []struct {
	file    string
	codec   string
	profile string
	level   string
	w, h    int
	cw, ch  int // coded size
	chroma  int
	depth   int
}{
	{"main", "hvc1.1.6.L93.90", "Main", "3.1", 1280, 720, 1280, 720, 1, 8},
	{"main10", "hvc1.2.4.L93.90", "Main 10", "3.1", 1280, 720, 1280, 720, 1, 10},
	{"main10_1080", "hvc1.2.4.L120.90", "Main 10", "4", 1920, 1080, 1920, 1080, 1, 10},
	// 4:2:2 with a conformance window (coded 648x368) counted in chroma samples.
	{"rext422", "hvc1.4.10.L63.9D.8", "Main 4:2:2 10", "2.1", 642, 362, 648, 368, 2, 8},
}

func TestHEVCConfigReal(t *testing.T) {
	for _, tc := range hevcCases {
		t.Run(tc.file, func(t *testing.T) {
			rec := readHVCC(t, tc.file)
			c, err := parseHEVCConfig(rec)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.codec(); got != tc.codec {
				t.Errorf("codec %q, want %q", got, tc.codec)
			}
			si := c.spsInfo
			if si.width != tc.w || si.height != tc.h || si.codedWidth != tc.cw || si.codedHeight != tc.ch {
				t.Errorf("size %dx%d coded %dx%d, want %dx%d coded %dx%d", si.width, si.height, si.codedWidth, si.codedHeight, tc.w, tc.h, tc.cw, tc.ch)
			}
			if si.chromaFormatIDC != tc.chroma || int(c.chromaFormat) != tc.chroma {
				t.Errorf("chroma_format_idc %d (record %d), want %d", si.chromaFormatIDC, c.chromaFormat, tc.chroma)
			}
			if si.bitDepthLuma != tc.depth || c.bitDepthLuma != tc.depth || c.bitDepthChroma != tc.depth {
				t.Errorf("bit depth %d (record %d/%d), want %d", si.bitDepthLuma, c.bitDepthLuma, c.bitDepthChroma, tc.depth)
			}
			// The SPS's profile_tier_level says what the record's header says.
			if si.profileIDC != int(c.profileIDC) || si.levelIDC != int(c.levelIDC) || si.highTier != c.highTier {
				t.Errorf("SPS profile %d level %d, record %d %d", si.profileIDC, si.levelIDC, c.profileIDC, c.levelIDC)
			}
			// x265 writes one VPS, SPS and PPS and a prefix SEI with its
			// settings, and 4-byte lengths.
			if len(c.vps) != 1 || len(c.sps) != 1 || len(c.pps) != 1 || len(c.sei) != 1 || len(c.arrays) != 4 || c.nalLengthSize != 4 {
				t.Errorf("%d VPS %d SPS %d PPS %d SEI in %d arrays, length size %d", len(c.vps), len(c.sps), len(c.pps), len(c.sei), len(c.arrays), c.nalLengthSize)
			}
			// ffmpeg marks the parameter set arrays complete for an hvc1
			// sample entry (only main10_1080 was made with -tag:v hvc1).
			for _, a := range c.arrays {
				if want := tc.file == "main10_1080" && a.nalType != hevcNALPrefixSEI; a.complete != want {
					t.Errorf("array of type %d: complete %v", a.nalType, a.complete)
				}
			}
			if !bytes.Contains(c.sei[0], []byte("x265")) {
				t.Error("SEI is not x265's")
			}
			// The SPS needs its emulation prevention bytes removed: parsing
			// it raw must not give the same answer.
			if !bytes.Contains(c.sps[0], []byte{0, 0, 3}) {
				t.Error("test SPS has no emulation prevention byte")
			}
			info, err := DescribeHEVC(rec)
			if err != nil {
				t.Fatal(err)
			}
			want := HEVCInfo{Codec: tc.codec, Profile: tc.profile, Level: tc.level, Width: tc.w, Height: tc.h,
				ChromaFormat: tc.chroma, BitDepthLuma: tc.depth, BitDepthChroma: tc.depth}
			if info != want {
				t.Errorf("DescribeHEVC\n got %+v\nwant %+v", info, want)
			}
		})
	}
	info, _ := DescribeHEVC(readHVCC(t, "main10_1080"))
	if got, want := info.String(), "HEVC Main 10 1920x1080 (hvc1.2.4.L120.90)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
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
		info, err := DescribeHEVC(rec)
		if err != nil {
			t.Fatal(err)
		}
		w, h := sps.ImageSize()
		if want := hevc.CodecString("hvc1", sps); info.Codec != want || info.Width != int(w) || info.Height != int(h) {
			t.Errorf("%s: %s %dx%d, mp4ff %s %dx%d", tc.file, info.Codec, info.Width, info.Height, want, w, h)
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

func TestHEVCConfigErrors(t *testing.T) {
	real, err := parseHEVCConfig(readHVCC(t, "main"))
	if err != nil {
		t.Fatal(err)
	}
	rec := readHVCC(t, "main")
	header := rec[:22]
	vps, sps, pps := real.vps[0], real.sps[0], real.pps[0]
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
			_, err := parseHEVCConfig(tc.b)
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
	if _, err := parseHEVCConfig(append(bytes.Clone(rec), 1, 2, 3)); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}
	// Every prefix of a real record fails cleanly.
	for n := range len(rec) - 1 {
		if _, err := parseHEVCConfig(rec[:n]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
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

// smallHEVCRecord is a real record with its SEI cut to 16 bytes.
func smallHEVCRecord(t testing.TB, file string) []byte {
	rec := readHVCC(t, file)
	c, err := parseHEVCConfig(rec)
	if err != nil {
		t.Fatal(err)
	}
	return hevcRecord(rec[:22], c.vps[0], c.sps[0], c.pps[0], c.sei[0][:16])
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
	if si.profileIDC != 2 || !si.highTier || si.levelIDC != 123 || si.chromaFormatIDC != 2 || si.width != 512 || si.height != 512 || si.bitDepthLuma != 10 {
		t.Fatalf("%+v", si)
	}
}

func TestHEVCProfileNames(t *testing.T) {
	rext := func(flags uint64) *hevcConfig {
		c := &hevcConfig{profileIDC: 4}
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
		c    *hevcConfig
		want string
	}{
		{&hevcConfig{profileIDC: 1}, "Main"},
		{&hevcConfig{profileIDC: 3}, "Main Still Picture"},
		{&hevcConfig{profileIDC: 0, compat: 1 << (31 - 2)}, "Main 10"},
		{&hevcConfig{profileIDC: 0}, "profile 0"},
		{&hevcConfig{profileIDC: 31}, "profile 31"},
		{&hevcConfig{profileSpace: 2, profileIDC: 1}, "profile B1"},
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
	if got := (&hevcConfig{profileSpace: 1, profileIDC: 1, highTier: true, levelIDC: 153, compat: 0x40000000, constraints: [6]byte{0xb0}}).codec(); got != "hvc1.A1.2.H153.B0" {
		t.Errorf("codec %q", got)
	}
	for idc, want := range map[byte]string{93: "3.1", 120: "4", 186: "6.2", 0: "0", 100: "level_idc 100"} {
		if got := hevcLevel(idc); got != want {
			t.Errorf("level %d: %q, want %q", idc, got, want)
		}
	}
}

// TestHEVCFFprobe encodes fresh clips with libx265 and checks DescribeHEVC
// against what ffprobe reports for them.
func TestHEVCFFprobe(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	for _, tc := range []struct{ size, pixFmt string }{
		{"1280x720", "yuv420p"},
		{"1280x720", "yuv420p10le"},
		{"1918x1078", "yuv420p10le"}, // needs a conformance window
		{"320x240", "yuv444p"},
	} {
		name := filepath.Join(dir, tc.size+tc.pixFmt+".mp4")
		out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size="+tc.size+":rate=30",
			"-frames:v", "1", "-c:v", "libx265", "-x265-params", "log-level=error", "-pix_fmt", tc.pixFmt, "-tag:v", "hvc1", name).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, out)
		}
		out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=profile,width,height",
			"-of", "csv=p=0", name).Output()
		if err != nil {
			t.Fatalf("ffprobe: %v", err)
		}
		f := strings.Split(strings.TrimSpace(string(out)), ",")
		if len(f) != 3 {
			t.Fatalf("ffprobe said %q", out)
		}
		file, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := findBox(file, "hvcC")
		if err != nil {
			t.Fatal(err)
		}
		info, err := DescribeHEVC(rec)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.size, tc.pixFmt, err)
		}
		// ffprobe calls every range extensions profile "Rext".
		profile := info.Profile
		if strings.HasPrefix(profile, "Main 4:") || strings.HasPrefix(profile, "Monochrome") || profile == "Main 12" {
			profile = "Rext"
		}
		if got := []string{profile, strconv.Itoa(info.Width), strconv.Itoa(info.Height)}; strings.Join(got, ",") != strings.Join(f, ",") {
			t.Errorf("%s %s: DescribeHEVC %v (%s), ffprobe %v", tc.size, tc.pixFmt, got, info, f)
		}
		t.Logf("%s %s: %s", tc.size, tc.pixFmt, info)
	}
}

// findBox returns the payload of the first box of the given type, looking
// inside the container boxes on the way to a sample entry.
func findBox(b []byte, typ string) ([]byte, error) {
	for len(b) >= 8 {
		size := int(binary.BigEndian.Uint32(b))
		name := string(b[4:8])
		if size < 8 || size > len(b) {
			return nil, errors.New("bad box size")
		}
		body := b[8:size]
		if name == typ {
			return body, nil
		}
		skip := -1
		switch name {
		case "moov", "trak", "mdia", "minf", "stbl":
			skip = 0
		case "stsd":
			skip = 8 // version, flags, entry count
		case "hvc1", "hev1":
			skip = 78 // VisualSampleEntry fields
		}
		if skip >= 0 && skip <= len(body) {
			if r, err := findBox(body[skip:], typ); err == nil {
				return r, nil
			}
		}
		b = b[size:]
	}
	return nil, errors.New(typ + " not found")
}

func FuzzHEVCConfig(f *testing.F) {
	// The real records without most of x265's 2 KB settings SEI: long
	// inputs make the engine's minimisation crawl.
	for _, tc := range hevcCases {
		f.Add(smallHEVCRecord(f, tc.file))
	}
	f.Add(hevcRecord(readHVCC(f, "main")[:22]))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		c, err := parseHEVCConfig(b)
		if !bytes.Equal(in, b) {
			t.Fatal("input modified")
		}
		if err != nil {
			if c != nil {
				t.Fatal("config with an error")
			}
			if !strings.HasPrefix(err.Error(), "hevc config: ") {
				t.Fatalf("error %q without context", err)
			}
			return
		}
		si := c.spsInfo
		if si.width <= 0 || si.height <= 0 || si.width > si.codedWidth || si.height > si.codedHeight || si.codedWidth > hevcMaxLumaSize || si.codedHeight > hevcMaxLumaSize {
			t.Fatalf("accepted size %dx%d coded %dx%d", si.width, si.height, si.codedWidth, si.codedHeight)
		}
		if len(c.vps) == 0 || len(c.sps) == 0 || len(c.pps) == 0 || (c.nalLengthSize != 1 && c.nalLengthSize != 2 && c.nalLengthSize != 4) {
			t.Fatalf("accepted %d VPS %d SPS %d PPS, length size %d", len(c.vps), len(c.sps), len(c.pps), c.nalLengthSize)
		}
		total := 0
		var nals []byte
		for _, a := range c.arrays {
			for _, n := range a.nalus {
				if len(n) < 2 || n[0]>>1&0x3f != a.nalType {
					t.Fatalf("NAL unit %x in array of type %d", n, a.nalType)
				}
				total += 2 + len(n)
				nals = append(nals, n...)
			}
		}
		if total+23 > len(b) {
			t.Fatalf("%d bytes of NAL units from a %d-byte record", total, len(b))
		}
		// The config owns its bytes: scribbling on the input changes nothing.
		for i := range b {
			b[i] ^= 0xff
		}
		var after []byte
		for _, a := range c.arrays {
			for _, n := range a.nalus {
				after = append(after, n...)
			}
		}
		copy(b, in)
		if !bytes.Equal(nals, after) {
			t.Fatal("config aliases the input")
		}
		info, err := DescribeHEVC(b)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(info.Codec, "hvc1.") || strings.Count(info.Codec, ".") < 3 || info.Profile == "" ||
			info.Width != si.width || info.Height != si.height {
			t.Fatalf("described as %+v", info)
		}
	})
}
