//go:build linux

package ingest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// rawPair returns a connection accepted through RawReadListener and its
// dialled peer.
func rawPair(t *testing.T) (server net.Conn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rl := RawReadListener(ln)
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = rl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := server.(*rawConn); !ok {
		t.Fatalf("accepted %T, want *rawConn", server)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func TestRawConnReads(t *testing.T) {
	server, client := rawPair(t)
	want := bytes.Repeat([]byte("fount raw read "), 10000) // larger than a socket buffer's first read
	go func() {
		client.Write(want)
		client.Close()
	}()
	if n, err := server.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	got, err := io.ReadAll(server) // waits in the poller between writes; EOF at the close
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
	if n, err := server.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after EOF = %d, %v", n, err)
	}
}

func TestRawConnDeadlineAndClose(t *testing.T) {
	server, _ := rawPair(t)
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := server.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}

	server.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 8))
		done <- err
	}()
	server.Close() // wakes the waiting read, as for net.Conn
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v, want net.ErrClosed", err)
	}
}

func TestRawConnReset(t *testing.T) {
	server, client := rawPair(t)
	client.(*net.TCPConn).SetLinger(0) // close with RST
	client.Write([]byte("x"))
	client.Close()
	var err error
	for err == nil {
		_, err = server.Read(make([]byte, 8))
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "read" || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a reset: %v, want a read OpError wrapping ECONNRESET", err)
	}
}
