//go:build unix

package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/playlist"
)

// fetchSpec decodes the OpenAPI document the API serves.
func fetchSpec(t *testing.T, o *origin) map[string]any {
	t.Helper()
	code, raw, _ := httpGet(t, "http://"+o.api+"/api/v1/openapi.json")
	var spec map[string]any
	if code != 200 || json.Unmarshal(raw, &spec) != nil || spec["paths"] == nil {
		t.Fatalf("openapi.json: %d %s", code, raw)
	}
	return spec
}

// TestOpenAPIDocumentsEveryRoute: every API route api.go (and the api_*.go
// files it calls) registers is an operation of the OpenAPI document, and
// every operation there is a route.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	files, err := filepath.Glob("api*.go")
	if err != nil {
		t.Fatal(err)
	}
	var src []byte
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	var spec map[string]any
	if err := json.Unmarshal(openAPISpec, &spec); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	paths := spec["paths"].(map[string]any)
	routes := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(GET|POST|PUT|PATCH|DELETE) (/api/v1/[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
		method, p := strings.ToLower(m[1]), m[2]
		if p == "/api/v1/openapi.json" {
			continue // the document itself
		}
		routes[method+" "+p] = true
		op, _ := paths[p].(map[string]any)
		if _, ok := op[method].(map[string]any); !ok {
			t.Errorf("route %s %s is not in openapi.json", m[1], p)
		}
	}
	for _, want := range []string{"get /api/v1/recordings", "get /api/v1/recordings/{app}/{name}/{id}", "delete /api/v1/recordings/{app}/{name}/{id}"} {
		if !routes[want] {
			t.Errorf("api.go has no route %s", want)
		}
	}
	for p, ops := range paths {
		for method := range ops.(map[string]any) {
			if method != "parameters" && !routes[method+" "+p] {
				t.Errorf("openapi.json documents %s %s, which api.go does not route", strings.ToUpper(method), p)
			}
		}
	}
}

// TestAPIRecordingsWithoutRecord: without --record the recordings are an
// empty list, behind the token like the streams, and names are checked.
func TestAPIRecordingsWithoutRecord(t *testing.T) {
	const token = "rec-t0ken"
	o := startClassic(t, func(c *config) { c.APIToken = token })
	spec := fetchSpec(t, o)
	const one = "/api/v1/recordings/{app}/{name}/{id}"
	apiCall(t, o, spec, "GET", "/api/v1/recordings", "/api/v1/recordings", "", 401)
	apiCall(t, o, spec, "GET", "/api/v1/recordings", "/api/v1/recordings", "wrong", 401)
	if code, body := apiDo(t, o, "GET", "/api/v1/recordings/live/x/20260101T000000Z", ""); code != 401 {
		t.Errorf("GET a recording without the token: %d %s", code, body)
	}
	if code, body := apiDo(t, o, "DELETE", "/api/v1/recordings/live/x/20260101T000000Z", ""); code != 401 {
		t.Errorf("DELETE a recording without the token: %d %s", code, body)
	}
	list := apiCall(t, o, spec, "GET", "/api/v1/recordings", "/api/v1/recordings", token, 200).(map[string]any)
	if recs, ok := list["recordings"].([]any); !ok || len(recs) != 0 || list["http_port"].(float64) == 0 {
		t.Errorf("list without --record: %v", list)
	}
	apiCall(t, o, spec, "GET", "/api/v1/recordings?stream=live/x", "/api/v1/recordings", token, 200)
	for _, bad := range []string{"live", "live/x/y", "live/..", "live/a%20b", "/live/x"} {
		apiCall(t, o, spec, "GET", "/api/v1/recordings?stream="+bad, "/api/v1/recordings", token, 400)
	}
	e := apiCall(t, o, spec, "GET", "/api/v1/recordings/live/x/20260101T000000Z", one, token, 404).(map[string]any)
	if !strings.Contains(e["error"].(string), "no such recording") {
		t.Errorf("404 says %q", e["error"])
	}
	apiCall(t, o, spec, "DELETE", "/api/v1/recordings/live/x/20260101T000000Z", one, token, 404)
	apiCall(t, o, spec, "GET", "/api/v1/recordings/live/x/..hidden", one, token, 400)
	apiCall(t, o, spec, "DELETE", "/api/v1/recordings/live/x/a%3Bb", one, token, 400)
}

// apiDo makes an API request and returns its status and body.
func apiDo(t *testing.T, o *origin, method, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+o.api+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, err = io.Copy(&b, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b.String()
}

// recMetrics checks the recording metrics against want (name{state} →
// value).
func recMetrics(t *testing.T, o *origin, when string, want map[string]float64) {
	t.Helper()
	fams := scrape(t, o)
	for k, v := range want {
		name, state, _ := strings.Cut(strings.TrimSuffix(k, "}"), "{")
		var labels map[string]string
		if state != "" {
			labels = map[string]string{"state": state}
		}
		if got, ok := value(fams, name, labels); !ok || got != v {
			t.Errorf("%s: %s = %v (found %v), want %v", when, k, got, ok, v)
		}
	}
}

// TestE2ERecordingsAPI records a short push on dir: storage and drives the
// recordings API through its life: listed while recording (and not
// deletable), finished once the stream ends, served, deleted with its
// files, and counted in the metrics.
func TestE2ERecordingsAPI(t *testing.T) {
	lockEndToEnd(t)
	src := source(t)
	dir := t.TempDir()
	o := startClassic(t, func(c *config) {
		c.Record, c.Storage, c.ReconnectWindow = true, "dir:"+dir, 2*time.Second
	})
	spec := fetchSpec(t, o)
	const list, one = "/api/v1/recordings", "/api/v1/recordings/{app}/{name}/{id}"
	if recs := apiCall(t, o, spec, "GET", list, list, "", 200).(map[string]any)["recordings"].([]any); len(recs) != 0 {
		t.Fatalf("recordings before any push: %v", recs)
	}
	recMetrics(t, o, "before the push", map[string]float64{
		"fount_recordings{recording}": 0, "fount_recordings{finished}": 0, "fount_recording_bytes": 0,
		"fount_recorded_bytes_total": 0, "fount_recordings_deleted_total": 0, "fount_recording_deleted_bytes_total": 0,
	})

	// 5 s in real time: the recording is made while the test looks.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	started := time.Now().UTC()
	push := o.push(ctx, t, "rec", []string{"-re", "-t", "5", "-i", src}, "-c", "copy")
	pushDone := make(chan error, 1)
	go func() { pushDone <- push.Wait() }()
	defer func() { cancel(); <-pushDone }()

	var rec map[string]any
	deadline := time.Now().Add(15 * time.Second)
	for rec == nil {
		if time.Now().After(deadline) {
			t.Fatal("no recording listed within 15 s of the push")
		}
		time.Sleep(100 * time.Millisecond)
		if recs := apiCall(t, o, spec, "GET", list+"?stream=live/rec", list, "", 200).(map[string]any)["recordings"].([]any); len(recs) > 0 {
			rec = recs[0].(map[string]any)
		}
	}
	id, _ := rec["id"].(string)
	if rec["state"] != "recording" || rec["stream"] != "live/rec" {
		t.Fatalf("recording while the push runs: %v", rec)
	}
	if at, err := time.Parse("20060102T150405Z", id); err != nil || at.Before(started.Truncate(time.Second)) || at.After(started.Add(15*time.Second)) {
		t.Errorf("id %q: not the UTC start time (push started %s): %v", id, started.Format(time.RFC3339), err)
	}
	recPath := "/api/v1/recordings/live/rec/" + id
	e := apiCall(t, o, spec, "DELETE", recPath, one, "", 409).(map[string]any)
	if !strings.Contains(e["error"].(string), "still being made") {
		t.Errorf("409 says %q", e["error"])
	}
	select {
	case err := <-pushDone:
		pushDone <- err
		t.Fatalf("the push ended before the recording was checked while live (the machine is too slow?): %v", err)
	default:
	}
	recMetrics(t, o, "while recording", map[string]float64{"fount_recordings{recording}": 1, "fount_recordings{finished}": 0})
	if got := apiCall(t, o, spec, "GET", list+"?stream=live/other", list, "", 200).(map[string]any)["recordings"].([]any); len(got) != 0 {
		t.Errorf("?stream=live/other lists %v", got)
	}

	// The push ends; the stream ends 2 s later (the reconnect window), and
	// its recording with it.
	if err := <-pushDone; err != nil {
		pushDone <- err
		t.Fatalf("push: %v\n%s", err, push.Stderr.(*syncBuffer).String())
	}
	pushDone <- nil
	deadline = time.Now().Add(20 * time.Second)
	for rec["state"] != "finished" {
		if time.Now().After(deadline) {
			t.Fatalf("the recording did not finish within 20 s of the push: %v", rec)
		}
		time.Sleep(200 * time.Millisecond)
		rec = apiCall(t, o, spec, "GET", recPath, one, "", 200).(map[string]any)
	}
	if s := o.reg.Stream("live/rec"); s != nil && s.State() != playlist.StateEnded {
		t.Errorf("recording finished, stream %s", s.State())
	}
	all := apiCall(t, o, spec, "GET", list, list, "", 200).(map[string]any)
	if recs := all["recordings"].([]any); len(recs) != 1 || recs[0].(map[string]any)["id"] != id {
		t.Fatalf("list after the stream ended: %v", recs)
	}
	segs, bytes := int(rec["segments"].(float64)), int64(rec["bytes"].(float64))
	base := "/live/rec/rec/" + id + "/"
	switch {
	case rec["stream"] != "live/rec", rec["id"] != id, rec["format"] != "ts":
		t.Errorf("recording: %v", rec)
	case segs < 2 || bytes <= 0 || rec["duration"].(float64) < 4 || rec["duration"].(float64) > 6:
		t.Errorf("%d segments, %d bytes, %v s; want the 5 s pushed", segs, bytes, rec["duration"])
	case rec["playlist"] != base+"index.m3u8", rec["download"] != base+"recording.ts":
		t.Errorf("playlist %v, download %v", rec["playlist"], rec["download"])
	case rec["discontinuities"].(float64) != 0 || rec["missing"] != nil || rec["renditions"] != nil:
		t.Errorf("recording: %v", rec)
	}
	if st, en := rec["start"].(string), rec["end"].(string); !strings.HasSuffix(st, "Z") || !strings.HasSuffix(en, "Z") || en <= st {
		t.Errorf("start %s, end %s", st, en)
	}

	// The paths play on the viewer port, and name stored objects.
	code, body, _ := httpGet(t, o.url(base+"index.m3u8"))
	if code != 200 || !strings.Contains(string(body), "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.Contains(string(body), "#EXT-X-ENDLIST") {
		t.Fatalf("recording playlist: %d\n%s", code, body)
	}
	pl, lt, err := m3u8.DecodeFrom(strings.NewReader(string(body)), true)
	if err != nil || lt != m3u8.MEDIA {
		t.Fatalf("recording playlist: %v", err)
	}
	var files []string
	for _, s := range segments(pl.(*m3u8.MediaPlaylist)) {
		files = append(files, filepath.Join(dir, filepath.FromSlash(path.Join("live/rec/rec", id, s.URI))))
	}
	files = append(files, filepath.Join(dir, "live/rec/rec", id, "index.m3u8"), filepath.Join(dir, "live/rec/rec", id, "recording.json"))
	if len(files)-2 != segs {
		t.Errorf("the playlist lists %d segments, the API %d", len(files)-2, segs)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("before DELETE: %v", err)
		}
	}
	if code, body, _ := httpGet(t, o.url(base+"recording.ts")); code != 200 || int64(len(body)) != bytes {
		t.Errorf("recording.ts: %d, %d bytes, want %d", code, len(body), bytes)
	}
	recMetrics(t, o, "finished", map[string]float64{
		"fount_recordings{recording}": 0, "fount_recordings{finished}": 1, "fount_recording_bytes": float64(bytes),
		"fount_recorded_bytes_total": float64(bytes), "fount_recordings_deleted_total": 0,
	})

	// Storage that fails part way (a segment's key is a directory that
	// cannot be removed): 500 in one line, and the recording stays listed.
	blocker := files[len(files)-3] // the last segment
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	e = apiCall(t, o, spec, "DELETE", recPath, one, "", 500).(map[string]any)
	if msg := e["error"].(string); !strings.Contains(msg, "delete it again") || strings.Contains(msg, "\n") {
		t.Errorf("500 says %q", msg)
	}
	apiCall(t, o, spec, "GET", recPath, one, "", 200)
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}

	apiCall(t, o, spec, "DELETE", recPath, one, "", 204)
	apiCall(t, o, spec, "GET", recPath, one, "", 404)
	apiCall(t, o, spec, "DELETE", recPath, one, "", 404)
	if recs := apiCall(t, o, spec, "GET", list, list, "", 200).(map[string]any)["recordings"].([]any); len(recs) != 0 {
		t.Errorf("list after DELETE: %v", recs)
	}
	for _, f := range files {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("after DELETE, %s: %v", f, err)
		}
	}
	if code, _, _ := httpGet(t, o.url(base+"index.m3u8")); code != 404 {
		t.Errorf("recording playlist after DELETE: %d", code)
	}
	recMetrics(t, o, "deleted", map[string]float64{
		"fount_recordings{recording}": 0, "fount_recordings{finished}": 0, "fount_recording_bytes": 0,
		"fount_recorded_bytes_total": float64(bytes), "fount_recordings_deleted_total": 1,
		"fount_recording_deleted_bytes_total": float64(bytes),
	})
}

// recPageScript drives the operator page's recordings in chromium, with
// testdata/browser's harness (imported by its path: this script is
// written to a temporary file, the harness resolves playwright-core from
// its own directory). It waits for the first recording row in the element
// matching CONTAINER, clicks its Play button, waits for the player to play
// from the recording playlist, and prints what it saw as one JSON line.
//
//	node SCRIPT HARNESS_URL PAGE_URL CONTAINER TOKEN
const recPageScript = `
const [harnessURL, pageURL, container, token] = process.argv.slice(2);
const { harness } = await import(harnessURL);
const result = {
  harnessError: '', rows: 0, id: '', state: '', duration: '', size: '', download: '',
  playing: '', requested: [], currentTime: null, videoDuration: null, paused: null,
  muted: null, consoleErrors: [], pageErrors: [],
};
const h = harness(result);
async function main() {
  const page = await h.launch();
  page.on('console', (m) => { if (m.type() === 'error') result.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => result.pageErrors.push(e.message));
  page.on('request', (r) => { if (r.url().includes('/rec/')) result.requested.push(r.url()); });
  await page.goto(pageURL, { timeout: 15000 });
  if (token) {
    await page.waitForSelector('#auth:not([hidden])', { timeout: 20000 });
    await page.fill('#token', token);
    await page.click('#auth button[type=submit]');
  }
  const row = container + ' [data-recording]';
  try {
    await page.waitForSelector(row, { timeout: 20000 });
  } catch (e) {
    result.harnessError = 'no recording row in ' + container + ' within 20 s';
    return;
  }
  Object.assign(result, await page.evaluate((sel) => {
    const r = document.querySelector(sel);
    const text = (q) => r.querySelector(q).textContent.trim();
    return {
      rows: document.querySelectorAll(sel).length,
      id: text('.rec-id'), state: text('.rec-state'), duration: text('.rec-duration'), size: text('.rec-size'),
      download: r.querySelector('.rec-download').href,
    };
  }, row));
  await page.click(row + ' .rec-play');
  try {
    await page.waitForFunction((sel) => {
      const v = document.querySelector(sel + ' [data-player]');
      return v && !v.hidden && v.currentTime > 1 && !v.paused;
    }, container, { timeout: 20000, polling: 100 });
  } catch (e) {
    result.harnessError = 'the recording did not play 1 s within 20 s';
  }
  Object.assign(result, await page.evaluate((sel) => {
    const c = document.querySelector(sel);
    const v = c.querySelector('[data-player]');
    const p = c.querySelector('.rec-playing');
    return {
      playing: p && !p.hidden ? p.textContent.trim() : '',
      currentTime: v.currentTime, videoDuration: isFinite(v.duration) ? v.duration : -1, paused: v.paused, muted: v.muted,
    };
  }, container));
}
await h.run(main, 60);
`

// recPageReport is the line recPageScript prints.
type recPageReport struct {
	HarnessError  string   `json:"harnessError"`
	Rows          int      `json:"rows"`
	ID            string   `json:"id"`
	State         string   `json:"state"`
	Duration      string   `json:"duration"`
	Size          string   `json:"size"`
	Download      string   `json:"download"`
	Playing       string   `json:"playing"`
	Requested     []string `json:"requested"`
	CurrentTime   *float64 `json:"currentTime"`
	VideoDuration *float64 `json:"videoDuration"`
	Paused        *bool    `json:"paused"`
	Muted         *bool    `json:"muted"`
	ConsoleErrors []string `json:"consoleErrors"`
	PageErrors    []string `json:"pageErrors"`
}

// TestWebPageRecordings records a short push and plays the recording from
// the operator page in chromium: in its stream's card while the ended
// stream is still listed (the real API), and in a card of its own once the
// stream is gone (the streams API answering none).
func TestWebPageRecordings(t *testing.T) {
	lockEndToEnd(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	src := source(t)
	browserDeps(t)
	const token = "rec-page-token"
	dir := t.TempDir()
	o := startOrigin(t, func(c *config) {
		llConfig(c)
		c.Record, c.Storage, c.ReconnectWindow, c.APIToken = true, "dir:"+dir, time.Second, token
	})
	o.pushWait(t, "recpage", []string{"-t", "6", "-i", src}, "-c", "copy")
	var rec playlist.Recording
	deadline := time.Now().Add(20 * time.Second)
	for rec.State != "finished" {
		if time.Now().After(deadline) {
			t.Fatalf("no finished recording within 20 s of the push: %+v", rec)
		}
		time.Sleep(100 * time.Millisecond)
		if recs := o.reg.Recordings("live/recpage"); len(recs) == 1 {
			rec = recs[0]
		}
	}
	script := filepath.Join(t.TempDir(), "recpage.mjs")
	if err := os.WriteFile(script, []byte(recPageScript), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Join(browserDir, "harness.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	harnessURL := (&url.URL{Scheme: "file", Path: abs}).String()

	check := func(where string, r recPageReport, line string) {
		t.Helper()
		failed := false
		fail := func(format string, args ...any) { t.Errorf(where+": "+format, args...); failed = true }
		if r.HarnessError != "" {
			fail("%s", r.HarnessError)
		}
		if r.Rows != 1 || r.ID != rec.ID || !strings.EqualFold(r.State, "finished") {
			fail("%d rows, first %q %q; want one, %s finished", r.Rows, r.ID, r.State, rec.ID)
		}
		if r.Duration != "0:06" && r.Duration != "0:05" || !strings.HasSuffix(r.Size, "B") {
			fail("duration %q, size %q; want about 0:06 and a size", r.Duration, r.Size)
		}
		if r.Download != o.url(rec.Download) {
			fail("download link %q, want %q", r.Download, o.url(rec.Download))
		}
		if !strings.Contains(r.Playing, rec.ID) {
			fail("the card does not say it plays %s: %q", rec.ID, r.Playing)
		}
		if len(r.Requested) == 0 || r.Requested[0] != o.url(rec.Playlist) {
			fail("the player's requests under rec/: %v, want %s first", r.Requested, o.url(rec.Playlist))
		}
		if r.CurrentTime == nil || *r.CurrentTime <= 1 || r.Paused == nil || *r.Paused {
			fail("player at %v s, paused %v", deref(r.CurrentTime), r.Paused)
		}
		if r.VideoDuration == nil || *r.VideoDuration < rec.Duration-1 || *r.VideoDuration > rec.Duration+1 {
			fail("the player's duration %v s, want the recording's %.3f s (VOD)", deref(r.VideoDuration), rec.Duration)
		}
		if r.Muted == nil || *r.Muted {
			fail("the recording plays muted")
		}
		for _, e := range r.PageErrors {
			fail("page error: %s", e)
		}
		for _, e := range r.ConsoleErrors {
			if !strings.Contains(e, "401") { // the first poll, before the token
				fail("console error: %s", e)
			}
		}
		if failed || testing.Verbose() {
			t.Logf("%s: %s", where, line)
		}
	}

	// The ended stream is listed for a minute: its card lists the recording.
	r, line := runNodeScript[recPageReport](t, 90*time.Second, script, harnessURL, "http://"+o.api+"/", `[data-stream="live/recpage"]`, token)
	check("stream card", r, line)

	// A stream gone from the API: its recordings get a card of their own.
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: o.api})
	_, port, _ := net.SplitHostPort(o.http)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/streams", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"http_port": `+port+`, "streams": []}`)
	})
	mux.Handle("/api/v1/recordings", proxy)
	mux.Handle("/", webHandler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	r, line = runNodeScript[recPageReport](t, 90*time.Second, script, harnessURL, "http://"+ln.Addr().String()+"/", `[data-recordings-of="live/recpage"]`, token)
	check("past stream", r, line)
}
