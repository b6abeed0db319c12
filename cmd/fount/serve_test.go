package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// A port that cannot be opened fails serve with the port's name, and the
// ports opened before it are closed again.
func TestServeListenerFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	noCert := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct {
		name, want string
		mod        func(*config)
	}{
		{"http", "http: ", func(c *config) { c.HTTPAddr = busy.Addr().String() }},
		{"api", "api: ", func(c *config) { c.APIAddr = busy.Addr().String() }},
		{"rtmps", "rtmps: ", func(c *config) {
			c.TLSCert, c.TLSKey = writeCert(t, t.TempDir(), 1)
			c.RTMPSAddr = busy.Addr().String()
		}},
		{"certificate", "missing.pem", func(c *config) { c.RTMPSAddr, c.TLSCert, c.TLSKey = free(), noCert, noCert }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.RTMPAddr, cfg.HTTPAddr, cfg.APIAddr = free(), free(), free()
			cfg.WebRTCUDPAddr = "" // its default port is fixed
			c.mod(&cfg)
			opened := []string{cfg.RTMPAddr, cfg.HTTPAddr, cfg.APIAddr}
			err := serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(running) {
				t.Error("serve started")
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("serve: %v, want an error with %q", err, c.want)
			}
			for _, addr := range opened {
				if addr == busy.Addr().String() {
					continue
				}
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("%s left open: %v", addr, err)
					continue
				}
				ln.Close()
			}
		})
	}
}
