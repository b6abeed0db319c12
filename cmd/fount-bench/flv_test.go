package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"
)

// flvTag appends one FLV tag with its PreviousTagSize.
func flvTag(b []byte, typ uint8, ts uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, typ, byte(n>>16), byte(n>>8), byte(n), byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
	b = append(b, payload...)
	return binary.BigEndian.AppendUint32(b, uint32(11+n))
}

// testFLV is a synthetic clip: script data, AVC and AAC sequence headers,
// 30 fps video with a keyframe every 15 frames for 1 s, AAC every ~21 ms
// slightly past the last video frame, starting at a non-zero timestamp.
func testFLV(base uint32) []byte {
	b := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	b = flvTag(b, tagScript, 0, []byte{0x02, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'})
	b = flvTag(b, tagVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 2, 3})
	b = flvTag(b, tagAudio, 0, []byte{0xaf, 0, 0x11, 0x90})
	for i := range 30 {
		v := uint32(i) * 1000 / 30
		kind := byte(0x27)
		if i%15 == 0 {
			kind = 0x17
		}
		b = flvTag(b, tagVideo, base+v, []byte{kind, 1, 0, 0, 0, byte(i)})
	}
	for a := uint32(0); a < 1010; a += 21 {
		b = flvTag(b, tagAudio, base+a, []byte{0xaf, 1, byte(a)})
	}
	return b
}

func TestParseFLV(t *testing.T) {
	// Past 0xFFFFFF ms the FLV header's extended byte carries the top bits.
	for _, base := range []uint32{0, 0x01000005} {
		b := testFLV(base)
		c, err := parseFLV(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.config) != 3 {
			t.Fatalf("base %#x: %d config tags, want script + 2 sequence headers", base, len(c.config))
		}
		if c.config[0].typ != tagScript || c.config[1].payload[1] != 0 || c.config[2].payload[1] != 0 {
			t.Errorf("config tags: %+v", c.config)
		}
		// 30 frames at 33.3 ms: the last at 966 ms, the loop 999 ms.
		if c.loopMS != 966+33 {
			t.Errorf("base %#x: loop %d ms, want 999", base, c.loopMS)
		}
		videos := 0
		for _, tg := range c.media {
			if tg.typ == tagVideo {
				videos++
			}
			if uint64(tg.ts) >= c.loopMS {
				t.Errorf("tag at %d ms is past the loop", tg.ts)
			}
		}
		if videos != 30 {
			t.Errorf("%d video tags, want 30", videos)
		}
		// Payloads alias the file: no copy per tag.
		if p := c.media[0].payload; !aliases(b, p) {
			t.Error("payload is a copy")
		}
	}
}

// aliases reports whether p is a window into b.
func aliases(b, p []byte) bool {
	for i := range b {
		if &b[i] == &p[0] {
			return true
		}
	}
	return false
}

func TestMediaTSLoops(t *testing.T) {
	c, err := parseFLV(testFLV(500))
	if err != nil {
		t.Fatal(err)
	}
	if c.media[0].ts != 0 {
		t.Fatalf("first media tag at %d ms, want 0", c.media[0].ts)
	}
	// Per track, timestamps only move forward across three loops, and the
	// first frame of loop k+1 comes one frame interval after loop k's last.
	last := map[uint8]uint64{}
	var lastVideo uint64
	for loop := range uint64(3) {
		for i, tg := range c.media {
			ts := c.mediaTS(loop, i)
			if prev, ok := last[tg.typ]; ok && ts < prev {
				t.Fatalf("loop %d tag %d (type %d): %d ms after %d ms", loop, i, tg.typ, ts, prev)
			}
			last[tg.typ] = ts
			if tg.typ == tagVideo {
				if lastVideo != 0 && ts-lastVideo > 34 {
					t.Fatalf("loop %d: video gap %d ms at the seam", loop, ts-lastVideo)
				}
				lastVideo = ts
			}
		}
	}
	if got := c.mediaTS(2, 0); got != 2*c.loopMS {
		t.Errorf("loop 2 starts at %d ms, want %d", got, 2*c.loopMS)
	}
}

func TestParseFLVErrors(t *testing.T) {
	if _, err := parseFLV([]byte("not an flv")); err == nil {
		t.Error("garbage accepted")
	}
	b := testFLV(0)
	hdrOnly := b[:13+11+13+4] // header, script tag: no media
	if _, err := parseFLV(hdrOnly); err == nil {
		t.Error("clip without media accepted")
	}
	// A truncated last tag is dropped, the rest is kept.
	full, _ := parseFLV(b)
	b = flvTag(b, tagVideo, 950, []byte{0x27, 1, 0, 0, 0, 9})
	c, err := parseFLV(b[:len(b)-5])
	if err != nil {
		t.Fatal(err)
	}
	if len(c.media) != len(full.media) {
		t.Errorf("truncated: %d media tags, want %d", len(c.media), len(full.media))
	}
	if c, _ := parseFLV(b); len(c.media) != len(full.media)+1 {
		t.Errorf("untruncated: %d media tags, want %d", len(c.media), len(full.media)+1)
	}
}

// TestChunkRoundTrip writes messages as the publisher does and reads them
// back with the client's own chunk reader, including messages longer
// than a chunk and timestamps in the extended field.
func TestChunkRoundTrip(t *testing.T) {
	big := make([]byte, 3*outChunkSize+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	msgs := []struct {
		cs  uint8
		typ uint8
		ts  uint32
		p   []byte
	}{
		{csVideo, tagVideo, 0, []byte{1, 2, 3}},
		{csVideo, tagVideo, 40, big},
		{csAudio, tagAudio, 0xfffffe, big[:outChunkSize]},
		{csVideo, tagVideo, 0x12345678, big},
		{csAudio, tagAudio, 0x12345679, []byte{9}},
	}
	var buf []byte
	for _, m := range msgs {
		buf = appendMessage(buf, m.cs, m.typ, m.ts, 7, m.p, outChunkSize)
	}
	// Continuation headers: one per extra chunk, plus the repeated
	// extended timestamp where the timestamp needs it.
	c := &rtmpConn{r: bufio.NewReader(bytes.NewReader(buf)), inChunk: outChunkSize, in: map[uint32]*inStream{}}
	for i, m := range msgs {
		got, err := c.readMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got.typ != m.typ || got.msid != 7 || !bytes.Equal(got.payload, m.p) {
			t.Fatalf("message %d: type %d msid %d, %d bytes; want type %d, %d bytes", i, got.typ, got.msid, len(got.payload), m.typ, len(m.p))
		}
		if st := c.in[uint32(m.cs)]; st.ts != m.ts {
			t.Errorf("message %d: timestamp %#x, want %#x", i, st.ts, m.ts)
		}
	}
	if _, err := c.readMessage(); err == nil {
		t.Error("read past the end")
	}
}

// TestAppendMessageNoAlloc: the per-tag path allocates nothing once the
// buffer has grown.
func TestAppendMessageNoAlloc(t *testing.T) {
	payload := make([]byte, 10000)
	buf := make([]byte, 0, 64<<10)
	allocs := testing.AllocsPerRun(100, func() {
		buf = appendMessage(buf[:0], csVideo, tagVideo, 1234, 1, payload, outChunkSize)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per message", allocs)
	}
	if want := 12 + len(payload) + 2; len(buf) != want {
		t.Errorf("%d bytes, want %d (header, payload, two continuation headers)", len(buf), want)
	}
}
