// Package storage keeps bytes by key: segments, playlists and init segments.
// It knows nothing of media. Memory is the default; a directory is an option.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ErrNotFound is returned by Get and Delete for a key that is not stored.
var ErrNotFound = errors.New("storage: not found")

// Object is a stored value. Data must not be modified by anyone once stored:
// the memory store hands the same slice to every reader.
type Object struct {
	Data        []byte
	ContentType string
	ModTime     time.Time
}

// Store is what fount writes media to. Keys are slash-separated relative
// paths made of validated names (see ValidKey).
type Store interface {
	Put(ctx context.Context, key string, obj Object) error
	Get(ctx context.Context, key string) (Object, error)
	Delete(ctx context.Context, key string) error
	// Keys lists the stored keys below prefix (a "dir/" style prefix).
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// ValidKey reports an error unless key is a relative path whose every element
// is a non-empty name of letters, digits, '-', '_' and '.', not "." or "..".
// Every backend calls it so that no key can reach outside the store.
func ValidKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("storage: invalid key length %d", len(key))
	}
	// One pass, no allocation: it runs on every viewer request.
	start := 0
	for i := 0; i <= len(key); i++ {
		if i < len(key) && key[i] != '/' {
			c := key[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return fmt.Errorf("storage: invalid key %q", key)
			}
			continue
		}
		if el := key[start:i]; el == "" || el == "." || el == ".." {
			return fmt.Errorf("storage: invalid key %q", key)
		}
		start = i + 1
	}
	return nil
}

// S3Options carries the S3 settings that a --storage spec does not hold.
// Empty fields fall back to the AWS SDK's standard sources
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, shared config).
type S3Options struct {
	Endpoint, Region, AccessKey, SecretKey string
	Logger                                 *slog.Logger
}

// Open builds a Store from a --storage value: "memory" (or empty),
// "dir:/path" or "s3://bucket[/prefix]" (with default S3 options).
func Open(spec string) (Store, error) {
	return OpenContext(context.Background(), spec, S3Options{})
}

// OpenContext is Open with the S3 options. An s3:// store is checked
// (HeadBucket, bounded by ctx) and returned wrapped in an *Async, whose Run
// the caller must start and whose Flush it should call before exit.
func OpenContext(ctx context.Context, spec string, o S3Options) (Store, error) {
	switch {
	case spec == "" || spec == "memory":
		return NewMemory(), nil
	case strings.HasPrefix(spec, "dir:"):
		path := strings.TrimPrefix(spec, "dir:")
		if path == "" {
			return nil, fmt.Errorf("storage %q: dir: needs a path, e.g. dir:/var/lib/fount", spec)
		}
		return NewDir(path)
	case strings.HasPrefix(spec, "s3://"):
		bucket, prefix, err := ParseS3Spec(spec)
		if err != nil {
			return nil, err
		}
		s, err := NewS3(ctx, S3Config{
			Bucket: bucket, Prefix: prefix,
			Endpoint: o.Endpoint, Region: o.Region,
			AccessKey: o.AccessKey, SecretKey: o.SecretKey,
		})
		if err != nil {
			return nil, err
		}
		return NewAsync(s, AsyncConfig{Logger: o.Logger}), nil
	default:
		return nil, fmt.Errorf("storage %q: unknown kind (want memory, dir:/path or s3://bucket[/prefix])", spec)
	}
}
