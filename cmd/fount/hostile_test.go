package main

import (
	"context"
	"crypto/rand"
	binenc "encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/playlist"
)

// awaitServerClose waits until the server closes the client's connection.
func awaitServerClose(t *testing.T, c *rtmpClient, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-c.closed:
		return time.Since(start)
	case <-time.After(within):
		t.Fatalf("connection still open after %s", within)
		return 0
	}
}

// Malformed and out-of-order RTMP, shaped by the test client: each
// connection is closed, or its command refused, with a log line, while the
// process and a concurrent ffmpeg stream carry on untouched. The cases run
// in parallel, so the whole set takes about one read timeout (10 s).
func TestE2EHostileRTMP(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	tags := readFLV(t, source(t))
	o := startClassic(t, func(c *config) { c.PlaylistSize = 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	good := o.push(ctx, t, "good", []string{"-re", "-t", "12", "-i", src}, "-c", "copy")
	goodURL := o.url("/live/good/index.m3u8")
	awaitPlaylist(t, goodURL, 10*time.Second, "the good stream", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	junk := make([]byte, 4096)
	rand.Read(junk)
	connected := func(t *testing.T) *rtmpClient {
		c := dialRTMP(t, o.rtmp)
		if err := c.connect("live"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name string
		run  func(t *testing.T)
		log  string
	}{
		{"truncated message then EOF", func(t *testing.T) {
			c := dialRTMP(t, o.rtmp)
			// A 200-byte command message of which 50 bytes come, then EOF.
			c.conn.Write(append([]byte{0x03, 0, 0, 0, 0, 0, 200, 20, 0, 0, 0, 0}, junk[:50]...))
			c.conn.(interface{ CloseWrite() error }).CloseWrite()
			awaitServerClose(t, c, 5*time.Second)
		}, "rtmp connection closed before publishing"},
		{"publisher silent mid-chunk", func(t *testing.T) {
			c, sid := publishRTMP(t, o.rtmp, "stalled")
			first, _ := split(tags, 3000)
			if err := c.sendTags(sid, first); err != nil {
				t.Fatal(err)
			}
			// A video message header and part of its first chunk, then
			// nothing: only the read timeout (10 s) can end this.
			hdr := []byte{0x06, 0, 0, 0, 0, 0x10, 0, 9}
			c.conn.Write(append(binenc.LittleEndian.AppendUint32(hdr, sid), junk[:40]...))
			took := awaitServerClose(t, c, 14*time.Second)
			if took < 9*time.Second {
				t.Errorf("dropped after %s, before the 10 s read timeout", took)
			}
			if st := o.reg.Stream("live/stalled"); st == nil || st.State() != playlist.StateIdle {
				t.Errorf("the stalled stream is not idle (waiting for a reconnect)")
			}
		}, "no data from the peer"},
		{"unknown message type 0x42", func(t *testing.T) {
			c := connected(t)
			c.writeMsg(3, 0x42, 0, 0, junk[:16])
			awaitServerClose(t, c, 5*time.Second)
		}, "Unexpected message type"},
		{"AMF junk in a command", func(t *testing.T) {
			c := connected(t)
			junk := append([]byte{0x0c}, junk[:64]...) // a long-string marker, then noise
			c.writeMsg(3, 20, 0, 0, junk)
			awaitServerClose(t, c, 5*time.Second)
		}, "Server closed by error"},
		{"AMF0 strict array claiming 2^31 elements", func(t *testing.T) {
			// go-amf0 would allocate 32 GiB for these 9 bytes: fatal for the
			// process unless refused before go-rtmp decodes it.
			c := dialRTMP(t, o.rtmp)
			c.writeMsg(3, 20, 0, 0, append(amf("connect", 1.0), 0x0a, 0x7f, 0xff, 0xff, 0xff))
			awaitServerClose(t, c, 5*time.Second)
		}, "AMF0"},
		{"connect with a string for its command object", func(t *testing.T) {
			c := dialRTMP(t, o.rtmp)
			c.writeMsg(3, 20, 0, 0, amf("connect", 1.0, "live"))
			awaitServerClose(t, c, 5*time.Second)
		}, "Not string type"},
		{"publish without connect", func(t *testing.T) {
			c := dialRTMP(t, o.rtmp)
			c.writeMsg(8, 20, 0, 0, amf("publish", 0.0, nil, "sneaky", "live"))
			awaitServerClose(t, c, 5*time.Second)
		}, "publish before connect and createStream"},
		{"publish on a stream never created", func(t *testing.T) {
			c := connected(t)
			c.writeMsg(8, 20, 1, 0, amf("publish", 0.0, nil, "sneaky2", "live"))
			awaitServerClose(t, c, 5*time.Second)
		}, "not created yet"},
		{"media before publish", func(t *testing.T) {
			c := connected(t)
			sid, err := c.createStream(2)
			if err != nil {
				t.Fatal(err)
			}
			c.writeMsg(6, 9, sid, 0, []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65})
			awaitServerClose(t, c, 5*time.Second)
		}, "media before publish"},
		{"two publishes on one connection", func(t *testing.T) {
			c, sid := publishRTMP(t, o.rtmp, "twice")
			before, after := split(tags, 6000)
			if err := c.sendTags(sid, before); err != nil {
				t.Fatal(err)
			}
			// Again on the publishing stream: refused, nothing answered.
			c.writeMsg(8, 20, sid, 0, amf("publish", 0.0, nil, "twice-again", "live"))
			// On a second stream: refused with NetStream.Publish.Failed.
			sid2, err := c.createStream(3)
			if err != nil {
				t.Fatal(err)
			}
			if code, err := c.publish(sid2, "twice-other"); err != nil || code != "NetStream.Publish.Failed" {
				t.Errorf("second publish on another stream: %q %v, want NetStream.Publish.Failed", code, err)
			}
			if err := c.sendTags(sid, after); err != nil {
				t.Fatalf("the first publish was harmed: %v", err)
			}
			if _, err := c.createStream(4); err != nil {
				t.Fatalf("the connection was closed: %v", err)
			}
			for _, n := range []string{"twice-again", "twice-other"} {
				if o.reg.Stream("live/"+n) != nil {
					t.Errorf("stream %s exists", n)
				}
			}
			c.conn.Close()
			p, _ := awaitPlaylist(t, o.url("/live/twice/index.m3u8"), 10*time.Second, "the whole first publish", func(p *m3u8.MediaPlaylist, _ []byte) bool {
				return totalDuration(p) >= 11.9
			})
			checkContinuity(t, fetchSegments(t, o, "/live/twice/", p), true, true)
		}, "this connection already published"},
		{"chunk size 1, then a normal publish", func(t *testing.T) {
			c := dialRTMP(t, o.rtmp)
			if err := c.setChunkSize(1); err != nil {
				t.Fatal(err)
			}
			if err := c.connect("live"); err != nil {
				t.Fatalf("connect with 1-byte chunks: %v", err)
			}
			sid, err := c.createStream(2)
			if err != nil {
				t.Fatal(err)
			}
			if code, err := c.publish(sid, "tiny"); err != nil || code != "NetStream.Publish.Start" {
				t.Fatalf("publish with 1-byte chunks: %q %v", code, err)
			}
			// Up to just past the keyframe at 2 s, which closes the first
			// segment: 1-byte chunks double the bytes and cost go-rtmp a
			// call per byte, so little media keeps this quick.
			first, _ := split(tags, keyframeAt(t, tags, 1000)+1)
			start := time.Now()
			if err := c.sendTags(sid, first); err != nil {
				t.Fatal(err)
			}
			awaitPlaylist(t, o.url("/live/tiny/index.m3u8"), 30*time.Second, "a segment sent in 1-byte chunks", func(p *m3u8.MediaPlaylist, _ []byte) bool {
				return p.Count() >= 1
			})
			t.Logf("%d tags in 1-byte chunks: first segment after %s", len(first), time.Since(start).Round(time.Millisecond))
		}, ""},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t)
				if tc.log != "" && !strings.Contains(o.logs.String(), tc.log) {
					t.Errorf("no log line with %q", tc.log)
				}
			})
		}
	})

	if err := good.Wait(); err != nil {
		t.Fatalf("the good publisher failed: %v %s", err, good.Stderr.(*syncBuffer).String())
	}
	if st := o.reg.Stream("live/good"); st == nil || st.State() == playlist.StateEnded {
		t.Fatal("the good stream is gone")
	}
	p, _ := awaitPlaylist(t, goodURL, 10*time.Second, "the whole good push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 11.9
	})
	checkContinuity(t, fetchSegments(t, o, "/live/good/", p), true, true)
}
