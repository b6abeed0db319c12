package ingest

import "github.com/fount-live/fount/ingest/flv"

// FLV codec and packet identifiers, as package flv states them once.
const (
	flvCodecAVC   = flv.CodecAVC
	flvCodecHEVC  = flv.CodecHEVC
	flvSoundAAC   = flv.SoundAAC
	flvSoundExHdr = flv.SoundExHeader

	avcSeqHeader = flv.AVCSequenceHeader
	avcNALU      = flv.AVCNALU
	avcEndOfSeq  = flv.AVCEndOfSequence

	exSeqStart        = flv.ExSequenceStart
	exCodedFrames     = flv.ExCodedFrames
	exSeqEnd          = flv.ExSequenceEnd
	exCodedFramesX    = flv.ExCodedFramesX
	exMetadata        = flv.ExMetadata
	exMPEG2TSSeqStart = flv.ExMPEG2TSSequenceStart

	frameKey     = flv.FrameKey
	frameCommand = flv.FrameCommand
)

// cts24 reads a signed 24-bit big-endian composition time.
func cts24(b []byte) int32 {
	v := int32(b[0])<<16 | int32(b[1])<<8 | int32(b[2])
	return v << 8 >> 8 // sign-extend
}

func legacyVideoCodecName(id byte) string {
	switch id {
	case 2:
		return "Sorenson H.263"
	case 3:
		return "Screen video"
	case 4:
		return "VP6"
	case 5:
		return "VP6 with alpha"
	case 6:
		return "Screen video v2"
	case flvCodecAVC:
		return "H.264"
	case flvCodecHEVC:
		return "HEVC (non-standard FLV id)"
	}
	return "unknown"
}

func soundFormatName(f byte) string {
	switch f {
	case 0, 3:
		return "PCM"
	case 1:
		return "ADPCM"
	case 2:
		return "MP3"
	case 4, 5, 6:
		return "Nellymoser"
	case 7:
		return "G.711 A-law"
	case 8:
		return "G.711 mu-law"
	case flvSoundExHdr:
		return "Enhanced RTMP audio (Opus, FLAC, AC-3...)"
	case 11:
		return "Speex"
	case 14:
		return "MP3 8 kHz"
	}
	return "unknown"
}
