package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	dto "github.com/prometheus/client_model/go"

	"github.com/fount-live/fount/playlist/playauth"
)

// testCDNSigned is TestCDNEdgeNginx's "signed" case: fount serve
// --play-auth token behind nginx as docs/reverse-proxy.md#signed-urls
// configures it (testdata/nginx/cdn-signed.conf.tmpl), every viewer with a
// token of its own. Viewers must play as without tokens; fount must still
// serve each segment only a few times (one cache entry per object whatever
// the token), answer few /auth requests (the edge caches them), and the
// edge must refuse a cached segment to a request without a valid token for
// its stream. Classic HLS and a short watch: the edge's caching is the same
// for LL-HLS parts, and the unsigned cases measure load.
func testCDNSigned(t *testing.T) {
	src := source(t)
	const (
		watch  = 12 * time.Second
		stream = "live/cdn"
		secret = "cdn-signed-test-secret-0123456789"
	)
	viewers := 50
	if raceDetector {
		viewers = 25
	}
	o := startClassic(t, func(c *config) {
		c.PlayAuth, c.PlaySecret = "token", secret
	})
	signer, err := playauth.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	push := o.push(ctx, t, "cdn", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	defer func() {
		cancel()
		push.Wait()
	}()
	// The test's own requests to fount (these, the tracker) are signed too.
	own := "?" + signer.Query(stream, time.Now().Add(time.Hour))
	awaitPlaylist(t, o.url("/live/cdn/index.m3u8"+own), 20*time.Second, "three segments", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return p.Count() >= 3
	})
	edge := startNginx(t, "cdn-signed.conf.tmpl", o.http)

	// A distinct expiry per viewer gives each its own token, as a site
	// signing a URL per page view would.
	expiry := time.Now().Add(time.Hour)
	query := func(i int) string { return signer.Query(stream, expiry.Add(time.Duration(i)*time.Second)) }
	before := scrape(t, o)
	tracked := trackOrigin(o.url("/live/cdn/index.m3u8"+own), false)
	res := watchThroughEdge(t, edge, false, viewers, watch, query)
	appeared, trackerRequests := tracked()
	after := scrape(t, o)
	delta := func(route string) float64 { return sumRequests(after, route) - sumRequests(before, route) }
	segmentsAtFount := delta("segment")
	authAtFount := delta("other") // /APP/NAME/auth has no route of its own
	playlistsAtFount := delta("playlist") - float64(trackerRequests)

	// As the unsigned classic case judges its viewers (cdn_test.go).
	checkViewers(t, res, appeared, func(v *viewer) time.Duration { return 3*time.Second + 2*slices.Max(append(v.latencies, 0)) })

	// Segment URIs carry the query of the playlist that listed them: each
	// viewer must have got playlists made for its own query, not one
	// cached for another viewer.
	objects := map[string]bool{}
	foreign := 0
	for _, v := range res.viewers {
		for _, u := range v.objects {
			path, q, _ := strings.Cut(u, "?")
			objects[path] = true
			if q != v.query {
				if foreign < 3 {
					t.Errorf("viewer %d (%s) was listed %s: another viewer's playlist", v.id, v.query, u)
				}
				foreign++
			}
		}
	}
	if len(objects) == 0 {
		t.Fatal("viewers downloaded no segment")
	}
	perObject := segmentsAtFount / float64(len(objects))
	lat := res.latencies
	slices.Sort(lat)
	t.Logf("%d viewers with their own tokens for %s through nginx: %d requests (%d playlist, %d segment), latency p50 %s p99 %s",
		viewers, watch, res.requests, res.playlists, res.media, pct(lat, 0.50), pct(lat, 0.99))
	t.Logf("fount served %.0f segment requests for %d distinct segments (%.2f per object), %.0f playlist requests (nginx: %d) and %.0f /auth requests (%.1f per viewer)",
		segmentsAtFount, len(objects), perObject, playlistsAtFount, res.playlists, authAtFount, authAtFount/float64(viewers))
	if foreign > 0 {
		t.Errorf("%d segment URIs carried another viewer's token", foreign)
	}
	if perObject > 3 {
		t.Errorf("fount served %.2f requests per segment, want <= 3: the edge keeps an entry per token", perObject)
	}
	// A viewer's answer holds 10 s at the edge: about two /auth requests
	// per viewer in the watch, against the ~20 requests each makes.
	if authAtFount*4 > float64(res.requests) {
		t.Errorf("fount answered %.0f /auth requests for nginx's %d viewer requests, want far fewer: the edge does not cache them", authAtFount, res.requests)
	}

	// A segment the edge has cached must still need a valid token for its
	// stream: the edge checks before it serves from its cache.
	var seg string
	for _, v := range res.viewers {
		if len(v.objects) > 0 {
			seg, _, _ = strings.Cut(v.objects[len(v.objects)-1], "?")
			break
		}
	}
	url := edge + "/live/cdn/" + seg
	good := signer.Query(stream, time.Now().Add(time.Minute))
	expectHit := func(when string) {
		t.Helper()
		code, cache := edgeGet(t, url+"?"+good)
		if code != 200 || cache != "HIT" {
			t.Fatalf("%s: %s with a good token: %d, X-Cache-Status %q; want 200 from the edge's cache", when, seg, code, cache)
		}
	}
	expectHit("before the refusals")
	tampered := []byte(good) // its last hex digit changed: well-formed, wrong
	if tampered[len(tampered)-1] == '0' {
		tampered[len(tampered)-1] = '1'
	} else {
		tampered[len(tampered)-1] = '0'
	}
	other := "?" + signer.Query("live/other", time.Now().Add(time.Minute))
	for _, c := range []struct{ name, url string }{
		{"no token", url},
		{"an expired token", url + "?" + signer.Query(stream, time.Now().Add(-time.Minute))},
		{"a tampered token", url + "?" + string(tampered)},
		{"another stream's token", url + other},
		// nginx normalises the path before its cache key is made: the
		// stream checked must be the normalised one too.
		{"another stream's token and path", edge + "/live/other/../cdn/" + seg + other},
	} {
		if code, cache := edgeGet(t, c.url); code != http.StatusForbidden {
			t.Errorf("%s with %s: %d (X-Cache-Status %q), want 403 from the edge", seg, c.name, code, cache)
		}
	}
	expectHit("after the refusals") // still cached: the refusals were the edge's check
	t.Logf("fount refused, by reason: %v", deniedByReason(scrape(t, o)))
}

// signed returns url with the viewer's signed-URL query added, if it has
// one.
func (v *viewer) signed(url string) string {
	switch {
	case v.query == "":
		return url
	case strings.Contains(url, "?"):
		return url + "&" + v.query
	}
	return url + "?" + v.query
}

// edgeGet fetches url and returns its status and X-Cache-Status.
func edgeGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Cache-Status")
}

// deniedByReason reads fount_play_denied_total.
func deniedByReason(fams map[string]*dto.MetricFamily) map[string]float64 {
	m := map[string]float64{}
	for _, f := range fams["fount_play_denied_total"].GetMetric() {
		for _, l := range f.GetLabel() {
			if l.GetName() == "reason" {
				m[l.GetValue()] = f.GetCounter().GetValue()
			}
		}
	}
	return m
}
