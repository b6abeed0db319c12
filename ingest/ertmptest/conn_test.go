package ertmptest

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestConnRawMessages(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.url("raw"))
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xAB}, 200_000) // several 64 KiB chunks
	if err := c.WriteVideo(1500*time.Millisecond, append([]byte{0x17, 1, 0, 0, 0}, big...)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteAudio(1501*time.Millisecond, []byte{0xAF, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := c.Unpublish(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.wait()
	if err != nil {
		t.Fatal(err)
	}
	if s.app != "live" || s.name != "raw" {
		t.Errorf("app %q name %q, want live raw", s.app, s.name)
	}
	m := media(msgs)
	if len(m) != 2 {
		t.Fatalf("%d media messages", len(m))
	}
	if m[0].typ != 9 || m[0].ts != 1500*time.Millisecond || m[0].csid != VideoChunkStream || !bytes.Equal(m[0].body[5:], big) {
		t.Errorf("video message: type %d ts %s csid %d %d bytes", m[0].typ, m[0].ts, m[0].csid, len(m[0].body))
	}
	if m[1].typ != 8 || m[1].ts != 1501*time.Millisecond || !bytes.Equal(m[1].body, []byte{0xAF, 1, 2, 3}) {
		t.Errorf("audio message: %+v", m[1])
	}
	// the stream id on the wire is 1 (little-endian), as createStream said
	if m[0].streamID != messageStreamID {
		t.Errorf("message stream id %#x", m[0].streamID)
	}
	var cmds []string
	for _, r := range msgs {
		if r.command != "" {
			cmds = append(cmds, r.command)
		}
	}
	want := []string{"connect", "releaseStream", "FCPublish", "createStream", "publish", "FCUnpublish", "deleteStream"}
	if len(cmds) != len(want) {
		t.Fatalf("commands %q, want %q", cmds, want)
	}
	for i := range want {
		if cmds[i] != want[i] {
			t.Fatalf("commands %q, want %q", cmds, want)
		}
	}
}

// The URL's query stays on the stream key, where encoders send it (fount's
// grouped pushes: rtmp://HOST/APP/NAME?variant=RENDITION).
func TestDialQueryOnKey(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.url("show?variant=low&t=1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unpublish(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if s.app != "live" || s.name != "show?variant=low&t=1" {
		t.Errorf("app %q name %q, want live and show?variant=low&t=1", s.app, s.name)
	}
}
