package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// serveFlagSet is what `fount serve` parses, plus the --config flag that
// serve.go registers, with every FOUNT_* variable cleared for the test.
func serveFlagSet(t *testing.T) (*config, *pflag.FlagSet) {
	t.Helper()
	cfg := defaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.flags(fs)
	if fs.Lookup("config") == nil { // serve.go registers it outside (*config).flags
		fs.String("config", "", "YAML file with the same keys as the flags")
	}
	fs.VisitAll(func(f *pflag.Flag) {
		t.Setenv(envName(f.Name), "") // restored after the test
		os.Unsetenv(envName(f.Name))
	})
	return &cfg, fs
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each setting comes from the strongest source that has it:
// flag > FOUNT_* variable > file > default.
func TestConfigFilePrecedence(t *testing.T) {
	const file = `
app: fileapp
playlist-size: 10
segment-duration: "4s"
low-latency: false
`
	type want struct {
		app  string
		size int
		dur  time.Duration
		ll   bool
	}
	for _, tc := range []struct {
		name  string
		file  bool
		env   map[string]string
		flags []string
		want  want
	}{
		{name: "defaults", want: want{"live", 6, 2 * time.Second, true}},
		{name: "file", file: true, want: want{"fileapp", 10, 4 * time.Second, false}},
		{
			name: "env over file",
			file: true,
			env: map[string]string{
				"FOUNT_APP": "envapp", "FOUNT_PLAYLIST_SIZE": "20",
				"FOUNT_SEGMENT_DURATION": "5s", "FOUNT_LOW_LATENCY": "true",
			},
			want: want{"envapp", 20, 5 * time.Second, true},
		},
		{
			name: "flag over env and file",
			file: true,
			env: map[string]string{
				"FOUNT_APP": "envapp", "FOUNT_PLAYLIST_SIZE": "20",
				"FOUNT_SEGMENT_DURATION": "5s", "FOUNT_LOW_LATENCY": "true",
			},
			flags: []string{"--app=flagapp", "--playlist-size=30", "--segment-duration=6s", "--low-latency=false"},
			want:  want{"flagapp", 30, 6 * time.Second, false},
		},
		{
			name:  "flag over file, no env",
			file:  true,
			flags: []string{"--app=flagapp", "--playlist-size=30", "--segment-duration=6s", "--low-latency=true"},
			want:  want{"flagapp", 30, 6 * time.Second, true},
		},
		{
			name:  "mixed: one source each",
			file:  true,
			env:   map[string]string{"FOUNT_PLAYLIST_SIZE": "20"},
			flags: []string{"--segment-duration=6s"},
			want:  want{"fileapp", 20, 6 * time.Second, false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, fs := serveFlagSet(t)
			if err := fs.Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			// The order serve's RunE uses: environment, then the file.
			if err := applyEnv(fs); err != nil {
				t.Fatal(err)
			}
			if tc.file {
				if err := applyConfigFile(fs, writeConfig(t, file)); err != nil {
					t.Fatal(err)
				}
			}
			got := want{cfg.App, cfg.PlaylistSize, cfg.SegmentDuration, cfg.LowLatency}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A variable wins over the file even when the file is applied first, and
// even when the variable's value is bad (applyEnv reports that one).
func TestConfigFileEnvWinsRegardlessOfOrder(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	t.Setenv("FOUNT_PLAYLIST_SIZE", "12")
	t.Setenv("FOUNT_APP", "")
	if err := applyConfigFile(fs, writeConfig(t, "playlist-size: 10\napp: fileapp\n")); err != nil {
		t.Fatal(err)
	}
	if cfg.PlaylistSize != 6 || cfg.App != "live" {
		t.Fatalf("file set a flag its variable owns: size %d app %q", cfg.PlaylistSize, cfg.App)
	}
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	if cfg.PlaylistSize != 12 || cfg.App != "" {
		t.Fatalf("size %d app %q, want 12 and \"\"", cfg.PlaylistSize, cfg.App)
	}
}

// Values may be written as YAML strings, numbers or booleans.
func TestConfigFileValueForms(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	path := writeConfig(t, `# fount serve settings
rtmp-addr: "127.0.0.1:1935"
http-addr: :8081
app: 'studio'
segment-duration: 4s
playlist-size: "8"
reconnect-window: 1m30s
storage: dir:/var/lib/fount
segment-format: ts
low-latency: "false"
part-duration: 300ms
part-hold-back: 1s
log-format: json
log-level: debug
`)
	if err := applyConfigFile(fs, path); err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.RTMPAddr, want.HTTPAddr, want.App = "127.0.0.1:1935", ":8081", "studio"
	want.SegmentDuration, want.PlaylistSize, want.ReconnectWindow = 4*time.Second, 8, 90*time.Second
	want.Storage, want.SegmentFormat, want.LowLatency = "dir:/var/lib/fount", "ts", false
	want.PartDuration, want.PartHoldBack = 300*time.Millisecond, time.Second
	want.LogFormat, want.LogLevel = "json", "debug"
	if *cfg != want {
		t.Errorf("got  %+v\nwant %+v", *cfg, want)
	}
	if v, _ := fs.GetString("config"); v != "" {
		t.Errorf("--config changed to %q", v)
	}
}

// A file holding every default, written by hand or generated from the
// flags' own defaults, changes nothing; so does an empty file.
func TestConfigFileAllDefaults(t *testing.T) {
	handWritten := `
rtmp-addr: ":1935"
http-addr: ":8080"
app: live
segment-duration: 2s
playlist-size: 6
reconnect-window: 30s
storage: memory
segment-format: fmp4
low-latency: true
part-duration: 200ms
part-hold-back: 0s
log-format: text
log-level: info
`
	_, ref := serveFlagSet(t)
	var generated strings.Builder
	ref.VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" && f.Name != streamsKey { // streams is a mapping (streams_test.go)
			generated.WriteString(f.Name + ": \"" + f.DefValue + "\"\n")
		}
	})
	for name, body := range map[string]string{
		"hand-written": handWritten,
		"generated":    generated.String(),
		"empty":        "",
		"comments":     "# nothing set yet\n",
		"null":         "~\n",
	} {
		t.Run(name, func(t *testing.T) {
			cfg, fs := serveFlagSet(t)
			if err := applyConfigFile(fs, writeConfig(t, body)); err != nil {
				t.Fatal(err)
			}
			if *cfg != defaultConfig() {
				t.Errorf("got  %+v\nwant %+v", *cfg, defaultConfig())
			}
			if err := cfg.validate(); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []string // substrings of the error, besides the file name
	}{
		{"unknown key with hint", "rtmp_adr: :1935\n",
			[]string{`unknown key "rtmp_adr"`, "did you mean rtmp-addr?", "line 1"}},
		{"unknown key as env name", "FOUNT_PLAYLIST_SIZE: 6\n",
			[]string{`unknown key "FOUNT_PLAYLIST_SIZE"`, "did you mean playlist-size?"}},
		{"unknown key as flag", "--log-level: info\n",
			[]string{`unknown key "--log-level"`, "did you mean log-level?"}},
		{"unknown key far from any flag", "bitrate: 6000\n",
			[]string{`unknown key "bitrate"`}},
		{"help is no key", "help: true\n",
			[]string{`unknown key "help"`}},
		{"bad int", "app: live\nplaylist-size: x\n",
			[]string{`key "playlist-size": invalid argument "x"`, "line 2"}},
		{"float for int", "playlist-size: 6.5\n",
			[]string{`key "playlist-size": invalid argument "6.5"`}},
		{"duration without unit", "segment-duration: 2\n",
			[]string{`key "segment-duration": invalid argument "2"`, "missing unit"}},
		{"bad bool", "low-latency: maybe\n",
			[]string{`key "low-latency": invalid argument "maybe"`}},
		{"nested map", "storage:\n  dir: /var/lib/fount\n",
			[]string{`key "storage"`, "want a single value", "got a mapping"}},
		{"list", "app: [live, studio]\n",
			[]string{`key "app"`, "want a single value", "got a list"}},
		{"null value", "app:\n",
			[]string{`key "app"`, "no value"}},
		{"config key", "config: other.yaml\n",
			[]string{`key "config"`, "cannot name another config file"}},
		{"duplicate key", "app: one\nplaylist-size: 6\napp: two\n",
			[]string{`duplicate key "app"`, "lines 1 and 3"}},
		{"syntax error", "app: live\nstorage: [memory\nlog-level: info\n",
			[]string{"line "}},
		{"bad indentation", "app: live\n  playlist-size: 6\n",
			[]string{"line 2"}},
		{"top level list", "- app: live\n",
			[]string{"want a mapping", "got a list"}},
		{"top level scalar", "live\n",
			[]string{"want a mapping", `got the value "live"`}},
		{"two documents", "app: one\n---\napp: two\n",
			[]string{"one YAML document", "line 2"}},
		{"map as key", "? {a: b}\n: c\n",
			[]string{"a key must be a flag name", "got a mapping"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, fs := serveFlagSet(t)
			path := writeConfig(t, tc.body)
			err := applyConfigFile(fs, path)
			if err == nil {
				t.Fatalf("no error; config %+v", *cfg)
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
			if strings.Contains(msg, "did you mean") && !strings.Contains(strings.Join(tc.want, " "), "did you mean") {
				t.Errorf("unexpected hint in %q", msg)
			}
		})
	}
}

// Every problem is reported at once, one per line, and the good keys
// around them are still applied.
func TestConfigFileErrorsCollected(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	path := writeConfig(t, `
rtmp_adr: :1935
playlist-size: x
app: studio
storage: {dir: /x}
config: more.yaml
log-level: debug
log-level: warn
`)
	err := applyConfigFile(fs, path)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	wantKeys := []string{`"rtmp_adr"`, `"playlist-size"`, `"storage"`, `"config"`, `"log-level"`}
	if len(lines) != len(wantKeys) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(wantKeys), err)
	}
	for i, k := range wantKeys {
		if !strings.HasPrefix(lines[i], path+": ") || !strings.Contains(lines[i], k) {
			t.Errorf("problem %d: %q, want the file and key %s", i, lines[i], k)
		}
	}
	if cfg.PlaylistSize != 6 {
		t.Errorf("bad playlist-size clobbered the default: %d", cfg.PlaylistSize)
	}
	if cfg.App != "studio" || cfg.LogLevel != "debug" {
		t.Errorf("good keys not applied: app %q log-level %q", cfg.App, cfg.LogLevel)
	}
}

// A bad value in the file is an error even when a flag or variable
// overrides it, and the override stands.
func TestConfigFileBadValueUnderOverride(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	if err := fs.Parse([]string{"--playlist-size=9"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FOUNT_SEGMENT_DURATION", "3s")
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "playlist-size: lots\nsegment-duration: soon\n")
	err := applyConfigFile(fs, path)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`key "playlist-size": invalid argument "lots"`, `key "segment-duration": invalid argument "soon"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if cfg.PlaylistSize != 9 || cfg.SegmentDuration != 3*time.Second {
		t.Errorf("overrides lost: size %d duration %s", cfg.PlaylistSize, cfg.SegmentDuration)
	}
}

func TestConfigFileMissing(t *testing.T) {
	_, fs := serveFlagSet(t)
	path := filepath.Join(t.TempDir(), "nope.yaml")
	err := applyConfigFile(fs, path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error naming %s", err, path)
	}
}

func TestConfigFileHint(t *testing.T) {
	_, fs := serveFlagSet(t)
	for key, want := range map[string]string{
		"rtmp_addr":       "rtmp-addr",
		"RTMP-ADDR":       "rtmp-addr",
		"segment-duraton": "segment-duration",
		"segment_format":  "segment-format",
		"lowlatency":      "low-latency",
		"playlist size":   "playlist-size",
		"part-holdback":   "part-hold-back",
		"loglevel":        "log-level",
		"port":            "",
		"x":               "",
		"confg":           "", // --config is never a file key
	} {
		if got := closestFlag(fs, key); got != want {
			t.Errorf("closestFlag(%q) = %q, want %q", key, got, want)
		}
	}
}

// runConfigCheck runs `fount config ARGS...` as the root command would.
func runConfigCheck(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newConfigCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return stdout.String(), stderr.String(), err
}

func TestConfigCheckGood(t *testing.T) {
	// The environment must not change what check says about a file.
	t.Setenv("FOUNT_PLAYLIST_SIZE", "oops")
	t.Setenv("FOUNT_SEGMENT_DURATION", "1h")
	path := writeConfig(t, "app: studio\nsegment-duration: 4s\nplaylist-size: 8\nlow-latency: false\n")
	out, _, err := runConfigCheck(t, "check", path)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if want := path + ": ok\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
}

func TestConfigCheckBad(t *testing.T) {
	path := writeConfig(t, `
rtmp_adr: :1935
playlist-size: x
segment-format: webm
segment-duration: 100ms
`)
	out, _, err := runConfigCheck(t, "check", path)
	if err == nil {
		t.Fatalf("no error; stdout %q", out)
	}
	if strings.Contains(out, "ok") {
		t.Errorf("stdout %q says ok", out)
	}
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %T is not a usageError (exit 2): %v", err, err)
	}
	msg := err.Error()
	for _, w := range []string{
		`unknown key "rtmp_adr"`, "did you mean rtmp-addr?",
		`key "playlist-size": invalid argument "x"`,
		`--segment-format "webm"`, // from validate()
		"--segment-duration 100ms",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not contain %q:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "--playlist-size 0:") {
		t.Errorf("the bad playlist-size left a value validate() complains about:\n%s", msg)
	}
	if n := strings.Count(msg, "\n") + 1; n != 5 {
		t.Errorf("got %d problems, want 5 (hint line counted once):\n%s", n, msg)
	}
	for _, line := range strings.Split(msg, "\n") {
		if !strings.HasPrefix(line, path+": ") {
			t.Errorf("problem without the file name: %q", line)
		}
	}
}

func TestConfigCheckUsage(t *testing.T) {
	for _, args := range [][]string{
		{"check"},
		{"check", "a.yaml", "b.yaml"},
		{"chek", "a.yaml"},
		{"check", filepath.Join(t.TempDir(), "missing.yaml")},
	} {
		_, _, err := runConfigCheck(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("config %q: got %v, want a usageError", args, err)
		}
	}
	out, _, err := runConfigCheck(t)
	if err != nil || !strings.Contains(out, "Check a config file") {
		t.Errorf("config with no subcommand: err %v, help %q", err, out)
	}
}

// The limits are flags like the others: file keys, FOUNT_* variables, the
// byte-size forms of --max-message-size, and range checks.
func TestConfigFileLimits(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	path := writeConfig(t, `
max-connections: 2000
max-publishers: 50
max-streams: 20
handshake-timeout: 3s
rtmp-idle-timeout: 20s
max-message-size: 4M
http-idle-timeout: 30s
http-write-timeout: 5m
`)
	t.Setenv("FOUNT_MAX_STREAMS", "30")
	if err := applyConfigFile(fs, path); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.MaxConnections, want.MaxPublishers, want.MaxStreams = 2000, 50, 30
	want.HandshakeTimeout, want.RTMPIdleTimeout, want.MaxMessageSize = 3*time.Second, 20*time.Second, 4<<20
	want.HTTPIdleTimeout, want.HTTPWriteTimeout = 30*time.Second, 5*time.Minute
	if *cfg != want {
		t.Errorf("got  %+v\nwant %+v", *cfg, want)
	}
	if err := cfg.validate(); err != nil {
		t.Error(err)
	}

	for in, want := range map[string]byteSize{"8388608": 8 << 20, "512K": 512 << 10, "512kb": 512 << 10, "2MiB": 2 << 20, "3 M": 3 << 20, "100b": 100} {
		var b byteSize
		if err := b.Set(in); err != nil || b != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
		var back byteSize
		if err := back.Set(b.String()); err != nil || back != b {
			t.Errorf("%q does not round-trip: %q → %d, %v", in, b.String(), back, err)
		}
	}
	for _, bad := range []string{"", "M", "-1", "1.5M", "8G", "lots"} {
		var b byteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted: %d", bad, b)
		}
	}

	_, fs = serveFlagSet(t)
	err := applyConfigFile(fs, writeConfig(t, "max-message-size: huge\nmax-connections: many\n"))
	for _, s := range []string{`key "max-message-size"`, `key "max-connections"`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not name %s", err, s)
		}
	}

	c := defaultConfig()
	c.MaxPublishers, c.MaxMessageSize, c.HTTPWriteTimeout, c.HandshakeTimeout = c.MaxConnections+1, 16<<20, 10*time.Second, 0
	err = c.validate()
	for _, s := range []string{"--max-publishers", "--max-message-size 16MiB", "--http-write-timeout 10s", "--handshake-timeout 0s"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("validate: %v; want it to mention %s", err, s)
		}
	}
	if d := defaultConfig().httpWriteTimeout(); d != 90*time.Second {
		t.Errorf("derived write timeout %s, want 1m30s (3 × 10 s + 1 m)", d)
	}
}
