package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// Metadata is what fount reads from the encoder's onMetaData.
type Metadata struct {
	Tracks                   segmenter.Tracks // supported tracks the encoder announced
	Width, Height, FrameRate float64          // as announced
	VideoBitrate             float64          // kbit/s as announced
	AudioBitrate             float64          // kbit/s as announced
	Encoder                  string           // the encoder's name, as announced

	// VideoCodec and AudioCodec are the announced codecs of track 0 as
	// Enhanced RTMP FourCCs ("avc1", "hvc1", "av01", "mp4a", "Opus"...);
	// legacy FLV ids are mapped (7 "avc1", 12 "hvc1", 10 "mp4a", 2 and 14
	// ".mp3"); zero when absent or a legacy id without a FourCC.
	VideoCodec, AudioCodec [4]byte
	// VideoTracks and AudioTracks describe the additional tracks (trackId
	// 1 and up) of Enhanced RTMP's videoTrackIdInfoMap/audioTrackIdInfoMap,
	// in trackId order; NumVideoTracks/NumAudioTracks of them are set.
	// Arrays, not slices, so that Metadata stays comparable.
	VideoTracks, AudioTracks       [MaxTrackInfo]TrackInfo
	NumVideoTracks, NumAudioTracks int
}

// MaxTrackInfo bounds the per-track entries of Metadata kept per kind;
// further tracks in the announcement are dropped.
const MaxTrackInfo = 8

// TrackInfo is one entry of videoTrackIdInfoMap or audioTrackIdInfoMap.
// Fields the announcement leaves out are zero.
type TrackInfo struct {
	ID         uint8
	Codec      [4]byte // FourCC (legacy ids mapped as in Metadata)
	Width      float64 // video
	Height     float64
	FrameRate  float64
	Bitrate    float64 // kbit/s (videodatarate / audiodatarate)
	SampleRate float64 // audio
	Channels   float64
	Name       string
	Language   string
}

// VideoTrackInfo returns the announced additional video tracks.
func (m *Metadata) VideoTrackInfo() []TrackInfo { return m.VideoTracks[:m.NumVideoTracks] }

// AudioTrackInfo returns the announced additional audio tracks.
func (m *Metadata) AudioTrackInfo() []TrackInfo { return m.AudioTracks[:m.NumAudioTracks] }

// parseMetadata reads the onMetaData ECMA array that follows
// "@setDataFrame", with fount's own AMF0 reader: go-amf0 fails on valid
// metadata (nested objects after other properties, as Enhanced RTMP's
// videoTrackIdInfoMap is, read as "unexpected EOF"; an object and a strict
// array in one ECMA array panic).
func parseMetadata(p []byte) (Metadata, error) {
	// Bound every declared length and the nesting by the payload first.
	if err := checkAMF0(p, 2); err != nil {
		return Metadata{}, fmt.Errorf("onMetaData: %w", err)
	}
	r := amf0Reader{b: p}
	name, err := r.string()
	if err != nil {
		return Metadata{}, fmt.Errorf("metadata name: %w", err)
	}
	if string(name) != "onMetaData" {
		return Metadata{}, fmt.Errorf("data frame %q is not onMetaData", name)
	}
	if isObj, err := r.object(); err != nil || !isObj {
		return Metadata{}, fmt.Errorf("onMetaData is not an object (%v)", err)
	}
	var md Metadata
	err = r.properties(func(k []byte) error {
		switch string(k) {
		case "width", "height", "framerate", "videodatarate", "audiodatarate":
			v, err := r.scalar()
			n := v.number()
			switch string(k) {
			case "width":
				md.Width = n
			case "height":
				md.Height = n
			case "framerate":
				md.FrameRate = n
			case "videodatarate":
				md.VideoBitrate = n
			default:
				md.AudioBitrate = n
			}
			return err
		case "encoder":
			v, err := r.scalar()
			if v.marker == amf0String || v.marker == amf0LongString {
				md.Encoder = string(v.str)
			}
			return err
		case "videocodecid":
			v, err := r.scalar()
			md.VideoCodec = metaFourCC(v, segmenter.Video)
			return err
		case "audiocodecid":
			v, err := r.scalar()
			md.AudioCodec = metaFourCC(v, segmenter.Audio)
			return err
		case "videoTrackIdInfoMap":
			n, err := r.trackInfoMap(segmenter.Video, &md.VideoTracks)
			md.NumVideoTracks = n
			return err
		case "audioTrackIdInfoMap":
			n, err := r.trackInfoMap(segmenter.Audio, &md.AudioTracks)
			md.NumAudioTracks = n
			return err
		}
		return r.skip()
	})
	if err != nil {
		return Metadata{}, fmt.Errorf("onMetaData: %w", err)
	}
	// The segmenter waits for the announced tracks' configurations.
	if codec.FromFourCC(md.VideoCodec).Video() {
		md.Tracks |= segmenter.Video
	}
	if codec.FromFourCC(md.AudioCodec).Audio() {
		md.Tracks |= segmenter.Audio
	}
	return md, nil
}

// amf0Scalar is a number, boolean or string value; marker says which (any
// other value is skipped and only its marker kept).
type amf0Scalar struct {
	marker byte
	num    float64
	str    []byte // aliases the message
}

// number is the value as a finite number, 0 if it is not one.
func (v amf0Scalar) number() float64 {
	if v.marker != amf0Number || math.IsNaN(v.num) || math.IsInf(v.num, 0) {
		return 0
	}
	return v.num
}

// scalar reads any value, keeping numbers, booleans and strings.
func (r *amf0Reader) scalar() (amf0Scalar, error) {
	if r.p >= len(r.b) {
		return amf0Scalar{}, errAMF0Truncated
	}
	v := amf0Scalar{marker: r.b[r.p]}
	switch v.marker {
	case amf0Number:
		if len(r.b)-r.p < 9 {
			return v, errAMF0Truncated
		}
		v.num = math.Float64frombits(binary.BigEndian.Uint64(r.b[r.p+1:]))
		r.p += 9
		return v, nil
	case amf0Boolean:
		if len(r.b)-r.p < 2 {
			return v, errAMF0Truncated
		}
		if r.b[r.p+1] != 0 {
			v.num = 1
		}
		r.p += 2
		return v, nil
	case amf0String:
		var err error
		v.str, err = r.string()
		return v, err
	case amf0LongString:
		if len(r.b)-r.p < 5 {
			return v, errAMF0Truncated
		}
		n := int(binary.BigEndian.Uint32(r.b[r.p+1:]))
		if n > len(r.b)-r.p-5 {
			return v, errAMF0Truncated
		}
		v.str = r.b[r.p+5 : r.p+5+n]
		r.p += 5 + n
		return v, nil
	}
	return v, r.skip()
}

// properties calls fn for each property of an object or ECMA array whose
// start object() has read; fn reads (or skips) the value.
func (r *amf0Reader) properties(fn func(k []byte) error) error {
	for {
		k, done, err := r.next()
		if err != nil || done {
			return err
		}
		if err := fn(k); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
}

// metaFourCC reads an onMetaData codec id: a legacy FLV id (mapped to its
// FourCC where it has one), a FourCC packed into a number (big-endian, as
// Enhanced RTMP sends it) or a FourCC string; zero otherwise.
func metaFourCC(v amf0Scalar, kind segmenter.Kind) (f [4]byte) {
	switch v.marker {
	case amf0Number:
		t := v.num
		switch {
		case kind == segmenter.Video && t == flvCodecAVC:
			return fourccAVC
		case kind == segmenter.Video && t == flvCodecHEVC:
			return fourccHEVC
		case kind == segmenter.Audio && t == flvSoundAAC:
			return fourccAAC
		case kind == segmenter.Audio && (t == flvSoundMP3 || t == flvSoundMP38k):
			return fourccMP3
		case t >= 1<<24 && t <= math.MaxUint32 && t == math.Trunc(t):
			binary.BigEndian.PutUint32(f[:], uint32(t))
			if isFourCC(f) {
				return f
			}
		}
	case amf0String, amf0LongString:
		if len(v.str) == 4 && isFourCC([4]byte(v.str)) {
			return [4]byte(v.str)
		}
	}
	return [4]byte{}
}

// isFourCC: four printable ASCII characters.
func isFourCC(f [4]byte) bool {
	for _, c := range f {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// trackInfoMap reads a videoTrackIdInfoMap or audioTrackIdInfoMap (an
// object keyed by trackId "1", "2"...) into out in trackId order and
// returns how many entries it kept. Entries that are not objects, keys
// that are not a trackId (0..255), repeated trackIds and entries beyond
// len(out) are dropped.
func (r *amf0Reader) trackInfoMap(kind segmenter.Kind, out *[MaxTrackInfo]TrackInfo) (int, error) {
	if isObj, err := r.object(); err != nil || !isObj {
		if errors.Is(err, errAMF0NotObject) {
			return 0, r.skip()
		}
		return 0, err
	}
	var all []TrackInfo
	seen := map[int]bool{}
	err := r.properties(func(k []byte) error {
		id, err := strconv.Atoi(string(k))
		if err != nil || id < 0 || id > 255 || seen[id] || r.p >= len(r.b) || r.b[r.p] != amf0Object && r.b[r.p] != amf0ECMAArray {
			return r.skip()
		}
		seen[id] = true
		ti := TrackInfo{ID: uint8(id)}
		r.object()
		err = r.properties(func(k []byte) error {
			v, err := r.scalar()
			switch string(k) {
			case "width":
				ti.Width = v.number()
			case "height":
				ti.Height = v.number()
			case "framerate":
				ti.FrameRate = v.number()
			case "videodatarate", "audiodatarate":
				if string(k) == "videodatarate" == (kind == segmenter.Video) {
					ti.Bitrate = v.number()
				}
			case "samplerate":
				ti.SampleRate = v.number()
			case "channels":
				ti.Channels = v.number()
			case "videocodecid", "audiocodecid":
				if string(k) == "videocodecid" == (kind == segmenter.Video) {
					ti.Codec = metaFourCC(v, kind)
				}
			case "name":
				ti.Name = string(v.str)
			case "language":
				ti.Language = string(v.str)
			}
			return err
		})
		all = append(all, ti)
		return err
	})
	if err != nil {
		return 0, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return copy(out[:], all), nil
}
