package playauth

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// Auth judges viewer requests by one mode: tokens (NewToken) or a webhook
// (NewWebhook). Its Quick answers the event loops, its Check everything
// else; Denied counts the refusals.
type Auth struct {
	signer *Signer
	hook   *webhook
	now    func() time.Time
	denied [len(reasons)]atomic.Uint64
}

// reasons lists every refusal reason, in Denied's order.
var reasons = [...]string{ReasonMissing, ReasonMalformed, ReasonExpired, ReasonBadToken, ReasonDenied, ReasonUnavailable}

// NewToken returns an Auth that asks for a valid token (Signer) on every
// request.
func NewToken(secret []byte, now func() time.Time) (*Auth, error) {
	s, err := NewSigner(secret)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Auth{signer: s, now: now}, nil
}

// Quick reports whether a request for stream with this raw query may be
// served, without blocking or allocating; false means Check must judge it
// (it may still allow it: a webhook's answer not yet known).
func (a *Auth) Quick(stream string, query []byte) bool {
	if a.signer != nil {
		return Check(a.signer, stream, query, a.now()) == ""
	}
	return a.hook.cached(stream, query, a.now())
}

// Check judges a request for stream: status is 0 when it may be served,
// else 403 (refused) or 503 (the webhook did not answer), with a one-line
// reason for the viewer. Each refusal is counted.
func (a *Auth) Check(ctx context.Context, stream string, req *http.Request) (status int, reason string) {
	var label string
	if a.signer != nil {
		label = Check(a.signer, stream, req.URL.RawQuery, a.now())
		reason = tokenMessages[label]
		status = http.StatusForbidden
	} else {
		status, label, reason = a.hook.check(ctx, stream, req, a.now())
	}
	if label == "" {
		return 0, ""
	}
	for i, r := range reasons {
		if r == label {
			a.denied[i].Add(1)
		}
	}
	return status, reason
}

var tokenMessages = map[string]string{
	ReasonMissing:   "this stream needs a signed URL: expires and token parameters missing",
	ReasonMalformed: "malformed expires or token parameter",
	ReasonExpired:   "signed URL expired",
	ReasonBadToken:  "token is not valid for this stream",
}

// Denied returns the requests refused so far, by reason.
func (a *Auth) Denied() map[string]uint64 {
	m := make(map[string]uint64, len(reasons))
	for i, r := range reasons {
		if a.signer != nil && (r == ReasonDenied || r == ReasonUnavailable) ||
			a.hook != nil && r != ReasonDenied && r != ReasonUnavailable {
			continue // not a reason this mode has
		}
		m[r] = a.denied[i].Load()
	}
	return m
}

// Carry appends to dst the parameters of a raw query that the URIs of a
// playlist served with it must carry: all but the LL-HLS delivery
// directives (_HLS_msn, _HLS_part, _HLS_skip), which the player adds
// itself. They keep their order, joined by '&'.
func Carry[Q string | []byte](dst []byte, query Q) []byte {
	n := len(dst)
	for len(query) > 0 {
		var kv Q
		kv, query = cut(query, '&')
		if len(kv) == 0 || len(kv) >= 5 && string(kv[:5]) == "_HLS_" {
			continue
		}
		if len(dst) > n {
			dst = append(dst, '&')
		}
		dst = append(dst, kv...)
	}
	return dst
}
