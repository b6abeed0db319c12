package ingest

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// CertReloader holds a certificate and swaps it on Reload, so that a
// renewed certificate is picked up (on SIGHUP) without dropping any
// connection: each TLS handshake asks for the current one. RTMPS uses it,
// and so does the viewer port's HTTPS (cmd/fount), each with its own name.
type CertReloader struct {
	name              string // which certificate, for errors: "rtmps", "https"
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// NewCertReloader loads the RTMPS certificate and key.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	return NewNamedCertReloader("rtmps", certFile, keyFile)
}

// NewNamedCertReloader loads a certificate and key; name says in errors
// which certificate failed when a process has several.
func NewNamedCertReloader(name, certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{name: name, certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again; on error the previous certificate stays.
func (r *CertReloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("%s certificate %s / key %s: %w", r.name, r.certFile, r.keyFile, err)
	}
	r.cert.Store(&c)
	return nil
}

// TLSConfig returns a server configuration that always uses the current
// certificate.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
}
