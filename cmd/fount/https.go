package main

import (
	"crypto/tls"
	"log/slog"
	"net/http"
)

// httpsMaxStreams is HTTP/2's limit on concurrent requests per connection
// (net/http's default, written out because LL-HLS depends on it): each
// blocking playlist reload or preload-hinted part holds a stream for up to
// three target durations, and a player holds one or two per rendition, so
// 250 leaves room even for a CDN edge that multiplexes many viewers over
// one connection. Beyond it a client queues its requests, it is not refused.
const httpsMaxStreams = 250

// newHTTPSServer makes the viewers' HTTPS server: net/http serves every
// request with handler — the viewer port's, so it answers exactly what
// the plain port answers — because the event loops speak plain HTTP only.
// ALPN offers h2 then http/1.1 (net/http's built-in HTTP/2). Timeouts and
// header limits are the viewer port's (newHTTPServer): over HTTP/2 the
// write timeout applies to each stream, so a blocking reload gets as long
// as over HTTP/1.1; ReadHeaderTimeout also bounds the TLS handshake. The
// certificate comes from tlsCfg at each handshake: a CertReloader's, which
// SIGHUP renews, or the ACME manager's, which renews itself; the latter
// adds acme-tls/1 to ALPN, after h2 and http/1.1.
func newHTTPSServer(handler http.Handler, tlsCfg *tls.Config, log *slog.Logger, cfg config) *http.Server {
	s := newHTTPServer(handler, log, cfg)
	s.TLSConfig = tlsCfg
	s.TLSConfig.NextProtos = append([]string{"h2", "http/1.1"}, tlsCfg.NextProtos...)
	s.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: httpsMaxStreams}
	return s
}

// viewerServers lets a handover turn keep-alive off on the viewer port and
// its HTTPS server alike.
type viewerServers []interface{ SetKeepAlivesEnabled(bool) }

func (vs viewerServers) SetKeepAlivesEnabled(on bool) {
	for _, s := range vs {
		s.SetKeepAlivesEnabled(on)
	}
}
