// Package flv reads the FLV file container (Adobe Flash Video File Format
// Specification v10.1, annex E): the file header and the tags after it.
//
// It owns the container's layout: where each tag begins, its type, its
// timestamp with the extended byte, and where its body lies. It never
// decodes a body (package ingest does that, from the RTMP messages that
// carry the same bodies), never copies one, and never touches the network
// or a clock. fount's server reads no FLV files: fount-bench replays clips
// with this package, and tests read their sources with it.
package flv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// Tag types, which are also the RTMP message types the bodies travel as.
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18 // script data (AMF0), e.g. onMetaData
)

// Tag is one tag of an FLV file.
type Tag struct {
	// Type is TagAudio, TagVideo, TagScript or a type this package does
	// not name, without the tag's two reserved bits and filter bit.
	Type byte
	// Timestamp is the tag's DTS in milliseconds: the 24-bit field with the
	// extended byte as its top 8 bits.
	Timestamp uint32
	// Data is the tag's body: a window into the file's bytes, never a copy,
	// with its capacity cut to its length so that appending to it cannot
	// overwrite the next tag.
	Data []byte
}

// ErrTruncated is wrapped by Parse's error when the file ends inside a tag.
var ErrTruncated = errors.New("file ends inside an FLV tag")

// Parse splits an FLV file into its tags, in file order. A last tag cut
// short, as a killed recorder leaves, ends the list: Parse returns the tags
// before it with an error wrapping ErrTruncated, and callers that replay
// such files ignore that error. Encrypted tags (the filter bit) are
// refused.
func Parse(b []byte) ([]Tag, error) {
	if len(b) < 9 || string(b[:3]) != "FLV" {
		return nil, errors.New("not an FLV file")
	}
	hdr := int(binary.BigEndian.Uint32(b[5:9]))
	if hdr < 9 || hdr > len(b) {
		return nil, fmt.Errorf("bad FLV header size %d", hdr)
	}
	var tags []Tag
	for pos := hdr + 4; pos < len(b); { // + PreviousTagSize0
		if pos+11 > len(b) {
			return tags, fmt.Errorf("%w: a tag header at byte %d", ErrTruncated, pos)
		}
		n := int(b[pos+1])<<16 | int(b[pos+2])<<8 | int(b[pos+3])
		ts := uint32(b[pos+4])<<16 | uint32(b[pos+5])<<8 | uint32(b[pos+6]) | uint32(b[pos+7])<<24
		off := pos + 11
		if off+n > len(b) {
			return tags, fmt.Errorf("%w: a %d-byte body at byte %d", ErrTruncated, n, off)
		}
		if b[pos]&0x20 != 0 {
			return nil, errors.New("encrypted FLV tags are not supported")
		}
		tags = append(tags, Tag{Type: b[pos] & 0x1f, Timestamp: ts, Data: b[off : off+n : off+n]})
		pos = off + n + 4 // + PreviousTagSize
	}
	return tags, nil
}

// ReadFile reads the FLV file at path and parses it as Parse does; the
// tags' Data alias the bytes read.
func ReadFile(path string) ([]Tag, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tags, err := Parse(b)
	if err != nil {
		return tags, fmt.Errorf("%s: %w", path, err)
	}
	return tags, nil
}

// SequenceHeader reports whether the tag carries a codec configuration
// rather than media: for video an AVC or HEVC decoder configuration record
// (legacy FLV, AVC packet type 0) or an Enhanced RTMP SequenceStart; for
// audio an AAC AudioSpecificConfig (AAC packet type 0) or an Enhanced RTMP
// SequenceStart. Publishers send these once, before the frames.
func (t Tag) SequenceHeader() bool {
	p := t.Data
	if len(p) < 1 {
		return false
	}
	switch t.Type {
	case TagVideo:
		if p[0]&0x80 != 0 { // Enhanced RTMP: the packet type in the low nibble
			return p[0]&0x0f == ExSequenceStart
		}
		codec := p[0] & 0x0f
		return (codec == CodecAVC || codec == CodecHEVC) && len(p) > 1 && p[1] == AVCSequenceHeader
	case TagAudio:
		switch p[0] >> 4 {
		case SoundAAC:
			return len(p) > 1 && p[1] == 0
		case SoundExHeader:
			return p[0]&0x0f == ExSequenceStart
		}
	}
	return false
}

// Keyframe reports whether the tag is a video keyframe with coded media:
// frame type 1 and, in legacy FLV, an AVC or HEVC NALU packet (type 1),
// in Enhanced RTMP a CodedFrames or CodedFramesX packet (not a sequence
// start or end, metadata, or a multitrack or ModEx wrapper).
func (t Tag) Keyframe() bool {
	p := t.Data
	if t.Type != TagVideo || len(p) < 2 || (p[0]>>4)&0x07 != FrameKey {
		return false
	}
	if p[0]&0x80 != 0 {
		pt := p[0] & 0x0f
		return pt == ExCodedFrames || pt == ExCodedFramesX
	}
	codec := p[0] & 0x0f
	return (codec == CodecAVC || codec == CodecHEVC) && p[1] == AVCNALU
}

// FLV codec and packet identifiers (FLV spec v10.1, Enhanced RTMP v1/v2):
// the one statement of them; package ingest parses the whole grammar with
// them.
const (
	CodecAVC      = 7  // video codec id: H.264
	CodecHEVC     = 12 // not in the FLV spec; some encoders and CDNs use it for HEVC
	SoundAAC      = 10 // sound format: AAC
	SoundExHeader = 9  // Enhanced RTMP audio: a FourCC follows

	// AVC (and legacy HEVC) packet types, the byte after the codec id.
	AVCSequenceHeader = 0
	AVCNALU           = 1
	AVCEndOfSequence  = 2

	// Enhanced RTMP video (and audio) packet types, in the first byte's
	// low nibble.
	ExSequenceStart        = 0
	ExCodedFrames          = 1
	ExSequenceEnd          = 2
	ExCodedFramesX         = 3
	ExMetadata             = 4
	ExMPEG2TSSequenceStart = 5

	// Video frame types, in the first byte's bits 4-6.
	FrameKey     = 1
	FrameCommand = 5
)
