package ertmptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
)

// Chunk stream ids of the messages a Conn writes. gortmplib's client uses 2
// (control), 3 (connection commands) and 4 (publish) before Dial returns.
const (
	DataChunkStream  = 5
	VideoChunkStream = 6
	AudioChunkStream = 7
)

// RTMP message type ids.
const (
	typeAudio   = 8
	typeVideo   = 9
	typeDataAMF = 18

	typeCommandAMF = 20
)

// messageStreamID is the stream gortmplib's client publishes on: stream 1.
// gortmplib writes the message stream id of chunk headers big-endian, while
// RTMP puts it on the wire little-endian, so 1 is written as 0x01000000.
const messageStreamID = 0x01000000

// lockedConn serialises whole writes: the Conn writes each message in one
// Write, and gortmplib's reader answers pings and acknowledgements from
// another goroutine with small, single-Write messages.
type lockedConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *lockedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(b)
}

// Conn is a publishing RTMP connection whose video, audio and data message
// bodies are given raw. It is not safe for concurrent writes.
type Conn struct {
	client *gortmplib.Client
	conn   *lockedConn

	buf bytes.Buffer
	w   *rawmessage.Writer

	readDone chan struct{}
	readErr  error // set before readDone is closed

	closeOnce sync.Once
	key       string // the stream key (publishing name)
}

// Dial connects to rawURL (rtmp://host:port/app/stream[?query]) and
// publishes the stream named by the last path element, with the query kept
// on it as ffmpeg and OBS send it ("stream?variant=low"); gortmplib's own
// form, rtmp://host/app#stream, is accepted too. The
// handshake, connect, releaseStream, FCPublish, createStream and publish are
// gortmplib's client, which also sends Set Chunk Size 65536. ctx bounds the
// dial and the connection setup only.
func Dial(ctx context.Context, rawURL string) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ertmptest dial: %w", err)
	}
	if u.Fragment == "" {
		// gortmplib takes the whole path as the app and the stream key
		// from the fragment.
		i := strings.LastIndexByte(u.Path, '/')
		if i <= 0 || i == len(u.Path)-1 {
			return nil, fmt.Errorf("ertmptest dial %s: want rtmp://host/app/stream", u.Redacted())
		}
		u.Fragment, u.Path, u.RawPath = u.Path[i+1:], u.Path[:i], ""
		// gortmplib would put the query on the app, where servers drop it.
		if u.RawQuery != "" {
			u.Fragment += "?" + u.RawQuery
			u.RawQuery = ""
		}
	}
	c := &Conn{readDone: make(chan struct{}), key: u.Fragment}
	d := &net.Dialer{}
	c.client = &gortmplib.Client{
		URL:     u,
		Publish: true,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, address)
			if err != nil {
				return nil, err
			}
			c.conn = &lockedConn{Conn: nc}
			return c.conn, nil
		},
	}
	if err := c.client.Initialize(ctx); err != nil {
		return nil, fmt.Errorf("ertmptest dial %s: %w", u.Redacted(), err)
	}
	// The client's writer already sent Set Chunk Size 65536; this writer
	// chunks the same way (its chunk streams are fresh, so each one's first
	// message has a full type 0 header).
	c.w = rawmessage.NewWriter(&c.buf, bytecounter.NewWriter(&c.buf), false)
	c.w.SetChunkSize(65536)
	go c.readLoop()
	return c, nil
}

// readLoop consumes what the server sends (gortmplib answers pings) until
// the connection fails or closes.
func (c *Conn) readLoop() {
	defer close(c.readDone)
	for {
		if _, err := c.client.Read(); err != nil {
			c.readErr = err
			return
		}
	}
}

// Err returns the error that ended the server-to-client direction (for
// instance io.EOF once the server closed the connection), or nil while it
// is open.
func (c *Conn) Err() error {
	select {
	case <-c.readDone:
		return fmt.Errorf("ertmptest: connection read: %w", c.readErr)
	default:
		return nil
	}
}

// Closed is closed once the server-to-client direction has ended.
func (c *Conn) Closed() <-chan struct{} { return c.readDone }

func (c *Conn) write(csid byte, typ uint8, ts time.Duration, body []byte) error {
	if ts < 0 {
		return fmt.Errorf("ertmptest: negative timestamp %s", ts)
	}
	c.buf.Reset()
	err := c.w.Write(&rawmessage.Message{
		ChunkStreamID:   csid,
		Timestamp:       ts,
		Type:            typ,
		MessageStreamID: messageStreamID,
		Body:            body,
	})
	if err != nil {
		return fmt.Errorf("ertmptest: chunk message: %w", err)
	}
	if _, err := c.conn.Write(c.buf.Bytes()); err != nil {
		if e := c.Err(); e != nil {
			return fmt.Errorf("ertmptest: write: %w (%w)", err, e)
		}
		return fmt.Errorf("ertmptest: write: %w", err)
	}
	return nil
}

// WriteVideo sends a video message (type 9) with the given body at
// timestamp ts (whole milliseconds are sent).
func (c *Conn) WriteVideo(ts time.Duration, body []byte) error {
	return c.write(VideoChunkStream, typeVideo, ts, body)
}

// WriteAudio sends an audio message (type 8) with the given body.
func (c *Conn) WriteAudio(ts time.Duration, body []byte) error {
	return c.write(AudioChunkStream, typeAudio, ts, body)
}

// WriteData sends an AMF0 data message (type 18) with the given body.
func (c *Conn) WriteData(ts time.Duration, body []byte) error {
	return c.write(DataChunkStream, typeDataAMF, ts, body)
}

// WriteMetadata sends "@setDataFrame", "onMetaData" and props as an ECMA
// array, as encoders send the stream's metadata.
func (c *Conn) WriteMetadata(props ECMAArray) error {
	body, err := AMF0(nil, "@setDataFrame", "onMetaData", props)
	if err != nil {
		return fmt.Errorf("ertmptest: metadata: %w", err)
	}
	return c.WriteData(0, body)
}

// Unpublish sends the FCUnpublish and deleteStream commands, as an encoder
// does when it stops.
func (c *Conn) Unpublish() error {
	for _, cmd := range [][]any{
		{"FCUnpublish", float64(6), nil, c.key},
		{"deleteStream", float64(7), nil, float64(1)},
	} {
		body, err := AMF0(nil, cmd...)
		if err == nil {
			err = c.write(3, typeCommandAMF, 0, body)
		}
		if err != nil {
			return fmt.Errorf("ertmptest: %s: %w", cmd[0], err)
		}
	}
	return nil
}

// Close closes the connection and waits for its reader to stop.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.conn.Close()
		<-c.readDone
	})
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("ertmptest: close: %w", err)
	}
	return nil
}
