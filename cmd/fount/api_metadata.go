package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/id3"
)

// Timed metadata (docs/markers.md): POST /api/v1/streams/APP/NAME/metadata
// turns text or key/values into an ID3 tag that every rendition of the
// stream muxes at the next frame, or at a program date time.

// maxMetadataBody bounds the request: the tag goes in one PES (< 64 KiB).
const maxMetadataBody = 32 << 10

// apiMetadata is the request body.
type apiMetadata struct {
	Text   string            `json:"text"`   // a TIT2 frame
	Values map[string]string `json:"values"` // one TXXX frame each: description key, value
	At     *time.Time        `json:"at"`     // program date time (RFC 3339); absent: now
}

// apiMetadataQueued answers an accepted request.
type apiMetadataQueued struct {
	Renditions int        `json:"renditions"` // segmenters the tag was queued on
	Bytes      int        `json:"id3_bytes"`
	At         *time.Time `json:"at,omitempty"`
}

// metadataTag builds the ID3 tag of a request: TIT2 for text, then one
// TXXX per value, by key.
func metadataTag(m apiMetadata) ([]byte, error) {
	var frames []id3.Frame
	if m.Text != "" {
		frames = append(frames, id3.Frame{ID: "TIT2", Value: m.Text})
	}
	keys := make([]string, 0, len(m.Values))
	for k := range m.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" {
			return nil, errors.New("a value's key is empty")
		}
		frames = append(frames, id3.Frame{ID: "TXXX", Description: k, Value: m.Values[k]})
	}
	if len(frames) == 0 {
		return nil, errors.New(`give "text" or "values"`)
	}
	return id3.Tag(frames...)
}

// metadataSource names where timed metadata came from, for the metrics.
type metadataSource uint8

const (
	metadataAPI      metadataSource = iota // the API
	metadataTextData                       // RTMP onTextData
	metadataMetaData                       // RTMP onMetaData sent again mid-stream
	numMetadataSources
)

func (s metadataSource) String() string {
	return [...]string{"api", "rtmp_ontextdata", "rtmp_onmetadata"}[s]
}

// metadataStats counts timed metadata by source (each tag once, however
// many renditions carry it).
type metadataStats struct {
	in      [numMetadataSources]atomic.Uint64
	dropped atomic.Uint64 // refused: a rendition's queue full
}

var descMetadata = prometheus.NewDesc("fount_timed_metadata_total",
	"Timed metadata (ID3) events accepted, by source: api, rtmp_ontextdata, rtmp_onmetadata.", []string{"source"}, nil)

var descMetadataDropped = prometheus.NewDesc("fount_timed_metadata_dropped_total",
	"Timed metadata events a rendition could not take (too many waiting for their time).", nil, nil)

// metadataCollector exports metadataStats.
type metadataCollector struct{ st *metadataStats }

func (c metadataCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMetadata
	ch <- descMetadataDropped
}

func (c metadataCollector) Collect(ch chan<- prometheus.Metric) {
	for s := range numMetadataSources {
		ch <- prometheus.MustNewConstMetric(descMetadata, prometheus.CounterValue, float64(c.st.in[s].Load()), s.String())
	}
	ch <- prometheus.MustNewConstMetric(descMetadataDropped, prometheus.CounterValue, float64(c.st.dropped.Load()))
}

// liveSegmenters returns the segmenters of a live stream: its own, or each
// live rendition's.
func (p *publisher) liveSegmenters(st *playlist.Stream) []*segmenter.Segmenter {
	streams := []*playlist.Stream{st}
	if st.IsGroup() {
		streams = st.Renditions()
	}
	var out []*segmenter.Segmenter
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range streams {
		if s.Stats().State != playlist.StateLive {
			continue
		}
		if sess := p.sessions[s.Path()]; sess != nil && sess.stream == s {
			if seg := sess.seg.Load(); seg != nil {
				out = append(out, seg)
			}
		}
	}
	return out
}

// metadataRoutes adds POST /api/v1/streams/{app}/{name}/metadata.
func (a *api) metadataRoutes(mux *http.ServeMux, guard func(http.HandlerFunc) http.Handler) {
	mux.Handle("POST /api/v1/streams/{app}/{name}/metadata", guard(func(w http.ResponseWriter, r *http.Request) {
		path := r.PathValue("app") + "/" + r.PathValue("name")
		st := a.reg.Stream(path)
		if st == nil {
			writeJSON(w, http.StatusNotFound, apiError{"no such stream"})
			return
		}
		var m apiMetadata
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMetadataBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"body: " + err.Error()})
			return
		}
		tag, err := metadataTag(m)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
			return
		}
		segs := a.pub.liveSegmenters(st)
		if len(segs) == 0 {
			writeJSON(w, http.StatusConflict, apiError{"the stream is not live"})
			return
		}
		ev := segmenter.TimedID3{Tag: tag}
		if m.At != nil {
			ev.PDT = *m.At
		}
		n := 0
		for _, seg := range segs {
			if seg.AddMetadata(ev) == nil {
				n++
			} else {
				a.pub.metaStats.dropped.Add(1)
			}
		}
		if n == 0 {
			writeJSON(w, http.StatusServiceUnavailable, apiError{"too many timed metadata events waiting; try again"})
			return
		}
		a.pub.metaStats.in[metadataAPI].Add(1)
		a.pub.log.Info("timed metadata from the API", "stream", path, "renditions", n, "id3_bytes", len(tag), "text", m.Text, "values", len(m.Values), "at", m.At)
		writeJSON(w, http.StatusAccepted, apiMetadataQueued{Renditions: n, Bytes: len(tag), At: m.At})
	}))
}
