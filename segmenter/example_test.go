package segmenter_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// The codec configurations an encoder sends in its RTMP sequence headers:
// an AVCDecoderConfigurationRecord (320x240 H.264 Constrained Baseline,
// 25 fps) and an AudioSpecificConfig (AAC-LC, 48 kHz, stereo).
var (
	avcRecord, _ = hex.DecodeString("0142c00dffe100186742c00dd90141fb011000000300100000030320f142a48001000568cb83cb20")
	aacConfig    = []byte{0x11, 0x90}
)

// newSegmenter returns a Segmenter for H.264 + AAC, configured as ingest
// configures it from the sequence headers.
func newSegmenter(cfg segmenter.Config, sink segmenter.Sink) *segmenter.Segmenter {
	cfg.Expect = segmenter.Video | segmenter.Audio // as onMetaData announces
	cfg.Logger = slog.New(slog.DiscardHandler)
	s := segmenter.New(cfg, sink)
	v, err := codec.ParseVideo(codec.AVC, avcRecord)
	if err != nil {
		panic(err)
	}
	a, err := codec.ParseAudio(codec.AAC, aacConfig)
	if err != nil {
		panic(err)
	}
	if err := s.SetVideoConfig(v); err != nil {
		panic(err)
	}
	if err := s.SetAudioConfig(a); err != nil {
		panic(err)
	}
	return s
}

// feed writes the given seconds of 25 fps video with a keyframe every
// gop frames, and of AAC frames (1024 samples at 48 kHz), interleaved in
// decode order with whole-millisecond timestamps, as RTMP delivers them.
// Each video frame is one 4-byte length-prefixed H.264 NAL unit (AVCC, as
// in FLV): the NAL header of an IDR or a non-IDR slice and three
// placeholder bytes. The segmenter reads the NAL framing and types, never
// the pictures, so these keep the example short; a player would show
// nothing. Each audio frame is a stereo AAC-LC frame of silence.
func feed(s *segmenter.Segmenter, seconds, gop int) {
	end := time.Duration(seconds) * time.Second
	var nv, na int
	for {
		vt := time.Duration(nv*40) * time.Millisecond
		at := time.Duration(na*1024*1000/48000) * time.Millisecond
		if min(vt, at) >= end {
			return
		}
		var f segmenter.Frame
		if vt <= at {
			key := nv%gop == 0
			nal := byte(0x41) // coded slice of a non-IDR picture
			if key {
				nal = 0x65 // coded slice of an IDR picture
			}
			f = segmenter.Frame{Kind: segmenter.Video, DTS: vt, PTS: vt, Key: key,
				Data: []byte{0, 0, 0, 4, nal, 0x88, 0x84, 0x21}}
			nv++
		} else {
			f = segmenter.Frame{Kind: segmenter.Audio, DTS: at, PTS: at,
				Data: []byte{0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80}}
			na++
		}
		if err := s.WriteFrame(f); err != nil {
			panic(err)
		}
	}
}

// printer is a Sink that prints what the segmenter hands over.
type printer struct{ segments int }

func (p *printer) Init(in segmenter.Init) error {
	fmt.Printf("init %d: %s\n", in.Version, describe(in.Data))
	return nil
}

func (p *printer) Part(pt segmenter.Part) error {
	fmt.Printf("  part %v independent=%v: %s\n", pt.Duration, pt.Independent, describe(pt.Data))
	return nil
}

func (p *printer) Segment(seg segmenter.Segment) error {
	fmt.Printf("segment %d: start %v, duration %v, %d bytes, keyframes at %v\n",
		p.segments, seg.Start, seg.Duration, seg.Size, keyframes(seg.IFrames))
	if len(seg.Parts) == 0 {
		fmt.Printf("  %s\n", describe(seg.Data))
	} else {
		// The segment is its parts, after the bytes that come before them.
		n := len(seg.Data)
		for _, pt := range seg.Parts {
			n -= len(pt.Data)
		}
		fmt.Printf("  %s + its %d parts\n", describe(seg.Data[:n]), len(seg.Parts))
	}
	p.segments++
	return nil
}

func keyframes(ifr []segmenter.IFrame) []string {
	var at []string
	for _, f := range ifr {
		at = append(at, fmt.Sprintf("byte %d", f.Offset))
	}
	return at
}

// describe names a container's contents: MPEG-TS packets, or fMP4's
// top-level boxes.
func describe(b []byte) string {
	if len(b) > 0 && len(b)%188 == 0 && b[0] == 0x47 {
		for i := 0; i < len(b); i += 188 {
			if b[i] != 0x47 {
				return "not MPEG-TS"
			}
		}
		return fmt.Sprintf("MPEG-TS, %d packets", len(b)/188)
	}
	var boxes []string
	for len(b) >= 8 {
		n := binary.BigEndian.Uint32(b)
		if n < 8 || int(n) > len(b) {
			return "not fMP4"
		}
		boxes = append(boxes, string(b[4:8]))
		b = b[n:]
	}
	return "fMP4 " + strings.Join(boxes, " ")
}

// A frame in, a segment out: frames go to WriteFrame in decode order, and
// each segment is handed to the Sink when the keyframe that starts the next
// one arrives (here every 2 s, the target duration); Flush hands over the
// last one. The default container is MPEG-TS, each segment beginning with
// its keyframe.
func ExampleNew() {
	s := newSegmenter(segmenter.Config{TargetDuration: 2 * time.Second}, &printer{})
	feed(s, 6, 50)
	if err := s.Flush(); err != nil {
		panic(err)
	}
	// Output:
	// segment 0: start 0s, duration 2s, 27448 bytes, keyframes at [byte 0]
	//   MPEG-TS, 146 packets
	// segment 1: start 2s, duration 2s, 27448 bytes, keyframes at [byte 0]
	//   MPEG-TS, 146 packets
	// segment 2: start 4s, duration 2s, 27448 bytes, keyframes at [byte 0]
	//   MPEG-TS, 146 packets
}

// In fMP4 the Init (ftyp+moov) comes first, then segments: a styp and one
// fragment (moof+mdat) per segment, except that each video keyframe is a
// fragment of its own, for the I-frame playlist.
func ExampleNew_fmp4() {
	s := newSegmenter(segmenter.Config{TargetDuration: 2 * time.Second, Format: segmenter.FormatFMP4}, &printer{})
	feed(s, 4, 25)
	if err := s.Flush(); err != nil {
		panic(err)
	}
	// Output:
	// init 0: fMP4 ftyp moov
	// segment 0: start 0s, duration 2s, 4090 bytes, keyframes at [byte 28 byte 2059]
	//   fMP4 styp moof mdat moof mdat moof mdat moof mdat
	// segment 1: start 2s, duration 2s, 4090 bytes, keyframes at [byte 28 byte 2059]
	//   fMP4 styp moof mdat moof mdat moof mdat moof mdat
}

// With a PartDuration the segmenter cuts LL-HLS parts, each handed over as
// soon as its last frame is written; a segment is its parts (in fMP4,
// after the styp). Only a part that begins with a keyframe is independent.
func ExampleNew_parts() {
	s := newSegmenter(segmenter.Config{TargetDuration: 2 * time.Second, Format: segmenter.FormatFMP4,
		PartDuration: 500 * time.Millisecond}, &printer{})
	feed(s, 4, 50)
	if err := s.Flush(); err != nil {
		panic(err)
	}
	// Output:
	// init 0: fMP4 ftyp moov
	//   part 480ms independent=true: fMP4 moof mdat moof mdat
	//   part 480ms independent=false: fMP4 moof mdat
	//   part 480ms independent=false: fMP4 moof mdat
	//   part 480ms independent=false: fMP4 moof mdat
	//   part 80ms independent=false: fMP4 moof mdat
	// segment 0: start 0s, duration 2s, 4474 bytes, keyframes at [byte 28]
	//   fMP4 styp + its 5 parts
	//   part 480ms independent=true: fMP4 moof mdat moof mdat
	//   part 480ms independent=false: fMP4 moof mdat
	//   part 480ms independent=false: fMP4 moof mdat
	//   part 480ms independent=false: fMP4 moof mdat
	//   part 80ms independent=false: fMP4 moof mdat
	// segment 1: start 2s, duration 2s, 4474 bytes, keyframes at [byte 28]
	//   fMP4 styp + its 5 parts
}
