package segmenter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/asticode/go-astits"

	"github.com/fount-live/fount/segmenter/id3"
)

// metadataRun writes 4 s of synthetic H.264+AAC, adding one tag "now"
// after 1 s and one at PTS 2.5 s, and returns the two presentation times
// they must be muxed at: the PTS of the frame that followed the first call,
// and 2.5 s.
func metadataRun(t *testing.T, s *Segmenter, tags [2][]byte) [2]time.Duration {
	t.Helper()
	g := newSynth(30, true, true)
	g.run(t, s, time.Second)
	if err := s.AddMetadata(TimedID3{Tag: tags[0]}); err != nil {
		t.Fatal(err)
	}
	f := g.next()
	want := [2]time.Duration{f.PTS, 2500 * time.Millisecond}
	if err := s.WriteFrame(f); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMetadata(TimedID3{Tag: tags[1], PTS: want[1], HasPTS: true}); err != nil {
		t.Fatal(err)
	}
	g.run(t, s, 4*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	return want
}

func testTags(t *testing.T) [2][]byte {
	a, err := id3.Tag(id3.Frame{ID: "TIT2", Value: "first"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := id3.Tag(id3.Frame{ID: "TXXX", Description: "score", Value: "2-1"})
	if err != nil {
		t.Fatal(err)
	}
	return [2][]byte{a, b}
}

func TestTSTimedID3(t *testing.T) {
	s, c, _ := newTest(t, Config{PartDuration: 500 * time.Millisecond}, true, true)
	tags := testTags(t)
	want := metadataRun(t, s, tags)

	var got []tsPES
	var pmt *astits.PMTData
	for _, seg := range c.segs {
		ts := demuxTS(t, seg.Data)
		for _, p := range ts.pes {
			if p.pid == id3PID {
				got = append(got, p)
			}
		}
		if ts.pmt != nil && len(got) > 0 && pmt == nil {
			pmt = ts.pmt
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d ID3 PES, want 2", len(got))
	}
	for i, p := range got {
		if p.pts != ts90k(want[i]) || !bytes.Equal(p.data, tags[i]) {
			t.Errorf("ID3 PES %d: PTS %d data %q, want PTS %d data %q", i, p.pts, p.data, ts90k(want[i]), tags[i])
		}
	}
	// The PMT (its CRC checked by astits) declares the stream with its
	// metadata_descriptor, and points at it from the program info.
	var es *astits.PMTElementaryStream
	for _, e := range pmt.ElementaryStreams {
		if e.ElementaryPID == id3PID {
			es = e
		}
	}
	if es == nil || es.StreamType != 0x15 {
		t.Fatalf("PMT without the ID3 stream (stream_type 0x15): %+v", pmt.ElementaryStreams)
	}
	wantDesc := []byte{0xff, 0xff, 'I', 'D', '3', ' ', 0xff, 'I', 'D', '3', ' ', 0, 0x0f}
	if len(es.ElementaryStreamDescriptors) != 1 || es.ElementaryStreamDescriptors[0].Tag != 0x26 ||
		es.ElementaryStreamDescriptors[0].Unknown == nil || !bytes.Equal(es.ElementaryStreamDescriptors[0].Unknown.Content, wantDesc) {
		t.Errorf("metadata_descriptor: %+v", es.ElementaryStreamDescriptors)
	}
	wantPtr := []byte{0xff, 0xff, 'I', 'D', '3', ' ', 0xff, 'I', 'D', '3', ' ', 0, 0x1f, 0, 1}
	if len(pmt.ProgramDescriptors) != 1 || pmt.ProgramDescriptors[0].Tag != 0x25 ||
		pmt.ProgramDescriptors[0].Unknown == nil || !bytes.Equal(pmt.ProgramDescriptors[0].Unknown.Content, wantPtr) {
		t.Errorf("metadata_pointer_descriptor: %+v", pmt.ProgramDescriptors)
	}
	// Each tag is in a part: the part's bytes hold its PES.
	n := 0
	for _, p := range c.parts {
		for off := 0; off+188 <= len(p.Data); off += 188 {
			if pkt := p.Data[off:]; uint16(pkt[1]&0x1f)<<8|uint16(pkt[2]) == id3PID && pkt[1]&0x40 != 0 {
				n++
			}
		}
	}
	if n != 2 {
		t.Errorf("%d ID3 PES starts in the parts, want 2", n)
	}
}

func TestFMP4Emsg(t *testing.T) {
	s, c := newFMP4Test(t, Config{PartDuration: 500 * time.Millisecond}, avcCHigh, ascLC44Stereo)
	tags := testTags(t)
	want := metadataRun(t, s, tags)

	var got []*mp4.EmsgBox
	inParts := 0
	for _, p := range c.parts {
		inParts += bytes.Count(p.Data, []byte("emsg\x01\x00\x00\x00")) // type, version 1, flags
	}
	if inParts != 2 {
		t.Errorf("%d emsg in the parts, want 2", inParts)
	}
	for _, seg := range c.segs {
		b := seg.Data
		for len(b) >= 8 {
			size := int(binary.BigEndian.Uint32(b))
			if size < 8 || size > len(b) {
				t.Fatalf("box size %d of %d bytes", size, len(b))
			}
			if string(b[4:8]) == "emsg" {
				box, err := mp4.DecodeBox(0, bytes.NewReader(b[:size]))
				if err != nil {
					t.Fatal(err)
				}
				e := box.(*mp4.EmsgBox)
				got = append(got, e)
				// Before the moof of the fragment holding its time.
				next := b[size:]
				if len(next) < 8 || string(next[4:8]) != "moof" {
					t.Fatalf("emsg followed by %q, want a moof", next[4:8])
				}
				frag := fragments(t, next)[0]
				// Video PTS is DTS + 2 frames (synth's B-frames): the
				// fragment's video starts at or before the time and ends
				// at most 3 frames (9000 ticks) before it.
				ticks := e.PresentationTime
				for _, r := range frag {
					if r.id == 1 && (r.tfdt > ticks || r.tfdt+r.total()+9000 < ticks) {
						t.Errorf("emsg at %d before a fragment of video %d..%d", ticks, r.tfdt, r.tfdt+r.total())
					}
				}
			}
			b = b[size:]
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d emsg, want 2", len(got))
	}
	for i, e := range got {
		if e.Version != 1 || e.SchemeIDURI != EmsgSchemeID3 || e.Value != "" || e.TimeScale != 90000 ||
			e.PresentationTime != uint64(toTicks(want[i], 90000)) || e.EventDuration != 0xffffffff ||
			!bytes.Equal(e.MessageData, tags[i]) {
			t.Errorf("emsg %d: %+v, want presentation_time %d", i, e, toTicks(want[i], 90000))
		}
	}
}

// TestMetadataTimes: a tag at a program date time lands at the PTS that
// PDT maps to (the segments' PDT plus media time); one whose time has
// passed lands with the next frame; AddMetadata refuses an oversized tag
// and a 65th waiting one.
func TestMetadataTimes(t *testing.T) {
	s, c, _ := newTest(t, Config{}, true, true)
	tags := testTags(t)
	g := newSynth(30, true, true)
	g.run(t, s, time.Second)
	if len(c.segs) != 0 || !s.open {
		t.Fatal("want the first segment open")
	}
	// segStart is 0; the segment's date is that of its first frame shown,
	// the keyframe's PTS (after its DTS with B-frames).
	pdt := s.segPDT.Add(2500 * time.Millisecond)
	want := 2500*time.Millisecond + s.segStartPTS
	if s.segStartPTS <= 0 {
		t.Fatal("the synthetic stream's first keyframe should be shown after it is decoded (B-frames)")
	}
	if err := s.AddMetadata(TimedID3{Tag: tags[0], PDT: pdt}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMetadata(TimedID3{Tag: tags[1], PTS: 100 * time.Millisecond, HasPTS: true}); err != nil {
		t.Fatal(err)
	}
	f := g.next()
	past := f.PTS
	if err := s.WriteFrame(f); err != nil {
		t.Fatal(err)
	}
	g.run(t, s, 4*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, seg := range c.segs {
		for _, p := range demuxTS(t, seg.Data).pes {
			if p.pid == id3PID {
				got[string(p.data)] = p.pts
			}
		}
	}
	if got[string(tags[0])] != ts90k(want) || got[string(tags[1])] != ts90k(past) {
		t.Errorf("PTS %d and %d, want %d (the PDT's) and %d (the next frame's)",
			got[string(tags[0])], got[string(tags[1])], ts90k(want), ts90k(past))
	}

	if err := s.AddMetadata(TimedID3{Tag: make([]byte, MaxMetadataSize+1)}); !errors.Is(err, ErrMetadataTooLarge) {
		t.Errorf("oversized tag: %v", err)
	}
	for i := range MaxQueuedMetadata + 1 {
		err := s.AddMetadata(TimedID3{Tag: tags[0], PTS: time.Hour, HasPTS: true})
		if (i < MaxQueuedMetadata) != (err == nil) || (err != nil && !errors.Is(err, ErrMetadataQueueFull)) {
			t.Fatalf("tag %d: %v", i, err)
		}
	}
}
