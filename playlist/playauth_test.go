package playlist

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/playlist/playauth"
)

const carried = "expires=1&token=ab"

func TestWithQuery(t *testing.T) {
	in := `#EXTM3U
#EXT-X-MAP:URI="init0.mp4"
#EXT-X-KEY:METHOD=AES-128,URI="keys/3.key",IV=0x00000000000000000000000000000003
#EXT-X-KEY:METHOD=AES-128,URI="https://kms.example/live/show/3"
#EXT-X-PART:DURATION=0.20000,URI="seg3.0.m4s",INDEPENDENT=YES
#EXTINF:2.000,
seg3.m4s
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg4.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../720p/index.m3u8",LAST-MSN=3,LAST-PART=0
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="en",URI="audio/index.m3u8"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="720p/iframes.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1
720p/index.m3u8?lang=en
`
	want := `#EXTM3U
#EXT-X-MAP:URI="init0.mp4?` + carried + `"
#EXT-X-KEY:METHOD=AES-128,URI="keys/3.key?` + carried + `",IV=0x00000000000000000000000000000003
#EXT-X-KEY:METHOD=AES-128,URI="https://kms.example/live/show/3"
#EXT-X-PART:DURATION=0.20000,URI="seg3.0.m4s?` + carried + `",INDEPENDENT=YES
#EXTINF:2.000,
seg3.m4s?` + carried + `
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg4.1.m4s?` + carried + `"
#EXT-X-RENDITION-REPORT:URI="../720p/index.m3u8?` + carried + `",LAST-MSN=3,LAST-PART=0
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="en",URI="audio/index.m3u8?` + carried + `"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="720p/iframes.m3u8?` + carried + `"
#EXT-X-STREAM-INF:BANDWIDTH=1
720p/index.m3u8?lang=en&` + carried + `
`
	if got := string(withQuery([]byte(in), carried)); got != want {
		t.Errorf("withQuery:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzWithQuery: whatever the playlist, the rewrite keeps its lines and
// every relative URI line ends with the query.
func FuzzWithQuery(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-MAP:URI=\"init0.mp4\"\n#EXTINF:2,\nseg0.ts\n"))
	f.Add([]byte("#X:URI=\"a\",URI=\"\nb\n\n#URI=\"x\"\"y\"\nno-newline"))
	f.Fuzz(func(t *testing.T, body []byte) {
		out := withQuery(body, carried)
		in, got := strings.Split(string(body), "\n"), strings.Split(string(out), "\n")
		if len(in) != len(got) {
			t.Fatalf("%d lines became %d", len(in), len(got))
		}
		for i, l := range in {
			if l != "" && l[0] != '#' && !strings.Contains(l, "://") && !strings.HasSuffix(got[i], carried) {
				t.Fatalf("URI line %q became %q", l, got[i])
			}
		}
	})
}

func newSignedRegistry(t *testing.T) (*Registry, *playauth.Signer, time.Time) {
	t.Helper()
	r, clk := newLLRegistry(t)
	auth, err := playauth.NewToken([]byte("0123456789abcdef"), clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	r.cfg.PlayAuth = auth
	s, _ := r.Publish("live/show")
	s.Init([]byte("ftypmoov"))
	addLLSegment(t, s, clk, 10)
	addLLSegment(t, s, clk, 10)
	addParts(t, s, 2)
	signer, _ := playauth.NewSigner([]byte("0123456789abcdef"))
	return r, signer, clk.Now()
}

// TestPlayTokenHandler: every object of a stream needs its token, and a
// playlist carries it into every URI, which then plays.
func TestPlayTokenHandler(t *testing.T) {
	r, signer, now := newSignedRegistry(t)
	h := r.Handler()
	q := signer.Query("live/show", now.Add(time.Hour))
	for path, want := range map[string]int{
		"/live/show/index.m3u8":                 http.StatusForbidden,
		"/live/show/seg0.m4s":                   http.StatusForbidden,
		"/live/show/keys/1.key":                 http.StatusForbidden,
		"/live/show/rec/x/index.m3u8":           http.StatusForbidden,
		"/live/show/auth":                       http.StatusForbidden,
		"/live/show/auth?" + q:                  http.StatusNoContent,
		"/live/show/seg0.m4s?" + q:              http.StatusOK,
		"/live/show/index.m3u8?_HLS_msn=1&" + q: http.StatusOK,
		"/live/other/index.m3u8?" + q:           http.StatusForbidden,
		"/live/show/index.m3u8?" + signer.Query("live/show", now.Add(-time.Second)): http.StatusForbidden,
	} {
		resp := get(t, h, http.MethodGet, path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d %q, want %d", path, resp.StatusCode, body, want)
		}
		if want == http.StatusForbidden && (bytes.Count(body, []byte("\n")) != 1 || len(body) < 10) {
			t.Errorf("GET %s: 403 body %q, want a one-line reason", path, body)
		}
	}

	resp := get(t, h, http.MethodGet, "/live/show/index.m3u8?"+q, "Accept-Encoding", "gzip")
	body, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Etag") != "" {
		t.Errorf("signed playlist: Content-Encoding %q, ETag %q; want neither (each viewer's body is its own)",
			resp.Header.Get("Content-Encoding"), resp.Header.Get("Etag"))
	}
	checkCarried(t, h, body, q)
}

// checkCarried checks that every URI of a playlist carries q, and that
// each answers 200 when fetched as a player would (relative to the
// playlist, the query of the URI only).
func checkCarried(t *testing.T, h http.Handler, body []byte, q string) {
	t.Helper()
	var uris []string
	hints := map[string]bool{} // not there yet: not fetched
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "":
		case l[0] != '#':
			uris = append(uris, l)
		default:
			for _, f := range strings.Split(l, `URI="`)[1:] {
				u := f[:strings.IndexByte(f, '"')]
				uris = append(uris, u)
				hints[u] = strings.HasPrefix(l, "#EXT-X-PRELOAD-HINT")
			}
		}
	}
	if len(uris) < 20 {
		t.Fatalf("%d URIs in\n%s", len(uris), body)
	}
	for _, u := range uris {
		if !strings.HasSuffix(u, "?"+q) {
			t.Errorf("URI %q does not carry the token", u)
			continue
		}
		if hints[u] {
			continue
		}
		if resp := get(t, h, http.MethodHead, "/live/show/"+u); resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %d", u, resp.StatusCode)
		}
	}
}

// TestPlayTokenLookup: the loops serve what carries a good token (the
// playlist rewritten for it) and hand the rest to the handler.
func TestPlayTokenLookup(t *testing.T) {
	r, signer, now := newSignedRegistry(t)
	q := signer.Query("live/show", now.Add(time.Hour))
	for _, tc := range []struct {
		path, query string
		want        httploop.Verdict
	}{
		{"/live/show/index.m3u8", "", httploop.Decline},
		{"/live/show/seg0.m4s", "", httploop.Decline},
		{"/live/show/seg0.m4s", strings.Replace(q, "expires=", "expires=9", 1), httploop.Decline},
		{"/live/show/seg0.m4s", q, httploop.Serve},
		{"/live/show/seg1.3.m4s", q, httploop.Serve},
		{"/live/show/index.m3u8", q, httploop.Serve},
	} {
		a, v := r.Lookup(httploop.Request{Path: []byte(tc.path), Query: []byte(tc.query), Gzip: true})
		if v != tc.want {
			t.Errorf("Lookup %s?%s: verdict %d, want %d", tc.path, tc.query, v, tc.want)
		}
		if v == httploop.Serve && strings.HasSuffix(tc.path, ".m3u8") {
			if a.Head.Gzip || !bytes.Contains(a.Body, []byte("seg0.m4s?"+q+"\n")) {
				t.Errorf("loops' signed playlist (gzip %v):\n%s", a.Head.Gzip, a.Body)
			}
			checkCarried(t, r.Handler(), a.Body, q)
		}
		if a.Hold != nil {
			a.Hold.Release()
		}
	}
}

// TestPlayAuthOffKeepsGzip: without play auth a query changes nothing.
func TestPlayAuthOffKeepsGzip(t *testing.T) {
	r, clk := newLLRegistry(t)
	s, _ := r.Publish("live/show")
	s.Init([]byte("ftypmoov"))
	addLLSegment(t, s, clk, 10)
	req := httptest.NewRequest(http.MethodGet, "/live/show/index.m3u8?expires=1&token=ab", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	w := httptest.NewRecorder()
	r.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "gzip" {
		t.Errorf("%d, Content-Encoding %q: want a gzipped 200", w.Code, w.Header().Get("Content-Encoding"))
	}
}

// BenchmarkLookupPlaylistSigned: the loops' answer to an LL-HLS playlist
// request, plain and with a token (its URIs rewritten for the viewer).
func BenchmarkLookupPlaylistSigned(b *testing.B) {
	for _, signed := range []bool{false, true} {
		name := "plain"
		if signed {
			name = "token"
		}
		b.Run(name, func(b *testing.B) {
			r, clk := newLLRegistry(b)
			signer, _ := playauth.NewSigner([]byte("0123456789abcdef"))
			if signed {
				r.cfg.PlayAuth, _ = playauth.NewToken([]byte("0123456789abcdef"), clk.Now)
			}
			s, _ := r.Publish("live/show")
			s.Init([]byte("ftypmoov"))
			for i := 0; i < 7; i++ {
				addLLSegment(b, s, clk, 10)
			}
			addParts(b, s, 3)
			req := httploop.Request{Path: []byte("/live/show/index.m3u8")}
			if signed {
				req.Query = []byte(signer.Query("live/show", clk.Now().Add(time.Hour)))
			}
			b.ReportAllocs()
			for b.Loop() {
				a, v := r.Lookup(req)
				if v != httploop.Serve || len(a.Body) == 0 {
					b.Fatal("not served")
				}
			}
		})
	}
}
