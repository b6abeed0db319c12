// whip.mjs publishes to fount over WebRTC (WHIP) from Debian's chromium
// with its fake camera and microphone: getUserMedia, an RTCPeerConnection
// whose video prefers H.264 (packetization-mode=1) by setCodecPreferences
// (or, with CODEC VP9 or AV1, prefers that codec and leaves H.264 out),
// the offer POSTed with fetch from a page of another origin (CORS), the
// stream key as a bearer token. It publishes for SECONDS, sampling the
// sender's statistics each second, then DELETEs the session.
//
//   node whip.mjs WHIP_URL SECONDS [KEY [CODEC]]
//
// Like the other scripts it judges nothing: it prints one JSON line and
// exits 0 (cmd/fount/whip_browser_test.go decides).

import { harness } from './harness.mjs';

const [whipURL, secondsArg, key, codecArg] = process.argv.slice(2);
const codec = codecArg || 'H264';
const seconds = Number(secondsArg);
if (!whipURL || !(seconds > 0)) {
  process.stderr.write('usage: node whip.mjs WHIP_URL SECONDS [KEY [CODEC]]\n');
  process.exit(2);
}

const result = { whipURL, seconds, harnessError: '', browserVersion: '', own: null, consoleErrors: [] };
const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount WHIP</title></head>
<body><script>
window.start = async function (url, key, codec) {
  const t0 = performance.now();
  const s = window.stats = { status: 0, error: '', location: '', answerAt: null, connectedAt: null,
    preferred: '', codec: '', audioCodec: '', samples: [], deleted: 0 };
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });
  const pc = window.pc = new RTCPeerConnection();
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'connected' && s.connectedAt === null) s.connectedAt = performance.now() - t0;
  };
  for (const track of media.getTracks()) {
    const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    if (track.kind === 'video') {
      const all = RTCRtpSender.getCapabilities('video').codecs;
      const want = all.filter((c) => c.mimeType === 'video/' + codec && (codec !== 'H264' || /packetization-mode=1/.test(c.sdpFmtpLine || '')));
      const rest = all.filter((c) => !want.includes(c) && (codec === 'H264' || c.mimeType !== 'video/H264'));
      tr.setCodecPreferences([...want, ...rest]);
      s.preferred = want.map((c) => c.mimeType + ' ' + (c.sdpFmtpLine || '')).join(' | ');
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
    setTimeout(resolve, 2000);
  });
  const headers = { 'Content-Type': 'application/sdp' };
  if (key) headers.Authorization = 'Bearer ' + key;
  const resp = await fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
  s.status = resp.status;
  const body = await resp.text();
  if (resp.status !== 201) { s.error = body; return; }
  s.location = new URL(resp.headers.get('Location'), url).href;
  s.answerAt = performance.now() - t0;
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
};
window.sample = async function () {
  const s = window.stats;
  const row = { at: performance.now(), framesEncoded: 0, keyFramesEncoded: 0, videoPackets: 0, audioPackets: 0, nackCount: 0, pliCount: 0 };
  (await window.pc.getStats()).forEach((r) => {
    if (r.type === 'outbound-rtp' && r.kind === 'video') {
      row.framesEncoded = r.framesEncoded || 0; row.keyFramesEncoded = r.keyFramesEncoded || 0;
      row.videoPackets = r.packetsSent || 0; row.nackCount = r.nackCount || 0; row.pliCount = r.pliCount || 0;
    }
    if (r.type === 'outbound-rtp' && r.kind === 'audio') row.audioPackets = r.packetsSent || 0;
    if (r.type === 'codec' && /video/.test(r.mimeType)) s.codec = r.mimeType + ' ' + (r.sdpFmtpLine || '');
    if (r.type === 'codec' && /audio/.test(r.mimeType)) s.audioCodec = r.mimeType;
  });
  s.samples.push(row);
};
window.stop = async function () {
  const s = window.stats;
  if (s.location) s.deleted = (await fetch(s.location, { method: 'DELETE' })).status;
  window.pc.close();
};
</script></body></html>`;

await h.run(async () => {
  const page = await h.launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
  page.on('console', (m) => { if (m.type() === 'error' && result.consoleErrors.length < 20) result.consoleErrors.push(m.text()); });
  await page.goto(await h.serve(PAGE));
  await page.evaluate(([u, k, c]) => window.start(u, k, c), [whipURL, key || '', codec]);
  for (let i = 0; i <= seconds; i++) {
    await page.evaluate(() => window.sample());
    await page.waitForTimeout(1000);
  }
  await page.evaluate(() => window.stop());
  result.own = await page.evaluate(() => window.stats);
}, 90);
