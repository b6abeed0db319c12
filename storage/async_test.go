package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeStore is a Memory that records the operations that reached it, can
// fail on demand, and can hold operations until released.
type fakeStore struct {
	*Memory
	mu      sync.Mutex
	log     []string // "put key" / "del key", in the order they succeeded
	failing bool
	gate    chan struct{} // when non-nil, Put and Delete wait for it
	started chan string   // when non-nil, receives each key as its op starts
}

func newFake() *fakeStore { return &fakeStore{Memory: NewMemory()} }

func (f *fakeStore) op(ctx context.Context, kind, key string, do func() error) error {
	f.mu.Lock()
	gate, started, failing := f.gate, f.started, f.failing
	f.mu.Unlock()
	if started != nil {
		started <- key
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if failing {
		return errors.New("fake outage")
	}
	if err := do(); err != nil {
		return err
	}
	f.mu.Lock()
	f.log = append(f.log, kind+" "+key)
	f.mu.Unlock()
	return nil
}

func (f *fakeStore) Put(ctx context.Context, key string, obj Object) error {
	return f.op(ctx, "put", key, func() error { return f.Memory.Put(ctx, key, obj) })
}

func (f *fakeStore) Delete(ctx context.Context, key string) error {
	return f.op(ctx, "del", key, func() error { return f.Memory.Delete(ctx, key) })
}

func (f *fakeStore) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runAsync runs a in the background and, at cleanup, cancels it and checks
// that Run returns.
func runAsync(t *testing.T, a *Async) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	return stop
}

// await polls cond until it holds or the deadline passes.
func await(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func flush(t *testing.T, a *Async, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (stats %+v)", err, a.Stats())
	}
}

func TestAsyncPendingGetAndOrder(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	f.gate = make(chan struct{})
	f.started = make(chan string, 16)
	a := NewAsync(f, AsyncConfig{Logger: testLogger(t)})
	runAsync(t, a)

	if err := a.Put(ctx, "live/s/seg1.ts", Object{Data: []byte("one"), ContentType: "video/mp2t"}); err != nil {
		t.Fatal(err)
	}
	if k := <-f.started; k != "live/s/seg1.ts" {
		t.Fatalf("first op on %s", k)
	}
	// seg1 is in flight and held: it is served from memory meanwhile.
	obj, err := a.Get(ctx, "live/s/seg1.ts")
	if err != nil || string(obj.Data) != "one" || obj.ContentType != "video/mp2t" || obj.ModTime.IsZero() {
		t.Fatalf("pending get: %q %q %v", obj.Data, obj.ContentType, err)
	}
	if _, err := f.Memory.Get(ctx, "live/s/seg1.ts"); !errors.Is(err, ErrNotFound) {
		t.Fatal("inner store has seg1 before the upload finished")
	}
	// A Delete behind the in-flight Put of the same key waits for it, and
	// already hides the key.
	a.Delete(ctx, "live/s/seg1.ts")
	if _, err := a.Get(ctx, "live/s/seg1.ts"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after pending delete: %v", err)
	}
	// Queued playlist versions replace each other; the last one wins.
	a.Put(ctx, "live/s/seg2.ts", Object{Data: []byte("two")})
	for i := range 5 {
		a.Put(ctx, "live/s/index.m3u8", Object{Data: []byte(fmt.Sprint("v", i))})
	}
	if keys, _ := a.Keys(ctx, "live/s/"); strings.Join(keys, ",") != "live/s/index.m3u8,live/s/seg2.ts" {
		t.Fatalf("keys with pending ops: %v", keys)
	}
	if st := a.Stats(); st.Pending != 4 || st.Superseded != 4 {
		t.Fatalf("stats %+v", st)
	}
	f.mu.Lock()
	gate := f.gate
	f.gate, f.started = nil, nil
	f.mu.Unlock()
	close(gate)
	flush(t, a, 10*time.Second)

	want := []string{"put live/s/seg1.ts", "del live/s/seg1.ts", "put live/s/seg2.ts", "put live/s/index.m3u8"}
	if got := f.ops(); !slices.Equal(got, want) {
		t.Fatalf("inner saw %v, want %v", got, want)
	}
	if obj, _ := f.Memory.Get(ctx, "live/s/index.m3u8"); string(obj.Data) != "v4" {
		t.Fatalf("playlist %q", obj.Data)
	}
	if st := a.Stats(); st.Pending != 0 || st.Uploaded != 3 || st.Deleted != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAsyncQueueFull(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	a := NewAsync(f, AsyncConfig{QueueSize: 4, Logger: testLogger(t)})
	// Not running yet: everything queues.
	a.Put(ctx, "live/x/a.ts", Object{Data: []byte("a")})
	a.Delete(ctx, "live/x/old1.ts")
	a.Put(ctx, "live/x/b.ts", Object{Data: []byte("b")})
	a.Delete(ctx, "live/x/old2.ts")
	// Full: the oldest pending Delete makes room, then the next.
	a.Put(ctx, "live/x/c.ts", Object{Data: []byte("c")})
	a.Put(ctx, "live/x/d.ts", Object{Data: []byte("d")})
	if st := a.Stats(); st.Dropped != 2 || st.Failed != 0 || st.Pending != 4 {
		t.Fatalf("stats %+v", st)
	}
	// No Delete left: the new Put is lost, and counted.
	if err := a.Put(ctx, "live/x/e.ts", Object{Data: []byte("e")}); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Failed != 1 || st.Pending != 4 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := a.Get(ctx, "live/x/e.ts"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lost put is visible: %v", err)
	}
	// A newer version of a queued key still fits, and other streams have
	// their own queue.
	a.Put(ctx, "live/x/d.ts", Object{Data: []byte("d2")})
	a.Put(ctx, "live/y/a.ts", Object{Data: []byte("ya")})
	if st := a.Stats(); st.Failed != 1 || st.Pending != 5 || st.Superseded != 1 {
		t.Fatalf("stats %+v", st)
	}
	runAsync(t, a)
	flush(t, a, 10*time.Second)
	keys, _ := f.Memory.Keys(ctx, "")
	if strings.Join(keys, ",") != "live/x/a.ts,live/x/b.ts,live/x/c.ts,live/x/d.ts,live/y/a.ts" {
		t.Fatalf("inner keys %v", keys)
	}
	if obj, _ := f.Memory.Get(ctx, "live/x/d.ts"); string(obj.Data) != "d2" {
		t.Fatalf("d.ts %q", obj.Data)
	}
}

func TestAsyncRetriesUntilCancelled(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	f.failing = true
	a := NewAsync(f, AsyncConfig{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Logger: testLogger(t)})
	before := runtime.NumGoroutine()
	stop := runAsync(t, a)
	for i := range 3 {
		if err := a.Put(ctx, fmt.Sprintf("live/s%d/seg.ts", i), Object{Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	await(t, 10*time.Second, "retries", func() bool { return a.Stats().Retries >= 10 })
	stop()
	// Every worker has ended; the writes are still pending and readable.
	await(t, 10*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if st := a.Stats(); st.Pending != 3 || st.Uploaded != 0 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if obj, err := a.Get(ctx, "live/s1/seg.ts"); err != nil || string(obj.Data) != "x" {
		t.Fatalf("pending get after stop: %q %v", obj.Data, err)
	}
	// Invalid keys are refused synchronously.
	if err := a.Put(ctx, "../x", Object{}); err == nil {
		t.Error("bad key put accepted")
	}
	if err := a.Delete(ctx, "a//b"); err == nil {
		t.Error("bad key delete accepted")
	}
	if _, err := a.Get(ctx, "/x"); err == nil {
		t.Error("bad key get accepted")
	}
}

func TestStreamOf(t *testing.T) {
	for key, want := range map[string]string{
		"live/show/seg1.ts": "live/show",
		"live/show/a/b.ts":  "live/show",
		"live/index.m3u8":   "live/index.m3u8",
		"top.m3u8":          "top.m3u8",
	} {
		if got := streamOf(key); got != want {
			t.Errorf("streamOf(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestAsyncS3Outage kills the S3 server under a running Async store and
// restarts it: writes keep returning at once, are served from memory
// meanwhile, and all reach the bucket in order once the server is back.
func TestAsyncS3Outage(t *testing.T) {
	srv := startS3Server(t)
	srv.createBucket(t, testBucket)
	ctx := context.Background()
	s := newTestS3(t, srv, "o")
	rec := &recordingStore{Store: s}
	a := NewAsync(rec, AsyncConfig{QueueSize: 64, MaxBackoff: 500 * time.Millisecond, AttemptTimeout: 5 * time.Second, Logger: testLogger(t)})
	runAsync(t, a)

	a.Put(ctx, "live/a/gone.ts", Object{Data: []byte("old")})
	flush(t, a, 20*time.Second)

	srv.stop()
	start := time.Now()
	const n = 10
	for i := range n {
		key := fmt.Sprintf("live/a/seg%d.ts", i)
		if err := a.Put(ctx, key, Object{Data: []byte(key), ContentType: "video/mp2t"}); err != nil {
			t.Fatal(err)
		}
		if err := a.Put(ctx, "live/a/index.m3u8", Object{Data: []byte(fmt.Sprint("#EXTM3U\n#", i))}); err != nil {
			t.Fatal(err)
		}
		if err := a.Put(ctx, fmt.Sprintf("live/b/seg%d.ts", i), Object{Data: []byte("b")}); err != nil {
			t.Fatal(err)
		}
	}
	// Put then Delete of one key: the key must end up absent.
	a.Put(ctx, "live/a/gone.ts", Object{Data: []byte("new")})
	a.Delete(ctx, "live/a/gone.ts")
	if d := time.Since(start); d > time.Second {
		t.Errorf("writes blocked for %v with the server down", d)
	}
	if obj, err := a.Get(ctx, "live/a/seg3.ts"); err != nil || string(obj.Data) != "live/a/seg3.ts" {
		t.Fatalf("pending get during outage: %q %v", obj.Data, err)
	}
	if _, err := a.Get(ctx, "live/a/gone.ts"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pending delete during outage: %v", err)
	}
	await(t, 30*time.Second, "retries during the outage", func() bool { return a.Stats().Retries >= 2 })
	if st := a.Stats(); st.Pending < n {
		t.Fatalf("stats during outage %+v", st)
	}

	srv.start()
	flush(t, a, 60*time.Second)
	st := a.Stats()
	t.Logf("stats after recovery %+v", st)
	if st.Pending != 0 || st.Failed != 0 || st.Retries < 2 {
		t.Fatalf("stats after recovery %+v", st)
	}
	for i := range n {
		key := fmt.Sprintf("live/a/seg%d.ts", i)
		obj, err := s.Get(ctx, key)
		if err != nil || string(obj.Data) != key || obj.ContentType != "video/mp2t" {
			t.Fatalf("%s in bucket: %q %q %v", key, obj.Data, obj.ContentType, err)
		}
	}
	if obj, err := s.Get(ctx, "live/a/index.m3u8"); err != nil || string(obj.Data) != fmt.Sprint("#EXTM3U\n#", n-1) {
		t.Fatalf("playlist in bucket: %q %v", obj.Data, err)
	}
	if _, err := s.Get(ctx, "live/a/gone.ts"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key in bucket: %v", err)
	}
	if keys, err := s.Keys(ctx, "live/b/"); err != nil || len(keys) != n {
		t.Fatalf("stream b keys %v %v", keys, err)
	}
	// Per stream, writes reached S3 in the order they were made: every
	// segment before the final playlist, and the Delete last.
	var order []string
	for _, o := range rec.ops() {
		if strings.Contains(o, "live/a/") {
			order = append(order, o)
		}
	}
	last := len(order) - 1
	if last < 1 || order[last] != "del live/a/gone.ts" || order[last-1] != "put live/a/index.m3u8" {
		t.Fatalf("order %v", order)
	}
	for i := range n {
		if j := slices.Index(order, fmt.Sprintf("put live/a/seg%d.ts", i)); j < 0 || (i > 0 && j < slices.Index(order, fmt.Sprintf("put live/a/seg%d.ts", i-1))) {
			t.Fatalf("order %v", order)
		}
	}
}

// recordingStore records the operations that succeeded on the inner store.
type recordingStore struct {
	Store
	mu  sync.Mutex
	log []string
}

func (r *recordingStore) Put(ctx context.Context, key string, obj Object) error {
	err := r.Store.Put(ctx, key, obj)
	if err == nil {
		r.mu.Lock()
		r.log = append(r.log, "put "+key)
		r.mu.Unlock()
	}
	return err
}

func (r *recordingStore) Delete(ctx context.Context, key string) error {
	err := r.Store.Delete(ctx, key)
	if err == nil || errors.Is(err, ErrNotFound) {
		r.mu.Lock()
		r.log = append(r.log, "del "+key)
		r.mu.Unlock()
	}
	return err
}

func (r *recordingStore) ops() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}
