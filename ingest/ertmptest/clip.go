package ertmptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ClipSpec describes a test clip for MakeClip. Zero fields take the defaults
// given; a clip has video, audio or both.
type ClipSpec struct {
	// Name is the file's base name without ".mp4"; by default it is made
	// from the other fields, so equal specs share one file in dir.
	Name string
	// Video is the video codec as its E-RTMP FourCC: "avc1" (libx264),
	// "hvc1" (libx265), "av01" (libaom-av1), "vp09" (libvpx-vp9), or "" for
	// none.
	Video string
	// Audio is the audio codec as its E-RTMP FourCC: "mp4a" (aac), "Opus"
	// (libopus), "fLaC" (flac), "ac-3" (ac3), "ec-3" (eac3), ".mp3"
	// (libmp3lame), or "" for none.
	Audio string
	// Width and Height default to 320x180; FPS to 30.
	Width, Height, FPS int
	// Duration defaults to 2 s.
	Duration time.Duration
	// GOP is the keyframe interval in frames (fixed, no scene cuts);
	// defaults to FPS (one keyframe a second).
	GOP int
	// BFrames is the number of consecutive B-frames for avc1 and hvc1
	// (0: none, so DTS = PTS).
	BFrames int
	// VideoKbps defaults to 300; AudioKbps to 64 (ignored by FLAC).
	VideoKbps, AudioKbps int
	// SampleRate defaults to 48000 (Opus is always 48000); Channels to 2.
	SampleRate, Channels int
	// ToneHz is the sine's frequency, 440 by default.
	ToneHz int
}

func (s ClipSpec) withDefaults() ClipSpec {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.Width, 320)
	def(&s.Height, 180)
	def(&s.FPS, 30)
	def(&s.GOP, s.FPS)
	def(&s.VideoKbps, 300)
	def(&s.AudioKbps, 64)
	def(&s.SampleRate, 48000)
	def(&s.Channels, 2)
	def(&s.ToneHz, 440)
	if s.Duration == 0 {
		s.Duration = 2 * time.Second
	}
	if s.Name == "" {
		clean := func(f string) string { return strings.NewReplacer(".", "", "-", "").Replace(f) }
		s.Name = fmt.Sprintf("clip-%s-%s-%dx%d-%d-%s-g%d-b%d-%dk-%dk-%d-%d-%d",
			clean(s.Video), clean(s.Audio), s.Width, s.Height, s.FPS, s.Duration, s.GOP, s.BFrames,
			s.VideoKbps, s.AudioKbps, s.SampleRate, s.Channels, s.ToneHz)
	}
	return s
}

// clipArgs returns ffmpeg's arguments for spec (with defaults) writing to out.
func clipArgs(s ClipSpec, out string) ([]string, error) {
	if s.Video == "" && s.Audio == "" {
		return nil, fmt.Errorf("clip %q has neither video nor audio", s.Name)
	}
	secs := strconv.FormatFloat(s.Duration.Seconds(), 'f', 3, 64)
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}
	if s.Video != "" {
		args = append(args, "-f", "lavfi", "-i",
			fmt.Sprintf("testsrc2=size=%dx%d:rate=%d:duration=%s", s.Width, s.Height, s.FPS, secs))
	}
	if s.Audio != "" {
		rate := s.SampleRate
		if s.Audio == "Opus" {
			rate = 48000
		}
		args = append(args, "-f", "lavfi", "-i",
			fmt.Sprintf("sine=frequency=%d:sample_rate=%d:duration=%s", s.ToneHz, rate, secs))
	}
	args = append(args, "-t", secs, "-threads", "1")
	g := strconv.Itoa(s.GOP)
	vb := strconv.Itoa(s.VideoKbps) + "k"
	switch s.Video {
	case "":
	case "avc1":
		args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
			"-g", g, "-keyint_min", g, "-sc_threshold", "0", "-bf", strconv.Itoa(s.BFrames), "-b:v", vb)
	case "hvc1":
		args = append(args, "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-tag:v", "hvc1", "-b:v", vb,
			"-x265-params", fmt.Sprintf("keyint=%s:min-keyint=%s:scenecut=0:bframes=%d:pools=1:frame-threads=1:info=0:log-level=error", g, g, s.BFrames))
	case "av01":
		args = append(args, "-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-row-mt", "0",
			"-pix_fmt", "yuv420p", "-g", g, "-keyint_min", g, "-b:v", vb)
	case "vp09":
		args = append(args, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p",
			"-g", g, "-keyint_min", g, "-b:v", vb)
	default:
		return nil, fmt.Errorf("clip video codec %q: want avc1, hvc1, av01 or vp09", s.Video)
	}
	if s.Audio != "" {
		args = append(args, "-ac", strconv.Itoa(s.Channels))
	}
	ab := strconv.Itoa(s.AudioKbps) + "k"
	switch s.Audio {
	case "":
	case "mp4a":
		args = append(args, "-c:a", "aac", "-b:a", ab)
	case "Opus":
		args = append(args, "-c:a", "libopus", "-b:a", ab)
	case "fLaC":
		args = append(args, "-c:a", "flac")
	case "ac-3":
		args = append(args, "-c:a", "ac3", "-b:a", ab)
	case "ec-3":
		args = append(args, "-c:a", "eac3", "-b:a", ab)
	case ".mp3":
		args = append(args, "-c:a", "libmp3lame", "-b:a", ab)
	default:
		return nil, fmt.Errorf("clip audio codec %q: want mp4a, Opus, fLaC, ac-3, ec-3 or .mp3", s.Audio)
	}
	// Opus and FLAC in MP4 were experimental in older ffmpeg releases.
	args = append(args, "-strict", "-2", "-f", "mp4", out)
	return args, nil
}

// MakeClip encodes a test clip with ffmpeg (testsrc2 and a sine) into an MP4
// file in dir and returns its path. An existing file of the same name is
// reused. The test is skipped when ffmpeg is not installed, unless the
// environment variable CI is set, in which case it fails.
func MakeClip(t testing.TB, dir string, spec ClipSpec) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ffmpeg is not installed, but CI must have it: %v", err)
		}
		t.Skipf("ffmpeg not installed: %v", err)
	}
	s := spec.withDefaults()
	out := filepath.Join(dir, s.Name+".mp4")
	if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
		return out
	}
	args, err := clipArgs(s, out)
	if err != nil {
		t.Fatalf("make clip: %v", err)
	}
	tmp := out + ".tmp.mp4"
	args[len(args)-1] = tmp
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("make clip: ffmpeg %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatalf("make clip: %v", err)
	}
	return out
}
