package storage

import (
	"mime"
	"path"
	"strings"
)

// The kinds of object fount stores, told apart by file name: the one
// statement of which Content-Type and Cache-Control each carries. The dir
// store, which keeps no metadata, derives the type with ContentType; the S3
// store stores both headers with each object; package playlist serves with
// the same constants. Every name is immutable, since a URL never changes
// meaning, except a playlist's (.m3u8), which is rewritten in place.
const (
	// PlaylistType is the content type of a playlist (.m3u8, RFC 8216).
	PlaylistType = "application/vnd.apple.mpegurl"
	// TSType is the content type of an MPEG-TS segment (.ts).
	TSType = "video/mp2t"
	// MP4Type is the content type of an fMP4 segment or part (.m4s) and of
	// an init segment (.mp4).
	MP4Type = "video/mp4"

	// PlaylistCacheControl makes caches revalidate a playlist on every
	// request: it changes with every segment.
	PlaylistCacheControl = "no-cache"
	// ImmutableCacheControl lets caches keep any other object for good: its
	// name is never reused for other bytes.
	ImmutableCacheControl = "public, max-age=31536000, immutable"
)

// ContentType returns the content type of the object stored under name (a
// key or a file name) by its extension: the HLS types above, set here since
// not every system's MIME table knows them, else the system's type for the
// extension, else application/octet-stream.
func ContentType(name string) string {
	ext := path.Ext(name)
	switch ext {
	case ".m3u8":
		return PlaylistType
	case ".ts":
		return TSType
	case ".m4s", ".mp4":
		return MP4Type
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// IsMedia reports whether name (a key or a file name) is a media object: a
// segment or part (.ts, .m4s) or an init segment (.mp4).
func IsMedia(name string) bool {
	switch path.Ext(name) {
	case ".ts", ".m4s", ".mp4":
		return true
	}
	return false
}

// DefaultCacheControl returns the Cache-Control of the object stored under
// key: PlaylistCacheControl for a playlist, ImmutableCacheControl for
// everything else (segments, parts, init segments).
func DefaultCacheControl(key string) string {
	if strings.HasSuffix(key, ".m3u8") {
		return PlaylistCacheControl
	}
	return ImmutableCacheControl
}
