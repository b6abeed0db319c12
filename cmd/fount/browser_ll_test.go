package main

import "time"

// llConfig turns an origin into a Low-Latency HLS one (fMP4, 200 ms parts)
// for the "lowlatency" case of TestBrowserHLSJS. These are fount's
// defaults, spelled out so the case keeps its meaning if defaults change.
//
// Under the race detector fount runs several times slower, and on CI's two
// cores (shared with chromium and ffmpeg) hls.js then stalls at the default
// PART-HOLD-BACK of 0.6 s; those runs use 1 s. .ci/run also runs this test
// without -race, so the default hold-back is played for real there.
// llMaxMedian bounds hls.js's median latency in seconds: the project aims
// at 1.0 s; the bound leaves room for a busy machine, and under the race
// detector for the longer hold-back.
var llMaxMedian = map[bool]float64{false: 1.5, true: 2.0}[raceDetector]

var llConfig = func(c *config) {
	c.SegmentFormat = "fmp4"
	c.LowLatency = true
	c.PartDuration = 200 * time.Millisecond
	if raceDetector {
		c.PartHoldBack = time.Second
	}
}
