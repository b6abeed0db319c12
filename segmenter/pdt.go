package segmenter

import "time"

// refinePDT moves the PDT anchor earlier while the segment that set it is
// still open: to the earliest wall clock its primary frames imply (arrival
// minus media time since the anchor), never before the end of what was
// listed before it. An encoder that starts with a backlog (frames captured
// while it was starting, then sent at once, as ffmpeg and OBS do) delivers
// its first frame late against the frames after it, and anchoring on that
// frame alone put every PDT of the timeline as much after the frames' real
// arrival (1.25 s with ffmpeg's start-up, issue 20). The segment's PDT is
// handed over only when it closes, so nothing listed changes.
func (s *Segmenter) refinePDT() {
	if !s.pdtRefine {
		return
	}
	wall := s.wallNow().Add(-s.elapsed)
	if !wall.Before(s.pdtWall) {
		return
	}
	if wall.Before(s.pdtEnd) {
		wall = s.pdtEnd
	}
	s.pdtWall = wall
	s.segPDT, s.lastPDT = wall, wall
}

// wallNow is the wall clock without its monotonic reading. A PDT is a
// date: differences between PDTs (a break's DURATION, elapsed times) must
// be what the playlist's dates say. Two anchors taken with monotonic
// readings (before and after a reconnect) subtract on the monotonic clock,
// which drifts from the wall clock whenever NTP adjusts it; a DURATION
// came out 30 ms off its own START-DATE and CUE-IN date.
func (s *Segmenter) wallNow() time.Time { return s.now().Round(0) }
