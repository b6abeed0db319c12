package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// The streams key gives streams their own caption settings; what a
// stream leaves out, and every other stream, falls back to the global
// flags, wherever those came from.
func TestConfigFileStreams(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	if err := fs.Parse([]string{"--captions-name=Global"}); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `
captions-language: fr
captions-name: File      # the flag wins over this one
streams:
  live/buehne:
    captions-name: Deutsch
    captions-language: de
  live/lab:
    captions: "off"
  live/lab2:
    captions: off        # YAML 1.1's boolean, but yaml.v3 keeps the text
  live/quiet: {}
  live/alias: &same
    captions: on
    captions-language: pt-BR
  live/alias2: *same
`)
	if err := applyConfigFile(fs, path); err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	global := captionFlags{Mode: "auto", Name: "Global", Language: "fr"}
	if cfg.Captions != global {
		t.Fatalf("global captions %+v, want %+v", cfg.Captions, global)
	}
	for path, want := range map[string]captionFlags{
		"live/buehne":  {Mode: "auto", Name: "Deutsch", Language: "de"},
		"live/lab":     {Mode: "off", Name: "Global", Language: "fr"},
		"live/lab2":    {Mode: "off", Name: "Global", Language: "fr"},
		"live/quiet":   global,
		"live/alias":   {Mode: "on", Name: "Global", Language: "pt-BR"},
		"live/alias2":  {Mode: "on", Name: "Global", Language: "pt-BR"},
		"live/other":   global,
		"live/buehne2": global,
	} {
		if got := cfg.Streams.captionsFor(path, cfg.Captions); got != want {
			t.Errorf("%s: %+v, want %+v", path, got, want)
		}
	}
	// Without a streams key, every stream has the global settings.
	var none *streamTable
	if got := none.captionsFor("live/buehne", global); got != global {
		t.Errorf("no table: %+v", got)
	}
}

func TestConfigFileStreamsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []string
	}{
		{"unknown key with hint", "streams:\n  live/a:\n    captions-nme: X\n",
			[]string{`stream "live/a": unknown key "captions-nme" (line 3)`, "did you mean captions-name?"}},
		{"unknown key as env name", "streams:\n  live/a:\n    CAPTIONS_LANGUAGE: de\n",
			[]string{`unknown key "CAPTIONS_LANGUAGE"`, "did you mean captions-language?"}},
		{"global key in a stream", "streams:\n  live/a:\n    segment-duration: 4s\n",
			[]string{`stream "live/a": unknown key "segment-duration" (line 3)`, "captions, captions-name, captions-language", "top level"}},
		{"bad mode", "streams:\n  live/a:\n    captions: sometimes\n",
			[]string{`stream "live/a": key "captions": "sometimes": want auto, on or off (line 3)`}},
		{"bad language", "streams:\n  live/a:\n    captions-language: de_DE\n",
			[]string{`stream "live/a": key "captions-language"`, `"de_DE": want a BCP 47 tag`, "(line 3)"}},
		{"empty language", "streams:\n  live/a:\n    captions-language: \"\"\n",
			[]string{`key "captions-language"`, "BCP 47"}},
		{"name with a quote", "streams:\n  live/a:\n    captions-name: 'say \"hi\"'\n",
			[]string{`stream "live/a": key "captions-name"`, "without quotes", "(line 3)"}},
		{"null value", "streams:\n  live/a:\n    captions-name:\n",
			[]string{`stream "live/a": key "captions-name": no value (line 3)`}},
		{"list value", "streams:\n  live/a:\n    captions: [on]\n",
			[]string{`key "captions": want a single value`, "got a list (line 3)"}},
		{"no app", "streams:\n  show:\n    captions: on\n",
			[]string{`key "streams": stream "show": want APP/NAME`, "(line 2)"}},
		{"rendition path", "streams:\n  live/show/main:\n    captions: on\n",
			[]string{`stream "live/show/main": want APP/NAME`}},
		{"leading slash", "streams:\n  /live/show:\n    captions: on\n",
			[]string{`stream "/live/show": want APP/NAME`}},
		{"dot dot", "streams:\n  live/..:\n    captions: on\n",
			[]string{`stream "live/..": want APP/NAME`}},
		{"duplicate stream", "streams:\n  live/a:\n    captions: on\n  live/a:\n    captions: off\n",
			[]string{`key "streams": duplicate stream "live/a" (lines 2 and 4)`}},
		{"duplicate key", "streams:\n  live/a:\n    captions: on\n    captions: off\n",
			[]string{`stream "live/a": duplicate key "captions" (lines 3 and 4)`}},
		{"stream not a mapping", "streams:\n  live/a: de\n",
			[]string{`stream "live/a": want a mapping of settings`, `got the value "de" (line 2)`}},
		{"stream null", "streams:\n  live/a:\n",
			[]string{`stream "live/a": want a mapping of settings`, "got null (line 2)"}},
		{"streams a list", "streams:\n  - live/a\n",
			[]string{`key "streams": want a mapping of APP/NAME to settings`, "got a list (line 2)"}},
		{"streams a scalar", "streams: live/a\n",
			[]string{`key "streams": want a mapping`, `got the value "live/a" (line 1)`}},
		{"streams null", "streams:\n",
			[]string{`key "streams": no value (line 1)`}},
		{"top-level typo", "stream:\n  live/a: {}\n",
			[]string{`unknown key "stream" (line 1)`, "did you mean streams?"}},
		{"duplicate streams key", "streams: {}\nstreams: {}\n",
			[]string{`duplicate key "streams" (lines 1 and 2)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, fs := serveFlagSet(t)
			path := writeConfig(t, tc.body)
			err := applyConfigFile(fs, path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+": ") {
				t.Errorf("error does not start with the file name %s: %q", path, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// Every problem of every stream is reported at once, one per line, and
// the good streams around them are kept.
func TestConfigFileStreamsErrorsCollected(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	path := writeConfig(t, `
streams:
  live/good:
    captions-language: de
  live/bad:
    captions: maybe
    captions-langauge: de
    captions-name: ""
  nonsense:
    captions: on
  live/flat: on
app: studio
`)
	err := applyConfigFile(fs, path)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{`"captions"`, `"captions-langauge"`, `"captions-name"`, `"nonsense"`, `"live/flat"`}
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], path+": ") || !strings.Contains(lines[i], w) || !strings.Contains(lines[i], "line ") {
			t.Errorf("problem %d: %q, want the file, %s and a line", i, lines[i], w)
		}
	}
	if cfg.App != "studio" || cfg.Streams == nil || len(cfg.Streams.byPath) != 1 || cfg.Streams.byPath["live/good"].CaptionsLanguage != "de" {
		t.Errorf("good settings not applied: app %q streams %+v", cfg.App, cfg.Streams)
	}
}

// streams is a config file key only: as a flag or a variable it is an
// error that says where it belongs.
func TestStreamsNotAFlag(t *testing.T) {
	_, fs := serveFlagSet(t)
	err := fs.Parse([]string{"--streams=live/a:{captions: on}"})
	if err == nil || !strings.Contains(err.Error(), errStreamsFileOnly.Error()) {
		t.Errorf("--streams: %v, want %q", err, errStreamsFileOnly)
	}
	_, fs = serveFlagSet(t)
	t.Setenv("FOUNT_STREAMS", "live/a")
	err = applyEnv(fs)
	if err == nil || !strings.Contains(err.Error(), "FOUNT_STREAMS") || !strings.Contains(err.Error(), "config file only") {
		t.Errorf("FOUNT_STREAMS: %v", err)
	}
	if f := fs.Lookup(streamsKey); f == nil || !f.Hidden {
		t.Error("the streams flag shows in --help")
	}
}

// fount config check reports the streams' problems, the one only validate
// finds (a stream outside --app) included, each once with the file.
func TestConfigCheckStreams(t *testing.T) {
	good := writeConfig(t, "streams:\n  live/buehne:\n    captions-name: Deutsch\n    captions-language: de\n")
	if out, _, err := runConfigCheck(t, "check", good); err != nil || out != good+": ok\n" {
		t.Fatalf("good file: %q %v", out, err)
	}
	path := writeConfig(t, `
captions: sometimes
streams:
  studio/x:
    captions: on
  live/y:
    captions: never
`)
	_, _, err := runConfigCheck(t, "check", path)
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("got %v, want a usageError (exit 2)", err)
	}
	msg := err.Error()
	for _, w := range []string{
		`stream "live/y": key "captions": "never": want auto, on or off (line 7)`,
		`stream "studio/x" (line 4): its app "studio" is not --app ("live")`,
		`--captions "sometimes"`,
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not contain %q:\n%s", w, msg)
		}
	}
	for _, line := range strings.Split(msg, "\n") {
		if !strings.HasPrefix(line, path+": ") || strings.HasPrefix(line, path+": "+path) {
			t.Errorf("problem without the file name, or with it twice: %q", line)
		}
	}
}

// fount serve exits 2, before listening on anything, for a bad streams
// key, for one outside --app, and for --streams or FOUNT_STREAMS.
func TestServeStreamsErrors(t *testing.T) {
	ctx := context.Background()
	bad := writeConfig(t, "streams:\n  live/a:\n    captions-language: de_DE\n")
	elsewhere := writeConfig(t, "streams:\n  studio/a:\n    captions-language: de\n")
	for _, args := range [][]string{
		{"serve", "--config", bad},
		{"serve", "--config", elsewhere},
		{"serve", "--streams", "live/a"},
	} {
		if code := run(ctx, args); code != exitUsage {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	t.Setenv("FOUNT_STREAMS", "live/a")
	if code := run(ctx, []string{"serve"}); code != exitUsage {
		t.Errorf("FOUNT_STREAMS: exit %d, want 2", code)
	}
}

// SIGHUP's reload of the streams key: a good file replaces the settings
// (a file without the key clears them); a file with any problem leaves
// them as they were, and says why.
func TestStreamsReload(t *testing.T) {
	path := writeConfig(t, "streams:\n  live/a:\n    captions-language: de\n")
	var logs bytes.Buffer
	o := &instance{cfg: config{ConfigFile: path, App: "live"}, log: slog.New(slog.NewTextHandler(&logs, nil)), srv: servers{pub: &publisher{}}}
	lang := func() string {
		return o.srv.pub.streams.Load().captionsFor("live/a", captionFlags{Language: "en"}).Language
	}
	o.reloadStreams()
	if lang() != "de" || !strings.Contains(logs.String(), "per-stream settings reloaded") {
		t.Fatalf("after a good file: language %q; log:\n%s", lang(), logs.String())
	}
	for _, body := range []string{
		"streams:\n  live/a:\n    captions-language: de_DE\n", // a bad value
		"streams:\n  studio/a:\n    captions-language: fr\n",  // outside --app
		"playlist-size: x\nstreams:\n  live/a: {captions-language: fr}\n",
	} {
		logs.Reset()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		o.reloadStreams()
		if lang() != "de" || !strings.Contains(logs.String(), "keeping the per-stream settings in use") {
			t.Errorf("after %q: language %q; log:\n%s", body, lang(), logs.String())
		}
	}
	if err := os.WriteFile(path, []byte("captions-language: fr\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.reloadStreams()
	if lang() != "en" {
		t.Errorf("after a file without streams: language %q, want the global en", lang())
	}
}
