package main

import (
	"context"
	"log/slog"
	"syscall"
	"time"

	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/storage"
)

// sigHandover asks fount to hand its streams over to a successor instead of
// ending them (docs/scaling.md#restarts-without-viewers-noticing).
const sigHandover = syscall.SIGUSR2

// handOver runs after ingest has stopped on a handover: the streams are idle
// (no EXT-X-ENDLIST) and stored, so a successor adopts them. Viewers keep
// being answered for grace — with --reuse-port the successor is already
// taking new connections beside this process — with keep-alive off so each
// viewer's next request lands on a fresh connection, and blocking requests
// answered at once so that players retry rather than wait on parts this
// process will never make. A second signal (ctx) cuts the grace short.
func handOver(ctx context.Context, log *slog.Logger, reg *playlist.Registry, uploads *storage.Async, srv interface{ SetKeepAlivesEnabled(bool) }, grace time.Duration) {
	srv.SetKeepAlivesEnabled(false)
	reg.Drain()
	if uploads != nil {
		// The successor reads what this process stored: the final
		// playlists must have reached the bucket first.
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := uploads.Flush(fctx); err != nil {
			log.Error("handover: uploads still pending; the successor may miss the last segments", "pending", uploads.Stats().Pending, "err", err)
		}
		cancel()
	}
	log.Info("handover: streams stored; start the successor now", "streams", len(reg.Streams()), "grace", grace)
	if grace <= 0 {
		return
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
