// whep.mjs plays a live stream over WebRTC (WHEP) in Debian's chromium,
// twice: from a page of its own (another origin than fount's, so CORS is
// exercised) with a plain RTCPeerConnection and fetch, measuring the time
// from the POST to the first decoded frame and the frames decoded over
// SECONDS; then from fount's operator page, by its "Watch in real time"
// button.
//
//   node whep.mjs WHEP_URL SECONDS OPERATOR_PAGE_URL STREAM_PATH
//
// An OPERATOR_PAGE_URL of "-" leaves the operator page out.
//
// Like the other scripts it judges nothing: it prints one JSON line and
// exits 0 (cmd/fount/whep_browser_test.go decides).

import { harness } from './harness.mjs';

const [whepURL, secondsArg, pageURL, streamPath] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!whepURL || !(seconds > 0) || !pageURL || !streamPath) {
  process.stderr.write('usage: node whep.mjs WHEP_URL SECONDS OPERATOR_PAGE_URL STREAM_PATH\n');
  process.exit(2);
}

const result = {
  whepURL, seconds, harnessError: '', browserVersion: '',
  own: null,      // the page of our own: see PAGE's window.stats
  operator: null, // the operator page's card: frames over time, its note
  consoleErrors: [],
};
const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount WHEP</title></head>
<body><video id="v" muted playsinline autoplay></video>
<script>
// Times are ms since start(), performance.now based.
window.start = async function (url) {
  const video = document.getElementById('v');
  const t0 = performance.now();
  const s = window.stats = { status: 0, error: '', location: '', answerAt: null, connectedAt: null,
    firstFrameAt: null, samples: [], codec: '', audioTracks: 0, videoTracks: 0, deleted: 0 };
  const pc = window.pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const media = new MediaStream();
  pc.ontrack = (e) => {
    media.addTrack(e.track);
    if (e.track.kind === 'video') s.videoTracks++; else s.audioTracks++;
    video.srcObject = media;
    video.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'connected' && s.connectedAt === null) s.connectedAt = performance.now() - t0;
  };
  video.requestVideoFrameCallback(() => { s.firstFrameAt = performance.now() - t0; });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
    setTimeout(resolve, 2000);
  });
  // The clock of "POST to first frame" starts here, with the request.
  const posted = performance.now();
  s.gatherMs = posted - t0;
  const resp = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  s.status = resp.status;
  const body = await resp.text();
  if (resp.status !== 201) { s.error = body; return; }
  s.location = new URL(resp.headers.get('Location'), url).href;
  s.answerAt = performance.now() - t0;
  s.postedAt = posted - t0;
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
};
window.sample = async function () {
  const s = window.stats;
  let row = { at: performance.now(), framesDecoded: 0, framesDropped: 0, freezeCount: 0, jitterBufferDelay: 0, jitterBufferEmittedCount: 0, packetsLost: 0, nackCount: 0 };
  (await window.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      for (const k of Object.keys(row)) if (k !== 'at' && typeof r[k] === 'number') row[k] = r[k];
    }
    if (r.type === 'codec' && /video/.test(r.mimeType)) s.codec = r.mimeType + ' ' + (r.sdpFmtpLine || '');
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
  const page = await h.launch();
  page.on('console', (m) => { if (m.type() === 'error' && result.consoleErrors.length < 20) result.consoleErrors.push(m.text()); });
  await page.goto(await h.serve(PAGE));
  await page.evaluate((u) => window.start(u), whepURL);
  for (let i = 0; i <= seconds; i++) {
    await page.evaluate(() => window.sample());
    await page.waitForTimeout(1000);
  }
  await page.evaluate(() => window.stop());
  result.own = await page.evaluate(() => window.stats);
  if (pageURL === '-') return;

  // The operator page: the card's button, then frames in its <video>.
  const op = { listed: false, note: '', frames: [], button: '' };
  result.operator = op;
  await page.goto(pageURL);
  const card = page.locator(`[data-stream="${streamPath}"]`);
  await card.locator('[data-realtime]').waitFor({ state: 'visible', timeout: 20000 });
  op.listed = true;
  await card.locator('[data-realtime]').click();
  for (let i = 0; i < 5; i++) {
    await page.waitForTimeout(1000);
    op.frames.push(await card.locator('[data-player]').evaluate((v) => v.getVideoPlaybackQuality().totalVideoFrames));
  }
  op.note = await card.locator('[data-realtime-note]').textContent();
  op.button = await card.locator('[data-realtime]').textContent();
  op.webrtcFact = await card.locator('.webrtc').textContent();
  await card.locator('[data-realtime]').click(); // back to HLS: DELETEs the session
  await page.waitForTimeout(500);
}, 120);
