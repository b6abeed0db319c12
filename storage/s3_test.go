package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	testAccess = "fountkey"
	testSecret = "fountsecret123"
	testBucket = "fount-test"
)

// versitygwBin finds the versitygw binary, or skips the test, except in CI
// (env CI set) where a missing server is a failure.
func versitygwBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(gopath))) {
			p := filepath.Join(dir, "bin", "versitygw")
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	msg := "versitygw not found on PATH or in $(go env GOPATH)/bin; install with: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// s3Server is a versitygw process serving a posix directory.
type s3Server struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	out  *bytes.Buffer
}

func startS3Server(t *testing.T) *s3Server {
	t.Helper()
	s := &s3Server{t: t, bin: versitygwBin(t), dir: t.TempDir()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	l.Close()
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *s3Server) endpoint() string { return "http://" + s.addr }

// start runs versitygw and waits until it answers HTTP.
func (s *s3Server) start() {
	s.t.Helper()
	s.out = new(bytes.Buffer)
	s.cmd = exec.Command(s.bin, "--access", testAccess, "--secret", testSecret, "--port", s.addr, "posix", s.dir)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.endpoint() + "/")
		if err == nil {
			resp.Body.Close()
			// Keep reaping the process in the background.
			go func(ch chan error) { <-ch }(exited)
			return
		}
		select {
		case err := <-exited:
			s.cmd = nil
			s.t.Fatalf("versitygw exited: %v\n%s", err, s.out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw did not answer on %s: %v\n%s", s.addr, err, s.out)
		}
	}
}

// stop kills the server (as a crash would) and waits until the port is
// closed.
func (s *s3Server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd = nil
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Errorf("versitygw still listening on %s after kill", s.addr)
}

// createBucket makes the test bucket through the S3 API, so that the
// server records its owner.
func (s *s3Server) createBucket(t *testing.T, name string) {
	t.Helper()
	st, err := newS3Client(context.Background(), S3Config{Bucket: name, Endpoint: s.endpoint(), AccessKey: testAccess, SecretKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v\n%s", err, s.out)
	}
}

func newTestS3(t *testing.T, srv *s3Server, prefix string) *S3 {
	t.Helper()
	st, err := NewS3(context.Background(), S3Config{
		Bucket: testBucket, Prefix: prefix, Endpoint: srv.endpoint(),
		AccessKey: testAccess, SecretKey: testSecret,
	})
	if err != nil {
		t.Fatalf("NewS3: %v\n%s", err, srv.out)
	}
	return st
}

func TestS3RoundTrip(t *testing.T) {
	srv := startS3Server(t)
	srv.createBucket(t, testBucket)
	ctx := context.Background()
	s := newTestS3(t, srv, "origin/a")

	seg := bytes.Repeat([]byte{0x47}, 188*50)
	if err := s.Put(ctx, "live/show/seg1.ts", Object{Data: seg, ContentType: "video/mp2t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "live/show/index.m3u8", Object{Data: []byte("#EXTM3U\n"), ContentType: "application/vnd.apple.mpegurl"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "live/other/index.m3u8", Object{Data: []byte("#EXTM3U\n")}); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Get(ctx, "live/show/seg1.ts")
	if err != nil || !bytes.Equal(obj.Data, seg) || obj.ContentType != "video/mp2t" || obj.ModTime.IsZero() {
		t.Fatalf("get: %d bytes %q %v %v", len(obj.Data), obj.ContentType, obj.ModTime, err)
	}
	// No content type given: derived from the name.
	if obj, _ := s.Get(ctx, "live/other/index.m3u8"); obj.ContentType != "application/vnd.apple.mpegurl" {
		t.Errorf("derived content type %q", obj.ContentType)
	}
	// Overwrite replaces whole.
	s.Put(ctx, "live/show/index.m3u8", Object{Data: []byte("#EXTM3U\n#2\n"), ContentType: "application/vnd.apple.mpegurl"})
	if obj, _ := s.Get(ctx, "live/show/index.m3u8"); string(obj.Data) != "#EXTM3U\n#2\n" {
		t.Fatalf("overwrite: %q", obj.Data)
	}

	// What a CDN would see: the object under the prefix, path-style, with
	// its content type and Cache-Control. HeadObject is signed; the headers
	// are those a raw GET returns.
	for key, want := range map[string][2]string{
		"live/show/seg1.ts":    {"video/mp2t", "public, max-age=31536000, immutable"},
		"live/show/index.m3u8": {"application/vnd.apple.mpegurl", "no-cache"},
	} {
		h, err := s.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("origin/a/" + key)})
		if err != nil {
			t.Fatalf("head %s: %v", key, err)
		}
		if aws.ToString(h.ContentType) != want[0] || aws.ToString(h.CacheControl) != want[1] {
			t.Errorf("%s: Content-Type %q Cache-Control %q, want %q", key, aws.ToString(h.ContentType), aws.ToString(h.CacheControl), want)
		}
	}
	// The bytes are where the posix backend maps path-style keys.
	if b, err := os.ReadFile(filepath.Join(srv.dir, testBucket, "origin", "a", "live", "show", "seg1.ts")); err != nil || !bytes.Equal(b, seg) {
		t.Errorf("file under bucket dir: %d bytes, %v", len(b), err)
	}

	keys, err := s.Keys(ctx, "live/show/")
	if err != nil || strings.Join(keys, ",") != "live/show/index.m3u8,live/show/seg1.ts" {
		t.Fatalf("keys %v %v", keys, err)
	}
	if keys, _ := s.Keys(ctx, ""); len(keys) != 3 {
		t.Fatalf("all keys %v", keys)
	}
	if err := s.Delete(ctx, "live/show/seg1.ts"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "live/show/seg1.ts"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// S3 does not report deleting a missing key: nil (or ErrNotFound from
	// a server that does tell).
	if err := s.Delete(ctx, "live/show/seg1.ts"); err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Get(ctx, "live/none/x.ts"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

func TestS3Paging(t *testing.T) {
	srv := startS3Server(t)
	srv.createBucket(t, testBucket)
	ctx := context.Background()
	s := newTestS3(t, srv, "")
	// More than one ListObjectsV2 page (1000 keys) would be slow to write
	// here; ask for small pages instead through the same paginator.
	const n = 25
	for i := range n {
		if err := s.Put(ctx, fmt.Sprintf("live/p/%03d.ts", i), Object{Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	p := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String("live/p/"), MaxKeys: aws.Int32(10)})
	pages, total := 0, 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		total += len(page.Contents)
	}
	if pages != 3 || total != n {
		t.Fatalf("server paging: %d pages, %d keys", pages, total)
	}
	keys, err := s.Keys(ctx, "live/p/")
	if err != nil || len(keys) != n || keys[0] != "live/p/000.ts" || keys[n-1] != fmt.Sprintf("live/p/%03d.ts", n-1) {
		t.Fatalf("keys %v %v", keys, err)
	}
}

func TestS3RejectsBadKeys(t *testing.T) {
	srv := startS3Server(t)
	srv.createBucket(t, testBucket)
	ctx := context.Background()
	s := newTestS3(t, srv, "p")
	bad := []string{"", "/abs", "a/../../etc/passwd", "..", "a/./b", "a//b", "a/b/", "a\x00b", "a\\b", "ü", "a b", strings.Repeat("a", 2000)}
	for _, k := range bad {
		if err := s.Put(ctx, k, Object{Data: []byte("x")}); err == nil {
			t.Errorf("Put(%q) accepted", k)
		}
		if _, err := s.Get(ctx, k); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v", k, err)
		}
		if err := s.Delete(ctx, k); err == nil {
			t.Errorf("Delete(%q) accepted", k)
		}
	}
	if keys, _ := s.Keys(ctx, ""); len(keys) != 0 {
		t.Errorf("bad keys reached the bucket: %v", keys)
	}
}

func TestNewS3Errors(t *testing.T) {
	srv := startS3Server(t)
	ctx := context.Background()
	if _, err := NewS3(ctx, S3Config{Bucket: "missing-bucket", Endpoint: srv.endpoint(), AccessKey: testAccess, SecretKey: testSecret}); err == nil {
		t.Error("missing bucket accepted")
	}
	srv.createBucket(t, testBucket)
	if _, err := NewS3(ctx, S3Config{Bucket: testBucket, Endpoint: srv.endpoint(), AccessKey: testAccess, SecretKey: "wrong-secret"}); err == nil {
		t.Error("wrong secret accepted")
	}
	if _, err := NewS3(ctx, S3Config{Bucket: testBucket, Endpoint: srv.endpoint(), AccessKey: testAccess}); err == nil {
		t.Error("access key without secret accepted")
	}
	// Credentials from the standard environment variables.
	t.Setenv("AWS_ACCESS_KEY_ID", testAccess)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	if _, err := NewS3(ctx, S3Config{Bucket: testBucket, Endpoint: srv.endpoint()}); err != nil {
		t.Errorf("env credentials: %v", err)
	}
}

func TestParseS3Spec(t *testing.T) {
	for spec, want := range map[string][2]string{
		"s3://media":                {"media", ""},
		"s3://media/":               {"media", ""},
		"s3://media/fount/origin1":  {"media", "fount/origin1"},
		"s3://media/fount/origin1/": {"media", "fount/origin1"},
		"s3://my.bucket-2/x":        {"my.bucket-2", "x"},
	} {
		b, p, err := ParseS3Spec(spec)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("%q: %q %q %v", spec, b, p, err)
		}
	}
	for _, spec := range []string{"s3://", "s3:///x", "s3://ab", "s3://Upper", "s3://-x-", "s3://b_b", "s3://bucket/a/../b", "s3://bucket/a//b", "s3://bucket/a b", "media", "s4://media"} {
		if _, _, err := ParseS3Spec(spec); err == nil {
			t.Errorf("%q accepted", spec)
		}
	}
}

func TestOpenS3(t *testing.T) {
	srv := startS3Server(t)
	srv.createBucket(t, testBucket)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := OpenContext(ctx, "s3://"+testBucket+"/pre", S3Options{Endpoint: srv.endpoint(), AccessKey: testAccess, SecretKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := st.(*Async)
	if !ok {
		t.Fatalf("Open(s3://) returned %T, want *Async", st)
	}
	runAsync(t, a)
	a.Put(ctx, "live/x/1.ts", Object{Data: []byte("1")})
	flush(t, a, 20*time.Second)
	if _, err := os.Stat(filepath.Join(srv.dir, testBucket, "pre", "live", "x", "1.ts")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenContext(ctx, "s3://no-such-bucket", S3Options{Endpoint: srv.endpoint(), AccessKey: testAccess, SecretKey: testSecret}); err == nil {
		t.Fatal("missing bucket accepted")
	}
}
