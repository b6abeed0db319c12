package playauth

import (
	"bufio"
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
	"sync"
	"time"
)

// WebhookConfig configures NewWebhook.
type WebhookConfig struct {
	URL     string
	Secret  []byte        // signs each POST, as the publish webhook's (at least MinSecretLen bytes)
	Cache   time.Duration // how long an answer holds for a viewer (default 1 min)
	Timeout time.Duration // per request (default 3 s)
	Client  *http.Client  // nil: one with Timeout that does not follow redirects
	Logger  *slog.Logger
	Now     func() time.Time
}

// maxCached bounds the answers kept: beyond it, expired ones go, and then
// all (every viewer asks again once).
const maxCached = 100_000

// webhook asks the site whether a viewer may play. A viewer is its stream
// and its query (Carry's part: the site's own parameters, e.g. a ticket),
// so the answer to its first request covers the next ones until Cache
// passes.
type webhook struct {
	url, where string
	secret     []byte
	ttl        time.Duration
	client     *http.Client
	log        *slog.Logger

	mu       sync.RWMutex
	answers  map[string]answer
	inflight map[string]*call // one POST per viewer at a time
}

type answer struct {
	allow  bool
	reason string
	until  time.Time
}

type call struct {
	done   chan struct{}
	status int
	label  string
	reason string
}

// NewWebhook returns an Auth that asks cfg.URL, and remembers its answers
// for cfg.Cache.
func NewWebhook(cfg WebhookConfig) (*Auth, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("play webhook URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("play webhook URL %q: want http(s)://host/path", cfg.URL)
	}
	if len(cfg.Secret) < MinSecretLen {
		return nil, errors.New("play webhook: a signing secret of at least 16 characters is required")
	}
	if cfg.Cache <= 0 {
		cfg.Cache = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	where := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	h := &webhook{url: u.String(), where: where.String(), secret: bytes.Clone(cfg.Secret), ttl: cfg.Cache,
		client: cfg.Client, log: cfg.Logger, answers: make(map[string]answer), inflight: make(map[string]*call)}
	return &Auth{hook: h, now: cfg.Now}, nil
}

// viewerKey is "stream?carried-query", in buf when it fits.
func viewerKey[Q string | []byte](buf []byte, stream string, query Q) []byte {
	return Carry(append(append(buf, stream...), '?'), query)
}

// cached reports whether an answer that allows the viewer is known.
func (h *webhook) cached(stream string, query []byte, now time.Time) bool {
	var buf [256]byte
	k := viewerKey(buf[:0], stream, query)
	h.mu.RLock()
	a, ok := h.answers[string(k)]
	h.mu.RUnlock()
	return ok && a.allow && now.Before(a.until)
}

// check answers from the cache, or asks the webhook (once for all the
// viewer's concurrent requests).
func (h *webhook) check(ctx context.Context, stream string, req *http.Request, now time.Time) (status int, label, reason string) {
	key := string(viewerKey(nil, stream, req.URL.RawQuery))
	h.mu.Lock()
	if a, ok := h.answers[key]; ok && now.Before(a.until) {
		h.mu.Unlock()
		if a.allow {
			return 0, "", ""
		}
		return http.StatusForbidden, ReasonDenied, a.reason
	}
	c, waiting := h.inflight[key]
	if !waiting {
		c = &call{done: make(chan struct{})}
		h.inflight[key] = c
	}
	h.mu.Unlock()
	if waiting {
		select {
		case <-c.done:
			return c.status, c.label, c.reason
		case <-ctx.Done():
			return http.StatusServiceUnavailable, ReasonUnavailable, "play authorization: request cancelled"
		}
	}
	c.status, c.label, c.reason = h.ask(ctx, stream, key[len(stream)+1:], req)
	h.mu.Lock()
	delete(h.inflight, key)
	if c.label != ReasonUnavailable { // an outage is not an answer: ask again next time
		if len(h.answers) >= maxCached {
			h.evictLocked(now)
		}
		h.answers[key] = answer{allow: c.label == "", reason: c.reason, until: now.Add(h.ttl)}
	}
	h.mu.Unlock()
	close(c.done)
	return c.status, c.label, c.reason
}

func (h *webhook) evictLocked(now time.Time) {
	for k, a := range h.answers {
		if !now.Before(a.until) {
			delete(h.answers, k)
		}
	}
	if len(h.answers) >= maxCached {
		clear(h.answers)
	}
}

// playRequest is the JSON body of the POST.
type playRequest struct {
	Event        string `json:"event"` // "play"
	Stream       string `json:"stream"`
	Path         string `json:"path"`
	Query        string `json:"query"` // the viewer's parameters (not LL-HLS directives)
	ClientIP     string `json:"client_ip"`
	ForwardedFor string `json:"forwarded_for,omitempty"`
	UserAgent    string `json:"user_agent,omitempty"`
	Referer      string `json:"referer,omitempty"`
}

// ask POSTs the question: a 2xx allows, a 401, 403 or 404 refuses (the
// first line of the body, if any, is the reason shown), anything else is
// an outage.
func (h *webhook) ask(ctx context.Context, stream, query string, req *http.Request) (status int, label, reason string) {
	ip, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		ip = req.RemoteAddr
	}
	body, err := json.Marshal(playRequest{Event: "play", Stream: stream, Path: req.URL.Path, Query: query, ClientIP: ip,
		ForwardedFor: req.Header.Get("X-Forwarded-For"), UserAgent: req.UserAgent(), Referer: req.Referer()})
	if err != nil {
		return http.StatusServiceUnavailable, ReasonUnavailable, "play authorization unavailable"
	}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return http.StatusServiceUnavailable, ReasonUnavailable, "play authorization unavailable"
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	post.Header.Set("Content-Type", "application/json")
	post.Header.Set("X-Fount-Timestamp", ts)
	post.Header.Set("X-Fount-Signature", Sign(h.secret, ts, body))
	resp, err := h.client.Do(post)
	if err != nil {
		h.log.Warn("play webhook did not answer", "url", h.where, "stream", stream, "err", err)
		return http.StatusServiceUnavailable, ReasonUnavailable, "play authorization unavailable, try again"
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 4<<10)).ReadString('\n')
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, "", ""
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		reason = oneLine(line)
		if reason == "" {
			reason = "not allowed to play this stream"
		}
		return http.StatusForbidden, ReasonDenied, reason
	}
	h.log.Warn("play webhook answered an error", "url", h.where, "stream", stream, "status", resp.StatusCode)
	return http.StatusServiceUnavailable, ReasonUnavailable, "play authorization unavailable, try again"
}

// oneLine keeps a webhook's reason printable and short, as it goes to the
// viewer.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "")
}

// Sign is the X-Fount-Signature of a webhook request: "sha256=" and the hex
// HMAC-SHA256 under secret of "<timestamp>.<body>" — the publish
// webhook's scheme, so one receiver checks both.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
