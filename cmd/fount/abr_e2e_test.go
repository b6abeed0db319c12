package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/ingest/ertmptest"
)

// End-to-end tests of adaptive bitrate from grouped pushes: one ffmpeg
// process sends a 3-rendition ladder, each rendition to its own
// ?variant=, and the multivariant playlist, the renditions' alignment and
// the I-frame playlists are read back with grafov/m3u8 and ffprobe.

// The ladder is abrLadder (abr_browser_test.go): one source, three sizes,
// the same forced keyframes.

func ladderNames() []string {
	var n []string
	for _, r := range abrLadder {
		n = append(n, r.name)
	}
	return n
}

// ladderSource is the ffmpeg input and filter for the ladder: one source
// scaled to each rung ([r0], [r1], [r2]).
func ladderSource(seconds int) []string {
	args := []string{"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	if seconds > 0 {
		args = append(args, "-t", strconv.Itoa(seconds))
	}
	return append(args, "-filter_complex", "[0:v]split=3[r0][b][c];[b]scale=854:480[r1];[c]scale=640:360[r2]")
}

var (
	ladderOnce sync.Once
	ladderFile string
	ladderErr  error
)

// ladderClip encodes the ladder once per test binary (30 s, long enough
// that no test loops it: a loop shifts the keyframes by the audio's
// padding), so that the tests that only need its renditions push it with
// -c copy.
func ladderClip(t *testing.T) string {
	t.Helper()
	requireTool(t, "ffmpeg")
	ladderOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fount-abr-")
		if err != nil {
			ladderErr = err
			return
		}
		ladderFile = filepath.Join(dir, "ladder.mkv")
		args := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, ladderSource(30)...)
		for i, r := range abrLadder {
			args = append(args, "-map", "[r"+strconv.Itoa(i)+"]")
			args = append(args, abrVideoArgs(":"+strconv.Itoa(i), r)...)
		}
		args = append(args, "-map", "1:a", "-c:a", "aac", "-b:a", "96k", ladderFile)
		if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
			ladderErr = fmt.Errorf("encoding the ladder: %v\n%s", err, out)
		}
	})
	if ladderErr != nil {
		t.Fatal(ladderErr)
	}
	return ladderFile
}

// pushLadder pushes each rung of the ladder file to live/name?variant=RUNG
// from one ffmpeg process (-c copy), in real time.
func (o *origin) pushLadder(ctx context.Context, t *testing.T, name string) *exec.Cmd {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", ladderClip(t)}
	for i, r := range abrLadder {
		args = append(args, "-map", "0:v:"+strconv.Itoa(i), "-map", "0:a", "-c", "copy", "-f", "flv", "rtmp://"+o.rtmp+"/live/"+name+"?variant="+r.name)
	}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stderr = &syncBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// pushRung pushes one rung of the ladder file to its variant.
func (o *origin) pushRung(ctx context.Context, t *testing.T, name string, i int) *exec.Cmd {
	r := abrLadder[i]
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", ladderClip(t),
		"-map", "0:v:" + strconv.Itoa(i), "-map", "0:a", "-c", "copy", "-f", "flv", "rtmp://" + o.rtmp + "/live/" + name + "?variant=" + r.name}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stderr = &syncBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// awaitMaster polls the multivariant playlist until cond holds.
func awaitMaster(t *testing.T, url string, timeout time.Duration, what string, cond func(*m3u8.MasterPlaylist) bool) (*m3u8.MasterPlaylist, []byte) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []byte
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = body
			if resp.StatusCode == 200 {
				if p, lt, err := m3u8.DecodeFrom(bytes.NewReader(body), true); err == nil && lt == m3u8.MASTER && cond(p.(*m3u8.MasterPlaylist)) {
					return p.(*m3u8.MasterPlaylist), body
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last:\n%s", timeout, what, last)
	return nil, nil
}

func streamInfs(mp *m3u8.MasterPlaylist) (streams, iframes []*m3u8.Variant) {
	for _, v := range mp.Variants {
		if v.Iframe {
			iframes = append(iframes, v)
		} else {
			streams = append(streams, v)
		}
	}
	return
}

// checkLadder checks the multivariant playlist lists the ladder, highest
// first, with what a player picks a variant by.
func checkLadder(t *testing.T, mp *m3u8.MasterPlaylist, body []byte, fps float64) {
	t.Helper()
	streams, iframes := streamInfs(mp)
	if len(streams) != len(abrLadder) || len(iframes) != len(abrLadder) {
		t.Fatalf("%d variants and %d I-frame variants, want %d each:\n%s", len(streams), len(iframes), len(abrLadder), body)
	}
	for i, r := range abrLadder {
		v := streams[i]
		if v.URI != r.name+"/index.m3u8" || v.Resolution != fmt.Sprintf("%dx%d", r.width, r.height) {
			t.Errorf("variant %d: %s %s, want %s/index.m3u8 %dx%d", i, v.URI, v.Resolution, r.name, r.width, r.height)
		}
		if !strings.HasPrefix(v.Codecs, "avc1.") || !strings.HasSuffix(v.Codecs, ",mp4a.40.2") {
			t.Errorf("variant %s CODECS %q", r.name, v.Codecs)
		}
		if fps > 0 && math.Abs(v.FrameRate-fps) > 0.5 {
			t.Errorf("variant %s FRAME-RATE %.3f, want %.0f", r.name, v.FrameRate, fps)
		}
		// The measured peak: above the nominal rate minus a third (CBR
		// caps it), and never wildly above.
		if lo, hi := uint32(r.kbps*1000*2/3), uint32(r.kbps*1000*3); v.Bandwidth < lo || v.Bandwidth > hi || v.AverageBandwidth == 0 || v.AverageBandwidth > v.Bandwidth {
			t.Errorf("variant %s BANDWIDTH %d AVERAGE-BANDWIDTH %d, want %d..%d and average <= peak", r.name, v.Bandwidth, v.AverageBandwidth, lo, hi)
		}
		if i > 0 && v.Bandwidth >= streams[i-1].Bandwidth {
			t.Errorf("variants not sorted by bandwidth: %s %d after %d", r.name, v.Bandwidth, streams[i-1].Bandwidth)
		}
		if iframes[i].URI != r.name+"/iframes.m3u8" || iframes[i].Bandwidth == 0 {
			t.Errorf("I-frame variant %d: %s BANDWIDTH %d", i, iframes[i].URI, iframes[i].Bandwidth)
		}
	}
	for _, s := range []string{"#EXT-X-INDEPENDENT-SEGMENTS", "VIDEO-RANGE=SDR"} {
		if !bytes.Contains(body, []byte(s)) {
			t.Errorf("multivariant playlist lacks %s:\n%s", s, body)
		}
	}
	if t.Failed() {
		t.Logf("multivariant playlist:\n%s", body)
	}
}

// renditionPlaylist fetches one rendition's media playlist.
func renditionPlaylist(t *testing.T, o *origin, name, rend string) (*m3u8.MediaPlaylist, []byte) {
	t.Helper()
	code, body, _ := httpGet(t, o.url("/live/"+name+"/"+rend+"/index.m3u8"))
	if code != 200 {
		t.Fatalf("%s: %d %s", rend, code, body)
	}
	p, lt, err := m3u8.DecodeFrom(bytes.NewReader(body), true)
	if err != nil || lt != m3u8.MEDIA {
		t.Fatalf("%s: not a media playlist (%v):\n%s", rend, err, body)
	}
	return p.(*m3u8.MediaPlaylist), body
}

// fetchFile downloads url (a byte range when size > 0) into dir/file,
// after prefix (an fMP4 init segment).
func fetchFile(t *testing.T, url string, off, size int64, prefix []byte, file string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if size > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+size-1))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := 200
	if size > 0 {
		want = 206
	}
	if resp.StatusCode != want || size > 0 && int64(len(b)) != size {
		t.Fatalf("GET %s range %d+%d: %d, %d bytes", url, off, size, resp.StatusCode, len(b))
	}
	if err := os.WriteFile(file, append(append([]byte(nil), prefix...), b...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// firstVideoPTS returns the PTS of a segment's first video packet.
func firstVideoPTS(t *testing.T, file string) float64 {
	t.Helper()
	for _, p := range probe(t, file).Packets {
		if p.CodecType == "video" {
			return f64(p.PTSTime)
		}
	}
	t.Fatalf("%s has no video", file)
	return 0
}

// initOf returns the bytes of the init segment a playlist maps (nil for TS).
func initOf(t *testing.T, o *origin, base string, body []byte) []byte {
	t.Helper()
	for _, line := range strings.Split(string(body), "\n") {
		if u, ok := strings.CutPrefix(line, `#EXT-X-MAP:URI="`); ok {
			u = strings.TrimSuffix(u, `"`)
			code, b, _ := httpGet(t, o.url(base+u))
			if code != 200 {
				t.Fatalf("init %s: %d", u, code)
			}
			return b // the last one listed is the one in force
		}
	}
	return nil
}

// checkAligned checks that segment N of every rendition starts at the same
// PTS, for the numbers they all list, and that each decodes.
func checkAligned(t *testing.T, o *origin, name string, rends []string) {
	t.Helper()
	dir := t.TempDir()
	lists := map[string]*m3u8.MediaPlaylist{}
	bodies := map[string][]byte{}
	var from, to uint64 = 0, math.MaxUint64
	for _, r := range rends {
		p, body := renditionPlaylist(t, o, name, r)
		lists[r], bodies[r] = p, body
		n := uint64(p.Count())
		from, to = max(from, p.SeqNo), min(to, p.SeqNo+n)
	}
	if to < from+2 {
		t.Fatalf("the renditions list fewer than 2 common segments (%d..%d)", from, to)
	}
	for msn := to - 2; msn < to; msn++ {
		var ref float64
		for i, r := range rends {
			p := lists[r]
			seg := p.Segments[msn-p.SeqNo]
			file := filepath.Join(dir, fmt.Sprintf("%s-%d", r, msn))
			fetchFile(t, o.url("/live/"+name+"/"+r+"/"+seg.URI), 0, 0, initOf(t, o, "/live/"+name+"/"+r+"/", bodies[r]), file)
			pts := firstVideoPTS(t, file)
			if i == 0 {
				ref = pts
			} else if math.Abs(pts-ref) > 0.001 {
				t.Errorf("segment %d: %s starts at %.3f s, %s at %.3f s", msn, r, pts, rends[0], ref)
			}
		}
		t.Logf("segment %d starts at %.3f s in all %d renditions", msn, ref, len(rends))
	}
}

// checkIFrames checks each rendition's I-frame playlist: every byte range
// (after the init segment, in fMP4) decodes to exactly one picture, a
// keyframe.
func checkIFrames(t *testing.T, o *origin, name string, rends []string, entries int) {
	t.Helper()
	dir := t.TempDir()
	for _, r := range rends {
		base := "/live/" + name + "/" + r + "/"
		code, body, _ := httpGet(t, o.url(base+"iframes.m3u8"))
		if code != 200 {
			t.Fatalf("%s I-frame playlist: %d %s", r, code, body)
		}
		p, lt, err := m3u8.DecodeFrom(bytes.NewReader(body), true)
		if err != nil || lt != m3u8.MEDIA || !p.(*m3u8.MediaPlaylist).Iframe {
			t.Fatalf("%s: not an I-frame playlist (%v):\n%s", r, err, body)
		}
		mp := p.(*m3u8.MediaPlaylist)
		init := initOf(t, o, base, body)
		segs := segments(mp)
		if len(segs) < entries {
			t.Fatalf("%s: %d I-frames listed, want >= %d:\n%s", r, len(segs), entries, body)
		}
		for i, s := range segs[len(segs)-entries:] {
			if s.Limit <= 0 {
				t.Fatalf("%s entry %d has no byte range:\n%s", r, i, body)
			}
			file := filepath.Join(dir, fmt.Sprintf("%s-i%d", r, i))
			fetchFile(t, o.url(base+s.URI), s.Offset, s.Limit, init, file)
			out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=key_frame,pict_type", "-of", "json", file).Output()
			if err != nil {
				t.Fatalf("ffprobe %s %s@%d: %v", r, s.URI, s.Offset, err)
			}
			var fr struct {
				Frames []struct {
					Key  int    `json:"key_frame"`
					Type string `json:"pict_type"`
				} `json:"frames"`
			}
			json.Unmarshal(out, &fr)
			if len(fr.Frames) != 1 || fr.Frames[0].Key != 1 {
				t.Errorf("%s %s bytes %d@%d decode to %+v, want one keyframe", r, s.URI, s.Limit, s.Offset, fr.Frames)
			}
		}
	}
}

// renditionAPI reads a rendition's alignment from the API.
func renditionAPI(t *testing.T, o *origin, name, rend string) (aligned, misaligned uint64) {
	t.Helper()
	code, body, _ := httpGet(t, "http://"+o.api+"/api/v1/streams/live/"+name+"/"+rend)
	var s struct {
		Rendition string `json:"rendition"`
		Alignment struct {
			Aligned    uint64 `json:"aligned_segments"`
			Misaligned uint64 `json:"misaligned_segments"`
		} `json:"alignment"`
	}
	if code != 200 || json.Unmarshal(body, &s) != nil || s.Rendition != rend {
		t.Fatalf("API for rendition %s: %d %s", rend, code, body)
	}
	return s.Alignment.Aligned, s.Alignment.Misaligned
}

// TestE2EABRGroupedLive: one ffmpeg process encodes the ladder live from
// one source with forced keyframes and pushes each rendition to its own
// ?variant= (fount's defaults: LL-HLS, fMP4).
func TestE2EABRGroupedLive(t *testing.T) {
	lockEndToEndLogged(t)
	requireTool(t, "ffmpeg")
	requireTool(t, "ffprobe")
	o := startOrigin(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// One process, one source, one output per rendition, each encoded
	// with the same forced keyframes.
	args := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re"}, ladderSource(0)...)
	for i, r := range abrLadder {
		args = append(args, "-map", "[r"+strconv.Itoa(i)+"]", "-map", "1:a")
		args = append(args, abrVideoArgs("", r)...)
		args = append(args, "-c:a", "aac", "-b:a", "96k", "-f", "flv", "rtmp://"+o.rtmp+"/live/abr?variant="+r.name)
	}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("ffmpeg:\n%s", stderr.String())
		}
	}()
	mp, body := awaitMaster(t, o.url("/live/abr/index.m3u8"), 30*time.Second, "3 renditions with 3 segments each", func(mp *m3u8.MasterPlaylist) bool {
		s, _ := streamInfs(mp)
		if len(s) != 3 {
			return false
		}
		for _, r := range abrLadder {
			if resp, err := http.Get(o.url("/live/abr/" + r.name + "/index.m3u8")); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if bytes.Count(b, []byte("#EXTINF")) < 3 {
					return false
				}
			}
		}
		return true
	})
	checkLadder(t, mp, body, 30)
	checkAligned(t, o, "abr", ladderNames())
	checkIFrames(t, o, "abr", ladderNames(), 2)
	for _, r := range abrLadder {
		al, mis := renditionAPI(t, o, "abr", r.name)
		if mis != 0 || al == 0 {
			t.Errorf("rendition %s: %d aligned, %d misaligned segments", r.name, al, mis)
		}
	}
}

// awaitLadder waits until the multivariant playlist lists the ladder and
// every rendition has at least n segments.
func awaitLadder(t *testing.T, o *origin, name string, rends []string, n int, timeout time.Duration) (*m3u8.MasterPlaylist, []byte) {
	t.Helper()
	return awaitMaster(t, o.url("/live/"+name+"/index.m3u8"), timeout, fmt.Sprintf("%d renditions with %d segments each", len(rends), n), func(mp *m3u8.MasterPlaylist) bool {
		if s, _ := streamInfs(mp); len(s) < len(rends)-countAudio(rends) {
			return false
		}
		for _, r := range rends {
			resp, err := http.Get(o.url("/live/" + name + "/" + r + "/index.m3u8"))
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Count(b, []byte("#EXTINF")) < n {
				return false
			}
		}
		return true
	})
}

func countAudio(rends []string) int {
	n := 0
	for _, r := range rends {
		if strings.HasPrefix(r, "a") {
			n++
		}
	}
	return n
}

// TestE2EABRFormats: grouped pushes in both segment formats, LL-HLS on and
// off, with memory, disk and S3 storage; the ladder is pushed with -c copy
// from one ffmpeg process.
func TestE2EABRFormats(t *testing.T) {
	lockEndToEndLogged(t)
	requireTool(t, "ffprobe")
	clip := ladderClip(t)
	v := startVersitygw(t, "fount-abr")
	t.Setenv("AWS_ACCESS_KEY_ID", "fountkey")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fountsecret")
	cases := []struct {
		name string
		mod  func(c *config)
		disk bool
	}{
		{"ts-classic-dir", func(c *config) { classic(c) }, true},
		{"ts-ll-memory", func(c *config) { c.SegmentFormat = "ts" }, false},
		{"fmp4-classic-s3", func(c *config) {
			c.LowLatency = false
			c.Storage, c.S3Endpoint = "s3://fount-abr/edge", "http://"+v.addr
		}, false},
	}
	var wg sync.WaitGroup
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := startOrigin(t, func(c *config) {
				c.PlaylistSize = 10
				tc.mod(c)
				if tc.disk {
					c.Storage = "dir:" + dir
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			push := o.pushLadder(ctx, t, "abr")
			wg.Add(1)
			defer func() { cancel(); push.Wait(); wg.Done() }()
			_ = clip
			mp, body := awaitLadder(t, o, "abr", ladderNames(), 3, 30*time.Second)
			checkLadder(t, mp, body, 30)
			checkAligned(t, o, "abr", ladderNames())
			checkIFrames(t, o, "abr", ladderNames(), 2)
			if tc.disk {
				for _, f := range []string{"live/abr/index.m3u8", "live/abr/720p/index.m3u8", "live/abr/360p/iframes.m3u8"} {
					if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !bytes.HasPrefix(b, []byte("#EXTM3U")) {
						t.Errorf("%s on disk: %v", f, err)
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestE2EABRReconnect: each rendition from its own ffmpeg; one is stopped
// and started again (its clock restarts at zero). The others go on; the
// reconnected one continues with EXT-X-GAP for the numbers it missed and a
// discontinuity at the same number in every rendition, and its timestamps
// are moved onto the others' so that it lines up again at once.
func TestE2EABRReconnect(t *testing.T) {
	lockEndToEndLogged(t)
	requireTool(t, "ffprobe")
	ladderClip(t)
	o := startOrigin(t, func(c *config) { c.PlaylistSize = 12 })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pushes := make([]*exec.Cmd, len(abrLadder))
	for i := range abrLadder {
		pushes[i] = o.pushRung(ctx, t, "rc", i)
	}
	defer func() {
		cancel()
		for _, p := range pushes {
			p.Wait()
		}
	}()
	awaitLadder(t, o, "rc", ladderNames(), 2, 30*time.Second)
	last := len(abrLadder) - 1
	pushes[last].Process.Kill()
	pushes[last].Wait()
	// Gone: the multivariant playlist drops it, the others go on.
	awaitMaster(t, o.url("/live/rc/index.m3u8"), 15*time.Second, "the stopped rendition to leave", func(mp *m3u8.MasterPlaylist) bool {
		s, _ := streamInfs(mp)
		return len(s) == len(abrLadder)-1
	})
	p0, _ := renditionPlaylist(t, o, "rc", abrLadder[0].name)
	awaitPlaylist(t, o.url("/live/rc/"+abrLadder[0].name+"/index.m3u8"), 15*time.Second, "one more segment of the others", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return p.SeqNo+uint64(p.Count()) > p0.SeqNo+uint64(p0.Count())
	})
	pushes[last] = o.pushRung(ctx, t, "rc", last)
	awaitPlaylist(t, o.url("/live/rc/"+abrLadder[last].name+"/index.m3u8"), 20*time.Second, "three segments after the discontinuity", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		segs := segments(p)
		for i, s := range segs {
			if s.Discontinuity {
				return len(segs)-i >= 3
			}
		}
		return false
	})
	// Discontinuity sequence number of each listed segment, per rendition.
	dsn := func(r string) (map[uint64]uint64, map[uint64]bool, []byte) {
		p, body := renditionPlaylist(t, o, "rc", r)
		seq, out, gaps := p.DiscontinuitySeq, map[uint64]uint64{}, map[uint64]bool{}
		for i, s := range segments(p) {
			if s.Discontinuity {
				seq++
			}
			out[p.SeqNo+uint64(i)] = seq
		}
		for _, m := range strings.Split(string(body), "#EXT-X-GAP\n#EXTINF:")[1:] {
			_, uri, _ := strings.Cut(m, "\n")
			uri, _, _ = strings.Cut(uri, "\n")
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(uri, "seg"), filepath.Ext(uri)), 10, 64)
			gaps[n] = true
		}
		return out, gaps, body
	}
	back, gaps, backBody := dsn(abrLadder[last].name)
	if len(gaps) == 0 {
		t.Errorf("the reconnected rendition lists no EXT-X-GAP for the numbers it missed:\n%s", backBody)
	}
	for _, r := range abrLadder[:last] {
		other, _, body := dsn(r.name)
		common := 0
		for msn, d := range back {
			if od, ok := other[msn]; ok {
				common++
				if od != d {
					t.Errorf("segment %d: discontinuity sequence %d in %s, %d in %s\n%s\n%s", msn, d, abrLadder[last].name, od, r.name, backBody, body)
					break
				}
			}
		}
		if common < 3 {
			t.Errorf("%s and %s share %d numbers, want >= 3", r.name, abrLadder[last].name, common)
		}
	}
	// Its clock restarted at zero: fount moves it onto the others', so it
	// lines up from its first segment back.
	_, mis := renditionAPI(t, o, "rc", abrLadder[last].name)
	if mis != 0 {
		t.Errorf("the reconnected rendition has %d misaligned segments", mis)
	}
	p, _ := renditionPlaylist(t, o, "rc", abrLadder[last].name)
	awaitPlaylist(t, o.url("/live/rc/"+abrLadder[last].name+"/index.m3u8"), 10*time.Second, "two more segments", func(q *m3u8.MediaPlaylist, _ []byte) bool {
		return q.SeqNo+uint64(q.Count()) >= p.SeqNo+uint64(p.Count())+2
	})
	if _, mis2 := renditionAPI(t, o, "rc", abrLadder[last].name); mis2 != mis {
		t.Errorf("the reconnected rendition still misaligned: %d then %d misaligned segments", mis, mis2)
	}
	checkAligned(t, o, "rc", ladderNames())
}

// TestE2EMultitrackBackWithOneTrack: a multitrack encoder (two video
// tracks) comes back with one track of each kind. The stream keeps its
// shape: the tracks continue renditions v0 and a0, after a discontinuity,
// and the multivariant playlist still lists them.
func TestE2EMultitrackBackWithOneTrack(t *testing.T) {
	requireTool(t, "ffmpeg")
	dir := t.TempDir()
	spec := ertmptest.ClipSpec{Video: "avc1", Audio: "mp4a", Width: 320, Height: 180, FPS: 30, GOP: 60, Duration: 4 * time.Second, VideoKbps: 250, AudioKbps: 64}
	base := loadClip(t, ertmptest.MakeClip(t, dir, spec))
	spec.Audio, spec.VideoKbps = "", 150
	extra := findTrack(t, loadClip(t, ertmptest.MakeClip(t, dir, spec)), ertmptest.Video).WithID(1)
	o := startOrigin(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := "rtmp://" + o.rtmp + "/live/rj"
	if err := ertmptest.Publish(ctx, url, ertmptest.OBS, append(base, extra), ertmptest.Options{Realtime: true}); err != nil {
		t.Fatalf("multitrack publish: %v", err)
	}
	before, _ := renditionPlaylist(t, o, "rj", "v0")
	if err := ertmptest.Publish(ctx, url, ertmptest.Legacy, base, ertmptest.Options{Realtime: true}); err != nil {
		t.Fatalf("single-track publish: %v", err)
	}
	for _, r := range []string{"v0", "a0"} {
		p, body := awaitPlaylist(t, o.url("/live/rj/"+r+"/index.m3u8"), 10*time.Second, r+" continued after a discontinuity", func(p *m3u8.MediaPlaylist, _ []byte) bool {
			segs := segments(p)
			for i, s := range segs {
				if s.Discontinuity {
					return len(segs)-i >= 2
				}
			}
			return false
		})
		if r == "v0" && p.SeqNo+uint64(p.Count()) <= before.SeqNo+uint64(before.Count()) {
			t.Errorf("v0 did not go on: %d segments up to %d before, %d after\n%s", before.Count(), before.SeqNo, p.SeqNo, body)
		}
	}
	code, body, _ := httpGet(t, o.url("/live/rj/index.m3u8"))
	if code != 200 || !bytes.Contains(body, []byte("#EXT-X-STREAM-INF")) || !bytes.Contains(body, []byte("v0/index.m3u8")) || !bytes.Contains(body, []byte(`URI="a0/index.m3u8"`)) {
		t.Errorf("the stream lost its shape: %d\n%s", code, body)
	}
}
