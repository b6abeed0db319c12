package httploop

import (
	"bufio"
	"bytes"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"testing"
	"time"
)

var testHeads = []Head{
	{ContentType: "video/mp2t", CacheControl: "public, max-age=31536000, immutable", ETag: `"seg0.ts-3145728"`, Length: 3 << 20,
		Modified: time.Date(2026, 12, 1, 10, 11, 12, 0, time.FixedZone("CET", 3600))},
	{ContentType: "application/vnd.apple.mpegurl", CacheControl: "no-cache", ETag: `"pl-gz"`, Gzip: true, Length: 321},
	{},
}

// The raw head, byte for byte: the fields in the order net/http writes a
// handler's header, Connection where it sorts, Date last.
func TestAppendResponse(t *testing.T) {
	const date = "Wed, 02 Dec 2026 08:00:00 GMT"
	got := testHeads[0].appendResponse(nil, false, []byte(date), anyOrigin)
	want := "HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\nAccess-Control-Allow-Origin: *\r\n" +
		"Access-Control-Expose-Headers: Content-Length, Content-Range, Date, ETag, Last-Modified, Age\r\n" +
		"Cache-Control: public, max-age=31536000, immutable\r\nContent-Length: 3145728\r\nContent-Type: video/mp2t\r\n" +
		"Etag: \"seg0.ts-3145728\"\r\nLast-Modified: Tue, 01 Dec 2026 09:11:12 GMT\r\nTiming-Allow-Origin: *\r\nDate: " + date + "\r\n\r\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got = testHeads[1].appendResponse(nil, true, []byte(date), anyOrigin)
	want = "HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\nAccess-Control-Allow-Origin: *\r\n" +
		"Access-Control-Expose-Headers: Content-Length, Content-Range, Date, ETag, Last-Modified, Age\r\n" +
		"Cache-Control: no-cache\r\nConnection: close\r\nContent-Encoding: gzip\r\nContent-Length: 321\r\n" +
		"Content-Type: application/vnd.apple.mpegurl\r\nEtag: \"pl-gz\"\r\nTiming-Allow-Origin: *\r\nVary: Accept-Encoding\r\nDate: " + date + "\r\n\r\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// SetHeader sets exactly the fields the raw head carries (but Date and
// Connection, which net/http adds), with canonical names; SetEntityHeader
// those of them that describe the representation.
func TestSetHeaderMatchesRaw(t *testing.T) {
	for _, h := range testHeads {
		raw := h.appendResponse(nil, false, []byte("Wed, 02 Dec 2026 08:00:00 GMT"), anyOrigin)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Header.Del("Date")
		hdr := http.Header{}
		h.SetHeader(hdr)
		if !maps.EqualFunc(hdr, resp.Header, slices.Equal) {
			t.Errorf("SetHeader %v\nraw %v", hdr, resp.Header)
		}
		for k := range hdr {
			if k != textproto.CanonicalMIMEHeaderKey(k) {
				t.Errorf("%q is not canonical", k)
			}
		}
		ent := http.Header{}
		h.SetEntityHeader(ent)
		for _, k := range []string{"Accept-Ranges", "Content-Length", "Last-Modified"} {
			resp.Header.Del(k)
		}
		if !maps.EqualFunc(ent, resp.Header, slices.Equal) {
			t.Errorf("SetEntityHeader %v\nwant %v", ent, resp.Header)
		}
	}
}

func TestAppendResponseAllocs(t *testing.T) {
	buf := make([]byte, 0, 1024)
	date := []byte("Wed, 02 Dec 2026 08:00:00 GMT")
	if n := testing.AllocsPerRun(100, func() { testHeads[0].appendResponse(buf[:0], true, date, anyOrigin) }); n != 0 {
		t.Errorf("%v allocations per head", n)
	}
}
