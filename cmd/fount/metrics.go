package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/storage"
)

// metrics maps the packages' stats snapshots to Prometheus metrics at
// scrape time, so no package depends on Prometheus and the hot paths only
// bump atomics.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	bytesOut prometheus.Counter
}

func newMetrics(rtmp *ingest.Server, pl *playlist.Registry, uploads *storage.Async) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fount_http_requests_total", Help: "HTTP requests from viewers and CDNs, by route and status code.",
		}, []string{"route", "code"}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fount_http_response_bytes_total", Help: "Bytes of HTTP response bodies sent to viewers and CDNs.",
		}),
	}
	m.reg.MustRegister(m.requests, m.bytesOut,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statsCollector{rtmp: rtmp, pl: pl, uploads: uploads})
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
)

type statsCollector struct {
	rtmp    *ingest.Server
	pl      *playlist.Registry
	uploads *storage.Async // nil unless storage is S3
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreams, descPublishes, descRTMPConns, descIngestBytes, descSegments, descParts,
		descWaiting, descErrors, descStreamBytes, descStreamSkew, descStreamUptime, descUploadsPending, descUploads} {
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
	if c.uploads != nil {
		u := c.uploads.Stats()
		ch <- prometheus.MustNewConstMetric(descUploadsPending, prometheus.GaugeValue, float64(u.Pending))
		ch <- prometheus.MustNewConstMetric(descUploads, prometheus.CounterValue, float64(u.Uploaded+u.Deleted), "done")
		ch <- prometheus.MustNewConstMetric(descUploads, prometheus.CounterValue, float64(u.Retries), "retried")
		ch <- prometheus.MustNewConstMetric(descUploads, prometheus.CounterValue, float64(u.Failed+u.Dropped), "failed")
	}
	for _, p := range in.Publishers {
		ch <- prometheus.MustNewConstMetric(descStreamBytes, prometheus.CounterValue, float64(p.MediaBytes), p.Stream)
		ch <- prometheus.MustNewConstMetric(descStreamSkew, prometheus.GaugeValue, p.AVSkew.Seconds(), p.Stream)
		ch <- prometheus.MustNewConstMetric(descStreamUptime, prometheus.GaugeValue, float64(p.Started.UnixNano())/1e9, p.Stream)
	}
}

// handler serves /metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// instrument counts viewer requests by route and status, and body bytes.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.requests.WithLabelValues(route(r.URL.Path), strconv.Itoa(sw.code)).Inc()
		m.bytesOut.Add(float64(sw.n))
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
	n    int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += n
	return n, err
}

// route names a request path for metrics; never the stream, to keep the
// label set small.
func route(path string) string {
	file := path[strings.LastIndexByte(path, '/')+1:]
	switch {
	case path == "/healthz" || path == "/readyz":
		return "health"
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

// health adds /healthz (the process serves) and /readyz (listeners up,
// storage writable) to mux.
func health(mux *http.ServeMux, ready func(context.Context) error) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
}
