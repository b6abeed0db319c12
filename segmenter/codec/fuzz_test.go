package codec

import (
	"bytes"
	"strings"
	"testing"
)

// The fuzz targets take the codec as a byte so that every parser also meets
// every other codec's input.

func fuzzID(b byte) ID { return ID(b % 11) }

// errPrefixes are how errors start: they name the codec.
var errPrefixes = []string{"avc ", "hevc ", "av1 ", "vp9 ", "aac ", "opus ", "flac ", "ac-3 ", "e-ac-3 ", "mp3 ", "codec: ", "AAC: ", "Opus: ", "FLAC: ", "AC-3: ", "E-AC-3: ", "MP3: "}

func checkErr(t *testing.T, err error) {
	t.Helper()
	for _, p := range errPrefixes {
		if strings.HasPrefix(err.Error(), p) {
			return
		}
	}
	t.Fatalf("error %q does not name the codec", err)
}

// addSeeds adds the seed files of the given kinds, and smaller records.
func addSeeds(f *testing.F, kinds ...string) {
	for _, s := range readSeeds(f) {
		for _, k := range kinds {
			if s.kind == k {
				f.Add(uint8(s.id), s.b)
			}
		}
	}
}

// smallHEVCRecord is a real record without x265's 2 KB settings SEI: long
// inputs make the engine's minimisation crawl.
func smallHEVCRecord(t testing.TB, file string) []byte {
	rec := readHVCC(t, file)
	v, err := ParseVideo(HEVC, rec)
	if err != nil {
		t.Fatal(err)
	}
	return hevcRecord(rec[:22], v.VPS[0], v.SPS[0], v.PPS[0])
}

func checkVideo(t *testing.T, id ID, in []byte, v *Video) {
	t.Helper()
	if v.Codec != id || v.Codecs == "" || len(v.Record) == 0 || v.Width < 0 || v.Height < 0 || v.FrameRate < 0 {
		t.Fatalf("accepted %+v", v)
	}
	if (id == AVC || id == HEVC) && (v.Width <= 0 || v.Height <= 0 || len(v.SPS) == 0 || len(v.PPS) == 0) {
		t.Fatalf("accepted %+v", v)
	}
	// The configuration owns its bytes.
	rec := bytes.Clone(v.Record)
	for i := range in {
		in[i] ^= 0xff
	}
	if !bytes.Equal(rec, v.Record) {
		t.Fatal("configuration aliases its input")
	}
	for i := range in {
		in[i] ^= 0xff
	}
}

func FuzzParseVideo(f *testing.F) {
	addSeeds(f, "avcC", "hvcC", "av1C", "vpcC")
	f.Add(uint8(AV1), []byte{0x80, 4, 0x81, 0x00, 0x0c, 0x80})
	for _, r := range [][]byte{avcCHigh, avcCBase, avcCHi422} {
		f.Add(uint8(AVC), r)
	}
	for _, tc := range hevcCases {
		f.Add(uint8(HEVC), smallHEVCRecord(f, tc.file))
	}
	f.Fuzz(func(t *testing.T, idb uint8, b []byte) {
		id := fuzzID(idb)
		in := bytes.Clone(b)
		if id == AV1 { // the MPEG-2 TS descriptor is AV1's other sequence start
			if d, err := ParseAV1TSDescriptor(b); err != nil {
				checkErr(t, err)
			} else if d.Codec != AV1 || d.Width != 0 || len(d.Record) != 4 {
				t.Fatalf("descriptor gave %+v", d)
			}
		}
		v, err := ParseVideo(id, b)
		if !bytes.Equal(in, b) {
			t.Fatal("input modified")
		}
		if err != nil {
			if v != nil {
				t.Fatal("configuration with an error")
			}
			checkErr(t, err)
			return
		}
		checkVideo(t, id, b, v)
		// What was accepted parses again from its own record.
		v2, err := ParseVideo(id, v.Record)
		if err != nil || v2.Codecs != v.Codecs || v2.Width != v.Width || v2.Height != v.Height {
			t.Fatalf("record does not parse again: %v", err)
		}
	})
}

func FuzzVideoFromKeyframe(f *testing.F) {
	addSeeds(f, "key")
	v, _ := ParseVideo(AVC, avcCBase)
	f.Add(uint8(AVC), avcc(v.SPS[0], v.PPS[0], []byte{0x65, 0x88}))
	f.Fuzz(func(t *testing.T, idb uint8, b []byte) {
		id := fuzzID(idb)
		in := bytes.Clone(b)
		v, err := VideoFromKeyframe(id, b)
		if !bytes.Equal(in, b) {
			t.Fatal("input modified")
		}
		if id == VP9 || id == AV1 {
			// RTP ingest asks IsKeyframe first: a VP9 keyframe it finds is
			// one VideoFromKeyframe reads.
			key, kerr := IsKeyframe(id, b)
			if kerr != nil {
				checkErr(t, kerr)
			}
			if key && id == VP9 && err != nil {
				t.Fatalf("IsKeyframe says key, VideoFromKeyframe: %v", err)
			}
		}
		if err != nil {
			if v != nil {
				t.Fatal("configuration with an error")
			}
			checkErr(t, err)
			return
		}
		checkVideo(t, id, b, v)
		// The record built is one ParseVideo takes, and says the same.
		p, err := ParseVideo(id, v.Record)
		if err != nil {
			t.Fatalf("built record %x does not parse: %v", v.Record, err)
		}
		if id == VP9 {
			p, err = p.WithKeyframe(b)
			if err != nil {
				t.Fatal(err)
			}
		}
		if p.Codecs != v.Codecs || p.Width != v.Width || p.Height != v.Height || p.BitDepth != v.BitDepth || p.Transfer != v.Transfer {
			t.Fatalf("built %+v, parsed back %+v", v, p)
		}
	})
}

func checkAudio(t *testing.T, id ID, a *Audio) {
	t.Helper()
	if a.Codec != id || a.Codecs == "" || a.SampleRate <= 0 || a.Channels <= 0 {
		t.Fatalf("accepted %+v", a)
	}
	switch id {
	case Opus:
		if d := a.OpusDOps(); len(d) < 11 || d[1] != byte(a.Channels) {
			t.Fatalf("dOps %x", d)
		}
	case FLAC:
		if len(a.FLACDfLa()) != 42 {
			t.Fatal("dfLa")
		}
	case AC3:
		if len(a.Config) != 3 {
			t.Fatalf("dac3 %x", a.Config)
		}
	case EAC3:
		if len(a.Config) < 5 || int(a.Config[1]&7)+1 > 8 {
			t.Fatalf("dec3 %x", a.Config)
		}
	}
}

func FuzzParseAudio(f *testing.F) {
	addSeeds(f, "asc", "OpusHead", "fLaC")
	f.Add(uint8(AAC), ascLC44Stereo)
	f.Add(uint8(AAC), new(bitWriter).put(5, 5).put(6, 4).put(2, 4).put(3, 4).put(2, 5).b)
	f.Add(uint8(Opus), opusHead(3, 0, 48000, 1, 2, 1, 0, 2, 1))
	f.Fuzz(func(t *testing.T, idb uint8, b []byte) {
		id := fuzzID(idb)
		in := bytes.Clone(b)
		a, err := ParseAudio(id, b)
		if !bytes.Equal(in, b) {
			t.Fatal("input modified")
		}
		if err != nil {
			if a != nil {
				t.Fatal("configuration with an error")
			}
			checkErr(t, err)
			return
		}
		checkAudio(t, id, a)
		a2, err := ParseAudio(id, a.Config)
		if err != nil || a2.SampleRate != a.SampleRate || a2.Channels != a.Channels || !bytes.Equal(a2.Config, a.Config) {
			t.Fatalf("config does not parse again: %v", err)
		}
	})
}

func FuzzAudioFromFrame(f *testing.F) {
	addSeeds(f, "frame")
	f.Add(uint8(EAC3), append(eac3Frame(0, 0, 7, true, -1, 2, 64), eac3Frame(1, 0, 2, false, 1<<9, 0, 64)...))
	f.Add(uint8(AC3), ac3Frame(1, 8, 7))
	f.Fuzz(func(t *testing.T, idb uint8, b []byte) {
		id := fuzzID(idb)
		in := bytes.Clone(b)
		a, err := AudioFromFrame(id, b)
		if !bytes.Equal(in, b) {
			t.Fatal("input modified")
		}
		if err != nil {
			if a != nil {
				t.Fatal("configuration with an error")
			}
			checkErr(t, err)
			return
		}
		checkAudio(t, id, a)
		// The frame that gave the configuration has a duration.
		if n, err := a.FrameSamples(b); err != nil || n <= 0 {
			t.Fatalf("FrameSamples %d %v", n, err)
		}
	})
}

func FuzzFrameSamples(f *testing.F) {
	addSeeds(f, "frame")
	f.Add(uint8(FLAC), []byte{0xff, 0xf8, 0x79, 0x08, 0xfe, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0xff, 0xfe})
	f.Add(uint8(Opus), []byte{31<<3 | 3, 6})
	f.Fuzz(func(t *testing.T, idb uint8, b []byte) {
		a := &Audio{Codec: fuzzID(idb)}
		n, err := a.FrameSamples(b)
		if err != nil {
			checkErr(t, err)
			return
		}
		if n <= 0 || n > 65536 {
			t.Fatalf("%d samples", n)
		}
	})
}
