package main

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"github.com/sirupsen/logrus"
	rtmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/fount-live/fount/storage"
)

// hostileNames are stream names an attacker (or a confused encoder) may
// publish or request: traversal, encoded traversal, NUL, very long, odd
// unicode, control characters, Windows oddities. The same table is kept in
// the storage, ingest and playlist tests. ('?' is left out: in a publish
// what follows it is metadata, not the name.)
var hostileNames = []string{
	"", ".", "..", "...", "../x", "a/../../etc/passwd", "live/../x", "../../secret.txt",
	"%2e%2e/x", "%2e%2e%2fx", "..%2fx", "%252e%252e", "%2e%2e", "live%2fshow",
	"a\x00b", "%00", "\x00",
	`..\x`, `a\b`,
	"/etc/passwd", "//x", "/", "a//b", "a/b/", "./x",
	strings.Repeat("a", 300), strings.Repeat("a", 4096),
	"a\u202eb", "\u202egnp.ts", "a\u200db", "caf\u00e9", "cafe\u0301", "a\uff0fb", "\uff0e\uff0e\uff0f", "\uff0e\uff0e",
	"a\r\nb", "show\r\nSet-Cookie: x=1", "a\nb", "a\tb", "a\x7fb", "\x1b[31m",
	"a b", " ", " show", "show ",
	"a.", "show.", ".hidden",
	"CON", "con", "con.ts", "Nul", "aux.m3u8", "COM1", "lpt9.mp4",
	"a#b", "a%b", "a:b", "a*b", "a\"b", "a<b>", "a|b", "~x",
}

// hostileTargets are viewer request targets, sent as they are on the
// request line (net/http's client would clean or escape them).
var hostileTargets = []string{
	"/live/../../etc/passwd", "/live/good/../../../secret.txt", "/../secret.txt", "/..",
	"/live/%2e%2e/%2e%2e/secret.txt", "/live/good/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt", "/live/good/..%2f..%2f..%2fsecret.txt",
	"/live/good/%252e%252e/%252e%252e/secret.txt", "/live/good/index.m3u8%00", "/live/good%00/index.m3u8", "/live/good/%00",
	`/live/good/..\..\..\secret.txt`, "/live/good/%5c..%5c..%5csecret.txt",
	"/etc/passwd", "//etc/passwd", "/live//good/index.m3u8", "/live/good//index.m3u8", "/live/good/index.m3u8/",
	"/live/" + strings.Repeat("a", 300) + "/index.m3u8", "/live/good/" + strings.Repeat("a", 4096),
	"/live/good/" + strings.Repeat("a", 1<<20), "/live/x/index.m3u8?q=" + strings.Repeat("q", 1<<20),
	"/live/caf%C3%A9/index.m3u8", "/live/cafe%CC%81/index.m3u8", "/live/%E2%80%AEgood/index.m3u8", "/live/go%E2%80%8Dod/index.m3u8",
	"/live%EF%BC%8Fgood/index.m3u8", "/live/good/%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret.txt", "/live/good/．．／．．／secret.txt",
	"/live/a%0d%0aSet-Cookie:%20x=1/index.m3u8", "/live/good/%0d%0aLocation:%20http:%2f%2fevil",
	"/live/a%20b/index.m3u8", "/live/good%20/index.m3u8", "/live/.../index.m3u8", "/live/good./index.m3u8",
	"/live/.hidden/index.m3u8", "/live/CON/index.m3u8", "/live/good/con.ts",
	"/live/live/good/index.m3u8", "/LIVE/good/index.m3u8", "/live/%67ood/index.m3u8", "/live%2fgood/index.m3u8",
	"http://evil.example/live/../../secret.txt",
}

// rawRequest sends target exactly as given on the request line and returns
// the status, headers and (at most 64 KiB of) body.
func rawRequest(t *testing.T, addr, method, target string) (int, http.Header, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, method+" "+target+" HTTP/1.1\r\nHost: fount.test\r\nConnection: close\r\n\r\n")
		wrote <- err
	}()
	defer func() { c.Close(); <-wrote }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %.80q: no response: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header, string(body)
}

// rtmpPublish publishes name with go-rtmp's client, which sends any name as
// it is (ffmpeg would escape or refuse some), and returns once the request
// is sent; the caller closes the connection. go-rtmp's Connect and
// CreateStream have no timeout of their own.
func rtmpPublish(t *testing.T, addr, name string) *rtmp.ClientConn {
	t.Helper()
	quiet := logrus.New()
	quiet.Out = io.Discard
	cc, err := rtmp.Dial("rtmp", addr, &rtmp.ConnConfig{Logger: quiet})
	if err != nil {
		t.Fatalf("rtmp dial: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		if err := cc.Connect(&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{App: "live", Type: "nonprivate", FlashVer: "FMLE/3.0", TCURL: "rtmp://" + addr + "/live"}}); err != nil {
			errc <- err
			return
		}
		st, err := cc.CreateStream(nil, 0)
		if err != nil {
			errc <- err
			return
		}
		errc <- st.Publish(&message.NetStreamPublish{PublishingName: name, PublishingType: "live"})
	}()
	select {
	case err := <-errc:
		if err != nil {
			cc.Close()
			t.Fatalf("publish %.40q: %v", name, err)
		}
	case <-time.After(10 * time.Second):
		cc.Close()
		<-errc
		t.Fatalf("publish %.40q: no answer from fount", name)
	}
	return cc
}

// attackWhileStreaming publishes a good stream with ffmpeg and, while it
// runs, publishes every hostile name and requests every hostile path. Then
// the good stream must be whole and continuous, and fount's log must hold
// one refusal per hostile publish and nothing injected.
func attackWhileStreaming(t *testing.T, o *origin, src string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	push := o.push(ctx, t, "good", realtime(src), "-c", "copy")
	url0 := o.url("/live/good/index.m3u8")
	awaitPlaylist(t, url0, 15*time.Second, "a first segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	before := o.rtmpRefused(t)
	for i, name := range hostileNames {
		cc := rtmpPublish(t, o.rtmp, name)
		deadline := time.Now().Add(10 * time.Second)
		for o.rtmpRefused(t) < before+float64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("publish of %.40q was not refused", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cc.Close()
	}

	var targets []string
	targets = append(targets, hostileTargets...)
	for _, n := range hostileNames {
		e := url.PathEscape(n)
		targets = append(targets, "/live/"+e+"/index.m3u8", "/live/good/"+e, "/"+e+"/good/index.m3u8")
	}
	for _, target := range targets {
		code, h, body := rawRequest(t, o.http, "GET", target)
		// A request line beyond the server's header limit never reaches a
		// handler: net/http answers 431 itself.
		tooLarge := code == http.StatusRequestHeaderFieldsTooLarge && len(target) > 8<<10
		if code != http.StatusBadRequest && code != http.StatusNotFound && !tooLarge {
			t.Errorf("GET %.80q: %d, want 400 or 404 (Location %q)", target, code, h.Get("Location"))
		}
		if strings.Contains(body, "TOP-SECRET") || strings.Contains(body, "root:") || h.Get("Set-Cookie") != "" {
			t.Errorf("GET %.80q: leaked %q %.200q", target, h, body)
		}
	}

	if err := push.Wait(); err != nil {
		t.Fatalf("ffmpeg push of the good stream: %v\n%s", err, push.Stderr.(*syncBuffer).String())
	}
	p, _ := awaitPlaylist(t, url0, 10*time.Second, "the whole 12 s push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 11.9
	})
	if p.SeqNo != 0 {
		t.Errorf("media sequence %d, want 0: the good stream restarted", p.SeqNo)
	}
	checkContinuity(t, fetchSegments(t, o, "/live/good/", p), true, true)

	logs := o.logs.String()
	if n := strings.Count(logs, `msg="rtmp publish refused`); n != len(hostileNames) {
		t.Errorf("%d refusal lines for %d hostile publishes", n, len(hostileNames))
	}
	for line := range strings.Lines(logs) {
		if !strings.HasPrefix(line, "time=") {
			t.Errorf("log line not written by fount (injected?): %.200q", line)
		}
	}
	if strings.ContainsAny(logs, "\x00\r\x1b\u202e") {
		t.Error("raw control or bidi characters in fount's log")
	}
}

// rtmpRefused reads fount_publishes_total{result="refused"}.
func (o *origin) rtmpRefused(t *testing.T) float64 {
	t.Helper()
	v, _ := value(scrape(t, o), "fount_publishes_total", map[string]string{"result": "refused"})
	return v
}

// storedPaths lists every file below root, relative and slash-separated,
// leaving out what the S3 server keeps for itself.
func storedPaths(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".vgwlocks" || e.Name() == ".sgwtmp") {
			return filepath.SkipDir
		}
		if !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOnlyGood fails unless every stored file (except the given extra
// ones) belongs to the good stream.
func checkOnlyGood(t *testing.T, files []string, under string, extra ...string) {
	t.Helper()
	good := 0
	for _, f := range files {
		switch {
		case slices.Contains(extra, f):
		case strings.HasPrefix(f, under+"live/good/"):
			good++
		default:
			t.Errorf("unexpected file stored: %q", f)
		}
	}
	if good == 0 {
		t.Errorf("nothing of the good stream stored: %q", files)
	}
}

func TestE2EHostileNamesDir(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	// The store sits in a parent holding a decoy where a traversal from
	// the store or a stream directory would land.
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "secret.txt"), []byte("TOP-SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := startClassic(t, func(c *config) {
		c.Storage, c.PlaylistSize = "dir:"+filepath.Join(parent, "store"), 10
	})
	attackWhileStreaming(t, o, src)
	o.stop(t)
	checkOnlyGood(t, storedPaths(t, parent), "store/", "secret.txt")
}

func TestE2EHostileNamesS3(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	v := startVersitygw(t, "fount-names")
	t.Setenv("AWS_ACCESS_KEY_ID", "fountkey")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fountsecret")
	if err := os.WriteFile(filepath.Join(v.dir, "secret.txt"), []byte("TOP-SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := startClassic(t, func(c *config) {
		c.Storage, c.S3Endpoint, c.PlaylistSize = "s3://fount-names/edge", "http://"+v.addr, 10
	})
	attackWhileStreaming(t, o, src)
	o.stop(t) // flushes the uploads

	bucket, err := storage.NewS3(context.Background(), storage.S3Config{Bucket: "fount-names", Endpoint: "http://" + v.addr, AccessKey: "fountkey", SecretKey: "fountsecret"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := bucket.Keys(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	checkOnlyGood(t, keys, "edge/")
	checkOnlyGood(t, storedPaths(t, v.dir), "fount-names/edge/", "secret.txt")
}
