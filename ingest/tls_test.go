package ingest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestCert writes a self-signed certificate with serial to dir.
func writeTestCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "fount test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func servedSerial(t *testing.T, r *CertReloader) int64 {
	t.Helper()
	c, err := r.TLSConfig().GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// Reload swaps in a renewed certificate; a failed one keeps the old
// certificate, and its error names which certificate it was.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeTestCert(t, dir, 1)
	r, err := NewNamedCertReloader("https", cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if s := servedSerial(t, r); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	writeTestCert(t, dir, 2)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := servedSerial(t, r); s != 2 {
		t.Fatalf("after Reload: serial %d, want 2", s)
	}
	os.WriteFile(cert, []byte("not a certificate"), 0o600)
	err = r.Reload()
	if err == nil || !strings.HasPrefix(err.Error(), "https certificate "+cert) {
		t.Fatalf("Reload of a bad file: %v, want an error naming the https certificate", err)
	}
	if s := servedSerial(t, r); s != 2 {
		t.Fatalf("after a failed Reload: serial %d, want 2 kept", s)
	}
	if _, err := NewCertReloader(filepath.Join(dir, "missing.pem"), key); err == nil || !strings.HasPrefix(err.Error(), "rtmps certificate ") {
		t.Fatalf("NewCertReloader of a missing file: %v, want an error naming the rtmps certificate", err)
	}
}
