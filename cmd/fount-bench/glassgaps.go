package main

// Freezes as a glass run sees them: gaps between presented frames, and
// for WebRTC, Chromium's own freeze and pause counts.

// glassGap is a time without a presented frame: from At (s after the
// page's start) for Gap s.
type glassGap struct {
	At  float64 `json:"at"`
	Gap float64 `json:"gap"`
}

// glassRTC is Chromium's inbound-rtp video stats (webrtc-stats) at At;
// the counts are since the session began.
type glassRTC struct {
	At                   float64 `json:"at"`
	FreezeCount          int     `json:"freezeCount"`
	TotalFreezesDuration float64 `json:"totalFreezesDuration"`
	PauseCount           int     `json:"pauseCount"`
	TotalPausesDuration  float64 `json:"totalPausesDuration"`
	FramesDecoded        int     `json:"framesDecoded"`
	FramesDropped        int     `json:"framesDropped"`
	PacketsLost          int     `json:"packetsLost"`
	NackCount            int     `json:"nackCount"`
	JitterBufferMs       float64 `json:"jitterBufferMs"`
}

// frameGaps counts the page's gaps over 100 ms that begin in [from, to)
// s after the first frame, and finds the longest time between presented
// frames there: the gaps', or the decoded samples' when every presented
// frame was decoded (a frame whose stamp was unreadable is no sample).
func frameGaps(p glassPage, from, to float64) (n int, longestMs float64) {
	for _, g := range p.Gaps {
		if at := g.At - p.FirstFrameAt; at >= from && at < to {
			n++
			longestMs = max(longestMs, g.Gap*1000)
		}
	}
	if p.Undecoded > 0 {
		return n, longestMs
	}
	prev := -1.0
	for _, s := range p.Samples {
		if s[0] < from || s[0] >= to {
			continue
		}
		if prev >= 0 {
			longestMs = max(longestMs, (s[0]-prev)*1000)
		}
		prev = s[0]
	}
	return n, longestMs
}

// rtcWindow is the change in the WebRTC stats between the last snapshot
// at or before from and the last before to (page seconds); nil without
// two snapshots.
func rtcWindow(snaps []glassRTC, from, to float64) *glassRTC {
	var a, b *glassRTC
	for i := range snaps {
		switch s := &snaps[i]; {
		case s.At <= from:
			a = s
		case s.At < to:
			if a == nil {
				a = s
			}
			b = s
		}
	}
	if a == nil || b == nil {
		return nil
	}
	return &glassRTC{At: b.At - a.At, FreezeCount: b.FreezeCount - a.FreezeCount, TotalFreezesDuration: b.TotalFreezesDuration - a.TotalFreezesDuration,
		PauseCount: b.PauseCount - a.PauseCount, TotalPausesDuration: b.TotalPausesDuration - a.TotalPausesDuration,
		FramesDecoded: b.FramesDecoded - a.FramesDecoded, FramesDropped: b.FramesDropped - a.FramesDropped,
		PacketsLost: b.PacketsLost - a.PacketsLost, NackCount: b.NackCount - a.NackCount, JitterBufferMs: b.JitterBufferMs}
}
