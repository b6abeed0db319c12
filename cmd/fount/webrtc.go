package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fount-live/fount/rtc"
)

// validateWebRTC checks the --webrtc-* flags.
func (c config) validateWebRTC() (errs []error) {
	if c.WebRTCUDPAddr != "" {
		if _, err := net.ResolveUDPAddr("udp", c.WebRTCUDPAddr); err != nil {
			errs = append(errs, fmt.Errorf("--webrtc-udp-addr %q: want HOST:PORT or :PORT (\"\" turns WebRTC off): %w", c.WebRTCUDPAddr, err))
		}
	}
	for _, ip := range commaList(c.WebRTCPublicIPs) {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("--webrtc-public-ips: %q is not an IP address", ip))
		}
	}
	for _, u := range commaList(c.WebRTCSTUN) {
		host, ok := strings.CutPrefix(u, "stun:")
		if !ok || host == "" || strings.ContainsAny(host, "<>\" ") {
			errs = append(errs, fmt.Errorf("--webrtc-stun: %q: want stun:HOST[:PORT]", u))
		}
	}
	if c.WebRTCMaxSessions < 1 || c.WebRTCMaxSessions > 100_000 {
		errs = append(errs, fmt.Errorf("--webrtc-max-sessions %d: must be between 1 and 100000", c.WebRTCMaxSessions))
	}
	return errs
}

// commaList splits a comma-separated flag value, dropping empty items.
func commaList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// newWebRTC opens WebRTC playback's ports; nil when it is off.
func newWebRTC(cfg config, log interface{ Info(string, ...any) }, rcfg rtc.Config) (*rtc.Server, error) {
	if cfg.WebRTCUDPAddr == "" {
		log.Info("webrtc playback and ingest are off (--webrtc-udp-addr \"\")")
		return nil, nil
	}
	rcfg.UDPAddr, rcfg.PublicIPs, rcfg.STUN, rcfg.MaxSessions, rcfg.KeepGOP = cfg.WebRTCUDPAddr, commaList(cfg.WebRTCPublicIPs), commaList(cfg.WebRTCSTUN), cfg.WebRTCMaxSessions, cfg.WebRTCKeepGOP
	srv, err := rtc.New(rcfg)
	if err != nil {
		return nil, err
	}
	tcp := ""
	if a := srv.TCPAddr(); a != nil {
		tcp = a.String()
	}
	log.Info("webrtc playback (WHEP at /APP/NAME/whep) and ingest (WHIP at /APP/NAME/whip)", "udp", srv.Addr().String(), "tcp", tcp, "public_ips", cfg.WebRTCPublicIPs, "max_sessions", cfg.WebRTCMaxSessions)
	return srv, nil
}

// WebRTC playback's metrics (docs/metrics.md).
var (
	descWebRTCSessions      = prometheus.NewDesc("fount_webrtc_sessions", "WebRTC (WHEP) viewer sessions open now, connecting or connected.", nil, nil)
	descWebRTCSessionsTotal = prometheus.NewDesc("fount_webrtc_sessions_total", "WebRTC (WHEP) viewer sessions answered.", nil, nil)
)

// webrtcCollector exports the rtc server's counts at scrape time.
type webrtcCollector struct{ srv *rtc.Server }

func (c webrtcCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWebRTCSessions
	ch <- descWebRTCSessionsTotal
}

func (c webrtcCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	ch <- prometheus.MustNewConstMetric(descWebRTCSessions, prometheus.GaugeValue, float64(st.Sessions))
	ch <- prometheus.MustNewConstMetric(descWebRTCSessionsTotal, prometheus.CounterValue, float64(st.Total))
}
