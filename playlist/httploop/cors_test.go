package httploop

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNewOrigins(t *testing.T) {
	for _, tc := range []struct {
		list []string
		any  bool
		err  string
	}{
		{nil, true, ""},
		{[]string{"*"}, true, ""},
		{[]string{"https://site.example"}, false, ""},
		{[]string{"https://Site.Example:8443", "http://localhost:3000"}, false, ""},
		{[]string{"*", "https://site.example"}, false, `"*" allows any origin and goes alone`},
		{[]string{"site.example"}, false, "want scheme://host[:port]"},
		{[]string{"https://site.example/"}, false, "want scheme://host[:port]"},
		{[]string{"https://site.example/player"}, false, "want scheme://host[:port]"},
		{[]string{"ftp://site.example"}, false, "want scheme://host[:port]"},
		{[]string{"https://user@site.example"}, false, "want scheme://host[:port]"},
		{[]string{"https://"}, false, "want scheme://host[:port]"},
		{[]string{"https://site.example?x"}, false, "want scheme://host[:port]"},
	} {
		o, err := NewOrigins(tc.list)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.list, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want %q", tc.list, err, tc.err)
		case err == nil && o.Any() != tc.any:
			t.Errorf("%q: Any %v, want %v", tc.list, o.Any(), tc.any)
		}
	}
	o, _ := NewOrigins([]string{"https://Site.Example:8443"})
	if a := o.answer([]byte("https://site.example:8443")); a.allow != "https://site.example:8443" || !a.varyOrigin {
		t.Errorf("listed in other case: %+v", a)
	}
	if a := o.answer([]byte("https://site.example")); a.allow != "" || !a.varyOrigin {
		t.Errorf("other port: %+v", a)
	}
	if a := o.answer(nil); a.allow != "" || !a.varyOrigin {
		t.Errorf("no Origin: %+v", a)
	}
	if a := (Origins{}).answer([]byte("https://x.example")); a != anyOrigin {
		t.Errorf("any: %+v", a)
	}
	origin := []byte("https://site.example:8443")
	if n := testing.AllocsPerRun(100, func() { o.answer(origin) }); n != 0 {
		t.Errorf("answer allocates %.0f times", n)
	}
}

// The middleware with a list: the listed origin gets its fields and a
// preflight, another gets none (the browser then refuses the page the
// answer), every answer Vary: Origin; an inner CORS (a handler that wraps
// itself) adds nothing.
func TestOriginsMiddleware(t *testing.T) {
	o, err := NewOrigins([]string{"https://site.example"})
	if err != nil {
		t.Fatal(err)
	}
	h := o.middleware(CORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })))
	for _, tc := range []struct {
		method, origin string
		status         int
		allow, expose  string
	}{
		{"GET", "https://site.example", 200, "https://site.example", exposeHeaders},
		{"GET", "https://evil.example", 200, "", ""},
		{"GET", "", 200, "", ""},
		{"OPTIONS", "https://site.example", 204, "https://site.example", ""},
		{"OPTIONS", "https://evil.example", 204, "", ""},
	} {
		req := httptest.NewRequest(tc.method, "/live/x/index.m3u8", nil)
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		hdr := w.Result().Header
		if w.Code != tc.status || hdr.Get("Access-Control-Allow-Origin") != tc.allow ||
			hdr.Get("Access-Control-Expose-Headers") != tc.expose || hdr.Get("Vary") != "Origin" {
			t.Errorf("%s from %q: %d %v", tc.method, tc.origin, w.Code, hdr)
		}
		if m := hdr.Get("Access-Control-Allow-Methods"); (m != "") != (tc.method == "OPTIONS" && tc.allow != "") {
			t.Errorf("%s from %q: Allow-Methods %q", tc.method, tc.origin, m)
		}
		if p := hdr.Get("Accept-Patch"); p != "" {
			t.Errorf("%s of a playlist: Accept-Patch %q", tc.method, p)
		}
	}
	// A WebRTC session's URL takes trickle ICE PATCHes: OPTIONS says so.
	for path, want := range map[string]string{"/live/x/whep/0123abcd": "application/trickle-ice-sdpfrag", "/live/x/whip/0123abcd": "application/trickle-ice-sdpfrag", "/live/x/whep": ""} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("OPTIONS", path, nil))
		if got := w.Result().Header.Get("Accept-Patch"); w.Code != 204 || got != want {
			t.Errorf("OPTIONS %s: %d, Accept-Patch %q, want %q", path, w.Code, got, want)
		}
	}
}
