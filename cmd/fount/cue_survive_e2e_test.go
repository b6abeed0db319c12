package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Comcast/scte35-go/pkg/scte35"
	"github.com/grafov/m3u8"
)

// Issue 17 §1: an open ad break survives what interrupts the stream — an
// encoder reconnect, a restart of fount and a handover — and ends when an
// "in" cue comes after it. These tests push the recorded source with
// -c copy (2 s GOP) and --ad-markers both, so that each segment says by
// its EXT-X-CUE-OUT-CONT whether it is in the break.

// cueSeg is a media segment of a playlist as a break-aware player reads it.
type cueSeg struct {
	uri     string
	disc    bool    // EXT-X-DISCONTINUITY before it
	tag     string  // OUT, CONT, IN or ""
	elapsed float64 // CUE-OUT-CONT ElapsedTime
	pdt     time.Time
}

// cueSegments reads the segments of a media playlist with their cue tags;
// parts and hints are not segments and are skipped.
func cueSegments(body []byte) []cueSeg {
	var out []cueSeg
	var cur cueSeg
	for _, l := range strings.Split(string(body), "\n") {
		switch {
		case l == "#EXT-X-DISCONTINUITY":
			cur.disc = true
		case strings.HasPrefix(l, "#EXT-X-CUE-OUT-CONT:"):
			cur.tag = "CONT"
			for _, a := range strings.Split(strings.TrimPrefix(l, "#EXT-X-CUE-OUT-CONT:"), ",") {
				if v, ok := strings.CutPrefix(a, "ElapsedTime="); ok {
					cur.elapsed, _ = strconv.ParseFloat(v, 64)
				}
			}
		case strings.HasPrefix(l, "#EXT-X-CUE-OUT"):
			cur.tag = "OUT"
		case l == "#EXT-X-CUE-IN":
			cur.tag = "IN"
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
			cur.pdt, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"))
		case l != "" && !strings.HasPrefix(l, "#"):
			cur.uri = l
			out = append(out, cur)
			cur = cueSeg{}
		}
	}
	return out
}

// afterLastDisc returns the segments after the last discontinuity (those of
// the encoder's latest connection), or nil if there is none.
func afterLastDisc(segs []cueSeg) []cueSeg {
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].disc {
			return segs[i:]
		}
	}
	return nil
}

// dateRangeAttrs returns the attributes of the EXT-X-DATERANGE with this
// ID (nil if it is not listed). fount's IDs and values here hold no comma.
func dateRangeAttrs(body []byte, id string) map[string]string {
	prefix := `#EXT-X-DATERANGE:ID="` + id + `",`
	for _, l := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok {
			continue
		}
		m := map[string]string{"ID": id}
		for _, a := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(a, "=")
			m[k] = strings.Trim(v, `"`)
		}
		return m
	}
	return nil
}

// apiSpec is the API's OpenAPI description (the one it serves), which
// apiPost checks answers against.
func apiSpec(t *testing.T) map[string]any {
	t.Helper()
	var spec map[string]any
	if err := json.Unmarshal(openAPISpec, &spec); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return spec
}

// apiBreak is what GET /api/v1/streams/APP/NAME says of a stream's cues.
type apiBreak struct {
	Cues struct {
		OpenBreak *struct {
			ID        string    `json:"id"`
			StartDate time.Time `json:"start_date"`
			Elapsed   float64   `json:"elapsed"`
		} `json:"open_break"`
		LastCue *struct {
			ID     string `json:"id"`
			Type   string `json:"type"`
			Source string `json:"source"`
		} `json:"last_cue"`
	} `json:"cues"`
}

func streamCues(t *testing.T, o *origin, path string) apiBreak {
	t.Helper()
	code, raw, _ := httpGet(t, "http://"+o.api+"/api/v1/streams/"+path)
	var st apiBreak
	if code != 200 {
		t.Fatalf("GET stream %s: %d %s", path, code, raw)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("GET stream %s: %v: %s", path, err, raw)
	}
	return st
}

const cuesPath = "/api/v1/streams/{app}/{name}/cues"

// openBreak posts an "out" cue to live/name and waits for its
// EXT-X-DATERANGE and EXT-X-CUE-OUT; it returns the ID and START-DATE.
func openBreak(t *testing.T, o *origin, spec map[string]any, name string, req map[string]any) (id, start string) {
	t.Helper()
	cue := apiPost(t, o, spec, "/api/v1/streams/live/"+name+"/cues", cuesPath, req, 202)
	id = cue["id"].(string)
	_, body := awaitPlaylist(t, o.url("/live/"+name+"/index.m3u8"), 15*time.Second, "the break's start", func(_ *m3u8.MediaPlaylist, b []byte) bool {
		segs := cueSegments(b)
		return dateRangeAttrs(b, id) != nil && len(segs) > 0 && segs[len(segs)-1].tag != ""
	})
	d := dateRangeAttrs(body, id)
	if d["SCTE35-OUT"] == "" || d["DURATION"] != "" || d["SCTE35-IN"] != "" {
		t.Fatalf("the break's daterange is not an open break: %v\n%s", d, body)
	}
	return id, d["START-DATE"]
}

// checkStillOpen checks, after an interruption, that the playlist lists the
// break as it was opened (same ID and START-DATE, no end) and that every
// segment of the encoder's new connection is marked in the break, its
// elapsed time growing past the last one before the interruption.
func checkStillOpen(t *testing.T, body []byte, id, start string, before float64) {
	t.Helper()
	d := dateRangeAttrs(body, id)
	if d == nil || d["START-DATE"] != start || d["DURATION"] != "" || d["SCTE35-IN"] != "" || d["SCTE35-OUT"] == "" {
		t.Errorf("after the interruption the break's daterange is %v, want START-DATE %s and no end:\n%s", d, start, body)
	}
	prev := before
	for _, s := range afterLastDisc(cueSegments(body)) {
		if s.tag != "CONT" || s.elapsed <= prev {
			t.Errorf("%s: cue tag %q, elapsed %.3f, want CUE-OUT-CONT with elapsed > %.3f:\n%s", s.uri, s.tag, s.elapsed, prev, body)
		}
		prev = s.elapsed
	}
}

// lastElapsed is the elapsed time of the last segment in the break.
func lastElapsed(body []byte) float64 {
	var e float64
	for _, s := range cueSegments(body) {
		if s.tag == "CONT" {
			e = s.elapsed
		}
	}
	return e
}

// closeBreak posts an "in" cue without an ID (the open break ends) and
// checks where it lands: SCTE35-IN (the API's splice_insert back into the
// network) and DURATION on the break's daterange, before the break's
// planned end (so not its auto-return), and checkBreakEnd.
func closeBreak(t *testing.T, o *origin, spec map[string]any, name, id string, planned float64) {
	t.Helper()
	in := apiPost(t, o, spec, "/api/v1/streams/live/"+name+"/cues", cuesPath, map[string]any{"type": "in"}, 202)
	if in["id"] != id {
		t.Fatalf("the in cue ends %v, want the open break %s", in["id"], id)
	}
	_, body := awaitPlaylist(t, o.url("/live/"+name+"/index.m3u8"), 15*time.Second, "the break's end", func(_ *m3u8.MediaPlaylist, b []byte) bool {
		d := dateRangeAttrs(b, id)
		return d != nil && d["SCTE35-IN"] != "" && strings.Contains(string(b), "#EXT-X-CUE-IN\n")
	})
	d := dateRangeAttrs(body, id)
	if dur := checkBreakEnd(t, o, name, id, "api", body); dur <= 0 || dur >= planned {
		t.Errorf("DURATION %q: want the time to the API's in, under the planned %.0f s (not the auto-return)", d["DURATION"], planned)
	}
	b, _ := hex.DecodeString(strings.TrimPrefix(d["SCTE35-IN"], "0x"))
	sis := &scte35.SpliceInfoSection{}
	if err := sis.Decode(b); err != nil {
		t.Fatalf("SCTE35-IN does not decode: %v", err)
	}
	if ins, ok := sis.SpliceCommand.(*scte35.SpliceInsert); !ok || ins.OutOfNetworkIndicator || "0x"+hex.EncodeToString(b) != in["scte35"] {
		t.Errorf("SCTE35-IN %+v, want the API's splice_insert back into the network", sis.SpliceCommand)
	}
}

// checkBreakEnd checks an ended break: its DURATION is the CUE-IN
// segment's date minus START-DATE, that segment begins with a keyframe,
// and the API shows no open break and the end as the last cue, from
// source. It returns DURATION in seconds.
func checkBreakEnd(t *testing.T, o *origin, name, id, source string, body []byte) float64 {
	t.Helper()
	d := dateRangeAttrs(body, id)
	dur, _ := strconv.ParseFloat(d["DURATION"], 64)
	start, _ := time.Parse(time.RFC3339Nano, d["START-DATE"])
	var inSeg *cueSeg
	segs := cueSegments(body)
	for i := range segs {
		if segs[i].tag == "IN" {
			inSeg = &segs[i]
		}
	}
	if inSeg == nil {
		t.Fatalf("no segment carries EXT-X-CUE-IN:\n%s", body)
	}
	if got := inSeg.pdt.Sub(start).Seconds(); got-dur > 0.002 || dur-got > 0.002 {
		t.Errorf("DURATION %.3f is not the CUE-IN segment's date minus START-DATE (%.3f):\n%s", dur, got, body)
	}
	seg := fetchTo(t, o.url("/live/"+name+"/"+inSeg.uri), initOf(t, o, "/live/"+name+"/", body))
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=key_frame,pict_type",
		"-read_intervals", "%+#1", "-of", "csv=p=0", seg).Output()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "1,I") {
		t.Errorf("%s (CUE-IN) does not start with a keyframe: %q %v", inSeg.uri, out, err)
	}
	st := streamCues(t, o, "live/"+name)
	if st.Cues.OpenBreak != nil || st.Cues.LastCue == nil || st.Cues.LastCue.ID != id || st.Cues.LastCue.Type != "in" || st.Cues.LastCue.Source != source {
		t.Errorf("API after the break's end: open %+v, last %+v (want an in from %s)", st.Cues.OpenBreak, st.Cues.LastCue, source)
	}
	return dur
}

// checkAPIOpen checks that the API shows the break open, as it was opened.
func checkAPIOpen(t *testing.T, o *origin, name, id, start string) {
	t.Helper()
	st := streamCues(t, o, "live/"+name)
	want, _ := time.Parse(time.RFC3339Nano, start)
	// The playlist writes START-DATE to the millisecond; the API gives the
	// date as the stream holds it.
	if b := st.Cues.OpenBreak; b == nil || b.ID != id || !b.StartDate.Truncate(time.Millisecond).Equal(want) {
		t.Errorf("API open_break %+v, want %s from %s", b, id, start)
	}
}

// loop is an endless real-time push of the recorded source.
func loop(src string) []string { return []string{"-re", "-stream_loop", "-1", "-i", src} }

// TestE2ECueReconnect: a 20 s break (auto-return) opens; the encoder drops
// and comes back within the reconnect window; the break is still open on
// the new connection's segments (CUE-OUT-CONT, elapsed growing; the
// daterange unchanged) and in the API, and an "in" cue posted then ends it
// at a keyframe.
func TestE2ECueReconnect(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	o := startOrigin(t, func(c *config) { c.AdMarkers, c.PlaylistSize = "both", 20 })
	spec := apiSpec(t)
	url := o.url("/live/brk/index.m3u8")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ctx1, drop := context.WithCancel(ctx)
	push := o.push(ctx1, t, "brk", loop(src), "-c", "copy")
	awaitPlaylist(t, url, 15*time.Second, "a segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })
	const planned = 20
	id, start := openBreak(t, o, spec, "brk", map[string]any{"type": "out", "duration": planned})

	drop() // the encoder's connection breaks
	push.Wait()
	_, body, _ := httpGet(t, url)
	before := lastElapsed(body)
	push = o.push(ctx, t, "brk", loop(src), "-c", "copy")
	defer push.Wait()
	defer cancel()
	_, body = awaitPlaylist(t, url, 15*time.Second, "two segments after the reconnect", func(_ *m3u8.MediaPlaylist, b []byte) bool {
		return len(afterLastDisc(cueSegments(b))) >= 2
	})
	checkStillOpen(t, body, id, start, before)
	checkAPIOpen(t, o, "brk", id, start)
	closeBreak(t, o, spec, "brk", id, planned)
}

// TestE2ECueRestart: with directory storage, a break open when fount stops
// stays open in the process that continues the stream: after a graceful
// restart (SIGTERM; the stream is continued when its encoder publishes
// again) and after a handover (SIGUSR2; the successor adopts the stream and
// serves it before the encoder is back). Same ID and START-DATE, and the
// API shows it open. After the restart an "in" ends it, before its 30 s
// auto-return; after the handover its 10 s auto-return, restored from the
// stored PLANNED-DURATION, ends it by date.
func TestE2ECueRestart(t *testing.T) {
	src := source(t)
	requireTool(t, "ffprobe")
	for _, handover := range []bool{false, true} {
		name := map[bool]string{false: "restart", true: "handover"}[handover]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mod := func(c *config) {
				c.Storage, c.PlaylistSize, c.AdMarkers = "dir:"+dir, 20, "both"
				c.HandoverGrace = 0 // no successor shares the ports in-process
			}
			url := func(o *origin) string { return o.url("/live/" + name + "/index.m3u8") }
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			o1 := startOrigin(t, mod)
			spec := apiSpec(t)
			ctx1, drop := context.WithCancel(ctx)
			push := o1.push(ctx1, t, name, loop(src), "-c", "copy")
			awaitPlaylist(t, url(o1), 15*time.Second, "a segment", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })
			planned := map[bool]float64{false: 30, true: 10}[handover]
			id, start := openBreak(t, o1, spec, name, map[string]any{"type": "out", "duration": planned})
			if handover {
				stopByHandover(t, o1)
			} else {
				o1.stop(t) // as SIGTERM: the playlist gets EXT-X-ENDLIST, the break is left open
			}
			drop()
			push.Wait()
			stored, err := os.ReadFile(dir + "/live/" + name + "/index.m3u8")
			if err != nil {
				t.Fatal(err)
			}
			before := lastElapsed(stored)

			o2 := startOrigin(t, mod)
			if handover {
				// Adopted: served, break and all, before the encoder is back.
				_, body, _ := httpGet(t, url(o2))
				if d := dateRangeAttrs(body, id); d == nil || d["START-DATE"] != start || d["DURATION"] != "" {
					t.Errorf("the adopted playlist lists the break as %v:\n%s", d, body)
				}
				checkAPIOpen(t, o2, name, id, start)
			}
			push = o2.push(ctx, t, name, loop(src), "-c", "copy")
			defer push.Wait()
			defer cancel()
			_, body := awaitPlaylist(t, url(o2), 15*time.Second, "a segment from the new process", func(_ *m3u8.MediaPlaylist, b []byte) bool {
				return len(afterLastDisc(cueSegments(b))) >= 1
			})
			checkStillOpen(t, body, id, start, before)
			checkAPIOpen(t, o2, name, id, start)
			if !handover {
				closeBreak(t, o2, spec, name, id, planned)
				return
			}
			_, body = awaitPlaylist(t, url(o2), 20*time.Second, "the break's auto-return", func(_ *m3u8.MediaPlaylist, b []byte) bool {
				d := dateRangeAttrs(b, id)
				return d != nil && d["DURATION"] != ""
			})
			// The first segment dated at or after START-DATE + 10 s ends
			// it: the segments are 2 s long.
			if dur := checkBreakEnd(t, o2, name, id, "restore", body); dur < planned || dur > planned+2.1 {
				t.Errorf("the restored auto-return ended the break after %.3f s, want %.0f to %.1f", dur, planned, planned+2.1)
			}
		})
	}
}

// stopByHandover hands o's streams over as SIGUSR2 does. The signal goes to
// this test process, where o's lifecycle is the one taking it (the tests
// that run origins at the same time are the parallel ones, which start only
// after the sequential tests, this one among them, are done).
func stopByHandover(t *testing.T, o *origin) {
	t.Helper()
	// Listening too keeps the signal's default action (the end of the
	// test binary) away should o no longer take it.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, sigHandover)
	defer signal.Stop(guard)
	if err := syscall.Kill(os.Getpid(), sigHandover); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(o.logs.String(), "handover: streams stored") {
		if time.Now().After(deadline) {
			t.Fatal("no handover within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	o.stop(t) // serve has returned (grace 0): this collects its result
}
