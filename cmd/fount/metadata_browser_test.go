//go:build unix

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// metadataReport is the line testdata/browser/metadata.mjs prints.
type metadataReport struct {
	HarnessError   string   `json:"harnessError"`
	BrowserVersion string   `json:"browserVersion"`
	Console        []string `json:"console"`
	Players        []struct {
		URL        string `json:"url"`
		HLSVersion string `json:"hlsVersion"`
		Samples    []struct {
			PTS  float64 `json:"pts"`
			Type string  `json:"type"`
			Data string  `json:"data"`
			PDT  string  `json:"pdt"`
		} `json:"samples"`
		Errors []struct {
			Details string `json:"details"`
			Fatal   bool   `json:"fatal"`
		} `json:"errors"`
		Playing     bool    `json:"playing"`
		CurrentTime float64 `json:"currentTime"`
		Cues        []struct {
			Start float64 `json:"start"`
			Key   string  `json:"key"`
			Info  string  `json:"info"`
			Data  string  `json:"data"`
			PDT   string  `json:"pdt"`
		} `json:"cues"`
	} `json:"players"`
}

// TestBrowserTimedMetadata: one chromium plays two live streams with
// hls.js, MPEG-TS (timed ID3 PES) and fMP4 LL-HLS (emsg); the API sent each
// an event "now" (text) and one at a program date time (values). hls.js
// exposes both as metadata cues, the second at the media time whose PDT is
// the one asked, within one frame (1/30 s).
func TestBrowserTimedMetadata(t *testing.T) {
	lockEndToEnd(t)
	src := source(t)
	requireTool(t, "node")
	requireTool(t, "chromium")
	browserDeps(t)

	ts := startClassic(t, func(c *config) { c.PlaylistSize = 10 })
	fm := startOrigin(t, func(c *config) { c.PlaylistSize = 10 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, o := range []*origin{ts, fm} {
		cmd := o.push(ctx, t, "md", realtime(src), "-c", "copy")
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	for _, o := range []*origin{ts, fm} {
		awaitPlaylist(t, o.url("/live/md/index.m3u8"), 10*time.Second, "a first segment", func(p *m3u8.MediaPlaylist, _ []byte) bool {
			return len(segments(p)) > 0
		})
	}
	type report struct {
		r    metadataReport
		line string
	}
	done := make(chan report, 1)
	go func() {
		r, line := runNodeScript[metadataReport](t, 70*time.Second, "metadata.mjs", "9",
			ts.url("/live/md/index.m3u8"), fm.url("/live/md/index.m3u8"))
		done <- report{r, line}
	}()
	// The events come while the players play: one now, one 2 s ahead (the
	// segments' PDT is the wall clock at the stream's start plus media
	// time, so now + 2 s is a time the stream has not reached yet).
	time.Sleep(3 * time.Second)
	posted := time.Now()
	at := posted.Add(2 * time.Second).Truncate(time.Millisecond)
	for _, o := range []*origin{ts, fm} {
		for _, body := range []string{`{"text":"hello"}`, `{"values":{"score":"2-1"},"at":"` + at.Format(time.RFC3339Nano) + `"}`} {
			if code, answer := postMetadata(t, o, "live/md", body); code != 202 {
				t.Errorf("POST %s: %d %s", body, code, answer)
			}
		}
	}
	rep := <-done
	r, line := rep.r, rep.line
	if r.HarnessError != "" || len(r.Players) != 2 {
		t.Fatalf("metadata.mjs: %s\n%s", r.HarnessError, line)
	}
	const frame = 1.0 / 30
	for i, p := range r.Players {
		name := []string{"MPEG-TS", "fMP4"}[i]
		for _, e := range p.Errors {
			if e.Fatal {
				t.Errorf("%s: hls.js fatal error %s", name, e.Details)
			}
		}
		if !p.Playing {
			t.Errorf("%s: never playing", name)
		}
		// FRAG_PARSING_METADATA: both events, the text one about when it
		// was posted (the next frame ingested: the push runs in real time,
		// so its PDT is the wall clock less the ingest latency), the other
		// at the PDT asked, within a frame.
		var hello, score bool
		for _, m := range p.Samples {
			pdt, err := time.Parse(time.RFC3339Nano, m.PDT)
			if err != nil {
				t.Errorf("%s: metadata sample at %.4f s maps to no fragment's PDT", name, m.PTS)
				continue
			}
			switch {
			case strings.Contains(m.Data, "TIT2") && strings.Contains(m.Data, "hello"):
				hello = true
				if d := pdt.Sub(posted).Seconds(); d < -1 || d > 0.5 {
					t.Errorf("%s: the event posted at %s is at PDT %s (%+.3f s)", name, posted.Format(time.RFC3339Nano), m.PDT, d)
				}
			case strings.Contains(m.Data, "TXXX") && strings.Contains(m.Data, "score"):
				score = true
				if d := pdt.Sub(at).Seconds(); d > frame || d < -frame {
					t.Errorf("%s: metadata sample at %.4f s is at PDT %s, %+.4f s from the %s asked (more than a frame)", name, m.PTS, m.PDT, d, at.Format(time.RFC3339Nano))
				}
			}
		}
		if !hello || !score {
			t.Errorf("%s: FRAG_PARSING_METADATA lacks events (text %v, values %v): %+v", name, hello, score, p.Samples)
		}
		// The metadata TextTrack: the values event as a cue, key TXXX,
		// info its key, data its value, at the PDT asked within a frame.
		// (The first event's cues may be lost: see metadata.mjs.)
		cue := false
		for _, c := range p.Cues {
			if c.Key != "TXXX" || c.Info != "score" || c.Data != "2-1" {
				continue
			}
			cue = true
			pdt, err := time.Parse(time.RFC3339Nano, c.PDT)
			if err != nil {
				t.Errorf("%s: cue at %.4f s maps to no fragment's PDT", name, c.Start)
				continue
			}
			d := pdt.Sub(at).Seconds()
			if d > frame || d < -frame {
				t.Errorf("%s: cue at media time %.4f s is at PDT %s, %+.4f s from the %s asked (more than a frame)", name, c.Start, c.PDT, d, at.Format(time.RFC3339Nano))
			}
			t.Logf("%s: the event asked at %s is a cue at %.4f s, PDT %s (%+.4f s); %d cues in all", name, at.Format(time.RFC3339Nano), c.Start, c.PDT, d, len(p.Cues))
		}
		if !cue {
			t.Errorf("%s: no TXXX score=2-1 cue in hls.js's metadata track: %+v", name, p.Cues)
		}
	}
	if t.Failed() {
		t.Logf("report: %s", strings.TrimSpace(line))
	}
}
