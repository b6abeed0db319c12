package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fount-live/fount/ingest/ertmptest"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// mdSession is a Session that takes timed metadata, recording it.
type mdSession struct {
	mu     sync.Mutex
	events []TimedMetadata
	frames int
}

func (s *mdSession) Metadata(Metadata)              {}
func (s *mdSession) VideoConfig(*codec.Video) error { return nil }
func (s *mdSession) AudioConfig(*codec.Audio) error { return nil }
func (s *mdSession) Close()                         {}
func (s *mdSession) TimedMetadata(tm TimedMetadata) {
	s.mu.Lock()
	s.events = append(s.events, tm)
	s.mu.Unlock()
}
func (s *mdSession) Frame(segmenter.Frame) error { s.mu.Lock(); s.frames++; s.mu.Unlock(); return nil }
func (s *mdSession) snapshot() ([]TimedMetadata, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TimedMetadata(nil), s.events...), s.frames
}

type mdPublisher struct{ s *mdSession }

func (p mdPublisher) Publish(context.Context, PublishRequest) (Session, error) { return p.s, nil }

// TestTimedMetadataFromEncoder: over a real RTMP connection, onTextData
// and an onMetaData that changes after the first frame reach the session
// as TimedMetadata at their timestamps; the first onMetaData, a repeat of
// it, and an onMetaData before any frame do not.
func TestTimedMetadataFromEncoder(t *testing.T) {
	sess := &mdSession{}
	_, addr, _ := startLimitServer(t, Config{}, mdPublisher{sess}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := ertmptest.Dial(ctx, "rtmp://"+addr+"/live/show")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := readOBSParts(t)
	meta := ertmptest.ECMAArray{{Key: "width", Value: 640}, {Key: "title", Value: "first"}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(conn.WriteMetadata(meta))
	must(conn.WriteMetadata(meta)) // a repeat: nothing
	seq := p.vSeq(0, p.avcC)
	must(conn.WriteVideo(0, seq.body))
	for i := range 3 {
		tag := p.video[i]
		must(conn.WriteVideo(time.Duration(tag.ts)*time.Millisecond, tag.body))
	}
	textData, err := ertmptest.AMF0(nil, "onTextData", ertmptest.Object{{Key: "text", Value: "hello"}, {Key: "language", Value: "eng"}, {Key: "trackid", Value: 1}})
	must(err)
	must(conn.WriteData(80*time.Millisecond, textData))
	must(conn.WriteMetadata(ertmptest.ECMAArray{{Key: "width", Value: 640}, {Key: "title", Value: "second"}}))
	bad, err := ertmptest.AMF0(nil, "onTextData", "not an object")
	must(err)
	must(conn.WriteData(90*time.Millisecond, bad))
	await(t, "two events", func() bool { ev, _ := sess.snapshot(); return len(ev) >= 2 })
	ev, frames := sess.snapshot()
	if frames != 3 || len(ev) != 2 {
		t.Fatalf("%d frames, events %+v", frames, ev)
	}
	if e := ev[0]; e.Source != "onTextData" || e.Text != "hello" || !e.HasDTS || e.DTS != 80*time.Millisecond ||
		fmt.Sprint(e.Values) != "[{language eng} {trackid 1}]" {
		t.Errorf("onTextData event %+v", e)
	}
	// WriteMetadata sends at timestamp 0: near the frames, so timed.
	if e := ev[1]; e.Source != "onMetaData" || e.Text != "" || !e.HasDTS || e.DTS != 0 ||
		fmt.Sprint(e.Values) != "[{width 640} {title second}]" {
		t.Errorf("onMetaData update event %+v", e)
	}
}

func TestParseDataObject(t *testing.T) {
	b, err := ertmptest.AMF0(nil, ertmptest.ECMAArray{
		{Key: "text", Value: "now playing"}, {Key: "n", Value: 1.5}, {Key: "live", Value: true},
		{Key: "nested", Value: ertmptest.Object{{Key: "x", Value: 1}}}, {Key: "nothing", Value: nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	text, values, err := parseDataObject(b)
	if err != nil || text != "now playing" || fmt.Sprint(values) != "[{n 1.5} {live true}]" {
		t.Errorf("parseDataObject = %q %v %v", text, values, err)
	}
	for _, bad := range [][]byte{nil, {0x02, 0, 1, 'x'}, b[:len(b)-2], {0x03, 0, 4, 't', 'e', 'x', 't', 0x02, 0xff, 0xff}} {
		if _, _, err := parseDataObject(bad); err == nil {
			t.Errorf("parseDataObject(% x) took it", bad)
		}
	}
	if _, _, err := parseDataObject([]byte{0x05}); !errors.Is(err, errDataNotObject) {
		t.Errorf("null: %v", err)
	}
}

// FuzzParseDataObject: any body is an error or a bounded result, never a
// panic.
func FuzzParseDataObject(f *testing.F) {
	for _, v := range []any{
		ertmptest.Object{{Key: "text", Value: "hi"}, {Key: "language", Value: "eng"}},
		ertmptest.ECMAArray{{Key: "title", Value: "x"}, {Key: "n", Value: 3}},
		"not an object",
	} {
		b, err := ertmptest.AMF0(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		text, values, err := parseDataObject(b)
		if err != nil {
			return
		}
		if len(values) > maxDataValues || len(text) > maxDataValueLen {
			t.Fatalf("%d values, text of %d bytes", len(values), len(text))
		}
		for _, kv := range values {
			if len(kv.Key) > maxDataValueLen || len(kv.Value) > maxDataValueLen {
				t.Fatalf("value %q of %d bytes", kv.Key, len(kv.Value))
			}
		}
	})
}
