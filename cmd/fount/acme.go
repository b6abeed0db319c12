package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// letsEncrypt is --acme-directory's default: Let's Encrypt's production CA.
const letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// acmeChallengePath is where HTTP-01 challenges are fetched (RFC 8555 §8.3).
const acmeChallengePath = "/.well-known/acme-challenge/"

// errNotListed is the host policy's refusal of a name not in --acme-domains.
var errNotListed = errors.New("not in --acme-domains")

// acmeDomains reads --acme-domains: host names separated by commas,
// lower-cased, without duplicates.
func (c config) acmeDomains() ([]string, error) {
	var list []string
	for _, d := range strings.Split(c.ACMEDomains, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			continue
		}
		if err := checkACMEDomain(d); err != nil {
			return nil, fmt.Errorf("%q: %w", d, err)
		}
		if !slices.Contains(list, d) {
			list = append(list, d)
		}
	}
	if len(list) == 0 {
		return nil, errors.New("want at least one host name, e.g. live.example.com")
	}
	return list, nil
}

// checkACMEDomain refuses what no ACME CA issues for through TLS-ALPN-01 or
// HTTP-01 — wildcards (DNS-01 only) and IP addresses — and what autocert's
// GetCertificate itself refuses: a name without a dot.
func checkACMEDomain(d string) error {
	switch {
	case strings.Contains(d, "*"):
		return errors.New("wildcards need the DNS-01 challenge, which fount does not answer")
	case net.ParseIP(d) != nil:
		return errors.New("an IP address: list host names")
	case !strings.Contains(strings.Trim(d, "."), "."):
		return errors.New("want a full host name, with a dot")
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("%q is not allowed in a host name (give internationalised names in punycode, xn--...)", r)
		}
	}
	return nil
}

// validateACME checks the --acme-* flags against each other and against
// --http-tls-cert/--http-tls-key, which they replace.
func (c config) validateACME() []error {
	var errs []error
	if c.ACMEDomains == "" {
		var given []string
		for _, f := range []struct{ name, v string }{{"--acme-email", c.ACMEEmail}, {"--acme-cache", c.ACMECache}, {"--acme-ca-file", c.ACMECAFile}} {
			if f.v != "" {
				given = append(given, f.name)
			}
		}
		if c.ACMEDirectory != letsEncrypt {
			given = append(given, "--acme-directory")
		}
		if len(given) > 0 {
			errs = append(errs, fmt.Errorf("%s: only with --acme-domains", strings.Join(given, ", ")))
		}
		return errs
	}
	if _, err := c.acmeDomains(); err != nil {
		errs = append(errs, fmt.Errorf("--acme-domains %q: %w", c.ACMEDomains, err))
	}
	if c.HTTPTLSCert != "" || c.HTTPTLSKey != "" {
		errs = append(errs, errors.New("--acme-domains and --http-tls-cert/--http-tls-key: give one or the other (with --acme-domains fount obtains the viewers' certificate itself)"))
	}
	if c.ACMECache == "" {
		errs = append(errs, errors.New("--acme-domains: needs --acme-cache DIR, where the certificates and the ACME account key are kept so that a restart does not ask the CA again"))
	}
	if c.ACMEEmail != "" && !strings.Contains(c.ACMEEmail, "@") {
		errs = append(errs, fmt.Errorf("--acme-email %q: want an address like ops@example.com", c.ACMEEmail))
	}
	if u, err := url.Parse(c.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("--acme-directory %q: want the https:// URL of an ACME directory, e.g. %s", c.ACMEDirectory, letsEncrypt))
	}
	if c.App == ".well-known" {
		// Its streams' paths would shadow the HTTP-01 challenges.
		errs = append(errs, errors.New("--app .well-known: not with --acme-domains (ACME's HTTP-01 challenges live under /.well-known/)"))
	}
	return errs
}

// acmeCerts obtains and renews the viewers' certificate from an ACME CA
// (--acme-domains) with autocert: lazily at a handshake, or ahead of
// viewers by warm. autocert renews a certificate 30 days before it
// expires, in a timer of its own, and keeps every certificate and the
// account key in the --acme-cache directory.
type acmeCerts struct {
	m       *autocert.Manager
	domains []string
	log     *slog.Logger
	// tr carries every request to the CA; stop cancels those in flight
	// and any later one, so that a shutdown does not wait for the CA
	// (autocert gives an issuance up to 5 minutes, with no way in).
	tr   *http.Transport
	stop context.CancelFunc
}

// newACMECerts sets up the certificate manager of --acme-domains. It
// creates the cache directory and reads --acme-ca-file, so that a mistake
// in either stops fount at start; the CA is asked nothing yet.
func newACMECerts(cfg config, log *slog.Logger) (*acmeCerts, error) {
	domains, err := cfg.acmeDomains()
	if err != nil {
		return nil, fmt.Errorf("--acme-domains: %w", err)
	}
	if err := os.MkdirAll(cfg.ACMECache, 0o700); err != nil {
		return nil, fmt.Errorf("--acme-cache: %w", err)
	}
	if fi, err := os.Stat(cfg.ACMECache); err != nil {
		return nil, fmt.Errorf("--acme-cache: %w", err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		// It holds the private keys of the certificates and the account.
		log.Warn("acme: the cache directory is readable by others; chmod 700 it", "dir", cfg.ACMECache, "mode", fi.Mode().Perm().String())
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.ACMECAFile != "" {
		pool, err := caPool(cfg.ACMECAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	stopCtx, stop := context.WithCancel(context.Background())
	a := &acmeCerts{domains: domains, log: log, tr: tr, stop: stop}
	a.m = &autocert.Manager{
		Prompt:     autocert.AcceptTOS, // using --acme-domains is the operator's consent
		HostPolicy: a.policy,
		Cache:      autocert.DirCache(cfg.ACMECache),
		Email:      cfg.ACMEEmail,
		Client: &acme.Client{
			DirectoryURL: cfg.ACMEDirectory,
			HTTPClient:   &http.Client{Transport: stoppable{base: tr, stop: stopCtx}},
			UserAgent:    "fount/" + version,
		},
	}
	return a, nil
}

// caPool is the system's roots and those of file (--acme-ca-file).
func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--acme-ca-file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// policy is the manager's HostPolicy: only the listed names get a
// certificate (and a request to the CA). An HTTP-01 request's Host may
// carry a port.
func (a *acmeCerts) policy(_ context.Context, host string) error {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if slices.Contains(a.domains, strings.ToLower(strings.TrimSuffix(host, "."))) {
		return nil
	}
	return fmt.Errorf("%q: %w", host, errNotListed)
}

// tlsConfig is the HTTPS server's: certificates from the manager, and
// ALPN's acme-tls/1 so that the CA can check TLS-ALPN-01 on this port
// (newHTTPSServer puts h2 and http/1.1 before it).
func (a *acmeCerts) tlsConfig() *tls.Config {
	return &tls.Config{GetCertificate: a.getCertificate, NextProtos: []string{acme.ALPNProto}}
}

// getCertificate is the manager's, logging why a handshake got none: the
// TLS error a client sees says little, and a failure to obtain a listed
// name's certificate is the operator's to fix.
func (a *acmeCerts) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := a.m.GetCertificate(hello)
	switch {
	case err == nil:
	case errors.Is(err, errNotListed):
		a.log.Info("https: refused a handshake for a name not in --acme-domains", "server_name", hello.ServerName, "remote", remoteOf(hello))
	case slices.Contains(a.domains, strings.ToLower(hello.ServerName)):
		a.log.Error("acme: no certificate for a handshake: obtaining it failed", "domain", hello.ServerName, "err", err)
	default:
		a.log.Debug("https: refused a handshake", "server_name", hello.ServerName, "remote", remoteOf(hello), "err", err)
	}
	return cert, err
}

func remoteOf(hello *tls.ClientHelloInfo) string {
	if hello.Conn != nil {
		return hello.Conn.RemoteAddr().String()
	}
	return ""
}

// challengeHandler answers HTTP-01 challenges on the plain viewer port
// (with --https-addr). Calling it is what makes the manager offer HTTP-01
// besides TLS-ALPN-01, so it is called only where a plain port exists.
func (a *acmeCerts) challengeHandler() http.Handler {
	return a.m.HTTPHandler(nil) // only acmeChallengePath is routed to it
}

// warm obtains every domain's certificate, or loads it from the cache, so
// that the first viewers need not wait for the CA (nor time out waiting,
// at 5 s a handshake). Domains that fail are logged and tried again at
// their next handshake. It returns when done or when ctx is done.
func (a *acmeCerts) warm(ctx context.Context) {
	for _, d := range a.domains {
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		// The hello of a client that takes ECDSA, like every browser's:
		// autocert keeps an ECDSA and an RSA certificate apart, and
		// would obtain an RSA one for a hello that names nothing.
		cert, err := a.m.GetCertificate(&tls.ClientHelloInfo{
			ServerName:        d,
			SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
			SupportedCurves:   []tls.CurveID{tls.CurveP256},
			CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
		})
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error("acme: could not obtain the certificate; the next handshake for it tries again", "domain", d, "directory", a.m.Client.DirectoryURL, "err", err)
			}
			continue
		}
		leaf := cert.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				a.log.Error("acme: certificate unreadable", "domain", d, "err", err)
				continue
			}
		}
		a.log.Info("acme: certificate ready", "domain", d, "serial", fmt.Sprintf("%x", leaf.SerialNumber), "issuer", leaf.Issuer.CommonName,
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "took", time.Since(start).Round(time.Millisecond))
	}
}

// close ends the requests to the CA, those in flight and any later one,
// and closes the connections to it. Once the servers and warm have
// returned, nothing of the manager runs but autocert's renewal timers.
func (a *acmeCerts) close() {
	a.stop()
	a.tr.CloseIdleConnections()
}

// stoppable is a RoundTripper whose requests end when stop is done, as
// well as when their own context is.
type stoppable struct {
	base http.RoundTripper
	stop context.Context
}

func (s stoppable) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := s.stop.Err(); err != nil {
		return nil, fmt.Errorf("acme: fount is shutting down: %w", err)
	}
	ctx, cancel := context.WithCancel(r.Context())
	unhook := context.AfterFunc(s.stop, cancel)
	resp, err := s.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		unhook()
		cancel()
		return nil, err
	}
	// The context must live until the body is read and closed.
	resp.Body = &endBody{ReadCloser: resp.Body, end: func() { unhook(); cancel() }}
	return resp, nil
}

// endBody calls end once its body is closed.
type endBody struct {
	io.ReadCloser
	end func()
}

func (b *endBody) Close() error {
	err := b.ReadCloser.Close()
	b.end()
	return err
}
