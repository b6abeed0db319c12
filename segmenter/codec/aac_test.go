package codec

import (
	"bytes"
	"strings"
	"testing"
)

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
			a, err := ParseAudio(AAC, tc.asc)
			if err != nil {
				t.Fatal(err)
			}
			if a.Codecs != tc.codec || a.ObjectType != tc.aot || a.SampleRate != tc.rate || a.Channels != tc.ch ||
				a.ADTSProfile != tc.profile || a.ADTSSampleIndex != tc.sfi || a.ChannelConfig != tc.ch || !bytes.Equal(a.Config, tc.asc) {
				t.Fatalf("got %+v", a)
			}
			if n, err := a.FrameSamples([]byte{1, 2, 3}); n != 1024 || err != nil {
				t.Fatalf("FrameSamples %d %v", n, err)
			}
		})
	}
	a, err := ParseAudio(AAC, new(bitWriter).put(2, 5).put(3, 4).put(7, 4).put(0, 3).b)
	if err != nil || a.Channels != 8 || a.ChannelConfig != 7 {
		t.Fatalf("7.1: %+v %v", a, err)
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
			_, err := ParseAudio(AAC, tc.asc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
