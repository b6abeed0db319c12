package playlist

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// A new name beyond MaxStreams is refused; a held name (idle, waiting for
// its publisher) may always be published again.
func TestMaxStreams(t *testing.T) {
	r := NewRegistry(Config{MaxStreams: 2})
	a, err := r.Publish("live/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Publish("live/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Publish("live/c"); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("third stream: %v, want ErrTooManyStreams", err)
	}
	a.Unpublish()
	if _, err := r.Publish("live/a"); err != nil {
		t.Fatalf("publishing a held name again: %v", err)
	}
	if _, err := r.Publish("live/d"); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("fourth stream: %v, want ErrTooManyStreams", err)
	}
	if st := r.Stats(); st.StreamsRefused != 2 || st.Streams[StateLive] != 2 {
		t.Errorf("stats %+v", st)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A panic while sweeping one stream is recovered, logged with the stream
// and the stack, and counted; the other streams are still swept.
func TestSweepPanicRecovered(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	logs := &syncBuf{}
	var ended []string
	r := NewRegistry(Config{
		ReconnectWindow: time.Second,
		Now:             func() time.Time { return now },
		Logger:          slog.New(slog.NewTextHandler(logs, nil)),
		OnStreamEnded: func(path string) {
			if path == "live/bad" {
				panic("test: a bug in a stream's timers")
			}
			ended = append(ended, path)
		},
	})
	for _, p := range []string{"live/bad", "live/good"} { // swept in this order
		s, err := r.Publish(p)
		if err != nil {
			t.Fatal(err)
		}
		s.Unpublish()
	}
	now = now.Add(2 * time.Second)
	r.Sweep()
	if len(ended) != 1 || ended[0] != "live/good" {
		t.Errorf("ended %q: the sweep stopped at the panic", ended)
	}
	if st := r.Stats(); st.Panics != 1 || st.Streams[StateEnded] != 2 {
		t.Errorf("stats %+v", st)
	}
	out := logs.String()
	for _, want := range []string{"panic while sweeping a stream", "stream=live/bad", "test: a bug in a stream's timers", "goroutine ", "limits_test.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q\n%s", want, out)
		}
	}
	// The registry is not left locked, and sweeps go on.
	now = now.Add(2 * time.Minute)
	r.Sweep()
	if n := len(r.Streams()); n != 0 {
		t.Errorf("%d streams left after their removal time", n)
	}
}
