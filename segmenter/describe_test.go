package segmenter

import (
	"os"
	"path/filepath"
	"testing"
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

// TestDescribeHEVC checks the deprecated wrapper over package codec that
// ingest still uses.
func TestDescribeHEVC(t *testing.T) {
	for _, tc := range hevcCases {
		info, err := DescribeHEVC(readHVCC(t, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		want := HEVCInfo{Codec: tc.codec, Profile: tc.profile, Level: tc.level, Width: tc.w, Height: tc.h,
			ChromaFormat: tc.chroma, BitDepthLuma: tc.depth, BitDepthChroma: tc.depth}
		if info != want {
			t.Errorf("%s: DescribeHEVC\n got %+v\nwant %+v", tc.file, info, want)
		}
	}
	info, _ := DescribeHEVC(readHVCC(t, "main10_1080"))
	if got, want := info.String(), "HEVC Main 10 1920x1080 (hvc1.2.4.L120.90)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if _, err := DescribeHEVC([]byte{1, 2}); err == nil {
		t.Error("truncated record accepted")
	}
}
