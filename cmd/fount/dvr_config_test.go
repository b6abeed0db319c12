package main

import (
	"strings"
	"testing"
	"time"
)

// TestConfigDVRWindow: --dvr-window is a flag like the others (file key,
// FOUNT_DVR_WINDOW), bounded, and refused with memory storage.
func TestConfigDVRWindow(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	if err := applyConfigFile(fs, writeConfig(t, "dvr-window: 2h\nstorage: dir:/srv/hls\n")); err != nil {
		t.Fatal(err)
	}
	if cfg.DVRWindow != 2*time.Hour {
		t.Fatalf("dvr-window from the file: %s", cfg.DVRWindow)
	}
	cfg, fs = serveFlagSet(t)
	t.Setenv("FOUNT_DVR_WINDOW", "12h")
	if err := applyConfigFile(fs, writeConfig(t, "dvr-window: 2h\nstorage: dir:/srv/hls\n")); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	if cfg.DVRWindow != 12*time.Hour {
		t.Fatalf("dvr-window from FOUNT_DVR_WINDOW: %s", cfg.DVRWindow)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if d := defaultConfig().DVRWindow; d != 0 {
		t.Errorf("default %s, want 0 (off)", d)
	}

	for _, tc := range []struct {
		dvr     time.Duration
		storage string
		want    string // "" for valid
	}{
		{0, "memory", ""},
		{time.Hour, "s3://bucket/hls", ""},
		{24 * time.Hour, "dir:/srv/hls", ""},
		{time.Hour, "memory", "--dvr-window 1h0m0s: needs --storage dir:/path or s3://bucket/prefix"},
		{25 * time.Hour, "dir:/srv/hls", "--dvr-window 25h0m0s: must be between 0 (off) and 24h0m0s"},
		{-time.Second, "dir:/srv/hls", "--dvr-window -1s"},
	} {
		c := defaultConfig()
		c.DVRWindow, c.Storage = tc.dvr, tc.storage
		err := c.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s with %s: %v", tc.dvr, tc.storage, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s with %s: %v; want %q", tc.dvr, tc.storage, err, tc.want)
		}
	}
}
