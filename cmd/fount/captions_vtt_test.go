package main

import (
	"testing"
	"time"
)

func TestVTTSegments(t *testing.T) {
	var v vttTrack
	s := func(d float64) time.Duration { return time.Duration(d * float64(time.Second)) }
	v.add(s(10.5), "ONE")
	v.add(s(11.25), "TWO <b> & more\n\nsecond line")
	v.add(s(11.9), "") // clears TWO
	v.add(s(13.5), "THREE")
	// [10, 12): ONE until TWO, TWO until the clear.
	want := "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n" +
		"\n00:00:00.500 --> 00:00:01.250\nONE\n" +
		"\n00:00:01.250 --> 00:00:01.900\nTWO &lt;b&gt; &amp; more\nsecond line\n"
	if got := string(v.segment(s(10), s(2))); got != want {
		t.Fatalf("segment 1:\n%s\nwant:\n%s", got, want)
	}
	// [12, 14): THREE from 13.5, cut at the segment's end; [14, 16) goes on
	// with it until its 4 s are up (17.5): past this segment.
	want = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1080000,LOCAL:00:00:00.000\n" +
		"\n00:00:01.500 --> 00:00:02.000\nTHREE\n"
	if got := string(v.segment(s(12), s(2))); got != want {
		t.Fatalf("segment 2:\n%s\nwant:\n%s", got, want)
	}
	want = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1260000,LOCAL:00:00:00.000\n" +
		"\n00:00:00.000 --> 00:00:02.000\nTHREE\n"
	if got := string(v.segment(s(14), s(2))); got != want {
		t.Fatalf("segment 3:\n%s\nwant:\n%s", got, want)
	}
	if got := string(v.segment(s(18), s(2))); got != "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1620000,LOCAL:00:00:00.000\n" {
		t.Fatalf("segment 4:\n%s", got)
	}
	if len(v.cues) > 1 {
		t.Fatalf("%d cues kept after they ended", len(v.cues))
	}
	// The 33-bit wrap of MPEG-TS time.
	if got := mpegTS(time.Duration((1<<33+1)/9) * 100 * time.Microsecond); got != 1 { // 2^33+1 ticks
		t.Fatalf("mpegTS at 2^33+1 ticks = %d, want 1", got)
	}
}
