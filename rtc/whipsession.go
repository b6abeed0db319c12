package rtc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/segmenter"
	"github.com/fount-live/fount/segmenter/codec"
)

const (
	// pliEvery spaces the keyframe requests of a publisher whose video
	// waits for a keyframe (at start, after a loss).
	pliEvery = 500 * time.Millisecond
	// videoLate and audioLate bound how long a frame waits for a late or
	// resent (NACKed) packet before it is given up.
	videoLate = 300 * time.Millisecond
	audioLate = 100 * time.Millisecond
)

// whipSession is one WHIP publisher: a PeerConnection receiving H.264
// and/or Opus, whose frames go, depacketized by pion, to the publish's
// ingest.Session as an RTMP publisher's would.
type whipSession struct {
	id     string
	srv    *Server
	log    *slog.Logger
	offer  publishOffer
	info   PublisherInfo
	pc     *webrtc.PeerConnection
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}

	connected chan struct{}
	connOnce  sync.Once

	// mu orders the calls into sess: the tracks' readers are goroutines
	// of their own, the session takes one caller at a time.
	mu      sync.Mutex
	sess    ingest.Session
	closing bool           // run is ending: no new reader may start
	readers sync.WaitGroup // the tracks' readers
	// The timeline: every track's frames are placed at their RTP time
	// after the track's first packet, plus when that packet arrived after
	// the publish's first (start). RTCP sender reports are not used.
	start   time.Time
	started bool
	dropped uint64 // video frames dropped: lost packets, or waiting for a keyframe
	// videoOn: the first keyframe has gone to the publish. Until then
	// audio is held back (dropped) for up to audioAlone, when video was
	// negotiated: the segmenter waits only a second for a track, and a
	// stream started without video stays audio-only.
	videoOn bool
}

// audioAlone is how long audio waits for the first keyframe of a
// publisher's video before it goes ahead alone.
const audioAlone = 5 * time.Second

func newWHIPSession(s *Server, id, path string, sess ingest.Session, remote net.Addr, po publishOffer) *whipSession {
	ctx, cancel := context.WithCancelCause(s.ctx)
	return &whipSession{id: id, srv: s, log: s.log.With("stream", path, "whip", id), offer: po, sess: sess, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), connected: make(chan struct{}),
		info: PublisherInfo{Stream: path, Remote: remote.String(), Started: s.cfg.Now(), Video: len(po.h264) > 0, Audio: len(po.opus) > 0}}
}

func (w *whipSession) end(reason string) { w.cancel(fmt.Errorf("%w: %s", errEnded, reason)) }

// newPeer answers the offer with receive-only tracks for the formats
// checkPublishOffer took, once ICE gathering is done.
func (w *whipSession) newPeer(ctx context.Context) (string, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range w.offer.h264 {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return "", fmt.Errorf("registering H.264: %w", err)
		}
	}
	for _, c := range w.offer.opus {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return "", fmt.Errorf("registering Opus: %w", err)
		}
	}
	ir := &interceptor.Registry{}
	// NACK generator (lost packets are asked again), receiver reports, TWCC.
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return "", fmt.Errorf("interceptors: %w", err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(w.srv.se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("peer connection: %w", err)
	}
	w.pc = pc
	fail := func(err error) (string, error) {
		_ = pc.Close()
		return "", err
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			w.connOnce.Do(func() { close(w.connected) })
		case webrtc.PeerConnectionStateFailed:
			w.end("ICE or DTLS failed")
		case webrtc.PeerConnectionStateClosed:
			w.end("connection closed")
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		w.mu.Lock()
		if w.closing {
			w.mu.Unlock()
			return
		}
		w.readers.Add(2)
		w.mu.Unlock()
		go func() {
			defer w.readers.Done()
			// RTCP (sender reports) must be read for the interceptors.
			for {
				if _, _, err := r.ReadRTCP(); err != nil {
					return
				}
			}
		}()
		defer w.readers.Done()
		w.read(t)
	})
	gathered, err := negotiate(pc, string(w.offer.sdp))
	if err != nil {
		return fail(err)
	}
	receiving := false
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() != nil && len(tr.Receiver().GetParameters().Codecs) > 0 && tr.Direction() == webrtc.RTPTransceiverDirectionRecvonly {
			receiving = true
		}
	}
	if !receiving {
		return fail(fmt.Errorf("%w: no H.264 or Opus format in common with the offer", errBadOffer))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// run owns the session from its answer on: it waits for the connection,
// then for the end (DELETE, ICE/DTLS failure, server shutdown), closes
// the PeerConnection, waits for the readers and ends the publish.
func (w *whipSession) run() {
	defer close(w.done)
	t := time.NewTimer(connectTimeout)
	select {
	case <-w.connected:
		w.log.Info("whip publisher connected")
	case <-w.ctx.Done():
	case <-t.C:
		w.end("not connected within " + connectTimeout.String())
	}
	t.Stop()
	<-w.ctx.Done()
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	_ = w.pc.Close() // the tracks' reads fail: the readers return
	w.readers.Wait()
	w.sess.Close()
	w.srv.mu.Lock()
	delete(w.srv.pubs, w.id)
	w.srv.mu.Unlock()
	w.log.Info("whip publish ended", "reason", context.Cause(w.ctx).Error(), "video_frames_dropped", w.dropped)
}

// track is a reader's state of one track.
type track struct {
	kind     segmenter.Kind
	clock    int64
	sb       *samplebuilder.SampleBuilder
	base     time.Duration // the track's first packet's arrival, after the publish's start
	firstTS  uint32
	lastTS   uint32
	ext      int64 // RTP time since firstTS, unwrapped
	begun    bool
	config   bool // the session has the track's configuration
	skip     bool // audio the segment format cannot carry
	waitKey  bool // video: dropping until a keyframe
	lastPLI  time.Time
	avc      *codec.Video
	frames   uint64
	channels int
}

// read depacketizes a track (pion's sample builder and H.264/Opus
// depacketizers) and hands its frames to the publish until the track's
// reads fail (the connection closed).
func (w *whipSession) read(t *webrtc.TrackRemote) {
	tr := &track{kind: segmenter.Audio, clock: 48000, waitKey: true, channels: 2}
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		tr.kind, tr.clock = segmenter.Video, 90000
		tr.sb = samplebuilder.New(512, &codecs.H264Packet{IsAVC: true}, 90000, samplebuilder.WithMaxTimeDelay(videoLate))
	} else {
		tr.sb = samplebuilder.New(64, &codecs.OpusPacket{}, 48000, samplebuilder.WithMaxTimeDelay(audioLate))
	}
	w.log.Info("whip track", "kind", t.Kind().String(), "codec", t.Codec().MimeType, "fmtp", t.Codec().SDPFmtpLine, "ssrc", uint32(t.SSRC()))
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		if !tr.begun {
			tr.begun, tr.firstTS, tr.lastTS = true, p.Timestamp, p.Timestamp
			now := time.Now()
			w.mu.Lock()
			if !w.started {
				w.start, w.started = now, true
			}
			tr.base = now.Sub(w.start)
			w.mu.Unlock()
		}
		tr.sb.Push(p)
		for s := tr.sb.Pop(); s != nil; s = tr.sb.Pop() {
			if err := w.sample(tr, s.Data, s.PacketTimestamp, s.PrevDroppedPackets); err != nil {
				w.end(err.Error())
				return
			}
		}
		if tr.kind == segmenter.Video && tr.waitKey && time.Since(tr.lastPLI) >= pliEvery {
			tr.lastPLI = time.Now()
			_ = w.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
		}
	}
}

// sample hands one depacketized frame to the publish; an error ends it.
func (w *whipSession) sample(tr *track, data []byte, ts uint32, lost uint16) error {
	tr.ext += int64(int32(ts - tr.lastTS))
	tr.lastTS = ts
	at := tr.base + time.Duration(tr.ext*int64(time.Second)/tr.clock)
	w.mu.Lock()
	defer w.mu.Unlock()
	if tr.kind == segmenter.Audio {
		if !tr.config {
			tr.config = true
			a, err := opusConfig(tr.channels)
			if err != nil {
				return err
			}
			switch err := w.sess.AudioConfig(a); {
			case errors.Is(err, segmenter.ErrNotCarried):
				tr.skip = true
				w.log.Warn("whip audio: Opus cannot go into this segment format (MPEG-TS here): the stream is video-only; use --segment-format fmp4 for its audio", "err", err)
			case err != nil:
				return fmt.Errorf("opus: %w", err)
			}
		}
		if len(data) == 0 || tr.skip {
			return nil
		}
		if !w.videoOn && w.info.Video && at-tr.base < audioAlone {
			return nil
		}
		return w.sess.Frame(segmenter.Frame{Kind: segmenter.Audio, DTS: at, PTS: at, Data: data})
	}
	if lost > 0 && !tr.waitKey {
		// A frame with missing packets was not built: what follows up to
		// the next keyframe refers to it, so it is dropped too.
		tr.waitKey = true
		w.log.Info("whip video: packets lost, dropping to the next keyframe", "lost", lost)
	}
	key, params := scanAVC(data)
	if key && params {
		v, err := codec.VideoFromKeyframe(codec.AVC, data)
		if err != nil {
			w.log.Warn("whip video: keyframe's SPS/PPS unreadable", "err", err)
			tr.waitKey = true
			w.dropped++
			return nil
		}
		if tr.avc == nil || !bytes.Equal(tr.avc.Record, v.Record) {
			tr.avc = v
			if err := w.sess.VideoConfig(v); err != nil {
				return fmt.Errorf("h264: %w", err)
			}
		}
	}
	if tr.avc == nil || tr.waitKey && !key {
		w.dropped++
		return nil
	}
	tr.waitKey = false
	w.videoOn = true
	tr.frames++
	return w.sess.Frame(segmenter.Frame{Kind: segmenter.Video, DTS: at, PTS: at, Key: key, Data: data})
}

// scanAVC reads a frame of 4-byte length-prefixed NAL units: whether it
// holds an IDR slice, and an SPS and a PPS.
func scanAVC(b []byte) (idr, params bool) {
	var sps, pps bool
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		if n == 0 || n > len(b) {
			break
		}
		switch b[0] & 0x1f {
		case 5:
			idr = true
		case 7:
			sps = true
		case 8:
			pps = true
		}
		b = b[n:]
	}
	return idr, sps && pps
}

// opusConfig is the OpusHead (RFC 7845) of a WebRTC Opus track: 48 kHz,
// the SDP's two channels (a mono sender's packets decode as stereo), no
// pre-skip (a live sender's first packet is not an encoder's first).
func opusConfig(channels int) (*codec.Audio, error) {
	head := []byte("OpusHead\x01\x02\x00\x00\x80\xbb\x00\x00\x00\x00\x00")
	head[9] = byte(channels)
	return codec.ParseAudio(codec.Opus, head)
}
