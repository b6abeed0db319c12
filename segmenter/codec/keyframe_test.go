package codec

import (
	"bytes"
	"strings"
	"testing"
)

// TestIsKeyframe: VP9 keyframes (alone or in a superframe) and AV1
// temporal units with a sequence header and a key frame are keyframes;
// inter frames, an AV1 key frame without its sequence header and a shown
// existing frame are not; malformed headers and other codecs are errors.
func TestIsKeyframe(t *testing.T) {
	vp9Key := readTestdata(t, "seeds/key-vp9")
	inter := []byte{0x86, 0, 0, 0} // frame_marker 2, profile 0, not shown-existing, non-key
	super := append(append(bytes.Clone(inter), vp9Key...), 0xc9, 4, 0, byte(len(vp9Key)), byte(len(vp9Key)>>8), 0xc9)
	av1Key := readTestdata(t, "seeds/key-av1_aom")
	seq, rest, err := nextOBU(av1Key)
	if err != nil || seq.typ != obuSequenceHeader {
		t.Fatalf("the seed's first OBU: %v", err)
	}
	frame, _, err := nextOBU(rest)
	if err != nil || frame.typ != obuFrame {
		t.Fatalf("the seed's second OBU: %v", err)
	}
	withFrameByte := func(b byte) []byte {
		tu := bytes.Clone(av1Key)
		tu[len(seq.whole)+len(frame.whole)-len(frame.payload)] = b
		return tu
	}
	for _, c := range []struct {
		name string
		id   ID
		b    []byte
		key  bool
		err  string
	}{
		{"VP9 keyframe", VP9, vp9Key, true, ""},
		{"VP9 superframe: hidden inter frame, keyframe", VP9, super, true, ""},
		{"VP9 inter frame", VP9, inter, false, ""},
		{"VP9 shown existing frame", VP9, []byte{0x88}, false, ""},
		{"VP9 bad marker", VP9, []byte{0x00, 0, 0}, false, "frame_marker"},
		{"VP9 empty", VP9, nil, false, "empty"},
		{"AV1 sequence header and key frame", AV1, av1Key, true, ""},
		{"AV1 temporal delimiter first", AV1, append([]byte{0x12, 0}, av1Key...), true, ""},
		{"AV1 key frame alone", AV1, bytes.Clone(frame.whole), false, ""},
		{"AV1 inter frame", AV1, withFrameByte(0x30), false, ""},      // frame_type 1
		{"AV1 intra-only frame", AV1, withFrameByte(0x50), false, ""}, // frame_type 2
		{"AV1 shown existing frame", AV1, withFrameByte(0x80), false, ""},
		{"AV1 reduced still picture", AV1, append([]byte{0x0a, 1, 0x08, 0x32, 1}, 0xff), true, ""},
		{"AV1 overrun", AV1, []byte{0x0a, 9, 0}, false, "av1 temporal unit: obu: size 9 overruns"},
		{"AV1 no frame", AV1, seq.whole, false, ""},
		{"H.264", AVC, []byte{0, 0, 0, 1, 0x65}, false, "keyframes of H.264 are not read"},
	} {
		key, err := IsKeyframe(c.id, c.b)
		if key != c.key || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, %v; want %v, error %q", c.name, key, err, c.key, c.err)
		}
	}
}
