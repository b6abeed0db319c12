package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/playlist/playauth"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/storage"
)

// config is everything `fount serve` takes from flags and FOUNT_* variables.
type config struct {
	RTMPAddr        string
	RTMPSAddr       string
	TLSCert         string
	TLSKey          string
	HTTPAddr        string
	HTTPSAddr       string // --https-addr: TLS beside a plain --http-addr; empty: off
	HTTPTLSCert     string // --http-tls-cert/--http-tls-key: the viewer port's HTTPS; without
	HTTPTLSKey      string // --https-addr, --http-addr itself speaks TLS
	ACMEDomains     string // --acme-domains: the viewer port's certificate from an ACME CA instead (acme.go)
	ACMEEmail       string
	ACMECache       string
	ACMEDirectory   string
	ACMECAFile      string // roots for the ACME directory's own HTTPS: a test or private CA
	APIAddr         string
	APIToken        string
	App             string
	SegmentDuration time.Duration
	PlaylistSize    int
	DVRWindow       time.Duration
	Record          bool
	RecordRetention time.Duration
	ReconnectWindow time.Duration
	Storage         string
	S3Endpoint      string
	S3Region        string
	S3AccessKey     string
	S3SecretKey     string
	SegmentFormat   string
	Captions        captionFlags // --captions, --captions-name, --captions-language (captions.go)
	Streams         *streamTable // the config file's streams key: per-stream settings (streams.go); nil without
	LowLatency      bool
	PartDuration    time.Duration
	PartHoldBack    time.Duration
	Auth            string
	KeysFile        string
	WebhookURL      string
	WebhookSecret   string
	WebhookTimeout  time.Duration
	PlayAuth        string        // --play-auth: none, token or webhook (docs/play-auth.md)
	PlaySecret      string        // signs play tokens and play webhook requests
	PlayWebhookURL  string        // with --play-auth webhook
	PlayAuthCache   time.Duration // how long a play webhook answer holds
	LogFormat       string
	LogLevel        string
	ConfigFile      string // --config; not itself a file key

	// Limits (docs/scaling.md#limits).
	MaxConnections   int
	MaxPublishers    int
	MaxStreams       int
	HandshakeTimeout time.Duration
	RTMPIdleTimeout  time.Duration
	MaxMessageSize   byteSize
	RTMPChunkSize    byteSize
	HTTPIdleTimeout  time.Duration
	HTTPWriteTimeout time.Duration // 0: derived from --segment-duration (httpWriteTimeout)
	HTTPLoops        int           // event loops for plain viewer GETs: 0 one per CPU, <0 none
	CORSOrigins      string        // pages allowed to read viewer answers: "*" or a comma-separated list of origins

	// Segment encryption (docs/encryption.md).
	Encrypt         string // none or aes-128
	AdMarkers       string // daterange, cue or both (docs/markers.md)
	KeyRotation     int    // segments per key; 0: one key per publish
	KeyDir          string // where keys are kept, 0600; never the media store
	KeyURLTemplate  string // an external key server: {stream} and {id} expanded
	KeyServerSecret string // HMAC secret signing the POSTs to it

	// WebRTC playback, WHEP (docs/webrtc.md).
	WebRTCUDPAddr     string // one UDP port for every session; "" turns WebRTC off
	WebRTCPublicIPs   string // comma-separated 1:1 NAT addresses named in candidates
	WebRTCSTUN        string // comma-separated STUN URLs offered to viewers
	WebRTCMaxSessions int
	WebRTCKeepGOP     bool // every stream's last GOP kept, watched or not

	// Restarts (docs/scaling.md#restarts).
	ReusePort     bool
	HandoverGrace time.Duration

	// hooks lets tests inject faults; no flag or file sets it.
	hooks *testHooks
}

// testHooks wrap parts of the origin for tests (panic_test.go); nil in
// production.
type testHooks struct {
	publisher func(ingest.Publisher) ingest.Publisher
	viewer    func(http.Handler) http.Handler
}

func defaultConfig() config {
	return config{
		RTMPAddr:        ":1935",
		HTTPAddr:        ":8080",
		ACMEDirectory:   letsEncrypt,
		APIAddr:         "127.0.0.1:9997",
		App:             "live",
		SegmentDuration: 2 * time.Second,
		PlaylistSize:    6,
		ReconnectWindow: 30 * time.Second,
		Storage:         "memory",
		SegmentFormat:   "fmp4",
		Captions:        defaultCaptionFlags(),
		LowLatency:      true,
		PartDuration:    200 * time.Millisecond,
		PartHoldBack:    0,
		Auth:            "none",
		Encrypt:         "none",
		AdMarkers:       "daterange",
		WebhookTimeout:  3 * time.Second,
		PlayAuth:        "none",
		PlayAuthCache:   time.Minute,
		LogFormat:       "text",
		CORSOrigins:     "*",
		LogLevel:        "info",
		// One machine: 100 encoders at 6 Mbit/s is 600 Mbit/s in and,
		// with the default window, a few GB of segments in memory. A
		// connection that has not published costs ~100 KiB (go-rtmp's
		// buffers), so 1000 of them cost ~100 MiB, and junk beyond that
		// evicts junk, not encoders.
		MaxConnections: 1000,
		MaxPublishers:  100,
		MaxStreams:     200,
		// A viewer's session costs a PeerConnection and a packetizer
		// per frame: 200 is a few cores' worth at 6 Mbit/s.
		WebRTCUDPAddr:     ":8189",
		WebRTCMaxSessions: 200,
		WebRTCKeepGOP:     true,
		HandshakeTimeout:  5 * time.Second,
		RTMPIdleTimeout:   10 * time.Second,
		MaxMessageSize:    ingest.DefaultMaxMessageSize,
		RTMPChunkSize:     ingest.DefaultChunkSize,
		// Longer than CDN edges keep idle origin connections (CloudFront
		// at most 60 s, nginx 60 s), so that the edge, not fount, closes
		// them: a close racing the edge's next request fails that request.
		HTTPIdleTimeout: 120 * time.Second,
		HandoverGrace:   5 * time.Second,
	}
}

func (c *config) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.RTMPAddr, "rtmp-addr", c.RTMPAddr, "address the RTMP server listens on")
	fs.StringVar(&c.RTMPSAddr, "rtmps-addr", c.RTMPSAddr, "address of the RTMPS (RTMP over TLS) server, e.g. :1936; needs --tls-cert and --tls-key")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate (chain) for RTMPS; re-read on SIGHUP")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key for RTMPS; re-read on SIGHUP")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "address viewers and CDNs fetch HLS from")
	fs.StringVar(&c.HTTPTLSCert, "http-tls-cert", c.HTTPTLSCert, "PEM certificate (chain) for viewers' HTTPS (HTTP/2 and HTTP/1.1); without --https-addr, --http-addr then speaks TLS only; re-read on SIGHUP")
	fs.StringVar(&c.HTTPTLSKey, "http-tls-key", c.HTTPTLSKey, "PEM private key for --http-tls-cert; re-read on SIGHUP")
	fs.StringVar(&c.HTTPSAddr, "https-addr", c.HTTPSAddr, "address for viewers' HTTPS beside plain HTTP on --http-addr, e.g. :8443 (needs --http-tls-cert and --http-tls-key, or --acme-domains); empty: off")
	fs.StringVar(&c.ACMEDomains, "acme-domains", c.ACMEDomains, "host names, separated by commas, whose certificate for viewers' HTTPS fount obtains and renews from an ACME CA (instead of --http-tls-cert/--http-tls-key); needs --acme-cache")
	fs.StringVar(&c.ACMEEmail, "acme-email", c.ACMEEmail, "contact address given to the ACME CA (expiry and policy notices)")
	fs.StringVar(&c.ACMECache, "acme-cache", c.ACMECache, "directory (mode 700) keeping the ACME account key and certificates, so that a restart does not ask the CA again")
	fs.StringVar(&c.ACMEDirectory, "acme-directory", c.ACMEDirectory, "ACME directory URL (Let's Encrypt's staging: https://acme-staging-v02.api.letsencrypt.org/directory)")
	fs.StringVar(&c.ACMECAFile, "acme-ca-file", c.ACMECAFile, "PEM CA certificate to trust, besides the system's, for the ACME directory's own HTTPS: for testing or a private CA")
	fs.StringVar(&c.APIAddr, "api-addr", c.APIAddr, "address for /metrics, /healthz and /readyz (operators, not viewers); empty to disable")
	fs.StringVar(&c.APIToken, "api-token", c.APIToken, "bearer token required by /api/v1 and /metrics (required when --api-addr is not loopback; prefer FOUNT_API_TOKEN)")
	fs.StringVar(&c.App, "app", c.App, "RTMP application encoders publish to (rtmp://HOST/APP/KEY)")
	fs.DurationVar(&c.SegmentDuration, "segment-duration", c.SegmentDuration, "target segment duration; segments are cut at the first keyframe after it")
	fs.IntVar(&c.PlaylistSize, "playlist-size", c.PlaylistSize, "segments listed in the live playlist")
	fs.DurationVar(&c.DVRWindow, "dvr-window", c.DVRWindow, "how much of the past the live playlist lists, for viewers to seek back in (0: off, just --playlist-size segments); needs dir: or s3: storage")
	fs.BoolVar(&c.Record, "record", c.Record, "keep every stream, from its first publish to its end, as a recording (APP/NAME/rec/ID/index.m3u8, recording.mp4 or .ts); needs dir: or s3: storage")
	fs.DurationVar(&c.RecordRetention, "record-retention", c.RecordRetention, "delete recordings that ended longer ago than this, segments and all (0: keep them)")
	fs.DurationVar(&c.ReconnectWindow, "reconnect-window", c.ReconnectWindow, "how long a stream waits for its encoder to come back before it ends")
	fs.StringVar(&c.Storage, "storage", c.Storage, "where segments are written: memory, dir:/path or s3://bucket/prefix")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", c.S3Endpoint, "S3 endpoint URL for non-AWS servers (MinIO, versitygw, R2...); path-style requests")
	fs.StringVar(&c.S3Region, "s3-region", c.S3Region, "S3 region (default: AWS_REGION or us-east-1)")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", c.S3AccessKey, "S3 access key (default: AWS_ACCESS_KEY_ID)")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", c.S3SecretKey, "S3 secret key (default: AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&c.SegmentFormat, "segment-format", c.SegmentFormat, "segment container: fmp4 (CMAF) or ts (MPEG-TS)")
	c.Captions.register(fs)
	c.registerStreams(fs)
	fs.BoolVar(&c.LowLatency, "low-latency", c.LowLatency, "serve Low-Latency HLS: parts, blocking playlist reloads, preload hints (--low-latency=false for classic HLS)")
	fs.DurationVar(&c.PartDuration, "part-duration", c.PartDuration, "LL-HLS part target duration")
	fs.DurationVar(&c.PartHoldBack, "part-hold-back", c.PartHoldBack, "LL-HLS PART-HOLD-BACK: how far behind live players aim to play (0: 3 part durations, what the spec recommends; at least 2, what it requires)")
	fs.StringVar(&c.Auth, "auth", c.Auth, "publish authorisation: none (anyone may publish; the key is the name), keys (--keys-file) or webhook (--webhook-url)")
	fs.StringVar(&c.KeysFile, "keys-file", c.KeysFile, "with --auth keys: YAML file mapping secret stream keys to public names; re-read on change and on SIGHUP")
	fs.StringVar(&c.AdMarkers, "ad-markers", c.AdMarkers, "how ad breaks (SCTE-35 cues) are marked in media playlists: daterange (EXT-X-DATERANGE with SCTE35-OUT/IN), cue (EXT-X-CUE-OUT/CUE-OUT-CONT/CUE-IN) or both; docs/markers.md")
	fs.StringVar(&c.Encrypt, "encrypt", c.Encrypt, "segment encryption: none or aes-128 (every segment and part AES-128-CBC, keys at APP/NAME/keys/ID.key; docs/encryption.md)")
	fs.IntVar(&c.KeyRotation, "key-rotation", c.KeyRotation, "with --encrypt aes-128: a fresh key every this many segments (0: one key per publish)")
	fs.StringVar(&c.KeyDir, "key-dir", c.KeyDir, "with --encrypt aes-128: directory keeping the keys (files 0600), outside --storage; needed with dir: or s3: storage unless --key-url-template")
	fs.StringVar(&c.KeyURLTemplate, "key-url-template", c.KeyURLTemplate, "with --encrypt aes-128: an external key server, e.g. https://kms.example/{stream}/{id}: fount POSTs each new key there (signed) and playlists name that URL")
	fs.StringVar(&c.KeyServerSecret, "key-server-secret", c.KeyServerSecret, "HMAC-SHA256 secret signing the key server POSTs, as the webhook's (prefer FOUNT_KEY_SERVER_SECRET)")
	fs.StringVar(&c.WebhookURL, "webhook-url", c.WebhookURL, "with --auth webhook: URL that is POSTed each publish (and publish_ended, stream_ended events)")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", c.WebhookSecret, "HMAC-SHA256 secret signing webhook requests (prefer FOUNT_WEBHOOK_SECRET)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, "how long a publish waits for the webhook's answer before it is refused")
	fs.StringVar(&c.PlayAuth, "play-auth", c.PlayAuth, "viewer authorisation: none (anyone with the URL plays), token (signed URLs, ?expires=UNIX&token=HEX; see `fount token`) or webhook (--play-webhook-url answers)")
	fs.StringVar(&c.PlaySecret, "play-secret", c.PlaySecret, "secret (16+ characters) signing play tokens and play webhook requests (prefer FOUNT_PLAY_SECRET)")
	fs.StringVar(&c.PlayWebhookURL, "play-webhook-url", c.PlayWebhookURL, "with --play-auth webhook: URL POSTed (signed) on a viewer's first request; a 2xx allows, 401/403/404 refuses")
	fs.DurationVar(&c.PlayAuthCache, "play-auth-cache", c.PlayAuthCache, "with --play-auth webhook: how long an answer holds for a viewer (its stream and query)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "open RTMP connections at most; at the limit a new connection closes the oldest one that has not published")
	fs.IntVar(&c.MaxPublishers, "max-publishers", c.MaxPublishers, "RTMP connections publishing at once; beyond it publish is refused")
	fs.IntVar(&c.MaxStreams, "max-streams", c.MaxStreams, "streams held (live, waiting for a reconnect, or ended and not yet removed); publishing a new name beyond it is refused")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "time from an RTMP connection's accept to its publish; connections that have not published by then are closed")
	fs.DurationVar(&c.RTMPIdleTimeout, "rtmp-idle-timeout", c.RTMPIdleTimeout, "an RTMP connection that sends nothing for this long is closed")
	fs.Var(&c.MaxMessageSize, "max-message-size", "largest RTMP message (one video frame) accepted, in bytes or with a K or M suffix (1024-based)")
	fs.Var(&c.RTMPChunkSize, "rtmp-chunk-size", "RTMP chunk size announced to every client at connect; encoders that mirror it (ffmpeg) publish in chunks this large (bytes, or with a K or M suffix)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", c.HTTPIdleTimeout, "how long an idle keep-alive HTTP connection is kept open")
	fs.StringVar(&c.CORSOrigins, "cors-origins", c.CORSOrigins, "pages whose scripts may read viewer answers (CORS): * for any, or a comma-separated list of origins like https://www.example.com (docs/players.md#cors)")
	fs.IntVar(&c.HTTPLoops, "http-loops", c.HTTPLoops, "event loops answering plain GET/HEAD of playlists and media on the viewer port (0: one per CPU; -1: none, net/http answers every request)")
	fs.DurationVar(&c.HTTPWriteTimeout, "http-write-timeout", c.HTTPWriteTimeout, "longest time to answer one HTTP request, LL-HLS blocking wait included (0: 3 × the longest segment + 1m)")
	fs.StringVar(&c.WebRTCUDPAddr, "webrtc-udp-addr", c.WebRTCUDPAddr, `UDP address of WebRTC playback (WHEP at /APP/NAME/whep), one port for every session; ICE-TCP listens on the same port number; "" turns WebRTC off (docs/webrtc.md)`)
	fs.StringVar(&c.WebRTCPublicIPs, "webrtc-public-ips", c.WebRTCPublicIPs, "comma-separated public IPs of this host behind a 1:1 NAT, named in WebRTC candidates instead of the local addresses")
	fs.StringVar(&c.WebRTCSTUN, "webrtc-stun", c.WebRTCSTUN, "comma-separated STUN servers (stun:host:port) offered to WHEP viewers in Link headers; none by default")
	fs.IntVar(&c.WebRTCMaxSessions, "webrtc-max-sessions", c.WebRTCMaxSessions, "WebRTC viewer sessions at once; one more is answered 503")
	fs.BoolVar(&c.WebRTCKeepGOP, "webrtc-keep-gop", c.WebRTCKeepGOP, "keep every stream's last GOP for WebRTC viewers, so that the first viewer of a stream starts at once too; false: only while watched over WebRTC (and a minute after), sparing a copy of each frame of streams nobody watches that way")
	fs.BoolVar(&c.ReusePort, "reuse-port", c.ReusePort, "listen with SO_REUSEPORT, so that a successor can bind the same ports during a handover (SIGUSR2)")
	fs.DurationVar(&c.HandoverGrace, "handover-grace", c.HandoverGrace, "after a handover (SIGUSR2), how long viewers are still answered while the successor starts (with --reuse-port)")
}

// byteSize is a flag value in bytes, written as a number with an optional
// K or M suffix (KiB, MiB, KB, MB are the same: 1024-based).
type byteSize int64

func (b *byteSize) String() string {
	switch v := int64(*b); {
	case v != 0 && v%(1<<20) == 0:
		return strconv.FormatInt(v>>20, 10) + "MiB"
	case v != 0 && v%(1<<10) == 0:
		return strconv.FormatInt(v>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(v, 10)
	}
}

func (b *byteSize) Set(s string) error {
	num := strings.TrimSpace(s)
	mult := int64(1)
	lower := strings.ToLower(num)
	for _, suf := range []struct {
		s string
		m int64
	}{{"mib", 1 << 20}, {"mb", 1 << 20}, {"m", 1 << 20}, {"kib", 1 << 10}, {"kb", 1 << 10}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(lower, suf.s) {
			num, mult = strings.TrimSpace(num[:len(num)-len(suf.s)]), suf.m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return fmt.Errorf("%q: want a number of bytes, optionally with a K or M suffix (8M, 512K, 1048576)", s)
	}
	*b = byteSize(n * mult)
	return nil
}

func (b *byteSize) Type() string { return "bytes" }

// httpWriteTimeout is --http-write-timeout, or its derived default. An
// LL-HLS blocking request waits up to 3 target durations (rfc8216bis) and
// the target grows to the longest segment, which the segmenter caps at
// segmenter.MaxSegmentDuration, so the timeout must exceed 3 times that;
// the minute on top is for sending a segment to a slow viewer (one slower
// than that cannot play the stream live anyway).
func (c config) httpWriteTimeout() time.Duration {
	if c.HTTPWriteTimeout > 0 {
		return c.HTTPWriteTimeout
	}
	return 3*segmenter.MaxSegmentDuration(c.SegmentDuration) + time.Minute
}

// viewerTLS reports whether viewers get HTTPS (--http-tls-cert or
// --acme-domains), and tlsOnly whether --http-addr itself speaks it (no
// --https-addr).
func (c config) viewerTLS() (on, tlsOnly bool) {
	on = c.HTTPTLSCert != "" || c.ACMEDomains != ""
	return on, on && c.HTTPSAddr == ""
}

// maxDVRWindow bounds --dvr-window: a day of 2 s segments is 43,200
// listed, a playlist of some 3 MB.
const maxDVRWindow = 24 * time.Hour

// storesOutside reports whether --storage keeps segments outside the
// process (a directory or S3), as a DVR window needs.
func storesOutside(spec string) bool {
	return strings.HasPrefix(spec, "dir:") || strings.HasPrefix(spec, "s3://")
}

func (c *config) validate() error {
	var errs []error
	if c.SegmentDuration < 500*time.Millisecond || c.SegmentDuration > 60*time.Second {
		errs = append(errs, fmt.Errorf("--segment-duration %s: must be between 500ms and 60s", c.SegmentDuration))
	}
	if c.PlaylistSize < 3 || c.PlaylistSize > 1000 {
		errs = append(errs, fmt.Errorf("--playlist-size %d: must be between 3 and 1000", c.PlaylistSize))
	}
	if c.DVRWindow < 0 || c.DVRWindow > maxDVRWindow {
		errs = append(errs, fmt.Errorf("--dvr-window %s: must be between 0 (off) and %s", c.DVRWindow, maxDVRWindow))
	} else if c.DVRWindow > 0 && !storesOutside(c.Storage) {
		errs = append(errs, fmt.Errorf("--dvr-window %s: needs --storage dir:/path or s3://bucket/prefix to keep what memory does not (--storage is %q)", c.DVRWindow, c.Storage))
	}
	if c.Record && !storesOutside(c.Storage) {
		errs = append(errs, fmt.Errorf("--record: needs --storage dir:/path or s3://bucket/prefix, where recordings outlive the process (--storage is %q)", c.Storage))
	}
	if c.RecordRetention < 0 {
		errs = append(errs, fmt.Errorf("--record-retention %s: must not be negative (0 keeps recordings)", c.RecordRetention))
	} else if c.RecordRetention > 0 && !c.Record {
		errs = append(errs, fmt.Errorf("--record-retention %s: only applies with --record", c.RecordRetention))
	}
	if c.ReconnectWindow < 0 {
		errs = append(errs, fmt.Errorf("--reconnect-window %s: must not be negative", c.ReconnectWindow))
	}
	if err := storage.ValidName(c.App); err != nil {
		errs = append(errs, fmt.Errorf("--app %q: must be a name like a stream key (letters, digits, '-', '_', '.'): %w", c.App, err))
	}
	if c.SegmentFormat != "fmp4" && c.SegmentFormat != "ts" {
		errs = append(errs, fmt.Errorf("--segment-format %q: want fmp4 or ts", c.SegmentFormat))
	}
	if err := c.Captions.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Streams.validate(c.App)...)
	if c.LowLatency && (c.PartDuration < 50*time.Millisecond || c.PartDuration > c.SegmentDuration/2) {
		errs = append(errs, fmt.Errorf("--part-duration %s: must be between 50ms and half the segment duration (%s)", c.PartDuration, c.SegmentDuration/2))
	}
	if c.LowLatency && c.PartHoldBack != 0 && c.PartHoldBack < 2*c.PartDuration {
		errs = append(errs, fmt.Errorf("--part-hold-back %s: must be at least twice --part-duration (%s), as rfc8216bis requires; 0 for three part durations", c.PartHoldBack, 2*c.PartDuration))
	}
	if c.RTMPSAddr != "" && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, fmt.Errorf("--rtmps-addr %s: needs --tls-cert and --tls-key", c.RTMPSAddr))
	}
	errs = append(errs, c.validateWebRTC()...)
	if _, err := c.origins(); err != nil {
		errs = append(errs, fmt.Errorf("--cors-origins %q: %w", c.CORSOrigins, err))
	}
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		errs = append(errs, errors.New("--http-tls-cert and --http-tls-key: give both or neither"))
	}
	if c.HTTPSAddr != "" && (c.HTTPTLSCert == "" || c.HTTPTLSKey == "") && c.ACMEDomains == "" {
		errs = append(errs, fmt.Errorf("--https-addr %s: needs --http-tls-cert and --http-tls-key, or --acme-domains", c.HTTPSAddr))
	}
	errs = append(errs, c.validateACME()...)
	if c.APIAddr != "" && !isLoopback(c.APIAddr) && c.APIToken == "" {
		errs = append(errs, fmt.Errorf("--api-addr %s is reachable from other machines: set --api-token (or FOUNT_API_TOKEN)", c.APIAddr))
	}
	switch c.Auth {
	case "none":
	case "keys":
		if c.KeysFile == "" {
			errs = append(errs, errors.New("--auth keys: needs --keys-file"))
		}
	case "webhook":
		if c.WebhookURL == "" || c.WebhookSecret == "" {
			errs = append(errs, errors.New("--auth webhook: needs --webhook-url and --webhook-secret (or FOUNT_WEBHOOK_SECRET)"))
		}
	default:
		errs = append(errs, fmt.Errorf("--auth %q: want none, keys or webhook", c.Auth))
	}
	errs = append(errs, c.validatePlayAuth()...)
	errs = append(errs, c.validateEncryption()...)
	if c.MaxConnections < 1 || c.MaxConnections > 1_000_000 {
		errs = append(errs, fmt.Errorf("--max-connections %d: must be between 1 and 1000000", c.MaxConnections))
	}
	if c.MaxPublishers < 1 || c.MaxPublishers > c.MaxConnections {
		// At most MaxConnections: else every slot could publish and
		// nothing be left to evict for a new connection.
		errs = append(errs, fmt.Errorf("--max-publishers %d: must be between 1 and --max-connections (%d)", c.MaxPublishers, c.MaxConnections))
	}
	if c.MaxStreams < 1 || c.MaxStreams > 100_000 {
		errs = append(errs, fmt.Errorf("--max-streams %d: must be between 1 and 100000", c.MaxStreams))
	}
	if c.HandoverGrace < 0 || c.HandoverGrace > time.Minute {
		errs = append(errs, fmt.Errorf("--handover-grace %s: must be between 0 and 1m", c.HandoverGrace))
	}
	if c.HandshakeTimeout < 500*time.Millisecond || c.HandshakeTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("--handshake-timeout %s: must be between 500ms and 1m", c.HandshakeTimeout))
	}
	if c.RTMPIdleTimeout < time.Second || c.RTMPIdleTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--rtmp-idle-timeout %s: must be between 1s and 10m", c.RTMPIdleTimeout))
	}
	if c.MaxMessageSize < 64<<10 || c.MaxMessageSize > ingest.MaxRTMPMessageSize {
		errs = append(errs, fmt.Errorf("--max-message-size %s: must be at least 64K and below 16M (RTMP's largest message)", c.MaxMessageSize.String()))
	}
	if c.RTMPChunkSize < 128 || c.RTMPChunkSize > 0xFFFFFF {
		// 128 is RTMP's default; go-rtmp and most clients cap chunks at 24 bits.
		errs = append(errs, fmt.Errorf("--rtmp-chunk-size %s: must be between 128 and 16777215 bytes", c.RTMPChunkSize.String()))
	}
	if c.HTTPIdleTimeout < time.Second || c.HTTPIdleTimeout > time.Hour {
		errs = append(errs, fmt.Errorf("--http-idle-timeout %s: must be between 1s and 1h", c.HTTPIdleTimeout))
	}
	if lo := 3 * segmenter.MaxSegmentDuration(c.SegmentDuration); c.HTTPWriteTimeout != 0 && c.HTTPWriteTimeout < lo {
		errs = append(errs, fmt.Errorf("--http-write-timeout %s: must be 0 (derived) or at least %s, the longest LL-HLS blocking wait (3 × the longest segment)", c.HTTPWriteTimeout, lo))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// validateEncryption checks the --encrypt flags. Keys must live as long
// as the segments they open: with a store that outlives the process
// (restarts, DVR, recordings) they need --key-dir or a key server, and the
// key directory must not be in the media store, which is public.
func (c *config) validateEncryption() []error {
	var errs []error
	if _, err := playlist.ParseAdMarkers(c.AdMarkers); err != nil {
		errs = append(errs, fmt.Errorf("--ad-markers: %w", err))
	}
	switch c.Encrypt {
	case "none":
		if c.KeyRotation != 0 || c.KeyDir != "" || c.KeyURLTemplate != "" {
			errs = append(errs, errors.New("--key-rotation, --key-dir and --key-url-template need --encrypt aes-128"))
		}
		return errs
	case "aes-128":
	default:
		return append(errs, fmt.Errorf("--encrypt %q: want none or aes-128", c.Encrypt))
	}
	if c.KeyRotation < 0 || c.KeyRotation > 1_000_000 {
		errs = append(errs, fmt.Errorf("--key-rotation %d: must be between 0 (one key per publish) and 1000000", c.KeyRotation))
	}
	if c.KeyDir != "" && c.KeyURLTemplate != "" {
		errs = append(errs, errors.New("--key-dir and --key-url-template: give one (the key server keeps the keys)"))
	}
	if c.KeyURLTemplate != "" {
		u, err := url.Parse(sampleKeyURL(c.KeyURLTemplate))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.Contains(c.KeyURLTemplate, "{id}") {
			errs = append(errs, fmt.Errorf("--key-url-template %q: want an http(s) URL with {id} (and {stream})", c.KeyURLTemplate))
		}
		if c.KeyServerSecret == "" {
			errs = append(errs, errors.New("--key-url-template: needs --key-server-secret (or FOUNT_KEY_SERVER_SECRET) to sign its POSTs"))
		}
	}
	if storesOutside(c.Storage) && c.KeyDir == "" && c.KeyURLTemplate == "" {
		errs = append(errs, fmt.Errorf("--encrypt aes-128 with --storage %q: the stored segments (restarts, --dvr-window, --record) outlive the process, so must their keys: give --key-dir DIR or --key-url-template", c.Storage))
	}
	if d, ok := strings.CutPrefix(c.Storage, "dir:"); ok && c.KeyDir != "" {
		if within(c.KeyDir, d) {
			errs = append(errs, fmt.Errorf("--key-dir %q is inside the media store %q, which viewers may read: keep keys elsewhere", c.KeyDir, d))
		}
	}
	return errs
}

// sampleKeyURL fills a key URL template with sample values, to check
// that what it makes is a URL.
func sampleKeyURL(tmpl string) string {
	return playlist.ExpandKeyURL(tmpl, "live/name", "0123456789abcdef")
}

// within reports whether dir is root or below it.
func within(dir, root string) bool {
	a, err1 := filepath.Abs(dir)
	b, err2 := filepath.Abs(root)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(b, a)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// envName is the variable that sets a flag: --rtmp-addr → FOUNT_RTMP_ADDR.
func envName(flag string) string {
	return "FOUNT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its FOUNT_*
// variable, so flags win over the environment.
func applyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// origins reads --cors-origins: "*", or origins separated by commas.
func (c *config) origins() (httploop.Origins, error) {
	var list []string
	for _, o := range strings.Split(c.CORSOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			list = append(list, o)
		}
	}
	if len(list) == 0 {
		return httploop.Origins{}, errors.New(`want "*" or at least one origin`)
	}
	return httploop.NewOrigins(list)
}

// validatePlayAuth checks the --play-auth flags.
func (c config) validatePlayAuth() (errs []error) {
	short := len(c.PlaySecret) < playauth.MinSecretLen
	switch c.PlayAuth {
	case "none":
	case "token":
		if short {
			errs = append(errs, fmt.Errorf("--play-auth token: needs --play-secret (or FOUNT_PLAY_SECRET) of at least %d characters, e.g. from `openssl rand -hex 32`", playauth.MinSecretLen))
		}
	case "webhook":
		if c.PlayWebhookURL == "" || short {
			errs = append(errs, fmt.Errorf("--play-auth webhook: needs --play-webhook-url and --play-secret (or FOUNT_PLAY_SECRET) of at least %d characters, which signs its requests", playauth.MinSecretLen))
		}
		if c.PlayAuthCache < time.Second || c.PlayAuthCache > 24*time.Hour {
			errs = append(errs, fmt.Errorf("--play-auth-cache %s: must be between 1s and 24h", c.PlayAuthCache))
		}
	default:
		errs = append(errs, fmt.Errorf("--play-auth %q: want none, token or webhook", c.PlayAuth))
	}
	return errs
}
