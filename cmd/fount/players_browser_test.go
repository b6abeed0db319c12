//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// playersReport is the line players.mjs prints.
type playersReport struct {
	HarnessError   string         `json:"harnessError"`
	BrowserVersion string         `json:"browserVersion"`
	Players        []playerReport `json:"players"`
}

type playerReport struct {
	Player        string         `json:"player"`
	PlayerVersion string         `json:"playerVersion"`
	HarnessError  string         `json:"harnessError"`
	Config        map[string]any `json:"config"`
	PlayingAt     *float64       `json:"playingAt"` // s from start() to the first frame
	Errors        []struct {
		At      float64 `json:"at"`
		Fatal   bool    `json:"fatal"`
		Type    string  `json:"type"`
		Details string  `json:"details"`
		Reason  string  `json:"reason"`
		URL     string  `json:"url"`
	} `json:"errors"`
	Stalls []struct {
		At          float64  `json:"at"`
		CurrentTime float64  `json:"currentTime"`
		Seconds     *float64 `json:"seconds"` // until the clock moved again; nil: it did not
	} `json:"stalls"`
	Seeks []struct {
		At float64 `json:"at"`
		To float64 `json:"to"`
	} `json:"seeks"`
	VideoErrors []any `json:"videoErrors"`
	HTTPErrors  []struct {
		At     float64 `json:"at"`
		Status int     `json:"status"`
		URL    string  `json:"url"`
	} `json:"httpErrors"`
	Holes []struct {
		At   float64 `json:"at"`
		From float64 `json:"from"`
		To   float64 `json:"to"`
	} `json:"holes"`
	UsingVHS         *bool `json:"usingVHS"`
	PlayerLowLatency *bool `json:"playerLowLatency"`
	Watch            *struct {
		Wall         float64 `json:"wall"`
		Advance      float64 `json:"advance"`
		PresentedFPS float64 `json:"presentedFps"`
		DecodedFPS   float64 `json:"decodedFps"`
		PresentedPMS float64 `json:"presentedPerMediaSecond"`
		DecodedPMS   float64 `json:"decodedPerMediaSecond"`
		Dropped      int     `json:"dropped"`
		VideoBytes   int64   `json:"videoBytes"`
		AudioBytes   int64   `json:"audioBytes"`
		Width        int     `json:"width"`
		Height       int     `json:"height"`
	} `json:"watch"`
	LatencySummary *struct {
		Samples   int      `json:"samples"`
		PDTMedian *float64 `json:"pdtMedian"`
		PDTLast   *float64 `json:"pdtLast"`
		OwnMedian *float64 `json:"ownMedian"`
		OwnLast   *float64 `json:"ownLast"`
	} `json:"latencySummary"`
	Console []string `json:"console"`
}

// playersTimestampOffset is where the pushed stream's timestamps start, in
// seconds: a time of day, as many encoders stamp their output, and the
// range in which Shaka Player without manifest.hls.sequenceMode re-set its
// timestampOffset, with an abort(), before every LL part
// (shaka-player#10589): Chromium then drops every part that does not start
// with a keyframe until the next keyframe.
const playersTimestampOffset = "27952"

// TestBrowserPlayers plays fount's LL-HLS stream (default settings, an
// ffmpeg push of the 30 fps test source) in Debian's Chromium with Shaka
// Player and video.js (VHS), one after the other in pages of one browser,
// each with the settings docs/players.md gives for it, and requires of
// each what a viewer would see: the first frame within 25 s, then for the
// 12 s watched no fatal or other player error, no HTTP error, no stall
// (but one short one of VHS's, see below), the clock moving with the wall
// clock, frames decoded and presented at the stream's rate (at least 24
// decoded and 20 presented per second of media played, of 30: Shaka's
// abort-before-append showed ~6.6), audio and video both decoded, the
// picture at the source's size, and a latency behind live (now minus the
// PROGRAM-DATE-TIME of the frame at currentTime, as the player maps it) of
// at most 3 s: LL-HLS, not whole segments, whose players sit three target
// durations (6 s) back or more. hls.js plays LL-HLS in TestBrowserHLSJS;
// FOUNT_PLAYERS=hlsjs,shaka,videojs adds it here (shaka-segments and
// videojs-segments: Shaka without sequenceMode, VHS without llhls) for
// docs/players.md's figures.
func TestBrowserPlayers(t *testing.T) {
	if raceDetector {
		// Like TestBrowserABR: it judges frame rates and stalls, which
		// under the race detector would be the detector's; .ci/run plays
		// it in its pass without -race.
		t.Skip("judged without the race detector: .ci/run runs it in its pass without -race")
	}
	lockEndToEndLogged(t)
	for _, tool := range []string{"ffmpeg", "node", "npm", "chromium"} {
		requireTool(t, tool)
	}
	src := source(t)
	browserDeps(t)

	players := "shaka,videojs"
	if p := os.Getenv("FOUNT_PLAYERS"); p != "" {
		players = p
	}
	const seconds = 12

	o := startOrigin(t, llConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	push := o.push(ctx, t, "players", []string{"-re", "-stream_loop", "-1", "-i", src},
		"-c", "copy", "-output_ts_offset", playersTimestampOffset)
	pushDone := make(chan error, 1)
	go func() { pushDone <- push.Wait() }()
	defer func() { cancel(); <-pushDone }()

	url := o.url("/live/players/index.m3u8")
	awaitPlaylist(t, url, 20*time.Second, "three segments", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return p.Count() >= 3
	})

	start := time.Now()
	n := len(strings.Split(players, ","))
	r, line := runNodeScript[playersReport](t, time.Duration(n*(seconds+45)+60)*time.Second,
		"players.mjs", url, fmt.Sprint(seconds), players)
	t.Logf("played %s in %s: chromium %s", players, time.Since(start).Round(time.Millisecond), r.BrowserVersion)
	select {
	case err := <-pushDone:
		pushDone <- err
		t.Errorf("the ffmpeg push ended during playback: %v\n%s", err, push.Stderr.(*syncBuffer).String())
	default:
	}
	if r.HarnessError != "" {
		t.Fatalf("players.mjs: %s\n%s", r.HarnessError, line)
	}
	if len(r.Players) != n {
		t.Fatalf("players.mjs reported %d players, want %d (%s)\n%s", len(r.Players), n, players, line)
	}
	for _, p := range r.Players {
		t.Run(p.Player, func(t *testing.T) { checkPlayer(t, p, seconds) })
	}
}

// checkPlayer judges one player's report of players.mjs.
func checkPlayer(t *testing.T, p playerReport, seconds float64) {
	const (
		fps          = 30.0 // the test source's
		minFPS       = 0.8 * fps
		minPresented = 2.0 / 3 * fps
		maxLatency   = 3.0 // s; whole-segment players are about 6 s back
	)
	f := func(x *float64) string {
		if x == nil {
			return "none"
		}
		return fmt.Sprintf("%.3f s", *x)
	}
	if w, l := p.Watch, p.LatencySummary; w != nil && l != nil {
		t.Logf("%s %s: first frame after %s; over %.1f s: clock +%.2f s, %.1f fps presented, %.1f decoded (per media second %.1f, %.1f), %d dropped, %d holes, %dx%d, video %d B, audio %d B; latency (PDT) median %s, last %s; player's own median %s, last %s (%d samples); config %v",
			p.Player, p.PlayerVersion, f(p.PlayingAt), w.Wall, w.Advance, w.PresentedFPS, w.DecodedFPS, w.PresentedPMS, w.DecodedPMS, w.Dropped, len(p.Holes),
			w.Width, w.Height, w.VideoBytes, w.AudioBytes, f(l.PDTMedian), f(l.PDTLast), f(l.OwnMedian), f(l.OwnLast), l.Samples, p.Config)
	}
	failed := false
	fail := func(format string, args ...any) { t.Errorf(format, args...); failed = true }
	defer func() {
		if failed {
			t.Logf("console: %q", p.Console)
		}
	}()
	if p.HarnessError != "" {
		fail("%s: %s", p.Player, p.HarnessError)
	}
	for _, e := range p.Errors {
		fail("%s error at %.3f s: fatal=%v %s %s %s %s", p.Player, e.At, e.Fatal, e.Type, e.Details, e.Reason, e.URL)
	}
	// A 404 for a part or a preload hint is the origin's failure even
	// when the player carries on.
	for _, e := range p.HTTPErrors {
		fail("%s: HTTP %d at %.3f s for %s", p.Player, e.Status, e.At, e.URL)
	}
	for _, e := range p.VideoErrors {
		fail("%s: video element error: %v", p.Player, e)
	}
	if p.Watch == nil || p.LatencySummary == nil {
		fail("%s: no playback to judge", p.Player)
		return
	}
	w, l := p.Watch, p.LatencySummary
	for i, s := range p.Stalls {
		// VHS (video.js) places each segment played part by part a few
		// tens of milliseconds short of the next one on its timeline (its
		// media playlist had seg42 at 16.042-18.019 s and seg43 from
		// 18.042 s), and now and then stalls once at the first such gap
		// before its gap-jumper skips it (2 of 5 runs, currentTime 15.99x
		// both times, 2026-12-03; docs/players.md). One such stall, shorter
		// than half a second, is logged, not failed; any other stall fails.
		if p.Player == "videojs" && i == 0 && len(p.Stalls) == 1 && s.Seconds != nil && *s.Seconds < 0.5 {
			t.Logf("%s: one stall of %.3f s at currentTime %.3f: VHS's gap between segments played as parts (not failed)", p.Player, *s.Seconds, s.CurrentTime)
			continue
		}
		lasted := "the clock did not move again"
		if s.Seconds != nil {
			lasted = fmt.Sprintf("%.3f s", *s.Seconds)
		}
		fail("%s: stall after playback started, at %.3f s (currentTime %.3f): %s", p.Player, s.At, s.CurrentTime, lasted)
	}
	if len(p.Seeks) > 0 {
		t.Logf("%s: seeks after playback started: %+v", p.Player, p.Seeks)
	}
	// The clock runs with the wall clock: not frozen without a 'waiting'
	// (at least 80 %: on a 2-core machine with a load of 13 from other
	// work, hls.js's and Shaka's clocks ran at 55-65 % without a stall),
	// nor racing ahead.
	if w.Wall < seconds-0.5 || w.Advance < 0.8*w.Wall || w.Advance > w.Wall+1 {
		fail("%s: currentTime advanced %.3f s in %.3f s of wall clock, want 80-100 %% of it", p.Player, w.Advance, w.Wall)
	}
	// Per second of media played, so that a busy machine's slow clock is
	// not taken for frames missing from the media. Frames missing from
	// what the player appends (Shaka's abort-before-append) are missing
	// from both counts; the compositor also skips frames on a busy
	// machine (24.0 presented against 28.4 decoded in one run at a load of
	// 9), so presented ones have a lower bound.
	if w.DecodedPMS < minFPS || w.PresentedPMS < minPresented {
		fail("%s: %.1f frames decoded and %.1f presented per second of media played; the stream has %.0f, want >= %.0f and %.0f",
			p.Player, w.DecodedPMS, w.PresentedPMS, fps, minFPS, minPresented)
	}
	if w.VideoBytes <= 0 || w.AudioBytes <= 0 {
		fail("%s: decoded %d bytes of video and %d of audio during the watch, want both", p.Player, w.VideoBytes, w.AudioBytes)
	}
	if w.Width != 640 || w.Height != 360 {
		fail("%s: picture %dx%d, want the source's 640x360", p.Player, w.Width, w.Height)
	}
	if l.PDTMedian == nil || *l.PDTMedian <= 0 {
		fail("%s: no latency measured from PROGRAM-DATE-TIME (%d samples)", p.Player, l.Samples)
	} else if *l.PDTMedian > maxLatency {
		fail("%s: median latency %.3f s behind live, want <= %.1f s (LL-HLS)", p.Player, *l.PDTMedian, maxLatency)
	}
	switch {
	case p.Player == "videojs" && (p.UsingVHS == nil || !*p.UsingVHS):
		fail("video.js did not play with VHS (MSE) but natively")
	case strings.HasPrefix(p.Player, "shaka") && (p.PlayerLowLatency == nil || !*p.PlayerLowLatency):
		fail("Shaka's streaming.lowLatencyMode was off")
	}
}
