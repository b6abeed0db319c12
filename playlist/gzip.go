package playlist

import (
	"bytes"
	"compress/gzip"
	"sync"
)

// gzipped is a playlist body compressed once, on the first request that
// accepts gzip, and shared by every later one: a rendered playlist never
// changes, so no request compresses anything again.
type gzipped struct {
	once sync.Once
	body []byte
}

func (g *gzipped) get(plain []byte) []byte {
	g.once.Do(func() {
		var b bytes.Buffer
		b.Grow(len(plain)/3 + 64)
		// BestSpeed: playlists are small and repetitive, the ratio is
		// nearly the same as at the default level, at a fraction of the CPU.
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		zw.Write(plain)
		zw.Close()
		g.body = b.Bytes()
	})
	return g.body
}
