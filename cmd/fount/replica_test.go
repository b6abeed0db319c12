package main

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// Two origins fed the same encoder output (ffmpeg's tee muxer pushing to
// both) cut the same segments and parts under the same URLs with the same
// bytes, so a CDN or load balancer can fail over between them without
// sticky sessions. The rule: cuts depend only on the media timestamps and
// keyframes of the publish, and names only on the stream's sequence
// numbers (docs/scaling.md).
func TestE2EReplicasAgree(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*config)
	}{{"ll-fmp4", nil}, {"classic-ts", classic}} {
		t.Run(tc.name, func(t *testing.T) {
			src := source(t)
			a := startOrigin(t, tc.mod)
			b := startOrigin(t, tc.mod)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-t", "7", "-i", src,
				"-c", "copy", "-map", "0", "-f", "tee",
				"[f=flv]rtmp://"+a.rtmp+"/live/rep|[f=flv]rtmp://"+b.rtmp+"/live/rep")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg tee: %v %s", err, out)
			}
			var lists [2]*m3u8.MediaPlaylist
			for i, o := range []*origin{a, b} {
				lists[i], _ = awaitPlaylist(t, o.url("/live/rep/index.m3u8"), 10*time.Second, "the whole push", func(p *m3u8.MediaPlaylist, _ []byte) bool {
					return totalDuration(p) >= 6.9
				})
			}
			sa, sb := segments(lists[0]), segments(lists[1])
			if lists[0].SeqNo != lists[1].SeqNo || len(sa) != len(sb) {
				t.Fatalf("replicas differ: seq %d/%d, %d/%d segments", lists[0].SeqNo, lists[1].SeqNo, len(sa), len(sb))
			}
			var names []string
			for i := range sa {
				if sa[i].URI != sb[i].URI || sa[i].Duration != sb[i].Duration {
					t.Errorf("segment %d: %s %.3f vs %s %.3f", i, sa[i].URI, sa[i].Duration, sb[i].URI, sb[i].Duration)
				}
				names = append(names, sa[i].URI)
			}
			if lists[0].Map != nil {
				names = append(names, lists[0].Map.URI)
			}
			if tc.mod == nil {
				names = append(names, "seg0.0.m4s", "seg1.3.m4s")
			}
			for _, n := range names {
				_, ba, _ := httpGet(t, a.url("/live/rep/"+n))
				_, bb, _ := httpGet(t, b.url("/live/rep/"+n))
				if len(ba) == 0 || !bytes.Equal(ba, bb) {
					t.Errorf("%s: %d vs %d bytes, equal %v", n, len(ba), len(bb), bytes.Equal(ba, bb))
				}
			}
		})
	}
}
