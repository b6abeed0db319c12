package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/storage"
)

// cueAPIFixture is the API over one stream, live/show, with two 2 s
// segments and a publisher whose latest frame is at 3.9 s: no RTMP, no
// segmenter, so the handlers and the playlist are tested alone.
type cueAPIFixture struct {
	st  *playlist.Stream
	reg *playlist.Registry
	mux *http.ServeMux
	t0  time.Time
}

func newCueAPIFixture(t *testing.T) *cueAPIFixture {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	reg := playlist.NewRegistry(playlist.Config{Store: storage.NewMemory(), TargetDuration: 2 * time.Second, WindowSize: 6, Logger: log})
	st, err := reg.Publish("live/show")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Unpublish)
	f := &cueAPIFixture{st: st, reg: reg, t0: time.Now().Add(-4 * time.Second).Truncate(time.Millisecond)}
	f.segments(t, 0, 2)
	pub := &publisher{reg: reg, log: log, sessions: map[string]*session{}}
	s := &session{pub: pub, stream: st, log: log}
	s.lastPTS.Store(int64(3900 * time.Millisecond))
	s.haveFrame.Store(true)
	pub.sessions["live/show"] = s
	a := &api{reg: reg, pub: pub}
	f.mux = http.NewServeMux()
	f.mux.HandleFunc("POST /api/v1/streams/{app}/{name}/interstitials", a.postInterstitial)
	return f
}

// segments adds n 2 s segments from the first-th on, each presented at
// 2·i s and dated t0 + 2·i s.
func (f *cueAPIFixture) segments(t *testing.T, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		at := time.Duration(i) * 2 * time.Second
		if err := f.st.Segment(playlist.Segment{Data: []byte("segment"), Duration: 2 * time.Second, ProgramDateTime: f.t0.Add(at), Start: at, StartPTS: at}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *cueAPIFixture) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
	return rec.Code, rec.Body.String()
}

func (f *cueAPIFixture) playlist(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	f.reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/live/show/index.m3u8", nil))
	if rec.Code != 200 {
		t.Fatalf("playlist: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestInterstitialAPIRendering: an interstitial posted with every field
// becomes, on the first segment presented after "now", one
// EXT-X-DATERANGE with CLASS, START-DATE (that segment's PDT), DURATION
// and the X- attributes typed as Apple's interstitials spec has them:
// X-ASSET-URI and X-RESTRICT quoted-strings, X-RESUME-OFFSET a
// decimal-floating-point; an ID with a backslash is written as it is (a
// quoted-string has no escapes).
func TestInterstitialAPIRendering(t *testing.T) {
	f := newCueAPIFixture(t)
	const path = "/api/v1/streams/live/show/interstitials"
	code, body := f.post(t, path, `{"id":"ad\\1","asset_uri":"https://ads.example/spot/index.m3u8?c=1,2","duration":4.5,"resume_offset":0,"restrict":"SKIP,JUMP"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	var ans apiInterstitial
	if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.ID != `ad\1` || ans.DuePTS < 3.9 || ans.DuePTS > 3.91 {
		t.Fatalf("answer %s (%v)", body, err)
	}
	// A second one with an asset list, no duration, no resume offset.
	if code, body := f.post(t, path, `{"id":"list","asset_list":"/ads/list.json"}`); code != http.StatusAccepted {
		t.Fatalf("POST asset_list: %d %s", code, body)
	}
	if code, body := f.post(t, path, `{"id":"list","asset_uri":"/a.m3u8"}`); code != http.StatusConflict {
		t.Errorf("a listed ID again: %d %s", code, body)
	}
	f.segments(t, 2, 1) // presented at 4 s: it takes both
	pdt := f.t0.Add(4 * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
	want := `#EXT-X-DATERANGE:ID="ad\1",CLASS="com.apple.hls.interstitial",START-DATE="` + pdt + `",DURATION=4.500,` +
		`X-ASSET-URI="https://ads.example/spot/index.m3u8?c=1,2",X-RESUME-OFFSET=0.000,X-RESTRICT="SKIP,JUMP"` + "\n" +
		`#EXT-X-DATERANGE:ID="list",CLASS="com.apple.hls.interstitial",START-DATE="` + pdt + `",X-ASSET-LIST="/ads/list.json"` + "\n" +
		"#EXT-X-PROGRAM-DATE-TIME:" + pdt + "\n#EXTINF:2.000,\nseg2."
	pl := f.playlist(t)
	if !strings.Contains(pl, want) {
		t.Fatalf("want\n%s\nin\n%s", want, pl)
	}
	// Exactly one of the asset attributes per tag.
	for _, l := range regexp.MustCompile(`(?m)^#EXT-X-DATERANGE:.*$`).FindAllString(pl, -1) {
		if n := strings.Count(l, ",X-ASSET-URI=") + strings.Count(l, ",X-ASSET-LIST="); n != 1 {
			t.Errorf("%d asset attributes in %s", n, l)
		}
	}
	if st := f.st.Cues(); st.LastCue == nil || st.LastCue.Kind != "interstitial" || st.LastCue.MediaSequence != 2 || st.OpenBreak != nil {
		t.Errorf("cue state %+v", st)
	}
}

// TestInterstitialAPIValidation: a request the tag cannot carry is
// refused with 400 and a reason, and nothing is queued.
func TestInterstitialAPIValidation(t *testing.T) {
	f := newCueAPIFixture(t)
	past := f.t0.Add(time.Second).UTC().Format(time.RFC3339Nano)
	for _, tc := range []struct{ body, reason string }{
		{`{}`, "one of asset_uri and asset_list"},
		{`{"asset_uri":"/a.m3u8","asset_list":"/l.json"}`, "one of asset_uri and asset_list"},
		{`{"asset_uri":"/a\".m3u8"}`, "without quotes"},
		{`{"asset_uri":"/a\n.m3u8"}`, "line breaks"},
		{`{"asset_list":"ftp://x/l.json"}`, "http(s) URL"},
		{`{"asset_uri":"/a.m3u8","duration":-1}`, "duration must be"},
		{`{"asset_uri":"/a.m3u8","duration":90000}`, "duration must be"},
		{`{"asset_uri":"/a.m3u8","resume_offset":-0.5}`, "resume_offset must be"},
		{`{"asset_uri":"/a.m3u8","restrict":"SKIP,SEEK"}`, "restrict is a list"},
		{`{"asset_uri":"/a.m3u8","restrict":"SKIP, JUMP"}`, "restrict is a list"},
		{`{"asset_uri":"/a.m3u8","restrict":"JUMP,JUMP"}`, "restrict is a list"},
		{`{"asset_uri":"/a.m3u8","restrict":"SKIP,"}`, "restrict is a list"},
		{`{"asset_uri":"/a.m3u8","id":"a\"b"}`, "id:"},
		{`{"asset_uri":"/a.m3u8","id":"` + strings.Repeat("x", 129) + `"}`, "id:"},
		{`{"asset_uri":"/a.m3u8","at":"` + past + `"}`, "before the live edge"},
		{`{"asset_uri":"/a.m3u8","asset":"x"}`, "unknown field"},
		{`{"asset_uri":"/a.m3u8","duration":"4"}`, "request body"},
	} {
		code, body := f.post(t, "/api/v1/streams/live/show/interstitials", tc.body)
		var e apiError
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tc.reason) {
			t.Errorf("%s: %d %s, want 400 saying %q", tc.body, code, body, tc.reason)
		}
	}
	if code, body := f.post(t, "/api/v1/streams/live/gone/interstitials", `{"asset_uri":"/a.m3u8"}`); code != http.StatusNotFound {
		t.Errorf("no such stream: %d %s", code, body)
	}
	if st := f.st.Cues(); st.Pending != 0 {
		t.Errorf("%d cues queued by refused requests", st.Pending)
	}
}
