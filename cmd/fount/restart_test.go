package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// With directory storage, a restarted fount that sees the same stream
// published again continues its playlist: the old segments stay listed and
// served, sequence numbers go on after a discontinuity, and no URL (segment
// or init segment) is reused for other bytes.
func TestE2ERestartContinuity(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	dir := t.TempDir()
	mod := func(c *config) { c.Storage, c.PlaylistSize = "dir:"+dir, 20 }

	o1 := startOrigin(t, mod)
	o1.pushWait(t, "rs", []string{"-re", "-t", "5", "-i", src}, "-c", "copy")
	first, _ := awaitPlaylist(t, o1.url("/live/rs/index.m3u8"), 10*time.Second, "the first run", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 4.9
	})
	n1 := int(first.Count())
	old := map[string][]byte{}
	for _, name := range []string{"init0.mp4", segments(first)[0].URI} {
		_, b, _ := httpGet(t, o1.url("/live/rs/"+name))
		old[name] = b
	}
	o1.stop(t) // SIGTERM

	o2 := startOrigin(t, mod)
	o2.pushWait(t, "rs", []string{"-re", "-t", "5", "-i", src}, "-c", "copy")
	p, body := awaitPlaylist(t, o2.url("/live/rs/index.m3u8"), 10*time.Second, "the second run", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 9.8
	})
	if p.SeqNo != 0 || !strings.Contains(o2.logs.String(), "continuing a stream found in storage") {
		t.Fatalf("playlist did not continue (seq %d):\n%s", p.SeqNo, body)
	}
	for i, s := range segments(p) {
		if want := fmt.Sprintf("seg%d.m4s", i); s.URI != want {
			t.Errorf("segment %d is %s, want %s", i, s.URI, want)
		}
		if s.Discontinuity != (i == n1) {
			t.Errorf("%s: discontinuity %v, want it only on the first segment after the restart (%d)", s.URI, s.Discontinuity, n1)
		}
	}
	if !bytes.Contains(body, []byte(`#EXT-X-MAP:URI="init1.mp4"`)) || !bytes.Contains(body, []byte(`#EXT-X-MAP:URI="init0.mp4"`)) {
		t.Errorf("want init0 for the old segments and init1 for the new:\n%s", body)
	}
	for name, b := range old {
		if _, now, _ := httpGet(t, o2.url("/live/rs/"+name)); !bytes.Equal(now, b) {
			t.Errorf("%s changed bytes across the restart", name)
		}
	}
	// Every listed segment, old (served from storage) and new, decodes
	// after the init its EXT-X-MAP names.
	tmp := t.TempDir()
	for i, s := range segments(p) {
		initName := "init0.mp4"
		if i >= n1 {
			initName = "init1.mp4"
		}
		_, initData, _ := httpGet(t, o2.url("/live/rs/"+initName))
		code, seg, _ := httpGet(t, o2.url("/live/rs/"+s.URI))
		if code != 200 {
			t.Fatalf("%s: %d", s.URI, code)
		}
		file := filepath.Join(tmp, s.URI)
		os.WriteFile(file, append(append([]byte{}, initData...), seg...), 0o644)
		if out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("%s does not decode: %v %s", s.URI, err, out)
		}
	}
}
