package main

import (
	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/id3"
)

// TimedMetadata muxes an encoder's onTextData (or changed onMetaData) as an
// ID3 tag, text as TIT2 and each other property as a TXXX, at the message's
// timestamp, in every live rendition the publisher feeds.
func (s *session) TimedMetadata(tm ingest.TimedMetadata) {
	src := metadataTextData
	if tm.Source == "onMetaData" {
		src = metadataMetaData
	}
	var frames []id3.Frame
	if tm.Text != "" {
		frames = append(frames, id3.Frame{ID: "TIT2", Value: tm.Text})
	}
	for _, kv := range tm.Values {
		frames = append(frames, id3.Frame{ID: "TXXX", Description: kv.Key, Value: kv.Value})
	}
	tag, err := id3.Tag(frames...)
	if err != nil {
		s.log.Warn("timed metadata from the encoder not carried", "message", tm.Source, "err", err)
		return
	}
	ev := segmenter.TimedID3{Tag: tag}
	if tm.HasDTS && s.shift.set {
		ev.PTS, ev.HasPTS = tm.DTS+s.shift.off, true
	}
	n := 0
	for _, seg := range s.pub.liveSegmenters(s.stream) {
		if err := seg.AddMetadata(ev); err != nil {
			s.pub.metaStats.dropped.Add(1)
			s.log.Warn("timed metadata from the encoder not carried", "message", tm.Source, "err", err)
			continue
		}
		n++
	}
	if n > 0 {
		s.pub.metaStats.in[src].Add(1)
	}
}
