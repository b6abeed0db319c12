package segmenter

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/hevc"
	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/fount-live/fount/segmenter/codec"
)

// buildInit returns ftyp+moov for the tracks whose config is non-nil: video
// (track 1, 90 kHz) first, then audio (timescale = sample rate).
func buildInit(v *codec.Video, a *codec.Audio) ([]byte, error) {
	init := mp4.NewMP4Init()
	init.AddChild(mp4.NewFtyp("iso6", 0, []string{"iso6", "cmfc", "mp41", "dash"}))
	moov := mp4.NewMoovBox()
	init.AddChild(moov)
	moov.AddChild(mp4.CreateMvhd())
	moov.AddChild(mp4.NewMvexBox())
	if v != nil {
		entry, err := videoSampleEntry(v)
		if err != nil {
			return nil, err
		}
		trak := init.AddEmptyTrack(videoTimescale, "video", "und")
		trak.Tkhd.Width = mp4.Fixed32(uint32(entry.Width) << 16)
		trak.Tkhd.Height = mp4.Fixed32(uint32(entry.Height) << 16)
		trak.Mdia.Minf.Stbl.Stsd.AddChild(entry)
	}
	if a != nil {
		entry, err := audioSampleEntry(a)
		if err != nil {
			return nil, err
		}
		trak := init.AddEmptyTrack(uint32(a.SampleRate), "audio", "und")
		trak.Mdia.Minf.Stbl.Stsd.AddChild(entry)
	}
	var b bytes.Buffer
	if err := init.Encode(&b); err != nil {
		return nil, fmt.Errorf("segmenter: encoding init: %w", err)
	}
	return b.Bytes(), nil
}

// videoSampleEntry is avc1 (avcC), hvc1 (hvcC with the parameter sets, as
// Apple players require), av01 (av1C) or vp09 (vpcC).
func videoSampleEntry(v *codec.Video) (*mp4.VisualSampleEntryBox, error) {
	w, h := uint16(v.Width), uint16(v.Height)
	switch v.Codec {
	case codec.AVC:
		avcC, err := mp4.CreateAvcC(v.SPS, v.PPS, true)
		if err != nil {
			return nil, fmt.Errorf("segmenter: avcC: %w", err)
		}
		// mp4ff assumes 4:2:0; the rest of the record comes from the SPS.
		avcC.ChromaFormat = byte(v.ChromaFormat)
		return mp4.CreateVisualSampleEntryBox("avc1", w, h, avcC), nil
	case codec.HEVC:
		box, err := decodeRecordBox("hvcC", v.Record)
		if err != nil {
			return nil, err
		}
		// hvc1 means every parameter set is in the sample entry: say so
		// (array_completeness), as encoders' records often do not.
		hvcC := box.(*mp4.HvcCBox)
		for i, a := range hvcC.NaluArrays {
			switch a.NaluType() {
			case hevc.NALU_VPS, hevc.NALU_SPS, hevc.NALU_PPS:
				hvcC.NaluArrays[i] = hevc.NewNaluArray(true, a.NaluType(), a.Nalus)
			}
		}
		return mp4.CreateVisualSampleEntryBox("hvc1", w, h, hvcC), nil
	case codec.AV1:
		box, err := decodeRecordBox("av1C", v.Record)
		if err != nil {
			return nil, err
		}
		return mp4.CreateVisualSampleEntryBox("av01", w, h, box), nil
	case codec.VP9:
		box, err := decodeRecordBox("vpcC", v.Record)
		if err != nil {
			return nil, err
		}
		return mp4.CreateVisualSampleEntryBox("vp09", w, h, box), nil
	}
	return nil, fmt.Errorf("%w: %v in %v", ErrNotCarried, v.Codec, FormatFMP4)
}

// audioSampleEntry is mp4a (esds: AAC with its AudioSpecificConfig, MP3 with
// objectTypeIndication 0x6B/0x69), Opus (dOps), fLaC (dfLa), ac-3 (dac3) or
// ec-3 (dec3).
func audioSampleEntry(a *codec.Audio) (*mp4.AudioSampleEntryBox, error) {
	ch := a.Channels
	rate := a.SampleRate
	if rate > 0xffff { // 16.16 field; the timescale carries the real rate
		rate = 0
	}
	size := uint16(16)
	var name string
	var child mp4.Box
	var err error
	switch a.Codec {
	case codec.AAC:
		name, child = "mp4a", mp4.CreateEsdsBox(a.Config)
	case codec.MP3:
		esds := mp4.CreateEsdsBox(nil)
		oti := byte(a.ObjectTypeIndication)
		if oti == 0 {
			oti = 0x6b
		}
		esds.DecConfigDescriptor.ObjectType = oti
		esds.DecConfigDescriptor.DecSpecificInfo = nil
		name, child = "mp4a", esds
	case codec.Opus:
		ch, rate = int(opusChannels(a)), 48000
		name = "Opus"
		child, err = decodeRecordBox("dOps", a.OpusDOps())
	case codec.FLAC:
		if a.BitsPerSample > 0 {
			size = uint16(a.BitsPerSample)
		}
		name = "fLaC"
		child, err = decodeRecordBox("dfLa", a.FLACDfLa())
	case codec.AC3:
		name = "ac-3"
		child, err = decodeRecordBox("dac3", a.Config)
	case codec.EAC3:
		name = "ec-3"
		child, err = decodeRecordBox("dec3", a.Config)
	default:
		return nil, fmt.Errorf("%w: %v in %v", ErrNotCarried, a.Codec, FormatFMP4)
	}
	if err != nil {
		return nil, err
	}
	return mp4.CreateAudioSampleEntryBox(name, uint16(ch), size, uint16(rate), child), nil
}

// opusChannels is the OpusHead's output channel count.
func opusChannels(a *codec.Audio) byte {
	if len(a.Config) > 9 {
		return a.Config[9]
	}
	return byte(a.Channels)
}

// decodeRecordBox makes the mp4ff box of type typ whose payload is body
// (a configuration record as package codec keeps it), by decoding it: the
// box is then checked, and the sample entry gets mp4ff's own type for it.
func decodeRecordBox(typ string, body []byte) (mp4.Box, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("segmenter: %s: empty configuration", typ)
	}
	raw := make([]byte, 8+len(body))
	binary.BigEndian.PutUint32(raw, uint32(len(raw)))
	copy(raw[4:8], typ)
	copy(raw[8:], body)
	box, err := mp4.DecodeBoxSR(0, bits.NewFixedSliceReader(raw))
	if err != nil {
		return nil, fmt.Errorf("segmenter: %s: %w", typ, err)
	}
	if box.Type() != typ {
		return nil, fmt.Errorf("segmenter: %s decoded as %s", typ, box.Type())
	}
	return box, nil
}
