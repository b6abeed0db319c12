package ertmptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
)

type rxPacket struct {
	ts time.Duration
	part
}

type trackKey struct {
	kind  Kind
	track uint8
}

// received splits the recorded media messages into per-track packets, and
// returns the messages' parts too.
func received(t *testing.T, msgs []recorded) (map[trackKey][]rxPacket, [][]part) {
	t.Helper()
	out := map[trackKey][]rxPacket{}
	var all [][]part
	for _, m := range media(msgs) {
		parts, err := walk(m.typ, m.body)
		if err != nil {
			t.Fatalf("message at %s (% x...): %v", m.ts, m.body[:min(16, len(m.body))], err)
		}
		all = append(all, parts)
		for _, p := range parts {
			k := trackKey{p.kind, p.track}
			out[k] = append(out[k], rxPacket{m.ts, p})
		}
	}
	return out, all
}

// expect describes how one track should have been sent.
type expect struct {
	legacy bool
	mt     int // multitrack type, -1 if none
	modEx  bool
}

// checkTrack compares what arrived for tr with its samples: sequence start
// body, then every frame with its data, keyframe flag, timestamp and
// composition time, in order.
func checkTrack(t *testing.T, got map[trackKey][]rxPacket, tr Track, e expect, loops int) {
	t.Helper()
	name := fmt.Sprintf("%s track %d (%s)", tr.Kind, tr.ID, tr.FourCC)
	pk := got[trackKey{tr.Kind, tr.ID}]
	if tr.Config != nil {
		if len(pk) == 0 {
			t.Fatalf("%s: nothing received", name)
		}
		s := pk[0]
		if !bytes.Equal(s.data, tr.Config) || s.pt != 0 || s.ts != 0 {
			t.Errorf("%s: first packet is not the sequence start: pt %d ts %s data % x", name, s.pt, s.ts, s.data[:min(8, len(s.data))])
		}
		if tr.Kind == Video && s.ft != 1 {
			t.Errorf("%s: sequence start frame type %d", name, s.ft)
		}
		pk = pk[1:]
	}
	n := len(tr.Samples) * loops
	if len(pk) != n {
		t.Fatalf("%s: %d frames received, want %d", name, len(pk), n)
	}
	for i, p := range pk {
		s := tr.Samples[i%len(tr.Samples)]
		dts := time.Duration(i/len(tr.Samples))*tr.Duration() + s.DTS
		if p.legacy != e.legacy || p.mt != e.mt || p.fourcc != tr.FourCC {
			t.Fatalf("%s frame %d: legacy %v multitrack %d FourCC %q, want %v %d %q", name, i, p.legacy, p.mt, p.fourcc, e.legacy, e.mt, tr.FourCC)
		}
		if !bytes.Equal(p.data, s.Data) {
			t.Fatalf("%s frame %d: data differs (%d bytes, want %d)", name, i, len(p.data), len(s.Data))
		}
		if want := dts.Truncate(time.Millisecond); p.ts != want && loops == 1 {
			t.Errorf("%s frame %d: timestamp %s, want %s", name, i, p.ts, want)
		}
		if e.modEx && !e.legacy {
			if want := int(dts - dts.Truncate(time.Millisecond)); p.nanos != want && loops == 1 {
				t.Errorf("%s frame %d: TimestampOffsetNano %d, want %d", name, i, p.nanos, want)
			}
		} else if p.nanos != -1 {
			t.Errorf("%s frame %d: unexpected ModEx", name, i)
		}
		if tr.Kind == Video {
			if want := map[bool]uint8{true: 1, false: 2}[s.Key]; p.ft != want {
				t.Errorf("%s frame %d: frame type %d, want %d (key %v)", name, i, p.ft, want, s.Key)
			}
			wantCTS := int32(((dts + s.CTS).Truncate(time.Millisecond) - dts.Truncate(time.Millisecond)) / time.Millisecond)
			if p.cts != wantCTS {
				t.Errorf("%s frame %d: composition time %d, want %d", name, i, p.cts, wantCTS)
			}
			switch {
			case p.legacy:
				if p.pt != 1 {
					t.Errorf("%s frame %d: AVC packet type %d", name, i, p.pt)
				}
			case tr.FourCC == "avc1" || tr.FourCC == "hvc1":
				if (wantCTS == 0 && e.mt <= 0) != (p.pt == 3) || (p.pt != 1 && p.pt != 3) {
					t.Errorf("%s frame %d: packet type %d with composition time %d", name, i, p.pt, wantCTS)
				}
			default: // AV1 and VP9: CodedFrames, never CodedFramesX
				if p.pt != 1 {
					t.Errorf("%s frame %d: packet type %d, want CodedFrames", name, i, p.pt)
				}
			}
		} else if p.pt != 1 {
			t.Errorf("%s frame %d: packet type %d", name, i, p.pt)
		}
	}
}

// metadataOf returns the onMetaData properties of the first data message.
func metadataOf(t *testing.T, msgs []recorded) amf0.Object {
	t.Helper()
	for _, m := range msgs {
		if m.typ != 18 {
			continue
		}
		d, err := amf0.Unmarshal(m.body)
		if err != nil {
			t.Fatalf("data message: %v", err)
		}
		if len(d) != 3 || d[0] != "@setDataFrame" || d[1] != "onMetaData" {
			t.Fatalf("data message %v", d)
		}
		switch o := d[2].(type) {
		case amf0.ECMAArray:
			return amf0.Object(o)
		}
		t.Fatalf("onMetaData argument %T, want an ECMA array", d[2])
	}
	t.Fatal("no onMetaData")
	return nil
}

func publish(t *testing.T, layout Layout, tracks []Track, opts Options) []recorded {
	t.Helper()
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Publish(ctx, s.url("s"), layout, tracks, opts); err != nil {
		t.Fatalf("publish: %v", err)
	}
	msgs, err := s.wait()
	if err != nil {
		t.Fatalf("test server: %v", err)
	}
	return msgs
}

func TestPublishLegacy(t *testing.T) {
	tracks := clip(t, ClipSpec{Video: "avc1", Audio: "mp4a", Duration: time.Second, BFrames: 2})
	msgs := publish(t, Legacy, tracks, Options{ModEx: true}) // ModEx does not apply to legacy messages
	got, _ := received(t, msgs)
	for _, tr := range tracks {
		checkTrack(t, got, tr, expect{legacy: true, mt: -1}, 1)
	}
	v, _ := Find(tracks, Video)
	md := metadataOf(t, msgs)
	if id, _ := md.GetFloat64("videocodecid"); id != 7 {
		t.Errorf("videocodecid %v, want 7", id)
	}
	if id, _ := md.GetFloat64("audiocodecid"); id != 10 {
		t.Errorf("audiocodecid %v, want 10", id)
	}
	if w, _ := md.GetFloat64("width"); int(w) != v.Width {
		t.Errorf("width %v", w)
	}
	// The first video message is the legacy AVC sequence header, byte for byte.
	for _, m := range media(msgs) {
		if m.typ == 9 {
			if want := append([]byte{0x17, 0, 0, 0, 0}, v.Config...); !bytes.Equal(m.body, want) {
				t.Errorf("first video message % x, want % x", m.body, want)
			}
			break
		}
	}
	if err := Publish(context.Background(), "rtmp://127.0.0.1:1/live/x", Legacy, []Track{{Kind: Video, FourCC: "hvc1"}}, Options{}); err == nil {
		t.Error("Legacy layout accepts HEVC")
	}
}

func TestPublishExHeader(t *testing.T) {
	for _, c := range []struct {
		video, audio string
		modEx        bool
	}{
		{"hvc1", "Opus", false}, {"av01", "fLaC", true}, {"vp09", "ac-3", false}, {"avc1", "ec-3", true}, {"", ".mp3", false}, {"", "mp4a", true},
	} {
		t.Run(c.video+c.audio, func(t *testing.T) {
			tracks := clip(t, ClipSpec{Video: c.video, Audio: c.audio, Duration: time.Second, BFrames: 2})
			msgs := publish(t, ExHeader, tracks, Options{ModEx: c.modEx})
			got, _ := received(t, msgs)
			for _, tr := range tracks {
				checkTrack(t, got, tr, expect{mt: -1, modEx: c.modEx}, 1)
			}
			md := metadataOf(t, msgs)
			for _, tr := range tracks {
				key := map[Kind]string{Video: "videocodecid", Audio: "audiocodecid"}[tr.Kind]
				if id, _ := md.GetFloat64(key); id != FourCCNumber(tr.FourCC) {
					t.Errorf("%s %v, want the FourCC number %v", key, id, FourCCNumber(tr.FourCC))
				}
			}
			// The first message of each kind, byte for byte: ExHeader
			// sequence start (video: frame type 1), or for a codec without
			// one its first coded frame.
			first := map[uint8]bool{}
			for _, m := range media(msgs) {
				if first[m.typ] {
					continue
				}
				first[m.typ] = true
				kind := map[uint8]Kind{8: Audio, 9: Video}[m.typ]
				tr, _ := Find(tracks, kind)
				var want []byte
				switch {
				case kind == Video && c.modEx:
					want = append([]byte{0x97, 0x02, 0, 0, 0, 0x00}, tr.FourCC...) // ModEx, nanos 0, then SequenceStart
				case kind == Video:
					want = append([]byte{0x90}, tr.FourCC...)
				case tr.Config == nil && c.modEx:
					want = append([]byte{0x97, 0x02, 0, 0, 0, 0x01}, tr.FourCC...) // CodedFrames
				case tr.Config == nil:
					want = append([]byte{0x91}, tr.FourCC...)
				case c.modEx:
					want = append([]byte{0x97, 0x02, 0, 0, 0, 0x00}, tr.FourCC...)
				default:
					want = append([]byte{0x90}, tr.FourCC...)
				}
				if tr.Config != nil {
					want = append(want, tr.Config...)
				} else {
					want = append(want, tr.Samples[0].Data...)
				}
				if !bytes.Equal(m.body, want) {
					t.Errorf("first %s message\n got % x\nwant % x", kind, m.body[:min(24, len(m.body))], want[:min(24, len(want))])
				}
			}
		})
	}
}

func TestPublishOBS(t *testing.T) {
	main := clip(t, ClipSpec{Video: "avc1", Audio: "mp4a", Duration: time.Second, BFrames: 2})
	low := clip(t, ClipSpec{Video: "avc1", Width: 160, Height: 90, VideoKbps: 100, Duration: time.Second, GOP: 60})
	av1 := clip(t, ClipSpec{Video: "av01", Width: 160, Height: 90, VideoKbps: 100, Duration: time.Second})
	alt := clip(t, ClipSpec{Audio: "mp4a", ToneHz: 880, AudioKbps: 96, Duration: time.Second})
	v0, _ := Find(main, Video)
	a0, _ := Find(main, Audio)
	v1, _ := Find(low, Video)
	v2, _ := Find(av1, Video)
	a1, _ := Find(alt, Audio)
	tracks := []Track{v0, a0, v1.WithID(1), v2.WithID(2), a1.WithID(1)}
	msgs := publish(t, OBS, tracks, Options{})
	got, _ := received(t, msgs)
	checkTrack(t, got, v0, expect{legacy: true, mt: -1}, 1)
	checkTrack(t, got, a0, expect{legacy: true, mt: -1}, 1)
	for _, tr := range tracks[2:] {
		checkTrack(t, got, tr, expect{mt: 0}, 1)
	}
	// OneTrack sequence starts, byte for byte: video 0x90|6, then
	// OneTrack<<4|SequenceStart, FourCC, trackId; audio 0x90|5.
	var seen int
	for _, m := range media(msgs) {
		for _, want := range [][]byte{
			append(append([]byte{0x96, 0x00}, "avc1\x01"...), v1.Config...),
			append(append([]byte{0x96, 0x00}, "av01\x02"...), v2.Config...),
			append(append([]byte{0x95, 0x00}, "mp4a\x01"...), a1.Config...),
		} {
			if bytes.Equal(m.body, want) {
				seen++
			}
		}
	}
	if seen != 3 {
		t.Errorf("%d of 3 OneTrack sequence starts found byte for byte", seen)
	}
	md := metadataOf(t, msgs)
	vm, ok := md.Get("videoTrackIdInfoMap")
	if !ok {
		t.Fatal("no videoTrackIdInfoMap")
	}
	m1, _ := vm.(amf0.Object).Get("2")
	if id, _ := m1.(amf0.Object).GetFloat64("videocodecid"); id != FourCCNumber("av01") {
		t.Errorf("videoTrackIdInfoMap[2].videocodecid %v", id)
	}
	if w, _ := m1.(amf0.Object).GetFloat64("width"); w != 160 {
		t.Errorf("videoTrackIdInfoMap[2].width %v", w)
	}
	if _, ok := md.Get("audioTrackIdInfoMap"); !ok {
		t.Error("no audioTrackIdInfoMap")
	}
}

func TestPublishManyTracks(t *testing.T) {
	a := clip(t, ClipSpec{Video: "avc1", Audio: "mp4a", Duration: time.Second})
	b := clip(t, ClipSpec{Video: "avc1", Audio: "mp4a", Width: 160, Height: 90, VideoKbps: 100, ToneHz: 660, Duration: time.Second})
	va, _ := Find(a, Video)
	aa, _ := Find(a, Audio)
	vb, _ := Find(b, Video)
	ab, _ := Find(b, Audio)
	tracks := []Track{va, aa, vb.WithID(1), ab.WithID(3)}
	msgs := publish(t, ManyTracks, tracks, Options{ModEx: true, SequenceEnd: true})
	got, all := received(t, msgs)
	// The last message of each kind is a SequenceEnd of both tracks.
	for _, k := range []trackKey{{Video, 0}, {Video, 1}, {Audio, 0}, {Audio, 3}} {
		pk := got[k]
		if last := pk[len(pk)-1]; last.pt != 2 || len(last.data) != 0 {
			t.Errorf("%v: last packet type %d", k, last.pt)
		}
		got[k] = pk[:len(pk)-1]
	}
	for _, tr := range tracks {
		checkTrack(t, got, tr, expect{mt: 1, modEx: true}, 1)
	}
	// Tracks of one timestamp share a message.
	shared := map[Kind]int{}
	for _, parts := range all {
		if len(parts) == 2 && parts[0].pt == 1 {
			shared[parts[0].kind]++
		}
	}
	if shared[Video] != len(va.Samples) || shared[Audio] != len(aa.Samples) {
		t.Errorf("messages carrying both tracks: %v, want %d video and %d audio", shared, len(va.Samples), len(aa.Samples))
	}
}

func TestPublishManyTracksManyCodecs(t *testing.T) {
	var tracks []Track
	for i, c := range []struct{ video, audio string }{{"hvc1", "mp4a"}, {"avc1", "Opus"}, {"av01", "fLaC"}, {"vp09", ""}} {
		cl := clip(t, ClipSpec{Video: c.video, Audio: c.audio, Width: 160, Height: 90, VideoKbps: 100, Duration: time.Second})
		for _, tr := range cl {
			tracks = append(tracks, tr.WithID(uint8(i)))
		}
	}
	msgs := publish(t, ManyTracksManyCodecs, tracks, Options{AlwaysCTS: true})
	got, all := received(t, msgs)
	for _, tr := range tracks {
		checkTrack(t, got, tr, expect{mt: 2}, 1)
	}
	mixed := 0
	for _, parts := range all {
		if len(parts) == 4 && parts[0].kind == Video && parts[0].pt == 1 {
			mixed++
		}
	}
	if mixed == 0 {
		t.Error("no message carries all four video codecs")
	}
}

func TestPublishRealtimeLoops(t *testing.T) {
	tracks := clip(t, ClipSpec{Audio: "mp4a", Duration: 500 * time.Millisecond})
	tr := tracks[0]
	start := time.Now()
	msgs := publish(t, ExHeader, tracks, Options{Realtime: true, Loops: 2, Start: 10 * time.Second})
	took := time.Since(start)
	last := tr.Duration() + tr.Samples[len(tr.Samples)-1].DTS
	if took < last-50*time.Millisecond || took > last+2*time.Second {
		t.Errorf("2 loops of %s took %s", tr.Duration(), took)
	}
	m := media(msgs)
	if len(m) != 1+2*len(tr.Samples) {
		t.Fatalf("%d messages", len(m))
	}
	if m[0].ts != 10*time.Second {
		t.Errorf("sequence start at %s", m[0].ts)
	}
	second := m[1+len(tr.Samples)]
	if want := (10*time.Second + tr.Duration()).Truncate(time.Millisecond); second.ts != want {
		t.Errorf("second loop starts at %s, want %s", second.ts, want)
	}
	for i := 2; i < len(m); i++ {
		if m[i].ts < m[i-1].ts {
			t.Fatalf("timestamp goes back at %d: %s after %s", i, m[i].ts, m[i-1].ts)
		}
	}
}

func TestPublishCancel(t *testing.T) {
	tracks := clip(t, ClipSpec{Audio: "mp4a", Duration: 2 * time.Second})
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Publish(ctx, s.url("c"), ExHeader, tracks, Options{Realtime: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("publish returned %v, want the context's error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("publish took %s to stop", d)
	}
	s.wait()
}

func TestPublishServerCloses(t *testing.T) {
	tracks := clip(t, ClipSpec{Audio: "mp4a", Duration: 2 * time.Second})
	s := startServer(t)
	s.closeAt = 5
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Publish(ctx, s.url("x"), ExHeader, tracks, Options{Realtime: true})
	if err == nil {
		t.Fatal("publish to a server that closed the connection returned nil")
	}
	t.Logf("publish: %v", err)
}

func TestShape(t *testing.T) {
	tracks := clip(t, ClipSpec{Audio: "mp4a", Duration: 200 * time.Millisecond})
	n := 0
	msgs := publish(t, ExHeader, tracks, Options{NoMetadata: true, Shape: func(k Kind, ts time.Duration, body []byte) []byte {
		n++
		if n == 2 {
			return nil // dropped
		}
		if n == 3 {
			return []byte{0x9F} // hand-shaped
		}
		return body
	}})
	m := media(msgs)
	if len(m) != n-1 || !bytes.Equal(m[1].body, []byte{0x9F}) {
		t.Errorf("%d messages of %d, second % x", len(m), n, m[1].body)
	}
	for _, r := range msgs {
		if r.typ == 18 {
			t.Error("onMetaData sent with NoMetadata")
		}
	}
}
