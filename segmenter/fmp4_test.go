package segmenter

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/fount-live/fount/segmenter/codec"
)

// decodeMP4 parses bytes with mp4ff, failing the test on error.
func decodeMP4(t testing.TB, b []byte) *mp4.File {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("mp4ff: %v", err)
	}
	return f
}

// trackRun is what one traf says about its track.
type trackRun struct {
	id    uint32
	tfdt  uint64
	durs  []uint32
	sync  []bool
	sizes []uint32
}

func (r trackRun) total() uint64 {
	var n uint64
	for _, d := range r.durs {
		n += uint64(d)
	}
	return n
}

// fragments returns, for every fragment in b (moof+mdat boxes, optionally
// after an init and a styp), its trafs in order.
func fragments(t testing.TB, b []byte) [][]trackRun {
	t.Helper()
	f := decodeMP4(t, b)
	var out [][]trackRun
	for _, seg := range f.Segments {
		for _, frag := range seg.Fragments {
			var runs []trackRun
			for _, traf := range frag.Moof.Trafs {
				r := trackRun{id: traf.Tfhd.TrackID, tfdt: traf.Tfdt.BaseMediaDecodeTime()}
				for _, trun := range traf.Truns {
					for _, smp := range trun.Samples {
						r.durs = append(r.durs, smp.Dur)
						r.sync = append(r.sync, mp4.IsSyncSampleFlags(smp.Flags))
						r.sizes = append(r.sizes, smp.Size)
					}
				}
				runs = append(runs, r)
			}
			out = append(out, runs)
		}
	}
	return out
}

func newFMP4Test(t testing.TB, cfg Config, vc, ac []byte) (*Segmenter, *collect) {
	t.Helper()
	c := &collect{}
	cfg.Format = FormatFMP4
	if cfg.Now == nil {
		cfg.Now = fakeClock()
	}
	cfg.Logger = slog.New(&logRecorder{})
	s := New(cfg, c)
	if vc != nil {
		if err := setAVC(s, vc); err != nil {
			t.Fatal(err)
		}
	}
	if ac != nil {
		if err := setAAC(s, ac); err != nil {
			t.Fatal(err)
		}
	}
	return s, c
}

func TestFMP4Init(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vc, ac   []byte
		w, h     int
		rate, ch int
	}{
		{"high 640x360 + aac 44.1k stereo", avcCHigh, ascLC44Stereo, 640, 360, 44100, 2},
		{"baseline 320x240 + aac 48k mono", avcCBase, ascLC48Mono, 320, 240, 48000, 1},
		{"audio only 48k mono", nil, ascLC48Mono, 0, 0, 48000, 1},
		{"video only high422", avcCHi422, nil, 176, 144, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var expect Tracks
			if tc.vc != nil {
				expect |= Video
			}
			if tc.ac != nil {
				expect |= Audio
			}
			s, c := newFMP4Test(t, Config{Expect: expect}, tc.vc, tc.ac)
			g := newSynth(30, tc.vc != nil, tc.ac != nil)
			g.run(t, s, 100*time.Millisecond)
			if len(c.inits) != 1 || c.inits[0].Version != 0 || c.calls[0] != "init" {
				t.Fatalf("inits %d, calls %v", len(c.inits), c.calls)
			}
			f := decodeMP4(t, c.inits[0].Data)
			if f.Ftyp == nil || f.Ftyp.MajorBrand() != "iso6" || !contains(f.Ftyp.CompatibleBrands(), "cmfc") {
				t.Fatalf("ftyp %+v", f.Ftyp)
			}
			moov := f.Init.Moov
			wantTraks := 0
			if tc.vc != nil {
				wantTraks++
			}
			if tc.ac != nil {
				wantTraks++
			}
			if len(moov.Traks) != wantTraks || moov.Mvex == nil || len(moov.Mvex.Trexs) != wantTraks {
				t.Fatalf("%d traks, mvex %+v", len(moov.Traks), moov.Mvex)
			}
			i := 0
			if tc.vc != nil {
				tr := moov.Traks[0]
				cfg, _ := codec.ParseVideo(codec.AVC, tc.vc)
				if tr.Tkhd.TrackID != 1 || tr.Mdia.Mdhd.Timescale != 90000 {
					t.Fatalf("video track %d timescale %d", tr.Tkhd.TrackID, tr.Mdia.Mdhd.Timescale)
				}
				avc1 := tr.Mdia.Minf.Stbl.Stsd.AvcX
				if avc1 == nil || avc1.Type() != "avc1" || int(avc1.Width) != tc.w || int(avc1.Height) != tc.h {
					t.Fatalf("avc1 %+v", avc1)
				}
				if int(tr.Tkhd.Width>>16) != tc.w || int(tr.Tkhd.Height>>16) != tc.h {
					t.Fatalf("tkhd %dx%d", tr.Tkhd.Width>>16, tr.Tkhd.Height>>16)
				}
				rec := avc1.AvcC.DecConfRec
				if len(rec.SPSnalus) != 1 || !bytes.Equal(rec.SPSnalus[0], cfg.SPS[0]) ||
					len(rec.PPSnalus) != 1 || !bytes.Equal(rec.PPSnalus[0], cfg.PPS[0]) {
					t.Fatalf("avcC SPS/PPS differ")
				}
				highProfile := cfg.Profile == 100 || cfg.Profile == 110 || cfg.Profile == 122 || cfg.Profile == 144
				if (highProfile && int(rec.ChromaFormat) != cfg.ChromaFormat) || int(rec.AVCProfileIndication) != cfg.Profile || int(rec.AVCLevelIndication) != cfg.Level {
					t.Fatalf("avcC %+v", rec)
				}
				i++
			}
			if tc.ac != nil {
				tr := moov.Traks[i]
				if tr.Tkhd.TrackID != uint32(i+1) || int(tr.Mdia.Mdhd.Timescale) != tc.rate {
					t.Fatalf("audio track %d timescale %d", tr.Tkhd.TrackID, tr.Mdia.Mdhd.Timescale)
				}
				mp4a := tr.Mdia.Minf.Stbl.Stsd.Mp4a
				if mp4a == nil || int(mp4a.ChannelCount) != tc.ch || int(mp4a.SampleRate) != tc.rate {
					t.Fatalf("mp4a %+v", mp4a)
				}
				asc := mp4a.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig
				if !bytes.Equal(asc, tc.ac) {
					t.Fatalf("esds ASC %x, want %x", asc, tc.ac)
				}
			}
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// writeFLV feeds the test file to s, calling before(f) ahead of each frame.
func writeFLV(t testing.TB, s *Segmenter, st flvStream, before func(Frame)) {
	t.Helper()
	for _, f := range st.frames {
		if before != nil {
			before(f)
		}
		if err := s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if before != nil {
		before(Frame{})
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}

// checkKeyFragments checks that every fragment holding a video keyframe
// holds only that (one video sample, a sync one) and returns their number.
func checkKeyFragments(t *testing.T, frags [][]trackRun) int {
	t.Helper()
	n := 0
	for i, runs := range frags {
		for _, r := range runs {
			if r.id != 1 || !slices.Contains(r.sync, true) {
				continue
			}
			if len(runs) != 1 || len(r.sync) != 1 {
				t.Fatalf("fragment %d: a keyframe among other samples: %+v", i, runs)
			}
			n++
		}
	}
	return n
}

// checkTfdtContinuity checks, per track, that each fragment's tfdt follows
// the previous fragment's tfdt plus its sample durations, within one sample
// duration (the newest sample of a fragment may have an estimated one).
func checkTfdtContinuity(t *testing.T, frags [][]trackRun, tolerance map[uint32]uint64) {
	t.Helper()
	next := map[uint32]uint64{}
	for i, runs := range frags {
		for _, r := range runs {
			if want, ok := next[r.id]; ok {
				diff := int64(r.tfdt) - int64(want)
				if diff < 0 {
					diff = -diff
				}
				if uint64(diff) > tolerance[r.id] {
					t.Errorf("fragment %d track %d: tfdt %d, previous end %d", i, r.id, r.tfdt, want)
				}
			}
			next[r.id] = r.tfdt + r.total()
		}
	}
}

func ffmpegCheck(t *testing.T) bool {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffprobe not installed")
		}
		t.Log("ffprobe not installed: skipping decode checks")
		return false
	}
	return true
}

// probeFMP4 decodes init+segment with ffmpeg and checks it with ffprobe:
// no decode errors, video and audio present, first video frame a keyframe.
// It returns the number of decoded video frames.
func probeFMP4(t *testing.T, name string, data []byte, wantAudio bool) int {
	t.Helper()
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", name, "-fps_mode", "passthrough", "-enc_time_base:v", "1:90000", "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Fatalf("%s: ffmpeg: %v\n%s", name, err, out)
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0", name).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	streams := strings.Fields(string(out))
	if !contains(streams, "h264,video") || wantAudio != contains(streams, "aac,audio") {
		t.Fatalf("%s: streams %q", name, streams)
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=key_frame", "-of", "csv=p=0", name).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	keys := strings.Fields(strings.ReplaceAll(string(out), ",", ""))
	if len(keys) == 0 || keys[0] != "1" {
		t.Fatalf("%s: first video frame is not a keyframe: %q", name, keys)
	}
	return len(keys)
}

// TestFMP4RealStream muxes the ffmpeg-made FLV to fMP4 (with and without
// parts) and has ffmpeg decode every segment after the init.
func TestFMP4RealStream(t *testing.T) {
	st := readFLV(t, "testdata/main.flv")
	nv, na := 0, 0
	for _, f := range st.frames {
		if f.Kind == Video {
			nv++
		} else {
			na++
		}
	}
	for _, part := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run("parts "+part.String(), func(t *testing.T) {
			s, c := newFMP4Test(t, Config{Expect: Video | Audio, PartDuration: part}, st.videoConfig, st.audioConfig)
			writeFLV(t, s, st, nil)
			if len(c.segs) != 2 || len(c.inits) != 1 {
				t.Fatalf("%d segments, %d inits", len(c.segs), len(c.inits))
			}
			checkContiguous(t, c.segs)
			init := c.inits[0].Data
			var all []byte
			var frags [][]trackRun
			check := ffmpegCheck(t)
			decoded := 0
			styp := s.fm.styp
			for i, seg := range c.segs {
				if seg.InitVersion != 0 || !bytes.HasPrefix(seg.Data, styp) {
					t.Fatalf("segment %d: init version %d, prefix %x", i, seg.InitVersion, seg.Data[:8])
				}
				fr := fragments(t, append(bytes.Clone(init), seg.Data...))
				// Each keyframe is a fragment of its own (Segment.IFrames).
				keys := checkKeyFragments(t, fr)
				if keys != len(seg.IFrames) || keys == 0 {
					t.Fatalf("segment %d: %d keyframe fragments, %d IFrames", i, keys, len(seg.IFrames))
				}
				if part == 0 && len(fr) != 2*keys {
					t.Fatalf("segment %d: %d fragments without parts, %d keyframes", i, len(fr), keys)
				}
				if part > 0 && (len(fr) < len(seg.Parts) || len(fr) > len(seg.Parts)+2*keys) {
					t.Fatalf("segment %d: %d fragments, %d parts, %d keyframes", i, len(fr), len(seg.Parts), keys)
				}
				if r := fr[0][0]; r.id != 1 || !r.sync[0] || r.tfdt != uint64(toTicks(seg.Start, 90000)) {
					t.Fatalf("segment %d: first traf %+v, start %v", i, r, seg.Start)
				}
				frags = append(frags, fr...)
				all = append(all, seg.Data...)
				if check {
					decoded += probeFMP4(t, filepath.Join(t.TempDir(), "seg"+strconv.Itoa(i)+".mp4"), append(bytes.Clone(init), seg.Data...), true)
				}
			}
			if check && decoded != nv {
				t.Fatalf("decoded %d video frames of %d", decoded, nv)
			}
			// Every video frame and every audio frame from the first keyframe on.
			gotV, gotA := 0, 0
			for _, runs := range frags {
				for _, r := range runs {
					if r.id == 1 {
						gotV += len(r.durs)
					} else {
						gotA += len(r.durs)
					}
				}
			}
			// Dropped: audio before the first keyframe, and (parts) audio after
			// the last video frame, deferred for a video frame that never came.
			wantA := na - int(s.Info().DroppedFrames)
			if gotV != nv || gotA != wantA || wantA < na-3 {
				t.Fatalf("%d video samples (want %d), %d audio samples (want %d of %d)", gotV, nv, gotA, wantA, na)
			}
			// 90 kHz video: one 30 fps frame; audio: one AAC frame at 44.1 kHz.
			checkTfdtContinuity(t, frags, map[uint32]uint64{1: 3000, 2: 1100})
			if part == 0 {
				// Without parts the video fragment ends where the next segment's
				// keyframe begins: exact.
				checkTfdtContinuity(t, frags, map[uint32]uint64{1: 0, 2: 1100})
			}
			// The whole stream decodes too.
			if check {
				if n := probeFMP4(t, filepath.Join(t.TempDir(), "all.mp4"), append(bytes.Clone(init), all...), true); n != nv {
					t.Fatalf("whole stream: %d video frames of %d", n, nv)
				}
			}
		})
	}
}

func TestFMP4ConfigChange(t *testing.T) {
	s, c := newFMP4Test(t, Config{}, avcCHigh, ascLC44Stereo)
	g := newSynth(30, true, true)
	g.run(t, s, 2500*time.Millisecond)
	if err := setAVC(s, avcCHigh); err != nil { // same bytes: no new init
		t.Fatal(err)
	}
	if err := setAVC(s, avcCBase); err != nil {
		t.Fatal(err)
	}
	g.run(t, s, 5*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.inits) != 2 || c.inits[0].Version != 0 || c.inits[1].Version != 1 {
		t.Fatalf("inits %+v", c.inits)
	}
	if got := starts(c.segs); !equalDur(got, []time.Duration{0, 2 * time.Second, 3 * time.Second}) {
		t.Fatalf("starts %v", got)
	}
	if c.segs[1].InitVersion != 0 || c.segs[2].InitVersion != 1 || !c.segs[2].Discontinuity {
		t.Fatalf("init versions %d %d", c.segs[1].InitVersion, c.segs[2].InitVersion)
	}
	want := []string{"init", "segment", "segment", "init", "segment"}
	if strings.Join(c.calls, " ") != strings.Join(want, " ") {
		t.Fatalf("calls %v", c.calls)
	}
	f := decodeMP4(t, c.inits[1].Data)
	if avc1 := f.Init.Moov.Traks[0].Mdia.Minf.Stbl.Stsd.AvcX; avc1.Width != 320 || avc1.Height != 240 {
		t.Fatalf("new init %dx%d", avc1.Width, avc1.Height)
	}
	// The new segment decodes against the new init (mp4ff level).
	fr := fragments(t, append(bytes.Clone(c.inits[1].Data), c.segs[2].Data...))
	if fr[0][0].tfdt != 3*90000 {
		t.Fatalf("tfdt %d", fr[0][0].tfdt)
	}
}

// TestFMP4Timeline checks tfdt on a timeline past 2^32 ticks and across a
// timestamp jump (the new segment's tfdt is the real DTS).
func TestFMP4Timeline(t *testing.T) {
	s, c := newFMP4Test(t, Config{}, avcCHigh, ascLC44Stereo)
	g := newSynth(30, true, true)
	g.base = 100000 * time.Second
	g.run(t, s, 4500*time.Millisecond)
	g.base += time.Hour
	g.run(t, s, 8*time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var prevEnd map[uint32]uint64
	for i, seg := range c.segs {
		fr := fragments(t, append(bytes.Clone(c.inits[0].Data), seg.Data...))
		v := fr[0][0]
		if v.tfdt != uint64(toTicks(seg.Start, 90000)) {
			t.Fatalf("segment %d: tfdt %d, start %v", i, v.tfdt, seg.Start)
		}
		if seg.Discontinuity && prevEnd != nil && v.tfdt == prevEnd[1] {
			t.Fatalf("segment %d: discontinuity not in tfdt", i)
		}
		// Within a segment the samples are contiguous even across the jump.
		prevEnd = map[uint32]uint64{}
		for _, runs := range fr {
			for _, r := range runs {
				prevEnd[r.id] = r.tfdt + r.total()
				for k, d := range r.durs {
					if r.id == 1 && (d < 2900 || d > 3100) && k < len(r.durs)-1 {
						t.Fatalf("segment %d: video sample %d lasts %d ticks", i, k, d)
					}
				}
			}
		}
	}
	if c.segs[0].Start != 100000*time.Second || !c.segs[len(c.segs)-2].Discontinuity && !c.segs[len(c.segs)-1].Discontinuity {
		t.Fatalf("starts %v", starts(c.segs))
	}
}

// TestFMP4NALULengthSize: AVCC with 2-byte NALU lengths is rewritten to
// 4-byte lengths (the avcC says 4); malformed frames are rejected.
func TestFMP4NALULengthSize(t *testing.T) {
	rec := bytes.Clone(avcCHigh)
	rec[4] = 0xfd // lengthSizeMinusOne = 1
	s, c := newFMP4Test(t, Config{Expect: Video}, rec, nil)
	nal1 := []byte{0x65, 1, 2, 3}
	nal2 := []byte{0x06, 9}
	frame := []byte{0, 4}
	frame = append(frame, nal1...)
	frame = append(frame, 0, 2)
	frame = append(frame, nal2...)
	for i := 0; i < 3; i++ {
		d := time.Duration(i) * frameDur
		if err := s.WriteFrame(Frame{Kind: Video, DTS: d, PTS: d, Key: i == 0, Data: frame}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WriteFrame(Frame{Kind: Video, DTS: 3 * frameDur, PTS: 3 * frameDur, Data: []byte{0, 9, 0x41}}); err == nil {
		t.Fatal("overrunning NALU accepted")
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{0, 0, 0, 4}, nal1...), append([]byte{0, 0, 0, 2}, nal2...)...)
	f := decodeMP4(t, append(bytes.Clone(c.inits[0].Data), c.segs[0].Data...))
	var mdat []byte // the keyframe's fragment, then the rest
	for _, frag := range f.Segments[0].Fragments {
		mdat = append(mdat, frag.Mdat.Data...)
	}
	if !bytes.Equal(mdat, bytes.Repeat(want, 3)) {
		t.Fatalf("mdat %x", mdat)
	}
	if f.Init.Moov.Traks[0].Mdia.Minf.Stbl.Stsd.AvcX.AvcC.DecConfRec.SPSnalus == nil {
		t.Fatal("no SPS in avcC")
	}
	if d := s.Info().DroppedFrames; d != 1 {
		t.Fatalf("dropped %d", d)
	}
}
