package playlist

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fount-live/fount/storage"
)

// ErrRecordingNotFound is returned for a recording id a stream does not have.
var ErrRecordingNotFound = errors.New("recording not found")

// ErrRecordingActive is returned when a recording still being made is
// deleted.
var ErrRecordingActive = errors.New("the recording is still being made: it can be deleted once its stream has ended")

// recCatalog is every recording known: made by this process, or found in
// storage by LoadRecordings. Keyed by the recorded stream's path
// (a rendition's for each rendition), then id.
type recCatalog struct {
	mu     sync.Mutex
	byPath map[string]map[string]*recInfo
}

func newRecCatalog() *recCatalog { return &recCatalog{byPath: make(map[string]map[string]*recInfo)} }

// put records (a copy of) info.
func (c *recCatalog) put(info *recInfo) {
	cp := *info
	cp.Sizes = nil // read from recording.json by a download, not kept
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.byPath[cp.Path]
	if m == nil {
		m = make(map[string]*recInfo)
		c.byPath[cp.Path] = m
	}
	m[cp.ID] = &cp
}

// freshID returns the id of a recording of top (a stream's APP/NAME)
// starting at start: that second, or the next one free.
func (c *recCatalog) freshID(top string, start time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		id := start.UTC().Format(recIDLayout)
		taken := false
		for p, m := range c.byPath {
			if storage.TopStream(p) == top && m[id] != nil {
				taken = true
				break
			}
		}
		if !taken {
			return id
		}
		start = start.Add(time.Second)
	}
}

// forTop returns the recordings of top (its renditions' too) with id, or
// every id when id is "".
func (c *recCatalog) forTop(top, id string) []recInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []recInfo
	for p, m := range c.byPath {
		if storage.TopStream(p) != top {
			continue
		}
		for i, in := range m {
			if id == "" || i == id {
				out = append(out, *in)
			}
		}
	}
	return out
}

func (c *recCatalog) all() []recInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []recInfo
	for _, m := range c.byPath {
		for _, in := range m {
			out = append(out, *in)
		}
	}
	return out
}

func (c *recCatalog) remove(p, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byPath[p], id)
	if len(c.byPath[p]) == 0 {
		delete(c.byPath, p)
	}
}

// LoadRecordings finds the recordings an earlier process left in storage
// (their recording.json), so that they are listed, served and kept to
// their retention. It lists every key of the store once.
func (r *Registry) LoadRecordings(ctx context.Context) error {
	keys, err := r.cfg.Store.Keys(ctx, "")
	if err != nil {
		return fmt.Errorf("listing storage for recordings: %w", err)
	}
	n := 0
	for _, k := range keys {
		if path.Base(k) != recInfoName || path.Base(path.Dir(path.Dir(k))) != recDir {
			continue
		}
		in, err := r.readRecInfo(ctx, k)
		if err != nil {
			r.cfg.Logger.Warn("a stored recording cannot be read; skipped", "key", k, "err", err)
			continue
		}
		r.cfg.recordings.put(in)
		n++
	}
	if n > 0 {
		r.cfg.Logger.Info("recordings found in storage", "recordings", n)
	}
	return nil
}

func (r *Registry) readRecInfo(ctx context.Context, key string) (*recInfo, error) {
	obj, err := r.cfg.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	var in recInfo
	if err := json.Unmarshal(obj.Data, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if in.Path == "" || storage.ValidKey(in.Path) != nil || storage.ValidName(in.ID) != nil || recPrefix(in.Path, in.ID)+recInfoName != key {
		return nil, fmt.Errorf("%s: names another recording (%q, %q)", key, in.Path, in.ID)
	}
	return &in, nil
}

// reopenRecording finds path's recording that an earlier process left open
// (it stopped without ending the stream), for a stream that continues from
// storage: the recording goes on, with a discontinuity.
func (r *Registry) reopenRecording(ctx context.Context, s *Stream) {
	var open *recInfo
	for _, in := range r.cfg.recordings.forTop(storage.TopStream(s.path), "") {
		if in.Path == s.path && in.State == recStateActive && (open == nil || in.ID > open.ID) {
			in := in
			open = &in
		}
	}
	if open == nil {
		return
	}
	obj, err := r.cfg.Store.Get(ctx, recPrefix(s.path, open.ID)+playlistName)
	if err != nil {
		r.cfg.Logger.Warn("the open recording cannot be continued; a new one starts", "stream", s.path, "recording", open.ID, "err", err)
		return
	}
	body, target := recBody(obj.Data)
	rc := &recorder{info: *open, body: body, target: target, lastInit: -1, disc: true}
	rc.keyed = recKeyed(body)
	if n := len(open.Inits); n > 0 {
		fmt.Sscanf(open.Inits[n-1], "init%d.mp4", &rc.lastInit)
	}
	s.rec = rc
	if g := s.group; g != nil {
		g.mu.Lock()
		if g.recOpen == 0 {
			g.recID = open.ID
		}
		g.recOpen++
		g.mu.Unlock()
	}
	r.cfg.Logger.Info("continuing a recording found in storage", "stream", s.path, "recording", open.ID, "segments", open.Segments)
}

// recBody splits a stored recording playlist: its segment lines (without
// EXT-X-ENDLIST) and its target duration.
func recBody(b []byte) (body []byte, target int) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	started := false
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "#EXT-X-TARGETDURATION:"); ok {
			fmt.Sscanf(v, "%d", &target)
		}
		if !started {
			started = strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME") || strings.HasPrefix(line, "#EXT-X-MAP") ||
				strings.HasPrefix(line, "#EXT-X-DISCONTINUITY") || strings.HasPrefix(line, "#EXTINF")
		}
		if !started || line == "#EXT-X-ENDLIST" {
			continue
		}
		body = append(body, line...)
		body = append(body, '\n')
	}
	return body, target
}

// recObjects lists the keys of the media a stored recording playlist (at
// prefix) names — segments and init segments — resolved against it, each
// one a key of the stream the recording is of.
func recObjects(prefix string, pl []byte) (segments, inits []string) {
	streamDir := path.Dir(path.Dir(strings.TrimSuffix(prefix, "/")))
	resolve := func(uri string) (string, bool) {
		k := path.Join(strings.TrimSuffix(prefix, "/"), uri)
		if storage.ValidKey(k) != nil || path.Dir(k) != streamDir {
			return "", false
		}
		return k, true
	}
	sc := bufio.NewScanner(bytes.NewReader(pl))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "#EXT-X-MAP:URI=\""); ok {
			if k, ok := resolve(strings.TrimSuffix(v, "\"")); ok {
				inits = append(inits, k)
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if k, ok := resolve(line); ok {
			segments = append(segments, k)
		}
	}
	return segments, inits
}

// Recordings lists the recordings of stream (APP/NAME), or of every stream
// when stream is "", newest first.
func (r *Registry) Recordings(stream string) []Recording {
	var infos []recInfo
	if stream == "" {
		infos = r.cfg.recordings.all()
	} else {
		infos = r.cfg.recordings.forTop(stream, "")
	}
	byKey := map[string][]recInfo{}
	for _, in := range infos {
		k := storage.TopStream(in.Path) + "/" + in.ID
		byKey[k] = append(byKey[k], in)
	}
	out := make([]Recording, 0, len(byKey))
	for _, ins := range byKey {
		out = append(out, summarize(ins))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID > out[j].ID
		}
		return out[i].Stream < out[j].Stream
	})
	return out
}

// Recording returns stream's recording id.
func (r *Registry) Recording(stream, id string) (Recording, error) {
	ins := r.cfg.recordings.forTop(stream, id)
	if len(ins) == 0 {
		return Recording{}, fmt.Errorf("%s/%s: %w", stream, id, ErrRecordingNotFound)
	}
	return summarize(ins), nil
}

// summarize makes one Recording of a recording's renditions (or its one
// stream).
func summarize(ins []recInfo) Recording {
	sort.Slice(ins, func(i, j int) bool { return ins[i].Path < ins[j].Path })
	top := storage.TopStream(ins[0].Path)
	rec := Recording{Stream: top, ID: ins[0].ID, State: recStateDone, Format: ins[0].Format, Start: ins[0].Start, End: ins[0].End}
	for _, in := range ins {
		if in.State == recStateActive {
			rec.State = recStateActive
		}
		if in.Start.Before(rec.Start) {
			rec.Start = in.Start
		}
		if in.End.After(rec.End) {
			rec.End = in.End
		}
		if in.Duration > rec.Duration {
			rec.Duration, rec.Segments, rec.Discontinuities = in.Duration, in.Segments, in.Discontinuities
		}
		rec.Bytes += in.Bytes
		rec.Missing = append(rec.Missing, in.Missing...)
		if in.Path != top {
			rec.Renditions = append(rec.Renditions, strings.TrimPrefix(in.Path, top+"/"))
		}
	}
	base := "/" + recPrefix(top, rec.ID)
	rec.Playlist = base + playlistName
	rec.Download = base + "recording.ts"
	if rec.Format == "fmp4" {
		rec.Download = base + "recording.mp4"
	}
	return rec
}

// DeleteRecording deletes stream's recording id: its playlists, its
// recording.json and every segment and init segment it lists.
func (r *Registry) DeleteRecording(ctx context.Context, stream, id string) error {
	ins := r.cfg.recordings.forTop(stream, id)
	if len(ins) == 0 {
		return fmt.Errorf("%s/%s: %w", stream, id, ErrRecordingNotFound)
	}
	for _, in := range ins {
		if in.State == recStateActive {
			return fmt.Errorf("%s/%s: %w", stream, id, ErrRecordingActive)
		}
	}
	var firstErr error
	for _, in := range ins {
		if err := r.deleteRecordingOf(ctx, in); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if len(ins) > 1 || ins[0].Path != stream {
		// The multivariant recording playlist.
		if err := r.cfg.Store.Delete(ctx, recPrefix(stream, id)+playlistName); err != nil && !errors.Is(err, storage.ErrNotFound) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		r.totals.storageErrors.Add(1)
		return fmt.Errorf("deleting recording %s/%s: %w", stream, id, firstErr)
	}
	r.totals.recDeleted.Add(1)
	r.cfg.Logger.Info("recording deleted", "stream", stream, "recording", id)
	return nil
}

// deleteRecordingOf deletes one stream's (one rendition's) recording. Its
// media goes first and its playlist last, so that what is left after a
// failure is still listed and can be deleted again; an init segment that
// another recording or the live stream still uses stays.
func (r *Registry) deleteRecordingOf(ctx context.Context, in recInfo) error {
	prefix := recPrefix(in.Path, in.ID)
	var segs, inits []string
	obj, err := r.cfg.Store.Get(ctx, prefix+playlistName)
	switch {
	case err == nil:
		segs, inits = recObjects(prefix, obj.Data)
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	keep := map[string]bool{}
	for _, o := range r.cfg.recordings.forTop(storage.TopStream(in.Path), "") {
		if o.Path == in.Path && o.ID != in.ID {
			for _, name := range o.Inits {
				keep[in.Path+"/"+name] = true
			}
		}
	}
	if s := r.Stream(in.Path); s != nil {
		s.mu.Lock()
		for _, name := range s.inits {
			keep[in.Path+"/"+name] = true
		}
		s.mu.Unlock()
	}
	del := func(k string) error {
		if err := r.cfg.Store.Delete(ctx, k); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		return nil
	}
	for _, k := range segs {
		if err := del(k); err != nil {
			return err
		}
	}
	for _, k := range inits {
		if !keep[k] {
			if err := del(k); err != nil {
				return err
			}
		}
	}
	if err := del(prefix + recInfoName); err != nil {
		return err
	}
	if err := del(prefix + playlistName); err != nil {
		return err
	}
	r.cfg.recordings.remove(in.Path, in.ID)
	r.totals.recDeletedB.Add(uint64(in.Bytes))
	return nil
}

// expireRecordings deletes the finished recordings that ended more than
// Config.RecordRetention ago.
func (r *Registry) expireRecordings(ctx context.Context, now time.Time) {
	if r.cfg.RecordRetention <= 0 {
		return
	}
	for _, rec := range r.Recordings("") {
		if rec.State != recStateDone || now.Sub(rec.End) <= r.cfg.RecordRetention {
			continue
		}
		if err := r.DeleteRecording(ctx, rec.Stream, rec.ID); err != nil {
			r.cfg.Logger.Warn("deleting an expired recording failed; tried again later", "stream", rec.Stream, "recording", rec.ID, "err", err)
			continue
		}
		r.cfg.Logger.Info("recording expired", "stream", rec.Stream, "recording", rec.ID, "ended", rec.End, "retention", r.cfg.RecordRetention)
	}
}

// recordedNumbering returns the numbers after the last segment and init
// segment path's recordings hold, which a stream published again under
// the name must not reuse: its recordings still own those URLs.
func (c *recCatalog) recordedNumbering(p string) (nextMSN uint64, nextInit int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, in := range c.byPath[p] {
		var n uint64
		if _, err := fmt.Sscanf(in.Last, "seg%d.", &n); err == nil && n+1 > nextMSN {
			nextMSN, ok = n+1, true
		}
		for _, name := range in.Inits {
			var v int
			if _, err := fmt.Sscanf(name, "init%d.mp4", &v); err == nil && v+1 > nextInit {
				nextInit, ok = v+1, true
			}
		}
	}
	return nextMSN, nextInit, ok
}

// RecordingStats counts recordings for metrics.
type RecordingStats struct {
	Active, Finished int    // recordings known now
	Bytes            int64  // media bytes they list
	RecordedBytes    uint64 // media bytes recorded by this process
	Deleted          uint64 // recordings deleted (API or retention)
	DeletedBytes     uint64 // their media bytes
}

// RecordingStats returns a snapshot.
func (r *Registry) RecordingStats() RecordingStats {
	st := RecordingStats{RecordedBytes: r.totals.recordedBytes.Load(), Deleted: r.totals.recDeleted.Load(), DeletedBytes: r.totals.recDeletedB.Load()}
	for _, rec := range r.Recordings("") {
		if rec.State == recStateActive {
			st.Active++
		} else {
			st.Finished++
		}
		st.Bytes += rec.Bytes
	}
	return st
}

// writeRecording writes the multivariant playlist of the group's
// recording id, listing the renditions that have one.
func (g *variants) writeRecording(id string) {
	p := g.parent
	var rows []variantRow
	for i, s := range g.snapshot() {
		info := s.info.Load()
		if info == nil || !hasRecording(p.cfg.recordings, s.path, id) {
			continue
		}
		rows = append(rows, variantRow{s: s, info: info, peak: s.bw.peak.Load(), avg: s.bw.avg.Load(), order: i})
	}
	body := renderMultivariant(rows, id, g.signalled())
	if body == nil {
		return
	}
	g.recMu.Lock()
	defer g.recMu.Unlock()
	if bytes.Equal(body, g.recBody) {
		return
	}
	if err := p.cfg.Store.Put(context.Background(), recPrefix(p.path, id)+playlistName, storage.Object{Data: body, ContentType: playlistType, ModTime: p.cfg.Now()}); err != nil {
		p.totals.storageErrors.Add(1)
		p.log.Error("storing the recording's multivariant playlist failed", "stream", p.path, "recording", id, "err", err)
		return
	}
	g.recBody = body
}

func hasRecording(c *recCatalog, p, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPath[p][id] != nil
}
