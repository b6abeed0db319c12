package segmenter

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/asticode/go-astits"

	"github.com/fount-live/fount/segmenter/codec"
)

// clipSet hands out each codec's clip, encoded once per test binary and
// shared by the tests (read-only: the segmenter never writes Frame.Data).
type clipSet struct{ t testing.TB }

var sharedClips struct {
	sync.Mutex
	m map[codec.ID]clip
}

func newClipSet(t testing.TB) *clipSet { return &clipSet{t: t} }

func (cs *clipSet) get(id codec.ID) clip {
	sharedClips.Lock()
	defer sharedClips.Unlock()
	if c, ok := sharedClips.m[id]; ok {
		return c
	}
	dir, err := os.MkdirTemp("", "fount-clip-")
	if err != nil {
		cs.t.Fatal(err)
	}
	defer os.RemoveAll(dir) // the clip is in memory once read
	c := makeClip(cs.t, dir, id)
	if sharedClips.m == nil {
		sharedClips.m = map[codec.ID]clip{}
	}
	sharedClips.m[id] = c
	return c
}

// TestRealEncoders muxes real encoder output of every codec in every format
// that carries it, and has ffmpeg decode each segment on its own and the
// whole stream: no decoder message, a keyframe first in every segment,
// every video frame out that went in, timestamps continuous.
func TestRealEncoders(t *testing.T) {
	needFFmpeg(t)
	cs := newClipSet(t)
	type pair struct{ v, a codec.ID }
	var cases []pair
	for _, v := range []codec.ID{codec.AVC, codec.HEVC, codec.AV1, codec.VP9} {
		cases = append(cases, pair{v, codec.AAC})
	}
	for _, a := range []codec.ID{codec.Opus, codec.FLAC, codec.AC3, codec.EAC3, codec.MP3} {
		cases = append(cases, pair{codec.AVC, a}, pair{codec.Unknown, a})
	}
	for _, tc := range cases {
		var v, a clip
		if tc.v != codec.Unknown {
			v = cs.get(tc.v)
		}
		a = cs.get(tc.a)
		for _, format := range []Format{FormatTS, FormatFMP4} {
			name := fmt.Sprintf("%v+%v/%v", tc.v, tc.a, format)
			if tc.v == codec.Unknown {
				name = fmt.Sprintf("%v/%v", tc.a, format)
			}
			t.Run(name, func(t *testing.T) {
				carried := CanCarry(format, tc.a) && (tc.v == codec.Unknown || CanCarry(format, tc.v))
				s, c := muxClips(t, format, v, a)
				if !carried {
					return // muxClips checked the refusal
				}
				checkClipOutput(t, format, s, c, v, a)
			})
		}
	}
}

// muxClips feeds the clips (v may be empty) to a new Segmenter.
func muxClips(t *testing.T, format Format, v, a clip) (*Segmenter, *collect) {
	t.Helper()
	cfg := Config{Format: format, TargetDuration: time.Second, Logger: slog.New(&logRecorder{})}
	if format == FormatFMP4 {
		cfg.PartDuration = 250 * time.Millisecond
	}
	cfg.Expect = Audio
	if v.video != nil {
		cfg.Expect |= Video
	}
	c := &collect{}
	s := New(cfg, c)
	if v.video != nil {
		err := s.SetVideoConfig(v.video)
		if !CanCarry(format, v.video.Codec) {
			if !errors.Is(err, ErrNotCarried) {
				t.Fatalf("SetVideoConfig(%v) in %v: %v", v.video.Codec, format, err)
			}
			return s, c
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.SetAudioConfig(a.audio)
	if !CanCarry(format, a.audio.Codec) {
		if !errors.Is(err, ErrNotCarried) {
			t.Fatalf("SetAudioConfig(%v) in %v: %v", a.audio.Codec, format, err)
		}
		return s, c
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range interleave(v.frames, a.frames) {
		if err := s.WriteFrame(f); err != nil {
			t.Fatalf("frame %v %v: %v", f.Kind, f.DTS, err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	return s, c
}

func checkClipOutput(t *testing.T, format Format, s *Segmenter, c *collect, v, a clip) {
	t.Helper()
	if len(c.segs) < 3 {
		t.Fatalf("%d segments", len(c.segs))
	}
	in := s.Info()
	if in.Audio == nil || in.Audio.Codec != a.audio.Codec || (v.video != nil && (in.Video == nil || in.Video.Codec != v.video.Codec)) {
		t.Fatalf("info %+v", in)
	}
	want := a.audio.Codecs
	if v.video != nil {
		want = v.video.Codecs + "," + want
	}
	if in.Codecs != want {
		t.Errorf("CODECS %q, want %q", in.Codecs, want)
	}
	dir := t.TempDir()
	ext := ".ts"
	if format == FormatFMP4 {
		ext = ".mp4"
		if len(c.inits) != 1 {
			t.Fatalf("%d inits", len(c.inits))
		}
	}
	var all []byte
	if format == FormatFMP4 {
		all = append(all, c.inits[0].Data...)
	}
	for i, seg := range c.segs {
		var b []byte
		if format == FormatFMP4 {
			b = append(b, c.inits[seg.InitVersion].Data...)
		}
		b = append(b, seg.Data...)
		all = append(all, seg.Data...)
		name := filepath.Join(dir, fmt.Sprintf("seg%d%s", i, ext))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		decodeClean(t, name)
		p := probe(t, name)
		if v.video != nil {
			if pk := p.packets["video"]; len(pk) == 0 || !pk[0].key {
				t.Errorf("segment %d: first video packet not a keyframe (%d packets)", i, len(pk))
			}
		}
	}
	name := filepath.Join(dir, "all"+ext)
	if err := os.WriteFile(name, all, 0o644); err != nil {
		t.Fatal(err)
	}
	decodeClean(t, name)
	p := probe(t, name)
	if got := p.codecs["audio"]; got != ffmpegName[a.audio.Codec] {
		t.Errorf("audio codec %q, want %q", got, ffmpegName[a.audio.Codec])
	}
	dropped := int(in.DroppedFrames)
	if v.video != nil {
		if got := p.codecs["video"]; got != ffmpegName[v.video.Codec] {
			t.Errorf("video codec %q, want %q", got, ffmpegName[v.video.Codec])
		}
		if n := len(p.packets["video"]); n != len(v.frames) {
			t.Errorf("%d video packets out, %d in", n, len(v.frames))
		}
		checkContinuous(t, "video", p.packets["video"], 70*time.Millisecond)
	}
	if n := len(p.packets["audio"]); n != len(a.frames)-dropped || n < len(a.frames)*9/10 {
		t.Errorf("%d audio packets out, %d in, %d dropped", n, len(a.frames), dropped)
	}
	checkContinuous(t, "audio", p.packets["audio"], 150*time.Millisecond)
}

// checkContinuous checks that decode times only go forward, by at most
// maxGap, over (nearly) the clip's length.
func checkContinuous(t *testing.T, kind string, pk []probePacket, maxGap time.Duration) {
	t.Helper()
	if len(pk) < 2 {
		t.Fatalf("%s: %d packets", kind, len(pk))
	}
	for i := 1; i < len(pk); i++ {
		if d := pk[i].dts - pk[i-1].dts; d <= 0 || d > maxGap {
			t.Errorf("%s packet %d: dts %v after %v", kind, i, pk[i].dts, pk[i-1].dts)
			return
		}
	}
	if span := pk[len(pk)-1].dts - pk[0].dts; span < 2700*time.Millisecond {
		t.Errorf("%s spans %v", kind, span)
	}
}

// TestZeroAllocsPerFrame checks every codec path of both muxers, parts and
// one reused segment buffer as fount runs them, for allocations in the
// steady state: the clip is looped on a continuing timeline.
func TestZeroAllocsPerFrame(t *testing.T) {
	needFFmpeg(t)
	if testing.Short() {
		t.Skip("encodes clips")
	}
	cs := newClipSet(t)
	for _, id := range []codec.ID{codec.AVC, codec.HEVC, codec.AV1, codec.VP9, codec.AAC, codec.Opus, codec.FLAC, codec.AC3, codec.EAC3, codec.MP3} {
		cl := cs.get(id)
		for _, format := range []Format{FormatTS, FormatFMP4} {
			if !CanCarry(format, id) {
				continue
			}
			t.Run(fmt.Sprintf("%v/%v", id, format), func(t *testing.T) {
				next := loopClip(t, format, cl)
				for i := 0; i < 3*len(cl.frames); i++ { // warm up: buffers settle
					next()
				}
				if n := testing.AllocsPerRun(2*len(cl.frames), next); n != 0 {
					t.Errorf("%v allocations per frame", n)
				}
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				frames := 2 * len(cl.frames)
				for i := 0; i < frames; i++ {
					next()
				}
				runtime.ReadMemStats(&m1)
				t.Logf("%d mallocs in %d frames", m1.Mallocs-m0.Mallocs, frames)
			})
		}
	}
}

// loopClip returns a func that writes the clip's next frame to a new
// Segmenter, looping the clip on a continuing timeline.
func loopClip(t testing.TB, format Format, cl clip) func() {
	cfg := Config{Format: format, PartDuration: 200 * time.Millisecond, ReuseBuffer: true,
		TargetDuration: time.Second, Logger: slog.New(&logRecorder{})}
	s := New(cfg, discard{})
	if cl.video != nil {
		cfg.Expect = Video
		if err := s.SetVideoConfig(cl.video); err != nil {
			t.Fatal(err)
		}
	} else if err := s.SetAudioConfig(cl.audio); err != nil {
		t.Fatal(err)
	}
	fr := cl.frames
	period := fr[len(fr)-1].DTS - fr[0].DTS + (fr[1].DTS - fr[0].DTS)
	var i int
	var offset time.Duration
	return func() {
		f := fr[i]
		f.DTS += offset
		f.PTS += offset
		if err := s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		if i++; i == len(fr) {
			i, offset = 0, offset+period
		}
	}
}

// shifted returns frames moved by d on the timeline.
func shifted(frames []Frame, d time.Duration) []Frame {
	out := make([]Frame, len(frames))
	for i, f := range frames {
		f.DTS += d
		f.PTS += d
		out[i] = f
	}
	return out
}

// TestCodecChange publishes H.264+AAC, then, on the same timeline, HEVC
// with another audio codec (AC-3 in TS, Opus in fMP4): the first segment of
// the new codecs is a discontinuity (fMP4: with a new Init), starts with a
// keyframe and decodes as the new codecs; nothing of the new codecs went
// into the segments before.
func TestCodecChange(t *testing.T) {
	needFFmpeg(t)
	cs := newClipSet(t)
	avc, aac, hevc := cs.get(codec.AVC), cs.get(codec.AAC), cs.get(codec.HEVC)
	for _, format := range []Format{FormatTS, FormatFMP4} {
		a2 := cs.get(codec.AC3)
		if format == FormatFMP4 {
			a2 = cs.get(codec.Opus)
		}
		t.Run(format.String(), func(t *testing.T) {
			c := &collect{}
			s := New(Config{Format: format, TargetDuration: time.Second, Expect: Video | Audio,
				Logger: slog.New(&logRecorder{})}, c)
			write := func(v, a clip, shift time.Duration) {
				if err := s.SetVideoConfig(v.video); err != nil {
					t.Fatal(err)
				}
				if err := s.SetAudioConfig(a.audio); err != nil {
					t.Fatal(err)
				}
				for _, f := range interleave(shifted(v.frames, shift), shifted(a.frames, shift)) {
					if err := s.WriteFrame(f); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(avc, aac, 0)
			write(hevc, a2, 3*time.Second+100*time.Millisecond)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if in := s.Info(); in.ConfigChanges != 1 || in.Video.Codec != codec.HEVC || in.Audio.Codec != a2.audio.Codec {
				t.Fatalf("info %+v", in)
			}
			if format == FormatFMP4 && len(c.inits) != 2 {
				t.Fatalf("%d inits", len(c.inits))
			}
			dir := t.TempDir()
			changed := false
			for i, seg := range c.segs {
				if seg.Discontinuity {
					if changed {
						t.Fatalf("segment %d: a second discontinuity", i)
					}
					changed = true
				}
				wantV, wantA := "h264", "aac"
				if changed {
					wantV, wantA = "hevc", ffmpegName[a2.audio.Codec]
				}
				var b []byte
				if format == FormatFMP4 {
					if want := 0; changed {
						want = 1
						if seg.InitVersion != want {
							t.Fatalf("segment %d: init %d", i, seg.InitVersion)
						}
					}
					b = append(b, c.inits[seg.InitVersion].Data...)
				}
				b = append(b, seg.Data...)
				name := filepath.Join(dir, fmt.Sprintf("seg%d", i))
				if err := os.WriteFile(name, b, 0o644); err != nil {
					t.Fatal(err)
				}
				decodeClean(t, name)
				p := probe(t, name)
				if p.codecs["video"] != wantV || (p.codecs["audio"] != wantA && len(p.packets["audio"]) > 0) {
					t.Errorf("segment %d: %v, want %s and %s", i, p.codecs, wantV, wantA)
				}
				if pk := p.packets["video"]; len(pk) == 0 || !pk[0].key {
					t.Errorf("segment %d: does not start with a keyframe", i)
				}
				if format == FormatTS {
					checkPMT(t, i, demuxTS(t, seg.Data).pmt, changed)
				}
			}
			if !changed {
				t.Fatal("no discontinuity")
			}
		})
	}
}

// TestVideoInfo checks what Info says of each video codec's real stream,
// and that the fMP4 sample entry has the picture size (VP9's record has
// none: the first keyframe gives it). An HEVC clip flagged PQ is HDR.
func TestVideoInfo(t *testing.T) {
	needFFmpeg(t)
	cs := newClipSet(t)
	for _, id := range []codec.ID{codec.AVC, codec.HEVC, codec.AV1, codec.VP9} {
		cl := cs.get(id)
		checkVideoInfo(t, cl, codec.TransferSDR)
	}
	pq := makeClip(t, t.TempDir(), codec.HEVC,
		"-x265-params", "log-level=error:keyint=30:min-keyint=30:scenecut=0:open-gop=0:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc",
		"-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc")
	checkVideoInfo(t, pq, codec.TransferPQ)
}

func checkVideoInfo(t *testing.T, cl clip, tr codec.Transfer) {
	t.Helper()
	c := &collect{}
	s := New(Config{Format: FormatFMP4, Expect: Video, Logger: slog.New(&logRecorder{})}, c)
	if err := s.SetVideoConfig(cl.video); err != nil {
		t.Fatal(err)
	}
	for _, f := range cl.frames {
		if err := s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	v := s.Info().Video
	if v == nil || v.Codec != cl.video.Codec || v.Width != 320 || v.Height != 240 || v.Transfer != tr ||
		v.Codecs != cl.video.Codecs || s.Info().Codecs != cl.video.Codecs {
		t.Fatalf("%v: info %+v, want 320x240 %v", cl.video.Codec, v, tr)
	}
	if len(c.inits) != 1 {
		t.Fatalf("%v: %d inits", cl.video.Codec, len(c.inits))
	}
	f := decodeMP4(t, c.inits[0].Data)
	entry := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Children[0].(*mp4.VisualSampleEntryBox)
	want := map[codec.ID]string{codec.AVC: "avc1", codec.HEVC: "hvc1", codec.AV1: "av01", codec.VP9: "vp09"}[cl.video.Codec]
	if entry.Type() != want || entry.Width != 320 || entry.Height != 240 {
		t.Fatalf("%v: sample entry %s %dx%d", cl.video.Codec, entry.Type(), entry.Width, entry.Height)
	}
	t.Logf("%v: %s %dx%d %v", cl.video.Codec, v.Codecs, v.Width, v.Height, v.Transfer)
}

// checkPMT checks the stream types before (H.264, AAC) and after (HEVC,
// AC-3 with its registration descriptor) the codec change.
func checkPMT(t *testing.T, i int, pmt *astits.PMTData, changed bool) {
	t.Helper()
	want := map[uint16]astits.StreamType{videoPID: astits.StreamTypeH264Video, audioPID: astits.StreamTypeAACAudio}
	if changed {
		want = map[uint16]astits.StreamType{videoPID: astits.StreamTypeH265Video, audioPID: astits.StreamTypeAC3Audio}
	}
	if pmt == nil || len(pmt.ElementaryStreams) != 2 {
		t.Fatalf("segment %d: PMT %+v", i, pmt)
	}
	for _, es := range pmt.ElementaryStreams {
		if es.StreamType != want[es.ElementaryPID] {
			t.Errorf("segment %d: PID %#x stream type %#x, want %#x", i, es.ElementaryPID, es.StreamType, want[es.ElementaryPID])
		}
		if es.StreamType == astits.StreamTypeAC3Audio {
			ds := es.ElementaryStreamDescriptors
			if len(ds) != 1 || ds[0].Registration == nil || ds[0].Registration.FormatIdentifier != 0x41432d33 {
				t.Errorf("segment %d: AC-3 without its registration descriptor", i)
			}
		}
	}
}

// TestHVC1Complete checks that an hvc1 sample entry declares its parameter
// set arrays complete even when the encoder's record did not (x265 through
// ffmpeg without -tag:v hvc1 leaves them incomplete).
func TestHVC1Complete(t *testing.T) {
	c := &collect{}
	s := New(Config{Format: FormatFMP4, Expect: Video, Logger: slog.New(&logRecorder{})}, c)
	v, err := codec.ParseVideo(codec.HEVC, readHVCC(t, "main")) // made without hvc1: incomplete
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetVideoConfig(v); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFrame(Frame{Kind: Video, Key: true, Data: avcc([]byte{19 << 1, 1, 0xaf})}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	f := decodeMP4(t, c.inits[0].Data)
	hvcC := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.HvcX.HvcC
	n := 0
	for _, a := range hvcC.NaluArrays {
		if a.NaluType() <= 34 {
			n++
			if a.Complete() != 1 {
				t.Errorf("array of type %d not complete", a.NaluType())
			}
		}
	}
	if n != 3 {
		t.Fatalf("%d parameter set arrays", n)
	}
}
