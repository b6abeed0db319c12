package segmenter

import (
	"fmt"

	"github.com/fount-live/fount/segmenter/codec"
)

// HEVCInfo describes an HEVC stream by its decoder configuration record.
//
// Deprecated: use codec.ParseVideo(codec.HEVC, record), whose Video has the
// same facts (Codecs, ProfileName, LevelName, Width, Height, ChromaFormat,
// BitDepth, BitDepthChroma, HighTier). Kept until ingest moves to package codec.
type HEVCInfo struct {
	Codec          string // RFC 6381, e.g. "hvc1.2.4.L120.90"
	Profile        string // "Main", "Main 10", "Main 4:2:2 10", ...
	HighTier       bool
	Level          string // "4", "5.1"
	Width, Height  int    // displayed size (after the conformance window)
	ChromaFormat   int    // chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
	BitDepthLuma   int
	BitDepthChroma int
}

// String reads like "HEVC Main 10 1920x1080 (hvc1.2.4.L120.90)".
func (i HEVCInfo) String() string {
	return fmt.Sprintf("HEVC %s %dx%d (%s)", i.Profile, i.Width, i.Height, i.Codec)
}

// DescribeHEVC parses an HEVCDecoderConfigurationRecord (the body of an
// Enhanced RTMP "hvc1" sequence start, or of an MP4 hvcC box) and describes
// the stream.
//
// Deprecated: use codec.ParseVideo(codec.HEVC, record).
func DescribeHEVC(record []byte) (HEVCInfo, error) {
	v, err := codec.ParseVideo(codec.HEVC, record)
	if err != nil {
		return HEVCInfo{}, err
	}
	return HEVCInfo{
		Codec:          v.Codecs,
		Profile:        v.ProfileName(),
		HighTier:       v.HighTier,
		Level:          v.LevelName(),
		Width:          v.Width,
		Height:         v.Height,
		ChromaFormat:   v.ChromaFormat,
		BitDepthLuma:   v.BitDepth,
		BitDepthChroma: v.BitDepthChroma,
	}, nil
}
