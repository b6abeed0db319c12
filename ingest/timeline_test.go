package ingest

import (
	"testing"
	"time"
)

// A wrap is reported once, even while interleaved audio and video cross
// 2^32 back and forth; jumps backwards are not wraps.
func TestTimelineWrapReportedOnce(t *testing.T) {
	var tl timeline
	const near = 1<<32 - 30
	steps := []struct {
		in   uint32
		want time.Duration
		wrap bool
	}{
		{near, near * time.Millisecond, false},
		{near + 20, (near + 20) * time.Millisecond, false},
		{5, (1<<32 + 5) * time.Millisecond, true},          // video past the wrap
		{near + 25, (near + 25) * time.Millisecond, false}, // audio still before it
		{10, (1<<32 + 10) * time.Millisecond, false},       // past it again: not a new wrap
		{0, (1 << 32) * time.Millisecond, false},           // 10 ms backwards
		{1 << 30, (1<<32 + 1<<30) * time.Millisecond, false},
	}
	for i, s := range steps {
		got := tl.unwrap(s.in)
		if got != s.want || tl.wrapped != s.wrap {
			t.Fatalf("step %d: unwrap(%d) = %v wrapped %v, want %v %v", i, s.in, got, tl.wrapped, s.want, s.wrap)
		}
	}
}
