package ingest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	rtmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// hostileNames are stream names an attacker (or a confused encoder) may
// publish: traversal, encoded traversal, NUL, very long, odd unicode,
// control characters, Windows oddities. The same table is kept in the
// storage, playlist and cmd/fount tests. None may become a stream.
// ('?' is left out: what follows it is publish metadata, not the name.)
var hostileNames = []string{
	"", ".", "..", "...", "../x", "a/../../etc/passwd", "live/../x",
	"%2e%2e/x", "%2e%2e%2fx", "..%2fx", "%252e%252e", "%2e%2e", "live%2fshow",
	"a\x00b", "%00", "\x00",
	`..\x`, `a\b`,
	"/etc/passwd", "//x", "/", "a//b", "a/b/", "./x",
	strings.Repeat("a", 300), strings.Repeat("a", 4096),
	strings.Repeat("x", 65535), // the longest AMF0 string: go-amf0 has no long strings, in or out
	"a\u202eb", "\u202egnp.ts", "a\u200db", "caf\u00e9", "cafe\u0301", "a\uff0fb", "\uff0e\uff0e\uff0f", "\uff0e\uff0e",
	"a\r\nb", "show\r\nSet-Cookie: x=1", "a\nb", "a\tb", "a\x7fb", "\x1b[31m",
	"a b", " ", " show", "show ",
	"a.", "show.", ".hidden",
	"CON", "con", "con.ts", "Nul", "aux.m3u8", "COM1", "lpt9.mp4",
	"a#b", "a%b", "a:b", "a*b", "a\"b", "a<b>", "a|b", "~x",
}

func TestValidNameHostile(t *testing.T) {
	for _, n := range hostileNames {
		if validName(n) {
			t.Errorf("validName(%.40q) = true", n)
		}
	}
}

// namesPublisher records publishes; none of the hostile names may reach it.
type namesPublisher struct {
	mu    sync.Mutex
	names []string
}

func (p *namesPublisher) Publish(_ context.Context, req PublishRequest) (Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names = append(p.names, req.App+"/"+req.Name)
	return nopSession{}, nil
}

func (p *namesPublisher) published() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.names...)
}

type nopSession struct{}

func (nopSession) Metadata(Metadata)              {}
func (nopSession) VideoConfig(*codec.Video) error { return nil }
func (nopSession) AudioConfig(*codec.Audio) error { return nil }
func (nopSession) Frame(segmenter.Frame) error    { return nil }
func (nopSession) Close()                         {}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNamesServer runs an RTMP server on a loopback port until the test
// ends, and checks at cleanup that Serve returned.
func startNamesServer(t *testing.T, pub Publisher, logs io.Writer) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := NewServer(Config{Logger: log}, pub)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return srv, ln.Addr().String()
}

// publishName connects with go-rtmp's client (which, unlike ffmpeg, sends
// any name as it is), publishes name and leaves the connection open for the
// caller to close. go-rtmp's Connect and CreateStream have no timeout, so
// they run under one here, and the connection is closed to end them.
func publishName(t *testing.T, addr, name string) *rtmp.ClientConn {
	t.Helper()
	quiet := logrus.New()
	quiet.Out = io.Discard
	cc, err := rtmp.Dial("rtmp", addr, &rtmp.ConnConfig{Logger: quiet})
	if err != nil {
		t.Fatalf("dial: %v", err)
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
		t.Fatalf("publish %.40q: no answer from the server", name)
	}
	return cc
}

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPublishHostileNamesRefused(t *testing.T) {
	pub := &namesPublisher{}
	logs := &lockedBuffer{}
	srv, addr := startNamesServer(t, pub, logs)

	for i, name := range hostileNames {
		cc := publishName(t, addr, name)
		// The counter is bumped just before the line is logged: wait for both.
		await(t, "the refusal of "+strings.ToValidUTF8(name[:min(len(name), 40)], "?"), func() bool {
			return srv.Stats().PublishesRefused == uint64(i+1) &&
				strings.Count(logs.String(), "msg=\"rtmp publish refused") == i+1
		})
		cc.Close()
	}
	if got := strings.Count(logs.String(), "msg=\"rtmp publish refused"); got != len(hostileNames) {
		t.Fatalf("%d refusal log lines for %d hostile names\n%s", got, len(hostileNames), logs)
	}
	if p := pub.published(); len(p) != 0 {
		t.Fatalf("hostile names reached the publisher: %q", p)
	}
	// The server is fine: a good name still publishes.
	cc := publishName(t, addr, "good-show_1.x")
	await(t, "the good publish", func() bool { return srv.Stats().PublishesAccepted == 1 })
	cc.Close()
	if p := pub.published(); len(p) != 1 || p[0] != "live/good-show_1.x" {
		t.Fatalf("published %q", p)
	}

	// Each refusal is one clear line, and nothing a name carried became a
	// line of its own or raw bytes in the log: keys are logged as
	// fingerprints, values are quoted.
	out := logs.String()
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "time=") {
			t.Errorf("log line not written by us (injected?): %.200q", line)
		}
	}
	if strings.ContainsAny(out, "\x00\r\x1b\u202e") || strings.Contains(out, "etc/passwd") || len(out) > 256<<10 {
		t.Errorf("raw hostile bytes or names in the log (%d bytes)", len(out))
	}
	if !strings.Contains(out, "rtmp publish refused by authorisation") || !strings.Contains(out, ErrInvalidName.Error()) {
		t.Errorf("no refusal naming the reason in the log:\n%.2000s", out)
	}
}
