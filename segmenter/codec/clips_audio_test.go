package codec

import (
	"bytes"
	"os"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// TestAudioClips encodes short clips with Debian's ffmpeg and checks the
// parsers against ffmpeg's MP4 sample entries: the rendered dOps, dfLa,
// dac3 and dec3 payloads must be ffmpeg's bytes, rate and channels the
// sample entry's, and FrameSamples every sample's duration in the track.
func TestAudioClips(t *testing.T) {
	needFFmpeg(t)
	sine := func(rate string) []string {
		return []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=" + rate, "-t", "0.3"}
	}
	cat := func(a ...[]string) []string {
		var out []string
		for _, x := range a {
			out = append(out, x...)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		id     ID
		args   []string
		elem   string // an elementary stream to encode first (for its header), then remux to MP4
		codecs string
		rate   int
		ch     int
	}{
		{"aac", AAC, cat(sine("44100"), []string{"-c:a", "aac", "-ac", "2"}), "", "mp4a.40.2", 44100, 2},
		{"aac 5.1", AAC, cat(sine("48000"), []string{"-c:a", "aac", "-ac", "6"}), "", "mp4a.40.2", 48000, 6},
		{"opus", Opus, cat(sine("48000"), []string{"-c:a", "libopus", "-ac", "2"}), "opus", "opus", 48000, 2},
		{"opus mono 16k", Opus, cat(sine("16000"), []string{"-c:a", "libopus", "-ac", "1", "-frame_duration", "10"}), "opus", "opus", 48000, 1},
		{"opus 5.1", Opus, cat(sine("48000"), []string{"-c:a", "libopus", "-ac", "6", "-frame_duration", "40"}), "opus", "opus", 48000, 6},
		{"flac", FLAC, cat(sine("44100"), []string{"-c:a", "flac", "-ac", "2"}), "flac", "fLaC", 44100, 2},
		{"flac 24-bit 96k", FLAC, cat(sine("96000"), []string{"-c:a", "flac", "-ac", "1", "-sample_fmt", "s32", "-frame_size", "1000"}), "flac", "fLaC", 96000, 1},
		{"ac3 5.1", AC3, cat(sine("48000"), []string{"-c:a", "ac3", "-ac", "6"}), "", "ac-3", 48000, 6},
		{"ac3 stereo 44.1k", AC3, cat(sine("44100"), []string{"-c:a", "ac3", "-ac", "2", "-b:a", "96k"}), "", "ac-3", 44100, 2},
		{"eac3", EAC3, cat(sine("48000"), []string{"-c:a", "eac3", "-ac", "2"}), "", "ec-3", 48000, 2},
		{"eac3 5.1 32k", EAC3, cat(sine("32000"), []string{"-c:a", "eac3", "-ac", "6"}), "", "ec-3", 32000, 6},
		{"mp3", MP3, cat(sine("44100"), []string{"-c:a", "libmp3lame", "-ac", "2"}), "", "mp4a.40.34", 44100, 2},
		{"mp3 mpeg-2 mono", MP3, cat(sine("22050"), []string{"-c:a", "libmp3lame", "-ac", "1"}), "", "mp4a.40.34", 22050, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var header []byte
			var path string
			if tc.elem != "" {
				es := ffmpeg(t, dir, "clip."+tc.elem, tc.args...)
				b, err := os.ReadFile(es)
				if err != nil {
					t.Fatal(err)
				}
				if tc.id == Opus {
					header = oggFirstPacket(t, b)
				} else {
					header = b
				}
				path = ffmpeg(t, dir, "clip.mp4", "-i", es, "-c", "copy", "-strict", "-2")
			} else {
				path = ffmpeg(t, dir, "clip.mp4", tc.args...)
			}
			tr := readMP4(t, path)
			ase, ok := tr.entry.(*mp4.AudioSampleEntryBox)
			if !ok {
				t.Fatalf("sample entry %T", tr.entry)
			}
			var a *Audio
			var err error
			switch tc.id {
			case AAC:
				header = ase.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig
				a, err = ParseAudio(tc.id, header)
			case Opus, FLAC:
				a, err = ParseAudio(tc.id, header)
			default:
				a, err = AudioFromFrame(tc.id, tr.samples[0])
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Codec != tc.id || a.Codecs != tc.codecs || a.SampleRate != tc.rate || a.Channels != tc.ch {
				t.Errorf("got %v %q %d Hz %d ch, want %q %d Hz %d ch", a.Codec, a.Codecs, a.SampleRate, a.Channels, tc.codecs, tc.rate, tc.ch)
			}
			// The sample entry's 16-bit rate cannot say 96 kHz.
			if tc.id != Opus && a.SampleRate < 1<<16 && int(ase.SampleRate) != a.SampleRate {
				t.Errorf("sample entry rate %d, ours %d", ase.SampleRate, a.SampleRate)
			}
			switch tc.id {
			case Opus:
				if got, want := a.OpusDOps(), tr.payload(t, childBox(t, tr.entry, "dOps")); !bytes.Equal(got, want) {
					t.Errorf("dOps\n%x\nffmpeg's\n%x", got, want)
				}
				if a.PreSkip != int(ase.Dops.PreSkip) {
					t.Errorf("pre-skip %d, dOps %d", a.PreSkip, ase.Dops.PreSkip)
				}
				writeSeed(t, "OpusHead-"+tc.name, a.Config)
			case FLAC:
				if got, want := a.FLACDfLa(), tr.payload(t, childBox(t, tr.entry, "dfLa")); !bytes.Equal(got, want) {
					t.Errorf("dfLa\n%x\nffmpeg's\n%x", got, want)
				}
				// The bare STREAMINFO, as ffmpeg 8 and gortmplib send it, is the same.
				bare, err := ParseAudio(FLAC, a.Config)
				if err != nil || !bytes.Equal(bare.Config, a.Config) || bare.SampleRate != a.SampleRate {
					t.Errorf("bare STREAMINFO: %+v %v", bare, err)
				}
				writeSeed(t, "fLaC-"+tc.name, header[:42])
			case AC3:
				if got, want := a.Config, tr.payload(t, childBox(t, tr.entry, "dac3")); !bytes.Equal(got, want) {
					t.Errorf("dac3 %x, ffmpeg's %x", got, want)
				}
			case EAC3:
				if got, want := a.Config, tr.payload(t, childBox(t, tr.entry, "dec3")); !bytes.Equal(got, want) {
					t.Errorf("dec3 %x, ffmpeg's %x", got, want)
				}
			case MP3:
				if ot := int(ase.Esds.DecConfigDescriptor.ObjectType); ot != a.ObjectTypeIndication {
					t.Errorf("objectTypeIndication 0x%x, ffmpeg's 0x%x", a.ObjectTypeIndication, ot)
				}
			case AAC:
				if !bytes.Equal(a.Config, header) {
					t.Errorf("config %x, want %x", a.Config, header)
				}
				writeSeed(t, "asc-"+tc.name, header)
			}
			for i, s := range tr.samples {
				n, err := a.FrameSamples(s)
				if err != nil {
					t.Fatalf("sample %d: %v", i, err)
				}
				want := int(tr.durs[i])
				if tc.id == Opus {
					want = want * 48000 / int(ase.SampleRate) // track timescale may not be 48 kHz
				}
				// ffmpeg trims the last packet's duration to the end of
				// the input.
				if n != want && !(i == len(tr.samples)-1 && want < n) {
					t.Fatalf("sample %d: %d samples, track says %d", i, n, want)
				}
			}
			if len(tr.samples[0]) < 4000 {
				writeSeed(t, "frame-"+tc.name, tr.samples[0])
			}
		})
	}
}

// oggFirstPacket returns the first packet of an Ogg stream (RFC 3533): the
// OpusHead.
func oggFirstPacket(t testing.TB, b []byte) []byte {
	t.Helper()
	if len(b) < 27 || string(b[:4]) != "OggS" {
		t.Fatal("not an Ogg stream")
	}
	nseg := int(b[26])
	if len(b) < 27+nseg {
		t.Fatal("truncated Ogg page")
	}
	n := 0
	for _, l := range b[27 : 27+nseg] {
		n += int(l)
		if l < 255 {
			break
		}
	}
	start := 27 + nseg
	if len(b) < start+n {
		t.Fatal("truncated Ogg packet")
	}
	return b[start : start+n]
}
