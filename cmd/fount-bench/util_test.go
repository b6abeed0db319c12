package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// requireTool skips a test whose peer is missing on a laptop, and fails it
// in CI, where every peer is installed (as cmd/fount's helper does).
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed, but CI must have it (see .ci/run)", name)
		}
		t.Skipf("%s not installed", name)
	}
}

func readJSON[T any](t *testing.T, path string) T {
	t.Helper()
	var v T
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}
