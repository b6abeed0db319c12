package id3

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestTagTXXXAndTIT2(t *testing.T) {
	b, err := Tag(Frame{ID: "TXXX", Description: "score", Value: "2-1"}, Frame{ID: "TIT2", Value: "Now playing"})
	if err != nil {
		t.Fatal(err)
	}
	// Header: "ID3", version 4.0, flags 0, syncsafe size of the rest.
	if string(b[:3]) != "ID3" || b[3] != 4 || b[4] != 0 || b[5] != 0 {
		t.Fatalf("header % x", b[:6])
	}
	if got := syncsafe(b[6:10]); got != len(b)-10 {
		t.Fatalf("tag size %d, want %d", got, len(b)-10)
	}
	f := b[10:]
	// TXXX: ID, size 1+len("score")+1+len("2-1") = 10, flags 0, UTF-8,
	// description, NUL, value.
	if string(f[:4]) != "TXXX" || syncsafe(f[4:8]) != 10 || f[8] != 0 || f[9] != 0 {
		t.Fatalf("TXXX header % x", f[:10])
	}
	if !bytes.Equal(f[10:20], []byte("\x03score\x002-1")) {
		t.Fatalf("TXXX body %q", f[10:20])
	}
	f = f[20:]
	if string(f[:4]) != "TIT2" || syncsafe(f[4:8]) != 12 || f[8] != 0 || f[9] != 0 {
		t.Fatalf("TIT2 header % x", f[:10])
	}
	if string(f[10:]) != "\x03Now playing" {
		t.Fatalf("TIT2 body %q", f[10:])
	}
}

func TestSyncsafeSizes(t *testing.T) {
	// 200 bytes of value: the frame size 201 is 0x01 0x49 in 7-bit bytes.
	b, err := Tag(Frame{ID: "TIT2", Value: strings.Repeat("a", 200)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[14:18], []byte{0, 0, 1, 0x49}) {
		t.Fatalf("frame size % x, want 00 00 01 49", b[14:18])
	}
	if !bytes.Equal(b[6:10], []byte{0, 0, 1, 0x53}) { // 211
		t.Fatalf("tag size % x, want 00 00 01 53", b[6:10])
	}
	for _, v := range b[6:10] {
		if v&0x80 != 0 {
			t.Fatal("syncsafe byte with its top bit set")
		}
	}
}

func TestTagRefuses(t *testing.T) {
	for _, c := range []struct {
		f    []Frame
		want error
	}{
		{nil, ErrEmpty},
		{[]Frame{{ID: "APIC", Value: "x"}}, ErrFrameID},
		{[]Frame{{ID: "TIT", Value: "x"}}, ErrFrameID},
		{[]Frame{{ID: "Txxx", Value: "x"}}, ErrFrameID},
		{[]Frame{{ID: "TXXX", Description: "a\x00b", Value: "x"}}, ErrNUL},
		{[]Frame{{ID: "TIT2", Value: "a\x00"}}, ErrNUL},
	} {
		if _, err := Tag(c.f...); !errors.Is(err, c.want) {
			t.Errorf("Tag(%v) = %v, want %v", c.f, err, c.want)
		}
	}
}

func syncsafe(b []byte) int {
	return int(b[0])<<21 | int(b[1])<<14 | int(b[2])<<7 | int(b[3])
}
