package codec

import (
	"bytes"
	"fmt"
)

// aacSampleRate is the sampling_frequency_index table (ISO/IEC 14496-3
// 1.6.3.4).
func aacSampleRate(i int) int {
	switch i {
	case 0:
		return 96000
	case 1:
		return 88200
	case 2:
		return 64000
	case 3:
		return 48000
	case 4:
		return 44100
	case 5:
		return 32000
	case 6:
		return 24000
	case 7:
		return 22050
	case 8:
		return 16000
	case 9:
		return 12000
	case 10:
		return 11025
	case 11:
		return 8000
	case 12:
		return 7350
	}
	return 0
}

func readAOT(r *bitReader) int {
	aot := int(r.u(5))
	if aot == 31 {
		aot = 32 + int(r.u(6))
	}
	return aot
}

// readSampleRate returns the rate and its ADTS index (-1 if not in the table).
func readSampleRate(r *bitReader) (rate, idx int, err error) {
	i := int(r.u(4))
	switch {
	case i == 15:
		rate = int(r.u(24))
		idx = -1
		for j := 0; j <= 12; j++ {
			if aacSampleRate(j) == rate {
				idx = j
			}
		}
	case i <= 12:
		rate, idx = aacSampleRate(i), i
	default:
		return 0, 0, fmt.Errorf("aac config: reserved sampling frequency index %d", i)
	}
	if r.err != nil {
		return 0, 0, fmt.Errorf("aac config: %w", r.err)
	}
	if rate == 0 {
		return 0, 0, fmt.Errorf("aac config: sample rate 0")
	}
	return rate, idx, nil
}

// parseASC parses an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) far
// enough to describe the stream and to write ADTS headers for its raw
// frames, which MPEG-TS needs: it refuses what ADTS cannot carry.
func parseASC(b []byte) (*Audio, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("aac config: truncated (%d bytes)", len(b))
	}
	r := &bitReader{b: b}
	a := &Audio{Codec: AAC, Config: bytes.Clone(b)}
	a.ObjectType = readAOT(r)
	if r.err != nil {
		return nil, fmt.Errorf("aac config: %w", r.err)
	}
	rate, idx, err := readSampleRate(r)
	if err != nil {
		return nil, err
	}
	a.SampleRate = rate
	a.Channels = int(r.u(4))
	if r.err != nil {
		return nil, fmt.Errorf("aac config: %w", r.err)
	}
	core := a.ObjectType
	if core == 5 || core == 29 { // explicit SBR / PS: extension rate, then the core type
		if _, _, err := readSampleRate(r); err != nil {
			return nil, err
		}
		core = readAOT(r)
		if r.err != nil {
			return nil, fmt.Errorf("aac config: %w", r.err)
		}
	}
	switch {
	case a.ObjectType == 0:
		return nil, fmt.Errorf("aac config: unsupported object type 0")
	case core < 1 || core > 4:
		// ADTS can only carry AAC Main, LC, SSR and LTP (profile is 2 bits).
		return nil, fmt.Errorf("aac config: unsupported object type %d", core)
	}
	if a.Channels == 0 {
		return nil, fmt.Errorf("aac config: channel configuration 0 (program config element) is not supported")
	}
	if a.Channels > 7 {
		return nil, fmt.Errorf("aac config: reserved channel configuration %d", a.Channels)
	}
	if idx < 0 {
		return nil, fmt.Errorf("aac config: sample rate %d cannot be carried in ADTS", rate)
	}
	a.ChannelConfig = a.Channels
	if a.Channels == 7 {
		a.Channels = 8 // channelConfiguration 7 is 7.1
	}
	a.ADTSProfile = core - 1
	a.ADTSSampleIndex = idx
	a.Codecs = fmt.Sprintf("mp4a.40.%d", a.ObjectType)
	return a, nil
}
