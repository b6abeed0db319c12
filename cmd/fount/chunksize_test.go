package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fount-live/fount/ingest"
)

// TestE2EFFmpegPublishesInLargeChunks: ffmpeg mirrors the chunk size the
// server announces as its own outgoing chunk size. fount announces
// --rtmp-chunk-size at connect, so an ffmpeg publisher ends up sending
// chunks of that size instead of RTMP's default 128 bytes (one system
// call each on both sides). Two sizes, so that the size seen is the one
// configured and not a constant of either side.
func TestE2EFFmpegPublishesInLargeChunks(t *testing.T) {
	src := source(t)
	for _, size := range []byteSize{ingest.DefaultChunkSize, 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			o := startOrigin(t, func(c *config) { c.RTMPChunkSize = size })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			push := o.push(ctx, t, "chunks", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
			defer push.Wait()
			defer cancel()

			got := awaitPublisherChunkSize(t, o, "live/chunks", 15*time.Second)
			if got != uint32(size) {
				t.Fatalf("ffmpeg publishes in %d-byte chunks, want the %d fount announced", got, size)
			}
		})
	}
}

// awaitPublisherChunkSize polls the API until stream has a publisher whose
// media arrived (so its Set Chunk Size, sent before, has been read) and
// returns the chunk size it sends in.
func awaitPublisherChunkSize(t *testing.T, o *origin, stream string, timeout time.Duration) uint32 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + o.api + "/api/v1/streams/" + stream)
		if err == nil {
			var s struct {
				Segments  uint64 `json:"segments"`
				Publisher *struct {
					ChunkSize uint32 `json:"chunk_size"`
				} `json:"publisher"`
			}
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if err == nil && s.Publisher != nil && s.Segments > 0 {
				return s.Publisher.ChunkSize
			}
			last = fmt.Sprintf("status %d, err %v", resp.StatusCode, err)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no publisher with a segment on %s within %s (last: %s)", stream, timeout, last)
	return 0
}
