package codec

import (
	"bytes"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/av1"
	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/hevc"
	"github.com/Eyevinn/mp4ff/mp4"
)

// TestVideoClips encodes short clips with Debian's ffmpeg and checks the
// parsers against what ffmpeg wrote into the MP4 sample entries: the
// record, the size in the sample entry, and for the keyframe builders the
// record itself, byte for byte where ffmpeg's rules are ours.
func TestVideoClips(t *testing.T) {
	needFFmpeg(t)
	src := []string{"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "3"}
	pq := []string{"-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"}
	hlg := []string{"-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc"}
	cat := func(a ...[]string) []string {
		var out []string
		for _, x := range a {
			out = append(out, x...)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		id       ID
		args     []string
		box      string
		codecs   string
		depth    int
		transfer Transfer
		fps      float64
		// exact: the keyframe builder must give ffmpeg's record byte for
		// byte. Not for x265 (ffmpeg adds its SEI), SVT-AV1 (its extradata's
		// sequence header differs from the in-band one) or VP9 HDR (the VP9
		// bitstream has no primaries or transfer function).
		exact bool
	}{
		{"h264", AVC, cat(src, []string{"-c:v", "libx264", "-x264-params", "repeat-headers=1", "-pix_fmt", "yuv420p"}),
			"avcC", "avc1.64000a", 8, TransferSDR, 25, true},
		{"h264 hlg", AVC, cat(src, hlg, []string{"-c:v", "libx264", "-x264-params", "repeat-headers=1", "-pix_fmt", "yuv420p10le"}),
			"avcC", "avc1.6e000a", 10, TransferHLG, 25, true},
		{"hevc", HEVC, cat(src, []string{"-c:v", "libx265", "-x265-params", "log-level=error:repeat-headers=1", "-tag:v", "hvc1"}),
			"hvcC", "hvc1.1.6.L30.90", 8, TransferSDR, 25, false},
		{"hevc pq", HEVC, cat(src, pq, []string{"-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error:repeat-headers=1", "-tag:v", "hvc1"}),
			"hvcC", "hvc1.2.4.L30.90", 10, TransferPQ, 25, false},
		{"av1 aom", AV1, cat(src, []string{"-c:v", "libaom-av1", "-cpu-used", "8", "-pix_fmt", "yuv420p"}),
			"av1C", "av01.0.00M.08", 8, TransferSDR, 0, true},
		{"av1 aom pq", AV1, cat(src, pq, []string{"-c:v", "libaom-av1", "-cpu-used", "8", "-pix_fmt", "yuv420p10le"}),
			"av1C", "av01.0.00M.10", 10, TransferPQ, 0, true},
		{"av1 svt hlg", AV1, cat([]string{"-f", "lavfi", "-i", "testsrc2=size=64x64:rate=25", "-frames:v", "3"}, hlg,
			[]string{"-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p10le"}),
			"av1C", "", 10, TransferHLG, 0, false},
		{"vp9", VP9, cat(src, []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"}),
			"vpcC", "vp09.00.10.08", 8, TransferSDR, 0, true},
		{"vp9 pq", VP9, cat(src, pq, []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p10le"}),
			"vpcC", "vp09.02.10.10", 10, TransferPQ, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := readMP4(t, ffmpeg(t, t.TempDir(), "clip.mp4", tc.args...))
			vse, ok := tr.entry.(*mp4.VisualSampleEntryBox)
			if !ok {
				t.Fatalf("sample entry %T", tr.entry)
			}
			rec := tr.payload(t, childBox(t, tr.entry, tc.box))
			v, err := ParseVideo(tc.id, rec)
			if err != nil {
				t.Fatalf("ParseVideo: %v", err)
			}
			if tc.id == VP9 { // a vpcC has no size: the keyframe gives it
				if v.Width != 0 {
					t.Errorf("VP9 size %dx%d from a vpcC", v.Width, v.Height)
				}
				if v, err = v.WithKeyframe(tr.samples[0]); err != nil {
					t.Fatal(err)
				}
			}
			if v.Width != int(vse.Width) || v.Height != int(vse.Height) {
				t.Errorf("size %dx%d, sample entry %dx%d", v.Width, v.Height, vse.Width, vse.Height)
			}
			if tc.codecs != "" && v.Codecs != tc.codecs {
				t.Errorf("codecs %q, want %q", v.Codecs, tc.codecs)
			}
			if v.BitDepth != tc.depth || v.Transfer != tc.transfer || v.Codec != tc.id || !bytes.Equal(v.Record, rec) {
				t.Errorf("depth %d transfer %v codec %v record equal %v", v.BitDepth, v.Transfer, v.Codec, bytes.Equal(v.Record, rec))
			}
			if tc.fps != 0 && v.FrameRate != tc.fps {
				t.Errorf("frame rate %v, want %v", v.FrameRate, tc.fps)
			}
			crossCheck(t, v, rec)

			kf, err := VideoFromKeyframe(tc.id, tr.samples[0])
			if err != nil {
				t.Fatalf("VideoFromKeyframe: %v", err)
			}
			if tc.exact && !bytes.Equal(kf.Record, rec) {
				t.Errorf("record from the keyframe\n%x\nffmpeg's\n%x", kf.Record, rec)
			}
			if kf.Codecs != v.Codecs || kf.Width != v.Width || kf.Height != v.Height || kf.BitDepth != v.BitDepth || kf.ChromaFormat != v.ChromaFormat {
				t.Errorf("from the keyframe %s %dx%d depth %d chroma %d; from the record %s %dx%d depth %d chroma %d",
					kf.Codecs, kf.Width, kf.Height, kf.BitDepth, kf.ChromaFormat, v.Codecs, v.Width, v.Height, v.BitDepth, v.ChromaFormat)
			}
			if tc.id != VP9 && kf.Transfer != v.Transfer {
				// VP9 keyframes carry no transfer function; the others do.
				t.Errorf("transfer from the keyframe %v, record %v", kf.Transfer, v.Transfer)
			}
			if tc.id == AVC || tc.id == HEVC {
				if !equalNALs(kf.SPS, v.SPS) || !equalNALs(kf.PPS, v.PPS) || !equalNALs(kf.VPS, v.VPS) {
					t.Error("parameter sets from the keyframe differ from the record's")
				}
			}
			if tc.id == AV1 && !bytes.Equal(kf.Record[:4], rec[:4]) {
				// SVT-AV1's extradata sequence header differs from its
				// in-band one in tool flags; the record's fields agree.
				t.Errorf("av1C header from the keyframe %x, ffmpeg's %x", kf.Record[:4], rec[:4])
			}
			if tc.id == HEVC {
				if !bytes.Equal(kf.Record[:22], rec[:22]) {
					t.Errorf("hvcC header from the keyframe %x, ffmpeg's %x", kf.Record[:22], rec[:22])
				}
			}
			// A later frame is not a keyframe and has no configuration.
			if len(tr.samples) > 1 && tc.id != HEVC && tc.id != AVC {
				if _, err := VideoFromKeyframe(tc.id, tr.samples[len(tr.samples)-1]); err == nil {
					t.Errorf("configuration from a non-key frame")
				}
			}
			writeSeed(t, tc.box+"-"+tc.name, rec)
			if len(tr.samples[0]) < 8000 {
				writeSeed(t, "key-"+tc.name, tr.samples[0])
			}
		})
	}
}

// crossCheck compares with mp4ff's parsers where it has them.
func crossCheck(t *testing.T, v *Video, rec []byte) {
	t.Helper()
	switch v.Codec {
	case AVC:
		sps, err := avc.ParseSPSNALUnit(v.SPS[0], true)
		if err != nil {
			t.Fatal(err)
		}
		if want := avc.CodecString("avc1", sps); !strings.EqualFold(want, v.Codecs) {
			t.Errorf("codecs %q, mp4ff %q", v.Codecs, want)
		}
	case HEVC:
		sps, err := hevc.ParseSPSNALUnit(v.SPS[0])
		if err != nil {
			t.Fatal(err)
		}
		if want := hevc.CodecString("hvc1", sps); want != v.Codecs {
			t.Errorf("codecs %q, mp4ff %q", v.Codecs, want)
		}
		// mp4ff says 0 where the VUI has no colour description; H.273 and
		// this package say 2, unspecified.
		if sps.VUI != nil && sps.VUI.TransferCharacteristics != 0 && int(sps.VUI.TransferCharacteristics) != v.TransferCharacteristics {
			t.Errorf("transfer_characteristics %d, mp4ff %d", v.TransferCharacteristics, sps.VUI.TransferCharacteristics)
		}
	case AV1:
		r, err := av1.DecodeAV1CodecConfRec(rec)
		if err != nil {
			t.Fatal(err)
		}
		sh, err := r.SequenceHeader()
		if err != nil {
			t.Fatal(err)
		}
		if want := sh.CodecString("av01"); want[:len(v.Codecs)] != v.Codecs {
			t.Errorf("codecs %q, mp4ff %q", v.Codecs, want)
		}
		if int(sh.Width()) != v.Width || int(sh.Height()) != v.Height || int(sh.TransferCharacteristics) != v.TransferCharacteristics ||
			int(sh.ColorPrimaries) != v.ColorPrimaries || int(sh.MatrixCoefficients) != v.MatrixCoefficients || sh.ColorRange != v.FullRange {
			t.Errorf("sequence header %+v, ours %+v", sh, v)
		}
	case VP9:
		b, err := mp4.DecodeBox(0, bytes.NewReader(append([]byte{0, 0, 0, byte(8 + len(rec)), 'v', 'p', 'c', 'C'}, rec...)))
		if err != nil {
			t.Fatal(err)
		}
		c := b.(*mp4.VppCBox)
		if int(c.Profile) != v.Profile || int(c.Level) != v.Level || int(c.BitDepth) != v.BitDepth || int(c.TransferCharacteristics) != v.TransferCharacteristics {
			t.Errorf("vpcC %+v, ours %+v", c, v)
		}
	}
}

func equalNALs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
