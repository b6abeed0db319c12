package ingest

import "time"

// timeline unwraps RTMP's 32-bit millisecond timestamps onto a 64-bit
// timeline. Each step is taken as the signed 32-bit difference from the
// previous timestamp, so a wrap at 2^32 ms (49.7 days) continues forward
// while a small backwards step (audio/video interleaving) stays backwards.
// Jumps (large steps either way) pass through unchanged: the segmenter,
// which sees both tracks, decides what is a discontinuity.
type timeline struct {
	started bool
	last    uint32
	now     int64 // ms
	epoch   int64 // highest now>>32 reached: wraps so far
	wrapped bool  // the last step reached a new epoch (once per wrap, whatever the interleaving)
}

func (t *timeline) unwrap(ts uint32) time.Duration {
	t.wrapped = false
	if !t.started {
		t.started, t.last, t.now = true, ts, int64(ts)
	} else {
		t.now += int64(int32(ts - t.last))
		t.last = ts
		if e := t.now >> 32; e > t.epoch {
			t.epoch, t.wrapped = e, true
		}
	}
	return time.Duration(t.now) * time.Millisecond
}

// peek places ts on the timeline without moving it: a data message's
// timestamp, beside the media's.
func (t *timeline) peek(ts uint32) time.Duration {
	if !t.started {
		return time.Duration(ts) * time.Millisecond
	}
	return time.Duration(t.now+int64(int32(ts-t.last))) * time.Millisecond
}
