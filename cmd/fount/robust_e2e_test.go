package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/playlist"
)

// An encoder that stops sending without closing its connection (frozen,
// network gone) is noticed within the 10 s read timeout: the stream goes
// idle and waits for a reconnect.
func TestE2EDeadEncoderNoticed(t *testing.T) {
	src := source(t)
	o := startClassic(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	push := o.push(ctx, t, "dead", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	defer push.Wait()
	defer cancel()
	awaitPlaylist(t, o.url("/live/dead/index.m3u8"), 10*time.Second, "a segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	if err := push.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer push.Process.Signal(syscall.SIGCONT)
	stopped := time.Now()
	st := o.reg.Stream("live/dead")
	for st.State() == playlist.StateLive {
		if time.Since(stopped) > 15*time.Second {
			t.Fatal("a silent encoder was not dropped within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(stopped)
	t.Logf("silent encoder dropped after %s", took.Round(10*time.Millisecond))
	if took > 12*time.Second {
		t.Errorf("dropped after %s, want within the 10 s read timeout", took)
	}
	if !strings.Contains(o.logs.String(), "no data from the peer") {
		t.Error("no log line says why the encoder was dropped")
	}
}

// rtmpHandshake performs the client side of the RTMP handshake.
func rtmpHandshake(t *testing.T, c net.Conn) {
	t.Helper()
	c0c1 := make([]byte, 1537)
	c0c1[0] = 3
	rand.Read(c0c1[9:])
	if _, err := c.Write(c0c1); err != nil {
		t.Fatal(err)
	}
	s := make([]byte, 3073)
	if _, err := io.ReadFull(c, s); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := c.Write(s[1:1537]); err != nil { // C2 echoes S1
		t.Fatal(err)
	}
}

// awaitClosed waits until the server closes c.
func awaitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("%s: connection still open after 5 s", what)
	}
}

// Malformed input on one connection closes that connection with a log line;
// the process and a concurrent good stream carry on.
func TestE2EMalformedRTMPHurtsNothingElse(t *testing.T) {
	src := source(t)
	o := startClassic(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	good := o.push(ctx, t, "good", []string{"-re", "-t", "10", "-i", src}, "-c", "copy")
	url := o.url("/live/good/index.m3u8")
	awaitPlaylist(t, url, 10*time.Second, "the good stream", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	junk := make([]byte, 64<<10)
	rand.Read(junk)
	cases := []struct {
		name string
		send func(t *testing.T, c net.Conn)
		log  string
	}{
		{"garbage instead of a handshake", func(t *testing.T, c net.Conn) { c.Write(junk) }, ""},
		{"header before any fmt 0", func(t *testing.T, c net.Conn) {
			rtmpHandshake(t, c)
			c.Write([]byte{0x45, 0, 0, 0, 0, 0, 10, 9}) // fmt 1 on chunk stream 5
		}, "before any fmt 0 header"},
		{"zero-length message", func(t *testing.T, c net.Conn) {
			rtmpHandshake(t, c)
			c.Write([]byte{0x03, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0})
		}, "rtmp chunk"},
		{"absurd message length", func(t *testing.T, c net.Conn) {
			rtmpHandshake(t, c)
			c.Write([]byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0})
		}, "rtmp chunk"},
		{"absurd chunk size", func(t *testing.T, c net.Conn) {
			rtmpHandshake(t, c)
			c.Write([]byte{0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
		}, "rtmp chunk"},
		{"garbage after the handshake", func(t *testing.T, c net.Conn) {
			rtmpHandshake(t, c)
			c.Write(junk)
		}, ""},
		{"media before connect and publish", func(t *testing.T, c net.Conn) {
			rtmpHandshake(t, c)
			c.Write([]byte{0x04, 0, 0, 0, 0, 0, 5, 9, 1, 0, 0, 0, 0x17, 1, 0, 0, 0})
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", o.rtmp)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.send(t, c)
			awaitClosed(t, c, tc.name)
			if tc.log != "" && !strings.Contains(o.logs.String(), tc.log) {
				t.Errorf("no log line with %q", tc.log)
			}
		})
	}
	if err := good.Wait(); err != nil {
		t.Fatalf("the good publisher failed: %v", err)
	}
	p, _ := awaitPlaylist(t, url, 10*time.Second, "the whole good push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 9.9
	})
	checkContinuity(t, fetchSegments(t, o, "/live/good/", p), true, true)
}

// GStreamer's rtmp2sink publishes with its own command sequence.
func TestE2EGStreamerPublish(t *testing.T) {
	requireTool(t, "gst-launch-1.0")
	requireTool(t, "ffprobe")
	for _, el := range []string{"rtmp2sink", "flvmux", "x264enc", "voaacenc"} {
		if err := exec.Command("gst-inspect-1.0", el).Run(); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("GStreamer element %s missing (see .ci/run)", el)
			}
			t.Skipf("GStreamer element %s missing", el)
		}
	}
	o := startClassic(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// 8 s of test video (30 fps, 2 s GOP) and 48 kHz AAC, as fast as
	// GStreamer makes them. Not is-live: live sources stamp frames with the
	// clock, and on a loaded machine they came out 64 ms apart and then
	// two with one timestamp, which the segments then carry (the encoder's
	// timestamps are what fount remuxes) and ffmpeg's decode check refuses.
	cmd := exec.CommandContext(ctx, "gst-launch-1.0", "-q",
		"videotestsrc", "is-live=false", "num-buffers=240", "!", "video/x-raw,width=640,height=360,framerate=30/1",
		"!", "x264enc", "tune=zerolatency", "key-int-max=60", "speed-preset=veryfast", "!", "h264parse", "!", "queue",
		"!", "flvmux", "name=m", "streamable=true", "!", "rtmp2sink", "location=rtmp://"+o.rtmp+"/live/gst",
		"audiotestsrc", "is-live=false", "num-buffers=375", "!", "audio/x-raw,rate=48000,channels=2",
		"!", "voaacenc", "!", "aacparse", "!", "queue", "!", "m.")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// go-rtmp cannot decode rtmp2sink's closing deleteStream, so it drops
	// the connection after the last frame and gst-launch reports that;
	// what matters here is that every frame made it.
	err := cmd.Run()
	t.Logf("gst-launch: %v %s", err, strings.TrimSpace(out.String()))
	p, body := awaitPlaylist(t, o.url("/live/gst/index.m3u8"), 15*time.Second, "the whole GStreamer push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 7.9
	})
	checkTargetDuration(t, p, body)
	checkContinuity(t, fetchSegments(t, o, "/live/gst/", p), true, true)
}
