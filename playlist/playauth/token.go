// Package playauth decides which viewers may play a stream: signed playback
// URLs (an HMAC token over the stream and an expiry) or a webhook that the
// site answers. A decision covers a whole stream, APP/NAME: its playlists,
// renditions, segments, parts, init segments, keys and recordings.
package playauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"sync"
	"time"
)

// Reasons a request is refused, as metrics label them.
const (
	ReasonMissing     = "missing_token"       // no expires or token parameter
	ReasonMalformed   = "malformed_token"     // not a number, not 64 hex digits
	ReasonExpired     = "expired"             // expires is in the past
	ReasonBadToken    = "bad_token"           // tampered, another secret, or another stream's
	ReasonDenied      = "webhook_denied"      // the webhook said no
	ReasonUnavailable = "webhook_unavailable" // the webhook did not answer
)

// MinSecretLen is the shortest secret accepted: a token is only as strong
// as the secret behind it.
const MinSecretLen = 16

// Signer makes and checks tokens: token = hex(HMAC-SHA256(secret,
// "APP/NAME:EXPIRES")), EXPIRES being Unix seconds, carried as
// ?expires=EXPIRES&token=TOKEN. Stream names hold no ':' (storage.ValidName),
// so no two messages are alike.
type Signer struct {
	secret []byte
	macs   sync.Pool // *macState: the loops check tokens without allocating
}

type macState struct {
	h   hash.Hash
	msg []byte
	sum []byte
}

// NewSigner returns a Signer for secret, which must be at least
// MinSecretLen bytes.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, errors.New("play secret: at least 16 characters, e.g. from `openssl rand -hex 32`")
	}
	s := &Signer{secret: append([]byte(nil), secret...)}
	s.macs.New = func() any {
		return &macState{h: hmac.New(sha256.New, s.secret), msg: make([]byte, 0, 128), sum: make([]byte, 0, sha256.Size)}
	}
	return s, nil
}

// Token returns the token for stream ("APP/NAME") valid until expires.
func (s *Signer) Token(stream string, expires time.Time) string {
	m := s.macs.Get().(*macState)
	defer s.macs.Put(m)
	return hex.EncodeToString(mac(m, stream, strconv.FormatInt(expires.Unix(), 10)))
}

// Query returns the query that signs a URL of stream until expires:
// "expires=UNIX&token=HEX".
func (s *Signer) Query(stream string, expires time.Time) string {
	return "expires=" + strconv.FormatInt(expires.Unix(), 10) + "&token=" + s.Token(stream, expires)
}

// mac is the HMAC of "stream:expires", in m.sum (valid until m's next use).
func mac[Q string | []byte](m *macState, stream string, expires Q) []byte {
	m.msg = append(append(append(m.msg[:0], stream...), ':'), expires...)
	m.h.Reset()
	m.h.Write(m.msg)
	m.sum = m.h.Sum(m.sum[:0])
	return m.sum
}

// Check judges the query of a request for stream at now: "" when it holds
// a valid token, else the reason. It does not allocate.
func Check[Q string | []byte](s *Signer, stream string, query Q, now time.Time) string {
	exp, ok1 := Param(query, "expires")
	tok, ok2 := Param(query, "token")
	if !ok1 || !ok2 {
		return ReasonMissing
	}
	unix, ok := parseUnix(exp)
	var want [sha256.Size]byte
	if !ok || len(tok) != 2*sha256.Size || !unhex(want[:], tok) {
		return ReasonMalformed
	}
	m := s.macs.Get().(*macState)
	good := hmac.Equal(mac(m, stream, exp), want[:])
	s.macs.Put(m)
	switch {
	case !good:
		return ReasonBadToken
	case now.Unix() >= unix:
		return ReasonExpired
	}
	return ""
}

// Param finds name's value in a raw query (a=1&b=2), as is (no
// unescaping): tokens and expiry times need none. ok is false if name is
// absent.
func Param[Q string | []byte](query Q, name string) (value Q, ok bool) {
	for len(query) > 0 {
		var kv Q
		kv, query = cut(query, '&')
		k, v := cut(kv, '=')
		if string(k) == name {
			return v, true
		}
	}
	return value, false
}

// cut splits q at the first sep.
func cut[Q string | []byte](q Q, sep byte) (before, after Q) {
	for i := 0; i < len(q); i++ {
		if q[i] == sep {
			return q[:i], q[i+1:]
		}
	}
	return q, q[len(q):]
}

// parseUnix reads a positive decimal number of seconds.
func parseUnix[Q string | []byte](b Q) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// unhex decodes hex digits (either case) into dst, len(h) == 2*len(dst).
func unhex[Q string | []byte](dst []byte, h Q) bool {
	for i := range dst {
		hi, ok1 := hexVal(h[2*i])
		lo, ok2 := hexVal(h[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
