package storage

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// AsyncConfig tunes an Async store. Zero values take the defaults.
type AsyncConfig struct {
	// QueueSize bounds the operations waiting per stream (the key's first
	// two path elements, "app/name"). Default 256.
	QueueSize int
	// MinBackoff and MaxBackoff bound the wait between retries of a failed
	// operation: it starts at MinBackoff and doubles up to MaxBackoff.
	// Defaults 100ms and 5s. Failed operations are retried until Run's
	// context is done.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one call to the inner store. Default 30s.
	AttemptTimeout time.Duration
	// Logger receives failures and recoveries. Default slog.Default().
	Logger *slog.Logger
}

// AsyncStats is a snapshot of an Async store's counters.
type AsyncStats struct {
	Pending    int    // operations queued or in flight
	Uploaded   uint64 // Puts that reached the inner store
	Deleted    uint64 // Deletes that reached the inner store
	Failed     uint64 // operations given up: rejected on a full queue
	Retries    uint64 // attempts that failed and were retried
	Dropped    uint64 // pending Deletes dropped to make room in a full queue
	Superseded uint64 // pending operations replaced by a later one on the same key
}

// Async wraps a Store so that Put and Delete never wait for it: they are
// queued and return nil at once, and workers started by Run apply them to
// the inner store in order, retrying failures with backoff.
//
// Guarantees:
//   - Per stream (first two key elements) operations reach the inner store
//     in the order they were made, one at a time; so a Delete after a Put of
//     the same key never runs before it, and a playlist written after the
//     segments it names is uploaded after them.
//   - A queued operation that is not yet in flight is replaced by a later
//     operation on the same key (the last one decides the final state), so
//     playlists rewritten while the inner store is slow do not pile up.
//   - Get and Keys see pending operations: a pending Put is served from
//     memory, a pending Delete hides the key.
//
// Put and Delete return an error only for an invalid key. Delete returns
// nil for a key that does not exist, as the outcome is not known yet.
// Object.Data is kept, not copied, until uploaded (see Object).
type Async struct {
	inner Store
	cfg   AsyncConfig
	log   *slog.Logger

	mu      sync.Mutex
	streams map[string]*asyncStream
	latest  map[string]*asyncOp // newest queued or in-flight op per key
	pending int
	stats   AsyncStats
	runCtx  context.Context // set by Run; nil before
	wg      sync.WaitGroup
	idle    chan struct{} // closed and replaced whenever pending drops to 0
}

type asyncOp struct {
	key      string
	del      bool
	obj      Object
	inFlight bool
}

type asyncStream struct {
	name    string
	ops     []*asyncOp // FIFO; ops[0] may be in flight
	running bool       // a worker goroutine owns this stream
}

// NewAsync wraps inner. Nothing is written until Run is called.
func NewAsync(inner Store, cfg AsyncConfig) *Async {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Async{
		inner:   inner,
		cfg:     cfg,
		log:     log.With("component", "storage-async"),
		streams: make(map[string]*asyncStream),
		latest:  make(map[string]*asyncOp),
		idle:    make(chan struct{}),
	}
}

// streamOf returns the queue a key belongs to: its stream's APP/NAME (a
// rendition's objects share their parent's queue), or the key itself for
// an object of no stream.
func streamOf(key string) string {
	// APP/NAME/FILE, APP/NAME/RENDITION/FILE, and a recording's
	// APP/NAME[/RENDITION]/rec/ID/FILE alike: the first two elements.
	if strings.Count(key, "/") >= 2 {
		return TopStream(key)
	}
	return key
}

// Put queues obj for upload and returns at once.
func (a *Async) Put(_ context.Context, key string, obj Object) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if obj.ModTime.IsZero() {
		obj.ModTime = time.Now()
	}
	a.enqueue(&asyncOp{key: key, obj: obj})
	return nil
}

// Delete queues the removal of key and returns nil at once.
func (a *Async) Delete(_ context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	a.enqueue(&asyncOp{key: key, del: true})
	return nil
}

func (a *Async) enqueue(op *asyncOp) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := streamOf(op.key)
	st := a.streams[name]
	if st == nil {
		st = &asyncStream{name: name}
		a.streams[name] = st
	}
	// The newest op decides a key's final state, so a queued (not in
	// flight) op on the same key can go: the new one is appended after
	// everything queued before it, which keeps the order guarantee.
	if prev := a.latest[op.key]; prev != nil && !prev.inFlight {
		st.remove(prev)
		a.pending--
		a.stats.Superseded++
	} else if len(st.ops) >= a.cfg.QueueSize {
		if d := st.oldestDelete(); d != nil {
			st.remove(d)
			a.pending--
			if a.latest[d.key] == d {
				delete(a.latest, d.key)
			}
			a.stats.Dropped++
			a.log.Warn("storage queue full: dropped a pending delete", "stream", name, "key", d.key, "queue", a.cfg.QueueSize)
		} else {
			a.stats.Failed++
			a.log.Error("storage queue full: write lost", "stream", name, "key", op.key, "delete", op.del, "queue", a.cfg.QueueSize)
			if len(st.ops) == 0 {
				delete(a.streams, name)
			}
			return
		}
	}
	st.ops = append(st.ops, op)
	a.latest[op.key] = op
	a.pending++
	a.startLocked(st)
}

func (st *asyncStream) remove(op *asyncOp) {
	for i, o := range st.ops {
		if o == op {
			st.ops = append(st.ops[:i], st.ops[i+1:]...)
			return
		}
	}
}

func (st *asyncStream) oldestDelete() *asyncOp {
	for _, o := range st.ops {
		if o.del && !o.inFlight {
			return o
		}
	}
	return nil
}

// startLocked starts the stream's worker if Run is active and none runs.
func (a *Async) startLocked(st *asyncStream) {
	if st.running || a.runCtx == nil || a.runCtx.Err() != nil || len(st.ops) == 0 {
		return
	}
	st.running = true
	a.wg.Add(1)
	go a.work(a.runCtx, st)
}

// Run starts the workers and blocks until ctx is done and every worker has
// returned. Operations still queued then stay queued (see Stats); call
// Flush before cancelling ctx to write them out. Run must be called once.
func (a *Async) Run(ctx context.Context) {
	a.mu.Lock()
	if a.runCtx != nil {
		a.mu.Unlock()
		panic("storage: Async.Run called twice")
	}
	a.runCtx = ctx
	for _, st := range a.streams {
		a.startLocked(st)
	}
	a.mu.Unlock()
	<-ctx.Done()
	a.wg.Wait()
}

// Flush waits until nothing is pending or ctx is done. It needs Run to be
// running to make progress.
func (a *Async) Flush(ctx context.Context) error {
	for {
		a.mu.Lock()
		n, idle := a.pending, a.idle
		a.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// work applies st's operations one at a time until the queue is empty or
// ctx is done.
func (a *Async) work(ctx context.Context, st *asyncStream) {
	defer a.wg.Done()
	for {
		a.mu.Lock()
		if len(st.ops) == 0 || ctx.Err() != nil {
			st.running = false
			if len(st.ops) == 0 && a.streams[st.name] == st {
				delete(a.streams, st.name)
			}
			a.mu.Unlock()
			return
		}
		op := st.ops[0]
		op.inFlight = true
		a.mu.Unlock()

		if !a.apply(ctx, op) {
			// ctx done: leave op queued, visible to Get, for a later Run.
			a.mu.Lock()
			op.inFlight = false
			st.running = false
			a.mu.Unlock()
			return
		}

		a.mu.Lock()
		st.ops = st.ops[1:]
		if a.latest[op.key] == op {
			delete(a.latest, op.key)
		}
		a.pending--
		if op.del {
			a.stats.Deleted++
		} else {
			a.stats.Uploaded++
		}
		if a.pending == 0 {
			close(a.idle)
			a.idle = make(chan struct{})
		}
		a.mu.Unlock()
	}
}

// apply runs op against the inner store until it succeeds (true) or ctx is
// done (false).
func (a *Async) apply(ctx context.Context, op *asyncOp) bool {
	backoff := a.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, a.cfg.AttemptTimeout)
		var err error
		if op.del {
			err = a.inner.Delete(actx, op.key)
			if errors.Is(err, ErrNotFound) {
				err = nil
			}
		} else {
			err = a.inner.Put(actx, op.key, op.obj)
		}
		cancel()
		if err == nil {
			if attempt > 1 {
				a.log.Info("storage write succeeded after retries", "key", op.key, "delete", op.del, "attempts", attempt)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		a.mu.Lock()
		a.stats.Retries++
		a.mu.Unlock()
		// Log the first failure, then at doubling intervals, so that an
		// outage of minutes does not flood the log.
		if attempt&(attempt-1) == 0 {
			a.log.Warn("storage write failed, retrying", "key", op.key, "delete", op.del, "attempt", attempt, "backoff", backoff, "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, a.cfg.MaxBackoff)
	}
}

// Get serves a pending Put from memory, reports a pending Delete as
// ErrNotFound, and asks the inner store otherwise.
func (a *Async) Get(ctx context.Context, key string) (Object, error) {
	if err := ValidKey(key); err != nil {
		return Object{}, err
	}
	a.mu.Lock()
	op := a.latest[key]
	a.mu.Unlock()
	if op != nil {
		if op.del {
			return Object{}, ErrNotFound
		}
		return op.obj, nil
	}
	return a.inner.Get(ctx, key)
}

// Keys lists the inner store's keys below prefix as they will be once the
// pending operations are applied.
func (a *Async) Keys(ctx context.Context, prefix string) ([]string, error) {
	keys, err := a.inner.Keys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(keys))
	for _, k := range keys {
		set[k] = true
	}
	a.mu.Lock()
	for k, op := range a.latest {
		if strings.HasPrefix(k, prefix) {
			set[k] = !op.del
		}
	}
	a.mu.Unlock()
	out := keys[:0]
	for k, ok := range set {
		if ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Stats returns a snapshot of the counters.
func (a *Async) Stats() AsyncStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Pending = a.pending
	return s
}

var _ Store = (*Async)(nil)
