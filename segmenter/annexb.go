package segmenter

import (
	"errors"
	"fmt"

	"github.com/fount-live/fount/segmenter/codec"
)

// Muxing helpers for the bitstream forms the containers want: Annex-B
// H.264/HEVC and ADTS AAC for MPEG-TS, 4-byte NALU lengths for fMP4. Codec
// configuration parsing lives in package codec.

// H.264 NAL unit types used here.
const (
	nalIDR = 5
	nalSPS = 7
	nalPPS = 8
	nalAUD = 9
)

// HEVC NAL unit types used here (H.265 Table 7-1).
const (
	hevcBLAWLP   = 16 // IRAP pictures are 16..21 (BLA, IDR, CRA)
	hevcRSVIRAP  = 21
	hevcVPS      = 32
	hevcSPS      = 33
	hevcPPS      = 34
	hevcAUD      = 35
	hevcAUDByte0 = hevcAUD << 1
)

var (
	errAVCTruncLen  = errors.New("avc frame: truncated NALU length")
	errHEVCTruncLen = errors.New("hevc frame: truncated NALU length")
)

// paramSetsAnnexB returns the configuration's parameter sets (VPS, SPS, PPS)
// with 4-byte start codes, ready to go before a keyframe.
func paramSetsAnnexB(v *codec.Video) []byte {
	var b []byte
	for _, set := range [][][]byte{v.VPS, v.SPS, v.PPS} {
		for _, ps := range set {
			b = append(b, 0, 0, 0, 1)
			b = append(b, ps...)
		}
	}
	return b
}

// avccToAnnexB converts one H.264 AVCC access unit (NAL units prefixed by
// lengthSize-byte big-endian lengths) to Annex-B; see toAnnexB.
func avccToAnnexB(dst, avcc []byte, lengthSize int, paramSets []byte) ([]byte, bool, error) {
	return toAnnexB(dst, avcc, lengthSize, paramSets, false)
}

// toAnnexB converts one H.264 (hevc false) or HEVC access unit of
// length-prefixed NAL units to Annex-B with 4-byte start codes, appending
// to dst[:0]. It starts the access unit with an AUD unless the frame has
// one, and inserts paramSets (Annex-B parameter sets) before an IDR (HEVC:
// IRAP) access unit that does not carry its own. It reports whether the
// access unit holds an IDR/IRAP picture. On error dst is returned truncated
// to zero length.
func toAnnexB(dst, src []byte, lengthSize int, paramSets []byte, hevc bool) ([]byte, bool, error) {
	dst = dst[:0]
	name, errTrunc := "avc", errAVCTruncLen
	if hevc {
		name, errTrunc = "hevc", errHEVCTruncLen
	}
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		return dst, false, fmt.Errorf("%s frame: invalid NALU length size %d", name, lengthSize)
	}
	// Pass 1: validate lengths and find out what the access unit carries.
	var hasAUD, hasIRAP, hasVPS, hasSPS, hasPPS bool
	size := 0
	for p := 0; p < len(src); {
		if p+lengthSize > len(src) {
			return dst, false, errTrunc
		}
		n := readLen(src[p:], lengthSize)
		p += lengthSize
		if n > uint64(len(src)-p) {
			return dst, false, fmt.Errorf("%s frame: NALU length %d overruns frame (%d bytes left)", name, n, len(src)-p)
		}
		if n == 0 {
			continue
		}
		if hevc {
			switch t := int(src[p]>>1) & 0x3f; {
			case t == hevcAUD:
				hasAUD = true
			case t >= hevcBLAWLP && t <= hevcRSVIRAP:
				hasIRAP = true
			case t == hevcVPS:
				hasVPS = true
			case t == hevcSPS:
				hasSPS = true
			case t == hevcPPS:
				hasPPS = true
			}
		} else {
			switch src[p] & 0x1f {
			case nalAUD:
				hasAUD = true
			case nalIDR:
				hasIRAP = true
			case nalSPS:
				hasSPS = true
			case nalPPS:
				hasPPS = true
			}
		}
		size += 4 + int(n)
		p += int(n)
	}
	own := hasSPS && hasPPS && (hasVPS || !hevc)
	needParams := hasIRAP && !own && len(paramSets) > 0
	if !hasAUD {
		size += 7
	}
	if needParams {
		size += len(paramSets)
	}
	if cap(dst) < size {
		dst = make([]byte, 0, size+size/4)
	}
	if !hasAUD {
		if hevc {
			// nuh_temporal_id_plus1 1; pic_type 2 (any slice type), stop bit.
			dst = append(dst, 0, 0, 0, 1, hevcAUDByte0, 0x01, 0x50)
		} else {
			dst = append(dst, 0, 0, 0, 1, nalAUD, 0xf0) // primary_pic_type 7: any slice type
		}
	}
	// Pass 2: copy. Parameter sets go right after the AUD.
	for p := 0; p < len(src); {
		n := int(readLen(src[p:], lengthSize))
		p += lengthSize
		if n == 0 {
			continue
		}
		nal := src[p : p+n]
		p += n
		isAUD := nal[0]&0x1f == nalAUD
		if hevc {
			isAUD = int(nal[0]>>1)&0x3f == hevcAUD
		}
		if needParams && !isAUD {
			dst = append(dst, paramSets...)
			needParams = false
		}
		dst = append(dst, 0, 0, 0, 1)
		dst = append(dst, nal...)
	}
	if needParams { // access unit held nothing but an AUD
		dst = append(dst, paramSets...)
	}
	return dst, hasIRAP, nil
}

func readLen(b []byte, size int) uint64 {
	var n uint64
	for i := 0; i < size; i++ {
		n = n<<8 | uint64(b[i])
	}
	return n
}

// normalizeNALUs validates an access unit of length-prefixed NAL units and
// returns it with 4-byte lengths: src itself when lengthSize is 4, else a
// rewrite into dst.
func normalizeNALUs(dst, src []byte, lengthSize int) ([]byte, error) {
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		return nil, fmt.Errorf("avc frame: invalid NALU length size %d", lengthSize)
	}
	for p := 0; p < len(src); {
		if p+lengthSize > len(src) {
			return nil, errAVCTruncLen
		}
		n := readLen(src[p:], lengthSize)
		p += lengthSize
		if n > uint64(len(src)-p) {
			return nil, fmt.Errorf("avc frame: NALU length %d overruns frame (%d bytes left)", n, len(src)-p)
		}
		if lengthSize != 4 {
			dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
			dst = append(dst, src[p:p+int(n)]...)
		}
		p += int(n)
	}
	if lengthSize == 4 {
		return src, nil
	}
	return dst, nil
}

// normalizeAVCC is normalizeNALUs (its historical name, for H.264).
func normalizeAVCC(dst, src []byte, lengthSize int) ([]byte, error) {
	return normalizeNALUs(dst, src, lengthSize)
}

// stripTemporalDelimiter returns an AV1 temporal unit without a leading
// temporal delimiter OBU, which AV1 in ISOBMFF leaves out of samples. It
// reslices; the rest of the unit is not checked.
func stripTemporalDelimiter(tu []byte) []byte {
	if len(tu) < 2 || (tu[0]>>3)&0xf != 2 || tu[0]&0x02 == 0 || tu[0]&0x04 != 0 {
		return tu // not a TD with obu_has_size_field and without extension
	}
	// A TD's payload is empty: obu_size is a LEB128 0, one byte.
	if tu[1] != 0 {
		return tu
	}
	return tu[2:]
}

// maxADTSPayload is the largest raw frame an ADTS header (13-bit length) can describe.
const maxADTSPayload = 1<<13 - 1 - 7

// appendADTS appends a 7-byte ADTS header (no CRC) for a raw AAC frame of
// payloadLen bytes of the configuration a.
func appendADTS(dst []byte, a *codec.Audio, payloadLen int) ([]byte, error) {
	if payloadLen < 0 || payloadLen > maxADTSPayload {
		return dst, fmt.Errorf("aac frame: %d bytes is too large for ADTS", payloadLen)
	}
	n := payloadLen + 7
	ch := a.ChannelConfig
	return append(dst,
		0xff,
		0xf1, // MPEG-4, layer 0, protection_absent
		byte(a.ADTSProfile<<6|a.ADTSSampleIndex<<2|(ch>>2)&1),
		byte((ch&3)<<6|(n>>11)&3),
		byte(n>>3),
		byte((n&7)<<5|0x1f),
		0xfc, // buffer fullness 0x7ff (VBR), one raw data block
	), nil
}
