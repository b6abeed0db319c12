package playlist

import "time"

// A stream's counters and bit rates, for the API, metrics and logs.

// rateWindow is how many sweeps (seconds, by default) bitrates average over.
const rateWindow = 10

type rateSample struct {
	at            time.Time
	bytesIn, bOut uint64
}

// sample records the byte counters for the bitrates; called by sweep.
func (s *Stream) sampleLocked(now time.Time) {
	s.samples[s.nsamples%len(s.samples)] = rateSample{at: now, bytesIn: s.bytesIn.Load(), bOut: s.bytesOut.Load()}
	s.nsamples++
}

// ratesLocked returns bits per second in and out over the sample window.
func (s *Stream) ratesLocked() (in, out float64) {
	if s.nsamples < 2 {
		return 0, 0
	}
	n := min(s.nsamples, len(s.samples))
	newest := s.samples[(s.nsamples-1)%len(s.samples)]
	oldest := s.samples[(s.nsamples-n)%len(s.samples)]
	d := newest.at.Sub(oldest.at).Seconds()
	if d <= 0 {
		return 0, 0
	}
	return float64(newest.bytesIn-oldest.bytesIn) * 8 / d, float64(newest.bOut-oldest.bOut) * 8 / d
}

// Stats is a snapshot of a stream for logs and the API.
type Stats struct {
	Path          string
	State         State
	Segments      uint64 // produced since the stream began
	Parts         uint64
	NextSequence  uint64
	Discontinuity uint64
	LastPart      string    // newest LL-HLS part
	LastPartAt    time.Time // when the segmenter handed it over
	Created       time.Time
	BitrateIn     float64 // bit/s of media segments produced, over the last ~10 s
	BitrateOut    float64 // bit/s of media served to viewers, over the last ~10 s
}

// Stats returns a snapshot.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Path: s.path, State: s.state, Segments: s.segmentsTotal, Parts: s.partsTotal, NextSequence: s.nextMSN, Discontinuity: s.discSeq,
		LastPart: s.lastPart, LastPartAt: s.lastPartAt, Created: s.created}
	st.BitrateIn, st.BitrateOut = s.ratesLocked()
	return st
}
