package ingest

// FLV codec and packet identifiers (FLV spec v10.1, Enhanced RTMP v1/v2).
const (
	flvCodecAVC   = 7
	flvCodecHEVC  = 12 // not in the FLV spec; some encoders and CDNs use it
	flvSoundAAC   = 10
	flvSoundExHdr = 9 // Enhanced RTMP audio: FourCC follows

	avcSeqHeader = 0
	avcNALU      = 1
	avcEndOfSeq  = 2

	// Enhanced RTMP video packet types.
	exSeqStart        = 0
	exCodedFrames     = 1
	exSeqEnd          = 2
	exCodedFramesX    = 3
	exMetadata        = 4
	exMPEG2TSSeqStart = 5

	frameKey     = 1
	frameCommand = 5
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
	case 12:
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
