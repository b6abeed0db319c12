package playlist

import (
	"bytes"
	"testing"

	"github.com/fount-live/fount/playlist/httploop"
)

// With a list of origins (--cors-origins), the loops answer exactly as
// net/http does, for a request from a listed origin, an unlisted one or
// none: Access-Control-Allow-Origin names the listed origin only, Vary
// says Origin on every answer (merged with Accept-Encoding for gzip), the
// same for the loops' own 503 of a blocking request that timed out.
func TestServerAnswersAsNetHTTPOrigins(t *testing.T) {
	classic, _, _ := classicWithMedia(t)
	ll, clk := newLLRegistry(t)
	ls, _ := ll.Publish("live/show")
	ls.Init([]byte("ftypmoov"))
	addLLSegment(t, ls, clk, 5)
	addParts(t, ls, 2)

	listed, err := httploop.NewOrigins([]string{"https://site.example", "http://localhost:3000"})
	if err != nil {
		t.Fatal(err)
	}
	const host = "Host: fount.test\r\n"
	get := func(target string, hdr ...string) string {
		b := "GET " + target + " HTTP/1.1\r\n" + host
		for _, h := range hdr {
			b += h + "\r\n"
		}
		return b + "\r\n"
	}
	const (
		allowed = "Origin: https://site.example"
		refused = "Origin: https://evil.example"
		gzip    = "Accept-Encoding: gzip"
	)
	type tcase struct {
		req   string
		loop  bool   // answered by a loop
		allow string // Access-Control-Allow-Origin wanted
	}
	for _, reg := range []struct {
		name  string
		r     *Registry
		cases []tcase
	}{
		{"classic", classic, []tcase{
			{get("/live/show/index.m3u8"), true, ""},
			{get("/live/show/index.m3u8", allowed), true, "https://site.example"},
			{get("/live/show/index.m3u8", allowed, gzip), true, "https://site.example"},
			{get("/live/show/index.m3u8", refused, gzip), true, ""},
			{get("/live/show/seg0.ts", refused), true, ""},
			{get("/live/show/seg0.ts", "Origin: http://localhost:3000"), true, "http://localhost:3000"},
			{get("/live/show/seg0.ts", "Origin: HTTPS://SITE.EXAMPLE"), true, ""}, // browsers send lower case
			{get("/live/show/seg0.ts", allowed, "Range: bytes=0-9"), false, "https://site.example"},
			{get("/live/show/seg9.ts", allowed), false, "https://site.example"},
			{get("/live/show/seg0.ts", allowed, refused), false, "https://site.example"}, // two: net/http reads the first
			{"OPTIONS /live/show/seg0.ts HTTP/1.1\r\n" + host + allowed + "\r\n\r\n", false, "https://site.example"},
			{"OPTIONS /live/show/seg0.ts HTTP/1.1\r\n" + host + refused + "\r\n\r\n", false, ""},
		}},
		{"ll", ll, []tcase{
			{get("/live/show/seg1.1.m4s", allowed), true, "https://site.example"},
			{get("/live/show/index.m3u8?_HLS_msn=1&_HLS_part=1&_HLS_skip=YES", allowed, gzip), true, "https://site.example"},
			{get("/live/show/seg1.2.m4s", allowed), true, "https://site.example"}, // parks, then the loop's 503
			{get("/live/show/seg1.2.m4s", refused), true, ""},
		}},
	} {
		t.Run(reg.name, func(t *testing.T) {
			loops := startLoopServer(t, reg.r, httploop.Config{Origins: listed})
			plain := startLoopServer(t, reg.r, httploop.Config{Loops: -1, Origins: listed})
			for _, tc := range reg.cases {
				got := answerAlike(t, loops, plain, tc.req, tc.loop)
				if a := got.Header.Get("Access-Control-Allow-Origin"); a != tc.allow {
					t.Errorf("%.80q: Access-Control-Allow-Origin %q, want %q", tc.req, a, tc.allow)
				}
				if v := got.Header.Values("Vary"); len(v) != 1 || !bytes.Contains([]byte(v[0]), []byte("Origin")) {
					t.Errorf("%.80q: Vary %q, want Origin in it", tc.req, v)
				}
			}
		})
	}
}
