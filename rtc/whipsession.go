package rtc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
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

// whipSession is one WHIP publisher: a PeerConnection receiving H.264,
// VP9 or AV1 and/or Opus, whose frames go, depacketized by pion, to the publish's
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
		info: PublisherInfo{Stream: path, Remote: remote.String(), Started: s.cfg.Now(), Video: len(po.video) > 0, Audio: len(po.opus) > 0}}
}

func (w *whipSession) end(reason string) { w.cancel(fmt.Errorf("%w: %s", errEnded, reason)) }

// newPeer answers the offer with receive-only tracks for the formats
// checkPublishOffer took, once ICE gathering is done.
func (w *whipSession) newPeer(ctx context.Context) (string, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range w.offer.video {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return "", fmt.Errorf("registering %v: %w", w.offer.videoCodec, err)
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
		return fail(fmt.Errorf("%w: no video or Opus format in common with the offer", errBadOffer))
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
	vcodec   codec.ID // video: AVC, VP9 or AV1
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
	video    *codec.Video // the configuration the session has
	frames   uint64
	channels int
}

// newTrack makes the reader's state of a track of the given codec (its
// MIME type), with pion's depacketizer for it.
func newTrack(kind webrtc.RTPCodecType, mime string) (*track, error) {
	if kind != webrtc.RTPCodecTypeVideo {
		tr := &track{kind: segmenter.Audio, clock: 48000, channels: 2}
		tr.sb = samplebuilder.New(64, &codecs.OpusPacket{}, 48000, samplebuilder.WithMaxTimeDelay(audioLate))
		return tr, nil
	}
	tr := &track{kind: segmenter.Video, clock: 90000, waitKey: true}
	var d rtp.Depacketizer
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		tr.vcodec, d = codec.AVC, &codecs.H264Packet{IsAVC: true}
	case strings.EqualFold(mime, webrtc.MimeTypeVP9):
		// A frame as sent (a superframe if the encoder made one); one
		// spatial layer: the frames of several would not be joined into a
		// superframe here.
		tr.vcodec, d = codec.VP9, &codecs.VP9Packet{}
	case strings.EqualFold(mime, webrtc.MimeTypeAV1):
		// A temporal unit of OBUs with size fields, temporal delimiters
		// left out: what an MP4 sample holds.
		tr.vcodec, d = codec.AV1, &codecs.AV1Depacketizer{}
	default:
		return nil, fmt.Errorf("video codec %s was not negotiated by fount", mime)
	}
	tr.sb = samplebuilder.New(512, d, 90000, samplebuilder.WithMaxTimeDelay(videoLate))
	return tr, nil
}

// read depacketizes a track and hands its frames to the publish until the
// track's reads fail (the connection closed).
func (w *whipSession) read(t *webrtc.TrackRemote) {
	w.log.Info("whip track", "kind", t.Kind().String(), "codec", t.Codec().MimeType, "fmtp", t.Codec().SDPFmtpLine, "ssrc", uint32(t.SSRC()))
	tr, err := newTrack(t.Kind(), t.Codec().MimeType)
	if err != nil {
		w.end(err.Error())
		return
	}
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		if err := w.push(tr, p); err != nil {
			w.end(err.Error())
			return
		}
		if tr.kind == segmenter.Video && tr.waitKey && time.Since(tr.lastPLI) >= pliEvery {
			tr.lastPLI = time.Now()
			_ = w.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
		}
	}
}

// push gives a track's packet to its sample builder and hands on the
// frames it completes; an error ends the publish.
func (w *whipSession) push(tr *track, p *rtp.Packet) error {
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
			return err
		}
	}
	return nil
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
	key, v, err := keyframe(tr.vcodec, data)
	if err != nil {
		w.log.Warn("whip video: keyframe unreadable", "codec", tr.vcodec.String(), "err", err)
		tr.waitKey = true
		w.dropped++
		return nil
	}
	if v != nil && (tr.video == nil || !bytes.Equal(tr.video.Record, v.Record) || tr.video.Width != v.Width || tr.video.Height != v.Height) {
		tr.video = v
		if err := w.sess.VideoConfig(v); err != nil {
			return fmt.Errorf("%v: %w", tr.vcodec, err)
		}
	}
	if tr.video == nil || tr.waitKey && !key {
		w.dropped++
		return nil
	}
	tr.waitKey = false
	w.videoOn = true
	tr.frames++
	return w.sess.Frame(segmenter.Frame{Kind: segmenter.Video, DTS: at, PTS: at, Key: key, Data: data})
}

// keyframe reads whether a frame is a keyframe and, if it carries one,
// the configuration: H.264 an IDR slice, with an SPS and a PPS for the
// configuration (an IDR without them keeps the one before); VP9 and AV1
// a keyframe by its bitstream (VP9 uncompressed header; AV1 sequence
// header and key frame), which always gives the configuration. A VP9 or
// AV1 frame whose header is unreadable is taken as not a keyframe; err
// is a keyframe's configuration that is unreadable.
func keyframe(id codec.ID, data []byte) (key bool, v *codec.Video, err error) {
	if id == codec.AVC {
		idr, params := scanAVC(data)
		if idr && params {
			v, err = codec.VideoFromKeyframe(codec.AVC, data)
		}
		return idr, v, err
	}
	if key, _ = codec.IsKeyframe(id, data); key {
		v, err = codec.VideoFromKeyframe(id, data)
	}
	return key, v, err
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
