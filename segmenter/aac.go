package segmenter

import (
	"bytes"
	"fmt"
)

var aacSampleRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// aacConfig is a parsed AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).
type aacConfig struct {
	raw         []byte
	objectType  int // audioObjectType as signalled first (5 or 29 for explicit HE-AAC)
	sampleRate  int // sampling frequency of the signalled object type
	channels    int // channelConfiguration
	adtsProfile int // ADTS profile field: core object type - 1
	adtsSFI     int // ADTS sampling_frequency_index of the core
}

func (c *aacConfig) codec() string { return fmt.Sprintf("mp4a.40.%d", c.objectType) }

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
		for j, sr := range aacSampleRates {
			if sr == rate {
				idx = j
			}
		}
	case i < len(aacSampleRates):
		rate, idx = aacSampleRates[i], i
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

// parseASC parses an AudioSpecificConfig far enough to describe the stream
// and to write ADTS headers for its raw frames.
func parseASC(b []byte) (*aacConfig, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("aac config: truncated (%d bytes)", len(b))
	}
	r := &bitReader{b: b}
	c := &aacConfig{raw: bytes.Clone(b)}
	c.objectType = readAOT(r)
	if r.err != nil {
		return nil, fmt.Errorf("aac config: %w", r.err)
	}
	rate, idx, err := readSampleRate(r)
	if err != nil {
		return nil, err
	}
	c.sampleRate = rate
	c.channels = int(r.u(4))
	if r.err != nil {
		return nil, fmt.Errorf("aac config: %w", r.err)
	}
	core := c.objectType
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
	case c.objectType == 0:
		return nil, fmt.Errorf("aac config: unsupported object type 0")
	case core < 1 || core > 4:
		// ADTS can only carry AAC Main, LC, SSR and LTP (profile is 2 bits).
		return nil, fmt.Errorf("aac config: unsupported object type %d", core)
	}
	if c.channels == 0 {
		return nil, fmt.Errorf("aac config: channel configuration 0 (program config element) is not supported")
	}
	if c.channels > 7 {
		return nil, fmt.Errorf("aac config: reserved channel configuration %d", c.channels)
	}
	if idx < 0 {
		return nil, fmt.Errorf("aac config: sample rate %d cannot be carried in ADTS", rate)
	}
	c.adtsProfile = core - 1
	c.adtsSFI = idx
	return c, nil
}

// maxADTSPayload is the largest raw frame an ADTS header (13-bit length) can describe.
const maxADTSPayload = 1<<13 - 1 - 7

// appendADTS appends a 7-byte ADTS header (no CRC) for a raw AAC frame of
// payloadLen bytes.
func (c *aacConfig) appendADTS(dst []byte, payloadLen int) ([]byte, error) {
	if payloadLen < 0 || payloadLen > maxADTSPayload {
		return dst, fmt.Errorf("aac frame: %d bytes is too large for ADTS", payloadLen)
	}
	n := payloadLen + 7
	return append(dst,
		0xff,
		0xf1, // MPEG-4, layer 0, protection_absent
		byte(c.adtsProfile<<6|c.adtsSFI<<2|(c.channels>>2)&1),
		byte((c.channels&3)<<6|(n>>11)&3),
		byte(n>>3),
		byte((n&7)<<5|0x1f),
		0xfc, // buffer fullness 0x7ff (VBR), one raw data block
	), nil
}
