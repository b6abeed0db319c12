package rtc

import (
	"context"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestPublicIPs: with PublicIPs the answer's candidates name them, on the
// shared port, instead of the local address.
func TestPublicIPs(t *testing.T) {
	srv, err := New(Config{UDPAddr: "127.0.0.1:0", PublicIPs: []string{"203.0.113.7"}, STUN: []string{"stun:stun.example.com:3478"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Feed("live/x").VideoConfig(highVideo)
	id, answer, err := srv.Answer(context.Background(), "live/x", []byte(chromiumOffer))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Delete(id)
	port := strconv.Itoa(srv.Addr().(*net.UDPAddr).Port)
	if !strings.Contains(answer, " udp 2130706431 203.0.113.7 "+port+" typ host") || strings.Contains(answer, "127.0.0.1") {
		t.Errorf("candidates do not name the public IP on port %s alone:\n%s", port, answer)
	}
}

// TestServeHTTP: the WHEP answers as RFC 9725 has them: 201 with the
// answer, Location, ETag, Accept-Patch and the STUN servers as Link
// headers; PATCH 204 (trickle ICE: trickle_test.go has the rest); DELETE
// 200, then 404; a wrong content type 415.
func TestServeHTTP(t *testing.T) {
	srv, err := New(Config{UDPAddr: "127.0.0.1:0", STUN: []string{"stun:stun.example.com:3478"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Feed("live/x").VideoConfig(highVideo)
	do := func(method, path, ctype, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	rec := do("POST", "/live/x/whep", "application/sdp", chromiumOffer)
	h := rec.Header()
	loc := h.Get("Location")
	if rec.Code != 201 || h.Get("Content-Type") != "application/sdp" || !strings.HasPrefix(loc, "/live/x/whep/") ||
		h.Get("ETag") == "" || h.Get("Accept-Patch") != TrickleType || h.Get("Link") != `<stun:stun.example.com:3478>; rel="ice-server"` || !strings.HasPrefix(rec.Body.String(), "v=0") {
		t.Fatalf("POST: %d %v\n%s", rec.Code, h, rec.Body)
	}
	if rec := do("PATCH", loc, "application/trickle-ice-sdpfrag", "a=candidate:1 1 udp 1 127.0.0.1 9 typ host"); rec.Code != 204 {
		t.Errorf("PATCH: %d", rec.Code)
	}
	if rec := do("DELETE", loc, "", ""); rec.Code != 200 {
		t.Errorf("DELETE: %d", rec.Code)
	}
	if rec := do("DELETE", loc, "", ""); rec.Code != 404 {
		t.Errorf("DELETE again: %d", rec.Code)
	}
	if rec := do("POST", "/live/x/whep", "text/plain", chromiumOffer); rec.Code != 415 {
		t.Errorf("text/plain: %d", rec.Code)
	}
	if rec := do("GET", "/live/x/whep", "", ""); rec.Code != 405 || rec.Header().Get("Allow") != "POST, OPTIONS" {
		t.Errorf("GET: %d %v", rec.Code, rec.Header())
	}
	if n := srv.Stats().Sessions; n != 0 {
		t.Errorf("%d sessions left", n)
	}
}
