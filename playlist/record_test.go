package playlist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"github.com/fount-live/fount/storage"
)

func newRecRegistry(t *testing.T, store storage.Store, clk *fakeClock, fmp4 bool) *Registry {
	t.Helper()
	return NewRegistry(Config{
		Store: store, TargetDuration: 2 * time.Second, WindowSize: 3,
		ReconnectWindow: 30 * time.Second, DeleteGrace: 10 * time.Second, RemoveAfter: 60 * time.Second,
		Record: true, FMP4: fmp4, Now: clk.Now,
	})
}

func recDirStore(t *testing.T) (*storage.Dir, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := storage.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d, dir
}

// sweepFor advances the clock by d a second at a time, sweeping.
func sweepFor(r *Registry, clk *fakeClock, d time.Duration) {
	for range int(d / time.Second) {
		clk.Add(time.Second)
		r.Sweep()
	}
}

// TestRecordingLifecycle: a stream with a reconnect is one recording, an
// EVENT playlist of the live segments' own objects while live, VOD once
// ended; its segments outlive the stream in storage, the download is their
// bytes in order, the name published again numbers on, a new process finds
// the recordings, and retention deletes them, objects and all.
func TestRecordingLifecycle(t *testing.T) {
	store, dir := recDirStore(t)
	clk := &fakeClock{t: time.Date(2026, 12, 1, 23, 13, 13, 0, time.UTC)}
	r := newRecRegistry(t, store, clk, false)
	h := r.Handler()
	s, err := r.Publish("live/show")
	if err != nil {
		t.Fatal(err)
	}
	const d = 2 * time.Second
	addSegments(t, s, clk, 5, d)
	const id = "20261201T231313Z"
	url := "/live/show/rec/" + id + "/index.m3u8"
	p := parseMedia(t, playlistBody(t, h, url))
	if p.MediaType != m3u8.EVENT || p.Closed || p.Count() != 5 || p.Segments[0].URI != "../../seg0.ts" {
		t.Fatalf("while live: type %v closed %v, %d segments, first %q; want EVENT, open, 5, ../../seg0.ts", p.MediaType, p.Closed, p.Count(), p.Segments[0].URI)
	}
	// The encoder drops and comes back within the reconnect window.
	s.Unpublish()
	sweepFor(r, clk, 5*time.Second)
	if s, err = r.Publish("live/show"); err != nil {
		t.Fatal(err)
	}
	addSegments(t, s, clk, 4, d)
	s.Unpublish()
	sweepFor(r, clk, 31*time.Second) // the reconnect window passes: the stream ends
	b := playlistBody(t, h, url)
	p = parseMedia(t, b)
	if p.MediaType != m3u8.VOD || !p.Closed || p.Count() != 9 {
		t.Fatalf("after the end: type %v closed %v, %d segments; want VOD, ENDLIST, 9\n%s", p.MediaType, p.Closed, p.Count(), b)
	}
	if n := bytes.Count(b, []byte("#EXT-X-DISCONTINUITY\n")); n != 1 || !p.Segments[5].Discontinuity {
		t.Errorf("%d discontinuities (segment 5 tagged: %v), want 1, at the reconnect\n%s", n, p.Segments[5].Discontinuity, b)
	}
	// The stream goes; its recording's segments stay, served from storage.
	sweepFor(r, clk, 80*time.Second)
	if r.Stream("live/show") != nil {
		t.Fatal("the ended stream was not removed")
	}
	var want []byte
	for i := range 9 {
		code, seg := body(t, h, fmt.Sprintf("/live/show/seg%d.ts", i))
		if code != 200 {
			t.Fatalf("segment %d of the recording: %d %s", i, code, seg)
		}
		want = append(want, seg...)
	}
	res := get(t, h, "GET", "/live/show/rec/"+id+"/recording.ts")
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !bytes.Equal(got, want) || res.Header.Get("Content-Length") != fmt.Sprint(len(want)) {
		t.Errorf("recording.ts: %d, %d bytes (Content-Length %q), want 200 and the 9 segments' %d bytes", res.StatusCode, len(got), res.Header.Get("Content-Length"), len(want))
	}
	// A range across a segment boundary (ffprobe and players seek).
	res = get(t, h, "GET", "/live/show/rec/"+id+"/recording.ts", "Range", "bytes=40-99")
	got, _ = io.ReadAll(res.Body)
	if res.StatusCode != 206 || !bytes.Equal(got, want[40:100]) {
		t.Errorf("recording.ts bytes 40-99: %d, %q; want 206 and %q", res.StatusCode, got, want[40:100])
	}
	if code, msg := body(t, h, "/live/show/rec/"+id+"/recording.mp4"); code != 404 || !strings.Contains(msg, "recording.ts") {
		t.Errorf("recording.mp4 of a TS recording: %d %q, want 404 naming recording.ts", code, msg)
	}
	recs := r.Recordings("live/show")
	if len(recs) != 1 || recs[0].ID != id || recs[0].State != "finished" || recs[0].Segments != 9 || recs[0].Discontinuities != 1 ||
		recs[0].Bytes != int64(len(want)) || recs[0].Download != "/live/show/rec/"+id+"/recording.ts" || recs[0].Duration != 18 {
		t.Fatalf("recordings: %+v", recs)
	}

	// Published again: a second recording, numbering on (seg9 and up).
	clk.Add(time.Hour)
	if s, err = r.Publish("live/show"); err != nil {
		t.Fatal(err)
	}
	addSegments(t, s, clk, 2, d)
	recs = r.Recordings("live/show")
	if len(recs) != 2 || recs[0].State != "recording" || recs[0].ID == id {
		t.Fatalf("after publishing again: %+v", recs)
	}
	id2 := recs[0].ID
	if b := playlistBody(t, h, "/live/show/rec/"+id2+"/index.m3u8"); !bytes.Contains(b, []byte("../../seg9.ts")) {
		t.Errorf("the second recording does not number on from seg9:\n%s", b)
	}
	if err := r.DeleteRecording(context.Background(), "live/show", id2); !errors.Is(err, ErrRecordingActive) {
		t.Errorf("deleting a recording being made: %v, want ErrRecordingActive", err)
	}
	s.Unpublish()
	sweepFor(r, clk, 100*time.Second)

	// A new process on the same storage finds both and numbers on after
	// them, though the stream and its playlist are gone.
	r2 := newRecRegistry(t, store, clk, false)
	if err := r2.LoadRecordings(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recs := r2.Recordings(""); len(recs) != 2 || recs[0].ID != id2 || recs[1].ID != id || recs[1].Segments != 9 {
		t.Fatalf("after a restart: %+v", recs)
	}
	s, err = r2.Publish("live/show")
	if err != nil {
		t.Fatal(err)
	}
	addSegments(t, s, clk, 1, d)
	if _, ok := s.byName.Load("seg11.ts"); !ok {
		t.Error("after a restart the name published again does not number on after its recordings (seg11.ts)")
	}
	s.Unpublish()
	sweepFor(r2, clk, 100*time.Second)

	// Retention: exactly the recordings that ended longer ago go.
	r2.cfg.RecordRetention = 30 * time.Minute
	r2.Sweep()
	recs = r2.Recordings("live/show")
	if len(recs) != 2 || recs[0].ID == id || recs[1].ID == id {
		t.Fatalf("after retention of 30 min: %+v; want the first (ended over an hour ago) gone", recs)
	}
	for i := range 9 {
		if _, err := os.Stat(filepath.Join(dir, "live", "show", fmt.Sprintf("seg%d.ts", i))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("segment %d of the expired recording: %v, want it deleted", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "live", "show", "rec", id)); err == nil {
		if names, _ := os.ReadDir(filepath.Join(dir, "live", "show", "rec", id)); len(names) > 0 {
			t.Errorf("the expired recording's directory still holds %d files", len(names))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "live", "show", "seg9.ts")); err != nil {
		t.Errorf("a segment of the kept recording: %v", err)
	}
	if code, _ := body(t, h, url); code != 404 {
		t.Errorf("the expired recording's playlist: %d, want 404", code)
	}
	if st := r2.RecordingStats(); st.Deleted != 1 || st.Finished != 2 || st.DeletedBytes != uint64(len(want)) {
		t.Errorf("stats %+v", st)
	}
}

// TestRecordingContinuesAfterCrash: a process that stops without ending
// its stream leaves the recording open; the stream continued by the next
// process continues it, with a discontinuity, under the same id.
func TestRecordingContinuesAfterCrash(t *testing.T) {
	store, _ := recDirStore(t)
	clk := &fakeClock{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
	r := newRecRegistry(t, store, clk, true)
	s, err := r.Publish("live/crash")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Init([]byte("init")); err != nil {
		t.Fatal(err)
	}
	addSegments(t, s, clk, 3, 2*time.Second)
	// No Unpublish, no EndAll: the process is gone.
	r2 := newRecRegistry(t, store, clk, true)
	if err := r2.LoadRecordings(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, err := r2.Publish("live/crash")
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Init([]byte("init2")); err != nil {
		t.Fatal(err)
	}
	addSegments(t, s2, clk, 2, 2*time.Second)
	recs := r2.Recordings("")
	if len(recs) != 1 || recs[0].Segments != 5 || recs[0].State != "recording" || recs[0].Format != "fmp4" {
		t.Fatalf("recordings %+v; want one of 5 segments being made", recs)
	}
	b := playlistBody(t, r2.Handler(), "/live/crash/rec/"+recs[0].ID+"/index.m3u8")
	if n := bytes.Count(b, []byte("#EXT-X-DISCONTINUITY\n")); n != 1 || bytes.Count(b, []byte("#EXT-X-MAP:")) != 2 ||
		!bytes.Contains(b, []byte(`URI="../../init0.mp4"`)) || !bytes.Contains(b, []byte(`URI="../../init1.mp4"`)) {
		t.Errorf("continued recording: want one discontinuity and both inits\n%s", b)
	}
	s2.Unpublish()
	sweepFor(r2, clk, 31*time.Second)
	res := get(t, r2.Handler(), "GET", "/live/crash/rec/"+recs[0].ID+"/recording.mp4")
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !bytes.HasPrefix(got, []byte("initsegment bytes 0")) {
		t.Errorf("recording.mp4: %d, starts %q; want the first init, then the segments", res.StatusCode, got[:min(len(got), 20)])
	}
}

// failingStore fails the Puts of keys that fail says.
type failingStore struct {
	storage.Store
	mu   sync.Mutex
	fail func(key string) bool
}

func (f *failingStore) Put(ctx context.Context, key string, obj storage.Object) error {
	f.mu.Lock()
	fail := f.fail != nil && f.fail(key)
	f.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return f.Store.Put(ctx, key, obj)
}

// TestRecordingMissingSegments: a segment that could not be stored is
// left out of the recording, named as missing, with a discontinuity where
// it was; everything listed can be fetched.
func TestRecordingMissingSegments(t *testing.T) {
	inner, _ := recDirStore(t)
	store := &failingStore{Store: inner}
	clk := &fakeClock{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
	r := newRecRegistry(t, store, clk, false)
	s, err := r.Publish("live/full")
	if err != nil {
		t.Fatal(err)
	}
	addSegments(t, s, clk, 2, 2*time.Second)
	store.mu.Lock()
	store.fail = func(k string) bool { return strings.HasSuffix(k, "/seg2.ts") || strings.HasSuffix(k, "/seg3.ts") }
	store.mu.Unlock()
	addSegments(t, s, clk, 2, 2*time.Second)
	store.mu.Lock()
	store.fail = nil
	store.mu.Unlock()
	addSegments(t, s, clk, 2, 2*time.Second)
	recs := r.Recordings("live/full")
	if len(recs) != 1 || recs[0].Segments != 4 || strings.Join(recs[0].Missing, ",") != "seg2.ts,seg3.ts" || recs[0].Discontinuities != 1 {
		t.Fatalf("recordings %+v; want 4 segments, seg2 and seg3 missing, one discontinuity", recs)
	}
	b := playlistBody(t, r.Handler(), recs[0].Playlist)
	p := parseMedia(t, b)
	for i, seg := range p.Segments[:p.Count()] {
		if !seg.Discontinuity != (i != 2) {
			t.Errorf("segment %d (%s): discontinuity %v", i, seg.URI, seg.Discontinuity)
		}
		if _, err := inner.Get(context.Background(), "live/full/"+strings.TrimPrefix(seg.URI, "../../")); err != nil {
			t.Errorf("listed %s cannot be fetched: %v", seg.URI, err)
		}
	}
}

// TestRecordingRenditions: renditions record under one id, and the
// recording's multivariant playlist lists their recordings.
func TestRecordingRenditions(t *testing.T) {
	store, _ := recDirStore(t)
	clk := &fakeClock{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
	r := newRecRegistry(t, store, clk, false)
	h := r.Handler()
	const d = 2 * time.Second
	var ss []*Stream
	for _, name := range []string{"hi", "lo"} {
		s, err := r.PublishRendition("live/abr", name)
		if err != nil {
			t.Fatal(err)
		}
		s.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", AudioCodecs: "mp4a.40.2", Width: 1280, Height: 720, FrameRate: 30})
		ss = append(ss, s)
	}
	for i := range 3 {
		for j, s := range ss {
			addAt(t, s, clk, 10*time.Second+time.Duration(i)*d, d, 10000*(2-j))
		}
		clk.Add(d)
	}
	recs := r.Recordings("live/abr")
	if len(recs) != 1 || strings.Join(recs[0].Renditions, ",") != "hi,lo" || recs[0].Segments != 3 {
		t.Fatalf("recordings %+v; want one, of renditions hi and lo, 3 segments", recs)
	}
	code, b := body(t, h, recs[0].Playlist)
	if code != 200 {
		t.Fatal(code, b)
	}
	mp := parseMaster(t, b)
	var uris []string
	for _, v := range mp.Variants {
		uris = append(uris, v.URI)
	}
	want := "../../hi/rec/" + recs[0].ID + "/index.m3u8,../../lo/rec/" + recs[0].ID + "/index.m3u8"
	if strings.Join(uris, ",") != want || strings.Contains(b, "I-FRAME") {
		t.Errorf("multivariant recording lists %v, want %s and no I-frame playlists\n%s", uris, want, b)
	}
	for _, rend := range []string{"hi", "lo"} {
		p := parseMedia(t, playlistBody(t, h, "/live/abr/"+rend+"/rec/"+recs[0].ID+"/index.m3u8"))
		if p.Count() != 3 {
			t.Errorf("%s: %d segments recorded, want 3", rend, p.Count())
		}
	}
	res := get(t, h, "GET", "/live/abr/rec/"+recs[0].ID+"/recording.ts")
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || loc != "/live/abr/hi/rec/"+recs[0].ID+"/recording.ts" {
		t.Errorf("the group's download: %d to %q, want a redirect to its first rendition's", res.StatusCode, loc)
	}
}

// BenchmarkRecordSegment: what a segment costs a stream that has been
// live two hours (3,600 segments of 2 s), with and without a recording:
// the recording's playlist and recording.json are rendered and put on
// every segment, so they grow with it.
func BenchmarkRecordSegment(b *testing.B) {
	for _, record := range []bool{false, true} {
		b.Run(fmt.Sprintf("record=%v", record), func(b *testing.B) {
			clk := &fakeClock{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
			r := NewRegistry(Config{Store: durableStore(), TargetDuration: 2 * time.Second, WindowSize: 6, Record: record, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			s, err := r.Publish("live/long")
			if err != nil {
				b.Fatal(err)
			}
			data := bytes.Repeat([]byte{1}, 1000)
			seg := func() {
				if err := s.Segment(Segment{Data: data, Duration: 2 * time.Second, ProgramDateTime: clk.Now()}); err != nil {
					b.Fatal(err)
				}
				clk.Add(2 * time.Second)
				r.Sweep() // as Run does every second: memory of old segments goes
			}
			for range 3600 {
				seg()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				seg()
			}
		})
	}
}
