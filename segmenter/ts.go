package segmenter

import (
	"context"
	"fmt"
	"time"

	"github.com/asticode/go-astits"

	"github.com/fount-live/fount/segmenter/codec"
)

// PIDs used in every segment.
const (
	pmtPID   = 0x1000
	videoPID = 0x100
	audioPID = 0x101
)

// pcrInterval is the longest gap between two PCRs on the PCR PID.
const pcrInterval = 100 * time.Millisecond

// pcrDelay puts the PCR this far before the DTS of the PES that carries it,
// giving decoders a little buffering headroom.
const pcrDelay = 100 * time.Millisecond

const mask33 = 1<<33 - 1

// ts90k converts a stream-timeline time to a 33-bit 90 kHz timestamp.
func ts90k(d time.Duration) int64 {
	v := int64(d)/100000*9 + int64(d)%100000*9/100000
	return v & mask33
}

// tsStream is an elementary stream as the PMT declares it.
type tsStream struct {
	declared   bool
	streamType astits.StreamType
	streamID   uint8 // PES stream_id
	codec      codec.ID
}

// tsMuxer wraps one astits.Muxer for the whole life of a Segmenter so that
// continuity counters and table versions run across segments.
type tsMuxer struct {
	w      segWriter
	m      *astits.Muxer
	pcrPID uint16

	lastPCR    time.Duration
	pcrWritten bool

	video, audio tsStream

	annexB    []byte // the video access unit being written, Annex-B
	audioBuf  []byte // the audio frame being written, with its ADTS header
	paramsFor *codec.Video
	params    []byte // paramsFor's parameter sets, Annex-B

	// Reused per PES so that the steady state allocates nothing of ours.
	data astits.MuxerData
	pes  astits.PESData
	opt  astits.PESOptionalHeader
	af   astits.PacketAdaptationField
	pts  astits.ClockReference
	dts  astits.ClockReference
	pcr  astits.ClockReference
}

// tsStreamType returns the PMT stream type and PES stream_id of a codec
// in MPEG-TS (HLS: H.264 0x1B, HEVC 0x24, ADTS AAC 0x0F, MPEG-1/2 audio
// 0x03/0x04; AC-3 0x81 and E-AC-3 0x87 as ATSC A/52 defines them, in
// private_stream_1 PES).
func tsStreamType(id codec.ID, a *codec.Audio) (astits.StreamType, uint8, bool) {
	switch id {
	case codec.AVC:
		return astits.StreamTypeH264Video, 0xe0, true
	case codec.HEVC:
		return astits.StreamTypeH265Video, 0xe0, true
	case codec.AAC:
		return astits.StreamTypeAACAudio, 0xc0, true
	case codec.MP3:
		if a != nil && a.ObjectTypeIndication == 0x69 { // MPEG-2 (half rates)
			return astits.StreamTypeMPEG2Audio, 0xc0, true
		}
		return astits.StreamTypeMPEG1Audio, 0xc0, true
	case codec.AC3:
		return astits.StreamTypeAC3Audio, 0xbd, true
	case codec.EAC3:
		return astits.StreamTypeEAC3Audio, 0xbd, true
	}
	return 0, 0, false
}

func newTSMuxer(tracks Tracks, v *codec.Video, a *codec.Audio) (*tsMuxer, error) {
	t := &tsMuxer{}
	// Tables are written by astits before every PES on the PCR PID that has
	// RandomAccessIndicator set, i.e. at each segment start (and video
	// keyframe); the periodic retransmission is turned off.
	t.m = astits.NewMuxer(context.Background(), &t.w,
		astits.WithPMTPID(pmtPID),
		astits.MuxerOptTablesRetransmitPeriod(1<<30))
	if tracks&Video != 0 {
		if err := t.setStream(videoPID, v.Codec, nil); err != nil {
			return nil, err
		}
		t.pcrPID = videoPID
	}
	if tracks&Audio != 0 {
		if err := t.setStream(audioPID, a.Codec, a); err != nil {
			return nil, err
		}
		if t.pcrPID == 0 {
			t.pcrPID = audioPID
		}
	}
	t.m.SetPCRPID(t.pcrPID)
	t.data.PES = &t.pes
	t.pes.Header = &astits.PESHeader{OptionalHeader: &t.opt}
	return t, nil
}

// setStream declares (or, after a codec change, redeclares) the elementary
// stream on pid in the PMT.
func (t *tsMuxer) setStream(pid uint16, id codec.ID, a *codec.Audio) error {
	st, sid, ok := tsStreamType(id, a)
	if !ok {
		return fmt.Errorf("%w: %v in %v", ErrNotCarried, id, FormatTS)
	}
	es := &t.video
	if pid == audioPID {
		es = &t.audio
	}
	if es.declared {
		if es.streamType == st {
			return nil
		}
		if err := t.m.RemoveElementaryStream(pid); err != nil {
			return err
		}
	}
	if err := t.m.AddElementaryStream(astits.PMTElementaryStream{ElementaryPID: pid, StreamType: st}); err != nil {
		return err
	}
	*es = tsStream{declared: true, streamType: st, streamID: sid, codec: id}
	return nil
}

// writePES muxes one access unit. randomAccess marks a keyframe or a segment
// start. discontinuity (a timestamp jump, or the start of a segment flagged
// Discontinuity) sets discontinuity_indicator and forces a PCR; it is only
// signalled on the PCR PID, where it means a new time base.
func (t *tsMuxer) writePES(pid uint16, dts, pts time.Duration, payload []byte, randomAccess, discontinuity bool) error {
	t.pts.Base = ts90k(pts)
	t.dts.Base = ts90k(dts)
	t.opt = astits.PESOptionalHeader{
		MarkerBits:             2,
		DataAlignmentIndicator: true,
		PTS:                    &t.pts,
	}
	if pid == videoPID && t.dts.Base != t.pts.Base {
		t.opt.PTSDTSIndicator = astits.PTSDTSIndicatorBothPresent
		t.opt.DTS = &t.dts
	} else {
		t.opt.PTSDTSIndicator = astits.PTSDTSIndicatorOnlyPTS
	}
	if pid == videoPID {
		t.pes.Header.StreamID = t.video.streamID
	} else {
		t.pes.Header.StreamID = t.audio.streamID
	}
	t.pes.Data = payload
	t.data.PID = pid

	withPCR := false
	if pid == t.pcrPID {
		withPCR = randomAccess || discontinuity || !t.pcrWritten || dts-t.lastPCR >= pcrInterval || dts < t.lastPCR
	} else {
		discontinuity = false
	}
	t.data.AdaptationField = nil
	if withPCR || randomAccess || discontinuity {
		t.af = astits.PacketAdaptationField{
			RandomAccessIndicator:  randomAccess,
			DiscontinuityIndicator: discontinuity,
		}
		if withPCR {
			p := dts - pcrDelay
			if p < 0 {
				p = 0
			}
			t.pcr.Base = ts90k(p)
			t.af.HasPCR = true
			t.af.PCR = &t.pcr
			t.lastPCR = dts
			t.pcrWritten = true
		}
		t.data.AdaptationField = &t.af
	}
	_, err := t.m.WriteData(&t.data)
	return err
}

func (t *tsMuxer) out() *segWriter { return &t.w }

// startSegment writes nothing: PAT and PMT go before the segment's first
// PES, which is random access. A codec that changed since the last segment
// is redeclared in the PMT here.
func (t *tsMuxer) startSegment(v *codec.Video, a *codec.Audio) (Init, bool, error) {
	if t.video.declared && v != nil {
		if err := t.setStream(videoPID, v.Codec, nil); err != nil {
			return Init{}, false, err
		}
	}
	if t.audio.declared && a != nil {
		if err := t.setStream(audioPID, a.Codec, a); err != nil {
			return Init{}, false, err
		}
	}
	return Init{}, false, nil
}

func (t *tsMuxer) initVersion() int { return 0 }

// prepareVideo converts the length-prefixed access unit to Annex-B, with an
// AUD and, before a keyframe, the parameter sets.
func (t *tsMuxer) prepareVideo(v *codec.Video, f Frame) error {
	if v != t.paramsFor {
		t.paramsFor, t.params = v, paramSetsAnnexB(v)
	}
	var err error
	t.annexB, _, err = toAnnexB(t.annexB, f.Data, v.NALULengthSize, t.params, v.Codec == codec.HEVC)
	return err
}

func (t *tsMuxer) writeVideo(f Frame, o muxOpts) error {
	if err := t.writePES(videoPID, f.DTS, f.PTS, t.annexB, o.randomAccess, o.disc); err != nil {
		return fmt.Errorf("segmenter: muxing video: %w", err)
	}
	return nil
}

// writeAudio muxes one audio frame: AAC behind an ADTS header; AC-3,
// E-AC-3 (sync frames) and MP3 as they are.
func (t *tsMuxer) writeAudio(a *codec.Audio, f Frame, o muxOpts) error {
	payload := f.Data
	if a.Codec == codec.AAC {
		var err error
		t.audioBuf, err = appendADTS(t.audioBuf[:0], a, len(f.Data))
		if err != nil {
			return malformedError{err}
		}
		t.audioBuf = append(t.audioBuf, f.Data...)
		payload = t.audioBuf
	}
	if err := t.writePES(audioPID, f.DTS, f.DTS, payload, o.randomAccess, o.disc); err != nil {
		return fmt.Errorf("segmenter: muxing audio: %w", err)
	}
	return nil
}

// flush has nothing to do: every PES is written as it comes.
func (t *tsMuxer) flush(time.Duration, bool, time.Duration) error { return nil }
