package segmenter

import (
	"context"
	"fmt"
	"time"

	"github.com/asticode/go-astits"
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

// tsMuxer wraps one astits.Muxer for the whole life of a Segmenter so that
// continuity counters and table versions run across segments.
type tsMuxer struct {
	w      segWriter
	m      *astits.Muxer
	pcrPID uint16

	lastPCR    time.Duration
	pcrWritten bool

	annexB   []byte // the video access unit being written, Annex-B
	audioBuf []byte // the audio frame being written, with its ADTS header

	// Reused per PES so that the steady state allocates nothing of ours.
	data astits.MuxerData
	pes  astits.PESData
	opt  astits.PESOptionalHeader
	af   astits.PacketAdaptationField
	pts  astits.ClockReference
	dts  astits.ClockReference
	pcr  astits.ClockReference
}

func newTSMuxer(tracks Tracks) (*tsMuxer, error) {
	t := &tsMuxer{}
	// Tables are written by astits before every PES on the PCR PID that has
	// RandomAccessIndicator set, i.e. at each segment start (and video
	// keyframe); the periodic retransmission is turned off.
	t.m = astits.NewMuxer(context.Background(), &t.w,
		astits.WithPMTPID(pmtPID),
		astits.MuxerOptTablesRetransmitPeriod(1<<30))
	if tracks&Video != 0 {
		if err := t.m.AddElementaryStream(astits.PMTElementaryStream{
			ElementaryPID: videoPID, StreamType: astits.StreamTypeH264Video,
		}); err != nil {
			return nil, err
		}
		t.pcrPID = videoPID
	}
	if tracks&Audio != 0 {
		if err := t.m.AddElementaryStream(astits.PMTElementaryStream{
			ElementaryPID: audioPID, StreamType: astits.StreamTypeAACAudio,
		}); err != nil {
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
		t.pes.Header.StreamID = 0xe0
	} else {
		t.pes.Header.StreamID = 0xc0
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
// PES, which is random access.
func (t *tsMuxer) startSegment(*avcConfig, *aacConfig) (Init, bool, error) {
	return Init{}, false, nil
}

func (t *tsMuxer) initVersion() int { return 0 }

// prepareVideo converts the AVCC access unit to Annex-B, with an AUD and,
// before an IDR, the parameter sets.
func (t *tsMuxer) prepareVideo(v *avcConfig, f Frame) error {
	var err error
	t.annexB, _, err = avccToAnnexB(t.annexB, f.Data, v.nalLengthSize, v.paramSetsAnnex)
	return err
}

func (t *tsMuxer) writeVideo(f Frame, o muxOpts) error {
	if err := t.writePES(videoPID, f.DTS, f.PTS, t.annexB, o.randomAccess, o.disc); err != nil {
		return fmt.Errorf("segmenter: muxing video: %w", err)
	}
	return nil
}

// writeAudio muxes a raw AAC frame behind an ADTS header.
func (t *tsMuxer) writeAudio(a *aacConfig, f Frame, o muxOpts) error {
	var err error
	t.audioBuf, err = a.appendADTS(t.audioBuf[:0], len(f.Data))
	if err != nil {
		return malformedError{err}
	}
	t.audioBuf = append(t.audioBuf, f.Data...)
	if err := t.writePES(audioPID, f.DTS, f.DTS, t.audioBuf, o.randomAccess, o.disc); err != nil {
		return fmt.Errorf("segmenter: muxing audio: %w", err)
	}
	return nil
}

// flush has nothing to do: every PES is written as it comes.
func (t *tsMuxer) flush(time.Duration, bool, time.Duration) error { return nil }
