package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astits"
	"github.com/grafov/m3u8"
)

// id3PES returns the PTS (90 kHz) of every PES on the timed ID3 PID of the
// stream's MPEG-TS segments, by the text of its tag.
func id3PES(t *testing.T, o *origin, path string) map[string]int64 {
	t.Helper()
	p, _ := awaitPlaylist(t, o.url("/live/"+path+"/index.m3u8"), 10*time.Second, "the whole push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 11.9
	})
	out := map[string]int64{}
	for _, s := range segments(p) {
		code, data, _ := httpGet(t, o.url("/live/"+path+"/"+s.URI))
		if code != 200 {
			t.Fatalf("%s: %d", s.URI, code)
		}
		dmx := astits.NewDemuxer(context.Background(), bytes.NewReader(data))
		for {
			d, err := dmx.NextData()
			if errors.Is(err, astits.ErrNoMorePackets) || errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", s.URI, err)
			}
			if d.PES != nil && d.PID == 0x102 && d.PES.Header.OptionalHeader != nil && d.PES.Header.OptionalHeader.PTS != nil {
				out[string(d.PES.Data)] = d.PES.Header.OptionalHeader.PTS.Base
			}
		}
	}
	return out
}

// TestTimedMetadataRenditions: a stream pushed as two renditions
// (?variant=): the API's event lands in both, at the same PTS; an
// encoder's onTextData lands in its own rendition only, at its timestamp.
func TestTimedMetadataRenditions(t *testing.T) {
	lockEndToEnd(t)
	tags := readFLV(t, source(t))
	o := startClassic(t, func(c *config) { c.PlaylistSize = 10 })
	before, after := split(tags, 3000)
	type pub struct {
		c   *rtmpClient
		sid uint32
	}
	var pubs []pub
	for _, v := range []string{"hi", "lo"} {
		c, sid := publishRTMP(t, o.rtmp, "show?variant="+v)
		pubs = append(pubs, pub{c, sid})
		if err := c.sendTags(sid, before); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"hi", "lo"} {
		awaitPlaylist(t, o.url("/live/show/"+v+"/index.m3u8"), 10*time.Second, "a segment", func(p *m3u8.MediaPlaylist, _ []byte) bool {
			return len(segments(p)) > 0
		})
	}
	if code, body := postMetadata(t, o, "live/show", `{"text":"api event"}`); code != 202 || !strings.Contains(body, `"renditions": 2`) {
		t.Fatalf("POST: %d %s", code, body)
	}
	if err := pubs[0].c.writeMsg(5, 18, pubs[0].sid, 3500, amf("onTextData", map[string]any{"text": "encoder event", "language": "eng"})); err != nil {
		t.Fatal(err)
	}
	for _, p := range pubs {
		if err := p.c.sendTags(p.sid, after); err != nil {
			t.Fatal(err)
		}
		p.c.conn.Close()
	}
	hi, lo := id3PES(t, o, "show/hi"), id3PES(t, o, "show/lo")
	find := func(m map[string]int64, text string) (int64, bool) {
		for k, v := range m {
			if strings.Contains(k, text) {
				return v, true
			}
		}
		return 0, false
	}
	ah, okh := find(hi, "api event")
	al, okl := find(lo, "api event")
	if !okh || !okl || ah != al {
		t.Errorf("the API's event: hi %v at %d, lo %v at %d; want both, at one PTS", okh, ah, okl, al)
	}
	if e, ok := find(hi, "encoder event"); !ok || e != 3500*90 {
		t.Errorf("onTextData in hi: %v at PTS %d, want %d", ok, e, 3500*90)
	} else if k := func() string {
		for k := range hi {
			if strings.Contains(k, "encoder event") {
				return k
			}
		}
		return ""
	}(); !strings.Contains(k, "TIT2") || !strings.Contains(k, "TXXX\x00\x00\x00\x0d\x00\x00\x03language\x00eng") {
		t.Errorf("onTextData tag %q: want TIT2 for the text and TXXX language=eng", k)
	}
	if _, ok := find(lo, "encoder event"); ok {
		t.Error("onTextData of rendition hi is in rendition lo")
	}
	_, metrics, _ := httpGet(t, "http://"+o.api+"/metrics")
	for _, want := range []string{`fount_timed_metadata_total{source="api"} 1`, `fount_timed_metadata_total{source="rtmp_ontextdata"} 1`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
