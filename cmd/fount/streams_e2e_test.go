package main

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafov/m3u8"
	"github.com/spf13/pflag"
)

// TestE2ECaptionsPerStream: under a config file whose streams key gives
// live/buehne its own caption name and language and turns captions off
// for live/lab, three captioned publishes to one origin: live/buehne's
// multivariant playlist signals Deutsch/de (and the API says so),
// live/stage's the file's global English/en, and live/lab serves its
// media playlist, signalling nothing. After the file gains live/scene and
// SIGHUP, a publish to live/scene signals its Français/fr.
func TestE2ECaptionsPerStream(t *testing.T) {
	requireTool(t, "ffmpeg")
	var tags []flvTag // 5 s are two segments and more: enough for the playlists
	for _, g := range captionedTags(t, source(t)) {
		if g.ts < 5000 {
			tags = append(tags, g)
		}
	}
	file := writeConfig(t, `
captions-name: English
captions-language: en
streams:
  live/buehne:
    captions-name: Deutsch
    captions-language: de
  live/lab:
    captions: "off"
`)
	o := startOrigin(t, func(c *config) {
		// As serve does: the file fills the flags bound to c.
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		c.flags(fs)
		if err := applyConfigFile(fs, file); err != nil {
			t.Fatal(err)
		}
		c.ConfigFile = file // for SIGHUP
	})
	push := func(name string) {
		c, sid := publishRTMP(t, o.rtmp, name)
		if err := c.sendTags(sid, tags); err != nil {
			t.Fatal(err)
		}
	}
	mediaTag := func(name, lang string) string {
		return `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="` + name + `",LANGUAGE="` + lang + `",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"`
	}
	signals := func(name, want string) {
		t.Helper()
		awaitPlaylist(t, o.url("/live/"+name+"/main/index.m3u8"), 10*time.Second, name+"'s first segment",
			func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })
		code, mv, _ := httpGet(t, o.url("/live/"+name+"/index.m3u8"))
		if code != 200 || !strings.Contains(string(mv), want+"\n") || !strings.Contains(string(mv), `CLOSED-CAPTIONS="cc"`) {
			t.Errorf("live/%s: multivariant playlist (%d) without %s:\n%s", name, code, want, mv)
		}
	}
	for _, name := range []string{"buehne", "stage", "lab"} {
		push(name)
	}
	signals("buehne", mediaTag("Deutsch", "de"))
	signals("stage", mediaTag("English", "en"))
	awaitPlaylist(t, o.url("/live/lab/index.m3u8"), 10*time.Second, "live/lab's media playlist (captions off)",
		func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 1 })

	var st apiStream
	if code, b, _ := httpGet(t, "http://"+o.api+"/api/v1/streams/live/buehne"); code != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("API: %d %s", code, b)
	}
	if cc := st.Captions; cc == nil || !cc.Signalled || cc.Name != "Deutsch" || cc.Language != "de" {
		t.Errorf("API: live/buehne's captions %+v, want Deutsch/de signalled", cc)
	}

	// SIGHUP re-reads the streams key, for the publishes that follow.
	more := "streams:\n  live/scene:\n    captions-name: Français\n    captions-language: fr\n"
	if err := os.WriteFile(file, []byte(more), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(o.logs.String(), "per-stream settings reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("no reload within 5 s of SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	push("scene")
	signals("scene", mediaTag("Français", "fr"))
}
