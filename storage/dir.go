package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dir stores each key as a file below a root directory, written atomically
// (temporary file, then rename) so that a plain file server reading the same
// directory never sees a half-written segment or playlist.
type Dir struct {
	root string
}

// NewDir creates root if needed and checks that it is writable.
func NewDir(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("storage dir %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("storage dir: %w", err)
	}
	probe, err := os.CreateTemp(abs, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("storage dir %q is not writable: %w", abs, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	removeStaleTemps(abs)
	return &Dir{root: abs}, nil
}

func (d *Dir) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put writes obj.Data to key's file, replacing it atomically. The content
// type is not kept: Get derives it from the name.
func (d *Dir) Put(_ context.Context, key string, obj Object) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storage put %s: %w", key, err)
	}
	// The temporary name starts with a dot so that directory listings and
	// Keys skip it; rename makes the new bytes appear all at once.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("storage put %s: %w", key, err)
	}
	_, werr := tmp.Write(obj.Data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("storage put %s: %w", key, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("storage put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("storage put %s: %w", key, err)
	}
	return nil
}

// Get reads key's file, with the content type its name gives (ContentType)
// and the file's modification time.
func (d *Dir) Get(_ context.Context, key string) (Object, error) {
	p, err := d.path(key)
	if err != nil {
		return Object{}, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, ErrNotFound
	} else if err != nil {
		return Object{}, fmt.Errorf("storage get %s: %w", key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Object{}, fmt.Errorf("storage get %s: %w", key, err)
	}
	if st.IsDir() {
		return Object{}, ErrNotFound
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return Object{}, fmt.Errorf("storage get %s: %w", key, err)
	}
	return Object{Data: data, ContentType: ContentType(key), ModTime: st.ModTime()}, nil
}

// Delete removes key's file, and its directory once empty.
func (d *Dir) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("storage delete %s: %w", key, err)
	}
	// Drop the stream's directory once its last file is gone; failure just
	// means it is not empty yet.
	os.Remove(filepath.Dir(p))
	return nil
}

// Keys lists the stored keys below prefix, sorted; files whose names begin
// with '.' (the temporary ones among them) are not keys.
func (d *Dir) Keys(_ context.Context, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		k := filepath.ToSlash(rel)
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage keys: %w", err)
	}
	sort.Strings(keys)
	return keys, nil
}

// removeStaleTemps deletes temporary files that a crash left behind
// mid-write; they are never referenced by a playlist.
func removeStaleTemps(root string) {
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") {
			os.Remove(p)
		}
		return nil
	})
}
