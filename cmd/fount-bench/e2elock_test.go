package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// lockEndToEnd serialises the end-to-end test with cmd/fount's (same lock
// file): `go test ./...` runs packages in parallel, and real-time video
// pushes and hundreds of viewers in both starve a 2-core machine. Held for the
// test's run.
func lockEndToEnd(t testing.TB) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "fount-e2e.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return // no lock: the test still runs, only not serialised
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}
