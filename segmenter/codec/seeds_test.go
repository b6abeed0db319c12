package codec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seed is a file of testdata/seeds: real encoder output that TestVideoClips
// and TestAudioClips wrote with -update, so that these checks and the fuzz
// targets have real input without ffmpeg.
type seed struct {
	name string
	kind string // avcC, hvcC, av1C, vpcC, asc, OpusHead, fLaC, key, frame
	id   ID
	b    []byte
}

// codecOfSeed names the codec from the clip name after the kind.
func codecOfSeed(clip string) ID {
	for _, c := range []struct {
		prefix string
		id     ID
	}{{"h264", AVC}, {"hevc", HEVC}, {"av1", AV1}, {"vp9", VP9}, {"aac", AAC}, {"opus", Opus}, {"flac", FLAC}, {"eac3", EAC3}, {"ac3", AC3}, {"mp3", MP3}} {
		if strings.HasPrefix(clip, c.prefix) {
			return c.id
		}
	}
	return Unknown
}

func readSeeds(t testing.TB) []seed {
	t.Helper()
	dir := filepath.Join("testdata", "seeds")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []seed
	for _, e := range entries {
		kind, clip, ok := strings.Cut(e.Name(), "-")
		if !ok {
			t.Fatalf("seed %s: no kind", e.Name())
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		id := codecOfSeed(clip)
		if id == Unknown {
			t.Fatalf("seed %s: unknown codec", e.Name())
		}
		out = append(out, seed{name: e.Name(), kind: kind, id: id, b: b})
	}
	return out
}

// seedAudio returns the configuration for the audio frames of a clip.
func seedAudio(t testing.TB, seeds []seed, clip string, id ID, frame []byte) *Audio {
	t.Helper()
	for _, s := range seeds {
		if s.kind == "frame" || strings.TrimPrefix(s.name, s.kind+"-") != clip {
			continue
		}
		a, err := ParseAudio(id, s.b)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		return a
	}
	a, err := AudioFromFrame(id, frame)
	if err != nil {
		t.Fatalf("%s frame: %v", clip, err)
	}
	return a
}

func TestSeeds(t *testing.T) {
	seeds := readSeeds(t)
	videos := map[string]*Video{}
	for _, s := range seeds {
		clip := strings.TrimPrefix(s.name, s.kind+"-")
		switch s.kind {
		case "avcC", "hvcC", "av1C", "vpcC":
			v, err := ParseVideo(s.id, s.b)
			if err != nil {
				t.Errorf("%s: %v", s.name, err)
				continue
			}
			videos[clip] = v
		case "asc", "OpusHead", "fLaC":
			if _, err := ParseAudio(s.id, s.b); err != nil {
				t.Errorf("%s: %v", s.name, err)
			}
		}
	}
	for _, s := range seeds {
		clip := strings.TrimPrefix(s.name, s.kind+"-")
		switch s.kind {
		case "key":
			kf, err := VideoFromKeyframe(s.id, s.b)
			if err != nil {
				t.Errorf("%s: %v", s.name, err)
				continue
			}
			v := videos[clip]
			if v == nil {
				t.Errorf("%s: no record seed", s.name)
				continue
			}
			if v, err = v.WithKeyframe(s.b); err != nil {
				t.Errorf("%s: WithKeyframe: %v", s.name, err)
				continue
			}
			if kf.Codecs != v.Codecs || kf.Width != v.Width || kf.Height != v.Height {
				t.Errorf("%s: %s %dx%d, record %s %dx%d", s.name, kf.Codecs, kf.Width, kf.Height, v.Codecs, v.Width, v.Height)
			}
		case "frame":
			a := seedAudio(t, seeds, clip, s.id, s.b)
			n, err := a.FrameSamples(s.b)
			if err != nil || n <= 0 {
				t.Errorf("%s: FrameSamples %d %v", s.name, n, err)
			}
		}
	}
}

// TestFrameSamplesNoAllocs: FrameSamples runs once per audio frame.
func TestFrameSamplesNoAllocs(t *testing.T) {
	seeds := readSeeds(t)
	tested := map[ID]bool{}
	for _, s := range seeds {
		if s.kind != "frame" {
			continue
		}
		a := seedAudio(t, seeds, strings.TrimPrefix(s.name, "frame-"), s.id, s.b)
		frame := s.b
		if n := testing.AllocsPerRun(100, func() {
			if _, err := a.FrameSamples(frame); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per FrameSamples", s.name, n)
		}
		// The error paths allocate nothing either: a broken stream must not
		// cost more than a good one.
		bad := []byte{0}
		if n := testing.AllocsPerRun(100, func() { _, _ = a.FrameSamples(bad) }); n != 0 {
			t.Errorf("%s: %v allocations per failing FrameSamples", s.name, n)
		}
		tested[s.id] = true
	}
	for _, id := range []ID{AAC, Opus, FLAC, AC3, EAC3, MP3} {
		if !tested[id] {
			t.Errorf("no frame seed for %v", id)
		}
	}
}
