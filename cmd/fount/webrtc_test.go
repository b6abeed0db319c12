package main

import (
	"strings"
	"testing"
)

// TestWebRTCFlags: the --webrtc-* flags' defaults and every refusal, with
// the flag named.
func TestWebRTCFlags(t *testing.T) {
	d := defaultConfig()
	if d.WebRTCUDPAddr != ":8189" || d.WebRTCMaxSessions != 200 || d.WebRTCPublicIPs != "" || d.WebRTCSTUN != "" {
		t.Errorf("defaults: %q %d %q %q", d.WebRTCUDPAddr, d.WebRTCMaxSessions, d.WebRTCPublicIPs, d.WebRTCSTUN)
	}
	for _, c := range []struct {
		mod  func(*config)
		want string // "" for valid
	}{
		{func(c *config) { c.WebRTCUDPAddr = "" }, ""},
		{func(c *config) {
			c.WebRTCPublicIPs, c.WebRTCSTUN = "203.0.113.7, 2001:db8::1", "stun:stun.example.com:3478,stun:10.0.0.1"
		}, ""},
		{func(c *config) { c.WebRTCUDPAddr = "no-port" }, "--webrtc-udp-addr"},
		{func(c *config) { c.WebRTCPublicIPs = "203.0.113.7,example.com" }, `--webrtc-public-ips: "example.com"`},
		{func(c *config) { c.WebRTCSTUN = "stun.example.com:3478" }, "--webrtc-stun"},
		{func(c *config) { c.WebRTCSTUN = "stun:<x>" }, "--webrtc-stun"},
		{func(c *config) { c.WebRTCMaxSessions = 0 }, "--webrtc-max-sessions 0"},
	} {
		cfg := defaultConfig()
		c.mod(&cfg)
		err := cfg.validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want %q", cfg, err, c.want)
		}
	}
}
