package httploop

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestParseRequest(t *testing.T) {
	const max = 1 << 10
	for _, tc := range []struct {
		in   string
		want parseResult
		req  plainRequest
	}{
		{"GET /a/b/c.ts HTTP/1.1\r\nHost: x\r\n\r\n", parsePlain, plainRequest{path: []byte("/a/b/c.ts"), size: 35}},
		{"HEAD /a/b/c.ts HTTP/1.1\r\nhOsT: x:80\r\nAccept-Encoding: gzip\r\nConnection: keep-alive, Close\r\n\r\nGET", parsePlain,
			plainRequest{head: true, path: []byte("/a/b/c.ts"), gzip: true, close: true, size: 93}},
		// Every header that sets framing or connection state, repeated.
		{"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", parsePlain,
			plainRequest{path: []byte("/a"), close: true, size: 71}},
		{"GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", parsePlain,
			plainRequest{path: []byte("/a"), close: true, size: 71}},
		{"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", parsePlain,
			plainRequest{path: []byte("/a"), size: 66}},
		{"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nAccept-Encoding: br\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts HTTP/1.1\r\nHost: x\r\n", parseMore, plainRequest{}},
		{"GET /a/b/c.ts HTT", parseMore, plainRequest{}},
		{"GET /a/b/c.ts HTTP/1.1\nHost: x\n\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts?q HTTP/1.1\r\nHost: x\r\n\r\n", parsePlain, plainRequest{path: []byte("/a/b/c.ts"), query: []byte("q"), size: 37}},
		{"GET /a/i.m3u8?_HLS_msn=4&_HLS_part=0 HTTP/1.1\r\nHost: x\r\n\r\n", parsePlain,
			plainRequest{path: []byte("/a/i.m3u8"), query: []byte("_HLS_msn=4&_HLS_part=0"), size: 58}},
		{"GET /a/b/c.ts?q=%31 HTTP/1.1\r\nHost: x\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts?q=1+2 HTTP/1.1\r\nHost: x\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts?q=1;r=2 HTTP/1.1\r\nHost: x\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts?q?r HTTP/1.1\r\nHost: x\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/%63.ts HTTP/1.1\r\nHost: x\r\n\r\n", parseOther, plainRequest{}},
		{"GET http://x/a/b/c.ts HTTP/1.1\r\nHost: x\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: y\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", parseOther, plainRequest{}},
		{"GET /a/b/c.ts HTTP/1.1\r\nHost: x\r\nX: " + string(bytes.Repeat([]byte("a"), max)), parseOther, plainRequest{}},
		{"PUT /a/b/c.ts HTTP/1.1\r\nHost: x\r\n\r\n", parseOther, plainRequest{}},
	} {
		req, res := parseRequest([]byte(tc.in), max)
		if res != tc.want {
			t.Errorf("%.50q: result %d, want %d", tc.in, res, tc.want)
			continue
		}
		if res == parsePlain && (req.head != tc.req.head || !bytes.Equal(req.path, tc.req.path) ||
			!bytes.Equal(req.query, tc.req.query) || req.gzip != tc.req.gzip ||
			req.close != tc.req.close || req.size != tc.req.size) {
			t.Errorf("%.50q: %+v, want %+v", tc.in, req, tc.req)
		}
	}
}

// FuzzParseRequest checks the loops' parser against net/http's: whatever
// it takes as plain, net/http reads the same way (method, path, size,
// Connection: close, and without a body), and it never panics.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET /live/show/index.m3u8 HTTP/1.1\r\nHost: fount.test\r\nAccept-Encoding: gzip\r\n\r\n",
		"HEAD /live/show/seg1.ts HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"GET /live/show/seg1.ts HTTP/1.1\r\nHost: a\r\nUser-Agent: hls.js\r\n\r\nGET /x HTTP/1.1\r\n",
		// Each header that sets framing or connection state, repeated.
		"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close, upgrade\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 00\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nAccept-Encoding: identity\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nConnection: close\r\n\r\n",
		// Origin chooses the CORS fields (Origins): once, twice, empty.
		"GET /a HTTP/1.1\r\nHost: a\r\nOrigin: https://site.example\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nOrigin: https://site.example\r\norigin: https://evil.example\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nOrigin:  \t\r\n\r\n",
		// LL-HLS delivery directives, and queries net/http reads otherwise.
		"GET /live/show/index.m3u8?_HLS_msn=12&_HLS_part=3&_HLS_skip=YES HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a?b=1&b=2&&=&c HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a?b=%31 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a?b=1+2;c=3 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a?b?c#d HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, res := parseRequest(b, 4096)
		if res != parsePlain {
			return
		}
		if req.size <= 0 || req.size > len(b) {
			t.Fatalf("size %d of %d bytes", req.size, len(b))
		}
		br := bufio.NewReader(bytes.NewReader(b[:req.size]))
		hr, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("plain to the loops, refused by net/http: %v", err)
		}
		if br.Buffered() != 0 {
			t.Fatalf("net/http left %d bytes of the head", br.Buffered())
		}
		if hr.Method != map[bool]string{true: "HEAD", false: "GET"}[req.head] || hr.URL.Path != string(req.path) ||
			hr.URL.RawQuery != string(req.query) || hr.URL.RawPath != "" || hr.Close != req.close || hr.ContentLength > 0 ||
			AcceptsGzip(hr.Header.Get("Accept-Encoding")) != req.gzip {
			t.Fatalf("net/http reads %s %q (query %q, close %v, length %d, gzip %v); the loops %+v",
				hr.Method, hr.URL.Path, hr.URL.RawQuery, hr.Close, hr.ContentLength, AcceptsGzip(hr.Header.Get("Accept-Encoding")), req)
		}
		// A plain query reads the same raw as url.ParseQuery reads it (the
		// Source's directive parser relies on it).
		if q, err := url.ParseQuery(string(req.query)); err != nil {
			t.Fatalf("query %q: net/url refuses it: %v", req.query, err)
		} else {
			for _, kv := range bytes.Split(req.query, []byte("&")) {
				k, v, _ := bytes.Cut(kv, []byte("="))
				if len(k) == 0 && len(v) == 0 {
					continue
				}
				if vs, ok := q[string(k)]; !ok || !slices.Contains(vs, string(v)) {
					t.Fatalf("query %q: net/url reads %v, raw %q=%q", req.query, q, k, v)
				}
			}
		}
		// The Origin the CORS answer is chosen by is the one net/http's
		// middleware reads.
		if o := hr.Header.Values("Origin"); len(o) > 1 || hr.Header.Get("Origin") != string(req.origin) {
			t.Fatalf("net/http reads Origin %q; the loops %q", o, req.origin)
		}
		for _, h := range []string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
			if hr.Header.Get(h) != "" {
				t.Fatalf("plain request with %s", h)
			}
		}
	})
}
