package ertmptest

import (
	"fmt"
	"os"
	"testing"
)

// clipDir holds the clips of this package's tests, each encoded once.
var clipDir string

func TestMain(m *testing.M) {
	var err error
	clipDir, err = os.MkdirTemp("", "ertmptest-clips-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(clipDir)
	os.Exit(code)
}

func clip(t *testing.T, s ClipSpec) []Track {
	t.Helper()
	tracks, err := LoadMP4(MakeClip(t, clipDir, s))
	if err != nil {
		t.Fatal(err)
	}
	return tracks
}
