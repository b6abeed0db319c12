package segmenter

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/fount-live/fount/segmenter/codec"
)

// fMP4/CMAF output. One fragment (moof+mdat, one traf per track that has
// samples) per part, or per segment without parts, except that every video
// keyframe is a fragment of its own (video only), so that an I-frame
// playlist can point at it (Segment.IFrames): a part or segment that holds
// a keyframe has the fragments before it, the keyframe's, and the rest
// after it. The moof boxes are kept for the life of the muxer and refilled
// for each fragment, so that the steady state allocates nothing per
// fragment.

const (
	videoTimescale = 90000
	// Sample flags (ISO/IEC 14496-12 8.8.3.1).
	flagsSync    = mp4.SyncSampleFlags                           // depends_on=2 (no other sample)
	flagsNonSync = mp4.NonSyncSampleFlags | mp4.SampleDependsOn1 // depends_on=1, non-sync
)

// toTicks converts a stream-timeline time to ticks of scale per second,
// without overflow for any time.Duration.
func toTicks(d time.Duration, scale int64) int64 {
	const ns = int64(time.Second)
	return int64(d)/ns*scale + int64(d)%ns*scale/ns
}

// fTrack is the state of one track of the fMP4 muxer.
type fTrack struct {
	scale int64
	traf  mp4.TrafBox
	tfhd  mp4.TfhdBox
	tfdt  mp4.TfdtBox
	trun  mp4.TrunBox

	samples []mp4.Sample // current fragment; reused
	data    []byte       // current fragment's sample bytes; reused
	first   int64        // decode time (ticks, with offset) of samples[0]
	last    int64        // decode time of the newest sample
	inSeg   bool         // the track has had a sample in the current segment
	offset  int64        // added to DTS ticks after a timestamp jump inside a segment
	delta   int64        // last normal sample duration in ticks; 0 = none yet
	exact   int64        // the newest sample's own duration in ticks (audio); 0 = unknown
}

func newFTrack(id uint32, scale int64) *fTrack {
	t := &fTrack{scale: scale}
	t.tfhd = *mp4.CreateTfhd(id)
	t.trun = *mp4.CreateTrun(0)
	t.trun.Flags = mp4.TrunDataOffsetPresentFlag | mp4.TrunSampleDurationPresentFlag |
		mp4.TrunSampleSizePresentFlag | mp4.TrunSampleFlagsPresentFlag |
		mp4.TrunSampleCompositionTimeOffsetPresentFlag
	t.trun.Version = 1 // signed composition time offsets
	_ = t.traf.AddChild(&t.tfhd)
	_ = t.traf.AddChild(&t.tfdt)
	_ = t.traf.AddChild(&t.trun)
	return t
}

// add appends one sample. dts/pts are stream-timeline times; jumped tells
// that dts jumped from the track's previous frame (the sample is then placed
// right after the previous one, with an estimated duration, for the rest of
// the segment). est is the fallback duration estimate in ticks. exact is the
// sample's own duration in ticks when the codec tells it (audio), else 0.
// A sample lasts until the next one's DTS, so that decode times are the
// stream's timestamps (and a gap in the audio stays a gap); the newest
// sample of a fragment, whose successor is not known yet, lasts exact (or
// else the last delta, or est).
func (t *fTrack) add(dts, pts time.Duration, flags uint32, data []byte, jumped bool, est, exact int64) {
	d := toTicks(dts, t.scale)
	cto := toTicks(pts, t.scale) - d
	if t.inSeg && jumped {
		step := t.delta
		if step <= 0 {
			step = est
		}
		t.offset = t.last + step - d
	}
	d += t.offset
	if n := len(t.samples); n > 0 {
		dur := d - t.last
		if dur < 0 {
			dur = 0
		}
		t.samples[n-1].Dur = uint32(dur)
		if dur > 0 {
			t.delta = dur
		}
	} else {
		t.first = d
		if t.inSeg && d > t.last && d-t.last < 10*t.scale {
			// Duration of the previous fragment's last sample was
			// estimated; the real delta is still the best next estimate.
			t.delta = d - t.last
		}
	}
	t.inSeg = true
	t.last = d
	t.exact = exact
	t.samples = append(t.samples, mp4.Sample{Flags: flags, Size: uint32(len(data)), CompositionTimeOffset: int32(cto)})
	t.data = append(t.data, data...)
}

// finishLast sets the newest sample's duration: to next (ticks of the
// track's next DTS) when known, else to the estimate.
func (t *fTrack) finishLast(next int64, known bool, est int64) {
	n := len(t.samples)
	if n == 0 {
		return
	}
	if t.exact > 0 {
		t.samples[n-1].Dur = uint32(t.exact)
		return
	}
	if known {
		if d := next + t.offset - t.last; d > 0 && d < 10*t.scale {
			t.samples[n-1].Dur = uint32(d)
			return
		}
	}
	if t.delta > 0 {
		est = t.delta
	}
	t.samples[n-1].Dur = uint32(est)
}

// fmp4Muxer writes fMP4 fragments into w.
type fmp4Muxer struct {
	w      segWriter
	v, a   *fTrack // nil when the stream lacks the track
	seq    uint32
	moof   mp4.MoofBox
	mfhd   mp4.MfhdBox
	styp   []byte
	kids   [3]mp4.Box
	trafs  [2]*mp4.TrafBox
	nvbuf  []byte // scratch for NALU length normalisation
	sw     bits.FixedSliceWriter
	vdata  []byte // the video access unit being written: AVCC with 4-byte lengths
	initV  *codec.Video
	initA  *codec.Audio
	initOK bool
	initN  int // version of the current Init
	// keyAlone: the video track's only pending sample is a keyframe, to be
	// written alone once its duration is known (the next video frame) or
	// at the flush; audio added meanwhile waits for the next fragment.
	keyAlone bool
	emsg     []byte // emsg boxes for the next fragment (fmp4_emsg.go)
	emsgID   uint32
}

func newFMP4Muxer(tracks Tracks) *fmp4Muxer {
	m := &fmp4Muxer{}
	id := uint32(1)
	if tracks&Video != 0 {
		m.v = newFTrack(id, videoTimescale)
		id++
	}
	if tracks&Audio != 0 {
		m.a = newFTrack(id, 0) // scale set with the init
	}
	var b bytes.Buffer
	_ = mp4.NewStyp("msdh", 0, []string{"msdh", "iso6", "cmfc"}).Encode(&b)
	m.styp = b.Bytes()
	return m
}

// needInit reports whether the codec configs differ from the current Init.
func (m *fmp4Muxer) needInit(v *codec.Video, a *codec.Audio) bool {
	if !m.initOK {
		return true
	}
	return (m.v != nil && v != m.initV) || (m.a != nil && a != m.initA)
}

// makeInit builds the next Init for the given configs.
func (m *fmp4Muxer) makeInit(v *codec.Video, a *codec.Audio) (Init, error) {
	var vc *codec.Video
	var ac *codec.Audio
	if m.v != nil {
		vc = v
	}
	if m.a != nil {
		ac = a
	}
	data, err := buildInit(vc, ac)
	if err != nil {
		return Init{}, err
	}
	if m.initOK {
		m.initN++
	}
	m.initV, m.initA, m.initOK = v, a, true
	if ac != nil {
		m.a.scale = int64(ac.SampleRate)
	}
	return Init{Data: data, Version: m.initN}, nil
}

func (m *fmp4Muxer) out() *segWriter { return &m.w }

func (m *fmp4Muxer) initVersion() int { return m.initN }

// startSegment resets per-segment state and writes the styp, after making
// a new Init if the configs changed. The styp is written even if the Init
// fails, as the segment goes on.
func (m *fmp4Muxer) startSegment(v *codec.Video, a *codec.Audio) (in Init, newInit bool, err error) {
	if m.needInit(v, a) {
		in, err = m.makeInit(v, a)
		newInit = err == nil
	}
	for _, t := range []*fTrack{m.v, m.a} {
		if t != nil {
			t.inSeg = false
			t.offset = 0
		}
	}
	m.w.buf = append(m.w.buf, m.styp...)
	return in, newInit, err
}

// prepareVideo validates an H.264 or HEVC access unit and rewrites it with
// 4-byte NALU lengths when the stream uses shorter ones (the sample entry
// declares 4). AV1 samples are temporal units without the temporal
// delimiter; VP9 frames go in as they are.
func (m *fmp4Muxer) prepareVideo(v *codec.Video, f Frame) error {
	switch v.Codec {
	case codec.AV1:
		m.vdata = stripTemporalDelimiter(f.Data)
		return nil
	case codec.VP9:
		m.vdata = f.Data
		return nil
	}
	var err error
	m.vdata, err = normalizeNALUs(m.nvbuf[:0], f.Data, v.NALULengthSize)
	if v.NALULengthSize != 4 && err == nil {
		m.nvbuf = m.vdata
	}
	return err
}

// writeVideo adds the access unit prepareVideo normalised to the fragment.
// A keyframe ends the fragment before it and starts its own; the frame
// after it ends the keyframe's fragment (see keyAlone).
func (m *fmp4Muxer) writeVideo(f Frame, o muxOpts) error {
	var err error
	switch {
	case f.Key:
		err = m.flush(f.DTS, !o.jumped, o.est)
	case m.keyAlone:
		err = m.writeKeyFragment(f.DTS, !o.jumped, o.est)
	}
	if err != nil {
		return err
	}
	flags := uint32(flagsNonSync)
	if f.Key {
		flags = flagsSync
	}
	m.v.add(f.DTS, f.PTS, flags, m.vdata, o.jumped, toTicks(o.est, videoTimescale), 0)
	m.keyAlone = f.Key
	return nil
}

// writeAudio adds one audio frame, o.samples long (the track's timescale is
// the sample rate).
func (m *fmp4Muxer) writeAudio(_ *codec.Audio, f Frame, o muxOpts) error {
	n := int64(o.samples)
	m.a.add(f.DTS, f.DTS, flagsSync, f.Data, o.jumped, n, n)
	return nil
}

// flush writes the pending samples: a pending keyframe as its own
// fragment, then the rest as one moof+mdat fragment. nextVideo is the DTS
// of the next video frame when known (a segment cut, a keyframe); otherwise
// the newest sample of each track gets an estimated duration when the track
// has no measured delta yet: vEst for video; audio samples know their own
// duration.
func (m *fmp4Muxer) flush(nextVideo time.Duration, known bool, vEst time.Duration) error {
	if err := m.writeKeyFragment(nextVideo, known, vEst); err != nil {
		return err
	}
	return m.writeFragment(m.v, m.a, nextVideo, known, vEst)
}

// writeKeyFragment writes the pending keyframe (keyAlone) as a fragment of
// its own and notes its range for Segment.IFrames.
func (m *fmp4Muxer) writeKeyFragment(nextVideo time.Duration, known bool, vEst time.Duration) error {
	if !m.keyAlone {
		return nil
	}
	m.keyAlone = false
	start := len(m.w.buf)
	if err := m.writeFragment(m.v, nil, nextVideo, known, vEst); err != nil {
		return err
	}
	m.w.keys = append(m.w.keys, byteRange{start, len(m.w.buf)})
	return nil
}

// writeFragment writes the pending samples of v and a (either may be nil)
// as one moof+mdat fragment; see flush.
func (m *fmp4Muxer) writeFragment(v, a *fTrack, nextVideo time.Duration, known bool, vEst time.Duration) error {
	if (v == nil || len(v.samples) == 0) && (a == nil || len(a.samples) == 0) {
		return nil
	}
	if len(m.emsg) > 0 {
		// Timed metadata goes before the moof of its fragment.
		m.w.buf = append(m.w.buf, m.emsg...)
		m.emsg = m.emsg[:0]
	}
	m.seq++
	m.mfhd.SequenceNumber = m.seq
	kids := m.kids[:0]
	trafs := m.trafs[:0]
	kids = append(kids, &m.mfhd)
	dataLen := 0
	for _, t := range [2]*fTrack{v, a} {
		if t == nil || len(t.samples) == 0 {
			continue
		}
		if t == m.v {
			t.finishLast(toTicks(nextVideo, t.scale), known, toTicks(vEst, videoTimescale))
		} else {
			t.finishLast(0, false, 0)
		}
		first := t.first
		if first < 0 {
			first = 0 // fMP4 decode times are unsigned
		}
		t.tfdt.SetBaseMediaDecodeTime(uint64(first))
		t.tfdt.Version = 1
		t.trun.Samples = t.samples
		kids = append(kids, &t.traf)
		trafs = append(trafs, &t.traf)
		dataLen += len(t.data)
	}
	m.moof = mp4.MoofBox{Mfhd: &m.mfhd, Traf: trafs[0], Trafs: trafs, Children: kids}
	moofSize := int(m.moof.Size())
	mdatHdr := 8
	if dataLen+8 > 1<<32-1 {
		return errors.New("segmenter: fragment too large")
	}
	off := moofSize + mdatHdr
	for _, tr := range trafs {
		tr.Trun.DataOffset = int32(off)
		off += int(tr.Trun.SizeOfData())
	}
	// Growing here reallocates the segment buffer: parts already handed
	// over keep pointing at the old array (same bytes); see Part.
	buf := slices.Grow(m.w.buf, moofSize+mdatHdr+dataLen)
	start := len(buf)
	// A value copy of the writer (the constructor is inlined, so nothing
	// escapes): one writer for the muxer's life, no allocation per fragment.
	m.sw = *bits.NewFixedSliceWriterFromSlice(buf[start : start+moofSize])
	sw := &m.sw
	if err := m.moof.EncodeSW(sw); err != nil {
		return fmt.Errorf("segmenter: encoding moof: %w", err)
	}
	if err := sw.AccError(); err != nil {
		return fmt.Errorf("segmenter: encoding moof: %w", err)
	}
	buf = buf[:start+moofSize]
	n := uint32(dataLen + mdatHdr)
	buf = append(buf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 'm', 'd', 'a', 't')
	for _, t := range [2]*fTrack{v, a} {
		if t == nil || len(t.samples) == 0 {
			continue
		}
		buf = append(buf, t.data...)
		t.samples = t.samples[:0]
		t.data = t.data[:0]
	}
	m.w.buf = buf
	return nil
}
