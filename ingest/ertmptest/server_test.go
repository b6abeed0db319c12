package ertmptest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
)

// recorded is one message the test server received.
type recorded struct {
	typ      uint8
	csid     byte
	streamID uint32
	ts       time.Duration
	body     []byte
	command  string // name of an AMF0 command (type 20)
}

// testServer is a minimal RTMP server built from gortmplib's handshake,
// chunk reader and message writer: it accepts one publisher, answers
// connect, createStream and publish, and records every message as raw bytes,
// without interpreting media bodies.
type testServer struct {
	t    *testing.T
	ln   net.Listener
	done chan struct{}

	mu      sync.Mutex
	msgs    []recorded
	app     string
	name    string
	err     error
	closeAt int // close the connection after this many media messages (0: never)
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, ln: ln, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		<-s.done
	})
	return s
}

func (s *testServer) url(name string) string {
	return "rtmp://" + s.ln.Addr().String() + "/live/" + name
}

func (s *testServer) serve() {
	defer close(s.done)
	nc, err := s.ln.Accept()
	if err != nil {
		return
	}
	defer nc.Close()
	err = s.handle(nc)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// wait waits for the publisher to go and returns what was recorded.
func (s *testServer) wait() ([]recorded, error) {
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Fatal("test server: the publisher did not finish")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs, s.err
}

func (s *testServer) handle(nc net.Conn) error {
	bc := bytecounter.NewReadWriter(nc)
	if _, _, err := handshake.DoServer(bc, false); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	r := rawmessage.NewReader(bc, bc.Reader, func(uint32) error { return nil })
	w := message.NewWriter(bc, bc.Writer, false)
	media := 0
	for {
		raw, err := r.Read()
		if err != nil {
			return err
		}
		rec := recorded{typ: raw.Type, csid: raw.ChunkStreamID, streamID: raw.MessageStreamID, ts: raw.Timestamp,
			body: append([]byte(nil), raw.Body...)}
		switch raw.Type {
		case 1: // Set Chunk Size
			if len(raw.Body) != 4 {
				return fmt.Errorf("set chunk size of %d bytes", len(raw.Body))
			}
			if err := r.SetChunkSize(binary.BigEndian.Uint32(raw.Body)); err != nil {
				return err
			}
		case 20:
			args, err := amf0.Unmarshal(raw.Body)
			if err != nil {
				return fmt.Errorf("command: %w", err)
			}
			if len(args) < 2 {
				return fmt.Errorf("command of %d values", len(args))
			}
			name, _ := args[0].(string)
			txn, _ := args[1].(float64)
			rec.command = name
			if err := s.answer(w, raw, name, txn, args); err != nil {
				return err
			}
		case 8, 9:
			media++
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, rec)
		closeAt := s.closeAt
		s.mu.Unlock()
		if closeAt > 0 && media >= closeAt {
			return nil
		}
	}
}

func (s *testServer) answer(w *message.Writer, raw *rawmessage.Message, name string, txn float64, args amf0.Data) error {
	switch name {
	case "connect":
		if o, ok := args[2].(amf0.Object); ok {
			app, _ := o.GetString("app")
			s.mu.Lock()
			s.app = app
			s.mu.Unlock()
		}
		return w.Write(&message.CommandAMF0{
			ChunkStreamID: raw.ChunkStreamID, Name: "_result", CommandID: int(txn),
			Arguments: []any{
				amf0.Object{{Key: "fmsVer", Value: "FMS/3,0,1,123"}},
				amf0.Object{{Key: "level", Value: "status"}, {Key: "code", Value: "NetConnection.Connect.Success"}},
			},
		})
	case "createStream":
		return w.Write(&message.CommandAMF0{
			ChunkStreamID: raw.ChunkStreamID, Name: "_result", CommandID: int(txn),
			Arguments: []any{nil, float64(1)},
		})
	case "publish":
		if len(args) > 3 {
			n, _ := args[3].(string)
			s.mu.Lock()
			s.name = n
			s.mu.Unlock()
		}
		return w.Write(&message.CommandAMF0{
			ChunkStreamID: raw.ChunkStreamID, MessageStreamID: raw.MessageStreamID, Name: "onStatus", CommandID: int(txn),
			Arguments: []any{nil, amf0.Object{{Key: "level", Value: "status"}, {Key: "code", Value: "NetStream.Publish.Start"}}},
		})
	}
	return nil
}

// media returns the video (9) and audio (8) messages in order.
func media(msgs []recorded) []recorded {
	var out []recorded
	for _, m := range msgs {
		if m.typ == 8 || m.typ == 9 {
			out = append(out, m)
		}
	}
	return out
}
