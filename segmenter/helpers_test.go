package segmenter

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astits"

	"github.com/fount-live/fount/ingest/flv"
)

// Real configs produced by ffmpeg/libx264/aac (see testdata/README).
var (
	// 640x360 High@3.0, VUI timing 30 fps (testsrc, -profile:v high).
	avcCHigh = mustHex("0164001effe1001a6764001eacd940a02ff970110000030001000003003c0f162d9601000468efbcb0fdf8f800")
	// 320x240 Constrained Baseline@1.3, 25 fps.
	avcCBase = mustHex("0142c00dffe100186742c00dd90141fb011000000300100000030320f142a48001000568cb83cb20")
	// 176x144 High 4:2:2@1.1 with scaling matrices (x264 cqm=jvt), 25 fps.
	avcCHi422     = mustHex("017a000bffe10018677a000bbcd942c4ec0440000003004000000c83c50a658001000768ebe3cb3002c0fef8f800")
	ascLC44Stereo = mustHex("121056e500") // AAC-LC 44.1 kHz stereo
	ascLC48Mono   = mustHex("118856e500") // AAC-LC 48 kHz mono
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// flvStream is the content of an FLV file as segmenter input.
type flvStream struct {
	videoConfig, audioConfig []byte
	frames                   []Frame
}

// readFLV reads an FLV file's H.264 and AAC tags as segmenter input.
func readFLV(t testing.TB, path string) flvStream {
	t.Helper()
	tags, err := flv.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st flvStream
	for _, g := range tags {
		body := g.Data
		dts := time.Duration(g.Timestamp) * time.Millisecond
		switch {
		case g.Type == flv.TagVideo && len(body) >= 5 && body[0]&0x0f == 7:
			cts := int32(uint32(body[2])<<16|uint32(body[3])<<8|uint32(body[4])) << 8 >> 8
			if body[1] == 0 {
				st.videoConfig = bytes.Clone(body[5:])
			} else if body[1] == 1 {
				st.frames = append(st.frames, Frame{Kind: Video, DTS: dts,
					PTS: dts + time.Duration(cts)*time.Millisecond, Key: body[0]>>4 == 1, Data: bytes.Clone(body[5:])})
			}
		case g.Type == flv.TagAudio && len(body) >= 2 && body[0]>>4 == 10:
			if body[1] == 0 {
				st.audioConfig = bytes.Clone(body[2:])
			} else {
				st.frames = append(st.frames, Frame{Kind: Audio, DTS: dts, PTS: dts, Data: bytes.Clone(body[2:])})
			}
		}
	}
	return st
}

// collect is a Sink that keeps everything it is handed, and the order of
// the calls ("init", "part", "segment").
type collect struct {
	mu    sync.Mutex
	segs  []Segment
	parts []Part
	inits []Init
	calls []string
	err   error
	// onPart, if set, is called for every part (under no lock).
	onPart func(Part)
}

func (c *collect) Init(in Init) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inits = append(c.inits, in)
	c.calls = append(c.calls, "init")
	return nil
}

func (c *collect) Part(p Part) error {
	if c.onPart != nil {
		c.onPart(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts = append(c.parts, p)
	c.calls = append(c.calls, "part")
	return nil
}

func (c *collect) Segment(s Segment) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.segs = append(c.segs, s)
	c.calls = append(c.calls, "segment")
	return c.err
}

// logRecorder is a slog.Handler that keeps messages.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// fakeClock advances one second per call.
func fakeClock() func() time.Time {
	t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

// tsPES is one demuxed PES.
type tsPES struct {
	pid      uint16
	pts, dts int64 // 90 kHz; dts == -1 if absent
	rai      bool
	pcr      bool
	data     []byte
}

type tsInfo struct {
	pids []uint16 // PID of every packet, in order
	pes  []tsPES
	pmt  *astits.PMTData
	ccs  map[uint16][]uint8
}

// demuxTS reads a segment back with astits, failing the test on any error.
func demuxTS(t testing.TB, b []byte) tsInfo {
	t.Helper()
	if len(b)%188 != 0 {
		t.Fatalf("segment size %d is not a multiple of 188", len(b))
	}
	info := tsInfo{ccs: map[uint16][]uint8{}}
	dmx := astits.NewDemuxer(context.Background(), bytes.NewReader(b))
	for {
		d, err := dmx.NextData()
		if errors.Is(err, astits.ErrNoMorePackets) || errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("demux: %v", err)
		}
		if d.PMT != nil {
			info.pmt = d.PMT
		}
		if d.PES != nil {
			p := tsPES{pid: d.PID, pts: -1, dts: -1, data: d.PES.Data}
			if oh := d.PES.Header.OptionalHeader; oh != nil {
				if oh.PTS != nil {
					p.pts = oh.PTS.Base
				}
				if oh.DTS != nil {
					p.dts = oh.DTS.Base
				}
			}
			if af := d.FirstPacket.AdaptationField; d.FirstPacket.Header.HasAdaptationField && af != nil {
				p.rai = af.RandomAccessIndicator
				p.pcr = af.HasPCR
			}
			info.pes = append(info.pes, p)
		}
	}
	for off := 0; off+188 <= len(b); off += 188 {
		pkt := b[off : off+188]
		if pkt[0] != 0x47 {
			t.Fatalf("packet at %d: no sync byte", off)
		}
		pid := uint16(pkt[1]&0x1f)<<8 | uint16(pkt[2])
		info.pids = append(info.pids, pid)
		if pkt[3]&0x10 != 0 { // has payload
			info.ccs[pid] = append(info.ccs[pid], pkt[3]&0x0f)
		}
	}
	return info
}

// feed runs the whole stream through a new segmenter (clock fixed at the
// epoch) into sink, and flushes it.
func (st flvStream) feed(t *testing.T, cfg Config, sink Sink) {
	t.Helper()
	cfg.Now = func() time.Time { return time.Unix(0, 0) }
	s := New(cfg, sink)
	if err := setAVC(s, st.videoConfig); err != nil {
		t.Fatal(err)
	}
	if err := setAAC(s, st.audioConfig); err != nil {
		t.Fatal(err)
	}
	for _, f := range st.frames {
		if err := s.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}
