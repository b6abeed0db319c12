package segmenter

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astits"
)

func TestTS90k(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0},
		{time.Second, 90000},
		{time.Millisecond, 90},
		{100000 * time.Second, 100000*90000 - 1<<33},
		{-time.Second, 1<<33 - 90000},
	} {
		if got := ts90k(tc.d); got != tc.want {
			t.Errorf("ts90k(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestTSReadBack demuxes two consecutive segments of a stream whose timeline
// is past 2^33 ticks of 90 kHz.
func TestTSReadBack(t *testing.T) {
	s, c, _ := newTest(t, Config{}, true, true)
	g := newSynth(30, true, true)
	g.base = 100000 * time.Second // > 2^33/90000 s = 95443.7 s
	var frames []Frame
	for {
		f := g.next()
		if f.DTS-g.base >= 4*time.Second+500*time.Millisecond {
			break
		}
		frames = append(frames, Frame{Kind: f.Kind, DTS: f.DTS, PTS: f.PTS, Key: f.Key, Data: bytes.Clone(f.Data)})
		if err := s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(c.segs) != 3 {
		t.Fatalf("%d segments", len(c.segs))
	}
	var videoPES, audioPES []tsPES
	var all []byte
	for i, seg := range c.segs {
		all = append(all, seg.Data...)
		ts := demuxTS(t, seg.Data)
		if ts.pids[0] != 0 || ts.pids[1] != pmtPID {
			t.Fatalf("segment %d does not start with PAT, PMT: %v", i, ts.pids[:2])
		}
		if ts.pmt == nil || ts.pmt.PCRPID != videoPID || len(ts.pmt.ElementaryStreams) != 2 ||
			ts.pmt.ElementaryStreams[0].ElementaryPID != videoPID || ts.pmt.ElementaryStreams[0].StreamType != astits.StreamTypeH264Video ||
			ts.pmt.ElementaryStreams[1].ElementaryPID != audioPID || ts.pmt.ElementaryStreams[1].StreamType != astits.StreamTypeAACAudio {
			t.Fatalf("segment %d: PMT %+v", i, ts.pmt)
		}
		for _, pid := range ts.pids {
			if pid != 0 && pid != pmtPID && pid != videoPID && pid != audioPID {
				t.Fatalf("unexpected PID %#x", pid)
			}
		}
		// The first packet after the tables starts the keyframe's PES, with
		// RandomAccessIndicator and a PCR.
		if pkt := seg.Data[2*188:]; ts.pids[2] != videoPID || pkt[1]&0x40 == 0 || pkt[3]&0x20 == 0 || pkt[5]&0x50 != 0x50 {
			t.Fatalf("segment %d: third packet %x", i, pkt[:8])
		}
		var first tsPES
		for _, p := range ts.pes {
			if p.pid == videoPID {
				first = p
				break
			}
		}
		if !first.rai || !first.pcr {
			t.Fatalf("segment %d: first video PES rai %v pcr %v", i, first.rai, first.pcr)
		}
		if !bytes.HasPrefix(first.data, []byte{0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67}) {
			t.Fatalf("segment %d: first video PES does not start with AUD, SPS: %x", i, first.data[:16])
		}
		for _, p := range ts.pes {
			if p.pid == videoPID {
				videoPES = append(videoPES, p)
			} else {
				audioPES = append(audioPES, p)
				if p.dts != -1 {
					t.Fatal("audio PES with DTS")
				}
				_, _, ch, n := checkADTS(t, p.data)
				if n != len(p.data) || ch != 2 {
					t.Fatalf("ADTS length %d for %d bytes", n, len(p.data))
				}
			}
		}
	}
	// Every frame is there with its timestamps, 33-bit wrapped.
	var wantV, wantA []Frame
	for _, f := range frames {
		if f.Kind == Video {
			wantV = append(wantV, f)
		} else if f.DTS >= g.base { // audio from the first keyframe on
			wantA = append(wantA, f)
		}
	}
	if len(videoPES) != len(wantV) || len(audioPES) != len(wantA) {
		t.Fatalf("%d video PES (want %d), %d audio PES (want %d)", len(videoPES), len(wantV), len(audioPES), len(wantA))
	}
	for i, f := range wantV {
		p := videoPES[i]
		if p.pts != ts90k(f.PTS) || p.dts != ts90k(f.DTS) {
			t.Fatalf("video %d: pts %d dts %d, want %d %d", i, p.pts, p.dts, ts90k(f.PTS), ts90k(f.DTS))
		}
		if p.rai != f.Key {
			t.Fatalf("video %d: RAI %v key %v", i, p.rai, f.Key)
		}
		if p.pts >= 1<<33 || p.pts == (f.PTS/time.Millisecond).Nanoseconds()*90 {
			t.Fatalf("video %d: PTS not wrapped: %d", i, p.pts)
		}
	}
	for i, f := range wantA {
		if p := audioPES[i]; p.pts != ts90k(f.DTS) || !bytes.Equal(p.data[7:], f.Data) {
			t.Fatalf("audio %d: pts %d want %d", i, p.pts, ts90k(f.DTS))
		}
	}
	// Continuity counters run on across segment boundaries, for every PID.
	ts := demuxTS(t, all)
	for pid, ccs := range ts.ccs {
		for i := 1; i < len(ccs); i++ {
			if ccs[i] != (ccs[i-1]+1)&15 {
				t.Fatalf("PID %#x: CC %d after %d (packet %d)", pid, ccs[i], ccs[i-1], i)
			}
		}
	}
}

func TestTSVideoPTSEqualsDTS(t *testing.T) {
	s, c, _ := newTest(t, Config{Expect: Video}, true, false)
	g := newSynth(30, true, false)
	g.bframes = false
	g.run(t, s, time.Second)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, p := range demuxTS(t, c.segs[0].Data).pes {
		if p.dts != -1 {
			t.Fatal("DTS written although equal to PTS")
		}
	}
}

// TestRealStreamDecodes feeds an ffmpeg-made FLV (H.264 High + AAC, 1s GOP)
// through the segmenter and has ffmpeg decode every segment on its own.
// (-fps_mode passthrough -enc_time_base 1:90000: by default the null muxer, at 1/30 s, complains about
// the millisecond FLV timestamps, for the source file too.)
func TestRealStreamDecodes(t *testing.T) {
	st := readFLV(t, "testdata/main.flv")
	for _, tc := range []struct {
		offset, jump time.Duration // jump: added from the keyframe at 2s on
	}{
		{0, 0},
		{100000 * time.Second, 0},             // timeline past 2^33 ticks
		{0, time.Hour},                        // encoder restart: forward jump at a keyframe
		{50 * time.Second, -40 * time.Second}, // backwards jump at a keyframe
	} {
		offset := tc.offset
		c := &collect{}
		s := New(Config{Expect: Video | Audio, Now: fakeClock()}, c)
		if err := setAVC(s, st.videoConfig); err != nil {
			t.Fatal(err)
		}
		if err := setAAC(s, st.audioConfig); err != nil {
			t.Fatal(err)
		}
		nv := 0
		for _, f := range st.frames {
			shift := offset
			if f.DTS >= 2*time.Second {
				shift += tc.jump
			}
			f.DTS += shift
			f.PTS += shift
			if f.Kind == Video {
				nv++
			}
			if err := s.WriteFrame(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if len(c.segs) != 2 {
			t.Fatalf("%d segments", len(c.segs))
		}
		if tc.jump == 0 {
			checkContiguous(t, c.segs)
		} else {
			d := c.segs[1]
			if !d.Discontinuity || d.Start != 2*time.Second+offset+tc.jump {
				t.Fatalf("segment after the jump: start %v discontinuity %v", d.Start, d.Discontinuity)
			}
			// The new time base is signalled on the PCR PID.
			if pkt := d.Data[2*188:]; pkt[3]&0x20 == 0 || pkt[5]&0x80 == 0 {
				t.Fatalf("no discontinuity_indicator: %x", pkt[:8])
			}
		}
		in := s.Info()
		if in.Codecs != "avc1.64001e,mp4a.40.2" || in.Video.Width != 640 || in.Video.Height != 360 ||
			in.Video.FrameRate != 30 || in.Audio.SampleRate != 44100 || in.Audio.Channels != 2 || in.GOP != time.Second {
			t.Fatalf("info %+v video %+v", in, in.Video)
		}
		if _, err := exec.LookPath("ffprobe"); err != nil {
			t.Skip("ffprobe not installed")
		}
		dir := t.TempDir()
		decoded := 0
		for i, seg := range c.segs {
			name := filepath.Join(dir, "seg"+string(rune('0'+i))+".ts")
			if err := os.WriteFile(name, seg.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", name, "-fps_mode", "passthrough", "-enc_time_base:v", "1:90000", "-f", "null", "-").CombinedOutput()
			if err != nil || len(out) != 0 {
				t.Fatalf("segment %d (offset %v): ffmpeg: %v\n%s", i, offset, err, out)
			}
			out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-count_frames",
				"-show_entries", "stream=nb_read_frames,codec_name,width,height", "-of", "csv=p=0", name).CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, out)
			}
			var n, w, h int
			var codec string
			fields := strings.Split(strings.Fields(string(out))[0], ",")
			if len(fields) != 4 {
				t.Fatalf("ffprobe output %q", out)
			}
			codec = fields[0]
			w, h, n = atoi(fields[1]), atoi(fields[2]), atoi(fields[3])
			if codec != "h264" || w != 640 || h != 360 {
				t.Fatalf("segment %d: %s %dx%d", i, codec, w, h)
			}
			decoded += n
		}
		if decoded != nv {
			t.Fatalf("decoded %d video frames of %d", decoded, nv)
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
