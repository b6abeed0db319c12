package storage

import "testing"

func TestKinds(t *testing.T) {
	for name, want := range map[string][2]string{
		"live/s/index.m3u8":    {"application/vnd.apple.mpegurl", "no-cache"},
		"live/s/v0/index.m3u8": {"application/vnd.apple.mpegurl", "no-cache"},
		"live/s/12.ts":         {"video/mp2t", "public, max-age=31536000, immutable"},
		"live/s/12.3.m4s":      {"video/mp4", "public, max-age=31536000, immutable"},
		"live/s/init-1.mp4":    {"video/mp4", "public, max-age=31536000, immutable"},
		"live/s.d/file":        {"application/octet-stream", "public, max-age=31536000, immutable"},
	} {
		if ct, cc := ContentType(name), DefaultCacheControl(name); ct != want[0] || cc != want[1] {
			t.Errorf("%s: %q, %q; want %q", name, ct, cc, want)
		}
		if media := want[0] == TSType || want[0] == MP4Type; IsMedia(name) != media {
			t.Errorf("IsMedia(%s) = %v", name, !media)
		}
	}
}
