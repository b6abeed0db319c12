package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	rtmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/fount-live/fount/segmenter"
)

// startLimitServer runs a server with cfg on ln (a loopback listener when
// nil) until the test ends, and checks at cleanup that Serve returned.
func startLimitServer(t *testing.T, cfg Config, pub Publisher, ln net.Listener) (*Server, string, *lockedBuffer) {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	logs := &lockedBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := NewServer(cfg, pub)
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
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return srv, ln.Addr().String(), logs
}

// rawDial opens a TCP connection that the test closes at its end.
func rawDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// handshake does the RTMP handshake (C0+C1, S0+S1+S2, C2) and nothing else.
func handshake(t *testing.T, c net.Conn) {
	t.Helper()
	c0c1 := make([]byte, 1+1536)
	c0c1[0] = 3
	if _, err := c.Write(c0c1); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1+2*1536)); err != nil {
		t.Fatalf("reading S0 S1 S2: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	if _, err := c.Write(make([]byte, 1536)); err != nil {
		t.Fatal(err)
	}
}

// closedBy reports whether the server closed c before the deadline.
func closedBy(c net.Conn, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		if err != nil {
			return true
		}
	}
}

// A connection that does not publish within the handshake timeout is
// closed then, however it behaves, and not after the longer idle timeout.
func TestHandshakeTimeout(t *testing.T) {
	const hs = 300 * time.Millisecond
	srv, addr, logs := startLimitServer(t, Config{HandshakeTimeout: hs, ReadTimeout: 5 * time.Second}, &namesPublisher{}, nil)

	start := time.Now()
	mute := rawDial(t, addr)   // sends nothing at all
	silent := rawDial(t, addr) // handshakes, then says nothing
	handshake(t, silent)
	trickle := rawDial(t, addr) // sends its C0+C1 a byte at a time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := trickle.Write([]byte{3}); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	cc := publishName(t, addr, "show") // publishes in time, and stays
	defer cc.Close()

	for name, c := range map[string]net.Conn{"mute": mute, "silent": silent, "trickling": trickle} {
		if !closedBy(c, start.Add(hs+2*time.Second)) {
			t.Errorf("%s connection still open %s after accept; handshake timeout %s", name, time.Since(start), hs)
		}
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("closing took %s: that is the idle timeout, not the handshake timeout", el)
	}
	await(t, "the timeouts counted", func() bool { return srv.Stats().HandshakeTimeouts == 3 })
	st := srv.Stats()
	if st.Timeouts != 0 || st.ProtocolErrors != 0 {
		t.Errorf("idle timeouts %d, protocol errors %d; want 0, 0", st.Timeouts, st.ProtocolErrors)
	}
	if len(st.Publishers) != 1 {
		t.Errorf("publishers %+v: the one that published in time must stay", st.Publishers)
	}
	// One line per 10 s, however many junk connections: here 3 in 0.3 s.
	if n := strings.Count(logs.String(), `msg="rtmp connection closed: no publish within the handshake timeout"`); n != 1 {
		t.Errorf("%d handshake timeout lines, want 1 (rate limited)\n%s", n, logs)
	}
}

// At MaxConnections a new connection closes the oldest that has not
// published, preferring ones that have not even sent an RTMP connect; a
// publishing connection is never closed for it.
func TestMaxConnectionsEvictsOldestIdle(t *testing.T) {
	srv, addr, logs := startLimitServer(t, Config{MaxConnections: 4, HandshakeTimeout: time.Minute}, &namesPublisher{}, nil)
	conns := func() int64 { return srv.Stats().Connections }

	pub := publishName(t, addr, "show")
	defer pub.Close()
	// Connected (RTMP connect accepted) but not publishing.
	quiet := logrus.New()
	quiet.Out = io.Discard
	joined, err := rtmp.Dial("rtmp", addr, &rtmp.ConnConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer joined.Close()
	if err := joined.Connect(&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{App: "live"}}); err != nil {
		t.Fatal(err)
	}
	var raw []net.Conn
	for i := range 5 {
		raw = append(raw, rawDial(t, addr))
		want := int64(min(3+i, 4))
		await(t, "the server to take the connection", func() bool {
			return conns() == want && srv.Stats().ConnsEvicted == uint64(max(0, i-1))
		})
	}
	// raw[0..2] were evicted in turn (each the oldest fresh one), the
	// joined connection was older but had sent connect.
	deadline := time.Now().Add(2 * time.Second)
	for i, c := range raw {
		if got, want := closedBy(c, deadline), i < 3; got != want {
			t.Errorf("raw connection %d closed: %v, want %v", i, got, want)
		}
		deadline = time.Now().Add(100 * time.Millisecond)
	}
	srv.mu.Lock()
	joinedKept := srv.joined.head != nil
	srv.mu.Unlock()
	if !joinedKept {
		t.Error("the connected connection was evicted before fresh ones")
	}
	if st := srv.Stats(); len(st.Publishers) != 1 || st.ConnsEvicted != 3 || st.Connections != 4 {
		t.Errorf("stats %+v", st)
	}
	if n := strings.Count(logs.String(), "rtmp connection limit reached"); n != 1 {
		t.Errorf("%d eviction lines, want 1 (rate limited)", n)
	}
}

// An evicted connection gives up its slot when it is chosen, not when its
// Close returns: Close waits for the connection's own goroutine to wake
// from its read, and in a flood of accepts that took long enough for
// hundreds more to be admitted past the limit meanwhile. Here every Close
// blocks until the end of the test.
func TestMaxConnectionsEvictionFreesSlotAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	srv, addr, _ := startLimitServer(t, Config{MaxConnections: 2, HandshakeTimeout: time.Minute}, &namesPublisher{}, &slowCloseListener{ln, gate})
	t.Cleanup(func() { close(gate) }) // before the server's cleanup
	for i := range 5 {
		rawDial(t, addr)
		await(t, "the server to take the connection", func() bool {
			if i < 2 {
				return srv.Stats().Connections == int64(i+1)
			}
			return srv.Stats().ConnsEvicted == uint64(i-1) // counted once the new one is in
		})
		if n := srv.Stats().Connections; n != int64(min(i+1, 2)) {
			t.Fatalf("%d connections open after %d were accepted, limit 2", n, i+1)
		}
	}
}

// slowCloseListener's connections' Close waits for gate.
type slowCloseListener struct {
	net.Listener
	gate chan struct{}
}

func (l *slowCloseListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowCloseConn{c, l.gate}, nil
}

type slowCloseConn struct {
	net.Conn
	gate chan struct{}
}

func (c *slowCloseConn) Close() error {
	<-c.gate
	return c.Conn.Close()
}

// Beyond MaxPublishers a publish is refused, and a slot comes back when a
// publisher leaves.
func TestMaxPublishers(t *testing.T) {
	srv, addr, logs := startLimitServer(t, Config{MaxPublishers: 1}, &namesPublisher{}, nil)
	one := publishName(t, addr, "one")
	await(t, "the first publish", func() bool { return srv.Stats().PublishesAccepted == 1 })
	two := publishName(t, addr, "two")
	await(t, "the refusal", func() bool { return srv.Stats().PublisherLimit == 1 })
	two.Close()
	if st := srv.Stats(); st.PublishesRefused != 1 || len(st.Publishers) != 1 || st.Publishers[0].Stream != "live/one" {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "rtmp publish refused: the publisher limit is reached (--max-publishers)") {
		t.Errorf("no refusal line\n%s", logs)
	}
	one.Close()
	await(t, "the publisher to leave", func() bool { return len(srv.Stats().Publishers) == 0 })
	three := publishName(t, addr, "three")
	defer three.Close()
	await(t, "a publish in the freed slot", func() bool { return srv.Stats().PublishesAccepted == 2 })
}

// panicPublisher's sessions panic on their first frame for the stream
// "boom"; other sessions count their frames.
type panicPublisher struct {
	frames atomic.Int64 // frames of sessions that do not panic
	closed sync.Map     // name → true once its session was closed
}

func (p *panicPublisher) Publish(_ context.Context, req PublishRequest) (Session, error) {
	return &panicSession{p: p, name: req.Name}, nil
}

type panicSession struct {
	nopSession
	p    *panicPublisher
	name string
}

func (s *panicSession) Frame(segmenter.Frame) error {
	if s.name == "boom" {
		panic("test: a bug in the media path")
	}
	s.p.frames.Add(1)
	return nil
}

func (s *panicSession) Close() { s.p.closed.Store(s.name, true) }

// publishStream publishes name with go-rtmp's client and returns the stream
// to write media to.
func publishStream(t *testing.T, addr, name string) (*rtmp.ClientConn, *rtmp.Stream) {
	t.Helper()
	quiet := logrus.New()
	quiet.Out = io.Discard
	cc, err := rtmp.Dial("rtmp", addr, &rtmp.ConnConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	if err := cc.Connect(&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{App: "live"}}); err != nil {
		t.Fatal(err)
	}
	st, err := cc.CreateStream(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Publish(&message.NetStreamPublish{PublishingName: name, PublishingType: "live"}); err != nil {
		t.Fatal(err)
	}
	return cc, st
}

func sendKeyframe(st *rtmp.Stream, ts uint32) error {
	tag := []byte{0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65}
	return st.Write(6, ts, &message.VideoMessage{Payload: bytes.NewReader(tag)})
}

// A panic in one publisher's media path is recovered: logged with the
// stream, remote address and stack, counted, that connection closed through
// the usual Session.Close; another publisher carries on.
func TestPanicInHandlerRecovered(t *testing.T) {
	pub := &panicPublisher{}
	srv, addr, logs := startLimitServer(t, Config{}, pub, nil)
	_, fine := publishStream(t, addr, "fine")
	_, boom := publishStream(t, addr, "boom")
	await(t, "both publishes", func() bool { return srv.Stats().PublishesAccepted == 2 })

	if err := sendKeyframe(fine, 0); err != nil {
		t.Fatal(err)
	}
	if err := sendKeyframe(boom, 0); err != nil {
		t.Fatal(err)
	}
	await(t, "the panic to be recovered", func() bool { return srv.Stats().Panics == 1 })
	await(t, "the panicking session to be closed", func() bool { _, ok := pub.closed.Load("boom"); return ok })
	await(t, "the publisher list to drop it", func() bool { return len(srv.Stats().Publishers) == 1 })

	for ts := uint32(33); ts < 33*10; ts += 33 {
		if err := sendKeyframe(fine, ts); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "the other stream's frames", func() bool { return pub.frames.Load() == 10 })
	if _, ok := pub.closed.Load("fine"); ok {
		t.Error("the other stream was closed")
	}
	out := logs.String()
	for _, want := range []string{`msg="panic in an RTMP connection; closing it"`, "stream=live/boom", "remote=127.0.0.1:", "in=OnVideo",
		`panic="test: a bug in the media path"`, "goroutine ", "limits_test.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q\n%s", want, out)
		}
	}
	if st := srv.Stats(); st.Panics != 1 || st.ProtocolErrors != 0 {
		t.Errorf("panics %d, protocol errors %d; want 1, 0", st.Panics, st.ProtocolErrors)
	}
}

// panicListener hands out connections whose reads panic after the first
// ok ones, as a bug in the read path would.
type panicListener struct {
	net.Listener
	ok int
}

func (l panicListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &panicConn{Conn: c, ok: l.ok}, nil
}

type panicConn struct {
	net.Conn
	ok int
}

func (c *panicConn) Read(p []byte) (int, error) {
	if c.ok == 0 {
		panic("test: a bug in the read path")
	}
	c.ok--
	return c.Conn.Read(p)
}

// A panic while reading — before go-rtmp's message loop, which is all that
// go-rtmp guards — closes that connection only.
func TestPanicInReadRecovered(t *testing.T) {
	for _, tc := range []struct {
		ok    int
		where string
	}{{0, `in="first read"`}, {1, "in=read"}} {
		t.Run(tc.where, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv, addr, logs := startLimitServer(t, Config{}, &namesPublisher{}, panicListener{ln, tc.ok})
			for i := range 3 {
				c := rawDial(t, addr)
				c.Write(make([]byte, 100)) // the start of a C0+C1
				if !closedBy(c, time.Now().Add(5*time.Second)) {
					t.Fatal("the connection was not closed")
				}
				await(t, "the panic to be counted", func() bool { return srv.Stats().Panics == uint64(i+1) })
			}
			await(t, "no connection left", func() bool { return srv.Stats().Connections == 0 })
			if out := logs.String(); !strings.Contains(out, tc.where) || !strings.Contains(out, "goroutine ") {
				t.Errorf("log lacks the panic's place or stack\n%s", out)
			}
		})
	}
}
