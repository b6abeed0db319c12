package playlist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fount-live/fount/storage"
)

// Adopt takes over the streams that an earlier process handed over: every
// stored playlist below app/ that has no EXT-X-ENDLIST and was written
// within the reconnect window becomes an idle stream, served from storage
// at once and continued when its encoder reconnects. A successor started
// after a handover thus answers viewers with the same playlists, instead of
// 404 until each encoder is back. It returns the adopted paths.
func (r *Registry) Adopt(ctx context.Context, app string) ([]string, error) {
	keys, err := r.cfg.Store.Keys(ctx, app+"/")
	if err != nil {
		return nil, fmt.Errorf("listing stored streams: %w", err)
	}
	var adopted []string
	for _, k := range keys {
		path, ok := strings.CutSuffix(k, "/"+playlistName)
		if !ok || strings.Count(path, "/") != 1 || storage.ValidKey(path) != nil {
			continue
		}
		ok, err := r.adopt(ctx, path)
		if err != nil {
			// One unreadable playlist must not keep the others offline;
			// publishing that name later reports the error again.
			r.cfg.Logger.Warn("not adopting a stored stream", "stream", path, "err", err)
			continue
		}
		if ok {
			adopted = append(adopted, path)
		}
	}
	return adopted, nil
}

func (r *Registry) adopt(ctx context.Context, path string) (bool, error) {
	obj, err := r.cfg.Store.Get(ctx, path+"/"+playlistName)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the stored playlist: %w", err)
	}
	if bytes.Contains(obj.Data, []byte("#EXT-X-ENDLIST")) {
		return false, nil // ended: a publish continues it, viewers need nothing
	}
	if !obj.ModTime.IsZero() && r.cfg.Now().Sub(obj.ModTime) > r.cfg.ReconnectWindow {
		return false, nil // left by a crash long ago, not by a handover
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.streams[path]; ok {
		return false, nil
	}
	if _, ok := r.tombstones[path]; ok {
		return false, nil // this process published it: not a handover
	}
	if len(r.streams) >= r.cfg.MaxStreams {
		return false, fmt.Errorf("%w: %d held", ErrTooManyStreams, len(r.streams))
	}
	// Idle from now: the encoder gets a whole reconnect window.
	s, err := r.newStreamLocked(ctx, path, StateIdle)
	if err != nil {
		return false, err
	}
	if len(s.window) == 0 {
		return false, nil // an empty stored playlist: nothing to serve
	}
	s.mu.Lock()
	s.open = openSegment{msn: s.nextMSN, init: s.initVersion}
	rd := s.renderLocked()
	s.mu.Unlock()
	s.pl.Store(rd)
	r.streams[path] = s
	r.cfg.Logger.Info("adopted a handed-over stream; waiting for its encoder", "stream", path, "next_media_sequence", s.nextMSN, "reconnect_window", r.cfg.ReconnectWindow)
	return true, nil
}

// Drain is for a handover: every blocking request waiting now, and each
// one that comes later, is answered at once with 503 and Retry-After, so
// players retry — on the successor once this process stops listening —
// instead of waiting for parts that this process will never make.
func (r *Registry) Drain() {
	r.drainOnce.Do(func() { close(r.draining) })
	for _, s := range r.Streams() {
		s.wakeAll() // the loops' parked requests: the Handler answers them 503
	}
}

func (r *Registry) isDraining() bool {
	select {
	case <-r.draining:
		return true
	default:
		return false
	}
}
