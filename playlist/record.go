package playlist

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/fount-live/fount/storage"
)

// Recordings (Config.Record). A recording is one stream (one rendition)
// from its first publish to its end, reconnects within the reconnect window
// included. Its playlist, APP/NAME[/RENDITION]/rec/ID/index.m3u8, lists the
// live segments' own objects (../../segN.ts): nothing is copied, and the
// sweep leaves recorded segments in storage for the recording to own. It is
// an EVENT playlist while the stream is live and becomes VOD, with
// EXT-X-ENDLIST, when the stream ends. recording.json beside it carries
// what the API lists, so a restarted fount finds its recordings without
// reading every playlist.

const (
	recDir         = "rec"
	recInfoName    = "recording.json"
	recIDLayout    = "20060102T150405Z"
	recStateActive = "recording"
	recStateDone   = "finished"
)

// Recording describes one recording, as the API lists it.
type Recording struct {
	Stream string `json:"stream"` // APP/NAME
	ID     string `json:"id"`     // the UTC start time, 20261201T231313Z
	// State is "recording" while the stream is live or may reconnect,
	// "finished" once it ended (the playlist is VOD).
	State string    `json:"state"`
	Start time.Time `json:"start"` // wall-clock time of the first segment
	End   time.Time `json:"end"`   // wall-clock end of the last segment
	// Duration, Segments and Bytes count the media listed (for several
	// renditions: the longest rendition's duration, all their bytes).
	Duration        float64  `json:"duration"` // seconds
	Segments        int      `json:"segments"`
	Bytes           int64    `json:"bytes"`
	Discontinuities int      `json:"discontinuities"`
	Format          string   `json:"format"` // "ts" or "fmp4"
	Renditions      []string `json:"renditions,omitempty"`
	// Missing names the segments that were live but could not be stored
	// (a full disk, a failing bucket): left out of the recording, with a
	// discontinuity where they were.
	Missing []string `json:"missing,omitempty"`
	// Playlist and Download are the recording's URL paths on the viewer
	// port.
	Playlist string `json:"playlist"`
	Download string `json:"download"`
}

// recInfo is recording.json: one stream's (one rendition's) recording.
type recInfo struct {
	Path            string    `json:"path"` // APP/NAME[/RENDITION]
	ID              string    `json:"id"`
	State           string    `json:"state"`
	Start           time.Time `json:"start"`
	End             time.Time `json:"end"`
	Duration        float64   `json:"duration"`
	Segments        int       `json:"segments"`
	Bytes           int64     `json:"bytes"`
	Discontinuities int       `json:"discontinuities"`
	Format          string    `json:"format"`
	Inits           []string  `json:"inits,omitempty"`
	Missing         []string  `json:"missing,omitempty"`
	Last            string    `json:"last,omitempty"` // the last segment's name: a stream published again numbers on after it
	// Sizes are the listed segments' sizes in order, written once the
	// recording is finished (absent when a crash lost some): with them
	// the download has a length and answers range requests, which
	// ffprobe and players need to seek in it.
	Sizes []int64 `json:"sizes,omitempty"`
}

// recorder is a Stream's open recording (s.mu).
type recorder struct {
	info     recInfo
	sizes    []int64 // of the segments listed, while all are known
	body     []byte  // the segment lines so far
	lastInit int
	target   int
	disc     bool // the next listed segment follows a gap: tag a discontinuity
	keyed    bool // an EXT-X-KEY is in force in body
}

// recPrefix is the key prefix of path's recording id.
func recPrefix(path, id string) string { return path + "/" + recDir + "/" + id + "/" }

// recWrite is what a change of a recording puts in storage, after s.mu is
// released.
type recWrite struct {
	prefix   string
	playlist []byte
	info     []byte
	modTime  time.Time
	group    *variants // a rendition's: its parent's multivariant recording follows
	id       string
}

// recordLocked lists a segment just appended to the window in the open
// recording, opening one at the stream's first segment (or its first after
// it ended). s.mu is held.
func (s *Stream) recordLocked(e *entry) *recWrite {
	if !s.cfg.Record {
		return nil
	}
	if e.gap {
		// A rendition's number with no media: nothing to list.
		if s.rec != nil {
			s.rec.disc = true
		}
		return nil
	}
	if s.rec == nil {
		s.rec = s.newRecorderLocked(e.pdt)
	}
	if e.missing {
		// Not in storage: left out, named, and a discontinuity where it was.
		s.rec.disc = true
		s.rec.info.Missing = append(s.rec.info.Missing, e.name)
		return s.recRenderLocked(false)
	}
	rc := s.rec
	in := &rc.info
	if (e.discontinuity || rc.disc) && in.Segments > 0 {
		rc.body = append(rc.body, "#EXT-X-DISCONTINUITY\n"...)
		in.Discontinuities++
	}
	rc.disc = false
	if s.cfg.FMP4 && e.init != rc.lastInit {
		if rc.keyed {
			rc.body = append(rc.body, keyNone...)
			rc.keyed = false
		}
		name := initName(e.init)
		rc.body = append(rc.body, "#EXT-X-MAP:URI=\"../../"...)
		rc.body = append(rc.body, name...)
		rc.body = append(rc.body, "\"\n"...)
		rc.lastInit = e.init
		in.Inits = append(in.Inits, name)
	}
	if e.key != nil {
		rc.body = appendKeyLine(rc.body, e.key, "../../")
	} else if rc.keyed {
		rc.body = append(rc.body, keyNone...)
	}
	rc.keyed = e.key != nil
	rc.body = append(rc.body, "#EXT-X-PROGRAM-DATE-TIME:"...)
	rc.body = e.pdt.UTC().AppendFormat(rc.body, "2006-01-02T15:04:05.000Z07:00")
	rc.body = append(rc.body, "\n#EXTINF:"...)
	rc.body = appendSeconds(rc.body, e.duration)
	rc.body = append(rc.body, ",\n../../"...)
	rc.body = append(rc.body, e.name...)
	rc.body = append(rc.body, '\n')
	rc.target = max(rc.target, s.target)
	if len(rc.sizes) == in.Segments {
		rc.sizes = append(rc.sizes, e.size)
	}
	in.Segments++
	in.Bytes += e.size
	in.Duration += e.duration.Seconds()
	in.End = e.pdt.Add(e.duration)
	in.Last = e.name
	s.totals.recordedBytes.Add(uint64(e.size))
	return s.recRenderLocked(false)
}

// newRecorderLocked opens a recording whose first segment began at start.
// Its id is that time in UTC, to the second; one later when the stream
// already has a recording of that id (published again within the second).
func (s *Stream) newRecorderLocked(start time.Time) *recorder {
	start = start.UTC().Truncate(time.Second)
	var id string
	if g := s.group; g != nil {
		g.mu.Lock()
		if g.recOpen == 0 {
			g.recID = s.cfg.recordings.freshID(storage.TopStream(s.path), start)
		}
		g.recOpen++
		id = g.recID
		g.mu.Unlock()
	} else {
		id = s.cfg.recordings.freshID(s.path, start)
	}
	format := "ts"
	if s.cfg.FMP4 {
		format = "fmp4"
	}
	rc := &recorder{lastInit: -1, info: recInfo{Path: s.path, ID: id, State: recStateActive, Start: start, End: start, Format: format}}
	s.cfg.recordings.put(&rc.info)
	s.log.Info("recording started", "stream", s.path, "recording", id)
	return rc
}

// finishRecordingLocked makes the open recording VOD (the stream ended).
// s.mu is held.
func (s *Stream) finishRecordingLocked() *recWrite {
	rc := s.rec
	if rc == nil {
		return nil
	}
	s.rec = nil
	rc.info.State = recStateDone
	if g := s.group; g != nil {
		g.mu.Lock()
		g.recOpen--
		g.mu.Unlock()
	}
	s.log.Info("recording finished", "stream", s.path, "recording", rc.info.ID, "segments", rc.info.Segments, "duration", rc.info.Duration)
	return s.recRenderOf(rc, true)
}

func (s *Stream) recRenderLocked(final bool) *recWrite { return s.recRenderOf(s.rec, final) }

// recRenderOf renders rc's playlist and recording.json, and updates the
// catalog.
func (s *Stream) recRenderOf(rc *recorder, final bool) *recWrite {
	p := make([]byte, 0, len(rc.body)+256)
	p = append(p, "#EXTM3U\n#EXT-X-VERSION:"...)
	v := 3
	if s.cfg.FMP4 {
		v = 6
	}
	p = strconv.AppendInt(p, int64(v), 10)
	p = append(p, "\n#EXT-X-TARGETDURATION:"...)
	p = strconv.AppendInt(p, int64(max(rc.target, 1)), 10)
	p = append(p, "\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:"...)
	if final {
		p = append(p, "VOD"...)
	} else {
		p = append(p, "EVENT"...)
	}
	p = append(p, "\n#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	p = append(p, rc.body...)
	if final {
		p = append(p, "#EXT-X-ENDLIST\n"...)
	}
	info := rc.info
	info.Inits = append([]string(nil), info.Inits...)
	info.Missing = append([]string(nil), info.Missing...)
	s.cfg.recordings.put(&info)
	if final && len(rc.sizes) == info.Segments {
		info.Sizes = rc.sizes
	}
	j, _ := json.Marshal(info) // plain fields: cannot fail
	return &recWrite{prefix: recPrefix(s.path, info.ID), playlist: p, info: j, modTime: s.cfg.Now(), group: s.group, id: info.ID}
}

// writeRecording puts a recording's playlist and recording.json. The
// segments it lists were put before (Segment), so the playlist never names
// an object that is not there yet.
func (s *Stream) writeRecording(w *recWrite) {
	if w == nil {
		return
	}
	ctx := context.Background()
	put := func(name string, data []byte, typ string) {
		if err := s.cfg.Store.Put(ctx, w.prefix+name, storage.Object{Data: data, ContentType: typ, ModTime: w.modTime}); err != nil {
			s.totals.storageErrors.Add(1)
			s.log.Error("storing the recording failed", "stream", s.path, "recording", w.id, "object", name, "err", err)
		}
	}
	put(playlistName, w.playlist, playlistType)
	put(recInfoName, w.info, "application/json")
	if w.group != nil {
		w.group.writeRecording(w.id)
	}
}
