package main

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// writeCert writes a certificate for 127.0.0.1 with the given serial
// number, signed by a CA of its own (newTestCA).
func writeCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	return newTestCA(t).writeLeaf(t, dir, serial)
}

// servedSerial dials the RTMPS port and returns the certificate's serial.
func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// ffmpeg publishes over RTMPS; SIGHUP swaps the certificate without a
// restart.
func TestE2ERTMPS(t *testing.T) {
	src := source(t)
	dir := t.TempDir()
	cert, key := writeCert(t, dir, 1)
	o := startClassic(t, func(c *config) { c.RTMPSAddr, c.TLSCert, c.TLSKey = "127.0.0.1:0", cert, key })
	if o.rtmps == "" {
		t.Fatal("no RTMPS listener")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-t", "5", "-i", src, "-c", "copy",
		"-f", "flv", "rtmps://" + o.rtmps + "/live/secure"}
	if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg over rtmps: %v\n%s", err, out)
	}
	p, _ := awaitPlaylist(t, o.url("/live/secure/index.m3u8"), 10*time.Second, "the RTMPS push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 4.9
	})
	checkContinuity(t, fetchSegments(t, o, "/live/secure/", p), true, true)

	if s := servedSerial(t, o.rtmps); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	writeCert(t, dir, 2)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for servedSerial(t, o.rtmps) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded on SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
