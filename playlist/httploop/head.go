package httploop

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Head is the head of a 200 answer to a GET or HEAD of a Source's object:
// what the loops write raw and the Source's net/http handler sets with
// SetHeader, both rendered by the one function, so that the two cannot
// differ.
type Head struct {
	ContentType  string // Content-Type
	CacheControl string // Cache-Control
	ETag         string // ETag, quoted
	// Gzip: the body is gzip-encoded (Content-Encoding: gzip, and Vary:
	// Accept-Encoding, which only the gzip answer carries).
	Gzip bool
	// Length is the body's length (Content-Length).
	Length int64
	// Modified, unless zero, is Last-Modified.
	Modified time.Time
}

// fieldSet selects the fields appendFields renders.
type fieldSet uint8

const (
	// entityFields describe the representation: CORS, Cache-Control,
	// Content-Encoding, Content-Type, Etag, Vary.
	entityFields fieldSet = 1 << iota
	// okFields are those of a whole 200 answer, which http.ServeContent
	// sets itself for what it serves: Accept-Ranges, Content-Length,
	// Last-Modified.
	okFields
	allFields = entityFields | okFields
)

// field is a header field's value: text, a number or a time.
type field struct {
	kind uint8 // textField, intField, timeField
	text string
	n    int64
	t    time.Time
}

const (
	textField = iota
	intField
	timeField
)

func text(s string) field { return field{kind: textField, text: s} }

// fields calls emit with h's header fields of set, canonically named, in
// the order net/http writes a handler's header (sorted), plus "Connection:
// close" where it sorts if close is set. It is the one statement of what a
// Head's fields are: appendFields writes them raw for the loops, setHeader
// into an http.Header for net/http.
func (h *Head) fields(set fieldSet, close bool, ca corsAnswer, emit func(name string, v field)) {
	ok, entity := set&okFields != 0, set&entityFields != 0
	if ok {
		emit("Accept-Ranges", text("bytes"))
	}
	if entity {
		if ca.allow != "" {
			emit("Access-Control-Allow-Origin", text(ca.allow))
			emit("Access-Control-Expose-Headers", text(exposeHeaders))
		}
		emit("Cache-Control", text(h.CacheControl))
	}
	if close {
		emit("Connection", text("close"))
	}
	if entity && h.Gzip {
		emit("Content-Encoding", text("gzip"))
	}
	if ok {
		emit("Content-Length", field{kind: intField, n: h.Length})
	}
	if entity {
		emit("Content-Type", text(h.ContentType))
		if h.ETag != "" {
			emit("Etag", text(h.ETag))
		}
	}
	if ok && !h.Modified.IsZero() {
		emit("Last-Modified", field{kind: timeField, t: h.Modified})
	}
	if entity && ca.allow != "" {
		emit("Timing-Allow-Origin", text(ca.allow))
	}
	switch {
	case entity && h.Gzip && ca.varyOrigin:
		emit("Vary", text("Accept-Encoding, Origin"))
	case entity && h.Gzip:
		emit("Vary", text("Accept-Encoding"))
	case entity && ca.varyOrigin:
		emit("Vary", text("Origin"))
	}
}

// appendFields appends h's fields of set as header lines ("Name:
// value\r\n"), without allocating.
func (h *Head) appendFields(b []byte, set fieldSet, close bool, ca corsAnswer) []byte {
	h.fields(set, close, ca, func(name string, v field) {
		b = append(b, name...)
		b = append(b, ": "...)
		switch v.kind {
		case textField:
			b = append(b, v.text...)
		case intField:
			b = strconv.AppendInt(b, v.n, 10)
		case timeField:
			b = v.t.UTC().AppendFormat(b, http.TimeFormat)
		}
		b = append(b, "\r\n"...)
	})
	return b
}

// appendResponse appends the whole response head a loop writes: the
// status line, h's fields, Connection: close if close is set, the Date
// (date, formatted with http.TimeFormat) and the blank line; ca is the
// CORS answer to the request.
func (h *Head) appendResponse(b []byte, close bool, date []byte, ca corsAnswer) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	b = h.appendFields(b, allFields, close, ca)
	b = append(b, "Date: "...)
	b = append(b, date...)
	return append(b, "\r\n\r\n"...)
}

// SetHeader sets every field of h in hdr, as a loop writes them; net/http
// adds Date and Connection itself.
func (h *Head) SetHeader(hdr http.Header) { h.setHeader(hdr, allFields) }

// SetEntityHeader sets the fields that describe the representation in hdr
// — all but Accept-Ranges, Content-Length and Last-Modified, which
// http.ServeContent sets for what it serves (a range, a 304, a 412).
func (h *Head) SetEntityHeader(hdr http.Header) { h.setHeader(hdr, entityFields) }

func (h *Head) setHeader(hdr http.Header, set fieldSet) {
	// The CORS middleware in front has decided for the request: a list of
	// origins has put Vary: Origin, and Access-Control-Allow-Origin only
	// if it allowed the request's; any origin has put "*".
	ca := anyOrigin
	if v := hdr["Vary"]; len(v) == 1 && strings.Contains(v[0], "Origin") {
		ca = corsAnswer{varyOrigin: true}
		if a := hdr["Access-Control-Allow-Origin"]; len(a) == 1 {
			ca.allow = a[0]
		}
	}
	h.fields(set, false, ca, func(name string, v field) {
		var s string
		switch v.kind {
		case textField:
			s = v.text
		case intField:
			s = strconv.FormatInt(v.n, 10)
		case timeField:
			s = v.t.UTC().Format(http.TimeFormat)
		}
		if v := hdr[name]; len(v) == 1 && v[0] == s {
			return // set already (CORS's fields, by CORS)
		}
		hdr[name] = []string{s} // the names are canonical
	})
}

// appendError appends a loop's whole error answer, as net/http sends
// http.Error(w, msg, status) behind CORS with Cache-Control: no-cache
// (TestServerAnswersAsNetHTTP compares the two): the head, then msg and a
// newline unless head (a HEAD request) is set.
func appendError(b []byte, status int, msg string, head, close bool, date []byte, ca corsAnswer) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	if ca.allow != "" {
		b = append(b, "Access-Control-Allow-Origin: "...)
		b = append(b, ca.allow...)
		b = append(b, "\r\nAccess-Control-Expose-Headers: "+exposeHeaders+"\r\n"...)
	}
	b = append(b, "Cache-Control: no-cache\r\n"...)
	if close {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(msg)+1), 10)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nDate: "...)
	b = append(b, date...)
	if ca.allow != "" {
		b = append(b, "\r\nTiming-Allow-Origin: "...)
		b = append(b, ca.allow...)
	}
	if ca.varyOrigin {
		b = append(b, "\r\nVary: Origin"...)
	}
	b = append(b, "\r\nX-Content-Type-Options: nosniff\r\n\r\n"...)
	if !head {
		b = append(b, msg...)
		b = append(b, '\n')
	}
	return b
}
