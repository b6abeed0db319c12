package main

import (
	"strings"
	"testing"
	"time"
)

// TestConfigPartHoldBack: PART-HOLD-BACK may go down to twice the part
// duration (rfc8216bis: MUST be at least twice; SHOULD be three times,
// the default), not below.
func TestConfigPartHoldBack(t *testing.T) {
	for _, tc := range []struct {
		part, hold time.Duration
		want       string // "" for valid
	}{
		{200 * time.Millisecond, 0, ""},
		{200 * time.Millisecond, 400 * time.Millisecond, ""},
		{200 * time.Millisecond, time.Second, ""},
		{100 * time.Millisecond, 200 * time.Millisecond, ""},
		{200 * time.Millisecond, 399 * time.Millisecond, "--part-hold-back 399ms: must be at least twice --part-duration (400ms)"},
		{100 * time.Millisecond, 100 * time.Millisecond, "--part-hold-back 100ms: must be at least twice --part-duration (200ms)"},
	} {
		c := defaultConfig()
		c.PartDuration, c.PartHoldBack = tc.part, tc.hold
		err := c.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("part %s, hold-back %s: %v", tc.part, tc.hold, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("part %s, hold-back %s: %v; want %q", tc.part, tc.hold, err, tc.want)
		}
	}
	// Classic HLS has no parts: the hold-back is not checked.
	c := defaultConfig()
	c.LowLatency, c.PartHoldBack = false, time.Millisecond
	if err := c.validate(); err != nil {
		t.Errorf("--low-latency=false with a 1ms hold-back: %v", err)
	}
}
