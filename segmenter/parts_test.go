package segmenter

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// partRun is one stream muxed with parts, with the frame being written at
// the time of every Sink.Part call.
type partRun struct {
	s      *Segmenter
	c      *collect
	format Format
	pd     time.Duration
	atPart []Frame // the frame in WriteFrame when each part was handed over; zero Frame = Flush
	audio  bool    // audio-only stream
	jumped bool    // the timestamps jump: fMP4 samples after it are placed on the old timeline until the cut
}

func runParts(t *testing.T, format Format, pd time.Duration, video, audio bool, feed func(write func(Frame))) *partRun {
	t.Helper()
	r := &partRun{format: format, pd: pd, audio: !video}
	r.c = &collect{}
	var cur Frame
	r.c.onPart = func(Part) { r.atPart = append(r.atPart, cur) }
	var expect Tracks
	if video {
		expect |= Video
	}
	if audio {
		expect |= Audio
	}
	r.s = New(Config{Expect: expect, Format: format, PartDuration: pd, Now: fakeClock(), Logger: slog.New(&logRecorder{})}, r.c)
	if video {
		if err := setAVC(r.s, avcCHigh); err != nil {
			t.Fatal(err)
		}
	}
	if audio {
		if err := setAAC(r.s, ascLC44Stereo); err != nil {
			t.Fatal(err)
		}
	}
	feed(func(f Frame) {
		cur = Frame{Kind: f.Kind, DTS: f.DTS, PTS: f.PTS, Key: f.Key}
		if err := r.s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	})
	cur = Frame{}
	if err := r.s.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

func synthFeed(g *synth, end time.Duration) func(func(Frame)) {
	return func(write func(Frame)) {
		for {
			f := g.next()
			if f.DTS-g.base >= end {
				return
			}
			write(f)
		}
	}
}

// within reports whether p's bytes lie inside b's backing array.
func within(p, b []byte) bool {
	if len(p) == 0 || len(b) == 0 {
		return false
	}
	pp, bp := uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pp >= bp && pp+uintptr(len(p)) <= bp+uintptr(len(b))
}

// lastSample returns the decode time (90 kHz for TS and fMP4 video, the
// sample rate for fMP4 audio) of the last primary-track sample in parts[k],
// and whether parts[k] starts with a video keyframe (audio-only: with an
// audio frame).
func (r *partRun) lastSample(t *testing.T, seg Segment, k int) (dts int64, startsKey bool) {
	t.Helper()
	p := seg.Parts[k].Data
	if r.format == FormatFMP4 {
		// One fragment, or more where a video keyframe has one of its own.
		fr := fragments(t, p)
		if len(fr) == 0 || fr[0][0].id != 1 {
			t.Fatalf("part %d: %d fragments, the first traf not track 1", k, len(fr))
		}
		if r.audio && len(fr) != 1 {
			t.Fatalf("audio-only part %d: %d fragments", k, len(fr))
		}
		dts = -1
		for _, runs := range fr {
			for _, run := range runs {
				if run.id == 1 {
					dts = int64(run.tfdt)
					for _, d := range run.durs[:len(run.durs)-1] {
						dts += int64(d)
					}
				}
			}
		}
		return dts, fr[0][0].sync[0]
	}
	// TS: demux the segment up to this part (tables are at its start).
	var upTo []byte
	for _, q := range seg.Parts[:k+1] {
		upTo = append(upTo, q.Data...)
	}
	ts := demuxTS(t, upTo)
	pid := uint16(videoPID)
	if r.audio {
		pid = audioPID
	}
	dts = -1
	for _, pes := range ts.pes {
		if pes.pid == pid {
			dts = pes.dts
			if dts == -1 {
				dts = pes.pts
			}
		}
	}
	// The first packet of the part after any PAT/PMT: the PES start of a
	// keyframe (random_access_indicator) or of an audio frame.
	for off := 0; off+188 <= len(p); off += 188 {
		pkt := p[off : off+188]
		ppid := uint16(pkt[1]&0x1f)<<8 | uint16(pkt[2])
		if ppid == 0 || ppid == pmtPID {
			continue
		}
		if r.audio {
			startsKey = ppid == audioPID && pkt[1]&0x40 != 0
		} else {
			startsKey = ppid == videoPID && pkt[1]&0x40 != 0 && pkt[3]&0x20 != 0 && pkt[5]&0x40 != 0
		}
		break
	}
	return dts, startsKey
}

func (r *partRun) check(t *testing.T) {
	t.Helper()
	c := r.c
	if len(c.segs) < 2 {
		t.Fatalf("%d segments", len(c.segs))
	}
	for i := 0; i+1 < len(c.segs); i++ {
		if !c.segs[i+1].Discontinuity && c.segs[i].Start+c.segs[i].Duration != c.segs[i+1].Start {
			t.Errorf("segment %d: start %v + duration %v != next start %v", i, c.segs[i].Start, c.segs[i].Duration, c.segs[i+1].Start)
		}
	}
	// Sink calls: [init] part+ segment, ...; every part handed over was in a segment, in order.
	var want []string
	pi := 0
	for i, seg := range c.segs {
		if r.format == FormatFMP4 && (i == 0 || seg.InitVersion != c.segs[i-1].InitVersion) {
			want = append(want, "init")
		}
		if len(seg.Parts) == 0 {
			t.Fatalf("segment %d has no parts", i)
		}
		for _, p := range seg.Parts {
			if pi >= len(c.parts) || unsafe.SliceData(c.parts[pi].Data) != unsafe.SliceData(p.Data) || len(c.parts[pi].Data) != len(p.Data) {
				t.Fatalf("segment %d: Parts differ from the parts handed to the sink", i)
			}
			pi++
			want = append(want, "part")
		}
		want = append(want, "segment")
	}
	if pi != len(c.parts) || strings.Join(c.calls, " ") != strings.Join(want, " ") {
		t.Fatalf("calls %v\nwant  %v", c.calls, want)
	}

	styp := 0
	if r.format == FormatFMP4 {
		styp = len(r.s.fm.styp)
	}
	pi = 0
	independent := 0
	for i, seg := range c.segs {
		var sum time.Duration
		var cat []byte
		for k, p := range seg.Parts {
			at := r.atPart[pi]
			pi++
			sum += p.Duration
			cat = append(cat, p.Data...)
			last := k == len(seg.Parts)-1
			if p.Duration <= 0 || p.Duration > r.pd {
				t.Errorf("segment %d part %d: duration %v (part target %v)", i, k, p.Duration, r.pd)
			}
			if !within(p.Data, seg.Data) {
				t.Errorf("segment %d part %d: not a subslice of the segment's buffer", i, k)
			}
			if cap(p.Data) != len(p.Data) {
				t.Errorf("segment %d part %d: capacity %d beyond its length %d", i, k, cap(p.Data), len(p.Data))
			}
			dts, startsKey := r.lastSample(t, seg, k)
			if p.Independent != startsKey || (r.audio && !p.Independent) {
				t.Errorf("segment %d part %d: Independent %v, starts with a keyframe %v", i, k, p.Independent, startsKey)
			}
			if p.Independent {
				independent++
			}
			if r.format == FormatTS && p.Independent && (p.Data[0] != 0x47 || p.Data[1]&0x1f != 0 || p.Data[2] != 0) {
				t.Errorf("segment %d part %d: independent TS part does not begin with PAT", i, k)
			}
			if k == 0 && !p.Independent {
				t.Errorf("segment %d: first part not independent", i)
			}
			// Handed over during the WriteFrame of the frame that completed
			// it, or of the keyframe that cut the segment or a frame after
			// it that made the cut held for audio (holdcut.go), or in Flush.
			scale := int64(90000)
			if r.audio && r.format == FormatFMP4 {
				scale = 44100
			}
			switch {
			case at.Data == nil && at.Kind == 0:
				if !last || i != len(c.segs)-1 {
					t.Errorf("segment %d part %d handed over in Flush", i, k)
				}
			case last && i+1 < len(c.segs) && at.DTS == c.segs[i+1].Start && (at.Key || r.audio):
			case last && i+1 < len(c.segs) && !r.audio && at.DTS > c.segs[i+1].Start && at.DTS <= c.segs[i+1].StartPTS+holdMargin:
			default:
				if want := toTicks(at.DTS, scale); (dts != want && !(r.jumped && r.format == FormatFMP4)) || (r.audio != (at.Kind == Audio)) {
					t.Errorf("segment %d part %d: handed over at the %v frame %v, its last sample is at %d (want %d)", i, k, at.Kind, at.DTS, dts, want)
				}
			}
		}
		if d := sum - seg.Duration; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("segment %d: parts sum to %v, duration %v", i, sum, seg.Duration)
		}
		if !bytes.Equal(cat, seg.Data[styp:]) {
			t.Errorf("segment %d: parts concatenated (%d bytes) differ from the segment (%d bytes, styp %d)", i, len(cat), len(seg.Data), styp)
		}
	}
	t.Logf("%d segments, %d parts, %d independent", len(c.segs), len(c.parts), independent)
}

func TestParts(t *testing.T) {
	st := readFLV(t, "testdata/main.flv")
	for _, format := range []Format{FormatTS, FormatFMP4} {
		for _, tc := range []struct {
			name         string
			pd           time.Duration
			gop          int
			video, audio bool
			flv          bool
		}{
			{"av 200ms gop 1s", 200 * time.Millisecond, 30, true, true, false},
			{"av 250ms gop 0.4s", 250 * time.Millisecond, 12, true, true, false},
			{"av 200ms gop 0.4s", 200 * time.Millisecond, 12, true, true, false},
			{"video only 333ms", 333 * time.Millisecond, 30, true, false, false},
			{"audio only 200ms", 200 * time.Millisecond, 0, false, true, false},
			{"real flv 300ms", 300 * time.Millisecond, 0, true, true, true},
			{"av jump", 200 * time.Millisecond, 30, true, true, false},
			{"audio only jump", 200 * time.Millisecond, 0, false, true, false},
		} {
			t.Run(fmt.Sprintf("%s/format %d", tc.name, format), func(t *testing.T) {
				var feed func(func(Frame))
				if tc.flv {
					feed = func(write func(Frame)) {
						for _, f := range st.frames {
							write(f)
						}
					}
				} else if strings.HasSuffix(tc.name, "jump") {
					// Forward jump of 1h mid-GOP (mid-part): the segment
					// before it is bridged with estimated frame durations.
					g := newSynth(tc.gop, tc.video, tc.audio)
					feed = func(write func(Frame)) {
						synthFeed(g, 3*time.Second+frameDur*15+time.Millisecond)(write)
						g.base += time.Hour
						synthFeed(g, 7*time.Second)(write)
					}
				} else {
					feed = synthFeed(newSynth(tc.gop, tc.video, tc.audio), 7*time.Second)
				}
				r := runParts(t, format, tc.pd, tc.video, tc.audio, feed)
				r.jumped = strings.HasSuffix(tc.name, "jump")
				r.check(t)
				if r.jumped {
					n := 0
					for _, seg := range r.c.segs {
						if seg.Discontinuity {
							n++
						}
					}
					if n != 1 {
						t.Errorf("%d discontinuities", n)
					}
				}
				if format == FormatTS {
					for i, seg := range r.c.segs {
						demuxTS(t, seg.Data) // every segment still demuxes whole
						_ = i
					}
				}
			})
		}
	}
}

// TestPartsDeferredAudio: audio that arrives after the frame that closed a
// part goes into the next part (with the next video frame), not into a
// stranded audio-only part at the end of the segment; at the end of a
// segment, the audio presented before the next keyframe goes into the
// segment's last part, kept open for it (holdcut.go).
func TestPartsDeferredAudio(t *testing.T) {
	for _, format := range []Format{FormatTS, FormatFMP4} {
		g := newSynth(30, true, true)
		r := runParts(t, format, 200*time.Millisecond, true, true, synthFeed(g, 5*time.Second))
		for i, seg := range r.c.segs {
			if i < len(r.c.segs)-1 && len(seg.Parts) != 10 {
				t.Errorf("format %d segment %d: %d parts", format, i, len(seg.Parts))
			}
		}
		if format == FormatFMP4 {
			// Segment 1's first part holds audio from its keyframe's PTS
			// on, in the fragment after the keyframe's own; its second part
			// the audio from just before its first video frame.
			seg := r.c.segs[1]
			fr := fragments(t, seg.Parts[0].Data)
			if len(fr) != 2 || len(fr[0]) != 1 || len(fr[1]) != 2 || fr[1][1].id != 2 || int64(fr[1][1].tfdt) < toTicks(seg.StartPTS, 44100) {
				t.Errorf("first part of segment 1 (start %v, PTS %v): %+v", seg.Start, seg.StartPTS, fr)
			}
			fr = fragments(t, seg.Parts[1].Data)
			if len(fr) != 1 || len(fr[0]) != 2 || fr[0][1].id != 2 || time.Duration(fr[0][1].tfdt)*time.Second/44100 >= time.Duration(fr[0][0].tfdt)*time.Second/90000 {
				t.Errorf("second part of segment 1: %+v", fr)
			}
		}
	}
}

// segStartSink checks, as a playlist would use it, that every part carries
// the Start of the segment it ends up in: from the segment's first part on,
// before the segment is finished.
type segStartSink struct {
	t       *testing.T
	pending []Part // handed over since the last segment
	segs    int
	disc    int
	parts   int
}

func (c *segStartSink) Init(Init) error { return nil }
func (c *segStartSink) Part(p Part) error {
	if len(c.pending) > 0 && p.SegmentStart != c.pending[0].SegmentStart {
		c.t.Errorf("segment %d: part %d has SegmentStart %v, its first part %v", c.segs, len(c.pending), p.SegmentStart, c.pending[0].SegmentStart)
	}
	c.pending = append(c.pending, Part{Duration: p.Duration, Independent: p.Independent, SegmentStart: p.SegmentStart})
	return nil
}
func (c *segStartSink) Segment(s Segment) error {
	if len(s.Parts) != len(c.pending) || len(s.Parts) == 0 {
		c.t.Errorf("segment %d: %d parts, %d handed over", c.segs, len(s.Parts), len(c.pending))
	}
	for i, p := range c.pending {
		if p.SegmentStart != s.Start {
			c.t.Errorf("segment %d (start %v): part %d handed over with SegmentStart %v", c.segs, s.Start, i, p.SegmentStart)
		}
		if i < len(s.Parts) && s.Parts[i].SegmentStart != s.Start {
			c.t.Errorf("segment %d (start %v): Parts[%d].SegmentStart %v", c.segs, s.Start, i, s.Parts[i].SegmentStart)
		}
	}
	if s.Discontinuity {
		c.disc++
	}
	c.parts += len(c.pending)
	c.pending = c.pending[:0]
	c.segs++
	return nil
}

// TestPartSegmentStart: every part carries its segment's Start, in both
// formats, with and without PartsOnly, across a timestamp jump and a codec
// configuration change (both discontinuities), and audio-only.
func TestPartSegmentStart(t *testing.T) {
	for _, format := range []Format{FormatTS, FormatFMP4} {
		for _, only := range []bool{false, true} {
			for _, video := range []bool{true, false} {
				name := fmt.Sprintf("%v/partsonly %v/video %v", format, only, video)
				t.Run(name, func(t *testing.T) {
					c := &segStartSink{t: t}
					expect := Audio
					if video {
						expect |= Video
					}
					s := New(Config{Expect: expect, Format: format, PartDuration: 200 * time.Millisecond, PartsOnly: only,
						TargetDuration: time.Second, Now: fakeClock(), Logger: slog.New(&logRecorder{})}, c)
					if video {
						if err := setAVC(s, avcCHigh); err != nil {
							t.Fatal(err)
						}
					}
					if err := setAAC(s, ascLC44Stereo); err != nil {
						t.Fatal(err)
					}
					g := newSynth(15, video, true)
					g.run(t, s, 2500*time.Millisecond+frameDur*7)
					g.base += time.Hour // a jump mid-GOP
					g.run(t, s, 5*time.Second)
					if video {
						if err := setAVC(s, avcCBase); err != nil {
							t.Fatal(err)
						}
					} else if err := setAAC(s, ascLC48Mono); err != nil {
						t.Fatal(err)
					}
					g.run(t, s, 7*time.Second)
					if err := s.Flush(); err != nil {
						t.Fatal(err)
					}
					if c.segs < 6 || c.disc != 2 || len(c.pending) != 0 {
						t.Fatalf("%d segments, %d discontinuities, %d parts left over", c.segs, c.disc, len(c.pending))
					}
					t.Logf("%d segments, %d parts", c.segs, c.parts)
				})
			}
		}
	}
}

// TestPartsRoundedTimestamps: 30 fps video whose millisecond timestamps are
// rounded to the nearest (as ffmpeg writes FLV), from start times at every
// phase of the frame grid, is cut into parts of six frames (200 ms), ten to
// a 2 s segment. A slack smaller than the rounding closed some parts a
// frame early, which left each segment a one-frame last part (5, 6 × 9, 1
// frames), presented out of order with the part before in some players.
func TestPartsRoundedTimestamps(t *testing.T) {
	for phase := range 10 { // tenths of a millisecond
		t.Run(fmt.Sprintf("phase %d", phase), func(t *testing.T) {
			c := &collect{}
			s := New(Config{Expect: Video, Format: FormatFMP4, PartDuration: 200 * time.Millisecond,
				Now: fakeClock(), Logger: slog.New(&logRecorder{})}, c)
			if err := setAVC(s, avcCHigh); err != nil {
				t.Fatal(err)
			}
			start := 27952*time.Second + time.Duration(phase)*100*time.Microsecond
			for n := range 30 * 8 {
				exact := start + time.Duration(n)*time.Second/30
				dts := exact.Round(time.Millisecond)
				nal := []byte{0, 0, 0, 2, 0x41, 1}
				if n%60 == 0 {
					nal[4] = 0x65
				}
				if err := s.WriteFrame(Frame{Kind: Video, DTS: dts, PTS: dts, Key: n%60 == 0, Data: nal}); err != nil {
					t.Fatal(err)
				}
			}
			if len(c.segs) < 3 {
				t.Fatalf("%d segments", len(c.segs))
			}
			// Parts of the complete segments: 10 × 200 ms each.
			n := 0
			for _, seg := range c.segs {
				n += int(seg.Duration.Round(100*time.Millisecond) / (200 * time.Millisecond))
			}
			for i, p := range c.parts[:n] {
				if p.Duration < 199*time.Millisecond || p.Duration > 200*time.Millisecond {
					t.Errorf("part %d: %v, want 200 ms (six frames)", i, p.Duration)
				}
				// The keyframe after the tenth cuts: that part, and only
				// that one, announces it (preload hints name the next
				// segment's first part then).
				if p.SegmentDue != (i%10 == 9) {
					t.Errorf("part %d: SegmentDue %v", i, p.SegmentDue)
				}
			}
		})
	}
}
