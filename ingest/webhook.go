package ingest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ErrRefused is wrapped when the webhook answered and said no (a 4xx
// status or an unusable stream name).
var ErrRefused = errors.New("publish refused by the webhook")

// ErrWebhookUnavailable is wrapped when the webhook gave no usable answer:
// a network error, a timeout, a 5xx status or a malformed body. Publishes
// are refused then too (fail closed).
var ErrWebhookUnavailable = errors.New("publish webhook unavailable")

const (
	webhookQueueSize   = 1024
	webhookMaxResponse = 64 << 10
	signaturePrefix    = "sha256="
)

// WebhookConfig configures the "webhook" mode.
type WebhookConfig struct {
	URL     string
	Secret  []byte        // HMAC-SHA256 key
	Timeout time.Duration // per request (default 3 s)
	Client  *http.Client  // nil: a client with the timeout that does not follow redirects
	Logger  *slog.Logger
}

// Webhook asks an HTTP endpoint whether a publish may go ahead, and tells it
// of later events. Every request is a JSON POST signed with
//
//	X-Fount-Timestamp: <unix seconds>
//	X-Fount-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">
//
// which a receiver checks with VerifySignature (and by refusing stale
// timestamps, against replays).
type Webhook struct {
	url     string
	where   string // the URL without query or credentials, for messages
	secret  []byte
	timeout time.Duration
	client  *http.Client
	log     *slog.Logger

	queue   chan notification
	backoff []time.Duration // waits before the retries of a notification
	dropped atomic.Uint64
	now     func() time.Time
}

type notification struct {
	event string
	body  []byte
}

// NewWebhook checks the configuration and returns a webhook. Call Run in a
// goroutine for Notify's events to be sent.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("webhook URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("webhook URL: scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("webhook URL: no host")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("webhook: a signing secret is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout: cfg.Timeout,
			// A redirect would turn the signed POST into a GET (or resend
			// it elsewhere): treat it as the answer instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	where := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return &Webhook{
		url:     u.String(),
		where:   where.String(),
		secret:  bytes.Clone(cfg.Secret),
		timeout: cfg.Timeout,
		client:  cfg.Client,
		log:     cfg.Logger,
		queue:   make(chan notification, webhookQueueSize),
		backoff: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second},
		now:     time.Now,
	}, nil
}

type publishEvent struct {
	Event    string            `json:"event"`
	App      string            `json:"app"`
	Key      string            `json:"key"`
	ClientIP string            `json:"client_ip"`
	Metadata map[string]string `json:"metadata"`
}

type publishAnswer struct {
	Name string `json:"name"`
}

// Authorize asks the webhook. A 2xx answer allows the publish, under the
// name in an optional {"name": "..."} body, else under the key. Anything
// else refuses it with an error that says why and never holds the key.
func (w *Webhook) Authorize(ctx context.Context, req AuthRequest) (string, error) {
	md := req.Metadata
	if md == nil {
		md = map[string]string{}
	}
	body, err := json.Marshal(publishEvent{Event: "publish", App: req.App, Key: req.Key, ClientIP: clientIP(req.Remote), Metadata: md})
	if err != nil {
		return "", fmt.Errorf("%w: encoding the request: %v", ErrWebhookUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	start := time.Now()
	status, answer, err := w.post(ctx, body)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrWebhookUnavailable, w.describe(ctx, start, err))
	}
	switch {
	case status >= 200 && status <= 299:
	case status >= 500:
		return "", fmt.Errorf("%w: %s answered HTTP %d", ErrWebhookUnavailable, w.where, status)
	default:
		return "", fmt.Errorf("%w: %s answered HTTP %d", ErrRefused, w.where, status)
	}
	var a publishAnswer
	if len(bytes.TrimSpace(answer)) > 0 {
		if err := json.Unmarshal(answer, &a); err != nil {
			// Not quoted: the body might echo the request.
			return "", fmt.Errorf("%w: %s answered HTTP %d with a body that is not a JSON object", ErrWebhookUnavailable, w.where, status)
		}
	}
	name := a.Name
	if name == "" {
		name = req.Key
	}
	if !validName(name) {
		return "", fmt.Errorf("%w: %w: %s gave a stream name that is not letters, digits, '-', '_' and '.' (at most 128, no \"..\")", ErrRefused, ErrInvalidName, w.where)
	}
	return name, nil
}

// describe turns a failed request into an error without the key (url.Error
// quotes the full URL, which may hold a token, so it is unwrapped).
func (w *Webhook) describe(ctx context.Context, start time.Time, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%s: cancelled", w.where)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		// The caller's deadline may be shorter than ours: say what happened.
		return fmt.Errorf("%s: no answer after %s (timeout)", w.where, time.Since(start).Round(time.Millisecond))
	}
	return fmt.Errorf("%s: %v", w.where, err)
}

// post sends one signed request and returns the status and up to 64 KiB of
// the answer.
func (w *Webhook) post(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fount")
	req.Header.Set("X-Fount-Timestamp", ts)
	req.Header.Set("X-Fount-Signature", sign(w.secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, webhookMaxResponse))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	// Drain a little more so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, webhookMaxResponse))
	return resp.StatusCode, answer, nil
}

// Sign returns the X-Fount-Signature of a request with that timestamp
// (X-Fount-Timestamp) and body, for other signed requests fount sends (the
// key server's POSTs, docs/encryption.md), so that one receiver check,
// VerifySignature, serves them all.
func Sign(secret []byte, timestamp string, body []byte) string { return sign(secret, timestamp, body) }

func sign(secret []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature reports whether signature ("sha256=<hex>", the
// X-Fount-Signature header) is the HMAC-SHA256 under secret of
// "<timestamp>.<body>", timestamp being the X-Fount-Timestamp header. It
// does not judge the timestamp's age: receivers should also refuse
// timestamps more than a few minutes from their clock.
func VerifySignature(secret []byte, timestamp string, body []byte, signature string) bool {
	hexSig, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, timestamp, body))
}

func clientIP(a net.Addr) string {
	switch t := a.(type) {
	case nil:
		return ""
	case *net.TCPAddr:
		return t.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// Notify queues an event ("publish_ended", "stream_ended", ...) for Run to
// send: a JSON object of fields plus "event". It never blocks: when the
// queue (1024 events) is full the event is dropped and logged.
func (w *Webhook) Notify(event string, fields map[string]any) {
	m := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		m[k] = v
	}
	m["event"] = event
	body, err := json.Marshal(m)
	if err != nil {
		w.log.Error("webhook event not sent: cannot encode it", "event", event, "err", err)
		return
	}
	select {
	case w.queue <- notification{event: event, body: body}:
	default:
		n := w.dropped.Add(1)
		w.log.Warn("webhook event dropped: queue full", "event", event, "dropped_total", n)
	}
}

// Run sends queued events, one at a time, until ctx is done; what is still
// queued then is not sent. An event is tried once and, after a network
// error, a timeout, a 429 or a 5xx, retried after 0.5 s, 1 s and 2 s. Call
// Run once.
func (w *Webhook) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-w.queue:
			w.deliver(ctx, n)
		}
	}
}

func (w *Webhook) deliver(ctx context.Context, n notification) {
	for attempt := 0; ; attempt++ {
		retry, err := w.sendOnce(ctx, n.body)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retry || attempt >= len(w.backoff) {
			w.log.Warn("webhook event not delivered", "event", n.event, "attempts", attempt+1, "err", err)
			return
		}
		w.log.Debug("webhook event failed; retrying", "event", n.event, "attempt", attempt+1, "in", w.backoff[attempt], "err", err)
		t := time.NewTimer(w.backoff[attempt])
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// sendOnce posts one event and says whether a failure is worth a retry.
func (w *Webhook) sendOnce(ctx context.Context, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	start := time.Now()
	status, _, err := w.post(ctx, body)
	switch {
	case err != nil:
		return true, w.describe(ctx, start, err)
	case status >= 200 && status <= 299:
		return false, nil
	case status == http.StatusTooManyRequests || status >= 500:
		return true, fmt.Errorf("%s answered HTTP %d", w.where, status)
	default:
		return false, fmt.Errorf("%s answered HTTP %d", w.where, status)
	}
}
