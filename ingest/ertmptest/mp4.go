package ertmptest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
)

// Sample is one coded frame of a track.
type Sample struct {
	Data []byte
	// DTS is the decode time from the start of the clip; Dur its duration.
	DTS, Dur time.Duration
	// CTS is the composition time offset (PTS - DTS).
	CTS time.Duration
	// Key is set on sync samples (every audio sample).
	Key bool
}

// Track is one video or audio track to publish.
type Track struct {
	// ID is the E-RTMP trackId the track is published as (0 is the default
	// track). LoadMP4 sets 0; set others before publishing.
	ID   uint8
	Kind Kind
	// FourCC is the E-RTMP codec FourCC: "avc1", "hvc1", "av01", "vp09",
	// "mp4a", "Opus", "fLaC", "ac-3", "ec-3" or ".mp3".
	FourCC string
	// Config is the body of the codec's sequence start: the avcC, hvcC or
	// av1C record, the vpcC VPCodecConfigurationRecord (without the box's
	// version and flags), the AAC AudioSpecificConfig, the OpusHead (RFC
	// 7845, little-endian) or "fLaC" followed by the STREAMINFO metadata
	// block (with its 4-byte block header). Nil for AC-3, E-AC-3 and MP3,
	// which have no sequence start in E-RTMP.
	Config []byte
	// Width and Height are the video sample entry's size.
	Width, Height int
	// SampleRate and Channels are the audio sample entry's.
	SampleRate, Channels int
	Samples              []Sample
}

// WithID returns a copy of t published as trackId id.
func (t Track) WithID(id uint8) Track {
	t.ID = id
	return t
}

// Duration is the track's length: the last sample's DTS plus its duration.
func (t Track) Duration() time.Duration {
	if len(t.Samples) == 0 {
		return 0
	}
	s := t.Samples[len(t.Samples)-1]
	return s.DTS + s.Dur
}

// Bitrate is the track's average bitrate in kbit/s.
func (t Track) Bitrate() float64 {
	d := t.Duration()
	if d <= 0 {
		return 0
	}
	var n int
	for _, s := range t.Samples {
		n += len(s.Data)
	}
	return float64(n) * 8 / d.Seconds() / 1000
}

// FrameRate is the video track's average frame rate (0 for audio).
func (t Track) FrameRate() float64 {
	d := t.Duration()
	if t.Kind != Video || d <= 0 {
		return 0
	}
	return float64(len(t.Samples)) / d.Seconds()
}

// Find returns the first track of kind k in tracks.
func Find(tracks []Track, k Kind) (Track, bool) {
	for _, t := range tracks {
		if t.Kind == k {
			return t, true
		}
	}
	return Track{}, false
}

// LoadMP4 reads every video and audio track of a progressive MP4 file (as
// ffmpeg writes it): codec FourCC, sequence start body and samples. Tracks
// of other kinds are left out; a video or audio codec that E-RTMP does not
// carry is an error.
func LoadMP4(path string) ([]Track, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load mp4: %w", err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("load mp4 %s: %w", path, err)
	}
	if f.Moov == nil {
		return nil, fmt.Errorf("load mp4 %s: no moov box", path)
	}
	var out []Track
	for _, trak := range f.Moov.Traks {
		var kind Kind
		switch trak.Mdia.Hdlr.HandlerType {
		case "vide":
			kind = Video
		case "soun":
			kind = Audio
		default:
			continue
		}
		t, err := loadTrak(raw, trak, kind)
		if err != nil {
			return nil, fmt.Errorf("load mp4 %s: track %d: %w", path, trak.Tkhd.TrackID, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// boxPayload encodes box and drops its 8-byte header and skip more bytes
// (4 for a full box's version and flags).
func boxPayload(box mp4.Box, skip int) ([]byte, error) {
	var buf bytes.Buffer
	if err := box.Encode(&buf); err != nil {
		return nil, fmt.Errorf("encode %s: %w", box.Type(), err)
	}
	b := buf.Bytes()
	if len(b) < 8+skip {
		return nil, fmt.Errorf("%s box of %d bytes", box.Type(), len(b))
	}
	return b[8+skip:], nil
}

func loadTrak(raw []byte, trak *mp4.TrakBox, kind Kind) (Track, error) {
	stbl := trak.Mdia.Minf.Stbl
	if stbl == nil || stbl.Stsd == nil || len(stbl.Stsd.Children) == 0 {
		return Track{}, fmt.Errorf("no sample description")
	}
	t := Track{Kind: kind}
	entry := stbl.Stsd.Children[0]
	var err error
	switch e := entry.(type) {
	case *mp4.VisualSampleEntryBox:
		t.Width, t.Height = int(e.Width), int(e.Height)
		switch e.Type() {
		case "avc1", "avc3":
			t.FourCC = "avc1"
			if e.AvcC == nil {
				return t, fmt.Errorf("%s without avcC", e.Type())
			}
			t.Config, err = boxPayload(e.AvcC, 0)
		case "hvc1", "hev1":
			t.FourCC = "hvc1"
			if e.HvcC == nil {
				return t, fmt.Errorf("%s without hvcC", e.Type())
			}
			t.Config, err = boxPayload(e.HvcC, 0)
		case "av01":
			t.FourCC = "av01"
			if e.Av1C == nil {
				return t, fmt.Errorf("av01 without av1C")
			}
			t.Config, err = boxPayload(e.Av1C, 0)
		case "vp09":
			t.FourCC = "vp09"
			if e.VppC == nil {
				return t, fmt.Errorf("vp09 without vpcC")
			}
			t.Config, err = boxPayload(e.VppC, 4)
		default:
			return t, fmt.Errorf("video sample entry %q has no E-RTMP FourCC here", e.Type())
		}
	case *mp4.AudioSampleEntryBox:
		t.SampleRate, t.Channels = int(e.SampleRate), int(e.ChannelCount)
		switch e.Type() {
		case "mp4a":
			if e.Esds == nil || e.Esds.DecConfigDescriptor == nil {
				return t, fmt.Errorf("mp4a without esds")
			}
			dc := e.Esds.DecConfigDescriptor
			switch dc.ObjectType {
			case 0x40: // MPEG-4 audio
				t.FourCC = "mp4a"
				if dc.DecSpecificInfo == nil || len(dc.DecSpecificInfo.DecConfig) == 0 {
					return t, fmt.Errorf("AAC without AudioSpecificConfig")
				}
				t.Config = append([]byte(nil), dc.DecSpecificInfo.DecConfig...)
			case 0x69, 0x6B: // MPEG-2 / MPEG-1 audio (MP3)
				t.FourCC = ".mp3"
			default:
				return t, fmt.Errorf("mp4a object type 0x%02x", dc.ObjectType)
			}
		case ".mp3":
			t.FourCC = ".mp3"
		case "ac-3":
			t.FourCC = "ac-3"
		case "ec-3":
			t.FourCC = "ec-3"
		case "Opus":
			t.FourCC = "Opus"
			if e.Dops == nil {
				return t, fmt.Errorf("Opus without dOps")
			}
			t.Config = opusHead(e.Dops)
			t.SampleRate = 48000
		case "fLaC":
			t.FourCC = "fLaC"
			if e.DfLa == nil {
				return t, fmt.Errorf("fLaC without dfLa")
			}
			t.Config, err = flacHeader(e.DfLa)
		default:
			return t, fmt.Errorf("audio sample entry %q has no E-RTMP FourCC here", e.Type())
		}
	default:
		return t, fmt.Errorf("sample entry %q", entry.Type())
	}
	if err != nil {
		return t, err
	}
	t.Samples, err = loadSamples(raw, trak, kind)
	return t, err
}

// opusHead builds the Opus identification header (RFC 7845 section 5.1,
// multi-byte fields little-endian) from an ISO BMFF dOps box (whose fields
// are big-endian and whose version is 0).
func opusHead(d *mp4.DopsBox) []byte {
	b := []byte("OpusHead")
	b = append(b, 1, d.OutputChannelCount)
	b = binary.LittleEndian.AppendUint16(b, d.PreSkip)
	b = binary.LittleEndian.AppendUint32(b, d.InputSampleRate)
	b = binary.LittleEndian.AppendUint16(b, uint16(d.OutputGain))
	b = append(b, d.ChannelMappingFamily)
	if d.ChannelMappingFamily != 0 {
		b = append(b, d.StreamCount, d.CoupledCount)
		b = append(b, d.ChannelMapping...)
	}
	return b
}

// flacHeader builds E-RTMP's FLAC sequence start: "fLaC" then the
// STREAMINFO metadata block with its header (marked as the last block).
func flacHeader(d *mp4.DfLaBox) ([]byte, error) {
	for _, blk := range d.MetadataBlocks {
		if blk.BlockType != 0 { // STREAMINFO
			continue
		}
		if len(blk.BlockData) != 34 {
			return nil, fmt.Errorf("FLAC STREAMINFO of %d bytes, want 34", len(blk.BlockData))
		}
		b := []byte("fLaC")
		b = append(b, 0x80) // last-metadata-block flag, type 0
		b = appendUI24(b, 34)
		return append(b, blk.BlockData...), nil
	}
	return nil, fmt.Errorf("dfLa without STREAMINFO")
}

func loadSamples(raw []byte, trak *mp4.TrakBox, kind Kind) ([]Sample, error) {
	stbl := trak.Mdia.Minf.Stbl
	ts := trak.Mdia.Mdhd.Timescale
	if ts == 0 {
		return nil, fmt.Errorf("timescale 0")
	}
	if stbl.Stsz == nil || stbl.Stts == nil || stbl.Stsc == nil {
		return nil, fmt.Errorf("sample table without stsz, stts or stsc")
	}
	n := stbl.Stsz.GetNrSamples()
	if n == 0 {
		return nil, nil
	}
	chunks, err := stbl.Stsc.GetContainingChunks(1, n)
	if err != nil {
		return nil, fmt.Errorf("chunks: %w", err)
	}
	toDur := func(v int64) time.Duration {
		return time.Duration(v * int64(time.Second) / int64(ts))
	}
	out := make([]Sample, 0, n)
	var dts int64
	for _, c := range chunks {
		var off uint64
		switch {
		case stbl.Stco != nil:
			off, err = stbl.Stco.GetOffset(int(c.ChunkNr))
		case stbl.Co64 != nil:
			off, err = stbl.Co64.GetOffset(int(c.ChunkNr))
		default:
			err = fmt.Errorf("no stco or co64")
		}
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", c.ChunkNr, err)
		}
		for nr := c.StartSampleNr; nr < c.StartSampleNr+c.NrSamples && nr <= n; nr++ {
			size := uint64(stbl.Stsz.GetSampleSize(int(nr)))
			if off+size > uint64(len(raw)) {
				return nil, fmt.Errorf("sample %d lies outside the file", nr)
			}
			dur := int64(stbl.Stts.GetDur(nr))
			var cto int64
			if stbl.Ctts != nil {
				cto = int64(stbl.Ctts.GetCompositionTimeOffset(nr))
			}
			key := kind == Audio || stbl.Stss == nil || stbl.Stss.IsSyncSample(nr)
			out = append(out, Sample{
				Data: raw[off : off+size : off+size],
				DTS:  toDur(dts),
				Dur:  toDur(dts+dur) - toDur(dts),
				CTS:  toDur(dts+cto) - toDur(dts),
				Key:  key,
			})
			dts += dur
			off += size
		}
	}
	if uint32(len(out)) != n {
		return nil, fmt.Errorf("found %d of %d samples in the chunks", len(out), n)
	}
	return out, nil
}
