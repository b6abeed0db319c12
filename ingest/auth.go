package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// AuthRequest is what an authoriser sees of a publish.
type AuthRequest struct {
	App, Key string // Key is the stream key as sent (a secret in the keys and webhook modes)
	Remote   net.Addr
	Metadata map[string]string // optional extra, may be nil
}

// Authorizer decides whether a publish may go ahead and under which public
// stream name. An error refuses the publish; its message never holds the key,
// so it may be logged and sent back to the encoder.
type Authorizer interface {
	Authorize(ctx context.Context, req AuthRequest) (name string, err error)
}

// ErrUnknownKey is wrapped by Keys.Authorize when the key is not in the table.
var ErrUnknownKey = errors.New("unknown stream key")

// ErrInvalidName is wrapped when the public name an authoriser would use is
// not a valid stream name.
var ErrInvalidName = errors.New("invalid stream name")

// AllowAll is the "none" mode: every publish is accepted and the key is the
// public name.
type AllowAll struct{}

// Authorize returns the key as the name, if it is a valid name.
func (AllowAll) Authorize(_ context.Context, req AuthRequest) (string, error) {
	if !validName(req.Key) {
		return "", fmt.Errorf("%w: the stream key is used as the name (letters, digits, '-', '_' and '.', at most 128)", ErrInvalidName)
	}
	return req.Key, nil
}

// KeyFingerprint returns a short, non-reversible fingerprint of a secret key
// for logs: "k:" and the first 8 hex digits of its SHA-256.
func KeyFingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "k:" + hex.EncodeToString(sum[:4])
}

// Keys is the "keys" mode: a table of secret keys and the public names they
// publish as, read from a YAML file:
//
//	streams:
//	  - key: 3f9c0a7e51b2
//	    name: show
//
// Fields other than key and name are allowed and ignored. It is safe for
// concurrent use; Reload and Watch swap the table atomically.
type Keys struct {
	path string

	mu    sync.RWMutex
	table map[string]string // key → name
	seen  fileStamp         // the file as it was when last read, read well or not
}

// fileStamp is what Watch compares to notice a changed file.
type fileStamp struct {
	modTime time.Time
	size    int64
}

func stampOf(fi os.FileInfo) fileStamp { return fileStamp{modTime: fi.ModTime(), size: fi.Size()} }

type keysFile struct {
	Streams *[]keysEntry `yaml:"streams"`
}

type keysEntry struct {
	Key  string `yaml:"key"`
	Name string `yaml:"name"`
}

// LoadKeys reads a keys file. Errors name the offending entry by its index
// (streams[i]) and never quote a key.
func LoadKeys(path string) (*Keys, error) {
	k := &Keys{path: path}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload re-reads the file. On error the old table is kept and the error
// returned.
func (k *Keys) Reload() error {
	// Stat before reading: a change that lands between the two is then
	// seen again by Watch rather than missed.
	var stamp fileStamp
	fi, err := os.Stat(k.path)
	if err == nil {
		stamp = stampOf(fi)
	}
	table, err := readKeys(k.path)
	k.mu.Lock()
	k.seen = stamp
	if err == nil {
		k.table = table
	}
	k.mu.Unlock()
	return err
}

func readKeys(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("stream keys: %w", err)
	}
	var f keysFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		// yaml.v3 quotes a value only when it is of the wrong type (such as
		// a scalar where the list belongs); keys are strings and never are.
		return nil, fmt.Errorf("stream keys %s: %w", path, err)
	}
	if f.Streams == nil {
		return nil, fmt.Errorf("stream keys %s: no \"streams:\" list (use \"streams: []\" to refuse every publish)", path)
	}
	table := make(map[string]string, len(*f.Streams))
	keyAt := make(map[string]int, len(*f.Streams))
	nameAt := make(map[string]int, len(*f.Streams))
	for i, e := range *f.Streams {
		switch {
		case e.Key == "":
			return nil, fmt.Errorf("stream keys %s: streams[%d]: empty key", path, i)
		case e.Name == "":
			return nil, fmt.Errorf("stream keys %s: streams[%d]: empty name", path, i)
		case !validName(e.Name):
			return nil, fmt.Errorf("stream keys %s: streams[%d]: invalid name %q (letters, digits, '-', '_' and '.', no \"..\", at most 128)", path, i, e.Name)
		}
		if j, dup := keyAt[e.Key]; dup {
			return nil, fmt.Errorf("stream keys %s: streams[%d]: duplicate key (same as streams[%d])", path, i, j)
		}
		if j, dup := nameAt[e.Name]; dup {
			return nil, fmt.Errorf("stream keys %s: streams[%d]: duplicate name %q (same as streams[%d])", path, i, e.Name, j)
		}
		keyAt[e.Key], nameAt[e.Name] = i, i
		table[e.Key] = e.Name
	}
	return table, nil
}

// Authorize maps the key to its public name; an unknown key is refused with
// an error wrapping ErrUnknownKey.
func (k *Keys) Authorize(_ context.Context, req AuthRequest) (string, error) {
	k.mu.RLock()
	name, ok := k.table[req.Key]
	k.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w (%s)", ErrUnknownKey, KeyFingerprint(req.Key))
	}
	return name, nil
}

// Len returns the number of keys in the table.
func (k *Keys) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.table)
}

// Watch polls the file's modification time and size every interval and
// reloads it when they change, logging each reload (never the keys). A
// broken file is logged once and the old table kept until the file changes
// again. Watch returns when ctx is done.
func (k *Keys) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	statFailing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(k.path)
		if err != nil {
			if !statFailing {
				log.Warn("stream keys file unreadable; keeping the loaded keys", "path", k.path, "err", err)
				statFailing = true
			}
			continue
		}
		statFailing = false
		k.mu.RLock()
		changed := stampOf(fi) != k.seen
		k.mu.RUnlock()
		if !changed {
			continue
		}
		if err := k.Reload(); err != nil {
			log.Error("stream keys reload failed; keeping the previous keys", "path", k.path, "err", err, "streams", k.Len())
			continue
		}
		log.Info("stream keys reloaded", "path", k.path, "streams", k.Len())
	}
}
