package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pebble is Let's Encrypt's test ACME server, run on loopback for a test.
type pebble struct {
	dir, mgmt string // the directory URL; the management address (roots)
	client    *http.Client
	cmd       *exec.Cmd
	out       *syncBuffer
}

// startPebble runs pebble with its own HTTPS certificate from ca and
// validation off (PEBBLE_VA_ALWAYS_VALID): it issues for any name without
// reaching fount, so neither DNS nor ports 80 and 443 are needed.
func startPebble(t *testing.T, ca *testCA) *pebble {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "pebble")
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("pebble is not installed (see .ci/run)")
			}
			t.Skip("pebble not installed: go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3")
		}
	}
	dir := t.TempDir()
	cert, key := ca.writeLeaf(t, dir, 7)
	listen, mgmt := freeAddr(t), freeAddr(t)
	conf, err := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":           listen,
		"managementListenAddress": mgmt,
		"certificate":             cert,
		"privateKey":              key,
		// Unused with validation off; ports nothing listens on.
		"httpPort": 5002, "tlsPort": 5001,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles":                       map[string]any{"default": map[string]any{"description": "90 days", "validityPeriod": 90 * 24 * 3600}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &pebble{dir: "https://" + listen + "/dir", mgmt: mgmt, out: &syncBuffer{}}
	p.cmd = exec.Command(bin, "-config", confFile)
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("pebble's log:\n%s", p.out.String())
		}
	})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}
	t.Cleanup(tr.CloseIdleConnections)
	p.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	await(t, 20*time.Second, "pebble's directory", func() bool {
		resp, err := p.client.Get(p.dir)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

func (p *pebble) stop() {
	if p.cmd != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
		p.client.CloseIdleConnections()
	}
}

// root is the root pebble made at its start, which its certificates chain to.
func (p *pebble) root(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /roots/0: %d %v\n%s", resp.StatusCode, err, body)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		t.Fatalf("GET /roots/0: no PEM certificate:\n%s", body)
	}
	return pool
}

// freeAddr is a loopback address with a port free a moment ago, for a
// program that takes its ports from a file.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// await polls cond until it holds, or fails the test after d.
func await(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// handshake dials addr over TLS for name, verifying against roots, and
// returns the connection's state.
func handshake(addr, name string, roots *x509.CertPool) (tls.ConnectionState, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

const acmeTestDomain = "fount-test.localhost"

// fount gets its viewers' certificate from an ACME CA (pebble): it serves
// it over HTTP/2, chained to the CA's root, on --https-addr beside plain
// HTTP, whose HTTP-01 challenge path reaches autocert past the event
// loops; a name not listed gets no certificate. Restarted with pebble
// gone, fount serves the same certificate from --acme-cache.
func TestACMEPebble(t *testing.T) {
	ca := newTestCA(t)
	p := startPebble(t, ca)
	caFile := filepath.Join(t.TempDir(), "pebble-https-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "acme")
	acmeFlags := func(c *config) {
		c.ACMEDomains, c.ACMECache, c.ACMEDirectory, c.ACMECAFile = acmeTestDomain, cache, p.dir, caFile
		c.ACMEEmail = "ops@fount-test.localhost"
	}
	o := startOrigin(t, func(c *config) {
		acmeFlags(c)
		c.HTTPSAddr = "127.0.0.1:0"
	})
	await(t, 30*time.Second, "\"acme: certificate ready\" log", func() bool { return strings.Contains(o.logs.String(), "acme: certificate ready") })
	roots := p.root(t)

	st, err := handshake(o.https, acmeTestDomain, roots)
	if err != nil {
		t.Fatalf("TLS to %s for %s: %v", o.https, acmeTestDomain, err)
	}
	leaf := st.PeerCertificates[0]
	if !slices.Contains(leaf.DNSNames, acmeTestDomain) {
		t.Errorf("certificate for %v, want %s", leaf.DNSNames, acmeTestDomain)
	}
	if st.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN %q, want h2", st.NegotiatedProtocol)
	}
	serial := leaf.SerialNumber
	t.Logf("certificate %x for %v from %q, until %s", serial, leaf.DNSNames, leaf.Issuer.CommonName, leaf.NotAfter.Format(time.DateOnly))
	// A request over HTTP/2, through net/http's client.
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: acmeTestDomain, RootCAs: roots}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	getProto(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "https://"+o.https+"/healthz", 2)

	// HTTP-01: the challenge path on the plain port reaches autocert (its
	// 404 for a token it does not hold), not the viewer's 404.
	req, _ := http.NewRequest("GET", o.url("/.well-known/acme-challenge/no-such-token"), nil)
	req.Host = acmeTestDomain
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "acme/autocert") {
		t.Errorf("HTTP-01 path on the plain port: %d %q, want autocert's 404", resp.StatusCode, body)
	}

	// A name not listed: no certificate, and the log says why.
	if _, err := handshake(o.https, "other.localhost", roots); err == nil {
		t.Error("handshake for other.localhost succeeded")
	}
	await(t, 5*time.Second, "log of the refused name", func() bool {
		return strings.Contains(o.logs.String(), `refused a handshake for a name not in --acme-domains" server_name=other.localhost`)
	})

	// Restart with the CA gone: the certificate comes from the cache.
	o.stop(t)
	p.stop()
	o2 := startOrigin(t, acmeFlags) // --http-addr speaks TLS this time
	await(t, 10*time.Second, "\"acme: certificate ready\" log after the restart", func() bool {
		return strings.Contains(o2.logs.String(), "acme: certificate ready")
	})
	st, err = handshake(o2.https, acmeTestDomain, roots)
	if err != nil {
		t.Fatalf("after the restart: TLS for %s: %v", acmeTestDomain, err)
	}
	if got := st.PeerCertificates[0].SerialNumber; got.Cmp(serial) != 0 {
		t.Errorf("after the restart: serial %x, want %x from the cache", got, serial)
	}
	if st.NegotiatedProtocol != "h2" {
		t.Errorf("after the restart: ALPN %q, want h2", st.NegotiatedProtocol)
	}
}

// A CA that cannot be reached is logged, at the start and at a handshake
// for a listed name; one that never answers does not hold up a shutdown.
func TestACMEUnreachableCA(t *testing.T) {
	acmeFlags := func(dir string) func(*config) {
		return func(c *config) { c.ACMEDomains, c.ACMECache, c.ACMEDirectory = acmeTestDomain, t.TempDir(), dir }
	}
	o := startOrigin(t, acmeFlags("https://"+freeAddr(t)+"/dir")) // nothing listens there
	await(t, 10*time.Second, "log of the failure to obtain", func() bool {
		return strings.Contains(o.logs.String(), `msg="acme: could not obtain the certificate; the next handshake for it tries again" domain=fount-test.localhost`)
	})
	if _, err := handshake(o.https, acmeTestDomain, nil); err == nil {
		t.Fatal("a handshake succeeded without a certificate")
	}
	await(t, 10*time.Second, "log of the handshake's failure", func() bool {
		return strings.Contains(o.logs.String(), `msg="acme: no certificate for a handshake: obtaining it failed" domain=fount-test.localhost`)
	})

	// A CA that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() { // ends when ln closes
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	o2 := startOrigin(t, acmeFlags("https://"+ln.Addr().String()+"/dir"))
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("fount did not ask the CA")
	}
	o2.stop(t) // fails the test if it takes 5 s or more
	if strings.Contains(o2.logs.String(), "could not obtain") {
		t.Errorf("a failure logged for the requests a shutdown cut:\n%s", o2.logs.String())
	}
}

// Bad ACME settings stop fount at start, each with an error naming the flags.
func TestACMEFlagErrors(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.writeLeaf(t, t.TempDir(), 1)
	cache := t.TempDir()
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	blocked := filepath.Join(notPEM, "cache") // under a file: cannot be made
	acme := func(c *config) { c.ACMEDomains, c.ACMECache = "live.example.com", cache }
	for _, tc := range []struct {
		name string
		mod  func(*config)
		want string
	}{
		{"with a certificate", func(c *config) { acme(c); c.HTTPTLSCert, c.HTTPTLSKey = cert, key }, "--acme-domains and --http-tls-cert/--http-tls-key: give one or the other"},
		{"no cache", func(c *config) { acme(c); c.ACMECache = "" }, "--acme-domains: needs --acme-cache DIR"},
		{"cache alone", func(c *config) { c.ACMECache = cache }, "--acme-cache: only with --acme-domains"},
		{"email and directory alone", func(c *config) { c.ACMEEmail, c.ACMEDirectory = "a@b.example", "https://ca.example/dir" }, "--acme-email, --acme-directory: only with --acme-domains"},
		{"wildcard", func(c *config) { acme(c); c.ACMEDomains = "live.example.com,*.example.com" }, `--acme-domains "live.example.com,*.example.com": "*.example.com": wildcards need the DNS-01 challenge`},
		{"IP address", func(c *config) { acme(c); c.ACMEDomains = "192.0.2.1" }, "an IP address"},
		{"bare name", func(c *config) { acme(c); c.ACMEDomains = "localhost" }, "want a full host name"},
		{"empty list", func(c *config) { acme(c); c.ACMEDomains = " , " }, "want at least one host name"},
		{"plain directory", func(c *config) { acme(c); c.ACMEDirectory = "http://ca.example/dir" }, `--acme-directory "http://ca.example/dir": want the https:// URL`},
		{"bad email", func(c *config) { acme(c); c.ACMEEmail = "ops" }, `--acme-email "ops"`},
		{"app .well-known", func(c *config) { acme(c); c.App = ".well-known" }, "--app .well-known: not with --acme-domains"},
		{"CA file not PEM", func(c *config) { acme(c); c.ACMECAFile = notPEM }, "--acme-ca-file " + notPEM + ": no PEM certificate in it"},
		{"CA file missing", func(c *config) { acme(c); c.ACMECAFile = notPEM + ".missing" }, "--acme-ca-file: open " + notPEM + ".missing"},
		{"cache not makeable", func(c *config) { acme(c); c.ACMECache = blocked }, "--acme-cache: mkdir " + notPEM + ": not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) { refusedAtStart(t, tc.mod, tc.want) })
	}
}

// The ACME settings come from a config file and FOUNT_* variables like
// every flag; --acme-directory defaults to Let's Encrypt's production CA.
func TestACMEConfigSources(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	if cfg.ACMEDirectory != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Errorf("--acme-directory defaults to %q", cfg.ACMEDirectory)
	}
	t.Setenv("FOUNT_ACME_EMAIL", "ops@example.com")
	t.Setenv("FOUNT_ACME_CA_FILE", "/etc/fount/private-ca.pem")
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	file := writeConfig(t, "acme-domains: live.example.com,cdn-origin.example.com\nacme-email: file@example.com\n"+
		"acme-cache: /var/lib/fount/acme\nacme-directory: https://acme-staging-v02.api.letsencrypt.org/directory\nhttps-addr: \":8443\"\n")
	if err := applyConfigFile(fs, file); err != nil {
		t.Fatal(err)
	}
	if cfg.ACMEDomains != "live.example.com,cdn-origin.example.com" || cfg.ACMEEmail != "ops@example.com" || cfg.ACMECache != "/var/lib/fount/acme" ||
		cfg.ACMEDirectory != "https://acme-staging-v02.api.letsencrypt.org/directory" || cfg.ACMECAFile != "/etc/fount/private-ca.pem" {
		t.Fatalf("got %+v (the variable wins over the file)", cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if on, tlsOnly := cfg.viewerTLS(); !on || tlsOnly {
		t.Errorf("viewerTLS: on %v, tlsOnly %v; want HTTPS beside plain HTTP", on, tlsOnly)
	}
	if d, err := cfg.acmeDomains(); err != nil || !slices.Equal(d, []string{"live.example.com", "cdn-origin.example.com"}) {
		t.Errorf("domains %q, %v", d, err)
	}
}
