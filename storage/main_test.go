package storage

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// goroutine must have an owner that ends it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
