package playauth

import (
	"strings"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestTokenChecks(t *testing.T) {
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	good := s.Query("live/show", now.Add(time.Hour))
	other, _ := NewSigner([]byte("another secret, just as long"))
	tampered := good[:len(good)-1] + "0"
	if strings.HasSuffix(good, "0") {
		tampered = good[:len(good)-1] + "1"
	}
	i := strings.Index(good, "token=") + len("token=")
	upper := good[:i] + strings.ToUpper(good[i:])
	for _, tc := range []struct {
		name, stream, query string
		at                  time.Time
		want                string
	}{
		{"good", "live/show", good, now, ""},
		{"good with directives", "live/show", "_HLS_msn=4&" + good + "&_HLS_part=2", now, ""},
		{"upper-case hex", "live/show", upper, now, ""},
		{"expired", "live/show", good, now.Add(time.Hour), ReasonExpired},
		{"missing", "live/show", "", now, ReasonMissing},
		{"token only", "live/show", good[strings.Index(good, "token="):], now, ReasonMissing},
		{"tampered", "live/show", tampered, now, ReasonBadToken},
		{"another stream", "live/other", good, now, ReasonBadToken},
		{"another secret", "live/show", other.Query("live/show", now.Add(time.Hour)), now, ReasonBadToken},
		{"later expiry, same token", "live/show", strings.Replace(good, "expires=1", "expires=2", 1), now, ReasonBadToken},
		{"short token", "live/show", good[:len(good)-2], now, ReasonMalformed},
		{"not hex", "live/show", good[:len(good)-1] + "g", now, ReasonMalformed},
		{"expires not a number", "live/show", strings.Replace(good, "expires=1", "expires=x", 1), now, ReasonMalformed},
	} {
		if got := Check(s, tc.stream, tc.query, tc.at); got != tc.want {
			t.Errorf("%s: Check(%q, %q) = %q, want %q", tc.name, tc.stream, tc.query, got, tc.want)
		}
		if got := Check(s, tc.stream, []byte(tc.query), tc.at); got != tc.want {
			t.Errorf("%s ([]byte): got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestTokenIsTheDocumentedHMAC pins the token to its published recipe
// (docs/play-auth.md), which sites reproduce in their own languages.
func TestTokenIsTheDocumentedHMAC(t *testing.T) {
	s, _ := NewSigner([]byte("0123456789abcdef"))
	// python3 -c 'import hmac,hashlib; print(hmac.new(b"0123456789abcdef", b"live/show:1800000000", hashlib.sha256).hexdigest())'
	const want = "8caed1dc1be006d21e58a1074740b907f646c0c092f59b68d0e93392f90de312"
	got := s.Token("live/show", time.Unix(1_800_000_000, 0))
	if len(got) != 64 {
		t.Fatalf("token %q: want 64 hex digits", got)
	}
	if got != want {
		t.Errorf("token = %s, want %s (the HMAC docs/play-auth.md describes)", got, want)
	}
}

func TestNewSignerRefusesShortSecrets(t *testing.T) {
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	if raceDetector {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	s, _ := NewSigner(secret)
	now := time.Unix(1_800_000_000, 0)
	q := []byte(s.Query("live/show", now.Add(time.Hour)) + "&_HLS_msn=3")
	Check(s, "live/show", q, now) // fill the pool
	if n := testing.AllocsPerRun(200, func() {
		if Check(s, "live/show", q, now) != "" {
			t.Fatal("refused")
		}
	}); n > 0 {
		t.Errorf("Check allocates %.1f times per call, want 0 (the event loops call it per request)", n)
	}
}

func TestCarry(t *testing.T) {
	for q, want := range map[string]string{
		"":                       "",
		"expires=1&token=ab":     "expires=1&token=ab",
		"_HLS_msn=3&_HLS_part=1": "",
		"_HLS_msn=3&expires=1&_HLS_skip=v2&token=ab": "expires=1&token=ab",
		"&&ticket=x&&":       "ticket=x",
		"_HLS_=1&_hls_msn=2": "_hls_msn=2",
	} {
		if got := string(Carry(nil, q)); got != want {
			t.Errorf("Carry(%q) = %q, want %q", q, got, want)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	s, _ := NewSigner(secret)
	now := time.Unix(1_800_000_000, 0)
	q := []byte(s.Query("live/show", now.Add(time.Hour)))
	b.ReportAllocs()
	for b.Loop() {
		Check(s, "live/show", q, now)
	}
}

// FuzzCheck: any query is judged without a panic, and only the token made
// for the stream and its expiry is accepted.
func FuzzCheck(f *testing.F) {
	s, _ := NewSigner(secret)
	now := time.Unix(1_800_000_000, 0)
	f.Add(s.Query("live/show", now.Add(time.Hour)))
	f.Add("expires=&token=&expires=99999999999999999999")
	f.Add("token=" + strings.Repeat("G", 64) + "&expires=1800000001")
	f.Fuzz(func(t *testing.T, q string) {
		if Check(s, "live/show", q, now) != "" {
			return
		}
		exp, _ := Param(q, "expires")
		tok, _ := Param(q, "token")
		unix, ok := parseUnix(exp)
		if !ok || unix <= now.Unix() || !strings.EqualFold(tok, s.Token("live/show", time.Unix(unix, 0))) {
			t.Fatalf("accepted %q", q)
		}
	})
}
