package storage

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// hostileNames are names and paths an attacker (or a confused encoder) may
// send: traversal, encoded traversal, NUL, very long, odd unicode, control
// characters, Windows oddities. None is a valid name or key; the same table
// is kept in the ingest, playlist and cmd/fount tests.
var hostileNames = []string{
	"", ".", "..", "...", "../x", "a/../../etc/passwd", "live/../x", "live/show/../../x",
	"%2e%2e/x", "%2e%2e%2fx", "..%2fx", "%252e%252e", "%2e%2e", "live%2fshow",
	"a\x00b", "%00", "\x00",
	`..\x`, `a\b`, `live\..\x`,
	"/etc/passwd", "//x", "/", "a//b", "a/b/", "live//show", "live/./show", "./x",
	strings.Repeat("a", 300), strings.Repeat("a/", 2048) + "a", strings.Repeat("x", 1<<20),
	"a\u202eb", "\u202egnp.ts", "a\u200db", "caf\u00e9", "cafe\u0301", "a\uff0fb", "\uff0e\uff0e\uff0f", "\uff0e\uff0e",
	"a\r\nb", "show\r\nSet-Cookie: x=1", "a\nb", "a\tb", "a\x7fb", "\x1b[31m",
	"a b", " ", " show", "show ",
	"a.", "show.", ".hidden", ".x.tmp-1",
	"CON", "con", "con.ts", "Nul", "aux.m3u8", "PRN", "COM1", "lpt9.mp4",
	"a?b", "a#b", "a%b", "a:b", "a;b", "a*b", "a\"b", "a<b>", "a|b", "~x", "a@b", "a+b",
}

// validNames are names the grammar accepts, including our own file names.
var validNames = []string{
	"show", "my-stream_1", "a.b", "A9", "-x", "_", "a-b.c_d",
	"index.m3u8", "seg12.ts", "seg12.3.m4s", "init0.mp4",
	strings.Repeat("a", MaxNameLen), "console", "COM", "com10", "con1", "lpt", "auxiliary", "x.con",
}

func TestValidName(t *testing.T) {
	for _, s := range validNames {
		if err := ValidName(s); err != nil {
			t.Errorf("ValidName(%q): %v", s, err)
		}
	}
	for _, s := range hostileNames {
		if err := ValidName(s); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidName(%.40q) = %v, want ErrInvalidKey", s, err)
		}
	}
	if err := ValidName(strings.Repeat("a", MaxNameLen+1)); err == nil {
		t.Error("a name longer than MaxNameLen accepted")
	}
}

// hostileKeys are hostileNames as keys on their own and below a valid
// stream, where the traversal is in the last element.
func hostileKeys() []string {
	keys := slices.Clone(hostileNames)
	for _, n := range hostileNames {
		if n != "" && len(n) < 4096 {
			keys = append(keys, "live/"+n+"/index.m3u8", "live/show/"+n)
		}
	}
	return keys
}

func TestValidKey(t *testing.T) {
	for _, n := range validNames {
		if err := ValidKey("live/" + n + "/" + n); err != nil {
			t.Errorf("ValidKey(%q): %v", "live/"+n+"/"+n, err)
		}
	}
	if err := ValidKey(strings.Repeat("a/", MaxKeyLen/2-1) + "a"); err != nil {
		t.Errorf("a %d-byte key refused: %v", MaxKeyLen-1, err)
	}
	if err := ValidKey(strings.Repeat("a/", MaxKeyLen/2) + "a"); err == nil {
		t.Errorf("a %d-byte key accepted", MaxKeyLen+1)
	}
	for _, k := range hostileKeys() {
		err := ValidKey(k)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidKey(%.40q) = %v, want ErrInvalidKey", k, err)
			continue
		}
		// The message goes to logs: bounded, and free of raw control bytes.
		if msg := err.Error(); len(msg) > 200 || strings.ContainsAny(msg, "\x00\r\n\x1b") || !utf8.ValidString(msg) {
			t.Errorf("ValidKey(%.40q): unsafe message %.300q", k, msg)
		}
	}
}

// TestValidKeyDoesNotAllocate guards the per-request cost: every viewer
// request goes through ValidKey.
func TestValidKeyDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = ValidKey("live/my-show_1/seg123456.7.m4s") }); n != 0 {
		t.Fatalf("ValidKey allocates %.0f times", n)
	}
}

// FuzzValidKey checks the promise behind the grammar: an accepted key is a
// clean, local, relative path that needs no escaping anywhere.
func FuzzValidKey(f *testing.F) {
	for _, k := range hostileKeys() {
		if len(k) < 4096 {
			f.Add(k)
		}
	}
	for _, n := range validNames {
		f.Add("live/" + n + "/" + n)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidKey(key) != nil {
			return
		}
		if !filepath.IsLocal(key) || path.Clean(key) != key || !fs.ValidPath(key) {
			t.Fatalf("accepted %q, which is not a clean local path", key)
		}
		if strings.Contains(key, "..") || strings.ContainsFunc(key, func(r rune) bool { return r > '~' || r <= ' ' }) {
			t.Fatalf("accepted %q", key)
		}
		for el := range strings.SplitSeq(key, "/") {
			if ValidName(el) != nil {
				t.Fatalf("accepted %q with element %q", key, el)
			}
		}
	})
}

// checkRefusesHostile runs Put, Get and Delete with every hostile key and
// expects each to fail with ErrInvalidKey (never ErrNotFound, never
// success), then that nothing is listed.
func checkRefusesHostile(t *testing.T, s Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range hostileKeys() {
		if err := s.Put(ctx, k, Object{Data: []byte("x")}); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put(%.40q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Get(ctx, k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Get(%.40q) = %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Delete(%.40q) = %v, want ErrInvalidKey", k, err)
		}
	}
	keys, err := s.Keys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("hostile keys were stored: %q", keys)
	}
	// The store still works for a good key.
	if err := s.Put(ctx, "live/show/seg1.ts", Object{Data: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	if obj, err := s.Get(ctx, "live/show/seg1.ts"); err != nil || string(obj.Data) != "ok" {
		t.Fatalf("good key after hostile ones: %q %v", obj.Data, err)
	}
}

// tree lists every path below root, for before/after comparisons.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

func TestMemoryRefusesHostileKeys(t *testing.T) {
	checkRefusesHostile(t, NewMemory())
}

func TestDirRefusesHostileKeys(t *testing.T) {
	// The store sits two levels down in a parent that holds decoys where a
	// traversal would land ("../x", "../../etc/passwd"); the whole parent is
	// compared before and after.
	parent := t.TempDir()
	root := filepath.Join(parent, "srv", "store")
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	before := tree(t, parent)
	checkRefusesHostile(t, d)
	after := tree(t, parent)
	want := append(slices.Clone(before),
		filepath.Join("srv", "store", "live"),
		filepath.Join("srv", "store", "live", "show"),
		filepath.Join("srv", "store", "live", "show", "seg1.ts"))
	slices.Sort(want)
	slices.Sort(after)
	if !slices.Equal(after, want) {
		t.Errorf("files changed below the store's parent:\nbefore %q\nafter  %q", before, after)
	}
}

func TestAsyncRefusesHostileKeys(t *testing.T) {
	a := NewAsync(NewMemory(), AsyncConfig{Logger: testLogger(t)})
	runAsync(t, a)
	checkRefusesHostile(t, a)
	flush(t, a, 10*time.Second)
}

func TestS3RefusesHostileKeys(t *testing.T) {
	srv := startS3Server(t)
	srv.createBucket(t, testBucket)
	s := newTestS3(t, srv, "pre")
	before := tree(t, srv.dir)
	checkRefusesHostile(t, s)
	// Nothing but the one good object reached the server's directory:
	// versitygw's posix backend would map a key to a path.
	after := tree(t, srv.dir)
	var added []string
	for _, p := range after {
		// versitygw's own bookkeeping: locks and upload staging.
		if strings.HasPrefix(p, ".vgwlocks") || strings.HasPrefix(p, filepath.Join(testBucket, ".sgwtmp")) {
			continue
		}
		if !slices.Contains(before, p) {
			added = append(added, p)
		}
	}
	want := []string{
		filepath.Join(testBucket, "pre"),
		filepath.Join(testBucket, "pre", "live"),
		filepath.Join(testBucket, "pre", "live", "show"),
		filepath.Join(testBucket, "pre", "live", "show", "seg1.ts"),
	}
	if !slices.Equal(added, want) {
		t.Errorf("paths added below the S3 server's directory: %q, want %q", added, want)
	}
}

func TestSplitKey(t *testing.T) {
	for _, c := range []struct{ key, stream, file string }{
		{"live/show/index.m3u8", "live/show", "index.m3u8"},
		{"live/show/v0/seg3.ts", "live/show/v0", "seg3.ts"},
		{"live/index.m3u8", "", ""},
		{"a/b/c/d/e.ts", "", ""},
		{"live/../x.ts", "", ""},
		{"live/show/", "", ""},
		{"top.m3u8", "", ""},
	} {
		stream, file, ok := SplitKey(c.key)
		if ok != (c.stream != "") || stream != c.stream || file != c.file {
			t.Errorf("SplitKey(%q) = %q, %q, %v; want %q, %q", c.key, stream, file, ok, c.stream, c.file)
		}
	}
	if got := TopStream("live/show/v0"); got != "live/show" {
		t.Errorf("TopStream(live/show/v0) = %q", got)
	}
	if got := TopStream("live/show"); got != "live/show" {
		t.Errorf("TopStream(live/show) = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { SplitKey("live/show/v0/seg3.ts") }); n != 0 {
		t.Errorf("SplitKey allocates %v times", n)
	}
}
