package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/fount-live/fount/ingest/flv"
)

// FLV tag types, which are also the RTMP message types they travel as.
const (
	tagAudio  = flv.TagAudio
	tagVideo  = flv.TagVideo
	tagScript = flv.TagScript
)

// tag is one FLV tag of a clip.
type tag struct {
	typ     uint8
	ts      uint32 // milliseconds from the clip's first tag
	payload []byte // a window into the file's bytes, never a copy
}

// clip is an FLV file read once into memory and shared, read-only, by all
// publishers: payloads are sub-slices of the file.
type clip struct {
	config []tag   // script data and codec sequence headers, sent once per publish
	media  []tag   // everything else, replayed in a loop
	loopMS uint64  // how far timestamps move forward per loop
	rate   float64 // media bits per second over one loop
}

// loadFLV reads an FLV file.
func loadFLV(path string) (*clip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the clip: %w", err)
	}
	c, err := parseFLV(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// parseFLV splits an FLV file into tags. Timestamps are made relative to
// the first media tag; the loop length is the video span plus one frame
// interval, so that loop k+1's first frame follows loop k's last one at
// the file's own frame rate.
func parseFLV(b []byte) (*clip, error) {
	tags, err := flv.Parse(b)
	if err != nil && !errors.Is(err, flv.ErrTruncated) { // a truncated last tag, as a killed recorder leaves, is dropped
		return nil, err
	}
	c := &clip{}
	var first uint32
	haveFirst := false
	var videoTS []uint32
	var mediaBytes int
	for _, g := range tags {
		typ, ts, n := g.Type, g.Timestamp, len(g.Data)
		t := tag{typ: typ, payload: g.Data}
		switch {
		case typ == tagScript:
			c.config = append(c.config, t)
			continue
		case typ != tagAudio && typ != tagVideo, n == 0:
			continue
		case g.SequenceHeader(): // sent once, not once per loop
			c.config = append(c.config, t)
			continue
		}
		if !haveFirst {
			first, haveFirst = ts, true
		}
		if ts < first {
			ts = first // a few ms of audio before the first video frame
		}
		t.ts = ts - first
		if typ == tagVideo {
			videoTS = append(videoTS, t.ts)
		}
		mediaBytes += n
		c.media = append(c.media, t)
	}
	if len(c.media) == 0 {
		return nil, errors.New("no audio or video tags")
	}
	// Media must be in DTS order for the timestamps to be monotonic per
	// track; FLV muxers write them so, but make sure.
	sort.SliceStable(c.media, func(i, j int) bool { return c.media[i].ts < c.media[j].ts })
	if len(videoTS) > 0 {
		// Video sets the loop: its last frame plus one frame interval,
		// so the GOP across the seam is as long as the others. Audio
		// that would overlap the next loop's first frames is left out.
		sort.Slice(videoTS, func(i, j int) bool { return videoTS[i] < videoTS[j] })
		c.loopMS = uint64(videoTS[len(videoTS)-1]) + frameInterval(videoTS)
		keep := c.media[:0]
		for _, t := range c.media {
			if uint64(t.ts) < c.loopMS {
				keep = append(keep, t)
			} else {
				mediaBytes -= len(t.payload)
			}
		}
		c.media = keep
	} else {
		c.loopMS = uint64(c.media[len(c.media)-1].ts) + 20 // one AAC frame or so
	}
	c.rate = float64(mediaBytes) * 8 / (float64(c.loopMS) / 1000)
	return c, nil
}

// frameInterval is the median gap between video timestamps (33 ms at 30
// fps), or 20 ms without video.
func frameInterval(ts []uint32) uint64 {
	if len(ts) < 2 {
		return 20
	}
	d := make([]uint32, 0, len(ts)-1)
	for i := 1; i < len(ts); i++ {
		if ts[i] > ts[i-1] {
			d = append(d, ts[i]-ts[i-1])
		}
	}
	if len(d) == 0 {
		return 20
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return uint64(d[len(d)/2])
}

// mediaTS is the timestamp of media tag i in loop k: each loop continues
// where the previous one ended.
func (c *clip) mediaTS(loop uint64, i int) uint64 {
	return loop*c.loopMS + uint64(c.media[i].ts)
}
