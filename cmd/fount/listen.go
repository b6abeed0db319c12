package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/fount-live/fount/ingest"
)

// listen opens a TCP listener; with reusePort it sets SO_REUSEPORT so that
// a successor fount can bind the same address while this one hands over
// (docs/scaling.md#restarts-without-viewers-noticing). Off by default: two
// founts silently sharing a port by mistake would split the viewers.
func listen(ctx context.Context, addr string, reusePort bool) (net.Listener, error) {
	lc := listenConfig(reusePort)
	return lc.Listen(ctx, "tcp", addr)
}

// listenConfig is listen's, for other sockets (WebRTC's UDP port).
func listenConfig(reusePort bool) net.ListenConfig {
	var lc net.ListenConfig
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return lc
}

// listeners are the origin's open ports.
type listeners struct {
	rtmp, http net.Listener
	api        net.Listener         // nil without --api-addr
	rtmps      net.Listener         // TLS; nil without --rtmps-addr
	certs      *ingest.CertReloader // rtmps's certificate, reloaded on SIGHUP; nil without it
	// https is --https-addr's port (TCP: the HTTPS server does the TLS);
	// nil without it, also when --http-addr itself speaks TLS.
	https     net.Listener
	httpCerts *ingest.CertReloader // the viewers' HTTPS certificate, reloaded on SIGHUP; nil without it
	acme      *acmeCerts           // or, with --acme-domains, the ACME CA's; nil without it
}

// openListeners opens the RTMP and viewer ports, and the API, RTMPS and
// HTTPS ports if set, and loads the certificates (or, with --acme-domains,
// sets up their ACME manager). On a failure it closes those it opened.
func openListeners(ctx context.Context, cfg config, log *slog.Logger) (l listeners, err error) {
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if l.rtmp, err = listen(ctx, cfg.RTMPAddr, cfg.ReusePort); err != nil {
		return l, fmt.Errorf("rtmp: %w", err)
	}
	if l.http, err = listen(ctx, cfg.HTTPAddr, cfg.ReusePort); err != nil {
		return l, fmt.Errorf("http: %w", err)
	}
	if cfg.APIAddr != "" {
		if l.api, err = listen(ctx, cfg.APIAddr, cfg.ReusePort); err != nil {
			return l, fmt.Errorf("api: %w", err)
		}
	}
	if cfg.RTMPSAddr != "" {
		if l.certs, err = ingest.NewCertReloader(cfg.TLSCert, cfg.TLSKey); err != nil {
			return l, err
		}
		var tcp net.Listener
		if tcp, err = listen(ctx, cfg.RTMPSAddr, cfg.ReusePort); err != nil {
			return l, fmt.Errorf("rtmps: %w", err)
		}
		// Raw reads under TLS as for plain RTMP (ingest.Server.Serve
		// applies them to the listener it gets, here a TLS one).
		l.rtmps = tls.NewListener(ingest.RawReadListener(tcp), l.certs.TLSConfig())
	}
	if cfg.ACMEDomains != "" {
		if l.acme, err = newACMECerts(cfg, log); err != nil {
			return l, err
		}
	} else if on, _ := cfg.viewerTLS(); on {
		if l.httpCerts, err = ingest.NewNamedCertReloader("https", cfg.HTTPTLSCert, cfg.HTTPTLSKey); err != nil {
			return l, err
		}
	}
	if cfg.HTTPSAddr != "" {
		if l.https, err = listen(ctx, cfg.HTTPSAddr, cfg.ReusePort); err != nil {
			return l, fmt.Errorf("https: %w", err)
		}
	}
	return l, nil
}

// close closes the listeners that are open, and the ACME client's
// connections.
func (l listeners) close() {
	if l.acme != nil {
		l.acme.close()
	}
	for _, ln := range []net.Listener{l.rtmp, l.http, l.api, l.rtmps, l.https} {
		if ln != nil {
			ln.Close()
		}
	}
}
