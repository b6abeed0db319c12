package rtc

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

// recSession records what a publish's session is given.
type recSession struct {
	video    []*codec.Video
	audio    []*codec.Audio
	frames   []segmenter.Frame
	audioErr error
}

func (*recSession) Metadata(ingest.Metadata)           {}
func (r *recSession) VideoConfig(v *codec.Video) error { r.video = append(r.video, v); return nil }
func (r *recSession) AudioConfig(a *codec.Audio) error {
	r.audio = append(r.audio, a)
	return r.audioErr
}
func (r *recSession) Frame(f segmenter.Frame) error {
	f.Data = append([]byte(nil), f.Data...)
	r.frames = append(r.frames, f)
	return nil
}
func (*recSession) Close() {}

// avcFrame makes a frame of 4-byte length-prefixed NAL units from hex.
func avcFrame(t *testing.T, nals ...string) []byte {
	t.Helper()
	var out []byte
	for _, n := range nals {
		b, err := hex.DecodeString(n)
		if err != nil {
			t.Fatal(err)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

// x264's Baseline 64x64 parameter sets, and slices (only their NAL
// headers matter here).
const (
	testSPS = "6742c00ad90426c044000003000400000300f03c489920"
	testPPS = "68cb83cb20"
	idr     = "658884"
	nonIDR  = "419a00"
)

// TestWHIPSample: the first keyframe's SPS/PPS give the AVC
// configuration; frames before it are dropped; a frame after lost
// packets drops the video to the next keyframe; RTP time is unwrapped
// past 2^32 onto the timeline after the track's first arrival; Opus that
// the segment format cannot carry is skipped, the publish going on.
func TestWHIPSample(t *testing.T) {
	rec := &recSession{}
	w := &whipSession{sess: rec, log: slog.New(slog.DiscardHandler)}
	v := &track{kind: segmenter.Video, vcodec: codec.AVC, clock: 90000, waitKey: true, base: 40 * time.Millisecond, lastTS: 0xffffff00}
	step := func(ts uint32, lost uint16, nals ...string) {
		t.Helper()
		if err := w.sample(v, avcFrame(t, nals...), ts, lost); err != nil {
			t.Fatal(err)
		}
	}
	var ts0 uint32 = 0xffffff00 // 2^32 - 256: the RTP clock wraps after the first keyframe
	step(ts0, 0, nonIDR)        // before any keyframe: dropped
	step(ts0+3000, 0, testSPS, testPPS, idr)
	step(ts0+6000, 0, nonIDR)  // past the wrap
	step(ts0+12000, 2, nonIDR) // after a loss: dropped
	step(ts0+15000, 0, nonIDR) // still waiting
	step(ts0+18000, 0, testSPS, testPPS, idr)
	if len(rec.video) != 1 || rec.video[0].Width != 64 || !strings.HasPrefix(rec.video[0].Codecs, "avc1.42") {
		t.Fatalf("configurations %+v, want one 64x64 Baseline", rec.video)
	}
	var got []string
	for _, f := range rec.frames {
		got = append(got, fmt.Sprintf("%v@%v", f.Key, f.DTS))
	}
	want := []string{"true@73.333333ms", "false@106.666666ms", "true@240ms"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("frames %v, want %v", got, want)
	}
	if w.dropped != 3 {
		t.Errorf("%d frames dropped, want 3", w.dropped)
	}

	rec.audioErr = fmt.Errorf("%w: Opus in mpegts", segmenter.ErrNotCarried)
	a := &track{kind: segmenter.Audio, clock: 48000, channels: 2}
	for i := range 3 {
		if err := w.sample(a, []byte{0xfc, 1, 2}, uint32(i*960), 0); err != nil {
			t.Fatalf("Opus in TS ended the publish: %v", err)
		}
	}
	if len(rec.audio) != 1 || rec.audio[0].Codec != codec.Opus || rec.audio[0].Channels != 2 || len(rec.frames) != 3 {
		t.Errorf("audio configurations %+v, %d frames (want the 3 video frames only)", rec.audio, len(rec.frames))
	}
}

// TestWHIPAudioWaitsForVideo: with video negotiated, audio before the
// first keyframe is held back (the stream would start audio-only), then
// goes through.
func TestWHIPAudioWaitsForVideo(t *testing.T) {
	rec := &recSession{}
	w := &whipSession{sess: rec, log: slog.New(slog.DiscardHandler), info: PublisherInfo{Video: true, Audio: true}}
	a := &track{kind: segmenter.Audio, clock: 48000, channels: 2}
	v := &track{kind: segmenter.Video, vcodec: codec.AVC, clock: 90000, waitKey: true}
	for i := range 3 {
		if err := w.sample(a, []byte{0xfc, 1, 2}, uint32(i*960), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.sample(v, avcFrame(t, testSPS, testPPS, idr), 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.sample(a, []byte{0xfc, 1, 2}, 3*960, 0); err != nil {
		t.Fatal(err)
	}
	if len(rec.frames) != 2 || rec.frames[0].Kind != segmenter.Video || rec.frames[1].Kind != segmenter.Audio {
		t.Errorf("frames %+v, want the keyframe then the audio after it", rec.frames)
	}
}

// TestWHIPWebhookRequest: the authoriser is asked as for RTMP, with the
// key, and metadata that says WHIP and the URL's name.
func TestWHIPWebhookRequest(t *testing.T) {
	srv := testServer(t)
	var got ingest.AuthRequest
	srv.SetIngest(Ingest{App: "live", Publisher: &fakePublisher{}, Auth: authFunc(func(req ingest.AuthRequest) (string, error) {
		got = req
		return "x", nil
	})})
	id, _, err := srv.Publish(context.Background(), "live/x", "secret", loopback, []byte(pionPublishOffer(t)))
	if err != nil {
		t.Fatal(err)
	}
	srv.DeletePublish(id)
	if got.App != "live" || got.Key != "secret" || got.Metadata["protocol"] != "whip" || got.Metadata["name"] != "x" || got.Remote != loopback {
		t.Errorf("the authoriser was asked %+v", got)
	}
}

type authFunc func(ingest.AuthRequest) (string, error)

func (f authFunc) Authorize(_ context.Context, req ingest.AuthRequest) (string, error) { return f(req) }
