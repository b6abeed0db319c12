// Package storage keeps bytes by key: the playlists, segments, parts and
// init segments of fount's streams, in memory (the default), in a directory
// or in an S3 bucket (behind Async, so that no writer waits for the
// network).
//
// It owns the grammar of names and keys (ValidName, ValidKey), the shape of
// a stream's keys (SplitKey), and the kinds of object by file name: the
// content type and Cache-Control of playlists (.m3u8), MPEG-TS segments
// (.ts) and fMP4 segments, parts and init segments (.m4s, .mp4), which the
// dir and S3 stores derive from a key (ContentType, DefaultCacheControl).
// It never reads the bytes it keeps (no media or playlist parsing), never
// decides what is written or deleted when (package playlist does), and
// never serves HTTP.
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

// ErrInvalidKey is wrapped by every backend's Put, Get and Delete, and by
// ValidKey and ValidName, for a key or name outside the grammar of ValidName.
var ErrInvalidKey = errors.New("storage: invalid key")

// MaxNameLen and MaxKeyLen bound a name (one path element) and a whole key,
// in bytes.
const (
	MaxNameLen = 128
	MaxKeyLen  = 1024
)

// ValidName reports an error wrapping ErrInvalidKey unless s is a name: the
// one grammar for apps, stream names and file names everywhere in fount
// (RTMP publish, HTTP routing, storage keys; see docs/architecture.md):
//
//   - 1 to MaxNameLen bytes of ASCII letters, digits, '-', '_' and '.';
//   - no '.' first (no ".", "..", or hidden files, which the dir store uses
//     for its temporary files) or last (Windows drops a trailing dot);
//   - no ".." anywhere;
//   - not a Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9, in any
//     case, alone or before a '.'), so a dir store can be copied anywhere.
//
// Such a name never needs percent-encoding in a URL or quoting in a header,
// log line or shell, and is a portable file name.
func ValidName(s string) error {
	if len(s) > MaxNameLen || !validPath(s, false) {
		return invalid("name", s)
	}
	return nil
}

// ValidKey reports an error wrapping ErrInvalidKey unless key is a relative
// path of at most MaxKeyLen bytes whose every element is a valid name (see
// ValidName). Every backend calls it so that no key can reach outside the
// store.
func ValidKey(key string) error {
	if len(key) > MaxKeyLen || !validPath(key, true) {
		return invalid("key", key)
	}
	return nil
}

// SplitKey splits an object key of a stream, APP/NAME/FILE or
// APP/NAME/RENDITION/FILE with every element a valid name, into the
// stream's path ("APP/NAME" or "APP/NAME/RENDITION") and FILE. It is the
// one place the shape of a stream's keys is written down: viewer paths,
// upload queues, logs and metrics all split with it. It does not allocate.
func SplitKey(key string) (stream, file string, ok bool) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return "", "", false
	}
	if n := strings.Count(key[:i], "/"); n < 1 || n > 2 || ValidKey(key) != nil {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// TopStream returns the APP/NAME a stream path (as SplitKey's stream)
// belongs to: a rendition's parent, or the path itself.
func TopStream(stream string) string {
	if i := strings.IndexByte(stream, '/'); i >= 0 {
		if j := strings.IndexByte(stream[i+1:], '/'); j >= 0 {
			return stream[:i+1+j]
		}
	}
	return stream
}

// Bit masks of the bytes a name may hold, for bytes below 64 and from 64 to
// 127: '-', '.', '0'-'9'; 'A'-'Z', '_', 'a'-'z'.
const (
	nameBytesLo uint64 = 1<<'-' | 1<<'.' | (1<<10-1)<<'0'
	nameBytesHi uint64 = (1<<26-1)<<('A'-64) | 1<<('_'-64) | (1<<26-1)<<('a'-64)
)

// validPath checks the grammar of ValidName for s, or for every
// '/'-separated element of s when slashes is set, in one pass and without
// allocating: it runs on every viewer request.
func validPath(s string, slashes bool) bool {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			if c < 64 && nameBytesLo&(1<<c) != 0 || c >= 64 && c < 128 && nameBytesHi&(1<<(c-64)) != 0 {
				// No leading '.' and no "..": a '.' follows a non-'.' of
				// the same element.
				if c == '.' && (i == start || s[i-1] == '.') {
					return false
				}
				continue
			}
			if c != '/' || !slashes {
				return false
			}
		}
		el := s[start:i]
		if len(el) == 0 || len(el) > MaxNameLen || el[len(el)-1] == '.' || windowsDevice(el) {
			return false
		}
		start = i + 1
	}
	return true
}

// windowsDevice reports whether the name s is CON, PRN, AUX, NUL, COMn or
// LPTn (n a digit), in any case, alone or followed by '.' and anything:
// Windows opens the device instead of the file.
func windowsDevice(s string) bool {
	switch {
	case len(s) < 3:
		return false
	case len(s) == 3 || s[3] == '.':
		b := s[:3]
		return foldEq(b, "con") || foldEq(b, "prn") || foldEq(b, "aux") || foldEq(b, "nul")
	case s[3] >= '0' && s[3] <= '9' && (len(s) == 4 || s[4] == '.'):
		b := s[:3]
		return foldEq(b, "com") || foldEq(b, "lpt")
	}
	return false
}

// foldEq compares s, made of name bytes, with the lower-case ASCII word w,
// ignoring case, without allocating.
func foldEq(s, w string) bool {
	for i := 0; i < len(w); i++ {
		if s[i]|0x20 != w[i] {
			return false
		}
	}
	return true
}

// invalid builds the error for a refused key or name. Only a bounded, quoted
// prefix goes into the message: keys come from the network and end up in
// logs.
func invalid(what, s string) error {
	const show = 64
	if len(s) > show {
		return fmt.Errorf("%w: %s %q... (%d bytes)", ErrInvalidKey, what, s[:show], len(s))
	}
	return fmt.Errorf("%w: %s %q", ErrInvalidKey, what, s)
}

// S3Options carries the S3 settings that a --storage spec does not hold.
// Empty fields fall back to the AWS SDK's standard sources
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, shared config).
type S3Options struct {
	Endpoint, Region, AccessKey, SecretKey string
	Logger                                 *slog.Logger
}

// OpenContext builds a Store from a --storage value: "memory" (or empty),
// "dir:/path" or "s3://bucket[/prefix]" with the S3 options. An s3:// store is checked
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
