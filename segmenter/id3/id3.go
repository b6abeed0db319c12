// Package id3 builds ID3v2.4 tags (id3.org's "ID3 tag version 2.4.0 -
// Main Structure" and "- Native Frames") for HLS timed metadata: the tags
// carried in an MPEG-TS timed ID3 PES stream or an fMP4 emsg box.
//
// Only what timed metadata needs is written: TXXX (user-defined text, a
// key/value pair) and the text information frames (T000-TZZZ, such as
// TIT2), all in UTF-8, no extended header, no unsynchronisation.
package id3

import (
	"errors"
	"fmt"
)

// HeaderSize is the size of a tag header and of a frame header.
const HeaderSize = 10

// MaxSize is the largest tag (or frame) body a syncsafe size can express.
const MaxSize = 1<<28 - 1

// encodingUTF8 is ID3v2.4's text encoding $03.
const encodingUTF8 = 3

// Frame is one text frame: ID "TXXX" with Description and Value, or a text
// information frame ("TIT2", ...) with Value alone.
type Frame struct {
	ID          string
	Description string // TXXX only
	Value       string
}

// Errors a tag can be refused with.
var (
	ErrFrameID  = errors.New("id3: a text frame ID is 'T' followed by three of A-Z, 0-9")
	ErrTooLarge = errors.New("id3: tag too large")
	ErrNUL      = errors.New("id3: text holds a NUL character")
	ErrEmpty    = errors.New("id3: a tag needs at least one frame")
)

// Tag returns an ID3v2.4 tag holding frames, in order.
func Tag(frames ...Frame) ([]byte, error) {
	if len(frames) == 0 {
		return nil, ErrEmpty
	}
	b := make([]byte, HeaderSize, 64)
	copy(b, "ID3\x04\x00\x00") // version 2.4.0, no flags
	for _, f := range frames {
		var err error
		if b, err = appendFrame(b, f); err != nil {
			return nil, err
		}
	}
	n := len(b) - HeaderSize
	if n > MaxSize {
		return nil, ErrTooLarge
	}
	putSyncsafe(b[6:10], n)
	return b, nil
}

// appendFrame appends f: a 10-byte frame header (ID, syncsafe size, no
// flags), the encoding byte, then the description and its NUL separator
// (TXXX) and the value. v2.4 text need not end with a NUL, and hls.js and
// ffmpeg read it without one.
func appendFrame(b []byte, f Frame) ([]byte, error) {
	if !validID(f.ID) {
		return nil, fmt.Errorf("%w: %q", ErrFrameID, f.ID)
	}
	if hasNUL(f.Value) || hasNUL(f.Description) {
		return nil, ErrNUL
	}
	n := 1 + len(f.Value)
	if f.ID == "TXXX" {
		n += len(f.Description) + 1
	}
	if n > MaxSize {
		return nil, ErrTooLarge
	}
	b = append(b, f.ID...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	putSyncsafe(b[len(b)-6:len(b)-2], n)
	b = append(b, encodingUTF8)
	if f.ID == "TXXX" {
		b = append(b, f.Description...)
		b = append(b, 0)
	}
	return append(b, f.Value...), nil
}

// validID: text frames only, 'T' and three of A-Z, 0-9.
func validID(id string) bool {
	if len(id) != 4 || id[0] != 'T' {
		return false
	}
	for i := 1; i < 4; i++ {
		c := id[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func hasNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// putSyncsafe writes n (< 2^28) as a 4-byte syncsafe integer: 7 bits a
// byte, the top bit always 0.
func putSyncsafe(b []byte, n int) {
	b[0] = byte(n>>21) & 0x7f
	b[1] = byte(n>>14) & 0x7f
	b[2] = byte(n>>7) & 0x7f
	b[3] = byte(n) & 0x7f
}
