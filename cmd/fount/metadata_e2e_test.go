package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// postMetadata POSTs body to the stream's metadata API and returns the
// status and answer.
func postMetadata(t *testing.T, o *origin, stream, body string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+o.api+"/api/v1/streams/"+stream+"/metadata", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestE2ETimedMetadata: ffmpeg pushes; the API posts one event "now" and
// one at a program date time 6.5 s into the stream; ffprobe reads the
// MPEG-TS segments' timed ID3 stream (codec timed_id3) with both, the
// second at exactly the PTS its PDT maps to (within 1 ms, the PDT's
// precision).
func TestE2ETimedMetadata(t *testing.T) {
	lockEndToEnd(t)
	src := source(t)
	requireTool(t, "ffprobe")
	o := startClassic(t, func(c *config) { c.PlaylistSize = 10 })

	if code, _ := postMetadata(t, o, "live/nosuch", `{"text":"x"}`); code != 404 {
		t.Errorf("metadata for a stream that does not exist: %d, want 404", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := o.push(ctx, t, "md", realtime(src), "-c", "copy")
	url := o.url("/live/md/index.m3u8")
	p, _ := awaitPlaylist(t, url, 10*time.Second, "a first segment", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return len(segments(p)) > 0
	})
	pdt0 := segments(p)[0].ProgramDateTime
	at := pdt0.Add(6500 * time.Millisecond)
	for _, c := range []struct {
		body string
		want int
	}{
		{`{}`, 400},
		{`{"text":"a","bogus":1}`, 400},
		{`{"values":{"":"x"}}`, 400},
		{`{"text":"hello"}`, 202},
		{`{"values":{"score":"2-1","minute":"63"},"at":"` + at.Format(time.RFC3339Nano) + `"}`, 202},
	} {
		if code, body := postMetadata(t, o, "live/md", c.body); code != c.want {
			t.Errorf("POST %s: %d %s, want %d", c.body, code, body, c.want)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ffmpeg push: %v", err)
	}
	p, _ = awaitPlaylist(t, url, 10*time.Second, "the whole push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
		return totalDuration(p) >= 11.9
	})

	dir := t.TempDir()
	var found []string
	for _, s := range segments(p) {
		code, data, _ := httpGet(t, o.url("/live/md/"+s.URI))
		if code != 200 {
			t.Fatalf("segment %s: %d", s.URI, code)
		}
		file := filepath.Join(dir, s.URI)
		os.WriteFile(file, data, 0o644)
		out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_packets", "-show_data",
			"-show_entries", "packet=codec_type,pts_time,dts_time,data:stream=codec_type,codec_name",
			"-of", "json", file).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", s.URI, err)
		}
		var r struct {
			Streams []struct {
				CodecType string `json:"codec_type"`
				CodecName string `json:"codec_name"`
			} `json:"streams"`
			Packets []struct {
				CodecType string `json:"codec_type"`
				PTSTime   string `json:"pts_time"`
				DTSTime   string `json:"dts_time"`
				Data      string `json:"data"`
			} `json:"packets"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		// A segment's date is its first frame shown: the keyframe that
		// opens it, at its PTS (after its DTS with B-frames).
		firstVideo := -1.0
		for _, pk := range r.Packets {
			if pk.CodecType == "video" && firstVideo < 0 {
				firstVideo = f64(pk.PTSTime)
			}
		}
		for _, pk := range r.Packets {
			if pk.CodecType != "data" {
				continue
			}
			hasTimedID3 := false
			for _, st := range r.Streams {
				hasTimedID3 = hasTimedID3 || (st.CodecType == "data" && st.CodecName == "timed_id3")
			}
			if !hasTimedID3 {
				t.Errorf("segment %s: data packets but no timed_id3 stream: %+v", s.URI, r.Streams)
			}
			// ffprobe's hex dump: the ID3 header and the values' text.
			dump := hexDumpText(pk.Data)
			switch {
			case strings.Contains(dump, "hello"):
				found = append(found, "now")
			case strings.Contains(dump, "score") && strings.Contains(dump, "2-1"):
				found = append(found, "at")
				want := firstVideo + at.Sub(s.ProgramDateTime).Seconds()
				if d := f64(pk.PTSTime) - want; d > 0.0011 || d < -0.0011 {
					t.Errorf("event at %s in segment %s (PDT %s) has PTS %s, want %.4f", at.Format(time.RFC3339Nano), s.URI, s.ProgramDateTime.Format(time.RFC3339Nano), pk.PTSTime, want)
				}
			default:
				t.Errorf("unexpected timed ID3 packet in %s: %s", s.URI, pk.Data)
			}
		}
	}
	if strings.Join(found, ",") != "now,at" {
		t.Errorf("timed ID3 packets found: %v, want the now then the at event", found)
	}
	_, metrics, _ := httpGet(t, "http://"+o.api+"/metrics")
	if !bytes.Contains(metrics, []byte(`fount_timed_metadata_total{source="api"} 2`)) {
		t.Errorf("metrics lack fount_timed_metadata_total{source=\"api\"} 2")
	}
}

// hexDumpText keeps the text column of ffprobe's -show_data dump.
func hexDumpText(dump string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(dump, "\n") {
		if len(line) > 51 {
			b.WriteString(line[51:])
		}
	}
	return b.String()
}
