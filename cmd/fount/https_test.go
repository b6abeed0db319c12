package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	hls "github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/grafov/m3u8"
)

// testCA is a certificate authority made for one test; its key never
// leaves memory.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool // trusts the CA, for clients
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000),
		Subject:               pkix.Name{CommonName: "fount test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// writeLeaf writes dir/cert.pem and dir/key.pem: a server certificate the
// CA signed for 127.0.0.1 and localhost, with the given serial number.
func (ca *testCA) writeLeaf(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// The key first: a reload between the two writes then fails (key and
	// certificate do not match) rather than pairing a new key with an old
	// certificate, and SIGHUP only comes after both anyway.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// tlsClient returns a client that trusts only ca: over HTTP/2 when h2,
// else HTTP/1.1 only (no h2 in ALPN, no HTTP/2 upgrade). Its idle
// connections are closed at the test's end (TestMain checks for leaked
// goroutines).
func tlsClient(t *testing.T, ca *testCA, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: true}
	if !h2 {
		tr.ForceAttemptHTTP2 = false
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// getProto GETs url with c and checks the answer is 200 over HTTP/major.
func getProto(t *testing.T, c *http.Client, url string, major int) []byte {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 || resp.ProtoMajor != major {
		t.Fatalf("GET %s: %d over %s, want 200 over HTTP/%d\n%s", url, resp.StatusCode, resp.Proto, major, body)
	}
	return body
}

func parseLL(t *testing.T, body []byte) *hls.Media {
	t.Helper()
	pl, err := hls.Unmarshal(body)
	if err != nil {
		t.Fatalf("gohlslib cannot parse the playlist: %v\n%s", err, body)
	}
	m, ok := pl.(*hls.Media)
	if !ok {
		t.Fatalf("not a media playlist:\n%s", body)
	}
	return m
}

// An ffmpeg push played over HTTPS (--https-addr beside plain
// --http-addr): HTTP/2 serves the playlist, an LL-HLS blocking reload, a
// part and a segment, each the same bytes as plain HTTP; HTTP/1.1 over TLS
// works too; once the push has ended, all three answer the same playlist.
func TestE2EHTTPS(t *testing.T) {
	src := source(t)
	lockEndToEnd(t)
	ca := newTestCA(t)
	cert, key := ca.writeLeaf(t, t.TempDir(), 1)
	o := startOrigin(t, func(c *config) { c.HTTPSAddr, c.HTTPTLSCert, c.HTTPTLSKey = "127.0.0.1:0", cert, key })
	if o.https == "" || o.https == o.http {
		t.Fatalf("https %q beside http %q", o.https, o.http)
	}
	if !strings.Contains(o.logs.String(), "https="+o.https) {
		t.Errorf("the \"fount serving\" line does not name https=%s:\n%s", o.https, o.logs.String())
	}
	h2, h1 := tlsClient(t, ca, true), tlsClient(t, ca, false)
	secure := func(path string) string { return "https://" + o.https + path }

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	push := o.push(ctx, t, "tls", []string{"-re", "-t", "5", "-i", src}, "-c", "copy")
	awaitPlaylist(t, o.url("/live/tls/index.m3u8"), 10*time.Second, "a first segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	m := parseLL(t, getProto(t, h2, secure("/live/tls/index.m3u8"), 2))
	if m.PreloadHint == nil {
		t.Fatal("no EXT-X-PRELOAD-HINT while live")
	}
	// A blocking reload for the part after the newest is held over HTTP/2
	// until that part exists.
	msn, part := nextPart(t, m)
	start := time.Now()
	body := getProto(t, h2, secure(fmt.Sprintf("/live/tls/index.m3u8?_HLS_msn=%d&_HLS_part=%d", msn, part)), 2)
	waited := time.Since(start)
	if m2 := parseLL(t, body); !listsPart(m2, msn, part) {
		t.Fatalf("blocking reload for %d.%d answered without it (after %s):\n%s", msn, part, waited, body)
	}
	t.Logf("blocking reload for part %d.%d over HTTP/2 answered after %s", msn, part, waited.Round(time.Millisecond))
	if waited > 2*time.Second {
		t.Errorf("blocking reload over HTTP/2 took %s for a 200 ms part", waited)
	}
	// Media: the same bytes over HTTP/2, HTTP/1.1 over TLS and plain HTTP.
	for _, uri := range []string{m.Map.URI, m.Segments[0].URI, m.Segments[0].Parts[0].URI} {
		_, plain, _ := httpGet(t, o.url("/live/tls/"+uri))
		if got := getProto(t, h2, secure("/live/tls/"+uri), 2); !bytes.Equal(got, plain) || len(plain) == 0 {
			t.Errorf("%s over HTTP/2: %d bytes, plain %d, not the same", uri, len(got), len(plain))
		}
		if got := getProto(t, h1, secure("/live/tls/"+uri), 1); !bytes.Equal(got, plain) {
			t.Errorf("%s over HTTP/1.1 and TLS: %d bytes, plain %d, not the same", uri, len(got), len(plain))
		}
	}
	// The port's own routes too.
	getProto(t, h2, secure("/healthz"), 2)

	if err := push.Wait(); err != nil {
		t.Fatalf("push: %v", err)
	}
	// Once the last part is in, the playlist stands still: the same bytes
	// on every port and protocol.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, before, _ := httpGet(t, o.url("/live/tls/index.m3u8"))
		overH2 := getProto(t, h2, secure("/live/tls/index.m3u8"), 2)
		overH1 := getProto(t, h1, secure("/live/tls/index.m3u8"), 1)
		_, after, _ := httpGet(t, o.url("/live/tls/index.m3u8"))
		if bytes.Equal(before, after) && listsAll(parseLL(t, after), 4.9) {
			if !bytes.Equal(overH2, after) || !bytes.Equal(overH1, after) {
				t.Fatalf("the playlist differs:\nplain:\n%s\nHTTP/2:\n%s\nHTTP/1.1 over TLS:\n%s", after, overH2, overH1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the playlist did not settle after the push ended:\n%s", after)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// peerSerial completes a TLS handshake with addr, trusting only ca, and
// returns the serial number of the certificate served.
func peerSerial(t *testing.T, ca *testCA, addr string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// With --http-tls-cert and no --https-addr the viewer port speaks TLS
// only (HTTP/2 and HTTP/1.1). SIGHUP swaps its certificate for new
// handshakes; a certificate that does not load leaves the old one.
func TestHTTPSOnlyAndSIGHUP(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cert, key := ca.writeLeaf(t, dir, 1)
	o := startOrigin(t, func(c *config) { c.HTTPTLSCert, c.HTTPTLSKey = cert, key })
	if o.https != o.http {
		t.Fatalf("https %q, want the viewer port %q", o.https, o.http)
	}
	getProto(t, tlsClient(t, ca, true), "https://"+o.http+"/healthz", 2)
	getProto(t, tlsClient(t, ca, false), "https://localhost"+o.http[strings.LastIndex(o.http, ":"):]+"/healthz", 1)
	// The operator page builds playback URLs with the scheme the API gives.
	_, body, _ := httpGet(t, "http://"+o.api+"/api/v1/streams")
	var list struct {
		Scheme string `json:"http_scheme"`
	}
	if err := json.Unmarshal(body, &list); err != nil || list.Scheme != "https" {
		t.Errorf("/api/v1/streams: http_scheme %q (%v), want https:\n%s", list.Scheme, err, body)
	}
	// Plain HTTP is not answered there: net/http says 400 to it.
	if code, _, _ := httpGet(t, o.url("/healthz")); code != http.StatusBadRequest {
		t.Errorf("plain HTTP on the TLS port: %d, want 400", code)
	}

	if s := peerSerial(t, ca, o.http); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	ca.writeLeaf(t, dir, 2)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for peerSerial(t, ca, o.http) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded on SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}

	os.WriteFile(cert, []byte("not a certificate"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	for !strings.Contains(o.logs.String(), "keeping the old HTTPS certificate") {
		if time.Now().After(deadline) {
			t.Fatalf("no error logged for a bad certificate on SIGHUP:\n%s", o.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(o.logs.String(), "https certificate "+cert) {
		t.Errorf("the reload error does not name the https certificate:\n%s", o.logs.String())
	}
	if s := peerSerial(t, ca, o.http); s != 2 {
		t.Fatalf("after a failed reload: serial %d, want 2 kept", s)
	}
}

// Bad HTTPS settings stop fount at start, each with an error naming the
// flags or the file.
func TestHTTPSFlagErrors(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.writeLeaf(t, t.TempDir(), 1)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name string
		mod  func(*config)
		want string
	}{
		{"cert without key", func(c *config) { c.HTTPTLSCert = cert }, "--http-tls-cert and --http-tls-key: give both or neither"},
		{"key without cert", func(c *config) { c.HTTPTLSKey = key }, "--http-tls-cert and --http-tls-key: give both or neither"},
		{"https-addr without cert", func(c *config) { c.HTTPSAddr = "127.0.0.1:0" }, "--https-addr 127.0.0.1:0: needs --http-tls-cert and --http-tls-key"},
		{"unreadable cert", func(c *config) { c.HTTPTLSCert, c.HTTPTLSKey = missing, key }, "https certificate " + missing + " / key " + key + ": open " + missing},
		{"key not the cert's", func(c *config) { c.HTTPTLSCert, c.HTTPTLSKey = cert, cert }, "https certificate " + cert + " / key " + cert + ": "},
	} {
		t.Run(tc.name, func(t *testing.T) { refusedAtStart(t, tc.mod, tc.want) })
	}
}

// The HTTPS settings come from a config file and FOUNT_* variables like
// every flag.
func TestHTTPSConfigSources(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	t.Setenv("FOUNT_HTTPS_ADDR", ":8443")
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, writeConfig(t, "http-tls-cert: /etc/fount/cert.pem\nhttp-tls-key: /etc/fount/key.pem\nhttps-addr: \":9443\"\n")); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPTLSCert != "/etc/fount/cert.pem" || cfg.HTTPTLSKey != "/etc/fount/key.pem" || cfg.HTTPSAddr != ":8443" {
		t.Fatalf("cert %q, key %q, https-addr %q (the variable wins over the file)", cfg.HTTPTLSCert, cfg.HTTPTLSKey, cfg.HTTPSAddr)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
}

// refusedAtStart checks that fount, set up by mod, refuses to start with an
// error holding want: from the flags' checks, or from serve, which reads
// files (certificates, an ACME cache or CA file) as it starts.
func refusedAtStart(t *testing.T, mod func(*config), want string) {
	t.Helper()
	cfg := defaultConfig()
	cfg.RTMPAddr, cfg.HTTPAddr, cfg.APIAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.WebRTCUDPAddr = "" // its default port is fixed
	mod(&cfg)
	err := cfg.validate()
	if err == nil {
		err = serve(context.Background(), cfg, slog.New(slog.DiscardHandler), func(running) { t.Error("fount started") })
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error with %q", err, want)
	}
}
