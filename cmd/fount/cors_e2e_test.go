package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

func TestConfigCORSOrigins(t *testing.T) {
	for _, tc := range []struct {
		value string
		any   bool
		err   string
	}{
		{"*", true, ""},
		{"https://www.example.com", false, ""},
		{" https://www.example.com , http://localhost:3000 ", false, ""},
		{"", false, `--cors-origins "": want "*" or at least one origin`},
		{" , ", false, `want "*" or at least one origin`},
		{"*,https://www.example.com", false, `"*" allows any origin and goes alone`},
		{"www.example.com", false, "want scheme://host[:port]"},
		{"https://www.example.com/player", false, "want scheme://host[:port]"},
	} {
		c := defaultConfig()
		c.CORSOrigins = tc.value
		err := c.validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.value, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v; want %q", tc.value, err, tc.err)
		case tc.err == "":
			if o, _ := c.origins(); o.Any() != tc.any {
				t.Errorf("%q: any origin %v, want %v", tc.value, o.Any(), tc.any)
			}
		}
	}
}

// TestE2ECORSOrigins: with --cors-origins listing pages, a listed page's
// requests get Access-Control-Allow-Origin naming it and an unlisted
// page's none, whether the event loops answer (playlist, part, segment
// over plain HTTP) or net/http does (HTTP/2, a 404), and every answer says
// Vary: Origin for caches.
func TestE2ECORSOrigins(t *testing.T) {
	src := source(t)
	lockEndToEnd(t)
	ca := newTestCA(t)
	cert, key := ca.writeLeaf(t, t.TempDir(), 1)
	o := startOrigin(t, func(c *config) {
		c.CORSOrigins = "https://site.example, http://localhost:3000"
		c.HTTPSAddr, c.HTTPTLSCert, c.HTTPTLSKey = "127.0.0.1:0", cert, key
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	push := o.push(ctx, t, "cors", []string{"-re", "-t", "3", "-i", src}, "-c", "copy")
	defer push.Wait()
	var seg, part string
	awaitPlaylist(t, o.url("/live/cors/index.m3u8"), 10*time.Second, "a first segment", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		if p.Count() < 1 {
			return false
		}
		seg = p.Segments[0].URI
		return true
	})
	m := parseLL(t, getProto(t, tlsClient(t, ca, true), "https://"+o.https+"/live/cors/index.m3u8", 2))
	part = m.Segments[0].Parts[0].URI

	plain := &http.Client{Timeout: 10 * time.Second}
	h2 := tlsClient(t, ca, true)
	for _, base := range []struct {
		name string
		c    *http.Client
		url  string
	}{{"plain", plain, "http://" + o.http}, {"h2", h2, "https://" + o.https}} {
		for _, path := range []string{"/live/cors/index.m3u8", "/live/cors/" + seg, "/live/cors/" + part, "/live/cors/nothing.m4s"} {
			for _, tc := range []struct{ origin, allow string }{
				{"https://site.example", "https://site.example"},
				{"http://localhost:3000", "http://localhost:3000"},
				{"https://evil.example", ""},
				{"", ""},
			} {
				req, err := http.NewRequest("GET", base.url+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.origin != "" {
					req.Header.Set("Origin", tc.origin)
				}
				resp, err := base.c.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", base.name, path, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if a := resp.Header.Get("Access-Control-Allow-Origin"); a != tc.allow {
					t.Errorf("%s %s from %q: %d, Access-Control-Allow-Origin %q, want %q", base.name, path, tc.origin, resp.StatusCode, a, tc.allow)
				}
				if v := resp.Header.Get("Vary"); !strings.Contains(v, "Origin") {
					t.Errorf("%s %s from %q: Vary %q, want Origin in it", base.name, path, tc.origin, v)
				}
			}
		}
	}
}
