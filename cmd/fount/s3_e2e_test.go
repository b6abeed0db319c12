package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/storage"
)

// versitygw is a real S3-compatible server on loopback, for tests.
type versitygw struct {
	bin, dir, addr string
	cmd            *exec.Cmd
}

func startVersitygw(t *testing.T, bucket string) *versitygw {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("versitygw is not installed (see .ci/run)")
			}
			t.Skip("versitygw not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v := &versitygw{bin: bin, dir: t.TempDir(), addr: l.Addr().String()}
	l.Close()
	os.Mkdir(filepath.Join(v.dir, bucket), 0o755) // a posix bucket is a directory
	v.start(t)
	t.Cleanup(v.kill)
	return v
}

func (v *versitygw) start(t *testing.T) {
	t.Helper()
	v.cmd = exec.Command(v.bin, "--access", "fountkey", "--secret", "fountsecret", "--port", v.addr, "posix", v.dir)
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + v.addr + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (v *versitygw) kill() {
	if v.cmd != nil {
		v.cmd.Process.Kill()
		v.cmd.Wait()
		v.cmd = nil
	}
}

// S3 storage: segments, init segments and playlists land in the bucket
// with their content types; when S3 goes away mid-stream viewers are still
// served from memory, and uploads catch up when it is back.
func TestE2ES3Storage(t *testing.T) {
	src := source(t)
	v := startVersitygw(t, "fount-e2e")
	t.Setenv("AWS_ACCESS_KEY_ID", "fountkey")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fountsecret")
	o := startOrigin(t, func(c *config) {
		c.Storage, c.S3Endpoint, c.PlaylistSize = "s3://fount-e2e/edge1", "http://"+v.addr, 20
	})
	bucket, err := storage.NewS3(context.Background(), storage.S3Config{Bucket: "fount-e2e", Prefix: "edge1", Endpoint: "http://" + v.addr, AccessKey: "fountkey", SecretKey: "fountsecret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	push := o.push(ctx, t, "s3", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	defer push.Wait()
	defer cancel()
	url := o.url("/live/s3/index.m3u8")
	awaitPlaylist(t, url, 15*time.Second, "two segments", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 2 })

	inBucket := func(key string) (storage.Object, bool) {
		obj, err := bucket.Get(context.Background(), key)
		return obj, err == nil
	}
	awaitKey := func(key string) storage.Object {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if obj, ok := inBucket(key); ok {
				return obj
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never reached the bucket", key)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for key, ct := range map[string]string{"live/s3/seg0.m4s": "video/mp4", "live/s3/init0.mp4": "video/mp4", "live/s3/index.m3u8": "application/vnd.apple.mpegurl"} {
		if obj := awaitKey(key); obj.ContentType != ct {
			t.Errorf("%s: content type %q, want %q", key, obj.ContentType, ct)
		}
	}
	_, served, _ := httpGet(t, o.url("/live/s3/seg0.m4s"))
	if obj, _ := inBucket("live/s3/seg0.m4s"); !bytes.Equal(obj.Data, served) {
		t.Error("seg0 in the bucket differs from what viewers get")
	}

	// S3 goes down: viewers carry on from memory.
	v.kill()
	p, _ := awaitPlaylist(t, url, 10*time.Second, "a segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })
	down := p.SeqNo + uint64(p.Count())
	p, _ = awaitPlaylist(t, url, 15*time.Second, "two more segments while S3 is down", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return p.SeqNo+uint64(p.Count()) >= down+2
	})
	last := segments(p)[p.Count()-1].URI
	if code, _, _ := httpGet(t, o.url("/live/s3/"+last)); code != 200 {
		t.Fatalf("%s not served while S3 is down: %d", last, code)
	}
	fams := scrape(t, o)
	if v, _ := value(fams, "fount_storage_uploads_total", map[string]string{"result": "retried"}); v < 1 {
		if pend, _ := value(fams, "fount_storage_uploads_pending", nil); pend < 1 {
			t.Errorf("metrics show neither retries nor pending uploads while S3 is down")
		}
	}

	// S3 is back: the backlog uploads.
	v.start(t)
	awaitKey("live/s3/" + last)
	deadline := time.Now().Add(30 * time.Second)
	for {
		pend, _ := value(scrape(t, o), "fount_storage_uploads_pending", nil)
		if pend == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v uploads still pending 30 s after S3 came back", pend)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
