package ingest

import "time"

// timeline unwraps RTMP's 32-bit millisecond timestamps onto a 64-bit
// timeline. Each step is taken as the signed 32-bit difference from the
// previous timestamp, so a wrap at 2^32 ms (49.7 days) continues forward
// while a small backwards step (audio/video interleaving) stays backwards.
type timeline struct {
	started bool
	last    uint32
	now     int64 // ms
}

func (t *timeline) unwrap(ts uint32) time.Duration {
	if !t.started {
		t.started, t.last, t.now = true, ts, int64(ts)
	} else {
		t.now += int64(int32(ts - t.last))
		t.last = ts
	}
	return time.Duration(t.now) * time.Millisecond
}
