package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	rtmp "github.com/yutopp/go-rtmp"
	rtmpmsg "github.com/yutopp/go-rtmp/message"
)

// chunkEnc writes RTMP chunk streams by hand for the chunk filter tests.
// Timestamps (or deltas) of 0xFFFFFF and above go into an extended
// timestamp. With repeatExt the encoder repeats the extended timestamp
// after type-3 basic headers as the spec says (ffmpeg's style); without it
// it does not, which is exactly what the filter's output must look like.
type chunkEnc struct {
	buf       []byte
	chunkSize int
	repeatExt bool
	ext       map[int]uint32 // extended value of the last fmt 0/1/2 header, per chunk stream
}

func newChunkEnc(repeatExt bool) *chunkEnc {
	e := &chunkEnc{chunkSize: 128, repeatExt: repeatExt, ext: map[int]uint32{}}
	e.handshake()
	return e
}

func (e *chunkEnc) handshake() {
	hs := make([]byte, rtmpHandshakeSize)
	hs[0] = 3
	for i := 1; i < len(hs); i++ {
		hs[i] = byte(i * 7) // also contains bytes that look like chunk headers
	}
	e.buf = append(e.buf, hs...)
}

func (e *chunkEnc) basic(fmtID, csid int) {
	switch {
	case csid < 64:
		e.buf = append(e.buf, byte(fmtID<<6|csid))
	case csid < 320:
		e.buf = append(e.buf, byte(fmtID<<6), byte(csid-64))
	default:
		e.buf = append(e.buf, byte(fmtID<<6|1), byte((csid-64)&0xff), byte((csid-64)>>8))
	}
}

func put24(b []byte, v uint32) []byte {
	return append(b, byte(v>>16), byte(v>>8), byte(v))
}

// header writes a fmt 0, 1, 2 or 3 chunk header. ts is the timestamp (fmt
// 0) or delta (fmt 1, 2); length and typeID are used by fmt 0 and 1, msid
// by fmt 0. A type-3 header repeats the extended timestamp if repeatExt.
func (e *chunkEnc) header(fmtID, csid int, ts uint32, length int, typeID uint8, msid uint32) {
	e.basic(fmtID, csid)
	if fmtID == 3 {
		if v, ok := e.ext[csid]; ok && e.repeatExt {
			e.buf = binary.BigEndian.AppendUint32(e.buf, v)
		}
		return
	}
	field := min(ts, 0xFFFFFF)
	e.buf = put24(e.buf, field)
	if fmtID < 2 {
		e.buf = put24(e.buf, uint32(length))
		e.buf = append(e.buf, typeID)
	}
	if fmtID == 0 {
		e.buf = binary.LittleEndian.AppendUint32(e.buf, msid)
	}
	if field == 0xFFFFFF {
		e.buf = binary.BigEndian.AppendUint32(e.buf, ts)
		e.ext[csid] = ts
	} else {
		delete(e.ext, csid)
	}
}

// message writes a whole message: a header of the given fmt, then the
// payload in chunks of chunkSize with type-3 continuation headers.
func (e *chunkEnc) message(fmtID, csid int, ts uint32, typeID uint8, msid uint32, payload []byte) {
	e.header(fmtID, csid, ts, len(payload), typeID, msid)
	for off := 0; ; {
		k := min(e.chunkSize, len(payload)-off)
		e.buf = append(e.buf, payload[off:off+k]...)
		off += k
		if off == len(payload) {
			return
		}
		e.header(3, csid, 0, 0, 0, 0)
	}
}

func (e *chunkEnc) setChunkSize(n uint32) {
	e.message(0, 2, 0, 1, 0, binary.BigEndian.AppendUint32(nil, n))
	e.chunkSize = int(n)
}

func (e *chunkEnc) raw(b ...byte) { e.buf = append(e.buf, b...) }

func testPayload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*31+i>>8)
	}
	return b
}

// filterAll reads the whole filtered stream from in: rd wraps the source
// reader, bufSize is the size of the caller's reads.
func filterAll(in []byte, lim chunkLimits, wrap func(io.Reader) io.Reader, bufSize int) ([]byte, error) {
	var src io.Reader = bytes.NewReader(in)
	if wrap != nil {
		src = wrap(src)
	}
	f := newChunkFilter(src, lim)
	var out []byte
	buf := make([]byte, bufSize)
	zero := 0
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
		if n == 0 {
			if zero++; zero > 100 {
				return out, io.ErrNoProgress
			}
		} else {
			zero = 0
		}
	}
}

var readModes = []struct {
	name string
	wrap func(io.Reader) io.Reader
	buf  int
}{
	{"whole", nil, 64 << 10},
	{"gortmp-bufio", nil, 4096},
	{"one-byte-source", iotest.OneByteReader, 4096},
	{"half-source", iotest.HalfReader, 1000},
	{"one-byte-reads", nil, 1},
	{"one-byte-both", iotest.OneByteReader, 1},
	{"data-err-source", iotest.DataErrReader, 7},
}

// checkFilter runs in through the filter in every read mode and expects
// want followed by io.EOF.
func checkFilter(t *testing.T, in, want []byte) {
	t.Helper()
	for _, m := range readModes {
		out, err := filterAll(in, chunkLimits{}, m.wrap, m.buf)
		if err != io.EOF {
			t.Errorf("%s: error %v, want io.EOF", m.name, err)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("%s: output differs from expected (%d bytes, want %d) at byte %d",
				m.name, len(out), len(want), firstDiff(out, want))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// chunkCase builds the same stream twice: once as the peer sends it (ext
// repeated in type-3 chunks when repeat is true) and once as the filter
// must emit it (never repeated).
type chunkCase struct {
	name   string
	repeat bool
	build  func(e *chunkEnc)
}

var chunkCases = []chunkCase{
	{"plain", false, func(e *chunkEnc) {
		e.message(0, 3, 0, 20, 0, testPayload(300, 1)) // command, 3 chunks
		e.message(0, 2, 0, 5, 0, []byte{0, 0x26, 0x25, 0xa0})
		e.message(0, 4, 1000, 9, 1, testPayload(128, 2)) // exactly one chunk
		e.message(1, 4, 40, 9, 1, testPayload(129, 3))   // 2 chunks, last 1 byte
		e.message(2, 4, 40, 0, 0, testPayload(129, 4))
		e.header(3, 4, 0, 0, 0, 0) // type-3 starting a new message
		e.raw(testPayload(128, 5)...)
		e.header(3, 4, 0, 0, 0, 0)
		e.raw(testPayload(1, 6)...)
		e.message(0, 6, 1000, 8, 1, testPayload(7, 7))
	}},
	{"ext-repeated", true, buildExtStream},
	{"ext-not-repeated", false, buildExtStream},
	{"ext-type3-new-message", true, buildType3NewMessage},
	{"ext-type3-new-message-not-repeated", false, buildType3NewMessage},
	{"ext-delta-fmt1-fmt2", true, func(e *chunkEnc) {
		e.message(0, 4, 1000, 9, 1, testPayload(300, 1))
		e.message(1, 4, 0x1000000, 9, 1, testPayload(300, 2)) // fmt 1, ext delta
		e.message(2, 4, 0xFFFFFF, 0, 0, testPayload(300, 3))  // fmt 2, ext delta 0xFFFFFF itself
		e.message(2, 4, 40, 0, 0, testPayload(300, 4))        // back to a small delta: no ext
		e.message(1, 4, 0xFFFFFFFF, 9, 1, testPayload(5, 5))  // single chunk
	}},
	{"chunk-size-changes", true, func(e *chunkEnc) {
		e.message(0, 4, 20_000_000, 9, 1, testPayload(300, 1))
		e.setChunkSize(4096)
		e.message(0, 4, 20_000_040, 9, 1, testPayload(10000, 2))
		e.setChunkSize(3) // smaller than the extended timestamp
		e.message(0, 4, 20_000_080, 9, 1, testPayload(10, 3))
		e.setChunkSize(1)
		e.message(0, 4, 20_000_120, 9, 1, testPayload(6, 4))
		e.setChunkSize(0xFFFFFF)
		e.message(0, 4, 20_000_160, 9, 1, testPayload(70000, 5))
	}},
	{"csid-encodings", true, func(e *chunkEnc) {
		ids := []int{2, 3, 63, 64, 65, 319, 320, 321, 65599}
		for i, id := range ids {
			e.header(0, id, 20_000_000+uint32(i), 200, 9, 1)
			e.raw(testPayload(128, byte(i))...)
		}
		// Continuations interleaved across chunk streams.
		for i, id := range ids {
			e.header(3, id, 0, 0, 0, 0)
			e.raw(testPayload(72, byte(i+50))...)
		}
		// The 3-byte form for a chunk stream below 320 is legal too.
		e.raw(0x01, 0x00, 0x00) // fmt 0, csid 64 in three bytes
		e.raw(0xFF, 0xFF, 0xFF, 0, 0, 4, 9, 1, 0, 0, 0, 0x01, 0x31, 0x2D, 0x00)
		e.raw(1, 2, 3, 4)
	}},
	{"abort-idle-chunk-stream", true, func(e *chunkEnc) {
		e.message(0, 4, 20_000_000, 9, 1, testPayload(200, 1))
		e.message(0, 2, 0, 2, 0, []byte{0, 0, 0, 4}) // abort chunk stream 4: nothing pending
		e.message(0, 2, 0, 2, 0, []byte{0, 0, 1, 0}) // abort unknown chunk stream 256
		e.message(0, 4, 20_000_040, 9, 1, testPayload(200, 2))
	}},
	{"control-split-across-chunks", false, func(e *chunkEnc) {
		e.setChunkSize(2)
		e.setChunkSize(1)
		e.message(0, 2, 0, 1, 0, []byte{0, 0, 0, 100, 0xAA}) // 5 bytes: first 4 count
		e.chunkSize = 100
		e.message(0, 4, 0, 9, 1, testPayload(250, 1))
	}},
	{"interleaved-audio-video", true, func(e *chunkEnc) {
		e.setChunkSize(1000)
		e.header(0, 6, 20_000_000, 2500, 9, 1)
		e.raw(testPayload(1000, 1)...)
		e.message(0, 4, 20_000_001, 8, 1, testPayload(200, 2))
		e.header(3, 6, 0, 0, 0, 0)
		e.raw(testPayload(1000, 3)...)
		e.message(1, 4, 23, 8, 1, testPayload(201, 4))
		e.header(3, 6, 0, 0, 0, 0)
		e.raw(testPayload(500, 5)...)
	}},
}

func buildExtStream(e *chunkEnc) {
	e.message(0, 3, 0, 20, 0, testPayload(200, 9))
	e.message(0, 6, 20_000_000, 9, 1, testPayload(1000, 1)) // 8 chunks
	e.message(0, 6, 20_000_040, 9, 1, testPayload(130, 2))  // last chunk 2 bytes
	e.message(0, 6, 0xFFFFFF, 9, 1, testPayload(131, 3))    // 0xFFFFFF itself is extended
	e.message(0, 6, 20_000_080, 9, 1, testPayload(132, 4))  // last chunk 4 bytes
	e.message(0, 6, 20_000_120, 9, 1, testPayload(512, 5))  // whole chunks
	e.message(1, 6, 40, 9, 1, testPayload(300, 6))          // small delta: type-3s carry nothing
}

func buildType3NewMessage(e *chunkEnc) {
	e.message(0, 6, 20_000_000, 9, 1, testPayload(200, 1))
	// Two messages with type-3 headers only (same length, same delta).
	for i := range 2 {
		e.header(3, 6, 0, 0, 0, 0)
		e.raw(testPayload(128, byte(10+i))...)
		e.header(3, 6, 0, 0, 0, 0)
		e.raw(testPayload(72, byte(20+i))...)
	}
	e.message(0, 6, 20_000_000, 9, 1, testPayload(2, 3))
	e.header(3, 6, 0, 0, 0, 0) // new 2-byte message started by type 3
	e.raw(0x17, 0x01)
}

func TestChunkFilterStreams(t *testing.T) {
	for _, c := range chunkCases {
		t.Run(c.name, func(t *testing.T) {
			in := newChunkEnc(c.repeat)
			c.build(in)
			want := newChunkEnc(false)
			c.build(want)
			if c.repeat && bytes.Equal(in.buf, want.buf) {
				t.Fatal("test stream has no repeated extended timestamps")
			}
			checkFilter(t, in.buf, want.buf)
		})
	}
}

// A payload byte sequence equal to the extended timestamp, from an encoder
// that does not repeat it, is indistinguishable from a repeat: the filter
// drops it. This documents the limit of the peek-and-compare rule.
func TestChunkFilterAmbiguousPayload(t *testing.T) {
	in := newChunkEnc(false)
	in.message(0, 6, 20_000_000, 9, 1, testPayload(128, 1))
	in.header(3, 6, 0, 0, 0, 0)
	in.raw(binary.BigEndian.AppendUint32(nil, 20_000_000)...)
	in.raw(1, 2)
	want := append(bytes.Clone(in.buf[:len(in.buf)-6]), 1, 2)
	out, err := filterAll(in.buf, chunkLimits{}, nil, 4096)
	if err != io.EOF || !bytes.Equal(out, want) {
		t.Fatalf("err %v, %d bytes, want %d", err, len(out), len(want))
	}
}

func TestChunkFilterErrors(t *testing.T) {
	cases := []struct {
		name  string
		lim   chunkLimits
		build func(e *chunkEnc)
		want  string
	}{
		{"fmt1-before-fmt0", chunkLimits{}, func(e *chunkEnc) {
			e.header(1, 5, 0, 10, 9, 0)
		}, "rtmp chunk: fmt 1 on chunk stream 5 before any fmt 0 header"},
		{"fmt2-before-fmt0", chunkLimits{}, func(e *chunkEnc) {
			e.message(0, 4, 0, 9, 1, []byte{1})
			e.header(2, 300, 0, 0, 0, 0)
		}, "rtmp chunk: fmt 2 on chunk stream 300 before any fmt 0 header"},
		{"fmt3-before-fmt0", chunkLimits{}, func(e *chunkEnc) {
			e.header(3, 65599, 0, 0, 0, 0)
		}, "rtmp chunk: fmt 3 on chunk stream 65599 before any fmt 0 header"},
		{"zero-length-fmt0", chunkLimits{}, func(e *chunkEnc) {
			e.header(0, 4, 0, 0, 9, 1)
		}, "rtmp chunk: zero-length message on chunk stream 4"},
		{"zero-length-fmt1", chunkLimits{}, func(e *chunkEnc) {
			e.message(0, 4, 0, 9, 1, []byte{1})
			e.header(1, 4, 0, 0, 9, 1)
		}, "rtmp chunk: zero-length message on chunk stream 4"},
		{"message-too-large", chunkLimits{MaxMessageSize: 1000}, func(e *chunkEnc) {
			e.message(0, 4, 0, 9, 1, testPayload(1000, 1))
			e.header(1, 4, 0, 1001, 9, 1)
		}, "rtmp chunk: message of 1001 bytes on chunk stream 4 exceeds the limit 1000"},
		{"chunk-size-zero", chunkLimits{}, func(e *chunkEnc) {
			e.setChunkSize(0)
		}, "rtmp chunk: set chunk size 0"},
		{"chunk-size-too-large", chunkLimits{MaxChunkSize: 65536}, func(e *chunkEnc) {
			e.setChunkSize(65536)
			e.setChunkSize(65537)
		}, "rtmp chunk: set chunk size 65537 exceeds the limit 65536"},
		{"chunk-size-above-24-bits", chunkLimits{MaxChunkSize: 1 << 30}, func(e *chunkEnc) {
			e.setChunkSize(0x1000000)
		}, "rtmp chunk: set chunk size 16777216 exceeds the limit 16777215"},
		{"chunk-size-top-bit", chunkLimits{}, func(e *chunkEnc) {
			e.setChunkSize(0x80000100)
		}, "rtmp chunk: set chunk size 0x80000100 has the reserved top bit set"},
		{"short-set-chunk-size", chunkLimits{}, func(e *chunkEnc) {
			e.message(0, 2, 0, 1, 0, []byte{0, 0, 16})
		}, "rtmp chunk: 3-byte protocol control message (type 1) on chunk stream 2"},
		{"too-many-chunk-streams", chunkLimits{MaxChunkStreams: 3}, func(e *chunkEnc) {
			for _, id := range []int{2, 3, 400, 3, 2, 400, 5} {
				e.message(0, id, 0, 9, 1, []byte{1})
			}
		}, "rtmp chunk: chunk stream 5 exceeds the limit of 3 chunk streams"},
		{"too-many-chunk-streams-default", chunkLimits{}, func(e *chunkEnc) {
			for id := 2; id < 2+65; id++ {
				e.message(0, id, 0, 9, 1, []byte{1})
			}
		}, "rtmp chunk: chunk stream 66 exceeds the limit of 64 chunk streams"},
		{"new-header-mid-message", chunkLimits{}, func(e *chunkEnc) {
			e.header(0, 4, 0, 300, 9, 1)
			e.raw(testPayload(128, 1)...)
			e.header(2, 4, 40, 0, 0, 0)
		}, "rtmp chunk: fmt 2 header on chunk stream 4 with 172 bytes of the previous message still missing"},
		{"fmt0-mid-message", chunkLimits{}, func(e *chunkEnc) {
			e.header(0, 4, 0, 300, 9, 1)
			e.raw(testPayload(128, 1)...)
			e.message(0, 5, 0, 9, 1, []byte{1}) // other chunk streams are fine
			e.header(0, 4, 0, 300, 9, 1)
		}, "rtmp chunk: fmt 0 header on chunk stream 4 with 172 bytes of the previous message still missing"},
		{"abort-partial-message", chunkLimits{}, func(e *chunkEnc) {
			e.header(0, 4, 0, 300, 9, 1)
			e.raw(testPayload(128, 1)...)
			e.message(0, 2, 0, 2, 0, []byte{0, 0, 0, 4})
		}, "rtmp chunk: abort of the partial message on chunk stream 4 is not supported (go-rtmp would corrupt it)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newChunkEnc(true)
			c.build(e)
			e.raw(make([]byte, 64)...) // more data that must not be reached
			for _, m := range readModes {
				_, err := filterAll(e.buf, c.lim, m.wrap, m.buf)
				if err == nil || err.Error() != c.want {
					t.Errorf("%s: error %v, want %q", m.name, err, c.want)
				}
			}
		})
	}
}

func TestChunkFilterReadErrors(t *testing.T) {
	// io.EOF passes through as io.EOF, mid-handshake and mid-chunk.
	e := newChunkEnc(true)
	e.message(0, 6, 20_000_000, 9, 1, testPayload(1000, 1))
	for _, cut := range []int{0, 100, rtmpHandshakeSize, rtmpHandshakeSize + 5, len(e.buf) - 500, len(e.buf) - 3} {
		out, err := filterAll(e.buf[:cut], chunkLimits{}, nil, 4096)
		if err != io.EOF {
			t.Errorf("cut at %d: error %v, want io.EOF", cut, err)
		}
		if len(out) > cut {
			t.Errorf("cut at %d: %d bytes out", cut, len(out))
		}
	}
	// Other errors are wrapped, and sticky.
	boom := errors.New("boom")
	f := newChunkFilter(io.MultiReader(bytes.NewReader(e.buf[:rtmpHandshakeSize+3]), iotest.ErrReader(boom)), chunkLimits{})
	if _, err := io.Copy(io.Discard, f); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "rtmp chunk: ") {
		t.Fatalf("error %v, want wrapped boom", err)
	}
	if _, err := f.Read(make([]byte, 10)); !errors.Is(err, boom) {
		t.Fatalf("second read: %v", err)
	}
}

// stepReader hands out its segments one per Read and fails the test if it
// is read when nothing is left: that read would block on a real connection.
type stepReader struct {
	t    *testing.T
	segs [][]byte
}

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.segs) == 0 {
		s.t.Fatal("filter read ahead: this read would block forever")
	}
	n := copy(p, s.segs[0])
	if s.segs[0] = s.segs[0][n:]; len(s.segs[0]) == 0 {
		s.segs = s.segs[1:]
	}
	return n, nil
}

func TestChunkFilterNoReadAhead(t *testing.T) {
	e := newChunkEnc(true)
	e.message(0, 3, 0, 20, 0, testPayload(100, 1))                 // a whole one-chunk message
	e.message(0, 6, 20_000_000, 9, 1, testPayload(130, 2))         // 2 bytes in the type-3 chunk
	e.message(0, 6, 20_000_000, 9, 1, []byte{0x01, 0x31, 0x2D, 1}) // one chunk
	hs := rtmpHandshakeSize
	c01 := 1 + 1536
	h1 := hs + 1 + 11 + 100 // end of the command message
	h2 := h1 + 1 + 15 + 128 // end of the video message's first chunk
	h3 := h2 + 1 + 4 + 2    // end of the video message
	if h3+1+15+4 != len(e.buf) {
		t.Fatalf("offsets: %d vs %d", h3+1+15+4, len(e.buf))
	}
	s := &stepReader{t: t}
	f := newChunkFilter(s, chunkLimits{})
	p := make([]byte, 64<<10) // bigger than anything, like go-rtmp's bufio
	expect := func(from, to int, wantOut []byte) {
		t.Helper()
		s.segs = append(s.segs, e.buf[from:to])
		n, err := f.Read(p)
		if err != nil || !bytes.Equal(p[:n], wantOut) {
			t.Fatalf("read [%d,%d): %d bytes, %v", from, to, n, err)
		}
	}
	expect(0, c01, e.buf[:c01])    // C0C1: the client now waits for S0S1S2
	expect(c01, hs, e.buf[c01:hs]) // C2
	expect(hs, h1, e.buf[hs:h1])   // a whole message: then the client may wait
	expect(h1, h2, e.buf[h1:h2])   // a whole chunk
	// Type-3 header + extended timestamp + 1 of 2 payload bytes.
	expect(h2, h2+6, []byte{e.buf[h2], e.buf[h2+5]})
	// The last payload byte and part of the next header: the filter must
	// return the byte without waiting for the rest of the header...
	expect(h2+6, h3+5, e.buf[h2+6:h3])
	// ...which comes later.
	expect(h3+5, len(e.buf), e.buf[h3:])
}

// goRTMPMsg is a message as go-rtmp's chunk reader decodes it.
type goRTMPMsg struct {
	csid    int
	ts      uint32
	typeID  rtmpmsg.TypeID
	payload []byte
}

// decodeGoRTMP feeds r to go-rtmp's own chunk reader (after the
// handshake) and returns the first n messages, applying Set Chunk Size as
// go-rtmp's connection handler does.
func decodeGoRTMP(r io.Reader, n int) ([]goRTMPMsg, error) {
	if _, err := io.CopyN(io.Discard, r, rtmpHandshakeSize); err != nil {
		return nil, err
	}
	cs := rtmp.NewChunkStreamer(r, io.Discard, nil)
	defer cs.Close()
	var out []goRTMPMsg
	for len(out) < n {
		var cm rtmp.ChunkMessage
		csid, ts, err := cs.Read(&cm)
		if err != nil {
			return out, err
		}
		m := goRTMPMsg{csid: csid, ts: ts, typeID: cm.Message.TypeID()}
		switch msg := cm.Message.(type) {
		case *rtmpmsg.SetChunkSize:
			if err := cs.PeerState().SetChunkSize(msg.ChunkSize); err != nil {
				return out, err
			}
			m.payload = binary.BigEndian.AppendUint32(nil, msg.ChunkSize)
		case *rtmpmsg.VideoMessage:
			m.payload, _ = io.ReadAll(msg.Payload)
		case *rtmpmsg.AudioMessage:
			m.payload, _ = io.ReadAll(msg.Payload)
		}
		out = append(out, m)
	}
	return out, nil
}

// The end-to-end proof: a stream written the way ffmpeg writes it with
// -output_ts_offset 20000 decodes correctly in go-rtmp through the filter,
// and does not without it.
func TestChunkFilterGoRTMP(t *testing.T) {
	e := newChunkEnc(true)
	v1 := testPayload(5000, 1)
	v2 := testPayload(4200, 2)
	v3 := testPayload(300, 3)
	a1 := testPayload(200, 4)
	e.message(0, 6, 20_000_000, 9, 1, v1) // 40 chunks of 128, ext repeated in each type-3
	e.message(0, 4, 20_000_010, 8, 1, a1)
	e.setChunkSize(4096)
	e.message(1, 6, 40, 9, 1, v2)         // ffmpeg: fmt 1 with a small delta
	e.message(0, 6, 0xFFFFFFF0, 9, 1, v3) // near the 32-bit wrap
	want := []goRTMPMsg{
		{6, 20_000_000, 9, v1},
		{4, 20_000_010, 8, a1},
		{2, 0, 1, []byte{0, 0, 16, 0}},
		{6, 20_000_040, 9, v2},
		{6, 0xFFFFFFF0, 9, v3},
	}
	check := func(name string, r io.Reader) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%s: go-rtmp panicked: %v", name, p)
			}
		}()
		got, err := decodeGoRTMP(r, len(want))
		if err != nil {
			return fmt.Errorf("%s: %d messages, then %v", name, len(got), err)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.csid != w.csid || g.ts != w.ts || g.typeID != w.typeID || !bytes.Equal(g.payload, w.payload) {
				return fmt.Errorf("%s: message %d: csid %d ts %d type %d %d bytes; want csid %d ts %d type %d %d bytes",
					name, i, g.csid, g.ts, g.typeID, len(g.payload), w.csid, w.ts, w.typeID, len(w.payload))
			}
		}
		return nil
	}
	if err := check("filtered", newChunkFilter(bytes.NewReader(e.buf), chunkLimits{})); err != nil {
		t.Error(err)
	}
	if err := check("filtered, one byte at a time", iotest.OneByteReader(newChunkFilter(iotest.OneByteReader(bytes.NewReader(e.buf)), chunkLimits{}))); err != nil {
		t.Error(err)
	}
	err := check("unfiltered", bytes.NewReader(e.buf))
	if err == nil {
		t.Error("go-rtmp decoded the stream without the filter: the test proves nothing")
	} else {
		t.Logf("without the filter (expected to fail): %v", err)
	}
}

func BenchmarkChunkFilter(b *testing.B) {
	build := func(ext bool) []byte {
		e := newChunkEnc(true)
		e.setChunkSize(4096)
		ts := uint32(1000)
		if ext {
			ts = 20_000_000
		}
		e.message(0, 6, ts, 9, 1, testPayload(5000, 0))
		e.message(0, 4, ts, 8, 1, testPayload(400, 0))
		for i := range 200 {
			if ext {
				// Worst case: every message extended, every type-3 peeked.
				e.message(0, 6, ts+uint32(i)*33, 9, 1, testPayload(5000, byte(i)))
			} else {
				e.message(1, 6, 33, 9, 1, testPayload(5000, byte(i)))
			}
			if i%2 == 0 {
				e.message(1, 4, 23, 8, 1, testPayload(400, byte(i)))
			}
		}
		return e.buf
	}
	for _, bc := range []struct {
		name string
		ext  bool
	}{{"plain", false}, {"extended", true}} {
		in := build(bc.ext)
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 4096) // go-rtmp's bufio.Reader size
			r := bytes.NewReader(in)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(in)
				f := newChunkFilter(r, chunkLimits{})
				for {
					_, err := f.Read(buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
