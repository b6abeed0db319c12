package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fount-live/fount/ingest/ertmptest"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// call is one call a fake session saw.
type call struct {
	seq    int    // order across all the publish's sessions
	sess   string // "main", or the track: "video 1", "audio 0"
	method string // "Metadata", "VideoConfig", "AudioConfig", "Frame", "Close", "SplitTracks", "TrackSession"

	arg    string // TrackSession: the session asked for
	codecs string // configurations
	width  int
	rate   int
	kind   segmenter.Kind // frames
	dts    time.Duration
	pts    time.Duration
	key    bool
	data   []byte
}

// calls records the calls of one publish's sessions, in order, and gives
// the answers a test sets.
type calls struct {
	split bool // SplitTracks' answer

	mu        sync.Mutex
	all       []call
	trackErr  map[string]error // TrackSession's error, by session name
	configErr map[string]error // VideoConfig's and AudioConfig's error, by session name
	frameErr  map[string]error // Frame's error, by session name
}

func (c *calls) add(k call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k.seq = len(c.all)
	c.all = append(c.all, k)
}

// of returns the calls of session sess, in order.
func (c *calls) of(sess string) []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []call
	for _, k := range c.all {
		if k.sess == sess {
			out = append(out, k)
		}
	}
	return out
}

// count counts session sess's calls of method.
func (c *calls) count(sess, method string) int {
	n := 0
	for _, k := range c.of(sess) {
		if k.method == method {
			n++
		}
	}
	return n
}

func (c *calls) answer(m map[string]error, sess string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[sess]
}

// recSession is a Session that records its calls.
type recSession struct {
	c    *calls
	name string
}

func (s *recSession) Metadata(Metadata) { s.c.add(call{sess: s.name, method: "Metadata"}) }

func (s *recSession) VideoConfig(v *codec.Video) error {
	s.c.add(call{sess: s.name, method: "VideoConfig", codecs: v.Codecs, width: v.Width})
	return s.c.answer(s.c.configErr, s.name)
}

func (s *recSession) AudioConfig(a *codec.Audio) error {
	s.c.add(call{sess: s.name, method: "AudioConfig", codecs: a.Codecs, rate: a.SampleRate})
	return s.c.answer(s.c.configErr, s.name)
}

func (s *recSession) Frame(f segmenter.Frame) error {
	s.c.add(call{sess: s.name, method: "Frame", kind: f.Kind, dts: f.DTS, pts: f.PTS, key: f.Key, data: bytes.Clone(f.Data)})
	return s.c.answer(s.c.frameErr, s.name)
}

func (s *recSession) Close() { s.c.add(call{sess: s.name, method: "Close"}) }

// splitSession is a recSession that is a TrackSplitter too.
type splitSession struct{ *recSession }

func (s splitSession) SplitTracks() bool {
	s.c.add(call{sess: s.name, method: "SplitTracks"})
	return s.c.split
}

func (s splitSession) TrackSession(kind segmenter.Kind, id uint8) (Session, error) {
	name := fmt.Sprintf("%s %d", kindName(kind), id)
	s.c.add(call{sess: s.name, method: "TrackSession", arg: name})
	if err := s.c.answer(s.c.trackErr, name); err != nil {
		return nil, err
	}
	return &recSession{c: s.c, name: name}, nil
}

// recPublisher hands every publish a session recording into c: a
// TrackSplitter when splitter is set.
type recPublisher struct {
	c        *calls
	splitter bool
}

func (p recPublisher) Publish(context.Context, PublishRequest) (Session, error) {
	if p.splitter {
		return splitSession{&recSession{c: p.c, name: "main"}}, nil
	}
	return &recSession{c: p.c, name: "main"}, nil
}

// methods lists the methods of cs, frames merged into one "Frame×n".
func methods(cs []call) string {
	var out []string
	for _, k := range cs {
		if n := len(out); k.method == "Frame" && n > 0 && strings.HasPrefix(out[n-1], "Frame") {
			var c int
			fmt.Sscanf(out[n-1], "Frame×%d", &c)
			out[n-1] = fmt.Sprintf("Frame×%d", c+1)
			continue
		}
		if k.method == "Frame" {
			out = append(out, "Frame×1")
			continue
		}
		out = append(out, k.method)
	}
	return strings.Join(out, " ")
}

// framesOf returns the frames of kind that session sess got.
func framesOf(c *calls, sess string, kind segmenter.Kind) []call {
	var frames []call
	for _, k := range c.of(sess) {
		if k.method == "Frame" && k.kind == kind {
			frames = append(frames, k)
		}
	}
	return frames
}

// checkFrames compares frames, which session sess got, with the samples of
// tr as ertmptest sends them: whole-millisecond timestamps, data unchanged.
func checkFrames(t *testing.T, sess string, frames []call, tr ertmptest.Track) {
	t.Helper()
	if len(frames) != len(tr.Samples) {
		t.Errorf("%s: %d frames, want %d", sess, len(frames), len(tr.Samples))
		return
	}
	kind := segmenter.Video
	if tr.Kind == ertmptest.Audio {
		kind = segmenter.Audio
	}
	for i, f := range frames {
		s := tr.Samples[i]
		dts := s.DTS.Truncate(time.Millisecond)
		pts := (s.DTS + s.CTS).Truncate(time.Millisecond)
		if kind == segmenter.Audio {
			pts = dts
		}
		if f.kind != kind || f.dts != dts || f.pts != pts || f.key != (kind == segmenter.Video && s.Key) || !bytes.Equal(f.data, s.Data) {
			t.Errorf("%s frame %d: %v dts %v pts %v key %v %d bytes; want %v %v %v %v %d bytes (equal: %v)",
				sess, i, f.kind, f.dts, f.pts, f.key, len(f.data), kind, dts, pts, s.Key, len(s.Data), bytes.Equal(f.data, s.Data))
			return
		}
	}
}

// obsClips are the tracks of a multitrack publisher as OBS lays them out:
// video 0 H.264 with B-frames, 1 a smaller H.264, 2 VP9 (its vpcC has no
// picture size: the first keyframe completes it); audio 0 AAC at 48 kHz, 1
// AAC at 44.1 kHz.
func obsClips(t *testing.T) []ertmptest.Track {
	t.Helper()
	dir := t.TempDir()
	load := func(s ertmptest.ClipSpec, k ertmptest.Kind, id uint8) ertmptest.Track {
		s.Duration = time.Second
		tracks, err := ertmptest.LoadMP4(ertmptest.MakeClip(t, dir, s))
		if err != nil {
			t.Fatal(err)
		}
		tr, ok := ertmptest.Find(tracks, k)
		if !ok {
			t.Fatalf("no %s in %+v", k, s)
		}
		return tr.WithID(id)
	}
	return []ertmptest.Track{
		load(ertmptest.ClipSpec{Video: "avc1", Audio: "mp4a", BFrames: 2}, ertmptest.Video, 0),
		load(ertmptest.ClipSpec{Video: "avc1", Audio: "mp4a", BFrames: 2}, ertmptest.Audio, 0),
		load(ertmptest.ClipSpec{Video: "avc1", Width: 160, Height: 90, VideoKbps: 100, BFrames: 2}, ertmptest.Video, 1),
		load(ertmptest.ClipSpec{Video: "vp09", Width: 192, Height: 108, VideoKbps: 100}, ertmptest.Video, 2),
		load(ertmptest.ClipSpec{Audio: "mp4a", SampleRate: 44100, ToneHz: 880}, ertmptest.Audio, 1),
	}
}

// publishTracks sends tracks in layout to the server at addr, waits until
// the server has handed done's worth of frames on, lets check look at the
// live publisher, then hangs up and waits for the main session's Close.
func publishTracks(t *testing.T, addr string, c *calls, layout ertmptest.Layout, tracks []ertmptest.Track, done func() bool, check func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := ertmptest.Dial(ctx, "rtmp://"+addr+"/live/show")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Send(ctx, layout, tracks, ertmptest.Options{}); err != nil {
		t.Fatal(err)
	}
	await(t, "the frames to reach the sessions", done)
	check()
	if err := conn.Unpublish(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	await(t, "the publish to end", func() bool { return c.count("main", "Close") == 1 })
}

// TestSplitTracks: a publisher with 3 video and 2 audio tracks (OBS's
// multitrack layout, over a real RTMP connection) whose session is a
// TrackSplitter is split: each track has a session of its own, which gets
// its configuration and then its frames, of its kind only, in order; the
// main session gets only the metadata, and is closed after them. A session
// that is not a splitter, or says no, and a legacy publisher, get what they
// always got: track 0 of each kind.
func TestSplitTracks(t *testing.T) {
	tracks := obsClips(t)
	v0, a0, v1, v2, a1 := tracks[0], tracks[1], tracks[2], tracks[3], tracks[4]
	frames := func(c *calls, sess string, tr ertmptest.Track) func() bool {
		// At least: more would be wrong, and is reported below.
		return func() bool { return c.count(sess, "Frame") >= len(tr.Samples) }
	}
	// inPlaylist checks the live publisher's tracks: which feed a session.
	inPlaylist := func(t *testing.T, srv *Server, want map[string]bool) func() {
		return func() {
			p := srv.Stats().Publishers
			if len(p) != 1 {
				t.Fatalf("publishers %+v", p)
			}
			got := map[string]bool{}
			for _, tr := range p[0].Tracks {
				got[fmt.Sprintf("%s %d", tr.Kind, tr.ID)] = tr.InPlaylist
				if tr.Skipped != "" || tr.Frames == 0 {
					t.Errorf("track %+v", tr)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("tracks in the playlist %v, want %v", got, want)
			}
		}
	}

	t.Run("split", func(t *testing.T) {
		c := &calls{split: true}
		srv, addr, _ := startLimitServer(t, Config{}, recPublisher{c: c, splitter: true}, nil)
		all := map[string]bool{"video 0": true, "video 1": true, "video 2": true, "audio 0": true, "audio 1": true}
		publishTracks(t, addr, c, ertmptest.OBS, tracks, func() bool {
			return frames(c, "video 0", v0)() && frames(c, "video 1", v1)() && frames(c, "video 2", v2)() &&
				frames(c, "audio 0", a0)() && frames(c, "audio 1", a1)()
		}, inPlaylist(t, srv, all))

		main := c.of("main")
		var asked []string
		for _, k := range main {
			if k.method == "TrackSession" {
				asked = append(asked, k.arg)
			}
		}
		slices.Sort(asked)
		if want := []string{"audio 0", "audio 1", "video 0", "video 1", "video 2"}; !slices.Equal(asked, want) {
			t.Errorf("track sessions asked for %q, want %q", asked, want)
		}
		if m := methods(main); m != "Metadata SplitTracks"+strings.Repeat(" TrackSession", 5)+" Close" {
			t.Errorf("main session: %s", m)
		}
		mainClose := main[len(main)-1].seq
		for _, w := range []struct {
			sess   string
			tr     ertmptest.Track
			config string
			codecs string
			size   int // width or sample rate
		}{
			{"video 0", v0, "VideoConfig", "avc1.", 320}, // track 0's configuration kept until the split
			{"video 1", v1, "VideoConfig", "avc1.", 160},
			{"video 2", v2, "VideoConfig", "vp09.", 192}, // its size from the first keyframe
			{"audio 0", a0, "AudioConfig", "mp4a.40.2", 48000},
			{"audio 1", a1, "AudioConfig", "mp4a.40.2", 44100},
		} {
			cs := c.of(w.sess)
			want := fmt.Sprintf("%s Frame×%d Close", w.config, len(w.tr.Samples))
			if m := methods(cs); m != want {
				t.Errorf("%s: %s, want %s", w.sess, m, want)
				continue
			}
			if k := cs[0]; !strings.HasPrefix(k.codecs, w.codecs) || max(k.width, k.rate) != w.size {
				t.Errorf("%s: configuration %+v, want %s, %d", w.sess, k, w.codecs, w.size)
			}
			kind := segmenter.Video
			if w.tr.Kind == ertmptest.Audio {
				kind = segmenter.Audio
			}
			checkFrames(t, w.sess, framesOf(c, w.sess, kind), w.tr)
			if cs[len(cs)-1].seq > mainClose {
				t.Errorf("%s closed after the main session", w.sess)
			}
		}
	})

	// Today's behaviour: track 0 of each kind on the main session, in
	// order, configurations first; other tracks counted.
	single := func(t *testing.T, c *calls, splitter bool, layout ertmptest.Layout, tracks []ertmptest.Track, inPL map[string]bool) {
		srv, addr, _ := startLimitServer(t, Config{}, recPublisher{c: c, splitter: splitter}, nil)
		publishTracks(t, addr, c, layout, tracks, func() bool { return c.count("main", "Frame") >= len(v0.Samples)+len(a0.Samples) },
			inPlaylist(t, srv, inPL))
		asked := ""
		if c.count("main", "SplitTracks") > 0 {
			asked = " SplitTracks"
		}
		if m, want := methods(c.of("main")), fmt.Sprintf("Metadata%s VideoConfig AudioConfig Frame×%d Close", asked, len(v0.Samples)+len(a0.Samples)); m != want {
			t.Errorf("main session: %s, want %s", m, want)
		}
		for _, k := range c.of("main") {
			if k.method == "VideoConfig" && (k.width != 320 || !strings.HasPrefix(k.codecs, "avc1.")) || k.method == "AudioConfig" && k.rate != 48000 {
				t.Errorf("main session: configuration %+v", k)
			}
		}
		checkFrames(t, "main", framesOf(c, "main", segmenter.Video), v0)
		checkFrames(t, "main", framesOf(c, "main", segmenter.Audio), a0)
	}
	multi := map[string]bool{"video 0": true, "video 1": false, "video 2": false, "audio 0": true, "audio 1": false}
	t.Run("not a splitter", func(t *testing.T) {
		c := &calls{}
		single(t, c, false, ertmptest.OBS, tracks, multi)
	})
	t.Run("splitter says no", func(t *testing.T) {
		c := &calls{split: false}
		single(t, c, true, ertmptest.OBS, tracks, multi)
		if n := c.count("main", "SplitTracks"); n != 1 {
			t.Errorf("SplitTracks asked %d times", n)
		}
	})
	t.Run("legacy", func(t *testing.T) {
		// One track of each kind: nothing to split, and not asked.
		c := &calls{split: true}
		single(t, c, true, ertmptest.Legacy, []ertmptest.Track{v0, a0}, map[string]bool{"video 0": true, "audio 0": true})
		if n := c.count("main", "SplitTracks"); n != 0 {
			t.Errorf("SplitTracks asked %d times of a single-track publisher", n)
		}
	})
}

// obsParts are the pieces of OBS's layout built from main.flv (H.264 and
// AAC): sequence starts and frames of any track, legacy for track 0 and
// Multitrack OneTrack for the others, as in obsMessages.
type obsParts struct {
	avcC, asc []byte
	video     []flvTag // track 0's legacy frames
	audio     []flvTag
}

func readOBSParts(t testing.TB) obsParts {
	var p obsParts
	for _, tag := range readFLV(t, "../segmenter/testdata/main.flv") {
		switch {
		case tag.typ == 9 && tag.body[1] == avcSeqHeader:
			p.avcC = tag.body[5:]
		case tag.typ == 9 && tag.body[1] == avcNALU:
			p.video = append(p.video, tag)
		case tag.typ == 8 && tag.body[1] == 0:
			p.asc = tag.body[2:]
		case tag.typ == 8:
			p.audio = append(p.audio, tag)
		}
	}
	if p.avcC == nil || p.asc == nil || len(p.video) < 10 || len(p.audio) < 10 {
		t.Fatal("main.flv: missing sequence headers or frames")
	}
	return p
}

func (p obsParts) vSeq(track int, avcC []byte) flvTag {
	if track == 0 {
		return flvTag{typ: 9, body: cat(0x17, avcSeqHeader, 0, 0, 0, avcC)}
	}
	return flvTag{typ: 9, body: cat(exVideo(1, exVideoMultitrack), mtByte(mtOneTrack, exSeqStart), "avc1", track, avcC)}
}

func (p obsParts) aSeq(track int) flvTag {
	if track == 0 {
		return flvTag{typ: 8, body: cat(0xaf, 0, p.asc)}
	}
	return flvTag{typ: 8, body: cat(exAudio(exAudioMultitrack), mtByte(mtOneTrack, exAudioSeqStart), "mp4a", track, p.asc)}
}

// vFrame is track 0's i-th frame, carried on track.
func (p obsParts) vFrame(track, i int) flvTag {
	tag := p.video[i]
	if track == 0 {
		return tag
	}
	b := tag.body
	return flvTag{typ: 9, ts: tag.ts, body: cat(exVideo(int(b[0]>>4), exVideoMultitrack), mtByte(mtOneTrack, exCodedFrames), "avc1", track, b[2:5], b[5:])}
}

func (p obsParts) aFrame(track, i int) flvTag {
	tag := p.audio[i]
	if track == 0 {
		return tag
	}
	return flvTag{typ: 8, ts: tag.ts, body: cat(exAudio(exAudioMultitrack), mtByte(mtOneTrack, exAudioCodedFrames), "mp4a", track, tag.body[2:])}
}

// splitHandler is a publishing handler whose session records into c.
func splitHandler(c *calls, splitter bool) (*handler, *lockedBuffer) {
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	h := &handler{ctx: context.Background(), cfg: &Config{}, log: log, done: func() {}, server: &Server{}, stats: &publishStats{}, stream: "live/x"}
	sess, _ := recPublisher{c: c, splitter: splitter}.Publish(context.Background(), PublishRequest{})
	h.sess = sess
	return h, logs
}

// feed hands tags to h and returns the first error.
func feed(h *handler, tags ...flvTag) error {
	for _, tag := range tags {
		var err error
		if tag.typ == 9 {
			err = h.OnVideo(tag.ts, bytes.NewReader(tag.body))
		} else {
			err = h.OnAudio(tag.ts, bytes.NewReader(tag.body))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func statOf(h *handler, kind segmenter.Kind, id uint8) TrackStats {
	for _, t := range slices.Concat(h.videoTracks, h.audioTracks) {
		if t.kind == kind && t.id == id {
			return t.stat.snapshot()
		}
	}
	return TrackStats{}
}

// TestSplitTracksHandler: what happens around the split, at the handler:
// configurations kept until the first frame, tracks that start late, a
// track whose session cannot be had, refuses its codec or fails a frame, a
// configuration change, an unreadable configuration, the close order.
func TestSplitTracksHandler(t *testing.T) {
	p := readOBSParts(t)
	start := func(t *testing.T, c *calls) *handler {
		t.Helper()
		h, _ := splitHandler(c, true)
		if err := feed(h, p.vSeq(0, p.avcC), p.vSeq(1, p.avcC), p.aSeq(0), p.aSeq(1)); err != nil {
			t.Fatal(err)
		}
		if len(c.of("main")) != 0 {
			t.Fatalf("calls before the first frame: %s", methods(c.of("main")))
		}
		return h
	}

	t.Run("late tracks and a configuration change", func(t *testing.T) {
		c := &calls{split: true}
		h := start(t, c)
		if err := feed(h, p.vFrame(0, 0), p.vFrame(1, 0), p.aFrame(0, 0), p.aFrame(1, 0)); err != nil {
			t.Fatal(err)
		}
		// Video track 3 and audio track 2 start after the split.
		if err := feed(h, p.vSeq(3, p.avcC), p.vFrame(3, 1), p.aFrame(2, 1), p.vFrame(0, 1)); err != nil {
			t.Fatal(err)
		}
		// A new configuration on track 1, then its frames.
		if err := feed(h, p.vSeq(1, p.avcC), p.vFrame(1, 1)); err != nil {
			t.Fatal(err)
		}
		h.OnClose()
		for sess, want := range map[string]string{
			"video 0": "VideoConfig Frame×2 Close",
			"video 1": "VideoConfig Frame×1 VideoConfig Frame×1 Close",
			"video 3": "VideoConfig Frame×1 Close",
			"audio 0": "AudioConfig Frame×1 Close",
			"audio 1": "AudioConfig Frame×1 Close",
			// Frames before any sequence start: a session, and the frames
			// (what to make of them is the session's business, as on the
			// main session).
			"audio 2": "Frame×1 Close",
		} {
			if m := methods(c.of(sess)); m != want {
				t.Errorf("%s: %s, want %s", sess, m, want)
			}
		}
		if m := methods(c.of("main")); m != "SplitTracks TrackSession TrackSession TrackSession TrackSession TrackSession TrackSession Close" {
			t.Errorf("main: %s", m)
		}
		for _, id := range []uint8{0, 1, 3} {
			if st := statOf(h, segmenter.Video, id); !st.InPlaylist || st.Skipped != "" {
				t.Errorf("video %d: %+v", id, st)
			}
		}
	})

	t.Run("session errors", func(t *testing.T) {
		errNo := errors.New("test: no such rendition")
		c := &calls{split: true,
			trackErr:  map[string]error{"video 2": errNo},
			configErr: map[string]error{"audio 1": fmt.Errorf("test: %w", segmenter.ErrNotCarried)}}
		h := start(t, c)
		if err := feed(h, p.vSeq(2, p.avcC), p.vFrame(0, 0), p.vFrame(2, 0), p.aFrame(1, 0), p.aFrame(0, 0)); err != nil {
			t.Fatal(err)
		}
		if st := statOf(h, segmenter.Video, 2); !strings.Contains(st.Skipped, "no rendition session: test: no such rendition") || st.InPlaylist {
			t.Errorf("video 2: %+v", st)
		}
		if st := statOf(h, segmenter.Audio, 1); !strings.Contains(st.Skipped, segmenter.ErrNotCarried.Error()) || st.InPlaylist {
			t.Errorf("audio 1: %+v", st)
		}
		if m := methods(c.of("audio 1")); m != "AudioConfig" {
			t.Errorf("audio 1, its codec refused: %s", m)
		}
		if m := methods(c.of("video 2")); m != "" {
			t.Errorf("video 2, no session: %s", m)
		}
		if h.server.counters.tracksSkipped.Load() != 2 {
			t.Errorf("%d tracks skipped, want 2", h.server.counters.tracksSkipped.Load())
		}
		// A failing frame ends the publish, as on the main session.
		errFrame := errors.New("test: frame refused")
		c.mu.Lock()
		c.frameErr = map[string]error{"video 1": errFrame}
		c.mu.Unlock()
		if err := feed(h, p.vFrame(0, 1), p.vFrame(1, 1)); !errors.Is(err, errFrame) {
			t.Errorf("a track session's frame error: %v", err)
		}
		h.OnClose()
		if m := methods(c.of("video 1")); m != "VideoConfig Frame×1 Close" {
			t.Errorf("video 1: %s", m)
		}
	})

	t.Run("no session for a track 0", func(t *testing.T) {
		errNo := errors.New("test: no main rendition")
		c := &calls{split: true, trackErr: map[string]error{"audio 0": errNo}}
		h := start(t, c)
		if err := feed(h, p.vFrame(0, 0)); !errors.Is(err, errNo) || !strings.Contains(err.Error(), "audio track 0") {
			t.Fatalf("the publish goes on without audio track 0's session: %v", err)
		}
		// Closing (go-rtmp closes on the error) closes the sessions made.
		h.OnClose()
		if m := methods(c.of("video 0")); m != "VideoConfig Close" {
			t.Errorf("video 0: %s", m)
		}
		if n := c.count("main", "Close"); n != 1 {
			t.Errorf("main closed %d times", n)
		}
	})

	t.Run("unreadable configuration", func(t *testing.T) {
		// Track 1's record is broken before the split: skipped, and not a
		// rendition; the other video track alone is no reason to split.
		c := &calls{split: true}
		h, _ := splitHandler(c, true)
		if err := feed(h, p.vSeq(0, p.avcC), p.vSeq(1, p.avcC[:3]), p.aSeq(0), p.vFrame(0, 0), p.vFrame(1, 0)); err != nil {
			t.Fatal(err)
		}
		if st := statOf(h, segmenter.Video, 1); !strings.Contains(st.Skipped, "unreadable sequence header") {
			t.Errorf("video 1: %+v", st)
		}
		if m := methods(c.of("main")); m != "VideoConfig AudioConfig Frame×1" {
			t.Errorf("main: %s", m)
		}
	})

	t.Run("single: late tracks", func(t *testing.T) {
		// Audio starts after the first video frame and takes the main
		// session; a late video track 1 is counted only.
		c := &calls{}
		h, _ := splitHandler(c, false)
		if err := feed(h, p.vSeq(0, p.avcC), p.vFrame(0, 0), p.aSeq(0), p.aFrame(0, 0), p.vSeq(1, p.avcC), p.vFrame(1, 1), p.vFrame(0, 1)); err != nil {
			t.Fatal(err)
		}
		h.OnClose()
		if m := methods(c.of("main")); m != "VideoConfig Frame×1 AudioConfig Frame×2 Close" {
			t.Errorf("main: %s", m)
		}
		if st := statOf(h, segmenter.Video, 1); st.InPlaylist || st.Frames != 1 || st.Codecs == "" {
			t.Errorf("video 1: %+v", st)
		}
	})
}

// The per-frame path of a split publisher allocates nothing either.
func TestSplitTracksAllocs(t *testing.T) {
	p := readOBSParts(t)
	h, _ := splitHandler(&calls{}, false)
	// Sessions that keep nothing: recording calls would allocate.
	h.sess = nopSplitter{}
	if err := feed(h, p.vSeq(0, p.avcC), p.vSeq(1, p.avcC), p.vSeq(2, p.avcC), p.aSeq(0), p.aSeq(1)); err != nil {
		t.Fatal(err)
	}
	var tags []flvTag
	for i := range 10 {
		tags = append(tags, p.vFrame(0, i), p.vFrame(1, i), p.vFrame(2, i), p.aFrame(0, i), p.aFrame(1, i))
	}
	if err := feed(h, tags...); err != nil { // the split, buffers grown
		t.Fatal(err)
	}
	if h.shape != shapeSplit {
		t.Fatal("not split")
	}
	var r bytes.Reader
	allocs := testing.AllocsPerRun(20, func() {
		for _, tag := range tags {
			r.Reset(tag.body)
			var err error
			if tag.typ == 9 {
				err = h.OnVideo(tag.ts, &r)
			} else {
				err = h.OnAudio(tag.ts, &r)
			}
			if err != nil {
				panic(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per %d frames", allocs, len(tags))
	}
}

// nopSplitter splits into sessions that take everything and keep nothing.
type nopSplitter struct{ nopSession }

func (nopSplitter) SplitTracks() bool { return true }
func (nopSplitter) TrackSession(segmenter.Kind, uint8) (Session, error) {
	return nopSession{}, nil
}
