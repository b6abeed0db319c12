package main

import (
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/rtc"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/storage"
)

// metrics maps the packages' stats snapshots to Prometheus metrics at
// scrape time, so no package depends on Prometheus and the hot paths only
// bump atomics.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	bytesOut prometheus.Counter
	ok       map[string]prometheus.Counter // requests{route, code="200"}; read-only after newMetrics
}

// seg are the totals of every stream's segmenter (segmenter.Config.Counters).
func newMetrics(rtmp *ingest.Server, pl *playlist.Registry, uploads *storage.Async, seg *segmenter.Counters) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fount_http_requests_total", Help: "HTTP requests from viewers and CDNs, by route and status code.",
		}, []string{"route", "code"}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fount_http_response_bytes_total", Help: "Bytes of HTTP response bodies sent to viewers and CDNs.",
		}),
	}
	m.ok = make(map[string]prometheus.Counter)
	for _, r := range []string{"playlist", "init", "part", "segment"} {
		m.ok[r] = m.requests.WithLabelValues(r, "200")
	}
	m.reg.MustRegister(m.requests, m.bytesOut,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statsCollector{rtmp: rtmp, pl: pl, uploads: uploads, seg: seg}, &recordingsCollector{pl: pl})
	return m
}

var (
	descStreams        = prometheus.NewDesc("fount_streams", "Streams by state: live (publishing), idle (waiting for a reconnect), ended.", []string{"state"}, nil)
	descPublishes      = prometheus.NewDesc("fount_publishes_total", "RTMP publish requests, by result.", []string{"result"}, nil)
	descRTMPConns      = prometheus.NewDesc("fount_rtmp_connections", "Open RTMP connections.", nil, nil)
	descIngestBytes    = prometheus.NewDesc("fount_ingest_bytes_total", "Bytes read from RTMP connections.", nil, nil)
	descSegments       = prometheus.NewDesc("fount_segments_total", "Media segments produced.", nil, nil)
	descParts          = prometheus.NewDesc("fount_parts_total", "LL-HLS parts produced.", nil, nil)
	descWaiting        = prometheus.NewDesc("fount_blocking_requests_waiting", "LL-HLS blocking requests waiting for a part now.", nil, nil)
	descErrors         = prometheus.NewDesc("fount_errors_total", "Errors by kind.", []string{"kind"}, nil)
	descStreamBytes    = prometheus.NewDesc("fount_stream_ingest_bytes_total", "Media bytes received for a stream from its current publisher; rate() gives the ingest bitrate.", []string{"stream"}, nil)
	descStreamSkew     = prometheus.NewDesc("fount_stream_av_skew_seconds", "Last audio timestamp minus last video timestamp of a stream's publisher.", []string{"stream"}, nil)
	descUploadsPending = prometheus.NewDesc("fount_storage_uploads_pending", "Objects waiting to be written to S3.", nil, nil)
	descUploads        = prometheus.NewDesc("fount_storage_uploads_total", "Object writes and deletes to S3, by result (done, retried, failed: given up or dropped).", []string{"result"}, nil)
	descStreamUptime   = prometheus.NewDesc("fount_stream_publish_start_time_seconds", "Unix time the current publisher of a stream started.", []string{"stream"}, nil)
	descDiscont        = prometheus.NewDesc("fount_discontinuities_total", "Segments flagged EXT-X-DISCONTINUITY within a publish, by cause: timestamp_jump, codec_config_change.", []string{"reason"}, nil)
	descDropped        = prometheus.NewDesc("fount_frames_dropped_total", "Frames received but not written to a segment, by reason: no_codec_config, before_keyframe, unused_track, malformed.", []string{"reason"}, nil)
	descMediaFiles     = prometheus.NewDesc("fount_media_files", "Memory files (memfd) holding segments and parts; each is sent to viewers with sendfile.", nil, nil)
	descMediaFileBytes = prometheus.NewDesc("fount_media_file_bytes", "Media bytes held in memory files: memory fount uses outside its Go heap (not in its RSS unless mapped; shows as Shmem).", nil, nil)
	descMediaFileErrs  = prometheus.NewDesc("fount_media_file_errors_total", "Memory files that could not be made or written; that media was kept on the Go heap instead (logged once).", nil, nil)
	descTracksSkipped  = prometheus.NewDesc("fount_rtmp_tracks_skipped_total", "Publisher tracks skipped (each once per publish): a codec fount does not remux, one the segment format cannot carry, or an unreadable configuration. The other tracks go on.", nil, nil)
	descMisaligned     = prometheus.NewDesc("fount_rendition_segments_misaligned_total", "Segments of a stream's renditions that did not line up with the other renditions' (their keyframes fall at other times): players may stall or skip when switching. See docs/abr.md.", nil, nil)
	descKeysCreated    = prometheus.NewDesc("fount_encryption_keys_created_total", "AES-128 content keys made (--encrypt aes-128), each stored in --key-dir or taken by the key server before first use.", nil, nil)
	descKeyFailures    = prometheus.NewDesc("fount_encryption_key_store_failures_total", "Failed attempts to hand a new key to the key server (or to write it to --key-dir); each is retried, then the previous key stays in use.", nil, nil)
	descKeyRotMissed   = prometheus.NewDesc("fount_encryption_key_rotations_missed_total", "Key rotations that kept the previous key because the next one was not (yet) taken by the key server.", nil, nil)
	descWraps          = prometheus.NewDesc("fount_timestamp_wraps_total", "RTMP timestamps that went past 2^32 ms (49.7 days) and were unwrapped; not an error.", nil, nil)
)

type statsCollector struct {
	rtmp    *ingest.Server
	pl      *playlist.Registry
	uploads *storage.Async // nil unless storage is S3
	seg     *segmenter.Counters
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreams, descPublishes, descRTMPConns, descIngestBytes, descSegments, descParts,
		descWaiting, descErrors, descStreamBytes, descStreamSkew, descStreamUptime, descUploadsPending, descUploads,
		descDiscont, descDropped, descWraps, descMisaligned, descTracksSkipped, descMediaFiles, descMediaFileBytes, descMediaFileErrs,
		descKeysCreated, descKeyFailures, descKeyRotMissed} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	in := c.rtmp.Stats()
	pl := c.pl.Stats()
	for state, n := range pl.Streams {
		ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(n), string(state))
	}
	ch <- prometheus.MustNewConstMetric(descPublishes, prometheus.CounterValue, float64(in.PublishesAccepted), "accepted")
	ch <- prometheus.MustNewConstMetric(descPublishes, prometheus.CounterValue, float64(in.PublishesRefused), "refused")
	ch <- prometheus.MustNewConstMetric(descRTMPConns, prometheus.GaugeValue, float64(in.Connections))
	ch <- prometheus.MustNewConstMetric(descIngestBytes, prometheus.CounterValue, float64(in.BytesIn))
	ch <- prometheus.MustNewConstMetric(descSegments, prometheus.CounterValue, float64(pl.Segments))
	ch <- prometheus.MustNewConstMetric(descParts, prometheus.CounterValue, float64(pl.Parts))
	ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(pl.BlockingWaiting))
	for kind, n := range map[string]uint64{
		"rtmp_protocol": in.ProtocolErrors, "rtmp_timeout": in.Timeouts,
		"storage": pl.StorageErrors, "blocking_timeout": pl.BlockTimeouts,
	} {
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(descWraps, prometheus.CounterValue, float64(in.TimestampWraps))
	ch <- prometheus.MustNewConstMetric(descMisaligned, prometheus.CounterValue, float64(pl.MisalignedSegments))
	ch <- prometheus.MustNewConstMetric(descTracksSkipped, prometheus.CounterValue, float64(in.TracksSkipped))
	ch <- prometheus.MustNewConstMetric(descMediaFiles, prometheus.GaugeValue, float64(pl.MediaFiles))
	ch <- prometheus.MustNewConstMetric(descMediaFileBytes, prometheus.GaugeValue, float64(pl.MediaFileBytes))
	ch <- prometheus.MustNewConstMetric(descMediaFileErrs, prometheus.CounterValue, float64(pl.MediaFileErrors))
	ch <- prometheus.MustNewConstMetric(descKeysCreated, prometheus.CounterValue, float64(pl.KeysCreated))
	ch <- prometheus.MustNewConstMetric(descKeyFailures, prometheus.CounterValue, float64(pl.KeyStoreFailures))
	ch <- prometheus.MustNewConstMetric(descKeyRotMissed, prometheus.CounterValue, float64(pl.KeyRotationsMissed))
	if c.seg != nil {
		ch <- prometheus.MustNewConstMetric(descDiscont, prometheus.CounterValue, float64(c.seg.TimestampJumps.Load()), "timestamp_jump")
		ch <- prometheus.MustNewConstMetric(descDiscont, prometheus.CounterValue, float64(c.seg.ConfigChanges.Load()), "codec_config_change")
		for r := range segmenter.NumDropReasons {
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(c.seg.Dropped[r].Load()), r.String())
		}
	}
	if c.uploads != nil {
		u := c.uploads.Stats()
		ch <- prometheus.MustNewConstMetric(descUploadsPending, prometheus.GaugeValue, float64(u.Pending))
		ch <- prometheus.MustNewConstMetric(descUploads, prometheus.CounterValue, float64(u.Uploaded+u.Deleted), "done")
		ch <- prometheus.MustNewConstMetric(descUploads, prometheus.CounterValue, float64(u.Retries), "retried")
		ch <- prometheus.MustNewConstMetric(descUploads, prometheus.CounterValue, float64(u.Failed+u.Dropped), "failed")
	}
	for _, p := range in.Publishers {
		// A grouped push has one publisher per rendition, all on one
		// stream: each is labelled with its rendition's path, or the
		// metrics collide and the whole scrape fails.
		stream := p.Stream
		if p.Variant != "" {
			stream += "/" + p.Variant
		}
		ch <- prometheus.MustNewConstMetric(descStreamBytes, prometheus.CounterValue, float64(p.MediaBytes), stream)
		ch <- prometheus.MustNewConstMetric(descStreamSkew, prometheus.GaugeValue, p.AVSkew.Seconds(), stream)
		ch <- prometheus.MustNewConstMetric(descStreamUptime, prometheus.GaugeValue, float64(p.Started.UnixNano())/1e9, stream)
	}
}

// handler serves /metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// observe counts a viewer request, answered by an event loop or by
// net/http (the viewer port's httploop.Observer), by route and status, and
// its body bytes. The loops' 200s are nearly all requests: their counters
// are looked up once (WithLabelValues hashes and validates its labels), so
// that a loop's request costs no allocation here.
func (m *metrics) observe(path []byte, status int, n int64) {
	// path may alias a loop's read buffer; route keeps none of it (its
	// labels are constants), so it need not be a copy.
	r := route(unsafe.String(unsafe.SliceData(path), len(path)))
	c, ok := m.ok[r]
	if !ok || status != http.StatusOK {
		c = m.requests.WithLabelValues(r, strconv.Itoa(status))
	}
	c.Inc()
	m.bytesOut.Add(float64(n))
}

// route names a request path on the viewer port for metrics; never the
// stream, to keep the label set small.
func route(path string) string {
	if path == "/healthz" || path == "/readyz" {
		return "health"
	}
	_, file, ok := playlist.SplitPath(path)
	// rtc.SplitPath allocates: only a path naming an endpoint is asked,
	// so counting the loops' media requests stays allocation-free.
	if strings.Contains(path, "/"+rtc.Endpoint) || strings.Contains(path, "/"+rtc.EndpointWHIP) {
		if ep, _, ok := rtc.SplitPath(path); ok {
			if strings.HasSuffix(ep, "/"+rtc.EndpointWHIP) {
				return "whip"
			}
			return "whep"
		}
	}
	switch {
	case !ok && isRecording(path):
		return "recording"
	case !ok:
		return "other"
	case strings.HasSuffix(file, ".m3u8"):
		return "playlist"
	case strings.HasPrefix(file, "init"):
		return "init"
	case strings.HasPrefix(file, "seg") && strings.Count(file, ".") == 2:
		return "part"
	case strings.HasPrefix(file, "seg"):
		return "segment"
	}
	return "other"
}

// Recordings (--record; docs/recording.md).
var (
	descRecordings      = prometheus.NewDesc("fount_recordings", "Recordings known (made by this process or found in storage), by state: recording (its stream is live or may reconnect), finished.", []string{"state"}, nil)
	descRecordingBytes  = prometheus.NewDesc("fount_recording_bytes", "Media bytes the known recordings list, in storage.", nil, nil)
	descRecordedBytes   = prometheus.NewDesc("fount_recorded_bytes_total", "Media bytes added to recordings by this process.", nil, nil)
	descRecDeleted      = prometheus.NewDesc("fount_recordings_deleted_total", "Recordings deleted, through the API or by --record-retention.", nil, nil)
	descRecDeletedBytes = prometheus.NewDesc("fount_recording_deleted_bytes_total", "Media bytes of the deleted recordings.", nil, nil)
)

// recordingsCollector exports the registry's recording counts. Without
// --record they stay 0, which is what an operator's alert expects.
type recordingsCollector struct {
	pl *playlist.Registry
}

func (c *recordingsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecordings, descRecordingBytes, descRecordedBytes, descRecDeleted, descRecDeletedBytes} {
		ch <- d
	}
}

func (c *recordingsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.pl.RecordingStats()
	ch <- prometheus.MustNewConstMetric(descRecordings, prometheus.GaugeValue, float64(st.Active), "recording")
	ch <- prometheus.MustNewConstMetric(descRecordings, prometheus.GaugeValue, float64(st.Finished), "finished")
	ch <- prometheus.MustNewConstMetric(descRecordingBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descRecordedBytes, prometheus.CounterValue, float64(st.RecordedBytes))
	ch <- prometheus.MustNewConstMetric(descRecDeleted, prometheus.CounterValue, float64(st.Deleted))
	ch <- prometheus.MustNewConstMetric(descRecDeletedBytes, prometheus.CounterValue, float64(st.DeletedBytes))
}

// Limits and crash safety (docs/scaling.md#limits).
var (
	descPanics = prometheus.NewDesc("fount_panics_total", "Panics recovered and logged with their stack, by where: rtmp (a connection's goroutine; that connection was closed), stream (the stream timers), http (a viewer request, answered 500), api.", []string{"where"}, nil)
	descLimits = prometheus.NewDesc("fount_limits_total", "Times a limit acted, by limit: max_connections (RTMP connections closed or refused to admit a new one), handshake_timeout (connections closed for not publishing in time), max_publishers and max_streams (publishes refused), segment_cap (segments cut at the size cap instead of a keyframe).", []string{"limit"}, nil)
)

// limitsCollector exports what the limits and panic recovery counted.
type limitsCollector struct {
	rtmp *ingest.Server
	pl   *playlist.Registry
	seg  *segmenter.Counters
	http *httpPanicCounts
}

func (c *limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPanics
	ch <- descLimits
}

func (c *limitsCollector) Collect(ch chan<- prometheus.Metric) {
	in := c.rtmp.Stats()
	pl := c.pl.Stats()
	for where, n := range map[string]uint64{
		"rtmp": in.Panics, "stream": pl.Panics, "http": c.http.viewer.Load(), "api": c.http.api.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(descPanics, prometheus.CounterValue, float64(n), where)
	}
	for limit, n := range map[string]uint64{
		"max_connections": in.ConnsEvicted + in.ConnsRefused, "handshake_timeout": in.HandshakeTimeouts,
		"max_publishers": in.PublisherLimit, "max_streams": pl.StreamsRefused, "segment_cap": c.seg.CappedSegments.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(descLimits, prometheus.CounterValue, float64(n), limit)
	}
}

// isRecording reports whether path is a recording's playlist or download.
func isRecording(path string) bool {
	_, _, _, ok := playlist.SplitRecordingPath(path)
	return ok
}
