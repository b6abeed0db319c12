package rtc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/fount-live/fount/segmenter/codec"
)

const (
	// queueFrames bounds what waits for a viewer: about 3 s at 30 fps.
	// A viewer that falls that far behind skips to the next keyframe.
	queueFrames = 96
	// connectTimeout: a session whose ICE and DTLS have not connected by
	// then is closed.
	connectTimeout = 20 * time.Second
	// burstStep is the RTP time between the kept GOP's frames sent to a
	// joining viewer: they are decoded at once, so that the picture is
	// live from the start rather than a GOP behind.
	burstStep = 90 // 1 ms at 90 kHz
	mtu       = 1200
)

// session is one WHEP viewer: a PeerConnection with a video track (the
// stream's H.264, VP9 or AV1, passed through; and an Opus track when the
// stream's audio is Opus), fed from its stream's Feed through a bounded
// queue by its own goroutine.
type session struct {
	id      string
	srv     *Server
	feed    *Feed
	log     *slog.Logger
	pc      *webrtc.PeerConnection
	video   *webrtc.TrackLocalStaticRTP
	audio   *webrtc.TrackLocalStaticRTP // nil: the stream's audio is not Opus
	senders []*webrtc.RTPSender
	ctx     context.Context
	cancel  context.CancelCauseFunc
	done    chan struct{} // closed once the session is cleaned up

	connected chan struct{}
	connOnce  sync.Once

	// Under the feed's lock (offer, start).
	q     chan *frame
	burst []*frame // the GOP to send first
	skip  bool     // waiting for a keyframe: dropped behind, or joined without a GOP

	dropped atomic.Uint64 // frames not queued: the viewer was behind
	vformat string        // the video format negotiated, as logs name it ("VP9 profile-id=0")

	// The writer's (run's) own.
	vpack, apack rtp.Packetizer
	based        bool
	basePTS      time.Duration
	vStart       uint32 // RTP time of basePTS, video
	vNext        uint32 // the next burst frame's RTP time; starts random (RFC 3550)
	pictureID    uint16 // VP9's first picture ID; random
	aStart       uint32
}

// errEnded is the cause of a session ended by its owner.
var errEnded = errors.New("session ended")

// newPeer builds the session's PeerConnection for offer and returns the
// answer, once ICE gathering (host candidates on the shared ports) is done.
func (srv *Server) newPeer(ctx context.Context, s *session, offer string, vc *videoConf, info offerInfo, opus bool) (string, error) {
	m := &webrtc.MediaEngine{}
	// The stream's one format; pion answers with the offer's payload type.
	vcap := vc.capability(info.profileLevelID)
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: vcap, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		return "", fmt.Errorf("registering %v: %w", vc.codec, err)
	}
	opusCap := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}
	if opus {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCap, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
			return "", fmt.Errorf("registering Opus: %w", err)
		}
	}
	ir := &interceptor.Registry{}
	// NACK responder (with its packet cache), RTCP reports, TWCC.
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return "", fmt.Errorf("interceptors: %w", err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(srv.se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("peer connection: %w", err)
	}
	s.pc = pc
	fail := func(err error) (string, error) {
		_ = pc.Close()
		return "", err
	}
	s.video, err = webrtc.NewTrackLocalStaticRTP(vcap, "video", "fount")
	if err != nil {
		return fail(fmt.Errorf("video track: %w", err))
	}
	vs, err := pc.AddTransceiverFromTrack(s.video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fail(fmt.Errorf("video transceiver: %w", err))
	}
	senders := []*webrtc.RTPSender{vs.Sender()}
	if opus && info.audio {
		s.audio, err = webrtc.NewTrackLocalStaticRTP(opusCap, "audio", "fount")
		if err != nil {
			return fail(fmt.Errorf("audio track: %w", err))
		}
		as, err := pc.AddTransceiverFromTrack(s.audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fail(fmt.Errorf("audio transceiver: %w", err))
		}
		senders = append(senders, as.Sender())
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			s.connOnce.Do(func() { close(s.connected) })
		case webrtc.PeerConnectionStateFailed:
			s.end("ICE or DTLS failed")
		case webrtc.PeerConnectionStateClosed:
			s.end("connection closed")
		}
	})
	gathered, err := negotiate(pc, offer)
	if err != nil {
		return fail(err)
	}
	if cs := vs.Sender().GetParameters().Codecs; len(cs) == 0 || cs[0].ClockRate != 90000 {
		return fail(fmt.Errorf("%w: no %v format (90 kHz) in common with the offer", errBadOffer, vc.codec))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	s.senders = senders
	s.vformat = vc.format()
	if vc.codec == codec.AVC {
		s.vformat = "H.264 profile-level-id=" + info.profileLevelID // the offer's, as answered
	}
	var pid [2]byte
	_, _ = rand.Read(pid[:])
	s.pictureID = binary.BigEndian.Uint16(pid[:])
	s.vpack = rtp.NewPacketizer(mtu, 0, 0, vc.payloader(s.pictureID), rtp.NewRandomSequencer(), 90000)
	if s.audio != nil {
		s.apack = rtp.NewPacketizer(mtu, 0, 0, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	}
	return pc.LocalDescription().SDP, nil
}

// end asks the session to end; run cleans up. It never blocks, so that
// the feed may call it under its lock.
func (s *session) end(reason string) {
	s.cancel(fmt.Errorf("%w: %s", errEnded, reason))
}

// start is called by the feed, under its lock, when s joins: the kept
// GOP goes first, or s waits for a keyframe.
func (s *session) start(gop []*frame) {
	if len(gop) > 0 {
		s.burst = append([]*frame(nil), gop...)
	} else {
		s.skip = true
	}
}

// offer queues a frame without blocking (under the feed's lock). A full
// queue drops the frame and everything up to the next keyframe.
func (s *session) offer(fr *frame) {
	if s.skip && !fr.key {
		return
	}
	select {
	case s.q <- fr:
		s.skip = false
	default:
		if !fr.audio {
			s.skip = true
		}
		s.dropped.Add(1)
	}
}

// run owns the session from its answer on: it waits for the connection,
// joins the feed, writes frames until the session ends, then closes the
// PeerConnection and leaves the server.
func (s *session) run() {
	defer close(s.done)
	defer s.srv.remove(s)
	defer func() { _ = s.pc.Close() }()
	// RTCP must be read for the interceptors to see it (NACKs resend
	// from the packet cache); the reads end when the connection closes.
	// Started here, by a goroutine the server counts, so that none
	// starts after Close has waited for them all.
	for _, snd := range s.senders {
		s.srv.wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := snd.Read(buf); err != nil {
					return
				}
			}
		})
	}
	t := time.NewTimer(connectTimeout)
	defer t.Stop()
	select {
	case <-s.connected:
	case <-s.ctx.Done():
		s.logEnd()
		return
	case <-t.C:
		s.end("not connected within " + connectTimeout.String())
		s.logEnd()
		return
	}
	if !s.feed.join(s) {
		s.end("the stream ended")
		s.logEnd()
		return
	}
	defer s.feed.leave(s)
	s.log.Info("webrtc viewer connected", "session", s.id, "video", s.vformat, "audio", s.audio != nil)
	for s.ctx.Err() == nil && len(s.burst) > 0 {
		fr := s.burst[0]
		s.burst = s.burst[1:]
		s.write(fr, true)
	}
	for {
		select {
		case <-s.ctx.Done():
			s.logEnd()
			return
		case fr := <-s.q:
			s.write(fr, false)
		}
	}
}

func (s *session) logEnd() {
	s.log.Info("webrtc viewer session ended", "session", s.id, "reason", context.Cause(s.ctx).Error(), "frames_dropped", s.dropped.Load())
}

// write packetizes one frame with pion's payloader and sends it on its
// track. RTP times follow the frames' presentation times, but for the
// burst of the kept GOP, whose frames go 1 ms apart in RTP time.
func (s *session) write(fr *frame, burst bool) {
	if fr.audio {
		if s.audio == nil || !s.based || fr.pts < s.basePTS {
			return
		}
		ts := s.aStart + uint32((fr.pts-s.basePTS)*48000/time.Second)
		s.send(s.audio, s.apack, fr.data, ts)
		return
	}
	var ts uint32
	switch {
	case burst:
		ts = s.vNext
		s.vNext += burstStep
	case !s.based:
		s.based, s.basePTS = true, fr.pts
		// After a burst the live frames continue a frame's time later.
		s.vStart = s.vNext + 3000
		s.aStart = uint32(s.vStart / 90 * 48)
		ts = s.vStart
	default:
		ts = s.vStart + uint32(int64((fr.pts-s.basePTS)*90000/time.Second))
	}
	s.send(s.video, s.vpack, fr.data, ts)
}

func (s *session) send(track *webrtc.TrackLocalStaticRTP, p rtp.Packetizer, data []byte, ts uint32) {
	for _, pkt := range p.Packetize(data, 0) {
		pkt.Timestamp = ts
		if err := track.WriteRTP(pkt); err != nil {
			s.end("writing RTP: " + err.Error())
			return
		}
	}
}

// negotiate takes offer and sets pc's answer; the channel closes when ICE
// gathering is complete (the answer then carries every candidate).
func negotiate(pc *webrtc.PeerConnection, offer string) (<-chan struct{}, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadOffer, err)
	}
	// The answer says a=ice-options:trickle when the offer does: the
	// client may then PATCH the candidates it gathers later (trickle.go).
	// fount's own are all in the answer, with a=end-of-candidates.
	var opts *webrtc.AnswerOptions
	if offersTrickle(offer) {
		opts = &webrtc.AnswerOptions{OfferAnswerOptions: webrtc.OfferAnswerOptions{ICETricklingSupported: true}}
	}
	answer, err := pc.CreateAnswer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadOffer, err)
	}
	return gathered, nil
}

// offersTrickle reports whether an offer has a=ice-options:trickle.
func offersTrickle(offer string) bool {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return false
	}
	has := func(v string, ok bool) bool { return ok && slices.Contains(strings.Fields(v), "trickle") }
	if has(sd.Attribute("ice-options")) {
		return true
	}
	for _, md := range sd.MediaDescriptions {
		if has(md.Attribute("ice-options")) {
			return true
		}
	}
	return false
}
