package playlist

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/storage"
)

// hostileNames are stream names an attacker (or a confused encoder) may
// use: traversal, encoded traversal, NUL, very long, odd unicode, control
// characters, Windows oddities. The same table is kept in the storage,
// ingest and cmd/fount tests.
var hostileNames = []string{
	"", ".", "..", "...", "../x", "a/../../etc/passwd", "live/../x",
	"%2e%2e/x", "%2e%2e%2fx", "..%2fx", "%252e%252e", "%2e%2e", "live%2fshow",
	"a\x00b", "%00", "\x00",
	`..\x`, `a\b`,
	"/etc/passwd", "//x", "/", "a//b", "a/b/", "./x",
	strings.Repeat("a", 300), strings.Repeat("a", 4096),
	"a\u202eb", "\u202egnp.ts", "a\u200db", "caf\u00e9", "cafe\u0301", "a\uff0fb", "\uff0e\uff0e\uff0f", "\uff0e\uff0e",
	"a\r\nb", "show\r\nSet-Cookie: x=1", "a\nb", "a\tb", "a\x7fb", "\x1b[31m",
	"a b", " ", " show", "show ",
	"a.", "show.", ".hidden",
	"CON", "con", "con.ts", "Nul", "aux.m3u8", "COM1", "lpt9.mp4",
	"a?b", "a#b", "a%b", "a:b", "a*b", "a\"b", "a<b>", "a|b", "~x",
}

// hostileTargets are request targets sent as they are on the request line,
// where net/http's client would have cleaned or escaped them.
var hostileTargets = []string{
	"/live/../../etc/passwd", "/live/show/../../../secret.txt", "/../secret.txt", "/..", "/live/..",
	"/live/show/../show/index.m3u8", "/live/./show/index.m3u8", "/./live/show/index.m3u8",
	"/live/%2e%2e/%2e%2e/secret.txt", "/live/show/%2e%2e%2f%2e%2e%2fsecret.txt", "/live/show/..%2f..%2fsecret.txt",
	"/%2e%2e/secret.txt", "/live/show/%252e%252e/%252e%252esecret.txt", "/live/show/%2E%2E/index.m3u8",
	"/live/show/a%00b", "/live/show/%00", "/live/show/index.m3u8%00", "/live/show%00/index.m3u8",
	`/live/show/..\..\secret.txt`, `/live/show\index.m3u8`, "/live/show/%5c..%5csecret.txt",
	"/etc/passwd", "//etc/passwd", "///secret.txt", "/live//show/index.m3u8", "/live/show//index.m3u8",
	"/live/show/index.m3u8/", "/live/show/", "/live/show", "/live/", "/live", "/", "*",
	"/live/" + strings.Repeat("a", 300) + "/index.m3u8", "/live/show/" + strings.Repeat("a", 4096),
	"/live/x/index.m3u8?" + strings.Repeat("q", 4096),
	"/live/caf%C3%A9/index.m3u8", "/live/cafe%CC%81/index.m3u8", "/live/café/index.m3u8",
	"/live/%E2%80%AEshow/index.m3u8", "/live/a%E2%80%8Db/index.m3u8",
	"/live%EF%BC%8Fshow/index.m3u8", "/live/show/%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret.txt", "/live/show/．．／secret.txt",
	"/live/a%0d%0aSet-Cookie:%20x=1/index.m3u8", "/live/show/%0d%0aLocation:%20http:%2f%2fevil",
	"/live/a%20b/index.m3u8", "/live/show%20/index.m3u8", "/live/.../index.m3u8", "/live/show./index.m3u8",
	"/live/.hidden/index.m3u8", "/live/show/.index.m3u8.tmp-1",
	"/live/CON/index.m3u8", "/live/show/con.ts", "/live/show/NUL",
	"/live/live/show/index.m3u8", "/LIVE/show/index.m3u8", "/live/show/index.m3u8/..",
	"/live/%73how/index.m3u8", "/%6cive/show/seg1.ts", "/live%2fshow/index.m3u8", "/live/show%2findex.m3u8",
	"http://evil.example/live/../../secret.txt", "http://evil.example/../secret.txt",
}

// rawGet sends target exactly as given on a GET request line and returns
// the status, headers and body (at most 64 KiB of it).
func rawGet(t *testing.T, addr, method, target string) (int, http.Header, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Written concurrently: the server may answer (431) before it has read
	// a huge request line.
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, method+" "+target+" HTTP/1.1\r\nHost: fount.test\r\nConnection: close\r\n\r\n")
		wrote <- err
	}()
	defer func() { c.Close(); <-wrote }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %.80q: no response: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header, string(body)
}

func TestHostilePathsAndNames(t *testing.T) {
	// The store is a directory with decoys beside it, where a traversal
	// would land.
	parent := t.TempDir()
	const secret = "TOP-SECRET decoy"
	if err := os.WriteFile(filepath.Join(parent, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := storage.NewDir(filepath.Join(parent, "store"))
	if err != nil {
		t.Fatal(err)
	}
	r, clk := newTestRegistry(t, store)
	s, err := r.Publish("live/show")
	if err != nil {
		t.Fatal(err)
	}
	addSegments(t, s, clk, 2, 2*time.Second)
	// A file in the store that no stream path reaches.
	if err := store.Put(t.Context(), "secret/x/secret.txt", storage.Object{Data: []byte(secret)}); err != nil {
		t.Fatal(err)
	}

	// No hostile name can be published.
	for _, n := range hostileNames {
		if _, err := r.Publish("live/" + n); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Publish(live/%.40q) = %v, want ErrInvalidKey", n, err)
		}
	}

	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	var targets []string
	targets = append(targets, hostileTargets...)
	for _, n := range hostileNames {
		e := url.PathEscape(n)
		targets = append(targets, "/live/"+e+"/index.m3u8", "/live/show/"+e, "/"+e+"/show/index.m3u8")
	}
	for _, target := range targets {
		for _, method := range []string{"GET", "HEAD"} {
			code, h, body := rawGet(t, addr, method, target)
			if code != http.StatusBadRequest && code != http.StatusNotFound {
				t.Errorf("%s %.80q: %d, want 400 or 404", method, target, code)
			}
			if strings.Contains(body, secret) || strings.Contains(body, "root:") || h.Get("Location") != "" || h.Get("Set-Cookie") != "" {
				t.Errorf("%s %.80q: leaked %q %.200q", method, target, h, body)
			}
		}
	}
	// 1 MiB in the path or the query is read and refused like the rest.
	for _, target := range []string{"/live/show/" + strings.Repeat("a", 1<<20), "/live/x/index.m3u8?q=" + strings.Repeat("q", 1<<20)} {
		if code, _, _ := rawGet(t, addr, "GET", target); code != http.StatusNotFound {
			t.Errorf("GET %.40q (1 MiB): %d, want 404", target, code)
		}
	}
	// A request line beyond net/http's header limit (1 MiB + 4 KiB) never
	// reaches a handler: 431.
	if code, _, _ := rawGet(t, addr, "GET", "/live/show/index.m3u8?q="+strings.Repeat("q", 2<<20)); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 MiB query: %d, want 431", code)
	}

	// And the handler is fine: the stream still plays.
	for _, p := range []string{"/live/show/index.m3u8", "/live/show/seg1.ts"} {
		if code, _, body := rawGet(t, addr, "GET", p); code != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s after the hostile requests: %d", p, code)
		}
	}
	if _, err := os.Stat(filepath.Join(parent, "secret.txt")); err != nil {
		t.Fatal(err)
	}
}

// TestCleanPathsOnly checks the guard that goes in front of a ServeMux:
// unclean paths get 404, not the mux's redirect to the cleaned path.
func TestCleanPathsOnly(t *testing.T) {
	r, clk := newTestRegistry(t, storage.NewMemory())
	s, err := r.Publish("live/show")
	if err != nil {
		t.Fatal(err)
	}
	addSegments(t, s, clk, 1, 2*time.Second)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {})
	mux.Handle("/", r.Handler())
	srv := httptest.NewServer(httploop.CleanPathsOnly(mux))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	for _, target := range hostileTargets {
		code, h, _ := rawGet(t, addr, "GET", target)
		if code != http.StatusBadRequest && code != http.StatusNotFound || h.Get("Location") != "" {
			t.Errorf("GET %.80q: %d (Location %q), want 400 or 404", target, code, h.Get("Location"))
		}
	}
	for _, target := range []string{"/healthz", "/live/show/index.m3u8", "/live/show/seg0.ts"} {
		if code, _, _ := rawGet(t, addr, "GET", target); code != http.StatusOK {
			t.Errorf("GET %s: %d", target, code)
		}
	}
}
