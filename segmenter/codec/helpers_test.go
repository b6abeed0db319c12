package codec

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// -update rewrites the seed files under testdata/seeds from the clips the
// tests encode (small inputs for the fuzz targets and the tests that run
// without ffmpeg).
var update = flag.Bool("update", false, "rewrite testdata/seeds from freshly encoded clips")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Records from the segmenter's own test data (see ../testdata/README.md).
var (
	// H.264 High 640x360 30 fps, from main.flv
	avcCHigh = mustHex("0164001effe1001a6764001eacd940a02ff970110000030001000003003c0f162d9601000468efbcb0fdf8f800")
	// H.264 Baseline 320x240 25 fps
	avcCBase = mustHex("0142c00dffe100186742c00dd90141fb011000000300100000030320f142a48001000568cb83cb20")
	// H.264 High 4:2:2 176x144 with scaling lists
	avcCHi422     = mustHex("017a000bffe10018677a000bbcd942c4ec0440000003004000000c83c50a658001000768ebe3cb3002c0fef8f800")
	ascLC44Stereo = mustHex("121056e500") // AAC-LC 44.1 kHz stereo
	ascLC48Mono   = mustHex("118856e500") // AAC-LC 48 kHz mono
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeSeed stores b as testdata/seeds/name when -update is set.
func writeSeed(t testing.TB, name string, b []byte) {
	t.Helper()
	if !*update {
		return
	}
	if err := os.MkdirAll(filepath.Join("testdata", "seeds"), 0o755); err != nil {
		t.Fatal(err)
	}
	name = strings.NewReplacer(" ", "_", ".", "_").Replace(name)
	if err := os.WriteFile(filepath.Join("testdata", "seeds", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// needFFmpeg skips the test when ffmpeg is missing, unless CI is set: there
// it is a failure, as CI installs Debian's ffmpeg.
func needFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ffmpeg is required in CI: %v", err)
		}
		t.Skip("ffmpeg not installed")
	}
}

// ffmpeg runs ffmpeg with args and the output file dir/name last, and
// returns that path.
func ffmpeg(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-v", "error", "-y"}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	return out
}

// track is the first track of an MP4 file as ffmpeg wrote it.
type track struct {
	file    []byte
	entry   mp4.Box // the sample entry
	samples [][]byte
	durs    []uint32 // sample durations in the track timescale
}

// readMP4 reads the first track's sample entry and samples with mp4ff.
func readMP4(t testing.TB, path string) track {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("mp4ff: %v", err)
	}
	stbl := f.Moov.Trak.Mdia.Minf.Stbl
	tr := track{file: data, entry: stbl.Stsd.Children[0]}
	n := int(stbl.Stsz.GetNrSamples())
	for nr := 1; nr <= n; nr++ {
		chunkNr, first, err := stbl.Stsc.ChunkNrFromSampleNr(nr)
		if err != nil {
			t.Fatal(err)
		}
		off, err := stbl.Stco.GetOffset(chunkNr)
		if err != nil {
			t.Fatal(err)
		}
		for s := first; s < nr; s++ {
			off += uint64(stbl.Stsz.GetSampleSize(s))
		}
		size := uint64(stbl.Stsz.GetSampleSize(nr))
		tr.samples = append(tr.samples, data[off:off+size])
		tr.durs = append(tr.durs, stbl.Stts.GetDur(uint32(nr)))
	}
	if len(tr.samples) == 0 {
		t.Fatalf("%s: no samples", path)
	}
	return tr
}

// payload returns a box's payload as mp4ff re-encodes it, and checks that
// these are the bytes ffmpeg wrote: the comparisons are with ffmpeg's
// output, not with mp4ff's idea of it.
func (tr track) payload(t testing.TB, b mp4.Box) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(tr.file, buf.Bytes()) {
		t.Fatalf("%s box re-encoded by mp4ff is not in the file", b.Type())
	}
	return buf.Bytes()[8:]
}

// childBox finds a sample entry's child of the given type.
func childBox(t testing.TB, entry mp4.Box, typ string) mp4.Box {
	t.Helper()
	var children []mp4.Box
	switch e := entry.(type) {
	case *mp4.VisualSampleEntryBox:
		children = e.Children
	case *mp4.AudioSampleEntryBox:
		children = e.Children
	}
	for _, c := range children {
		if c.Type() == typ {
			return c
		}
	}
	t.Fatalf("%s has no %s box", entry.Type(), typ)
	return nil
}
