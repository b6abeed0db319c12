// realtime.js is the operator page's WebRTC player ("Watch in real time"):
// WHEP (RFC 9725, docs/webrtc.md) with a plain RTCPeerConnection and fetch,
// into a stream card's <video> in place of hls.js. app.js calls start and
// stop with its card and the few page helpers it needs (ui).
window.fountRealtime = (function () {
  'use strict';

  // start plays the stream over WebRTC in the card's <video>
  // instead of HLS: one recvonly offer with every candidate (no trickle)
  // POSTed to /APP/NAME/whep, the answer applied; the session's URL
  // (Location) is DELETEd when it stops.
  async function start(card, ui) {
    ui.stopPlayer(card);
    card.playerError.hidden = true;
    const pc = new RTCPeerConnection();
    card.pc = pc;
    card.realtimeButton.textContent = 'Back to HLS';
    ui.set(card.realtimeNote, 'connecting…');
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const media = new MediaStream();
    pc.ontrack = (e) => {
      media.addTrack(e.track);
      card.video.srcObject = media;
      const p = card.video.play();
      if (p && p.catch) p.catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (card.pc !== pc) return;
      const st = pc.connectionState;
      ui.set(card.realtimeNote, st === 'connected' ? 'playing over WebRTC' : st);
      if (st === 'failed') ui.showPlayerError(card, 'WebRTC: the connection failed (is the WebRTC UDP port open?)');
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
        setTimeout(resolve, 2000); // what is gathered by then will do
      });
      const resp = await fetch(card.whepURL, {
        method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
      });
      const body = await resp.text();
      if (card.pc !== pc) return;
      if (resp.status !== 201) throw new Error(resp.status + ' ' + body.trim());
      card.whepSession = new URL(resp.headers.get('Location'), card.whepURL).href;
      await pc.setRemoteDescription({ type: 'answer', sdp: body });
    } catch (e) {
      if (card.pc !== pc) return;
      ui.showPlayerError(card, 'WebRTC: ' + (e && e.message ? e.message : e));
      stop(card, ui);
    }
  }

  function stop(card, ui) {
    if (!card.pc) return;
    card.pc.close();
    card.pc = null;
    if (card.whepSession) {
      fetch(card.whepSession, { method: 'DELETE' }).catch(() => {});
      card.whepSession = '';
    }
    card.video.srcObject = null;
    card.realtimeButton.textContent = 'Watch in real time';
    ui.set(card.realtimeNote, '');
  }

  return { start, stop };
})();
