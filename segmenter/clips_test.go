package segmenter

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/fount-live/fount/segmenter/codec"
)

// Real encoder output for every codec: Debian's ffmpeg encodes short clips
// (320x240, 30 fps, 1 s GOP; 48 kHz stereo audio) into fragmented MP4 at
// test time; mp4ff reads the configuration boxes and samples out of them,
// and they are fed to the segmenter as ingest would (millisecond
// timestamps, configurations parsed by package codec).

// clipSeconds is each clip's length.
const clipSeconds = "3"

// encoderArgs are ffmpeg's arguments for each codec's clip.
var encoderArgs = map[codec.ID][]string{
	codec.AVC:  {"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "2"},
	codec.HEVC: {"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=30:min-keyint=30:scenecut=0:open-gop=0", "-tag:v", "hvc1"},
	codec.AV1:  {"-c:v", "libaom-av1", "-cpu-used", "8", "-g", "30", "-keyint_min", "30", "-row-mt", "1"},
	codec.VP9:  {"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "30", "-keyint_min", "30"},
	codec.AAC:  {"-c:a", "aac", "-ac", "2"},
	codec.Opus: {"-c:a", "libopus", "-ac", "2"},
	codec.FLAC: {"-c:a", "flac", "-ac", "2", "-strict", "-2"},
	codec.AC3:  {"-c:a", "ac3", "-ac", "2"},
	codec.EAC3: {"-c:a", "eac3", "-ac", "2"},
	codec.MP3:  {"-c:a", "libmp3lame", "-ac", "2"},
}

// needFFmpeg skips the test without ffmpeg and ffprobe, or fails it in CI.
func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// clip is one encoded elementary stream, read back.
type clip struct {
	video  *codec.Video
	audio  *codec.Audio
	frames []Frame // in decode order, millisecond timestamps
}

// makeClip encodes a clip of id into dir and reads it; extra ffmpeg
// arguments come after the codec's own (the last of a repeated option wins).
func makeClip(t testing.TB, dir string, id codec.ID, extra ...string) clip {
	t.Helper()
	name := filepath.Join(dir, strings.ToLower(id.String())+".mp4")
	args := []string{"-nostdin", "-v", "error", "-y"}
	if id.Video() {
		args = append(args, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-pix_fmt", "yuv420p", "-an")
	} else {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-vn")
	}
	args = append(args, "-t", clipSeconds)
	args = append(args, encoderArgs[id]...)
	args = append(args, extra...)
	args = append(args, "-movflags", "+frag_keyframe+empty_moov+default_base_moof+delay_moov", name)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
	return readClip(t, name, id)
}

// boxPayload is a box's bytes without its 8-byte header.
func boxPayload(t testing.TB, b mp4.Box) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()[8:]
}

// opusHead turns a dOps payload (big-endian, version 0) back into the
// OpusHead (little-endian, version 1) an E-RTMP sequence start carries.
func opusHead(d []byte) []byte {
	h := append([]byte("OpusHead"), 1, d[1])
	h = binary.LittleEndian.AppendUint16(h, binary.BigEndian.Uint16(d[2:]))
	h = binary.LittleEndian.AppendUint32(h, binary.BigEndian.Uint32(d[4:]))
	h = binary.LittleEndian.AppendUint16(h, binary.BigEndian.Uint16(d[8:]))
	return append(h, d[10:]...)
}

func readClip(t testing.TB, name string, id codec.ID) clip {
	t.Helper()
	f, err := mp4.ReadMP4File(name)
	if err != nil {
		t.Fatal(err)
	}
	trak := f.Init.Moov.Trak
	scale := int64(trak.Mdia.Mdhd.Timescale)
	var c clip
	var first []byte
	var samples []mp4.FullSample
	for _, seg := range f.Segments {
		for _, frag := range seg.Fragments {
			fs, err := frag.GetFullSamples(f.Init.Moov.Mvex.Trex)
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, fs...)
		}
	}
	if len(samples) == 0 {
		t.Fatalf("%s: no samples", name)
	}
	first = samples[0].Data
	ms := func(ticks int64) time.Duration {
		return time.Duration(ticks*1000/scale) * time.Millisecond // RTMP timestamps
	}
	kind := Audio
	switch e := trak.Mdia.Minf.Stbl.Stsd.Children[0].(type) {
	case *mp4.VisualSampleEntryBox:
		kind = Video
		var rec []byte
		switch {
		case e.AvcC != nil:
			rec = boxPayload(t, e.AvcC)
		case e.HvcC != nil:
			rec = boxPayload(t, e.HvcC)
		case e.Av1C != nil:
			rec = boxPayload(t, e.Av1C)
		case e.VppC != nil:
			rec = boxPayload(t, e.VppC)
		}
		if c.video, err = codec.ParseVideo(id, rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	case *mp4.AudioSampleEntryBox:
		switch id {
		case codec.AAC:
			c.audio, err = codec.ParseAudio(id, e.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig)
		case codec.Opus:
			c.audio, err = codec.ParseAudio(id, opusHead(boxPayload(t, e.Dops)))
		case codec.FLAC:
			c.audio, err = codec.ParseAudio(id, boxPayload(t, e.DfLa)[8:8+34]) // the bare STREAMINFO
		default:
			c.audio, err = codec.AudioFromFrame(id, first)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, s := range samples {
		dts := ms(int64(s.DecodeTime))
		f := Frame{Kind: kind, DTS: dts, PTS: dts, Data: s.Data}
		if kind == Video {
			f.PTS = dts + ms(int64(s.CompositionTimeOffset))
			f.Key = s.Flags&(1<<16) == 0 // sample_is_non_sync_sample clear
		}
		c.frames = append(c.frames, f)
	}
	return c
}

// interleave merges video and audio frames by DTS, as an encoder sends them.
func interleave(v, a []Frame) []Frame {
	out := append(append([]Frame(nil), v...), a...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].DTS < out[j].DTS })
	return out
}

// ffprobeStream is what ffprobe says of the concatenated output.
type probed struct {
	codecs  map[string]string // codec_type -> codec_name
	packets map[string][]probePacket
}

type probePacket struct {
	dts time.Duration
	key bool
}

// probe runs ffprobe on name: stream codecs and packets (dts, key flag).
func probe(t testing.TB, name string) probed {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=index,codec_type,codec_name",
		"-of", "csv=p=0", name).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", name, err, out)
	}
	p := probed{codecs: map[string]string{}, packets: map[string][]probePacket{}}
	types := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, ",")
		if len(f) >= 3 {
			p.codecs[f[2]] = f[1]
			types[f[0]] = f[2]
		}
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=stream_index,dts_time,flags",
		"-of", "csv=p=0", name).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", name, err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, ",")
		if len(f) < 3 || f[1] == "N/A" {
			continue
		}
		d, err := time.ParseDuration(f[1] + "s")
		if err != nil {
			t.Fatalf("ffprobe dts %q", f[1])
		}
		typ := types[f[0]]
		p.packets[typ] = append(p.packets[typ], probePacket{dts: d, key: strings.HasPrefix(f[2], "K")})
	}
	return p
}

// decodeClean has ffmpeg decode name and fails on any message. The null
// muxer gets the frames' own timestamps (not a 1/frame-rate time base that
// millisecond timestamps would collide in).
func decodeClean(t testing.TB, name string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", name,
		"-fps_mode", "passthrough", "-enc_time_base:v", "1:90000", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("%s: ffmpeg decode: %v\n%s", filepath.Base(name), err, out)
	}
}

// ffmpegName is ffprobe's codec_name for a codec.
var ffmpegName = map[codec.ID]string{
	codec.AVC: "h264", codec.HEVC: "hevc", codec.AV1: "av1", codec.VP9: "vp9", codec.AAC: "aac",
	codec.Opus: "opus", codec.FLAC: "flac", codec.AC3: "ac3", codec.EAC3: "eac3", codec.MP3: "mp3",
}
