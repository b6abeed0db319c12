package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist/playauth"
)

// TestBrowserSecure is the paying viewer of issue 16: hls.js in Chromium,
// on an https page, plays a signed, AES-128 encrypted stream (a new key
// every two segments) from fount over HTTPS with HTTP/2 (the test's CA
// trusted through Chromium's flags), classic and LL-HLS. Every stream
// request the page made, keys included, went over h2, as resource timing
// reports, and none was refused.
func TestBrowserSecure(t *testing.T) {
	if raceDetector {
		// TLS, HTTP/2 and decryption in a fount several times slower
		// under the race detector, beside Chromium and ffmpeg on 2 cores:
		// LL playback then measures the detector (a blocking reload timed
		// out and playback advanced 4.3 s of 12 in a loaded race run).
		// The same paths' races are checked by TestE2EPlayToken,
		// TestE2EHTTPS and TestE2EEncrypt; .ci/run plays this one
		// without -race.
		t.Skip("judged without the race detector: .ci/run runs it in its pass without -race")
	}
	lockEndToEnd(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	src := source(t)
	browserDeps(t)
	ca := newTestCA(t)
	certFile, keyFile := ca.writeLeaf(t, t.TempDir(), 7)
	t.Setenv("FOUNT_CHROMIUM_SPKI", spkiHash(t, certFile))
	t.Setenv("FOUNT_PAGE_TLS_CERT", certFile)
	t.Setenv("FOUNT_PAGE_TLS_KEY", keyFile)
	signer, err := playauth.NewSigner([]byte(testPlaySecret))
	if err != nil {
		t.Fatal(err)
	}

	const seconds = 12
	for _, tc := range []struct {
		name string
		mod  func(*config)
		ll   bool
	}{{"classic", classic, false}, {"lowlatency", llConfig, true}} {
		t.Run(tc.name, func(t *testing.T) {
			o := startOrigin(t, func(c *config) {
				tc.mod(c)
				c.HTTPTLSCert, c.HTTPTLSKey = certFile, keyFile
				c.PlayAuth, c.PlaySecret = "token", testPlaySecret
				c.Encrypt, c.KeyRotation = "aes-128", 2
			})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			push := o.push(ctx, t, "paid", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
			defer func() { cancel(); push.Wait() }()

			url := "https://" + o.https + "/live/paid/index.m3u8?" + signer.Query("live/paid", time.Now().Add(time.Hour))
			awaitSegments(t, tlsClient(t, ca, true), url, 3, 20*time.Second)

			r, line := playInBrowser(t, url, seconds, tc.ll)
			t.Logf("played %d s: chromium %s, hls.js %s; requests by protocol %v, %d keys; latency median %.3f s",
				seconds, r.BrowserVersion, r.HLSVersion, r.Protocols, r.Keys, r.Latency.Median)
			failed := false
			fail := func(format string, args ...any) { t.Errorf(format, args...); failed = true }
			if r.HarnessError != "" {
				fail("play.mjs could not play: %s", r.HarnessError)
			}
			for _, e := range r.Errors {
				fail("hls.js error at %.3f s: %s %s fatal=%v %s %s %d", e.At, e.Type, e.Details, e.Fatal, e.Reason, e.URL, e.HTTPStatus)
			}
			for _, e := range r.VideoErrors {
				fail("video element error: %s", e)
			}
			if r.Advance < seconds/2 {
				fail("currentTime advanced %.3f s in %d s of playback", r.Advance, seconds)
			}
			if r.Protocols["h2"] < 5 || len(r.Protocols) != 1 || r.Keys < 2 {
				fail("stream requests by protocol: %v, %d of them keys; want all over h2, and two keys or more (rotation)", r.Protocols, r.Keys)
			}
			if n := deniedTotal(t, o); n != 0 {
				fail("fount refused %v requests of the signed player", n)
			}
			if failed {
				t.Logf("play.mjs report: %s", line)
			}
		})
	}
}

// spkiHash is Chromium's --ignore-certificate-errors-spki-list value for
// the certificate in file: base64 of the SHA-256 of its public key info.
func spkiHash(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// awaitSegments waits until the media playlist at url lists n segments.
func awaitSegments(t *testing.T, c *http.Client, url string, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if resp.StatusCode == http.StatusOK && strings.Count(last, "#EXTINF:") >= n {
				return
			}
		}
		time.Sleep(200 * time.Millisecond) // polling the origin as a player does
	}
	t.Fatalf("%s: not %d segments after %s:\n%s", url, n, d, last)
}

// deniedTotal is the sum of fount_play_denied_total.
func deniedTotal(t *testing.T, o *origin) float64 {
	t.Helper()
	f, ok := scrape(t, o)["fount_play_denied_total"]
	if !ok {
		t.Fatal("no fount_play_denied_total in /metrics")
	}
	var n float64
	for _, m := range f.GetMetric() {
		n += m.GetCounter().GetValue()
	}
	return n
}
