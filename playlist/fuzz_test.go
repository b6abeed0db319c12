package playlist

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/fount-live/fount/storage"
)

// FuzzParseDirectives checks the LL-HLS query parsing (_HLS_msn, _HLS_part,
// _HLS_skip) and the part name parsing against what they promise.
func FuzzParseDirectives(f *testing.F) {
	for _, s := range []struct{ q, file string }{
		{"_HLS_msn=12&_HLS_part=3", "seg12.3.m4s"},
		{"_HLS_msn=12", "seg12.m4s"},
		{"_HLS_msn=4&_HLS_part=0&_HLS_skip=YES", "seg4.0.ts"},
		{"_HLS_skip=v2", "init0.mp4"},
		{"_HLS_part=1", "seg.1.m4s"},
		{"_HLS_msn=-1", "seg-1.0.m4s"},
		{"_HLS_msn=9223372036854775808&_HLS_part=2147483648", "seg9223372036854775807.2147483647.m4s"},
		{"_HLS_msn=1&_HLS_msn=2&_HLS_part=%31", "seg01.+1.m4s"},
		{"_HLS_skip=yes&a=%zz;b", "index.m3u8"},
		{"_HLS_msn=&_HLS_msn=3&&=&_HLS_part", "seg3.m4s"},
		{"_HLS_msn=3=4&_HLS_part=01&_HLS_skip=YES&_HLS_skip=no", "seg3.1.m4s"},
	} {
		f.Add(s.q, s.file)
	}
	f.Fuzz(func(t *testing.T, raw, file string) {
		q, _ := url.ParseQuery(raw) // as req.URL.Query(): errors dropped, the rest kept
		br, blocking, msg := parseDirectives(q)
		// The loops read a plain query (name bytes, '=' and '&': what
		// httploop passes) raw, and must read it as net/url does.
		if plainQuery(raw) {
			rbr, rblocking, rmsg := parseDirectives(rawQuery(raw))
			if rbr != br || rblocking != blocking || rmsg != msg {
				t.Fatalf("%q: raw %+v %v %q, net/url %+v %v %q", raw, rbr, rblocking, rmsg, br, blocking, msg)
			}
		}
		msnStr, partStr, skipStr := q.Get("_HLS_msn"), q.Get("_HLS_part"), q.Get("_HLS_skip")
		if br.part < -1 {
			t.Fatalf("part %d", br.part)
		}
		if msg != "" && blocking {
			t.Fatalf("rejected (%q) yet blocking", msg)
		}
		if skipStr != "" && skipStr != "YES" && skipStr != "v2" && msg == "" {
			t.Fatalf("_HLS_skip=%q accepted", skipStr)
		}
		if msg == "" && br.skip != (skipStr != "") {
			t.Fatalf("_HLS_skip=%q parsed as skip=%v", skipStr, br.skip)
		}
		if partStr != "" && msnStr == "" && msg == "" {
			t.Fatal("_HLS_part without _HLS_msn accepted")
		}
		if blocking {
			msn, err := strconv.ParseUint(msnStr, 10, 63)
			if err != nil || msn != br.msn {
				t.Fatalf("blocking on msn %d from %q", br.msn, msnStr)
			}
			if (partStr == "") != (br.part == -1) {
				t.Fatalf("part %d from %q", br.part, partStr)
			}
		} else if msg == "" && (br.msn != 0 || br.part != -1 || msnStr != "") {
			t.Fatalf("not blocking, not rejected, yet %+v from %q", br, raw)
		}

		msn, idx, ok := parsePartName(file)
		if !ok {
			return
		}
		if idx < 0 || msn >= 1<<63 || file[:3] != "seg" {
			t.Fatalf("%q parsed as msn %d part %d", file, msn, idx)
		}
		name := fmt.Sprintf("seg%d.%d.m4s", msn, idx)
		if m2, i2, ok2 := parsePartName(name); !ok2 || m2 != msn || i2 != idx {
			t.Fatalf("%q does not round-trip: %d %d %v", name, m2, i2, ok2)
		}
	})
}

// fuzzRegistries are an LL-HLS fMP4 registry and a classic MPEG-TS one,
// each with one small live stream, for FuzzHandler.
func fuzzRegistries(t testing.TB) [2]http.Handler {
	clk := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	ll := NewRegistry(Config{
		Store: storage.NewMemory(), TargetDuration: 2 * time.Second, WindowSize: 3,
		FMP4: true, PartTarget: 200 * time.Millisecond,
		BlockTimeout: time.Microsecond, // a request that waits times out at once: fuzzing stays fast
		Now:          clk.Now,
	})
	s, err := ll.Publish("live/ll")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Init([]byte("ftypmoov")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for j := 0; j < 5; j++ {
			if err := s.Part(Part{Data: []byte(fmt.Sprintf("part %d.%d", i, j)), Duration: 200 * time.Millisecond, Independent: j == 0}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Segment(Segment{Data: []byte(fmt.Sprintf("segment %d", i)), Duration: time.Second, ProgramDateTime: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Second)
	}
	if err := s.Part(Part{Data: []byte("open part"), Duration: 200 * time.Millisecond, Independent: true}); err != nil {
		t.Fatal(err)
	}

	classic := NewRegistry(Config{Store: storage.NewMemory(), TargetDuration: 2 * time.Second, WindowSize: 3, Now: clk.Now})
	s, err = classic.Publish("live/ts")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if err := s.Segment(Segment{Data: []byte(fmt.Sprintf("ts %d", i)), Duration: 2 * time.Second, ProgramDateTime: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Second)
	}
	if _, err := classic.Publish("live/empty"); err != nil { // published, nothing finished yet
		t.Fatal(err)
	}
	return [2]http.Handler{ll.Handler(), classic.Handler()}
}

// FuzzHandler sends arbitrary paths and queries to the HTTP handler: it
// must never panic and never answer anything but 200, 204 (OPTIONS), 400,
// 404 or 503 — in particular never 500.
func FuzzHandler(f *testing.F) {
	for _, s := range []struct {
		sel         uint8
		path, query string
	}{
		{0, "/live/ll/index.m3u8", ""},
		{0, "/live/ll/index.m3u8", "_HLS_msn=2&_HLS_part=1"},
		{0, "/live/ll/index.m3u8", "_HLS_msn=3&_HLS_part=1"}, // waits, times out
		{0, "/live/ll/index.m3u8", "_HLS_msn=9&_HLS_part=0"}, // too far ahead
		{0, "/live/ll/index.m3u8", "_HLS_skip=YES"},
		{0, "/live/ll/index.m3u8", "_HLS_part=1"},
		{0, "/live/ll/seg1.2.m4s", ""},
		{0, "/live/ll/seg3.1.m4s", ""}, // the preload hint: waits, times out
		{0, "/live/ll/seg7.0.m4s", ""},
		{0, "/live/ll/seg2.m4s", ""},
		{0, "/live/ll/init0.mp4", ""},
		{2, "/live/ll/init0.mp4", ""},
		{4, "/live/ll/index.m3u8", ""},
		{1, "/live/ts/index.m3u8", "_HLS_msn=1"},
		{1, "/live/ts/seg1.ts", ""},
		{3, "/live/ts/seg0.ts", ""},
		{1, "/live/empty/index.m3u8", ""},
		{1, "/live/ts/../ts/index.m3u8", ""},
		{0, "//live/ll/index.m3u8", ""},
		{1, "/live/ts/", ""},
	} {
		f.Add(s.sel, s.path, s.query)
	}
	h := fuzzRegistries(f)
	methods := []string{http.MethodGet, http.MethodHead, http.MethodOptions}
	f.Fuzz(func(t *testing.T, sel uint8, path, query string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Method = methods[int(sel>>1)%len(methods)]
		req.URL.Path, req.URL.RawQuery = path, query
		rec := httptest.NewRecorder()
		h[sel&1].ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusServiceUnavailable:
		case http.StatusNoContent:
			if req.Method != http.MethodOptions {
				t.Fatalf("%s %q?%q: 204", req.Method, path, query)
			}
		default:
			t.Fatalf("%s %q?%q: status %d: %s", req.Method, path, query, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK && req.Method == http.MethodGet {
			if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
				t.Fatalf("%q: Content-Length %q for %d bytes", path, cl, rec.Body.Len())
			}
		}
	})
}

// plainQuery reports a query of the bytes httploop lets through raw.
func plainQuery(q string) bool {
	for _, c := range []byte(q) {
		if !(c == '=' || c == '&' || c == '-' || c == '.' || c == '_' ||
			'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
