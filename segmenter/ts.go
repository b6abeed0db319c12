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
	cc         uint8 // continuity_counter of the next packet
}

// tsMuxer lives as long as its Segmenter's track set, so that continuity
// counters and table versions run across segments. An astits.Muxer makes
// its PAT and PMT; fount writes the PES packets.
type tsMuxer struct {
	w      segWriter
	m      *astits.Muxer
	pcrPID uint16

	lastPCR       time.Duration
	pcrWritten    bool
	tablesWritten bool
	tw            segWriter // astits's output: PAT and PMT
	tables        []byte    // PAT and PMT packets as astits last made them
	tablesCC      []uint8   // continuity counter of each of those packets' PID, next
	hdr           [19]byte  // PES header scratch

	video, audio tsStream
	id3          tsStream // timed ID3 (ts_id3.go), declared at the first tag

	annexB    []byte // the video access unit being written, Annex-B
	audioBuf  []byte // the audio frame being written, with its ADTS header
	paramsFor *codec.Video
	params    []byte // paramsFor's parameter sets, Annex-B
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

// tsRegistration is the registration descriptor's format_identifier that
// names Dolby audio in the PMT ("AC-3", "EAC3"), which some players want
// besides the stream type; 0 for other codecs.
func tsRegistration(id codec.ID) uint32 {
	switch id {
	case codec.AC3:
		return 'A'<<24 | 'C'<<16 | '-'<<8 | '3'
	case codec.EAC3:
		return 'E'<<24 | 'A'<<16 | 'C'<<8 | '3'
	}
	return 0
}

func newTSMuxer(tracks Tracks, v *codec.Video, a *codec.Audio) (*tsMuxer, error) {
	t := &tsMuxer{}
	// Tables go before every random access PES on the PCR PID, i.e. at
	// each segment start (and video keyframe), written by writePES; astits
	// only makes them.
	t.m = astits.NewMuxer(context.Background(), &t.tw,
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
	es2 := astits.PMTElementaryStream{ElementaryPID: pid, StreamType: st}
	if reg := tsRegistration(id); reg != 0 {
		es2.ElementaryStreamDescriptors = []*astits.Descriptor{{
			Tag: astits.DescriptorTagRegistration, Length: 4,
			Registration: &astits.DescriptorRegistration{FormatIdentifier: reg},
		}}
	}
	if err := t.m.AddElementaryStream(es2); err != nil {
		return err
	}
	t.tables = nil // made again, with the new PMT
	*es = tsStream{declared: true, streamType: st, streamID: sid, codec: id, cc: es.cc}
	return nil
}

// writePES muxes one access unit. randomAccess marks a keyframe or a segment
// start. discontinuity (a timestamp jump, or the start of a segment flagged
// Discontinuity) sets discontinuity_indicator and forces a PCR; it is only
// signalled on the PCR PID, where it means a new time base.
//
// PAT and PMT come from astits (before the first PES and every random
// access PES on the PCR PID); the PES packets are written here, straight
// into the segment buffer: astits allocates an adaptation field for the
// stuffing of nearly every PES, and this path must not allocate per frame.
func (t *tsMuxer) writePES(pid uint16, dts, pts time.Duration, payload []byte, randomAccess, discontinuity bool) error {
	es := &t.video
	if pid == audioPID {
		es = &t.audio
	}
	withPCR := false
	if pid == t.pcrPID {
		withPCR = randomAccess || discontinuity || !t.pcrWritten || dts-t.lastPCR >= pcrInterval || dts < t.lastPCR
	} else {
		discontinuity = false
	}
	if !t.tablesWritten || (randomAccess && pid == t.pcrPID) {
		if err := t.writeTables(); err != nil {
			return err
		}
		t.tablesWritten = true
	}
	var pcr int64
	if withPCR {
		p := dts - pcrDelay
		if p < 0 {
			p = 0
		}
		pcr = ts90k(p)
		t.lastPCR = dts
		t.pcrWritten = true
	}
	hdr := t.pesHeader(es.streamID, pid == videoPID, ts90k(dts), ts90k(pts), len(payload))
	t.w.buf = appendPESPackets(t.w.buf, pid, &es.cc, hdr, payload, randomAccess, discontinuity, withPCR, pcr)
	return nil
}

// writeTables appends PAT and PMT. astits makes them (again after a change
// of the PMT); later copies are its bytes with the continuity counters
// advanced, as astits allocates each time it writes tables.
func (t *tsMuxer) writeTables() error {
	if t.tables == nil {
		t.tw.buf = t.tw.buf[:0]
		if _, err := t.m.WriteTables(); err != nil {
			return err
		}
		if len(t.tw.buf)%188 != 0 {
			return fmt.Errorf("tables of %d bytes", len(t.tw.buf))
		}
		t.tables = append([]byte(nil), t.tw.buf...)
		if t.id3.declared {
			if err := addMetadataPointer(t.tables); err != nil {
				return err
			}
		}
		if len(t.tablesCC) != len(t.tables)/188 { // else the counters run on
			t.tablesCC = t.tablesCC[:0]
			for p := 0; p < len(t.tables); p += 188 {
				t.tablesCC = append(t.tablesCC, t.tables[p+3]&0xf)
			}
		}
	}
	start := len(t.w.buf)
	t.w.buf = append(t.w.buf, t.tables...)
	for i := range t.tablesCC {
		b := t.w.buf[start+i*188:]
		b[3] = b[3]&0xf0 | t.tablesCC[i]
		t.tablesCC[i] = (t.tablesCC[i] + 1) & 0xf
	}
	return nil
}

// pesHeader renders a PES header (with PTS, and DTS when it differs, for
// video) into t.hdr.
func (t *tsMuxer) pesHeader(streamID uint8, video bool, dts, pts int64, n int) []byte {
	optLen := 5
	flags := byte(0x80) // PTS only
	if video && dts != pts {
		optLen, flags = 10, 0xc0
	}
	length := 3 + optLen + n // after the length field
	if length > 0xffff {
		length = 0 // unbounded: video only
	}
	h := append(t.hdr[:0], 0, 0, 1, streamID, byte(length>>8), byte(length),
		0x84, // marker '10', data_alignment_indicator
		flags, byte(optLen))
	h = appendTimestamp(h, flags>>4, pts)
	if optLen == 10 {
		h = appendTimestamp(h, 1, dts)
	}
	return h
}

// appendTimestamp appends a 33-bit PTS/DTS with its 4-bit prefix and
// marker bits (ISO/IEC 13818-1 2.4.3.7).
func appendTimestamp(b []byte, prefix byte, v int64) []byte {
	return append(b,
		prefix<<4|byte(v>>29)&0x0e|1,
		byte(v>>22),
		byte(v>>14)&0xfe|1,
		byte(v>>7),
		byte(v<<1)&0xfe|1)
}

// appendPESPackets appends the 188-byte TS packets of one PES (header hdr,
// then payload) on pid. The first packet carries the adaptation field with
// random_access_indicator, discontinuity_indicator and PCR when asked; the
// last one is filled up with adaptation field stuffing.
func appendPESPackets(b []byte, pid uint16, cc *uint8, hdr, payload []byte, ra, disc, withPCR bool, pcr int64) []byte {
	first := true
	for first || len(payload) > 0 {
		// Adaptation field flags of this packet (the first only).
		afFlags, afBody := byte(0), 0
		if first {
			if disc {
				afFlags |= 0x80
			}
			if ra {
				afFlags |= 0x40
			}
			if withPCR {
				afFlags |= 0x10
				afBody = 6
			}
		}
		hasFlags := afFlags != 0
		afLen := 0 // adaptation field bytes, length byte included
		if hasFlags {
			afLen = 2 + afBody
		}
		n := len(payload)
		if first {
			n += len(hdr)
		}
		stuff := 0
		if avail := tsPayload - afLen; n < avail {
			stuff = avail - n
		}
		ctrl := byte(0x10) // payload only
		if afLen > 0 || stuff > 0 {
			ctrl = 0x30
		}
		pusi := byte(0)
		if first {
			pusi = 0x40
		}
		b = append(b, 0x47, pusi|byte(pid>>8)&0x1f, byte(pid), ctrl|*cc&0xf)
		*cc = (*cc + 1) & 0xf
		switch {
		case afLen > 0:
			b = append(b, byte(afLen-1+stuff), afFlags)
			if withPCR && first {
				b = append(b, byte(pcr>>25), byte(pcr>>17), byte(pcr>>9), byte(pcr>>1), byte(pcr&1)<<7|0x7e, 0)
			}
			b = appendStuffing(b, stuff)
			afLen += stuff
		case stuff == 1:
			b = append(b, 0) // adaptation_field_length 0: one byte of stuffing
			afLen = 1
		case stuff > 1:
			b = append(b, byte(stuff-1), 0)
			b = appendStuffing(b, stuff-2)
			afLen = stuff
		}
		room := tsPayload - afLen
		if first {
			b = append(b, hdr...)
			room -= len(hdr)
			first = false
		}
		b = append(b, payload[:room]...)
		payload = payload[room:]
	}
	return b
}

// tsPayload is a TS packet's bytes after its 4-byte header.
const tsPayload = 184

func appendStuffing(b []byte, n int) []byte {
	for ; n > 0; n-- {
		b = append(b, 0xff)
	}
	return b
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
	start := len(t.w.buf)
	if err := t.writePES(videoPID, f.DTS, f.PTS, t.annexB, o.randomAccess, o.disc); err != nil {
		return fmt.Errorf("segmenter: muxing video: %w", err)
	}
	if f.Key {
		// A keyframe is random access on the PCR PID: writePES put PAT and
		// PMT right before its PES, so the range decodes on its own.
		t.w.keys = append(t.w.keys, byteRange{start, len(t.w.buf)})
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
