package cctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fount-live/fount/ingest/flv"
	"github.com/fount-live/fount/segmenter/codec"
)

func TestParity(t *testing.T) {
	for b, want := range map[byte]byte{0x00: 0x80, 0x14: 0x94, 0x20: 0x20, 0x2c: 0x2c, 'H': 0xc8, 'E': 0x45, 'L': 0x4c} {
		if got := Parity(b); got != want {
			t.Errorf("Parity(%#x) = %#x, want %#x", b, got, want)
		}
	}
}

// TestSEIReadBack: fount's parser finds field-1 608 in what SEI writes,
// also when emulation prevention bytes are needed (a 0x00 0x00 pair).
func TestSEIReadBack(t *testing.T) {
	for _, p := range []Pair{Padding, {0, 0}, pair('H', 'I')} {
		nal := SEI(p, p)
		frame := append([]byte{0, 0, 0, byte(len(nal))}, nal...)
		c, err := codec.FindCaptions(codec.AVC, frame, 4)
		if err != nil || c != codec.CEA608Field1 {
			t.Errorf("pair %x: FindCaptions = %v, %v; want 608 field 1", p, c, err)
		}
	}
}

// TestCaptionedFLV checks the test source itself with ffmpeg: ffprobe sees
// Closed Captions in it, and ffmpeg's own 608 decoder reads the text back.
func TestCaptionedFLV(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg is missing")
		}
		t.Skip("no ffmpeg")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.flv")
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "30", "-pix_fmt", "yuv420p", "-f", "flv", src)
	tags, err := flv.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tags, err = Captions(tags, "HELLO FOUNT", 60)
	if err != nil {
		t.Fatal(err)
	}
	cc := filepath.Join(dir, "cc.flv")
	if err := os.WriteFile(cc, WriteFLV(tags), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run("ffprobe", "-hide_banner", cc); !strings.Contains(out, "Closed Captions") {
		t.Fatalf("ffprobe does not report Closed Captions:\n%s", out)
	}
	srt := filepath.Join(dir, "cc.srt")
	run("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "movie="+cc+"[out0+subcc]", "-map", "0:s", srt)
	b, err := os.ReadFile(srt)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(b), "HELLO FOUNT") < 2 {
		t.Fatalf("ffmpeg reads captions %q, want HELLO FOUNT twice", b)
	}
}
