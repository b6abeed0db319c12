package httploop

import (
	"bytes"
	"strings"
	"unsafe"
)

// plainRequest is a request an event loop may answer by itself: a GET or
// HEAD over HTTP/1.1, without a body, range or condition, and with a
// query of plain bytes if any (LL-HLS delivery directives) — what players
// and CDN edges send nearly every time.
type plainRequest struct {
	head bool   // HEAD, not GET
	path []byte // the request target's path: '/' and name bytes only
	// query is what follows the first '?', if any: name bytes, '=' and
	// '&' only (no escape, '+' or ';'), so that every reading of it —
	// url.ParseQuery's included — is the same.
	query  []byte
	gzip   bool   // Accept-Encoding allows gzip
	close  bool   // Connection: close
	origin []byte // the Origin header's value, nil without one (CORS)
	size   int    // bytes of the request head, blank line included
}

type parseResult int

const (
	parseMore  parseResult = iota // the head is not complete yet
	parsePlain                    // a plainRequest
	parseOther                    // anything else: net/http answers it
)

// parseRequest reads the request head at the start of b. It is strict: a
// request is plain only if net/http would read it the same way (CRLF line
// ends, token header names, no control bytes in values, one Host), so that
// what the loop answers never differs from what net/http would; everything
// else, malformed or merely unusual, is parseOther and goes to net/http,
// which answers it or refuses it with its usual status.
func parseRequest(b []byte, maxSize int) (req plainRequest, res parseResult) {
	line, rest, ok := cutLine(b)
	if !ok {
		return req, more(b, maxSize)
	}
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		line, req.head = line[5:], true
	default:
		return req, parseOther
	}
	target, proto, ok := bytes.Cut(line, []byte(" "))
	if !ok || string(proto) != "HTTP/1.1" || len(target) == 0 || target[0] != '/' {
		return req, parseOther
	}
	path, query, _ := bytes.Cut(target, []byte("?"))
	for _, c := range path {
		if c != '/' && !nameByte(c) {
			return req, parseOther // an escape, anything a name never holds
		}
	}
	for _, c := range query {
		if c != '=' && c != '&' && !nameByte(c) {
			return req, parseOther
		}
	}
	req.path, req.query = path, query
	hosts, encodings, origins := 0, 0, 0
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return req, more(b, maxSize)
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validToken(name) {
			return req, parseOther
		}
		value = bytes.Trim(value, " \t")
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return req, parseOther
			}
		}
		switch {
		case equalFold(name, "host"):
			hosts++
			for _, c := range value {
				if !hostByte(c) {
					return req, parseOther
				}
			}
		case equalFold(name, "accept-encoding"):
			encodings++
			// value aliases b: AcceptsGzip reads it and keeps nothing,
			// so it needs no copy (a longer value would cost one).
			req.gzip = AcceptsGzip(unsafe.String(unsafe.SliceData(value), len(value)))
		case equalFold(name, "origin"):
			origins++
			req.origin = value
		case equalFold(name, "connection"):
			// Any close wins, whatever comes after it, as in net/http: a
			// later Connection header must not keep open a connection
			// net/http would close (and answer pipelined requests it would
			// never read).
			req.close = req.close || hasToken(value, "close")
		case equalFold(name, "content-length"):
			if string(value) != "0" {
				return req, parseOther
			}
		case equalFold(name, "transfer-encoding"), equalFold(name, "expect"), equalFold(name, "upgrade"),
			equalFold(name, "range"), equalFold(name, "if-range"),
			equalFold(name, "if-match"), equalFold(name, "if-none-match"),
			equalFold(name, "if-modified-since"), equalFold(name, "if-unmodified-since"):
			return req, parseOther
		}
	}
	if hosts != 1 || encodings > 1 || origins > 1 {
		return req, parseOther
	}
	req.size = len(b) - len(rest)
	if req.size > maxSize {
		return req, parseOther
	}
	return req, parsePlain
}

// more is the answer for a head not complete in b: wait for more bytes,
// unless it is already too big to be plain.
func more(b []byte, maxSize int) parseResult {
	if len(b) >= maxSize {
		return parseOther
	}
	return parseMore
}

// cutLine cuts a CRLF-ended line off b. A bare LF, which net/http also
// takes, ends the head as "other" by failing the token and byte checks.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, b, false
	}
	if i == 0 || b[i-1] != '\r' {
		// Make the caller see a line that no check accepts.
		return []byte{0}, b[i+1:], true
	}
	return b[:i-1], b[i+1:], true
}

// nameByte reports the bytes of storage.ValidName: '-', '.', '_' and
// ASCII letters and digits.
func nameByte(c byte) bool {
	return c == '-' || c == '.' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// hostByte is a conservative set for a Host value: names, IPv4 and
// bracketed IPv6 with a port.
func hostByte(c byte) bool { return nameByte(c) || c == ':' || c == '[' || c == ']' }

// validToken reports an RFC 9110 token, which a header name must be.
func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !nameByte(c) && strings.IndexByte("!#$%&'*+^`|~", c) < 0 {
			return false
		}
	}
	return true
}

// equalFold compares an ASCII header name with a lower-case one.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether a comma-separated header value lists tok.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if equalFold(bytes.Trim(t, " \t"), tok) {
			return true
		}
	}
	return false
}
