package ingest

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	amf0 "github.com/yutopp/go-amf0"
	rtmp "github.com/yutopp/go-rtmp"
)

// errRecorder remembers the last error its reader returned.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// FuzzChunkFilter feeds arbitrary chunk streams (after a fixed handshake)
// through the filter. The filter must not panic, must terminate, must not
// emit more bytes than it read, must give the same output and error however
// the reads are split, and what it emits must never make go-rtmp's own
// chunk reader panic or lose the chunk framing, and go-rtmp must never
// have a whole AMF0 message that would make go-amf0 allocate or recurse
// beyond it.
func FuzzChunkFilter(f *testing.F) {
	for _, c := range chunkCases {
		for _, repeat := range []bool{true, false} {
			e := newChunkEnc(repeat)
			c.build(e)
			if len(e.buf)-rtmpHandshakeSize <= 16<<10 {
				f.Add(e.buf[rtmpHandshakeSize:])
			}
		}
	}
	e := newChunkEnc(true)
	e.message(0, 6, 20_000_000, 9, 1, testPayload(200, 1))
	e.setChunkSize(3)
	e.message(0, 6, 20_000_000, 9, 1, testPayload(10, 2))
	e.setChunkSize(300)
	e.message(1, 6, 0x1000000, 9, 1, testPayload(400, 3))
	e.message(0, 2, 0, 2, 0, []byte{0, 0, 0, 6})
	f.Add(e.buf[rtmpHandshakeSize:])
	// AMF0 commands and data as a publisher sends them, and a hostile one.
	e = newChunkEnc(false)
	e.message(0, 3, 0, rtmpTypeCommandAMF0, 0, amf0Bytes(f, "connect", 1.0, map[string]interface{}{"app": "live", "type": "nonprivate"}))
	e.message(0, 3, 0, rtmpTypeCommandAMF0, 0, amf0Bytes(f, "createStream", 2.0, nil))
	e.message(0, 4, 0, rtmpTypeDataAMF0, 1, amf0Bytes(f, "@setDataFrame", "onMetaData", amf0.ECMAArray{"width": 1280.0}))
	f.Add(e.buf[rtmpHandshakeSize:])
	e = newChunkEnc(false)
	e.message(0, 3, 0, rtmpTypeCommandAMF0, 0, hostileConnect(f, 200))
	f.Add(e.buf[rtmpHandshakeSize:])

	hs := newChunkEnc(false).buf
	lim := chunkLimits{MaxMessageSize: 1 << 16, MaxChunkStreams: 8}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append(bytes.Clone(hs), data...)

		out, err := filterAll(in, lim, nil, 4096)
		if err == nil || err == io.ErrNoProgress {
			t.Fatalf("filter stopped with %v", err)
		}
		if len(out) > len(in) {
			t.Fatalf("%d bytes out of %d in", len(out), len(in))
		}
		out2, err2 := filterAll(in, lim, iotest.OneByteReader, 3)
		if !bytes.Equal(out, out2) || err.Error() != err2.Error() {
			t.Fatalf("split reads differ: %d bytes, %v; %d bytes, %v", len(out), err, len(out2), err2)
		}

		// go-rtmp's chunk layer on the filtered stream. Set Chunk Size is
		// applied after each message, as go-rtmp's connection handler does.
		cf := newChunkFilter(bytes.NewReader(in), lim)
		rec := &errRecorder{r: cf}
		if _, err := io.CopyN(io.Discard, rec, rtmpHandshakeSize); err != nil {
			return
		}
		cs := rtmp.NewChunkStreamer(rec, io.Discard, nil)
		defer cs.Close()
		for {
			r, err := cs.NewChunkReader()
			if err != nil {
				if rec.err == nil {
					t.Fatalf("go-rtmp failed on the filtered stream: %v", err)
				}
				if !errors.Is(err, rec.err) && !(rec.err == io.EOF && err == io.ErrUnexpectedEOF) {
					t.Fatalf("go-rtmp error %v, filter error %v", err, rec.err)
				}
				return
			}
			msg, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			n := len(msg)
			// go-rtmp reads exactly what it needs, so the filter now stands
			// at the end of the very message go-rtmp assembled.
			if cf.cur == nil {
				t.Fatalf("go-rtmp has a %d-byte message; the filter saw none", n)
			}
			if cf.hdr != 0 || cf.skip != 0 || cf.payload != 0 || cf.cur.remaining != 0 || uint32(n) != cf.cur.length {
				t.Fatalf("out of step: go-rtmp has a %d-byte message; filter at chunk stream %d, length %d, %d+%d+%d bytes pending",
					n, cf.cur.id, cf.cur.length, cf.hdr, cf.skip, cf.payload)
			}
			if typ := cf.cur.typeID; typ == rtmpTypeCommandAMF0 || typ == rtmpTypeDataAMF0 {
				if err := checkAMF0Claims(msg); err != nil {
					t.Fatalf("go-rtmp has a type %d message with %v", typ, err)
				}
			}
			if err := cs.PeerState().SetChunkSize(cf.chunkSize); err != nil {
				t.Fatal(err)
			}
		}
	})
}
