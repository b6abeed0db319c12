package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Comcast/scte35-go/pkg/scte35"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
)

// Cues (docs/markers.md): SCTE-35 ad breaks and HLS interstitials, from
// the API or from the encoder's onCuePoint messages. A cue is due at a
// time on the stream's timeline; every segmenter of the stream (one per
// rendition) is asked to cut at the first keyframe at or after it, and
// every rendition's playlist marks the segment that begins there.

// cueSources and cueKinds label fount_cues_total.
var (
	cueSources = [...]string{"api", "rtmp"}
	cueKinds   = [...]string{"out", "in", "cmd", "interstitial"}
)

// cueCounts counts the cues taken, by kind and source.
type cueCounts [len(cueKinds)][len(cueSources)]atomic.Uint64

func (c *cueCounts) add(k playlist.CueKind, source string) {
	for i, s := range cueSources {
		if s == source && k >= playlist.CueOut && int(k) <= len(cueKinds) {
			c[k-1][i].Add(1)
		}
	}
}

var descCues = prometheus.NewDesc("fount_cues_total", "Cues taken for streams' playlists, by type (out: an ad break starts, in: it ends, cmd: another SCTE-35 command, interstitial) and source (api, rtmp: the encoder's onCuePoint).", []string{"type", "source"}, nil)

type cueCollector struct{ c *cueCounts }

func (c cueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descCues }
func (c cueCollector) Collect(ch chan<- prometheus.Metric) {
	for k := range cueKinds {
		for s := range cueSources {
			ch <- prometheus.MustNewConstMetric(descCues, prometheus.CounterValue, float64(c.c[k][s].Load()), cueKinds[k], cueSources[s])
		}
	}
}

// errNoFrames: a cue "now" on a stream whose publisher has sent nothing.
var errNoFrames = errors.New("the stream has no publisher sending frames: a cue needs one to cut at")

// sessionsOf returns the sessions feeding the stream at path: its own, or
// its renditions'.
func (p *publisher) sessionsOf(st *playlist.Stream) []*session {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*session
	if rs := st.Renditions(); rs != nil {
		for _, r := range rs {
			if s := p.sessions[r.Path()]; s != nil {
				out = append(out, s)
			}
		}
		return out
	}
	if s := p.sessions[st.Path()]; s != nil {
		out = append(out, s)
	}
	return out
}

// nowPTS is just after the latest frame any of the stream's publishers
// sent: a cue due then begins the next segment.
func (p *publisher) nowPTS(st *playlist.Stream) (time.Duration, bool) {
	var t time.Duration
	ok := false
	for _, s := range p.sessionsOf(st) {
		if !s.haveFrame.Load() {
			continue
		}
		if v := time.Duration(s.lastPTS.Load()); !ok || v > t {
			t, ok = v, true
		}
	}
	return t + time.Nanosecond, ok
}

// addCue queues a cue on the stream and asks its segmenters to cut at it.
// It logs the cue, once, and counts it.
func (p *publisher) addCue(st *playlist.Stream, c playlist.Cue) error {
	if err := st.AddCue(c); err != nil {
		return err
	}
	for _, s := range p.sessionsOf(st) {
		if seg := s.seg.Load(); seg != nil {
			seg.CutAt(c.At)
		}
	}
	p.cues.add(c.Kind, c.Source)
	args := []any{"stream", st.Path(), "id", c.ID, "type", c.Kind.String(), "source", c.Source, "due_pts", c.At}
	if c.Duration > 0 {
		args = append(args, "duration", c.Duration)
	}
	p.log.Info("cue", args...)
	return nil
}

// nextEventID numbers the splice events fount makes itself: seeded from
// the clock, so that a restarted process does not reuse a listed ID.
func (p *publisher) nextEventID() uint32 {
	p.eventSeq.CompareAndSwap(0, uint32(time.Now().Unix()))
	return p.eventSeq.Add(1)
}

// parseSplice reads a splice_info_section given as base64 or as hex
// (0x...).
func parseSplice(s string) ([]byte, *scte35.SpliceInfoSection, error) {
	s = strings.TrimSpace(s)
	var b []byte
	var err error
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		b, err = hex.DecodeString(h)
	} else {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("scte35: neither base64 nor 0x hex: %w", err)
	}
	sis, err := decodeSplice(b)
	return b, sis, err
}

func decodeSplice(b []byte) (sis *scte35.SpliceInfoSection, err error) {
	if len(b) < 3 || b[0] != scte35.TableID {
		return nil, errors.New("scte35: not a splice_info_section (table_id 0xFC)")
	}
	defer func() {
		if r := recover(); r != nil { // a library bug on hostile input must not take the process down
			sis, err = nil, fmt.Errorf("scte35: %v", r)
		}
	}()
	sis = &scte35.SpliceInfoSection{}
	if err := sis.Decode(b); err != nil {
		return nil, fmt.Errorf("scte35: %w", err)
	}
	return sis, nil
}

// spliceCue is what a splice_info_section asks of the playlists.
type spliceCue struct {
	kind       playlist.CueKind // 0: nothing (splice_null, a cancel)
	id         string
	duration   time.Duration
	autoReturn bool
	pts        *uint64 // splice time (pts_time + pts_adjustment, 33 bits), if given
}

// Segmentation types that start and end a break (SCTE 35 table 23):
// break, provider and distributor advertisement and placement
// opportunities.
var (
	segStarts = map[uint32]bool{0x22: true, 0x30: true, 0x32: true, 0x34: true, 0x36: true, 0x38: true, 0x3A: true, 0x3C: true, 0x3E: true, 0x44: true, 0x46: true}
	segEnds   = map[uint32]bool{0x23: true, 0x31: true, 0x33: true, 0x35: true, 0x37: true, 0x39: true, 0x3B: true, 0x3D: true, 0x3F: true, 0x45: true, 0x47: true}
)

// interpret maps a splice_info_section to a cue: a splice_insert out of
// the network starts a break (ID splice-EVENT), back into it ends it; a
// time_signal with a segmentation descriptor of a break or ad start or
// end (ID seg-EVENT) likewise; any other command but splice_null is a
// point (SCTE35-CMD).
func interpret(sis *scte35.SpliceInfoSection) spliceCue {
	adj := func(t *uint64) *uint64 {
		if t == nil {
			return nil
		}
		v := (*t + sis.PTSAdjustment) & (1<<33 - 1)
		return &v
	}
	switch cmd := sis.SpliceCommand.(type) {
	case *scte35.SpliceInsert:
		if cmd.SpliceEventCancelIndicator {
			return spliceCue{}
		}
		c := spliceCue{id: "splice-" + strconv.FormatUint(uint64(cmd.SpliceEventID), 10), kind: playlist.CueIn}
		if cmd.OutOfNetworkIndicator {
			c.kind = playlist.CueOut
		}
		if bd := cmd.BreakDuration; bd != nil {
			c.duration, c.autoReturn = scte35.TicksToDuration(bd.Duration), bd.AutoReturn
		}
		if !cmd.SpliceImmediateFlag && cmd.Program != nil {
			c.pts = adj(cmd.Program.SpliceTime.PTSTime)
		}
		return c
	case *scte35.TimeSignal:
		c := spliceCue{kind: playlist.CueCmd, pts: adj(cmd.SpliceTime.PTSTime)}
		for _, d := range sis.SpliceDescriptors {
			sd, ok := d.(*scte35.SegmentationDescriptor)
			if !ok || sd.SegmentationEventCancelIndicator {
				continue
			}
			id := "seg-" + strconv.FormatUint(uint64(sd.SegmentationEventID), 10)
			switch {
			case segStarts[sd.SegmentationTypeID]:
				c.kind, c.id = playlist.CueOut, id
				if sd.SegmentationDuration != nil {
					c.duration = scte35.TicksToDuration(*sd.SegmentationDuration)
				}
				return c
			case segEnds[sd.SegmentationTypeID]:
				// The end of a segmentation event ends the break its
				// start opened: the start's ID, seg-EVENT.
				c.kind, c.id = playlist.CueIn, id
				return c
			}
		}
		return c
	case *scte35.SpliceNull:
		return spliceCue{}
	}
	return spliceCue{kind: playlist.CueCmd}
}

// encodeSplice makes the splice_insert of a cue fount originates (the
// API without a section of its own): out of the network with the break's
// duration and auto-return, or back in; its splice time is the cue's due
// time on the stream timeline, which is the segments' PTS clock.
func encodeSplice(eventID uint32, out bool, duration time.Duration, autoReturn bool, at time.Duration) ([]byte, error) {
	pts := uint64(scte35.DurationToTicks(max(at, 0))) & (1<<33 - 1)
	ins := &scte35.SpliceInsert{
		SpliceEventID:         eventID,
		OutOfNetworkIndicator: out,
		Program:               &scte35.SpliceInsertProgram{SpliceTime: scte35.SpliceTime{PTSTime: &pts}},
	}
	if out && duration > 0 {
		ins.BreakDuration = &scte35.BreakDuration{AutoReturn: autoReturn, Duration: scte35.DurationToTicks(duration)}
	}
	sis := &scte35.SpliceInfoSection{SpliceCommand: ins, SAPType: scte35.SAPTypeNotSpecified, Tier: 4095}
	return sis.Encode()
}

// spliceAt places a splice time given in the encoder's 90 kHz PTS on the
// stream timeline, by the time of the message that carried it (msg, on
// the stream timeline, whose RTMP timestamp the encoder's PTS usually
// equals, modulo 2^33): a splice time up to maxPreroll after the message
// is taken; any other is a different clock, and the cue is due at the
// message.
func spliceAt(pts *uint64, msg time.Duration) time.Duration {
	if pts == nil {
		return msg
	}
	const wrap = 1 << 33
	m := uint64(scte35.DurationToTicks(max(msg, 0))) % wrap
	d := int64((*pts + wrap - m) % wrap)
	if d >= wrap/2 {
		d -= wrap
	}
	if d < 0 || d > int64(scte35.DurationToTicks(maxPreroll)) {
		return msg
	}
	return msg + scte35.TicksToDuration(uint64(d))
}

// maxPreroll bounds how far ahead of its message a splice time may be.
const maxPreroll = time.Minute

// Cue takes an encoder's onCuePoint (ingest.CueSession): SCTE-35 in it,
// or YouTube's cue point; an Adobe cue point with neither marks nothing.
// Encoders repeat a cue (and every rendition's encoder of a grouped push
// sends it): an ID already listed or waiting is taken once.
func (s *session) Cue(cp ingest.CuePoint) {
	at := cp.Timestamp
	if s.shift.set {
		at += s.shift.off
	}
	c := playlist.Cue{Source: "rtmp"}
	autoReturn := false
	var eventID uint32
	switch {
	case cp.SCTE35 != nil:
		sis, err := decodeSplice(cp.SCTE35)
		if err != nil {
			s.log.Warn("ignoring an onCuePoint whose SCTE-35 does not decode", "err", err)
			return
		}
		sc := interpret(sis)
		if sc.kind == 0 {
			return
		}
		c.Kind, c.ID, c.Duration, c.SCTE35, autoReturn = sc.kind, sc.id, sc.duration, cp.SCTE35, sc.autoReturn
		if c.ID == "" {
			c.ID = "scte35-" + strconv.FormatInt(at.Milliseconds(), 10)
		}
		at = spliceAt(sc.pts, at)
	case cp.YouTube:
		eventID = cp.EventID
		c.ID = "splice-" + strconv.FormatUint(uint64(eventID), 10)
		c.Kind = playlist.CueIn
		if cp.Start {
			c.Kind, c.Duration, autoReturn = playlist.CueOut, time.Duration(cp.BreakDuration*float64(time.Second)), true
		}
		at += time.Duration(min(cp.PreRoll, maxPreroll.Seconds()) * float64(time.Second))
		c.SCTE35, _ = encodeSplice(eventID, cp.Start, c.Duration, true, at)
	default:
		s.log.Debug("onCuePoint without SCTE-35: nothing to mark", "name", cp.Name, "type", cp.Type)
		return
	}
	st := s.stream
	if path := st.Path(); strings.Count(path, "/") == 2 {
		if parent := s.pub.reg.Stream(path[:strings.LastIndexByte(path, '/')]); parent != nil {
			st = parent // every rendition marks it
		}
	}
	if c.Kind != playlist.CueIn && st.HasDateRange(c.ID) {
		return
	}
	if _, open := st.OpenBreakID(); c.Kind == playlist.CueIn && !open {
		return // no break to end (or a repeat of the end)
	}
	c.At = at
	if err := s.pub.addCue(st, c); err != nil {
		s.log.Warn("cue not taken", "id", c.ID, "err", err)
		return
	}
	if c.Kind == playlist.CueOut && c.Duration > 0 && autoReturn {
		in := playlist.Cue{Kind: playlist.CueIn, ID: c.ID, At: at + c.Duration, Source: "rtmp"}
		s.pub.addCue(st, in)
	}
}
