package playlist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/fount-live/fount/storage"
)

// With PartsFollow the segmenter hands over each part in the same bytes,
// overwritten once Part returns, and then only the segment's styp: the
// segment served (and stored) is the styp followed by the parts. Memory
// files, heap media and a store that is not in-process all get it right.
func TestSegmentFromItsParts(t *testing.T) {
	dir, err := storage.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		heap  bool
		store storage.Store
	}{
		{name: "memory files", store: storage.NewMemory()},
		{name: "heap media", heap: true, store: storage.NewMemory()},
		{name: "dir store", store: dir},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
			r := NewRegistry(Config{
				Store: tc.store, TargetDuration: 2 * time.Second, WindowSize: 6, HeapMedia: tc.heap,
				FMP4: true, PartTarget: 200 * time.Millisecond, BlockTimeout: 300 * time.Millisecond, Now: clk.Now,
			})
			s, _ := r.Publish("live/pf")
			s.Init([]byte("ftypmoov"))
			h := r.Handler()
			buf := make([]byte, 4000) // the segmenter's one part buffer
			for msn := range 3 {
				styp := []byte(fmt.Sprintf("styp of segment %d", msn))
				want := append([]byte{}, styp...)
				for i := range 5 {
					p := buf[:1000+10*i]
					for j := range p {
						p[j] = byte(msn*50 + i*7 + j)
					}
					want = append(want, p...)
					if err := s.Part(Part{Data: p, Duration: 200 * time.Millisecond, Independent: i == 0}); err != nil {
						t.Fatal(err)
					}
					clear(buf) // the next part is built here
				}
				if err := s.Segment(Segment{Data: styp, PartsFollow: true, Duration: time.Second, ProgramDateTime: clk.Now()}); err != nil {
					t.Fatal(err)
				}
				clear(styp)
				name := fmt.Sprintf("seg%d.m4s", msn)
				if code, hd, b := bodyOf(t, h, "/live/pf/"+name); code != 200 || !bytes.Equal(b, want) || hd.Get("Content-Length") != fmt.Sprint(len(want)) {
					t.Fatalf("%s: %d, %d bytes (Content-Length %s), want %d equal bytes", name, code, len(b), hd.Get("Content-Length"), len(want))
				}
				if code, _, b := bodyOf(t, h, fmt.Sprintf("/live/pf/seg%d.3.m4s", msn)); code != 200 || !bytes.Equal(b, want[len(want)-1040-1030:len(want)-1040]) {
					t.Fatalf("part 3 of %s: %d, %d bytes", name, code, len(b))
				}
				o := objectOf(t, s, name)
				inFile := !tc.heap && runtime.GOOS == "linux"
				if inFile != (o.file != nil) {
					t.Fatalf("%s: in a memory file %v, want %v", name, o.file != nil, inFile)
				}
				if inFile && o.file != objectOf(t, s, fmt.Sprintf("seg%d.0.m4s", msn)).file {
					t.Fatalf("%s is not in its parts' file", name)
				}
				if tc.store == dir {
					got, err := dir.Get(context.Background(), "live/pf/"+name)
					if err != nil || !bytes.Equal(got.Data, want) {
						t.Fatalf("stored %s: %v, %d bytes, want %d equal bytes", name, err, len(got.Data), len(want))
					}
				}
				clk.Add(time.Second)
			}
		})
	}
}

func objectOf(t *testing.T, s *Stream, name string) *object {
	t.Helper()
	v, ok := s.byName.Load(name)
	if !ok {
		t.Fatalf("%s is not served", name)
	}
	return v.(*object)
}

func bodyOf(t *testing.T, h http.Handler, path string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	resp := get(t, h, "GET", path, hdr...)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}
