package main

import (
	"bufio"
	"bytes"
	binenc "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	amf0 "github.com/yutopp/go-amf0"

	"github.com/fount-live/fount/ingest/flv"
)

// rtmpClient is a small RTMP publisher for tests: it shapes every byte it
// sends (chunk headers, timestamps, message order) so that tests can send
// what an encoder would not, and it reads what the server answers on its own
// goroutine, so that a test sees the moment the server closes the
// connection. go-rtmp's client is not used: it waits for answers without a
// timeout and panics on an onStatus for a stream it made.
type rtmpClient struct {
	conn      net.Conn
	chunkSize int // outgoing
	last      map[int]sentHeader
	wbuf      []byte

	msgs   chan rtmpMsg  // commands from the server
	closed chan struct{} // closed when the server closed the connection
	mu     sync.Mutex
	err    error // why reading ended
	done   chan struct{}
}

// sentHeader is what the last message on a chunk stream used, for fmt 1.
type sentHeader struct {
	ts       uint32
	streamID uint32
}

// rtmpMsg is a command (AMF0, type 20) the server sent.
type rtmpMsg struct {
	streamID uint32
	name     string
	txn      float64
	args     []any
}

// statusCode returns the "code" of an onStatus info object.
func (m rtmpMsg) statusCode() string {
	for _, a := range m.args {
		if o, ok := a.(map[string]any); ok {
			if c, ok := o["code"].(string); ok {
				return c
			}
		}
	}
	return ""
}

// dialRTMP connects and performs the handshake; the connection is closed
// at the end of the test.
func dialRTMP(t *testing.T, addr string) *rtmpClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	rtmpHandshake(t, nc)
	nc.SetDeadline(time.Time{})
	c := &rtmpClient{
		conn: nc, chunkSize: 128, last: make(map[int]sentHeader),
		msgs: make(chan rtmpMsg, 64), closed: make(chan struct{}), done: make(chan struct{}),
	}
	go c.readLoop()
	t.Cleanup(func() {
		nc.Close()
		<-c.done
	})
	return c
}

// alive reports whether the server has not closed the connection.
func (c *rtmpClient) alive() bool {
	select {
	case <-c.closed:
		return false
	default:
		return true
	}
}

func (c *rtmpClient) readErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// readLoop reads the server's chunk stream until the connection ends and
// passes its commands to msgs (dropping them when no one reads).
func (c *rtmpClient) readLoop() {
	defer close(c.done)
	br := bufio.NewReader(c.conn)
	type inStream struct {
		ts, length, streamID uint32
		typeID               byte
		ext                  bool
		buf                  []byte
	}
	streams := map[uint32]*inStream{}
	chunkSize := uint32(128)
	err := func() error {
		var hdr [11]byte
		for {
			b0, err := br.ReadByte()
			if err != nil {
				return err
			}
			fmtv, csid := b0>>6, uint32(b0&0x3f)
			switch csid {
			case 0:
				b, err := br.ReadByte()
				if err != nil {
					return err
				}
				csid = 64 + uint32(b)
			case 1:
				if _, err := io.ReadFull(br, hdr[:2]); err != nil {
					return err
				}
				csid = 64 + uint32(hdr[0]) + uint32(hdr[1])<<8
			}
			st := streams[csid]
			if st == nil {
				st = &inStream{}
				streams[csid] = st
			}
			n := [4]int{11, 7, 3, 0}[fmtv]
			if _, err := io.ReadFull(br, hdr[:n]); err != nil {
				return err
			}
			var tsField uint32
			if n >= 3 {
				tsField = uint32(hdr[0])<<16 | uint32(hdr[1])<<8 | uint32(hdr[2])
				st.ext = tsField == 0xffffff
			}
			if n >= 7 {
				st.length = uint32(hdr[3])<<16 | uint32(hdr[4])<<8 | uint32(hdr[5])
				st.typeID = hdr[6]
			}
			if n == 11 {
				st.streamID = binenc.LittleEndian.Uint32(hdr[7:11])
			}
			if st.ext && n > 0 {
				// go-rtmp's writer does not repeat it in type-3 chunks.
				if _, err := io.ReadFull(br, hdr[:4]); err != nil {
					return err
				}
				tsField = binenc.BigEndian.Uint32(hdr[:4])
			}
			if n == 11 {
				st.ts = tsField
			} else if n > 0 && len(st.buf) == 0 {
				st.ts += tsField
			}
			want := min(chunkSize, st.length-uint32(len(st.buf)))
			chunk := make([]byte, want)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return err
			}
			st.buf = append(st.buf, chunk...)
			if uint32(len(st.buf)) < st.length {
				continue
			}
			payload := st.buf
			st.buf = nil
			switch st.typeID {
			case 1: // Set Chunk Size
				if len(payload) >= 4 {
					chunkSize = binenc.BigEndian.Uint32(payload) & 0x7fffffff
				}
			case 20:
				m := rtmpMsg{streamID: st.streamID}
				dec := amf0.NewDecoder(bytes.NewReader(payload))
				if dec.Decode(&m.name) != nil || dec.Decode(&m.txn) != nil {
					continue
				}
				for {
					var v any
					if dec.Decode(&v) != nil {
						break
					}
					m.args = append(m.args, v)
				}
				select {
				case c.msgs <- m:
				default:
				}
			}
		}
	}()
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.closed)
}

// writeMsg sends one message: fmt 1 (timestamp delta) after an earlier
// message on the same chunk stream and message stream when the timestamp
// moves forward (modulo 2^32, as encoders do across the wrap), else fmt 0;
// extended timestamps as ffmpeg writes them, repeated in type-3 chunks.
func (c *rtmpClient) writeMsg(csid int, typeID byte, streamID, ts uint32, payload []byte) error {
	if csid < 2 || csid > 63 {
		return fmt.Errorf("chunk stream id %d: this client writes one-byte basic headers only", csid)
	}
	b := c.wbuf[:0]
	prev, ok := c.last[csid]
	delta := ts - prev.ts
	field := ts
	fmtv := byte(0)
	if ok && prev.streamID == streamID && delta < 0xffffff {
		fmtv, field = 1, delta
	}
	c.last[csid] = sentHeader{ts: ts, streamID: streamID}
	ext := field >= 0xffffff
	f24 := min(field, 0xffffff)
	b = append(b, fmtv<<6|byte(csid), byte(f24>>16), byte(f24>>8), byte(f24))
	b = append(b, byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)), typeID)
	if fmtv == 0 {
		b = binenc.LittleEndian.AppendUint32(b, streamID)
	}
	if ext {
		b = binenc.BigEndian.AppendUint32(b, field)
	}
	for off := 0; ; {
		n := min(c.chunkSize, len(payload)-off)
		b = append(b, payload[off:off+n]...)
		off += n
		if off >= len(payload) {
			break
		}
		b = append(b, 3<<6|byte(csid))
		if ext {
			b = binenc.BigEndian.AppendUint32(b, field)
		}
	}
	c.wbuf = b
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(b)
	if err != nil {
		return fmt.Errorf("writing an RTMP message: %w", err)
	}
	return nil
}

// setChunkSize announces and uses a new outgoing chunk size.
func (c *rtmpClient) setChunkSize(n int) error {
	if err := c.writeMsg(2, 1, 0, 0, binenc.BigEndian.AppendUint32(nil, uint32(n))); err != nil {
		return err
	}
	c.chunkSize = n
	return nil
}

// amf encodes values as AMF0.
func amf(vals ...any) []byte {
	var b bytes.Buffer
	enc := amf0.NewEncoder(&b)
	for _, v := range vals {
		if err := enc.Encode(v); err != nil {
			panic(fmt.Sprintf("amf0 encoding %T: %v", v, err))
		}
	}
	return b.Bytes()
}

// command sends an AMF0 command message on chunk stream 3.
func (c *rtmpClient) command(streamID uint32, name string, txn float64, args ...any) error {
	return c.writeMsg(3, 20, streamID, 0, amf(append([]any{name, txn}, args...)...))
}

// await waits for a server command that match accepts.
func (c *rtmpClient) await(what string, match func(rtmpMsg) bool) (rtmpMsg, error) {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			if match(m) {
				return m, nil
			}
		case <-c.closed:
			return rtmpMsg{}, fmt.Errorf("waiting for %s: server closed the connection: %w", what, c.readErr())
		case <-timeout:
			return rtmpMsg{}, fmt.Errorf("waiting for %s: no answer in 5 s", what)
		}
	}
}

func (c *rtmpClient) connect(app string) error {
	if err := c.command(0, "connect", 1, map[string]any{
		"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; fount-test)", "tcUrl": "rtmp://localhost/" + app,
	}); err != nil {
		return err
	}
	m, err := c.await("the connect result", func(m rtmpMsg) bool { return m.txn == 1 })
	if err != nil {
		return err
	}
	if m.name != "_result" {
		return fmt.Errorf("connect: %s %v", m.name, m.args)
	}
	return nil
}

// createStream returns the new message stream id.
func (c *rtmpClient) createStream(txn float64) (uint32, error) {
	if err := c.command(0, "createStream", txn, nil); err != nil {
		return 0, err
	}
	m, err := c.await("the createStream result", func(m rtmpMsg) bool { return m.txn == txn })
	if err != nil {
		return 0, err
	}
	if m.name != "_result" || len(m.args) < 2 {
		return 0, fmt.Errorf("createStream: %s %v", m.name, m.args)
	}
	id, ok := m.args[1].(float64)
	if !ok {
		return 0, fmt.Errorf("createStream: stream id %T", m.args[1])
	}
	return uint32(id), nil
}

// publish asks to publish on streamID and returns the onStatus code.
func (c *rtmpClient) publish(streamID uint32, name string) (string, error) {
	if err := c.writeMsg(8, 20, streamID, 0, amf("publish", 0.0, nil, name, "live")); err != nil {
		return "", err
	}
	m, err := c.await("onStatus", func(m rtmpMsg) bool { return m.name == "onStatus" && m.streamID == streamID })
	if err != nil {
		return "", err
	}
	return m.statusCode(), nil
}

// publishRTMP connects to app "live", creates a stream and publishes name
// with a 4 KiB chunk size (as ffmpeg does).
func publishRTMP(t *testing.T, addr, name string) (*rtmpClient, uint32) {
	t.Helper()
	c := dialRTMP(t, addr)
	if err := c.setChunkSize(4096); err != nil {
		t.Fatal(err)
	}
	if err := c.connect("live"); err != nil {
		t.Fatal(err)
	}
	sid, err := c.createStream(2)
	if err != nil {
		t.Fatal(err)
	}
	code, err := c.publish(sid, name)
	if err != nil || code != "NetStream.Publish.Start" {
		t.Fatalf("publish %s: %q %v", name, code, err)
	}
	return c, sid
}

// flvTag is one tag of an FLV file; ts is the DTS in ms on a 64-bit
// timeline, sent modulo 2^32.
type flvTag struct {
	typ  byte // 8 audio, 9 video, 18 script data
	ts   int64
	data []byte
}

const (
	tagAudio  = flv.TagAudio
	tagVideo  = flv.TagVideo
	tagScript = flv.TagScript
)

func (g flvTag) tag() flv.Tag      { return flv.Tag{Type: g.typ, Data: g.data} }
func (g flvTag) videoConfig() bool { return g.typ == tagVideo && g.tag().SequenceHeader() }
func (g flvTag) audioConfig() bool { return g.typ == tagAudio && g.tag().SequenceHeader() }
func (g flvTag) config() bool      { return g.tag().SequenceHeader() }
func (g flvTag) keyframe() bool    { return g.tag().Keyframe() }

// cts is a video tag's composition time offset in ms.
func (g flvTag) cts() int32 {
	if g.typ != tagVideo || len(g.data) < 5 {
		return 0
	}
	v := int32(g.data[2])<<16 | int32(g.data[3])<<8 | int32(g.data[4])
	return v << 8 >> 8
}

// readFLV reads the tags of an FLV file.
func readFLV(t *testing.T, path string) []flvTag {
	t.Helper()
	tags, err := flv.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]flvTag, len(tags))
	for i, g := range tags {
		out[i] = flvTag{typ: g.Type, ts: int64(g.Timestamp), data: g.Data}
	}
	return out
}

// retime returns the tags with their timestamps mapped by f(kind, ts) and,
// when resort is set, put back in timestamp order (an encoder interleaves
// by time); sequence headers and metadata stay first.
func retime(tags []flvTag, resort bool, f func(kind byte, ts int64) int64) []flvTag {
	out := make([]flvTag, len(tags))
	for i, g := range tags {
		g.ts = f(g.typ, g.ts)
		out[i] = g
	}
	if resort {
		sort.SliceStable(out, func(i, j int) bool {
			ci, cj := out[i].config() || out[i].typ == tagScript, out[j].config() || out[j].typ == tagScript
			if ci != cj {
				return ci
			}
			return out[i].ts < out[j].ts
		})
	}
	return out
}

// sendTags writes the tags on message stream sid as fast as the connection
// takes them: audio on chunk stream 4, video on 6, metadata (with
// "@setDataFrame") on 5, like ffmpeg's separate media channels.
func (c *rtmpClient) sendTags(sid uint32, tags []flvTag) error {
	for _, g := range tags {
		var err error
		switch g.typ {
		case tagAudio:
			err = c.writeMsg(4, 8, sid, uint32(g.ts), g.data)
		case tagVideo:
			err = c.writeMsg(6, 9, sid, uint32(g.ts), g.data)
		case tagScript:
			err = c.writeMsg(5, 18, sid, uint32(g.ts), append(amf("@setDataFrame"), g.data...))
		}
		if err != nil {
			return err
		}
		if !c.alive() {
			return errors.New("the server closed the connection")
		}
	}
	return nil
}

// split returns the tags with ts < at (by DTS) and the rest.
func split(tags []flvTag, at int64) (before, after []flvTag) {
	for i, g := range tags {
		if g.ts >= at && !g.config() && g.typ != tagScript {
			return tags[:i], tags[i:]
		}
	}
	return tags, nil
}

// keyframeAt returns the DTS of the first video keyframe at or after ts.
func keyframeAt(t *testing.T, tags []flvTag, ts int64) int64 {
	t.Helper()
	for _, g := range tags {
		if g.keyframe() && g.ts >= ts {
			return g.ts
		}
	}
	t.Fatalf("no keyframe at or after %d ms", ts)
	return 0
}
