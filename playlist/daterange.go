package playlist

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Ad breaks (SCTE-35) and HLS interstitials: EXT-X-DATERANGE in media
// playlists (RFC 8216bis 4.4.5.1), and the EXT-X-CUE-OUT / CUE-OUT-CONT /
// CUE-IN tags that server-side ad insertion commonly reads.
//
// A cue reaches a stream (Stream.AddCue) with the stream-timeline PTS it
// is due at; the segmenter is asked to begin a segment at the first
// keyframe at or after it (segmenter.CutAt), and the first segment whose
// first frame is presented at or after that time carries the cue: its
// EXT-X-PROGRAM-DATE-TIME is the daterange's START-DATE. A break stays
// open until its CueIn (an explicit one, or the auto-return one queued
// with the CueOut), across reconnects and, through the stored playlist
// (restore.go), restarts and handovers.
//
// Delta updates: fount does not advertise CAN-SKIP-DATERANGES, so a
// player's _HLS_skip (YES or v2) skips segments only, and every
// EXT-X-DATERANGE the full playlist lists is repeated in the delta update
// (RFC 8216bis 4.4.3.8 and 6.2.5.1: only a server that says
// CAN-SKIP-DATERANGES=YES may leave them out, listing
// RECENTLY-REMOVED-DATERANGES in EXT-X-SKIP).

// AdMarkers selects how ad breaks are marked in media playlists.
type AdMarkers uint8

const (
	AdMarkersDateRange AdMarkers = iota // EXT-X-DATERANGE with SCTE35-OUT/IN (the default)
	AdMarkersCue                        // EXT-X-CUE-OUT / CUE-OUT-CONT / CUE-IN
	AdMarkersBoth                       // both
)

// ParseAdMarkers reads "daterange", "cue" or "both".
func ParseAdMarkers(s string) (AdMarkers, error) {
	switch s {
	case "daterange", "":
		return AdMarkersDateRange, nil
	case "cue":
		return AdMarkersCue, nil
	case "both":
		return AdMarkersBoth, nil
	}
	return 0, fmt.Errorf("ad markers %q: want daterange, cue or both", s)
}

func (m AdMarkers) String() string {
	switch m {
	case AdMarkersCue:
		return "cue"
	case AdMarkersBoth:
		return "both"
	}
	return "daterange"
}

func (m AdMarkers) dateranges() bool { return m != AdMarkersCue }
func (m AdMarkers) cueTags() bool    { return m != AdMarkersDateRange }

// CueKind is what a cue does.
type CueKind uint8

const (
	CueOut          CueKind = iota + 1 // an ad break starts (SCTE35-OUT; EXT-X-CUE-OUT)
	CueIn                              // the open break ends (SCTE35-IN; EXT-X-CUE-IN)
	CueCmd                             // another SCTE-35 command, marked as a point (SCTE35-CMD)
	CueInterstitial                    // an HLS interstitial (CLASS="com.apple.hls.interstitial")
)

func (k CueKind) String() string {
	switch k {
	case CueOut:
		return "out"
	case CueIn:
		return "in"
	case CueCmd:
		return "cmd"
	case CueInterstitial:
		return "interstitial"
	}
	return "unknown"
}

// InterstitialClass is the CLASS of an HLS interstitial's EXT-X-DATERANGE.
const InterstitialClass = "com.apple.hls.interstitial"

// Attr is a client attribute (X-...) of an EXT-X-DATERANGE.
type Attr struct {
	Name   string // X-ASSET-URI, X-RESUME-OFFSET...
	Value  string // as written: a string without its quotes, or a number
	Quoted bool   // a quoted-string
}

// Cue is a splice point for a stream's playlists.
type Cue struct {
	Kind CueKind
	// ID is the EXT-X-DATERANGE ID: unique in the playlist. A CueIn names
	// the break it ends ("" ends the open one, whichever it is).
	ID string
	// At is the stream-timeline PTS the cue is due at: the first segment
	// presented at or after it carries the cue.
	At time.Duration
	// Duration: a CueOut's planned duration (PLANNED-DURATION, CUE-OUT
	// DURATION), an interstitial's DURATION; 0 if not known.
	Duration time.Duration
	// SCTE35 is the splice_info_section, written as 0x hex in
	// SCTE35-OUT, SCTE35-IN or SCTE35-CMD.
	SCTE35 []byte
	// Class and Attrs: an interstitial's CLASS and X- attributes.
	Class string
	Attrs []Attr
	// Source says where the cue came from ("api", "rtmp"), for logs.
	Source string

	atDate time.Time // restored auto-return: due at this PDT instead of At
}

// maxPendingCues and maxDateRanges bound what a stream holds.
const (
	maxPendingCues = 64
	maxDateRanges  = 256
)

// ErrTooManyCues is returned when a stream holds too many cues not yet due.
var ErrTooManyCues = errors.New("too many cues waiting for their segment")

// dateRange is one EXT-X-DATERANGE of a stream.
type dateRange struct {
	id       string
	class    string
	start    time.Time // START-DATE: the PDT of segment msn
	msn      uint64
	planned  time.Duration // PLANNED-DURATION
	duration time.Duration // DURATION, when ended
	ended    bool
	out, in  []byte // SCTE35-OUT, SCTE35-IN
	cmd      []byte // SCTE35-CMD
	attrs    []Attr
	source   string
}

// cueTag is a segment's EXT-X-CUE tag (AdMarkersCue).
type cueTag struct {
	kind     uint8 // cueTagNone...
	elapsed  time.Duration
	duration time.Duration
}

const (
	cueTagNone uint8 = iota
	cueTagOut
	cueTagCont
	cueTagIn
)

// BreakInfo describes an ad break, for the API.
type BreakInfo struct {
	ID              string    `json:"id"`
	Start           time.Time `json:"start_date"`
	MediaSequence   uint64    `json:"media_sequence"`
	PlannedDuration float64   `json:"planned_duration,omitempty"`
	Elapsed         float64   `json:"elapsed"`
	Source          string    `json:"source,omitempty"`
}

// CueState is what the API shows of a stream's cues.
type CueState struct {
	OpenBreak *BreakInfo `json:"open_break"`
	Pending   int        `json:"pending_cues"`
	LastCue   *LastCue   `json:"last_cue"`
}

// LastCue is the last cue a stream's playlist took.
type LastCue struct {
	ID            string    `json:"id"`
	Kind          string    `json:"type"`
	Date          time.Time `json:"date"`
	MediaSequence uint64    `json:"media_sequence"`
	Source        string    `json:"source,omitempty"`
}

// AddCue queues a cue for the stream's next segment presented at or after
// c.At. A parent stream passes it to every rendition: each marks its own
// segment at that time (renditions cut at the same keyframes), with the
// same ID and START-DATE.
func (s *Stream) AddCue(c Cue) error {
	if g := s.variants(); g != nil {
		var errs []error
		for _, r := range g.snapshot() {
			errs = append(errs, r.AddCue(c))
		}
		return errors.Join(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pendingCues) >= maxPendingCues {
		return ErrTooManyCues
	}
	s.pendingCues = append(s.pendingCues, c)
	return nil
}

// PendingCueTimes returns the times of the cues not yet taken, for the
// cuts a new publisher's segmenter must make (a reconnect).
func (s *Stream) PendingCueTimes() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t []time.Duration
	for _, c := range s.pendingCues {
		if c.atDate.IsZero() {
			t = append(t, c.At)
		}
	}
	return t
}

// HasDateRange reports whether the stream (or, for a parent, any of its
// renditions) lists or waits for a cue with this ID.
func (s *Stream) HasDateRange(id string) bool {
	if g := s.variants(); g != nil {
		return slices.ContainsFunc(g.snapshot(), func(r *Stream) bool { return r.HasDateRange(id) })
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dateranges {
		if d.id == id {
			return true
		}
	}
	for _, c := range s.pendingCues {
		if c.ID == id && c.Kind != CueIn {
			return true
		}
	}
	return false
}

// OpenBreakID returns the ID of the stream's open break, if any (a
// parent: its first rendition's).
func (s *Stream) OpenBreakID() (string, bool) {
	st := s.Cues()
	if st.OpenBreak == nil {
		return "", false
	}
	return st.OpenBreak.ID, true
}

// Cues returns the stream's break state (a parent: its first rendition's).
func (s *Stream) Cues() CueState {
	if g := s.variants(); g != nil {
		m := g.snapshot()
		if len(m) == 0 {
			return CueState{}
		}
		return m[0].Cues()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := CueState{Pending: len(s.pendingCues), LastCue: s.lastCue}
	if b := s.openBreak; b != nil {
		st.OpenBreak = &BreakInfo{ID: b.id, Start: b.start.UTC(), MediaSequence: b.msn, PlannedDuration: b.planned.Seconds(),
			Elapsed: s.lastPDTEnd.Sub(b.start).Seconds(), Source: b.source}
		if st.OpenBreak.Elapsed < 0 {
			st.OpenBreak.Elapsed = 0
		}
	}
	return st
}

// TimelineAt returns the stream-timeline time of a program date-time, by
// its last segment (a parent: its first rendition's); false before the
// stream has a segment in this process.
func (s *Stream) TimelineAt(pdt time.Time) (time.Duration, bool) {
	if g := s.variants(); g != nil {
		for _, r := range g.snapshot() {
			if t, ok := r.TimelineAt(pdt); ok {
				return t, true
			}
		}
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.haveEnd || s.lastPDTEnd.IsZero() {
		return 0, false
	}
	// A segment's date is its first presented frame's (players map it to
	// the earliest sample they buffer, the keyframe's PTS once the audio
	// before it went into the previous segment): the PTS timeline, which
	// cues and timed metadata are placed on. With B-frames it runs the
	// composition delay ahead of the decode timeline (lastEnd).
	return s.lastEndPTS + pdt.Sub(s.lastPDTEnd), true
}

// LiveEdgeDate returns the program date-time where the stream's last
// segment ends (a parent: the latest of its renditions').
func (s *Stream) LiveEdgeDate() time.Time {
	if g := s.variants(); g != nil {
		var t time.Time
		for _, r := range g.snapshot() {
			if d := r.LiveEdgeDate(); d.After(t) {
				t = d
			}
		}
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastPDTEnd
}

// groupDates keeps the dates of a group's cues, so that every rendition
// writes the same START-DATE and DURATION for one ID (the first rendition
// to take a cue sets them).
type groupDates struct {
	start    time.Time
	duration time.Duration
	ended    bool
}

const maxGroupDates = 256

// sharedStart returns the START-DATE a rendition writes for id.
func (s *Stream) sharedStart(id string, pdt time.Time) time.Time {
	g := s.group
	if g == nil || id == "" {
		return pdt
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if d, ok := g.dates[id]; ok {
		return d.start
	}
	if g.dates == nil {
		g.dates = make(map[string]*groupDates)
	}
	if len(g.dates) >= maxGroupDates {
		for k := range g.dates { // any one: the oldest are long gone from the windows
			delete(g.dates, k)
			break
		}
	}
	g.dates[id] = &groupDates{start: pdt}
	return pdt
}

// sharedDuration returns the DURATION a rendition writes for id's end.
func (s *Stream) sharedDuration(id string, d time.Duration) time.Duration {
	g := s.group
	if g == nil || id == "" {
		return d
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	gd, ok := g.dates[id]
	if !ok {
		return d
	}
	if !gd.ended {
		gd.duration, gd.ended = d, true
	}
	return gd.duration
}

// takeCuesLocked gives a finished segment, starting at pts, the cues due
// at it, and its EXT-X-CUE tag. s.mu is held.
func (s *Stream) takeCuesLocked(e *entry, pts time.Duration) {
	if b := s.openBreak; b != nil {
		e.cue = cueTag{kind: cueTagCont, elapsed: e.pdt.Sub(b.start), duration: b.planned}
	}
	if len(s.pendingCues) == 0 {
		return
	}
	keep := s.pendingCues[:0]
	var due []Cue
	for _, c := range s.pendingCues {
		if c.atDate.IsZero() && pts >= c.At || !c.atDate.IsZero() && !e.pdt.Before(c.atDate) {
			due = append(due, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(s.pendingCues[len(keep):])
	s.pendingCues = keep
	for _, c := range due {
		s.takeCueLocked(e, c)
	}
}

func (s *Stream) takeCueLocked(e *entry, c Cue) {
	for _, d := range s.dateranges {
		if d.id == c.ID && c.Kind != CueIn {
			s.log.Debug("cue ignored: its ID is listed already", "stream", s.path, "id", c.ID)
			return
		}
	}
	start := s.sharedStart(c.ID, e.pdt)
	switch c.Kind {
	case CueOut:
		if b := s.openBreak; b != nil {
			// A new break while one is open: the open one ends here.
			s.endBreakLocked(b, e, nil)
		}
		d := &dateRange{id: c.ID, start: start, msn: e.msn, planned: c.Duration, out: c.SCTE35, source: c.Source}
		s.addDateRangeLocked(d)
		s.openBreak = d
		e.cue = cueTag{kind: cueTagOut, duration: c.Duration}
	case CueIn:
		b := s.openBreak
		if b == nil || c.ID != "" && c.ID != b.id {
			s.log.Debug("cue-in ignored: no such break open", "stream", s.path, "id", c.ID)
			return
		}
		s.endBreakLocked(b, e, c.SCTE35)
	case CueCmd:
		s.addDateRangeLocked(&dateRange{id: c.ID, start: start, msn: e.msn, cmd: c.SCTE35, source: c.Source})
	case CueInterstitial:
		s.addDateRangeLocked(&dateRange{id: c.ID, class: c.Class, start: start, msn: e.msn, duration: c.Duration,
			ended: c.Duration > 0, attrs: c.Attrs, source: c.Source})
	default:
		return
	}
	s.lastCue = &LastCue{ID: c.ID, Kind: c.Kind.String(), Date: start.UTC(), MediaSequence: e.msn, Source: c.Source}
	s.log.Debug("cue in the playlist", "stream", s.path, "id", c.ID, "type", c.Kind.String(), "media_sequence", e.msn)
}

// endBreakLocked ends break b at segment e (EXT-X-CUE-IN; DURATION and
// SCTE35-IN on its daterange).
func (s *Stream) endBreakLocked(b *dateRange, e *entry, in []byte) {
	b.duration = s.sharedDuration(b.id, e.pdt.Sub(b.start))
	b.ended, b.in = true, in
	s.openBreak = nil
	e.cue = cueTag{kind: cueTagIn}
}

// endAtStreamEndLocked ends an open break when its stream ends for good:
// its DURATION runs to the end of the last segment (no segment follows to
// carry EXT-X-CUE-IN), so a playlist stored with ENDLIST never leaves a
// break open for a later publish of the name to reopen. Cues not yet due
// go too. s.mu is held.
func (s *Stream) endAtStreamEndLocked() {
	if n := len(s.pendingCues); n > 0 {
		s.log.Info("cues dropped: the stream ended before they were due", "stream", s.path, "cues", n)
		clear(s.pendingCues)
		s.pendingCues = s.pendingCues[:0]
	}
	b := s.openBreak
	if b == nil {
		return
	}
	end := s.lastPDTEnd
	if end.Before(b.start) {
		end = b.start
	}
	b.duration = s.sharedDuration(b.id, end.Sub(b.start))
	b.ended = true
	s.openBreak = nil
	s.lastCue = &LastCue{ID: b.id, Kind: CueIn.String(), Date: end.UTC(), MediaSequence: s.nextMSN, Source: "stream-end"}
	s.log.Info("ad break ended with the stream", "stream", s.path, "id", b.id, "duration", b.duration)
}

func (s *Stream) addDateRangeLocked(d *dateRange) {
	if len(s.dateranges) >= maxDateRanges {
		i := 0
		if s.dateranges[0] == s.openBreak && len(s.dateranges) > 1 {
			i = 1
		}
		s.dateranges = slices.Delete(s.dateranges, i, i+1)
	}
	s.dateranges = append(s.dateranges, d)
}

// pruneDateRangesLocked drops the dateranges whose segment left the
// window, save the open break's, which stays listed while it is open.
func (s *Stream) pruneDateRangesLocked() {
	if len(s.dateranges) == 0 || len(s.window) == 0 {
		return
	}
	first := s.window[0].msn
	s.dateranges = slices.DeleteFunc(s.dateranges, func(d *dateRange) bool {
		return d.msn < first && d != s.openBreak
	})
}
