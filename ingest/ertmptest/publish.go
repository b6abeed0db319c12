package ertmptest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Layout is how Publish lays tracks out in messages.
type Layout int

// Layouts.
const (
	// Legacy sends track 0 as legacy FLV: H.264 (CodecID 7) and AAC
	// (SoundFormat 10) or MP3 (SoundFormat 2). No other track or codec.
	Legacy Layout = iota
	// ExHeader sends track 0 of each kind as plain (not multitrack) ExHeader
	// messages with a FourCC. No other track.
	ExHeader
	// OBS is OBS Studio's multitrack layout: video track 0 as legacy H.264
	// (or plain ExHeader for another codec), audio track 0 as legacy AAC (or
	// plain ExHeader), every other track as a Multitrack OneTrack message.
	OBS
	// ManyTracks sends every track in Multitrack ManyTracks messages: the
	// samples of one kind, codec, timestamp and frame type share a message,
	// each with its UI24 size.
	ManyTracks
	// ManyTracksManyCodecs is ManyTracks with a FourCC per track, so tracks
	// of different codecs share messages.
	ManyTracksManyCodecs
)

// String names the layout.
func (l Layout) String() string {
	switch l {
	case Legacy:
		return "Legacy"
	case ExHeader:
		return "ExHeader"
	case OBS:
		return "OBS"
	case ManyTracks:
		return "ManyTracks"
	case ManyTracksManyCodecs:
		return "ManyTracksManyCodecs"
	}
	return "Layout(" + strconv.Itoa(int(l)) + ")"
}

// Options tune Publish and Conn.Send.
type Options struct {
	// Realtime paces messages by their DTS against the wall clock; otherwise
	// they go as fast as the connection takes them.
	Realtime bool
	// Loops is how many times the clip is sent (0 means once). Each loop's
	// timestamps follow the previous loop's; sequence starts go once.
	Loops int
	// Start is added to every timestamp.
	Start time.Duration
	// ModEx wraps every ExHeader media message in a TimestampOffsetNano
	// ModEx carrying the sub-millisecond part of its DTS.
	ModEx bool
	// NoMetadata leaves out onMetaData.
	NoMetadata bool
	// SequenceEnd ends each track with a SequenceEnd packet (legacy AVC:
	// end of sequence; legacy audio has none).
	SequenceEnd bool
	// AlwaysCTS sends avc1 and hvc1 frames as CodedFrames with an SI24
	// composition time even when it is 0 (by default those go as
	// CodedFramesX).
	AlwaysCTS bool
	// Shape, if set, sees every media message before it is sent and returns
	// the body to send instead (nil drops the message).
	Shape func(kind Kind, ts time.Duration, body []byte) []byte
}

// Publish dials url, sends tracks in layout, then unpublishes and closes.
// It returns when the clip has been sent, ctx is done (ctx's error), or the
// connection fails (that error).
func Publish(ctx context.Context, url string, layout Layout, tracks []Track, opts Options) error {
	c, err := Dial(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Send(ctx, layout, tracks, opts); err != nil {
		return err
	}
	if err := c.Unpublish(); err != nil {
		return err
	}
	return c.Close()
}

// event is one sample of one track at its absolute DTS.
type event struct {
	track int // index in tracks
	s     *Sample
	dts   time.Duration
}

// Send publishes tracks in layout on c: onMetaData, the sequence starts,
// then every sample in DTS order.
func (c *Conn) Send(ctx context.Context, layout Layout, tracks []Track, opts Options) error {
	if err := checkLayout(layout, tracks); err != nil {
		return err
	}
	p := &sender{c: c, layout: layout, tracks: tracks, opts: opts}
	if !opts.NoMetadata {
		if err := c.WriteMetadata(metadata(layout, tracks)); err != nil {
			return err
		}
	}
	if err := p.sequenceStarts(); err != nil {
		return err
	}

	var clipDur time.Duration
	n := 0
	for _, t := range tracks {
		clipDur = max(clipDur, t.Duration())
		n += len(t.Samples)
	}
	loops := max(opts.Loops, 1)
	events := make([]event, 0, n*loops)
	for l := range loops {
		for i := range tracks {
			for j := range tracks[i].Samples {
				s := &tracks[i].Samples[j]
				events = append(events, event{track: i, s: s, dts: time.Duration(l)*clipDur + s.DTS})
			}
		}
	}
	// DTS order by whole milliseconds (what goes on the wire), then video
	// before audio, then the tracks' order.
	sort.SliceStable(events, func(a, b int) bool {
		ea, eb := events[a], events[b]
		if ma, mb := ea.dts/time.Millisecond, eb.dts/time.Millisecond; ma != mb {
			return ma < mb
		}
		if ka, kb := tracks[ea.track].Kind, tracks[eb.track].Kind; ka != kb {
			return ka < kb
		}
		return ea.track < eb.track
	})

	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := 0; i < len(events); {
		j := i + 1
		if layout == ManyTracks || layout == ManyTracksManyCodecs {
			for j < len(events) && p.sameMessage(events[i], events[j]) {
				j++
			}
		}
		group := events[i:j]
		i = j
		if opts.Realtime {
			if wait := time.Until(start.Add(group[0].dts)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return ctx.Err()
				case <-c.Closed():
					return c.Err()
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.Err(); err != nil {
			return err
		}
		if err := p.frames(group); err != nil {
			return err
		}
	}
	if opts.SequenceEnd {
		if err := p.sequenceEnds(time.Duration(loops) * clipDur); err != nil {
			return err
		}
	}
	return c.Err()
}

func checkLayout(layout Layout, tracks []Track) error {
	seen := map[[2]int]bool{}
	for _, t := range tracks {
		if t.Kind != Video && t.Kind != Audio {
			return fmt.Errorf("ertmptest: track %d: kind %d", t.ID, t.Kind)
		}
		if len(t.FourCC) != 4 {
			return fmt.Errorf("ertmptest: %s track %d: FourCC %q", t.Kind, t.ID, t.FourCC)
		}
		k := [2]int{int(t.Kind), int(t.ID)}
		if seen[k] {
			return fmt.Errorf("ertmptest: two %s tracks with id %d", t.Kind, t.ID)
		}
		seen[k] = true
		switch layout {
		case Legacy:
			if t.ID != 0 {
				return fmt.Errorf("ertmptest: Legacy layout: %s track %d: only track 0", t.Kind, t.ID)
			}
			if (t.Kind == Video && t.FourCC != "avc1") || (t.Kind == Audio && t.FourCC != "mp4a" && t.FourCC != ".mp3") {
				return fmt.Errorf("ertmptest: Legacy layout: %s codec %s has no legacy FLV id", t.Kind, t.FourCC)
			}
		case ExHeader:
			if t.ID != 0 {
				return fmt.Errorf("ertmptest: ExHeader layout: %s track %d: only track 0", t.Kind, t.ID)
			}
		case OBS, ManyTracks, ManyTracksManyCodecs:
		default:
			return fmt.Errorf("ertmptest: %s", layout)
		}
	}
	return nil
}

// sender writes the messages of one Send.
type sender struct {
	c      *Conn
	layout Layout
	tracks []Track
	opts   Options
}

// legacy says whether track t goes as legacy FLV.
func (p *sender) legacy(t *Track) bool {
	switch p.layout {
	case Legacy:
		return true
	case OBS:
		return t.ID == 0 && (t.FourCC == "avc1" || t.FourCC == "mp4a")
	}
	return false
}

// multitrack says whether track t goes in Multitrack messages, and which.
func (p *sender) multitrack(t *Track) (bool, AvMultitrackType) {
	switch p.layout {
	case OBS:
		return t.ID != 0, MultitrackOneTrack
	case ManyTracks:
		return true, MultitrackManyTracks
	case ManyTracksManyCodecs:
		return true, MultitrackManyTracksManyCodecs
	}
	return false, 0
}

func (p *sender) sameMessage(a, b event) bool {
	ta, tb := &p.tracks[a.track], &p.tracks[b.track]
	return ta.Kind == tb.Kind && a.dts/time.Millisecond == b.dts/time.Millisecond &&
		(ta.Kind == Audio || a.s.Key == b.s.Key) &&
		(p.layout == ManyTracksManyCodecs || ta.FourCC == tb.FourCC)
}

func ms(d time.Duration) time.Duration { return d / time.Millisecond * time.Millisecond }

func (p *sender) send(kind Kind, ts time.Duration, body []byte) error {
	if p.opts.Shape != nil {
		if body = p.opts.Shape(kind, ts, body); body == nil {
			return nil
		}
	}
	if kind == Video {
		return p.c.WriteVideo(ts, body)
	}
	return p.c.WriteAudio(ts, body)
}

// sendEx writes an ExHeader message of the tracks idx (one unless
// multitrack), adding the ModEx entry when asked.
func (p *sender) sendEx(ts time.Duration, nanos uint32, m Message) error {
	if p.opts.ModEx {
		m.ModEx = append([]ModEx{TimestampOffsetNano(nanos)}, m.ModEx...)
	}
	body, err := m.Body()
	if err != nil {
		return fmt.Errorf("ertmptest: %s message: %w", m.Kind, err)
	}
	return p.send(m.Kind, ts, body)
}

// groups splits track indexes into the messages that carry them together:
// one per track, except in the ManyTracks layouts.
func (p *sender) groups(idx []int) [][]int {
	var out [][]int
	for _, i := range idx {
		t := &p.tracks[i]
		joined := false
		if mt, typ := p.multitrack(t); mt && typ != MultitrackOneTrack {
			for g := range out {
				u := &p.tracks[out[g][0]]
				if u.Kind == t.Kind && (typ == MultitrackManyTracksManyCodecs || u.FourCC == t.FourCC) {
					out[g] = append(out[g], i)
					joined = true
					break
				}
			}
		}
		if !joined {
			out = append(out, []int{i})
		}
	}
	return out
}

func (p *sender) sequenceStarts() error {
	var idx []int
	for i := range p.tracks {
		if p.tracks[i].Config != nil {
			idx = append(idx, i)
		}
	}
	ts := ms(p.opts.Start)
	for _, g := range p.groups(idx) {
		t := &p.tracks[g[0]]
		if p.legacy(t) {
			if err := p.send(t.Kind, ts, p.legacyBody(t, LegacySequenceHeader, true, 0, t.Config)); err != nil {
				return err
			}
			continue
		}
		m := p.message(t, KeyFrame, SequenceStart)
		for _, i := range g {
			u := &p.tracks[i]
			m.Tracks = append(m.Tracks, TrackData{TrackID: u.ID, FourCC: u.FourCC, Data: u.Config})
		}
		if err := p.sendEx(ts, 0, m); err != nil {
			return err
		}
	}
	return nil
}

func (p *sender) sequenceEnds(end time.Duration) error {
	idx := make([]int, len(p.tracks))
	for i := range idx {
		idx[i] = i
	}
	ts := ms(p.opts.Start + end)
	for _, g := range p.groups(idx) {
		t := &p.tracks[g[0]]
		if p.legacy(t) {
			if t.Kind == Video {
				if err := p.send(Video, ts, p.legacyBody(t, LegacyEndOfSequence, true, 0, nil)); err != nil {
					return err
				}
			}
			continue
		}
		m := p.message(t, KeyFrame, SequenceEnd)
		for _, i := range g {
			u := &p.tracks[i]
			m.Tracks = append(m.Tracks, TrackData{TrackID: u.ID, FourCC: u.FourCC})
		}
		if err := p.sendEx(ts, 0, m); err != nil {
			return err
		}
	}
	return nil
}

func (p *sender) legacyBody(t *Track, pt uint8, key bool, cts int32, data []byte) []byte {
	if t.Kind == Video {
		b, _ := LegacyAVC(key, pt, cts, data) // cts was checked by the caller
		return b
	}
	if t.FourCC == ".mp3" {
		return LegacyMP3(t.SampleRate, t.Channels, data)
	}
	return LegacyAAC(pt, data)
}

// message starts the ExHeader message of track t.
func (p *sender) message(t *Track, ft FrameType, pt PacketType) Message {
	m := Message{Kind: t.Kind, FrameType: ft, PacketType: pt}
	m.Multitrack, m.MultitrackType = p.multitrack(t)
	return m
}

// frames sends one message of the samples in group (one sample unless
// the layout is ManyTracks or ManyTracksManyCodecs).
func (p *sender) frames(group []event) error {
	e := group[0]
	t := &p.tracks[e.track]
	abs := p.opts.Start + e.dts
	ts := ms(abs)
	nanos := uint32(abs - ts)
	cts := func(e event) int32 {
		return int32((ms(p.opts.Start+e.dts+e.s.CTS) - ts) / time.Millisecond)
	}
	if p.legacy(t) {
		c := cts(e)
		if c < -(1<<23) || c >= 1<<23 {
			return fmt.Errorf("ertmptest: composition time %d ms does not fit an SI24", c)
		}
		return p.send(t.Kind, ts, p.legacyBody(t, LegacyNALU, e.s.Key, c, e.s.Data))
	}
	ft := InterFrame
	if e.s.Key {
		ft = KeyFrame
	}
	pt := CodedFrames
	if len(group) == 1 && t.Kind == Video && hasCTS(t.FourCC) && cts(e) == 0 && !p.opts.AlwaysCTS {
		pt = CodedFramesX
	}
	m := p.message(t, ft, pt)
	for _, e := range group {
		u := &p.tracks[e.track]
		m.Tracks = append(m.Tracks, TrackData{TrackID: u.ID, FourCC: u.FourCC, CTS: cts(e), Data: e.s.Data})
	}
	return p.sendEx(ts, nanos, m)
}

// metadata builds onMetaData: track 0 of each kind at the top level, the
// others in videoTrackIdInfoMap and audioTrackIdInfoMap keyed by trackId.
func metadata(layout Layout, tracks []Track) ECMAArray {
	legacyOK := layout == Legacy || layout == OBS
	codecID := func(t *Track) any {
		if legacyOK && t.ID == 0 {
			switch t.FourCC {
			case "avc1":
				return 7
			case "mp4a":
				return 10
			case ".mp3":
				if layout == Legacy {
					return 2
				}
			}
		}
		return FourCCNumber(t.FourCC)
	}
	describe := func(t *Track) []Prop {
		if t.Kind == Video {
			return []Prop{
				{"width", t.Width}, {"height", t.Height}, {"framerate", t.FrameRate()},
				{"videodatarate", t.Bitrate()}, {"videocodecid", codecID(t)},
			}
		}
		return []Prop{
			{"audiodatarate", t.Bitrate()}, {"audiosamplerate", t.SampleRate}, {"audiosamplesize", 16},
			{"stereo", t.Channels == 2}, {"channels", t.Channels}, {"audiocodecid", codecID(t)},
		}
	}
	props := ECMAArray{{"duration", 0}}
	var vmap, amap Object
	for i := range tracks {
		t := &tracks[i]
		switch {
		case t.ID == 0:
			props = append(props, describe(t)...)
		case t.Kind == Video:
			vmap = append(vmap, Prop{strconv.Itoa(int(t.ID)), Object(describe(t))})
		default:
			amap = append(amap, Prop{strconv.Itoa(int(t.ID)), Object(describe(t))})
		}
	}
	if vmap != nil {
		props = append(props, Prop{"videoTrackIdInfoMap", vmap})
	}
	if amap != nil {
		props = append(props, Prop{"audioTrackIdInfoMap", amap})
	}
	return append(props, Prop{"encoder", "fount ertmptest"})
}
