package segmenter

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/fount-live/fount/segmenter/codec"
)

// wholeSink keeps every segment as a player would fetch it (with
// PartsOnly: Data followed by the parts, copied as they come), and copies
// of IFrames, which with ReuseBuffer are valid only during the call.
type wholeSink struct {
	inits   []Init
	segs    []Segment // Data replaced by the whole segment; IFrames copied
	pending []byte
	arrays  map[*IFrame]bool // where IFrames arrays were
}

func (c *wholeSink) Init(in Init) error {
	c.inits = append(c.inits, Init{Data: bytes.Clone(in.Data), Version: in.Version})
	return nil
}
func (c *wholeSink) Part(p Part) error {
	c.pending = append(c.pending, p.Data...)
	return nil
}
func (c *wholeSink) Segment(s Segment) error {
	whole := bytes.Clone(s.Data)
	if len(s.Parts) > 0 && s.Parts[0].Data == nil { // PartsOnly
		whole = append(whole, c.pending...)
	}
	c.pending = c.pending[:0]
	if c.arrays != nil && len(s.IFrames) > 0 {
		c.arrays[unsafe.SliceData(s.IFrames)] = true
	}
	s.Data, s.Parts, s.IFrames = whole, nil, slices.Clone(s.IFrames)
	c.segs = append(c.segs, s)
	return nil
}

// checkIFrameLayout checks seg.IFrames against the keyframes written into
// it (keys: their elapsed time from seg.Start, in order) and checks each
// range's bytes: in order, inside the segment, and on its own one
// keyframe (TS: PAT, PMT, then the keyframe's whole PES and nothing else;
// fMP4: one fragment of one sync video sample). It returns the ranges'
// bytes (fMP4: after the init).
func checkIFrameLayout(t *testing.T, format Format, init []byte, seg Segment, keys []time.Duration) [][]byte {
	t.Helper()
	if seg.Size != len(seg.Data) {
		t.Fatalf("segment at %v: Size %d, %d bytes", seg.Start, seg.Size, len(seg.Data))
	}
	if len(keys) == 0 {
		if seg.IFrames != nil {
			t.Fatalf("segment at %v without keyframes: IFrames %+v", seg.Start, seg.IFrames)
		}
		return nil
	}
	if len(seg.IFrames) != len(keys) {
		t.Fatalf("segment at %v: %d IFrames, %d keyframes", seg.Start, len(seg.IFrames), len(keys))
	}
	var out [][]byte
	end := 0
	var sum time.Duration
	for i, f := range seg.IFrames {
		if f.Offset < end || f.Size <= 0 || f.Offset+f.Size > seg.Size {
			t.Fatalf("segment at %v: IFrame %d at %d+%d (previous ends at %d, segment %d bytes)", seg.Start, i, f.Offset, f.Size, end, seg.Size)
		}
		end = f.Offset + f.Size
		want := seg.Duration - keys[i]
		if i+1 < len(keys) {
			want = keys[i+1] - keys[i]
		}
		if f.Duration != want {
			t.Errorf("segment at %v: IFrame %d lasts %v, want %v", seg.Start, i, f.Duration, want)
		}
		sum += f.Duration
		b := seg.Data[f.Offset:end]
		if format == FormatTS {
			checkTSKeyRange(t, seg.Data, f)
		} else {
			b = append(bytes.Clone(init), b...)
			fr := fragments(t, b)
			if len(fr) != 1 || len(fr[0]) != 1 || fr[0][0].id != 1 || len(fr[0][0].sync) != 1 || !fr[0][0].sync[0] {
				t.Fatalf("segment at %v: IFrame %d is not one fragment of one keyframe: %+v", seg.Start, i, fr)
			}
		}
		out = append(out, b)
	}
	if first := seg.IFrames[0]; keys[0] == 0 && first.Offset != 0 && (format == FormatTS || first.Offset != len(newFMP4Muxer(Video).styp)) {
		t.Errorf("segment at %v opens with a keyframe but its first IFrame is at %d", seg.Start, first.Offset)
	}
	if sum != seg.Duration-keys[0] {
		t.Errorf("segment at %v: IFrames last %v, the segment %v from the first keyframe", seg.Start, sum, seg.Duration-keys[0])
	}
	return out
}

// checkTSKeyRange checks that f is PAT, PMT, then exactly one whole video
// PES, which starts random access.
func checkTSKeyRange(t *testing.T, seg []byte, f IFrame) {
	t.Helper()
	if f.Offset%188 != 0 || f.Size%188 != 0 || f.Size < 3*188 {
		t.Fatalf("IFrame %+v not whole TS packets", f)
	}
	for off := f.Offset; off < f.Offset+f.Size; off += 188 {
		pkt := seg[off : off+188]
		pid := uint16(pkt[1]&0x1f)<<8 | uint16(pkt[2])
		pusi := pkt[1]&0x40 != 0
		var ok bool
		switch k := (off - f.Offset) / 188; k {
		case 0:
			ok = pid == 0
		case 1:
			ok = pid == pmtPID
		case 2:
			ok = pid == videoPID && pusi && pkt[3]&0x20 != 0 && pkt[5]&0x40 != 0 // random_access_indicator
		default:
			ok = pid == videoPID && !pusi
		}
		if !ok {
			t.Fatalf("IFrame %+v: packet %d is PID %#x (start %v)", f, (off-f.Offset)/188, pid, pusi)
		}
	}
	// The PES ends with the range: the next packet on the video PID starts
	// another.
	for off := f.Offset + f.Size; off+188 <= len(seg); off += 188 {
		pkt := seg[off : off+188]
		if pid := uint16(pkt[1]&0x1f)<<8 | uint16(pkt[2]); pid == videoPID {
			if pkt[1]&0x40 == 0 {
				t.Fatalf("IFrame %+v: the keyframe's PES goes on after the range", f)
			}
			break
		}
	}
}

// probeOneKeyframe has ffprobe decode b (written to a file in dir) and
// fails unless it yields exactly one video frame, a keyframe, at pts.
func probeOneKeyframe(t *testing.T, dir, name string, b []byte, pts time.Duration) {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ffprobe", "-v", "error", "-select_streams", "v",
		"-show_entries", "frame=key_frame,pict_type,pts_time", "-of", "compact=p=0", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s: ffprobe: %v\n%s", name, err, stderr.Bytes())
	}
	lines := strings.Fields(string(out))
	if len(lines) != 1 {
		t.Fatalf("%s: %d video frames decoded: %q", name, len(lines), lines)
	}
	kv := map[string]string{}
	for _, f := range strings.Split(lines[0], "|") {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		}
	}
	if kv["key_frame"] != "1" || kv["pict_type"] != "I" {
		t.Fatalf("%s: frame %q is not a keyframe", name, lines[0])
	}
	sec, err := strconv.ParseFloat(kv["pts_time"], 64)
	if d := time.Duration(sec*float64(time.Second)) - pts; err != nil || d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("%s: keyframe at %s s, want %v", name, kv["pts_time"], pts)
	}
}

// keyframesIn returns the video keyframes of frames within seg, as
// elapsed times from its start, and their PTS.
func keyframesIn(frames []Frame, seg Segment) (at, pts []time.Duration) {
	for _, f := range frames {
		if f.Kind == Video && f.Key && f.DTS >= seg.Start && f.DTS < seg.Start+seg.Duration {
			at = append(at, f.DTS-seg.Start)
			pts = append(pts, f.PTS)
		}
	}
	return at, pts
}

// TestIFrames muxes real H.264 and HEVC (and, in fMP4, AV1 and VP9) with
// AAC in both formats, without parts, with parts and with PartsOnly, with
// two GOPs a segment; every IFrame's range (fMP4: after the init) is
// decoded on its own by ffprobe: exactly one video frame, a keyframe, the
// right one. Audio-only segments have none.
func TestIFrames(t *testing.T) {
	needFFmpeg(t)
	cs := newClipSet(t)
	aac := cs.get(codec.AAC)
	for _, id := range []codec.ID{codec.AVC, codec.HEVC, codec.AV1, codec.VP9, codec.Unknown} {
		var v clip
		if id != codec.Unknown {
			v = cs.get(id)
		}
		frames := interleave(v.frames, aac.frames)
		for _, format := range []Format{FormatTS, FormatFMP4} {
			if id != codec.Unknown && !CanCarry(format, id) {
				continue
			}
			for _, mode := range []string{"whole", "parts", "partsonly"} {
				name := fmt.Sprintf("%v/%v/%s", id, format, mode)
				if id == codec.Unknown {
					name = fmt.Sprintf("audio-only/%v/%s", format, mode)
				}
				t.Run(name, func(t *testing.T) {
					// 300 ms parts: the second keyframe (1 s) falls inside a part.
					cfg := Config{Format: format, TargetDuration: 2 * time.Second, Expect: Audio,
						Logger: slog.New(&logRecorder{}), Now: fakeClock()}
					if mode != "whole" {
						cfg.PartDuration = 300 * time.Millisecond
						cfg.PartsOnly = mode == "partsonly"
					}
					c := &wholeSink{}
					s := New(cfg, c)
					if v.video != nil {
						cfg.Expect |= Video
						if err := s.SetVideoConfig(v.video); err != nil {
							t.Fatal(err)
						}
					}
					if err := s.SetAudioConfig(aac.audio); err != nil {
						t.Fatal(err)
					}
					for _, f := range frames {
						if err := s.WriteFrame(f); err != nil {
							t.Fatal(err)
						}
					}
					if err := s.Flush(); err != nil {
						t.Fatal(err)
					}
					if len(c.segs) < 2 {
						t.Fatalf("%d segments", len(c.segs))
					}
					dir := t.TempDir()
					n := 0
					for i, seg := range c.segs {
						at, pts := keyframesIn(frames, seg)
						var init []byte
						if format == FormatFMP4 {
							init = c.inits[seg.InitVersion].Data
						}
						for k, b := range checkIFrameLayout(t, format, init, seg, at) {
							probeOneKeyframe(t, dir, fmt.Sprintf("seg%d-key%d", i, k), b, pts[k])
							n++
						}
					}
					if v.video != nil && n < 3 {
						t.Fatalf("%d IFrames checked", n)
					}
					t.Logf("%d segments, %d IFrames", len(c.segs), n)
				})
			}
		}
	}
}

// TestIFramesLayout checks IFrames on synthetic streams (not decodable, so
// byte layout only): GOPs shorter than the segment (several keyframes a
// segment, some inside parts), a timestamp jump mid-GOP (the segment
// before it is bridged with an estimated duration), and segments cut at
// MaxSegmentDuration without a keyframe (IFrames only for the keyframes
// inside, nil when there are none). With ReuseBuffer the IFrames array is
// reused across segments.
func TestIFramesLayout(t *testing.T) {
	for _, format := range []Format{FormatTS, FormatFMP4} {
		for _, mode := range []string{"whole", "reuse", "parts", "partsonly"} {
			for _, stream := range []string{"short gop+jump", "capped"} {
				t.Run(fmt.Sprintf("%v/%s/%s", format, mode, stream), func(t *testing.T) {
					cfg := Config{Format: format, TargetDuration: time.Second, Logger: slog.New(&logRecorder{}), Now: fakeClock(),
						ReuseBuffer: mode == "reuse"}
					if mode == "parts" || mode == "partsonly" {
						cfg.PartDuration = 200 * time.Millisecond
						cfg.PartsOnly = mode == "partsonly"
					}
					gop := 12 // 0.4 s
					if stream == "capped" {
						gop, cfg.MaxSegmentDuration = 120, 3*time.Second
					}
					c := &wholeSink{arrays: map[*IFrame]bool{}}
					s := New(cfg, c)
					if err := setAVC(s, avcCHigh); err != nil {
						t.Fatal(err)
					}
					if err := setAAC(s, ascLC44Stereo); err != nil {
						t.Fatal(err)
					}
					g := newSynth(gop, true, true)
					var frames []Frame
					write := func(end time.Duration) {
						for {
							f := g.next()
							if f.DTS-g.base >= end {
								return
							}
							frames = append(frames, Frame{Kind: f.Kind, DTS: f.DTS, PTS: f.PTS, Key: f.Key})
							if err := s.WriteFrame(f); err != nil {
								t.Fatal(err)
							}
						}
					}
					if stream == "capped" {
						write(13 * time.Second)
					} else {
						write(3*time.Second + 5*frameDur)
						g.base += time.Hour
						write(6 * time.Second)
					}
					if err := s.Flush(); err != nil {
						t.Fatal(err)
					}
					var init []byte
					if format == FormatFMP4 {
						init = c.inits[0].Data
					}
					n, none, multi := 0, 0, 0
					for _, seg := range c.segs {
						keys, _ := keyframesIn(frames, seg)
						n += len(checkIFrameLayout(t, format, init, seg, keys))
						if len(keys) == 0 {
							none++
						}
						if len(keys) > 1 {
							multi++
						}
					}
					if stream == "capped" && none == 0 || stream != "capped" && multi < 3 {
						t.Fatalf("%d segments: %d without keyframes, %d with several", len(c.segs), none, multi)
					}
					if (cfg.ReuseBuffer || cfg.PartsOnly) && len(c.arrays) > 2 {
						t.Errorf("IFrames of %d segments in %d arrays", len(c.segs), len(c.arrays))
					}
					t.Logf("%d segments, %d IFrames, IFrames arrays %d", len(c.segs), n, len(c.arrays))
				})
			}
		}
	}
}
