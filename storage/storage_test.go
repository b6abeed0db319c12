package storage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func stores(t *testing.T) map[string]Store {
	dir, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Store{"memory": NewMemory(), "dir": dir}
}

func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if err := s.Put(ctx, "live/show/seg1.ts", Object{Data: []byte("abc"), ContentType: "video/mp2t"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "live/show/index.m3u8", Object{Data: []byte("#EXTM3U\n"), ContentType: "application/vnd.apple.mpegurl"}); err != nil {
				t.Fatal(err)
			}
			obj, err := s.Get(ctx, "live/show/seg1.ts")
			if err != nil || string(obj.Data) != "abc" || obj.ContentType != "video/mp2t" {
				t.Fatalf("get: %q %q %v", obj.Data, obj.ContentType, err)
			}
			// Overwrite replaces whole.
			s.Put(ctx, "live/show/index.m3u8", Object{Data: []byte("#EXTM3U\n#2\n"), ContentType: "application/vnd.apple.mpegurl"})
			if obj, _ := s.Get(ctx, "live/show/index.m3u8"); string(obj.Data) != "#EXTM3U\n#2\n" || obj.ContentType != "application/vnd.apple.mpegurl" {
				t.Fatalf("overwrite: %q %q", obj.Data, obj.ContentType)
			}
			keys, err := s.Keys(ctx, "live/show/")
			if err != nil || strings.Join(keys, ",") != "live/show/index.m3u8,live/show/seg1.ts" {
				t.Fatalf("keys %v %v", keys, err)
			}
			if err := s.Delete(ctx, "live/show/seg1.ts"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "live/show/seg1.ts"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after delete: %v", err)
			}
			if err := s.Delete(ctx, "live/show/seg1.ts"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second delete: %v", err)
			}
		})
	}
}

func TestStoreRejectsBadKeys(t *testing.T) {
	ctx := context.Background()
	bad := []string{"", "/abs", "a/../../etc/passwd", "..", "a/./b", "a//b", "a/b/", "a\x00b", "a\\b", "ü", "a b", strings.Repeat("a", 2000)}
	for name, s := range stores(t) {
		for _, k := range bad {
			if err := s.Put(ctx, k, Object{Data: []byte("x")}); err == nil {
				t.Errorf("%s: Put(%q) accepted", name, k)
			}
			if _, err := s.Get(ctx, k); err == nil {
				t.Errorf("%s: Get(%q) succeeded", name, k)
			}
		}
	}
}

func TestDirWritesAtomicallyAndCleansUp(t *testing.T) {
	root := t.TempDir()
	// A temp file left by a crash mid-write is removed at start.
	os.MkdirAll(filepath.Join(root, "live", "x"), 0o755)
	stale := filepath.Join(root, "live", "x", ".seg3.ts.tmp-123")
	os.WriteFile(stale, []byte("half"), 0o644)
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp file survived: %v", err)
	}
	data := bytes.Repeat([]byte{0x47}, 188*100)
	if err := d.Put(context.Background(), "live/x/seg4.ts", Object{Data: data}); err != nil {
		t.Fatal(err)
	}
	// The file is where a plain file server would look for it, and no
	// temporary file is left beside it.
	got, err := os.ReadFile(filepath.Join(root, "live", "x", "seg4.ts"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file on disk: %d bytes, %v", len(got), err)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "live", "x"))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want 1", len(ents))
	}
}

func TestOpen(t *testing.T) {
	if s, err := OpenContext(context.Background(), "", S3Options{}); err != nil || s == nil {
		t.Fatal(err)
	}
	if _, err := OpenContext(context.Background(), "dir:"+t.TempDir(), S3Options{}); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"dir:", "s4://x", "disk", "s3://", "s3://Bad_Bucket", "s3://bucket/a/../b"} {
		if _, err := OpenContext(context.Background(), spec, S3Options{}); err == nil {
			t.Errorf("OpenContext(%q) accepted", spec)
		}
	}
}
