package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/yutopp/go-amf0"
)

// A minimal RTMP publishing client. go-rtmp's client copies every message
// into its own buffers, runs goroutines per chunk stream and has no
// timeout on connect; a load tool that drives hundreds of streams from
// one core wants to write the shared tag bytes straight into one buffer
// per connection instead.

// RTMP message types and chunk streams used here.
const (
	msgSetChunkSize = 1
	msgAbort        = 2
	msgUserControl  = 4
	msgCommandAMF0  = 20
	msgDataAMF0     = 18

	csControl = 2
	csCommand = 3
	csAudio   = 4
	csVideo   = 6
	csData    = 5

	outChunkSize = 4096 // what ffmpeg and OBS use
	maxInMessage = 1 << 20
)

type rtmpConn struct {
	nc       net.Conn
	r        *bufio.Reader
	inChunk  int
	in       map[uint32]*inStream
	streamID uint32
	buf      []byte // outgoing messages, flushed in one write
}

// inStream is the reading state of one incoming chunk stream.
type inStream struct {
	ts, delta uint32
	length    int
	typ       uint8
	msid      uint32
	ext       bool
	msg       []byte
}

// rtmpMessage is one complete incoming message; payload is valid until
// the next read.
type rtmpMessage struct {
	typ     uint8
	msid    uint32
	payload []byte
}

// dialPublish connects to addr, performs the handshake and the
// connect/createStream/publish exchange, bounded by ctx.
func dialPublish(ctx context.Context, addr, app, tcURL, name string) (*rtmpConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rtmp dial: %w", err)
	}
	c := &rtmpConn{nc: nc, r: bufio.NewReaderSize(nc, 16<<10), inChunk: 128, in: make(map[uint32]*inStream), buf: make([]byte, 0, 64<<10)}
	// The deadline bounds the whole setup; stop() unblocks it early.
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	err = c.setup(app, tcURL, name)
	if !stop() && err != nil {
		err = fmt.Errorf("rtmp setup cut short (%w): %w", ctx.Err(), err)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *rtmpConn) setup(app, tcURL, name string) error {
	if err := c.handshake(); err != nil {
		return fmt.Errorf("rtmp handshake: %w", err)
	}
	var p bytes.Buffer
	binary.Write(&p, binary.BigEndian, uint32(outChunkSize))
	c.buf = appendMessage(c.buf, csControl, msgSetChunkSize, 0, 0, p.Bytes(), 128)
	p.Reset()
	amfString(&p, "connect")
	amfNumber(&p, 1)
	amfObject(&p, []kv{{"app", app}, {"type", "nonprivate"}, {"flashVer", "FMLE/3.0 (compatible; fount-bench)"}, {"tcUrl", tcURL}})
	c.buf = appendMessage(c.buf, csCommand, msgCommandAMF0, 0, 0, p.Bytes(), outChunkSize)
	if err := c.flush(); err != nil {
		return err
	}
	if _, err := c.awaitResult(1); err != nil {
		return fmt.Errorf("rtmp connect: %w", err)
	}
	p.Reset()
	amfString(&p, "createStream")
	amfNumber(&p, 2)
	p.WriteByte(0x05) // null
	c.buf = appendMessage(c.buf, csCommand, msgCommandAMF0, 0, 0, p.Bytes(), outChunkSize)
	if err := c.flush(); err != nil {
		return err
	}
	res, err := c.awaitResult(2)
	if err != nil {
		return fmt.Errorf("rtmp createStream: %w", err)
	}
	id, ok := res.(float64)
	if !ok || id < 0 || id > math.MaxUint32 {
		return fmt.Errorf("rtmp createStream: unexpected stream id %v", res)
	}
	c.streamID = uint32(id)
	p.Reset()
	amfString(&p, "publish")
	amfNumber(&p, 3)
	p.WriteByte(0x05)
	amfString(&p, name)
	amfString(&p, "live")
	c.buf = appendMessage(c.buf, csCommand, msgCommandAMF0, 0, c.streamID, p.Bytes(), outChunkSize)
	if err := c.flush(); err != nil {
		return err
	}
	if err := c.awaitPublishStart(); err != nil {
		return fmt.Errorf("rtmp publish %q: %w", name, err)
	}
	return nil
}

// handshake is the plain (unsigned) RTMP handshake: C1 with a zero
// version field, which every server accepts, and C2 echoing S1.
func (c *rtmpConn) handshake() error {
	c01 := make([]byte, 1+1536)
	c01[0] = 3
	if _, err := rand.Read(c01[9:]); err != nil {
		return err
	}
	if _, err := c.nc.Write(c01); err != nil {
		return err
	}
	s := make([]byte, 1+1536+1536)
	if _, err := io.ReadFull(c.r, s); err != nil {
		return err
	}
	if s[0] != 3 {
		return fmt.Errorf("server speaks RTMP version %d", s[0])
	}
	_, err := c.nc.Write(s[1 : 1+1536])
	return err
}

// awaitResult reads until the _result (or _error) of a transaction and
// returns its fourth value.
func (c *rtmpConn) awaitResult(txn float64) (any, error) {
	for {
		vals, err := c.readCommand()
		if err != nil {
			return nil, err
		}
		if len(vals) < 2 || vals[1] != txn {
			continue
		}
		switch vals[0] {
		case "_result":
			if len(vals) > 3 {
				return vals[3], nil
			}
			return nil, nil
		case "_error":
			return nil, fmt.Errorf("refused: %s", describe(vals))
		}
	}
}

func (c *rtmpConn) awaitPublishStart() error {
	for {
		vals, err := c.readCommand()
		if err != nil {
			return err
		}
		if len(vals) < 4 || vals[0] != "onStatus" {
			if len(vals) > 0 && vals[0] == "_error" {
				return fmt.Errorf("refused: %s", describe(vals))
			}
			continue
		}
		info, _ := vals[3].(map[string]any)
		code, _ := info["code"].(string)
		switch {
		case code == "NetStream.Publish.Start":
			return nil
		case info["level"] == "error" || code == "NetStream.Publish.BadName" || code == "NetStream.Publish.Rejected":
			return fmt.Errorf("refused: %s", describe(vals))
		}
	}
}

// describe renders a refusal's info object for an error message.
func describe(vals []any) string {
	for _, v := range vals[2:] {
		if m, ok := v.(map[string]any); ok {
			if code, ok := m["code"]; ok {
				return fmt.Sprintf("%v (%v)", code, m["description"])
			}
		}
	}
	return fmt.Sprint(vals)
}

// readCommand reads messages until an AMF0 command and decodes its values.
func (c *rtmpConn) readCommand() ([]any, error) {
	for {
		m, err := c.readMessage()
		if err != nil {
			return nil, err
		}
		if m.typ != msgCommandAMF0 {
			continue
		}
		dec := amf0.NewDecoder(bytes.NewReader(m.payload))
		var vals []any
		for {
			var v any
			if err := dec.Decode(&v); err != nil {
				break
			}
			vals = append(vals, v)
		}
		if len(vals) > 0 {
			return vals, nil
		}
	}
}

// readMessage reads chunks until one message is complete. It applies Set
// Chunk Size and answers nothing: a publisher's peer sends it little.
func (c *rtmpConn) readMessage() (rtmpMessage, error) {
	var hdr [11]byte
	for {
		b0, err := c.r.ReadByte()
		if err != nil {
			return rtmpMessage{}, err
		}
		format, csid := b0>>6, uint32(b0&0x3f)
		switch csid {
		case 0:
			if _, err := io.ReadFull(c.r, hdr[:1]); err != nil {
				return rtmpMessage{}, err
			}
			csid = 64 + uint32(hdr[0])
		case 1:
			if _, err := io.ReadFull(c.r, hdr[:2]); err != nil {
				return rtmpMessage{}, err
			}
			csid = 64 + uint32(hdr[0]) + uint32(hdr[1])*256
		}
		st := c.in[csid]
		if st == nil {
			if format != 0 || len(c.in) >= 64 {
				return rtmpMessage{}, fmt.Errorf("rtmp: unexpected chunk stream %d (format %d)", csid, format)
			}
			st = &inStream{}
			c.in[csid] = st
		}
		hlen := [4]int{11, 7, 3, 0}[format]
		if _, err := io.ReadFull(c.r, hdr[:hlen]); err != nil {
			return rtmpMessage{}, err
		}
		var tsField uint32
		if hlen >= 3 {
			tsField = uint32(hdr[0])<<16 | uint32(hdr[1])<<8 | uint32(hdr[2])
			st.ext = tsField == 0xffffff
		}
		if hlen >= 7 {
			st.length = int(hdr[3])<<16 | int(hdr[4])<<8 | int(hdr[5])
			st.typ = hdr[6]
		}
		if hlen == 11 {
			st.msid = binary.LittleEndian.Uint32(hdr[7:11])
		}
		if st.ext {
			if _, err := io.ReadFull(c.r, hdr[:4]); err != nil {
				return rtmpMessage{}, err
			}
			if format != 3 {
				tsField = binary.BigEndian.Uint32(hdr[:4])
			}
		}
		starting := len(st.msg) == 0
		switch {
		case format == 0:
			st.ts = tsField
		case format != 3:
			st.delta = tsField
		}
		if starting && format != 0 {
			st.ts += st.delta
		}
		if st.length > maxInMessage {
			return rtmpMessage{}, fmt.Errorf("rtmp: %d-byte message from the server", st.length)
		}
		n := min(c.inChunk, st.length-len(st.msg))
		start := len(st.msg)
		st.msg = append(st.msg, make([]byte, n)...)
		if _, err := io.ReadFull(c.r, st.msg[start:]); err != nil {
			return rtmpMessage{}, err
		}
		if len(st.msg) < st.length {
			continue
		}
		m := rtmpMessage{typ: st.typ, msid: st.msid, payload: st.msg}
		st.msg = st.msg[:0:0]
		switch m.typ {
		case msgSetChunkSize:
			if len(m.payload) >= 4 {
				v := int(binary.BigEndian.Uint32(m.payload) & 0x7fffffff)
				if v < 1 || v > maxInMessage {
					return rtmpMessage{}, fmt.Errorf("rtmp: server chunk size %d", v)
				}
				c.inChunk = v
			}
		case msgAbort:
			if len(m.payload) >= 4 {
				if s := c.in[binary.BigEndian.Uint32(m.payload)]; s != nil {
					s.msg = s.msg[:0:0]
				}
			}
		}
		return m, nil
	}
}

// appendMessage appends one message as chunks: a type-0 header, then
// type-3 continuation headers every chunkSize bytes. Timestamps at or past
// 0xFFFFFF go in the extended field, repeated in every continuation as
// the specification (and ffmpeg) do.
func appendMessage(buf []byte, csid uint8, typ uint8, ts uint32, msid uint32, payload []byte, chunkSize int) []byte {
	ext := ts >= 0xffffff
	tsField := ts
	if ext {
		tsField = 0xffffff
	}
	n := len(payload)
	buf = append(buf, csid&0x3f,
		byte(tsField>>16), byte(tsField>>8), byte(tsField),
		byte(n>>16), byte(n>>8), byte(n),
		typ,
		byte(msid), byte(msid>>8), byte(msid>>16), byte(msid>>24))
	if ext {
		buf = binary.BigEndian.AppendUint32(buf, ts)
	}
	for {
		k := min(chunkSize, len(payload))
		buf = append(buf, payload[:k]...)
		payload = payload[k:]
		if len(payload) == 0 {
			return buf
		}
		buf = append(buf, 0xc0|csid&0x3f)
		if ext {
			buf = binary.BigEndian.AppendUint32(buf, ts)
		}
	}
}

// flush writes the buffered messages.
func (c *rtmpConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		return fmt.Errorf("rtmp write: %w", err)
	}
	return nil
}

// drain reads and discards what the server sends once publishing (acks,
// pings, status), so that its writes never block. Pings are answered
// through pong, which the writing goroutine owns. It returns at the
// first read error, e.g. when the connection is closed.
func (c *rtmpConn) drain(pong chan<- uint32) error {
	for {
		m, err := c.readMessage()
		if err != nil {
			return err
		}
		// User control PingRequest (event 6) carries a timestamp to echo.
		if m.typ == msgUserControl && len(m.payload) >= 6 && binary.BigEndian.Uint16(m.payload) == 6 {
			select {
			case pong <- binary.BigEndian.Uint32(m.payload[2:]):
			default:
			}
		}
	}
}

// appendPong appends a PingResponse (user control event 7).
func appendPong(buf []byte, ts uint32) []byte {
	var p [6]byte
	binary.BigEndian.PutUint16(p[:], 7)
	binary.BigEndian.PutUint32(p[2:], ts)
	return appendMessage(buf, csControl, msgUserControl, 0, 0, p[:], outChunkSize)
}

// AMF0 encoding of the few values the handshake commands need.
type kv struct{ k, v string }

func amfString(b *bytes.Buffer, s string) {
	b.WriteByte(0x02)
	binary.Write(b, binary.BigEndian, uint16(len(s)))
	b.WriteString(s)
}

func amfNumber(b *bytes.Buffer, f float64) {
	b.WriteByte(0x00)
	binary.Write(b, binary.BigEndian, f)
}

func amfObject(b *bytes.Buffer, props []kv) {
	b.WriteByte(0x03)
	for _, p := range props {
		binary.Write(b, binary.BigEndian, uint16(len(p.k)))
		b.WriteString(p.k)
		amfString(b, p.v)
	}
	b.Write([]byte{0, 0, 0x09})
}
