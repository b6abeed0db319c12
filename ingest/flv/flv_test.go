package flv

import (
	"encoding/binary"
	"errors"
	"testing"
)

// appendTag appends one FLV tag with its PreviousTagSize.
func appendTag(b []byte, typ byte, ts uint32, body ...byte) []byte {
	n := len(body)
	b = append(b, typ, byte(n>>16), byte(n>>8), byte(n), byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
	b = append(b, body...)
	return binary.BigEndian.AppendUint32(b, uint32(11+n))
}

func TestParse(t *testing.T) {
	b := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	b = appendTag(b, TagScript, 0, 2, 0, 0)
	b = appendTag(b, 0xc0|TagVideo, 0x01000005, 0x17, 1) // reserved bits set; past 0xFFFFFF ms
	b = appendTag(b, TagAudio, 7)                        // empty body
	b = appendTag(b, TagAudio, 8, 0xaf, 1, 9)
	tags, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 4 || tags[0].Type != TagScript || tags[1].Type != TagVideo || tags[2].Type != TagAudio {
		t.Fatalf("%+v", tags)
	}
	if tags[1].Timestamp != 0x01000005 || tags[2].Timestamp != 7 || len(tags[2].Data) != 0 {
		t.Errorf("%+v", tags)
	}
	if d := tags[1].Data; len(d) != 2 || cap(d) != 2 || &d[0] != &b[13+11+3+4+11] {
		t.Errorf("video body %v (cap %d) is not the file's bytes, capped", d, cap(d))
	}

	// A file cut inside its last tag keeps the tags before it.
	for _, cut := range []int{4 + 1, 4 + 3, 4 + 3 + 5} {
		got, err := Parse(b[:len(b)-cut])
		if !errors.Is(err, ErrTruncated) || len(got) != 3 {
			t.Errorf("cut %d bytes: %d tags, %v", cut, len(got), err)
		}
	}
	// A missing last PreviousTagSize is no loss.
	if got, err := Parse(b[:len(b)-4]); err != nil || len(got) != 4 {
		t.Errorf("no last PreviousTagSize: %d tags, %v", len(got), err)
	}
}

func TestParseErrors(t *testing.T) {
	hdr := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	for name, b := range map[string][]byte{
		"not FLV":     []byte("not an flv"),
		"short":       hdr[:8],
		"header size": {'F', 'L', 'V', 1, 5, 0, 0, 0, 200},
		"encrypted":   appendTag(hdr, 0x20|TagVideo, 0, 0x17, 1),
	} {
		if _, err := Parse(b); err == nil || errors.Is(err, ErrTruncated) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTagKinds(t *testing.T) {
	for _, c := range []struct {
		name          string
		tag           Tag
		config, keyfr bool
	}{
		{"AVC config", Tag{Type: TagVideo, Data: []byte{0x17, 0, 0, 0, 0}}, true, false},
		{"AVC keyframe", Tag{Type: TagVideo, Data: []byte{0x17, 1, 0, 0, 0}}, false, true},
		{"AVC inter frame", Tag{Type: TagVideo, Data: []byte{0x27, 1, 0, 0, 0}}, false, false},
		{"AVC end of sequence", Tag{Type: TagVideo, Data: []byte{0x17, 2, 0, 0, 0}}, false, false},
		{"legacy HEVC config", Tag{Type: TagVideo, Data: []byte{0x1c, 0, 0, 0, 0}}, true, false},
		{"E-RTMP SequenceStart", Tag{Type: TagVideo, Data: []byte{0x90, 'h', 'v', 'c', '1'}}, true, false},
		{"E-RTMP CodedFrames key", Tag{Type: TagVideo, Data: []byte{0x91, 'h', 'v', 'c', '1'}}, false, true},
		{"E-RTMP CodedFramesX key", Tag{Type: TagVideo, Data: []byte{0x93, 'a', 'v', '0', '1'}}, false, true},
		{"E-RTMP CodedFrames inter", Tag{Type: TagVideo, Data: []byte{0xa1, 'a', 'v', '0', '1'}}, false, false},
		{"E-RTMP multitrack", Tag{Type: TagVideo, Data: []byte{0x96, 0, 'a', 'v', 'c', '1'}}, false, false},
		{"AAC config", Tag{Type: TagAudio, Data: []byte{0xaf, 0, 0x12, 0x10}}, true, false},
		{"AAC frame", Tag{Type: TagAudio, Data: []byte{0xaf, 1, 0x21}}, false, false},
		{"E-RTMP audio SequenceStart", Tag{Type: TagAudio, Data: []byte{0x90, 'O', 'p', 'u', 's'}}, true, false},
		{"MP3", Tag{Type: TagAudio, Data: []byte{0x2f, 0xff}}, false, false},
		{"script", Tag{Type: TagScript, Data: []byte{2, 0, 10}}, false, false},
		{"empty", Tag{Type: TagVideo}, false, false},
	} {
		if got := c.tag.SequenceHeader(); got != c.config {
			t.Errorf("%s: SequenceHeader() = %v", c.name, got)
		}
		if got := c.tag.Keyframe(); got != c.keyfr {
			t.Errorf("%s: Keyframe() = %v", c.name, got)
		}
	}
}
