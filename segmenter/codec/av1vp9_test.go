package codec

import (
	"bytes"
	"strings"
	"testing"
)

func TestAV1(t *testing.T) {
	rec := readTestdata(t, "seeds/av1C-av1_aom_pq")
	v, err := ParseVideo(AV1, rec)
	if err != nil {
		t.Fatal(err)
	}
	if v.Codecs != "av01.0.00M.10" || v.Width != 64 || v.Height != 48 || v.Transfer != TransferPQ || v.ColorPrimaries != 9 || v.MatrixCoefficients != 9 || v.ChromaFormat != 1 {
		t.Fatalf("%+v", v)
	}
	// The header alone (configOBUs may be empty): no size, the same string.
	h, err := ParseVideo(AV1, rec[:4])
	if err != nil || h.Codecs != v.Codecs || h.Width != 0 || h.Transfer != TransferSDR {
		t.Errorf("header only: %+v %v", h, err)
	}
	o, _, err := nextOBU(rec[4:])
	if err != nil || o.typ != obuSequenceHeader {
		t.Fatalf("configOBUs: %v", err)
	}
	// A temporal unit whose sequence header OBU, last, has no size field
	// (allowed for the last OBU of a sample) gives ffmpeg's record still.
	noSize := append([]byte{o.whole[0] &^ 2}, o.payload...)
	tu := append([]byte{0x12, 0x00}, noSize...) // temporal delimiter first
	kf, err := VideoFromKeyframe(AV1, tu)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kf.Record, rec) {
		t.Errorf("record %x, want %x", kf.Record, rec)
	}
	mod := func(i int, b byte) []byte { r := bytes.Clone(rec); r[i] = b; return r }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", rec[:3], "av1 config: truncated record (3 bytes)"},
		{"marker", mod(0, 1), "marker/version byte 0x01"},
		{"profile", mod(1, 0xe0), "av1 config: seq_profile 7"},
		{"mismatch", mod(1, 0x01), "record says profile 0 level 1 depth 10"},
		{"OBU overrun", append(bytes.Clone(rec[:4]), 0x0a, 0x20, 0), "overruns"},
		{"forbidden bit", append(bytes.Clone(rec[:4]), 0x8a, 0), "forbidden bit"},
		{"leb128", append(bytes.Clone(rec[:4]), 0x0a, 0x80, 0x80), "truncated leb128"},
		{"leb128 long", append(bytes.Clone(rec[:4]), 0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1), "longer than 8 bytes"},
		{"extension", append(bytes.Clone(rec[:4]), 0x0e), "truncated header"},
		{"truncated sequence header", append(bytes.Clone(rec[:4]), 0x0a, 3, o.payload[0], o.payload[1], o.payload[2]), "av1 config: av1 sequence header: truncated"},
	} {
		if _, err := ParseVideo(AV1, tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := VideoFromKeyframe(AV1, []byte{0x12, 0x00, 0x32, 0x01, 0x10}); err == nil || !strings.Contains(err.Error(), "no sequence header OBU") {
		t.Errorf("no sequence header: %v", err)
	}

	// A reduced still picture header, 12-bit 4:4:4 profile 2, hand-built.
	w := new(bitWriter).put(2, 3).put(1, 1).put(1, 1).put(13, 5) // profile 2, still, reduced, level 13
	w.put(15, 4).put(15, 4).put(3839, 16).put(2159, 16)          // 3840x2160
	w.put(0, 3).put(0, 3)                                        // no superres/cdef/restoration
	w.put(1, 1).put(1, 1)                                        // high_bitdepth, twelve_bit
	w.put(0, 1).put(1, 1).put(9, 8).put(18, 8).put(9, 8)         // not mono, HLG BT.2020
	w.put(1, 1).put(0, 1)                                        // full range, subsampling_x 0 (4:4:4)
	w.put(0, 1).put(0, 1).put(1, 1)                              // separate_uv_delta_q, film grain, trailing
	s, err := parseAV1SequenceHeader(w.b)
	if err != nil {
		t.Fatal(err)
	}
	sv := s.video()
	if sv.Codecs != "av01.2.13M.12" || sv.Width != 3840 || sv.Height != 2160 || sv.Transfer != TransferHLG || sv.ChromaFormat != 3 || !sv.FullRange {
		t.Errorf("%+v", sv)
	}
}

func TestVP9(t *testing.T) {
	rec := readTestdata(t, "seeds/vpcC-vp9_pq")
	v, err := ParseVideo(VP9, rec)
	if err != nil {
		t.Fatal(err)
	}
	// The bare record (no version and flags) is the same configuration.
	bare, err := ParseVideo(VP9, rec[4:])
	if err != nil || bare.Codecs != v.Codecs || !bytes.Equal(bare.Record, rec) || bare.Transfer != TransferPQ {
		t.Errorf("bare: %+v %v", bare, err)
	}
	mod := func(i int, b byte) []byte { r := bytes.Clone(rec); r[i] = b; return r }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", rec[:7], "vp9 config: record of 7 bytes"},
		{"version 0", append(mod(0, 0), 0), "unsupported vpcC version 0"},
		{"profile", mod(4, 4), "profile 4 out of range"},
		{"depth", mod(6, 0x90), "bitDepth 9"},
		{"init data", append(mod(11, 1), 0xaa), "codecInitializationDataSize 1"},
	} {
		if _, err := ParseVideo(VP9, tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}

	key := readTestdata(t, "seeds/key-vp9_pq")
	kf, err := VideoFromKeyframe(VP9, key)
	if err != nil {
		t.Fatal(err)
	}
	if kf.Width != 64 || kf.Height != 48 || kf.Profile != 2 || kf.BitDepth != 10 || kf.Level != 10 {
		t.Errorf("%+v", kf)
	}
	// In a superframe after a hidden frame that is not a keyframe, the
	// keyframe is still found; a superframe of inter frames has none.
	inter := []byte{0x86, 0, 0, 0} // frame_marker 2, profile 0, not shown-existing, non-key
	super := append(append(bytes.Clone(inter), key...), 0xc9, 4, 0, byte(len(key)), byte(len(key)>>8), 0xc9)
	if sv, err := VideoFromKeyframe(VP9, super); err != nil || sv.Width != 64 {
		t.Errorf("superframe: %+v %v", sv, err)
	}
	if _, err := VideoFromKeyframe(VP9, inter); err == nil || !strings.Contains(err.Error(), "not a keyframe") {
		t.Errorf("inter frame: %v", err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "vp9 frame: empty"},
		{"marker", []byte{0x00, 0, 0}, "frame_marker"},
		{"sync code", []byte{0x80, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0}, "frame_sync_code"},
		{"truncated", key[:6], "vp9 frame: uncompressed header: truncated"},
		{"superframe overrun", append(bytes.Clone(inter), 0xc0, 200, 0xc0), "overruns"},
	} {
		if _, err := VideoFromKeyframe(VP9, tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// WithKeyframe leaves configurations with a size alone.
	avcV, _ := ParseVideo(AVC, avcCBase)
	if got, err := avcV.WithKeyframe(nil); got != avcV || err != nil {
		t.Error("WithKeyframe changed an AVC configuration")
	}
	if _, err := v.WithKeyframe(inter); err == nil {
		t.Error("WithKeyframe took an inter frame")
	}
}

func TestAV1TSDescriptor(t *testing.T) {
	rec := readTestdata(t, "seeds/av1C-av1_aom_pq")
	key := readTestdata(t, "seeds/key-av1_aom_pq")
	// hdr_wcg_idc 2 (HDR and WCG) in the top bits of the fourth byte.
	for name, d := range map[string][]byte{
		"tag 0x80": {0x80, 4, rec[0], rec[1], rec[2], 0x80 | rec[3]},
		"tag 0x5F": {0x5f, 8, 'A', 'V', '1', ' ', rec[0], rec[1], rec[2], 0x80 | rec[3]},
	} {
		v, err := ParseAV1TSDescriptor(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if v.Codecs != "av01.0.00M.10" || v.Width != 0 || !bytes.Equal(v.Record, rec[:4]) {
			t.Errorf("%s: %+v", name, v)
		}
		full, err := v.WithKeyframe(key)
		if err != nil || full.Width != 64 || full.Transfer != TransferPQ || !bytes.Equal(full.Record, rec) {
			t.Errorf("%s: with keyframe %+v %v", name, full, err)
		}
	}
	for _, d := range [][]byte{nil, {0x80}, {0x80, 4, 0x81, 0}, {0x81, 4, 0x81, 0, 0, 0}, {0x80, 4, 0x01, 0, 0, 0}} {
		if _, err := ParseAV1TSDescriptor(d); err == nil || !strings.HasPrefix(err.Error(), "av1 ts descriptor: ") {
			t.Errorf("%x: %v", d, err)
		}
	}
}
