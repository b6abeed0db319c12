package ingest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// chunkFilter sits between a publisher's TCP connection and go-rtmp v0.0.7's
// chunk reader. It passes the RTMP byte stream through unchanged except for
// one repair, and it enforces limits that go-rtmp lacks.
//
// The repair: when the last fmt 0/1/2 header on a chunk stream carried an
// extended timestamp (24-bit field 0xFFFFFF followed by 4 bytes), the spec
// also puts those 4 bytes after every type-3 (fmt=3) basic header on that
// chunk stream. go-rtmp does not read them in type-3 chunks and takes them as
// payload, which breaks every stream whose timestamps pass 0xFFFFFF ms. Some
// encoders do not repeat the value in type-3 chunks, so the filter peeks:
// if the 4 bytes after a type-3 basic header equal the chunk stream's
// extended timestamp they are dropped, otherwise they are payload and pass.
//
// To stay in step with go-rtmp the filter parses exactly what go-rtmp
// parses (basic and message headers, message lengths, the peer chunk size
// from Set Chunk Size messages) and refuses, with an error that closes the
// connection, every input on which go-rtmp would panic or assemble a message
// different from the one the peer sent.
//
// A chunkFilter is not safe for concurrent use; go-rtmp reads from one
// goroutine.
type chunkFilter struct {
	r   io.Reader // the connection; read directly when br is empty
	br  *bufio.Reader
	lim chunkLimits

	handshake int    // handshake bytes (C0, C1, C2) still to pass
	chunkSize uint32 // peer chunk size

	low     [64]*chunkStream // chunk streams 2..63 (one-byte basic header)
	high    map[uint32]*chunkStream
	streams int // distinct chunk streams seen

	// The chunk being emitted: hdr bytes of header, then skip bytes
	// dropped (a repeated extended timestamp), then payload bytes.
	cur     *chunkStream
	hdr     int
	skip    int
	payload int

	err error // sticky

	// onChunkSize, if set, is told each chunk size the peer announces.
	onChunkSize func(uint32)
}

// chunkLimits bounds what a peer may make the filter (and go-rtmp) do.
type chunkLimits struct {
	MaxMessageSize  uint32 // default DefaultMaxMessageSize when 0
	MaxChunkSize    uint32 // largest Set Chunk Size accepted; default (and at most) rtmpMaxChunkSize
	MaxChunkStreams int    // distinct chunk stream IDs per connection; default defaultMaxChunkStreams when 0
}

// chunkStream is the per chunk stream ID state.
type chunkStream struct {
	id        uint32
	length    uint32 // message length from the last fmt 0/1 header
	remaining uint32 // bytes of the current message still to come; 0 between messages
	msid      uint32
	ext       uint32 // extended timestamp (or delta) of the last fmt 0/1/2 header
	hasExt    bool   // the last fmt 0/1/2 header carried an extended timestamp
	typeID    uint8
	ctlN      uint8   // bytes captured into ctl
	ctl       [4]byte // first payload bytes of a Set Chunk Size or Abort message
	amf       []byte  // the AMF0 command or data message so far
}

const (
	rtmpHandshakeSize     = 1 + 1536 + 1536 // C0 + C1 + C2
	rtmpDefaultChunkSize  = 128
	rtmpMaxChunkSize      = 0xFFFFFF // go-rtmp clamps larger values to this
	rtmpExtendedTimestamp = 0xFFFFFF

	rtmpTypeSetChunkSize = 1
	rtmpTypeAbort        = 2
	rtmpTypeDataAMF0     = 18
	rtmpTypeCommandAMF0  = 20

	// maxAMFMessageSize bounds AMF0 command and data messages, which the
	// filter holds whole to check them (commands and onMetaData are a few
	// hundred bytes).
	maxAMFMessageSize = 1 << 20

	chunkFilterBufSize = 16 << 10
	// Payload reads of at least this many bytes go straight from the
	// connection into the caller's buffer when nothing is buffered.
	chunkFilterDirectRead = 512

	// defaultMaxChunkStreams bounds a connection's chunk streams (encoders
	// use a handful); server.go gives go-rtmp the same limit.
	defaultMaxChunkStreams = 64
)

// messageHeaderSize is the message header length by chunk fmt.
var messageHeaderSize = [4]int{11, 7, 3, 0}

func newChunkFilter(r io.Reader, lim chunkLimits) *chunkFilter {
	if lim.MaxMessageSize == 0 {
		lim.MaxMessageSize = DefaultMaxMessageSize
	}
	if lim.MaxChunkSize == 0 || lim.MaxChunkSize > rtmpMaxChunkSize {
		lim.MaxChunkSize = rtmpMaxChunkSize
	}
	if lim.MaxChunkStreams <= 0 {
		lim.MaxChunkStreams = defaultMaxChunkStreams
	}
	return &chunkFilter{
		r:         r,
		br:        bufio.NewReaderSize(r, chunkFilterBufSize),
		lim:       lim,
		handshake: rtmpHandshakeSize,
		chunkSize: rtmpDefaultChunkSize,
	}
}

// Read fills p with the filtered stream. It blocks only when it has nothing
// to return yet: once some bytes are in p it returns rather than wait for
// bytes the caller has not asked for (the client sends C2 only after it
// has S0S1S2, and may wait for a reply after any message).
func (f *chunkFilter) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n := 0
	for n < len(p) {
		switch {
		case f.handshake > 0:
			if n > 0 && f.br.Buffered() == 0 {
				return n, nil
			}
			m, err := f.br.Read(p[n:min(len(p), n+f.handshake)])
			n += m
			f.handshake -= m
			if err != nil {
				return n, f.fail(err)
			}

		case f.hdr > 0:
			// Peeked, so buffered: this does not touch the connection.
			m, _ := f.br.Read(p[n:min(len(p), n+f.hdr)])
			n += m
			f.hdr -= m

		case f.skip > 0:
			_, _ = f.br.Discard(f.skip) // peeked, so buffered
			f.skip = 0

		case f.payload > 0:
			m, err := f.readPayload(p[n:], n > 0)
			n += m
			if err != nil {
				return n, f.fail(err)
			}
			if m == 0 {
				return n, nil
			}

		default:
			ok, err := f.nextChunk(n == 0)
			if err != nil {
				return n, f.fail(err)
			}
			if !ok {
				return n, nil
			}
		}
	}
	return n, nil
}

func (f *chunkFilter) fail(err error) error {
	f.err = err
	return err
}

func readErr(err error) error {
	if err == io.EOF {
		return io.EOF
	}
	return fmt.Errorf("rtmp chunk: read: %w", err)
}

// readPayload passes payload bytes of the current chunk into q. With
// haveData it does not block: it returns 0 when nothing is buffered.
func (f *chunkFilter) readPayload(q []byte, haveData bool) (int, error) {
	k := min(len(q), f.payload)
	var m int
	var err error
	switch {
	case f.br.Buffered() > 0:
		m, _ = f.br.Read(q[:k])
	case haveData:
		return 0, nil
	case k >= chunkFilterDirectRead:
		m, err = f.r.Read(q[:k]) // the single copy, straight into q
	default:
		m, err = f.br.Read(q[:k])
	}
	if m > 0 {
		if cerr := f.consumed(q[:m]); cerr != nil {
			// A refused message loses its last byte, so go-rtmp never
			// holds it complete and never decodes or applies it.
			if f.cur.remaining == 0 {
				m--
			}
			return m, cerr
		}
	}
	if err != nil {
		return m, readErr(err)
	}
	return m, nil
}

// consumed accounts for payload bytes b of the current chunk that went to
// the caller, and acts on a message that they complete.
func (f *chunkFilter) consumed(b []byte) error {
	cs := f.cur
	if cs.typeID == rtmpTypeSetChunkSize || cs.typeID == rtmpTypeAbort {
		for i := 0; i < len(b) && cs.ctlN < 4; i++ {
			cs.ctl[cs.ctlN] = b[i]
			cs.ctlN++
		}
	}
	isAMF := cs.typeID == rtmpTypeDataAMF0 || cs.typeID == rtmpTypeCommandAMF0
	if isAMF {
		cs.amf = append(cs.amf, b...)
	}
	f.payload -= len(b)
	cs.remaining -= uint32(len(b))
	if cs.remaining != 0 {
		return nil
	}
	if isAMF {
		// go-rtmp decodes these with go-amf0, which allocates what a
		// length claims (a 9-byte connect argument can ask for 32 GiB, a
		// fatal out-of-memory for the whole process) and recurses without
		// bound: the message must be sane before go-rtmp has it whole.
		err := checkAMF0Claims(cs.amf)
		cs.amf = cs.amf[:0]
		if cap(cs.amf) > 64<<10 { // a rare big message: do not hold on to it
			cs.amf = nil
		}
		if err != nil {
			return fmt.Errorf("rtmp chunk: AMF0 message (type %d) on chunk stream %d refused: %w", cs.typeID, cs.id, err)
		}
		return nil
	}
	switch cs.typeID {
	case rtmpTypeSetChunkSize:
		// go-rtmp applies a Set Chunk Size as soon as the message is
		// complete, before it reads the next chunk: so do we. (go-rtmp
		// reads the first 4 bytes of a longer message; so do we.)
		v := binary.BigEndian.Uint32(cs.ctl[:])
		switch {
		case v&0x80000000 != 0:
			return fmt.Errorf("rtmp chunk: set chunk size %#x has the reserved top bit set", v)
		case v == 0:
			return fmt.Errorf("rtmp chunk: set chunk size 0")
		case v > f.lim.MaxChunkSize:
			return fmt.Errorf("rtmp chunk: set chunk size %d exceeds the limit %d", v, f.lim.MaxChunkSize)
		}
		f.chunkSize = v
		if f.onChunkSize != nil {
			f.onChunkSize(v)
		}
	case rtmpTypeAbort:
		// go-rtmp v0.0.7 decodes Abort but ignores it: the partial message
		// stays in its buffer and the next chunk on that chunk stream is
		// appended to it, so its framing would no longer match the peer's
		// (or ours) and it would deliver a corrupt message. We cannot take
		// back bytes already handed over, so an Abort of a partial message
		// closes the connection. An Abort of an idle or unknown chunk stream
		// is a no-op for both and passes.
		id := binary.BigEndian.Uint32(cs.ctl[:])
		if t := f.lookup(id); t != nil && t.remaining > 0 {
			return fmt.Errorf("rtmp chunk: abort of the partial message on chunk stream %d is not supported (go-rtmp would corrupt it)", id)
		}
	}
	return nil
}

func (f *chunkFilter) lookup(id uint32) *chunkStream {
	if id < uint32(len(f.low)) {
		return f.low[id]
	}
	return f.high[id] // nil map reads are fine
}

func (f *chunkFilter) open(id uint32) *chunkStream {
	cs := &chunkStream{id: id}
	if id < uint32(len(f.low)) {
		f.low[id] = cs
	} else {
		if f.high == nil {
			f.high = make(map[uint32]*chunkStream)
		}
		f.high[id] = cs
	}
	f.streams++
	return cs
}

// peek returns the next n buffered bytes. Without block it returns nil (and
// no error) when fewer than n bytes are buffered rather than wait for them.
func (f *chunkFilter) peek(n int, block bool) ([]byte, error) {
	if !block && f.br.Buffered() < n {
		return nil, nil
	}
	b, err := f.br.Peek(n)
	if err != nil {
		return nil, readErr(err)
	}
	return b, nil
}

func uint24(b []byte) uint32 {
	return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
}

// nextChunk parses the next chunk header and sets up hdr, skip and payload.
// Without block it returns false (and changes nothing) when the header is
// not yet buffered. Everything is peeked and checked before any state
// changes, so a false return can simply be retried.
func (f *chunkFilter) nextChunk(block bool) (bool, error) {
	b, err := f.peek(1, block)
	if b == nil {
		return false, err
	}
	fmtID := int(b[0] >> 6)
	bh := 1
	switch b[0] & 0x3f {
	case 0:
		bh = 2
	case 1:
		bh = 3
	}
	hdr := bh + messageHeaderSize[fmtID]
	if b, err = f.peek(hdr, block); b == nil {
		return false, err
	}
	var id uint32
	switch bh {
	case 1:
		id = uint32(b[0] & 0x3f)
	case 2:
		id = uint32(b[1]) + 64
	default:
		id = uint32(b[2])<<8 + uint32(b[1]) + 64
	}

	cs := f.lookup(id)
	if cs == nil {
		if fmtID != 0 {
			return false, fmt.Errorf("rtmp chunk: fmt %d on chunk stream %d before any fmt 0 header", fmtID, id)
		}
		if f.streams >= f.lim.MaxChunkStreams {
			return false, fmt.Errorf("rtmp chunk: chunk stream %d exceeds the limit of %d chunk streams", id, f.lim.MaxChunkStreams)
		}
	}
	if fmtID != 3 && cs != nil && cs.remaining > 0 {
		// The spec sends the rest of a message in type-3 chunks. go-rtmp
		// keeps the partial message on a fmt 0/1/2 header, takes the new
		// length (and timestamp) and appends this chunk's payload to it:
		// the message it assembles mixes two messages, it reads a different
		// number of payload bytes than the peer sent (losing the chunk
		// framing), or it panics when the new length is not larger than what
		// it has buffered. None of these is a stream worth keeping.
		return false, fmt.Errorf("rtmp chunk: fmt %d header on chunk stream %d with %d bytes of the previous message still missing",
			fmtID, id, cs.remaining)
	}

	var (
		length uint32
		typeID uint8
		msid   uint32
		ext    uint32
		hasExt bool
		skip   int
	)
	if cs != nil {
		length, typeID, msid = cs.length, cs.typeID, cs.msid
	}
	if fmtID < 3 {
		if uint24(b[bh:]) == rtmpExtendedTimestamp {
			// go-rtmp reads this one itself: it passes.
			if b, err = f.peek(hdr+4, block); b == nil {
				return false, err
			}
			ext, hasExt = binary.BigEndian.Uint32(b[hdr:]), true
			hdr += 4
		}
		if fmtID < 2 {
			length, typeID = uint24(b[bh+3:]), b[bh+6]
			if fmtID == 0 {
				msid = binary.LittleEndian.Uint32(b[bh+7:])
			}
			switch {
			case length == 0:
				return false, fmt.Errorf("rtmp chunk: zero-length message on chunk stream %d", id)
			case length > f.lim.MaxMessageSize:
				return false, fmt.Errorf("rtmp chunk: message of %d bytes on chunk stream %d exceeds the limit %d",
					length, id, f.lim.MaxMessageSize)
			case (typeID == rtmpTypeDataAMF0 || typeID == rtmpTypeCommandAMF0) && length > maxAMFMessageSize:
				return false, fmt.Errorf("rtmp chunk: AMF0 message of %d bytes (type %d) on chunk stream %d exceeds the limit %d",
					length, typeID, id, maxAMFMessageSize)
			case (typeID == rtmpTypeSetChunkSize || typeID == rtmpTypeAbort) && length < 4:
				return false, fmt.Errorf("rtmp chunk: %d-byte protocol control message (type %d) on chunk stream %d",
					length, typeID, id)
			}
		}
	}

	remaining := length
	if cs != nil && cs.remaining > 0 {
		remaining = cs.remaining
	}
	size := min(remaining, f.chunkSize)

	if fmtID == 3 && cs.hasExt {
		// Peek and compare. With at least 4 payload bytes to come the peer
		// sends 4 more bytes whether or not it repeats the timestamp. With
		// fewer, wait for the payload first and only read further while it
		// matches the timestamp's leading bytes (an encoder that does not
		// repeat it and then goes quiet after such a payload is the one case
		// where this waits for the next chunk).
		want := bh + 4
		if size < 4 {
			if b, err = f.peek(bh+int(size), block); b == nil {
				return false, err
			}
			var e [4]byte
			binary.BigEndian.PutUint32(e[:], cs.ext)
			if string(b[bh:]) != string(e[:size]) {
				want = 0
			}
		}
		if want > 0 {
			if b, err = f.peek(want, block); b == nil {
				return false, err
			}
			if binary.BigEndian.Uint32(b[bh:]) == cs.ext {
				skip = 4
			}
		}
	}

	// Commit.
	if cs == nil {
		cs = f.open(id)
	}
	cs.length, cs.typeID, cs.msid = length, typeID, msid
	if fmtID < 3 {
		cs.ext, cs.hasExt = ext, hasExt
	}
	if cs.remaining == 0 {
		cs.remaining = length
		cs.ctlN = 0
		cs.amf = cs.amf[:0]
	}
	f.cur = cs
	f.hdr = hdr
	f.skip = skip
	f.payload = int(size)
	return true, nil
}
