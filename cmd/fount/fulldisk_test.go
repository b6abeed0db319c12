package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// A full disk is reported (log line, metric) without stopping ingest or
// viewers, who are served from memory.
func TestE2EFullDisk(t *testing.T) {
	src := source(t)
	dir := t.TempDir()
	// A 256 KiB tmpfs fills after a segment or two.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mounting a small tmpfs (CI runs as root): %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	o := startClassic(t, func(c *config) { c.Storage, c.PlaylistSize = "dir:"+dir, 10 })
	o.pushWait(t, "full", []string{"-re", "-t", "8", "-i", src}, "-c", "copy")
	p, _ := awaitPlaylist(t, o.url("/live/full/index.m3u8"), 10*time.Second, "the whole push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 7.9
	})
	checkContinuity(t, fetchSegments(t, o, "/live/full/", p), true, true)
	if !strings.Contains(o.logs.String(), "no space left on device") {
		t.Error("no log line says the disk is full")
	}
	if v, ok := value(scrape(t, o), "fount_errors_total", map[string]string{"kind": "storage"}); !ok || v < 1 {
		t.Errorf("fount_errors_total{kind=storage} = %v", v)
	}
}
