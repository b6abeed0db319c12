package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics from the API port and parses it as Prometheus
// does.
func scrape(t *testing.T, o *origin) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, hdr := httpGet(t, "http://"+o.api+"/metrics")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %q", code, hdr.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

func TestE2EMetricsAndHealth(t *testing.T) {
	src := source(t)
	dir := t.TempDir()
	o := startOrigin(t, func(c *config) { c.Storage = "dir:" + dir })
	for _, base := range []string{"http://" + o.http, "http://" + o.api} {
		for _, p := range []string{"/healthz", "/readyz"} {
			if code, body, _ := httpGet(t, base+p); code != 200 {
				t.Errorf("%s%s: %d %s", base, p, code, body)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	push := o.push(ctx, t, "m", []string{"-re", "-t", "6", "-i", src}, "-c", "copy")
	url := o.url("/live/m/index.m3u8")
	awaitPlaylist(t, url, 10*time.Second, "a segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })
	refused := o.push(ctx, t, "m", []string{"-re", "-t", "2", "-i", src}, "-c", "copy")
	if refused.Wait() == nil {
		t.Error("second publisher accepted")
	}

	fams := scrape(t, o)
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
		max    float64
	}{
		{"fount_streams", map[string]string{"state": "live"}, 1, 1},
		{"fount_publishes_total", map[string]string{"result": "accepted"}, 1, 1},
		{"fount_publishes_total", map[string]string{"result": "refused"}, 1, 1},
		{"fount_rtmp_connections", nil, 1, 1},
		{"fount_ingest_bytes_total", nil, 10000, 1e12},
		{"fount_segments_total", nil, 1, 1e9},
		{"fount_parts_total", nil, 5, 1e9},
		{"fount_http_requests_total", map[string]string{"route": "playlist", "code": "200"}, 1, 1e9},
		{"fount_http_response_bytes_total", nil, 100, 1e12},
		{"fount_stream_ingest_bytes_total", map[string]string{"stream": "live/m"}, 10000, 1e12},
		{"fount_stream_av_skew_seconds", map[string]string{"stream": "live/m"}, -1, 1},
		{"fount_errors_total", map[string]string{"kind": "storage"}, 0, 0},
		{"go_goroutines", nil, 1, 1e6},
		{"process_resident_memory_bytes", nil, 1, 1e12},
	} {
		v, ok := value(fams, c.name, c.labels)
		if !ok || v < c.min || v > c.max {
			t.Errorf("%s%v = %v (found %v), want in [%v, %v]", c.name, c.labels, v, ok, c.min, c.max)
		}
	}
	if err := push.Wait(); err != nil {
		t.Fatalf("push: %v", err)
	}

	// Storage that stops accepting writes makes /readyz fail on both ports.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"http://" + o.http, "http://" + o.api} {
		if code, body, _ := httpGet(t, base+"/readyz"); code != 503 || !strings.Contains(string(body), "storage") {
			t.Errorf("%s/readyz with broken storage: %d %s", base, code, body)
		}
	}
}

// route labels the paths of the whole viewer port; anything that is not
// a stream's object or a health check is "other".
func TestRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/healthz":                                      "health",
		"/readyz":                                       "health",
		"/live/x/index.m3u8":                            "playlist",
		"/live/x/v0/index.m3u8":                         "playlist",
		"/live/x/iframes.m3u8":                          "playlist",
		"/live/x/init0.mp4":                             "init",
		"/live/x/v0/init1.mp4":                          "init",
		"/live/x/seg12.3.m4s":                           "part",
		"/live/x/seg12.m4s":                             "segment",
		"/live/x/v0/seg12.ts":                           "segment",
		"/live/x/keys/1.key":                            "other",
		"/live/x/rec/20261201T231313Z/index.m3u8":       "recording",
		"/live/x/v0/rec/20261201T231313Z/recording.mp4": "recording",
		"/live/x/rec/20261201T231313Z/../index.m3u8":    "other",
		"/live/x/whep":                                  "whep",
		"/live/x/whip":                                  "whip",
		"/live/x/whep/0123456789abcdef0123456789abcdef": "whep",
		"/live/x/whip/0123456789abcdef0123456789abcdef": "whip",
		"/live/x/whip/short":                            "other",
		"/":                                             "other",
		"/favicon.ico":                                  "other",
		"/index.m3u8":                                   "other",
		"/live/index.m3u8":                              "other",
		"/live/x/../y/index.m3u8":                       "other",
		"/a/b/c/d/index.m3u8":                           "other",
		"live/x/index.m3u8":                             "other",
		"/live/x/index.m3u8/extra/":                     "other",
	} {
		if got := route(path); got != want {
			t.Errorf("route(%q) = %q, want %q", path, got, want)
		}
	}
}

// Counting a request the viewer port's loops answered (a 200 of a known
// route) costs no allocation: the loops answer without any.
func TestObserveAllocs(t *testing.T) {
	m := newMetrics(nil, nil, nil, nil)
	for _, p := range []string{"/live/a/index.m3u8", "/live/a/seg12.ts", "/live/a/v1/seg12.3.m4s", "/live/a/init0.mp4"} {
		path := []byte(p)
		if n := testing.AllocsPerRun(100, func() { m.observe(path, 200, 1000) }); n != 0 {
			t.Errorf("%s: %v allocations", p, n)
		}
	}
	if r := route("/live/a/seg12.3.m4s"); r != "part" {
		t.Errorf("route %q", r)
	}
}
