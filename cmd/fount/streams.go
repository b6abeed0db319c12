package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/fount-live/fount/playlist"
)

// Per-stream settings (docs/config.md, "Per-stream settings"): the config
// file's streams key maps a stream's public path, APP/NAME, to settings
// that stand in for the global flags for that stream alone:
//
//	streams:
//	  live/buehne:
//	    captions-name: Deutsch
//	    captions-language: de
//
// They come from the file only: a mapping has no sensible flag or
// variable form. The key is registered as a hidden flag all the same, so
// that the file loader finds where to put it, and --streams or
// FOUNT_STREAMS is refused with a message saying where it belongs. The
// streams key alone is re-read on SIGHUP (reloadStreams).

// streamsKey is the config file key, and the hidden flag behind it.
const streamsKey = "streams"

// streamSettingKeys are the keys a stream's settings may have, in the
// order the docs list them.
var streamSettingKeys = []string{"captions", "captions-name", "captions-language"}

// errStreamsFileOnly is the answer to --streams and FOUNT_STREAMS.
var errStreamsFileOnly = errors.New("per-stream settings are set in the config file only (--config FILE, key streams:; docs/config.md)")

// streamSettings are one stream's own settings; "" falls back to the
// global flag.
type streamSettings struct {
	Captions         string // auto, on or off
	CaptionsName     string
	CaptionsLanguage string
	line             int // where the stream is in the file
}

// streamTable is the file's streams key: settings by APP/NAME.
type streamTable struct {
	file   string
	byPath map[string]streamSettings
}

// streamsFlag is the flag.Value of the hidden --streams flag: it refuses
// every value given as a flag or variable, and holds what the file gave.
type streamsFlag struct{ dst **streamTable }

func (f streamsFlag) String() string { return "" }
func (f streamsFlag) Type() string   { return "streams" }
func (f streamsFlag) Set(string) error {
	return errStreamsFileOnly
}

// registerStreams adds the hidden streams flag for c.Streams.
func (c *config) registerStreams(fs *pflag.FlagSet) {
	fs.Var(streamsFlag{&c.Streams}, streamsKey, "per-stream settings: config file only")
	fs.Lookup(streamsKey).Hidden = true
}

// parseStreams reads the streams key's value v from the file at path,
// reporting every problem through fail (which prefixes the file). A
// stream with problems is left out of the table.
func parseStreams(path string, v *yaml.Node, fail func(format string, args ...any)) *streamTable {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	t := &streamTable{file: path, byPath: map[string]streamSettings{}}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		fail("key %q: no value (line %d); write {} for none", streamsKey, v.Line)
		return t
	}
	if v.Kind != yaml.MappingNode {
		fail("key %q: want a mapping of APP/NAME to settings (live/show: {captions-language: de}), got %s (line %d)", streamsKey, nodeKind(v), v.Line)
		return t
	}
	inStreams := func(format string, args ...any) {
		fail("key %q: "+format, append([]any{streamsKey}, args...)...)
	}
	for k, sv := range mappingKeys(v, "a stream must be APP/NAME", "duplicate stream", inStreams) {
		name := k.Value
		ok := validStreamPath(name) // api.go: as `fount token` and the API check it
		if !ok {
			fail("key %q: stream %q: want APP/NAME, e.g. live/show (letters, digits, '-', '_', '.') (line %d)", streamsKey, name, k.Line)
		}
		s, good := parseStreamSettings(name, sv, fail)
		if ok && good {
			s.line = k.Line
			t.byPath[name] = s
		}
	}
	return t
}

// parseStreamSettings reads one stream's settings, reporting each bad key
// or value; good is false if there was any.
func parseStreamSettings(stream string, v *yaml.Node, fail func(format string, args ...any)) (s streamSettings, good bool) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.MappingNode {
		fail("stream %q: want a mapping of settings (%s), got %s (line %d)", stream, strings.Join(streamSettingKeys, ", "), nodeKind(v), v.Line)
		return s, false
	}
	good = true
	bad := func(format string, args ...any) {
		fail("stream %q: "+format, append([]any{stream}, args...)...)
		good = false
	}
	for k, sv := range mappingKeys(v, "a key must be a setting name", "duplicate key", bad) {
		key := k.Value
		value, err := scalarValue(sv)
		if err != nil {
			bad("key %q: %v", key, err)
			continue
		}
		switch key {
		case "captions":
			err = validCaptionsMode(value)
			s.Captions = value
		case "captions-name":
			err = playlist.Captions{Name: value, Language: "en"}.Validate()
			s.CaptionsName = value
		case "captions-language":
			err = playlist.Captions{Name: "CC", Language: value}.Validate()
			s.CaptionsLanguage = value
		default:
			if hint := closestName(streamSettingKeys, key); hint != "" {
				bad("unknown key %q (line %d); did you mean %s?", key, k.Line, hint)
			} else {
				bad("unknown key %q (line %d); a stream's settings are %s (every other key applies to all streams, at the top level)",
					key, k.Line, strings.Join(streamSettingKeys, ", "))
			}
			continue
		}
		if err != nil {
			bad("key %q: %v (line %d)", key, err, sv.Line)
		}
	}
	return s, good
}

// validate checks what the file could not: that every stream is under
// --app, the only application publishes reach.
func (t *streamTable) validate(app string) []error {
	if t == nil {
		return nil
	}
	var errs []error
	for _, p := range t.paths() {
		if a, _, _ := strings.Cut(p, "/"); a != app {
			errs = append(errs, fmt.Errorf("%s: key %q: stream %q (line %d): its app %q is not --app (%q), so no publish reaches it",
				t.file, streamsKey, p, t.byPath[p].line, a, app))
		}
	}
	return errs
}

// paths are the table's streams, sorted.
func (t *streamTable) paths() []string {
	ps := make([]string, 0, len(t.byPath))
	for p := range t.byPath {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// captionsFor is the captions setting of the stream at path (APP/NAME):
// its own settings over the global ones.
func (t *streamTable) captionsFor(path string, global captionFlags) captionFlags {
	if t == nil {
		return global
	}
	s, ok := t.byPath[path]
	if !ok {
		return global
	}
	cc := global
	if s.Captions != "" {
		cc.Mode = s.Captions
	}
	if s.CaptionsName != "" {
		cc.Name = s.CaptionsName
	}
	if s.CaptionsLanguage != "" {
		cc.Language = s.CaptionsLanguage
	}
	return cc
}

// reloadStreams re-reads the config file's streams key (SIGHUP), for the
// publishes from then on: a stream already signalling captions keeps what
// its players were given. A file with any problem, in any key, leaves the
// settings in use; the file's other keys are not applied (they take a
// restart).
func (o *instance) reloadStreams() {
	cfg := defaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.flags(fs)
	err := loadConfigFile(fs, o.cfg.ConfigFile, func(*pflag.Flag) bool { return false })
	if err == nil {
		err = errors.Join(cfg.Streams.validate(o.cfg.App)...)
	}
	if err != nil {
		o.log.Error("SIGHUP: keeping the per-stream settings in use: the config file has problems", "err", err)
		return
	}
	o.srv.pub.streams.Store(cfg.Streams)
	n := 0
	if cfg.Streams != nil {
		n = len(cfg.Streams.byPath)
	}
	o.log.Info("SIGHUP: per-stream settings reloaded (the config file's other keys take a restart)", "file", o.cfg.ConfigFile, "streams", n)
}
