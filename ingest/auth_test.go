package ingest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// authLogBuffer is a log sink safe to read while another goroutine logs.
type authLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *authLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *authLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func authTestLogger() (*slog.Logger, *authLogBuffer) {
	buf := &authLogBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// authEventually polls cond until it holds or the deadline passes.
func authEventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func authWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// authReplaceFile swaps content in atomically, as deployment tools do, so that a
// watcher never reads a half-written file.
func authReplaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	authWriteFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

const validKeys = `# stream keys
version: 1
streams:
  - key: s3cr3t-alpha-7f1c
    name: show
    title: The Show        # extra fields are allowed
    owner: {team: video}
  - key: "0x1F"
    name: news.hd
`

func authz(t *testing.T, a Authorizer, key string) (string, error) {
	t.Helper()
	return a.Authorize(context.Background(), AuthRequest{App: "live", Key: key, Remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}})
}

func TestKeysLoadValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, validKeys)
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 2 {
		t.Fatalf("Len = %d, want 2", k.Len())
	}
	for key, want := range map[string]string{"s3cr3t-alpha-7f1c": "show", "0x1F": "news.hd"} {
		name, err := authz(t, k, key)
		if err != nil || name != want {
			t.Errorf("key %q: got %q, %v; want %q", key, name, err, want)
		}
	}
}

func TestKeysUnknownKeyRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, validKeys)
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	// "show" is a name, not a key: it must not publish.
	for _, key := range []string{"guessed-key-123", "show", "", "S3CR3T-ALPHA-7F1C"} {
		name, err := authz(t, k, key)
		if !errors.Is(err, ErrUnknownKey) {
			t.Errorf("key %q: got %q, %v; want ErrUnknownKey", key, name, err)
			continue
		}
		if key != "" && strings.Contains(err.Error(), key) {
			t.Errorf("error %q contains the key", err)
		}
	}
}

func TestKeysInvalidFiles(t *testing.T) {
	const secret = "very-secret-key-42"
	cases := []struct {
		name, content, want string
	}{
		{"empty key", "streams:\n  - {key: a1, name: one}\n  - {key: '', name: two}\n", "streams[1]: empty key"},
		{"missing key", "streams:\n  - {key: a1, name: one}\n  - {name: two}\n", "streams[1]: empty key"},
		{"empty name", "streams:\n  - {key: " + secret + ", name: ''}\n", "streams[0]: empty name"},
		{"duplicate key", "streams:\n  - {key: a1, name: one}\n  - {key: " + secret + ", name: two}\n  - {key: " + secret + ", name: three}\n", "streams[2]: duplicate key (same as streams[1])"},
		{"duplicate name", "streams:\n  - {key: a1, name: one}\n  - {key: " + secret + ", name: one}\n", "streams[1]: duplicate name \"one\" (same as streams[0])"},
		{"slash in name", "streams:\n  - {key: a1, name: one}\n  - {key: b2, name: two}\n  - {key: " + secret + ", name: a/b}\n", "streams[2]: invalid name"},
		{"dot-dot name", "streams:\n  - {key: " + secret + ", name: ..}\n", "streams[0]: invalid name"},
		{"long name", "streams:\n  - {key: " + secret + ", name: " + strings.Repeat("x", 129) + "}\n", "streams[0]: invalid name"},
		{"no streams", "stream:\n  - {key: " + secret + ", name: one}\n", "no \"streams:\" list"},
		{"not yaml", "streams: [\n", "yaml"},
		{"key is a list", "streams:\n  - {key: [a, b], name: one}\n", "cannot unmarshal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.yaml")
			authWriteFile(t, path, c.content)
			k, err := LoadKeys(path)
			if err == nil {
				t.Fatalf("loaded %d keys, want an error", k.Len())
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains a key", err)
			}
		})
	}
	if _, err := LoadKeys(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestKeysEmptyListRefusesAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, "streams: []\n")
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authz(t, k, "anything"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("got %v, want ErrUnknownKey", err)
	}
}

func TestKeysReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, validKeys)
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	authWriteFile(t, path, "streams:\n  - {key: rotated-key-9, name: show}\n")
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	if name, err := authz(t, k, "rotated-key-9"); err != nil || name != "show" {
		t.Errorf("new key: %q, %v", name, err)
	}
	if _, err := authz(t, k, "s3cr3t-alpha-7f1c"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("revoked key still accepted: %v", err)
	}
	if k.Len() != 1 {
		t.Errorf("Len = %d, want 1", k.Len())
	}
}

func TestKeysReloadBrokenKeepsOld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, validKeys)
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, broken := range []string{
		"streams: [\n",
		"streams:\n  - {key: new-key, name: show}\n  - {key: new-key, name: other}\n",
	} {
		authWriteFile(t, path, broken)
		if err := k.Reload(); err == nil {
			t.Fatalf("Reload of %q succeeded", broken)
		}
		if name, err := authz(t, k, "s3cr3t-alpha-7f1c"); err != nil || name != "show" {
			t.Errorf("old table lost: %q, %v", name, err)
		}
		if _, err := authz(t, k, "new-key"); err == nil {
			t.Error("a key from the broken file was accepted")
		}
	}
	os.Remove(path)
	if err := k.Reload(); err == nil {
		t.Error("Reload of a removed file succeeded")
	}
	if k.Len() != 2 {
		t.Errorf("Len = %d, want 2", k.Len())
	}
}

func TestKeysWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, validKeys)
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := authTestLogger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		k.Watch(ctx, 5*time.Millisecond, log)
		close(done)
	}()

	// A good change is picked up.
	authReplaceFile(t, path, "streams:\n  - {key: watched-key-1, name: show}\n  - {key: watched-key-2, name: talk}\n  - {key: watched-key-3, name: news}\n")
	authEventually(t, 5*time.Second, "the new key", func() bool {
		_, err := authz(t, k, "watched-key-1")
		return err == nil
	})
	authEventually(t, 5*time.Second, "the reload log line", func() bool { return strings.Contains(logs.String(), "stream keys reloaded") })

	// A broken change is logged and the table kept.
	authReplaceFile(t, path, "streams:\n  - {key: watched-key-4, name: ok}\n  - {key: watched-key-4, name: dup}\n")
	authEventually(t, 5*time.Second, "the failure log line", func() bool { return strings.Contains(logs.String(), "reload failed") })
	if name, err := authz(t, k, "watched-key-2"); err != nil || name != "talk" {
		t.Errorf("table lost after a broken rewrite: %q, %v", name, err)
	}

	// Fixed again: picked up.
	authReplaceFile(t, path, "streams:\n  - {key: watched-key-5, name: fixed}\n")
	authEventually(t, 5*time.Second, "the fixed file", func() bool {
		name, err := authz(t, k, "watched-key-5")
		return err == nil && name == "fixed"
	})

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
	out := logs.String()
	for _, key := range []string{"watched-key", "s3cr3t", "0x1F"} {
		if strings.Contains(out, key) {
			t.Errorf("logs contain a key (%s):\n%s", key, out)
		}
	}
	if got := strings.Count(out, "reload failed"); got != 1 {
		t.Errorf("a broken file was logged %d times, want once:\n%s", got, out)
	}
}

func TestKeysWatchMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, validKeys)
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := authTestLogger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		k.Watch(ctx, 5*time.Millisecond, log)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	authEventually(t, 5*time.Second, "the unreadable-file log line", func() bool { return strings.Contains(logs.String(), "unreadable") })
	if name, err := authz(t, k, "s3cr3t-alpha-7f1c"); err != nil || name != "show" {
		t.Errorf("table lost when the file went away: %q, %v", name, err)
	}
	authReplaceFile(t, path, "streams:\n  - {key: back-key-1, name: back}\n")
	authEventually(t, 5*time.Second, "the restored file", func() bool {
		_, err := authz(t, k, "back-key-1")
		return err == nil
	})
	if got := strings.Count(logs.String(), "unreadable"); got != 1 {
		t.Errorf("missing file logged %d times, want once:\n%s", got, logs)
	}
}

func TestKeysConcurrentAuthorizeAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, validKeys)
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if name, err := authz(t, k, "s3cr3t-alpha-7f1c"); err != nil || name != "show" {
					t.Errorf("got %q, %v", name, err)
					return
				}
			}
		}()
	}
	for range 50 {
		if err := k.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func TestAuthKeyFingerprint(t *testing.T) {
	re := regexp.MustCompile(`^k:[0-9a-f]{8}$`)
	keys := []string{"s3cr3t-alpha-7f1c", "s3cr3t-alpha-7f1d", "a", "", "k:00000000"}
	seen := map[string]string{}
	for _, key := range keys {
		fp := KeyFingerprint(key)
		if !re.MatchString(fp) {
			t.Errorf("KeyFingerprint(%q) = %q", key, fp)
		}
		if fp != KeyFingerprint(key) {
			t.Errorf("KeyFingerprint(%q) not stable", key)
		}
		if len(key) > 2 && strings.Contains(fp, key[2:]) {
			t.Errorf("KeyFingerprint(%q) = %q contains the key", key, fp)
		}
		if other, dup := seen[fp]; dup {
			t.Errorf("%q and %q share fingerprint %s", key, other, fp)
		}
		seen[fp] = key
	}
	// Pinned so that fingerprints in old logs stay comparable.
	if got, want := KeyFingerprint("abc"), "k:ba7816bf"; got != want {
		t.Errorf("KeyFingerprint(abc) = %s, want %s", got, want)
	}
}

func TestAuthAllowAll(t *testing.T) {
	var a Authorizer = AllowAll{}
	if name, err := authz(t, a, "my-stream"); err != nil || name != "my-stream" {
		t.Errorf("got %q, %v", name, err)
	}
	if _, err := authz(t, a, "../etc"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("invalid key as name: %v", err)
	}
}

func TestAuthUnknownKeyErrorHasFingerprint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, validKeys)
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = authz(t, k, "nope-key")
	if err == nil || !strings.Contains(err.Error(), KeyFingerprint("nope-key")) {
		t.Errorf("error %v lacks the fingerprint", err)
	}
}
