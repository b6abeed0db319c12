package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// lockEndToEnd serialises this package's end-to-end tests with those of
// cmd/fount-bench (which takes the same lock): `go test ./...` runs
// packages in parallel, and two packages each pushing video, running
// hundreds of viewers and a browser on a 2-core machine starve each
// other's real-time deadlines. Only the heaviest tests take it, each for its own run.
func lockEndToEnd(t testing.TB) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "fount-e2e.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return // no lock: the tests still run, only not serialised
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}
