// glass.mjs plays a live HLS stream whose frames carry their send time
// (fount-bench glass draws it) with hls.js in Debian's chromium, and on
// every presented frame reads the time back: glass-to-glass latency.
//
//   node glass.mjs PLAYLIST_URL SECONDS [HLS_CONFIG_JSON]
//
// A URL ending in /whep is played over WebRTC (WHEP: a recvonly offer
// POSTed there, docs/webrtc.md) instead of with hls.js; the frames are
// read back the same way.
//
// SECONDS counts from the first presented frame. The config defaults to
// {} (hls.js defaults: lowLatencyMode on); a logger that records hls.js's
// warnings and errors is added to it, which changes nothing of playback.
// It prints one JSON line and judges nothing: fount-bench reads it.
//
// The stamp (cmd/fount-bench/stamp.go): the top of the picture is 4 rows
// of 16 square blocks of width/16 pixels, white for 1 and black for 0, read
// left to right, top to bottom: 48 bits of Unix ms, then 16 check bits
// (the three 16-bit words of the time XORed together and with 0xA5A5).

import { harness } from './harness.mjs';

const [url, secondsArg, configArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
let hlsConfig = {};
try {
  hlsConfig = JSON.parse(configArg || '{}');
} catch (e) {
  hlsConfig = null;
}
if (!url || !(seconds > 0) || hlsConfig === null || typeof hlsConfig !== 'object') {
  process.stderr.write('usage: node glass.mjs PLAYLIST_URL SECONDS [HLS_CONFIG_JSON]\n');
  process.exit(2);
}

const result = { url, seconds, harnessError: '', browserVersion: '', console: [] };
const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount glass-to-glass</title></head>
<body>
<video id="v" muted playsinline autoplay></video>
<canvas id="c"></canvas>
<script src="/hls.min.js"></script>
<script>
// Times in the report are seconds since start() (performance.now based).
window.start = function (url, config) {
  const video = document.getElementById('v');
  const canvas = document.getElementById('c');
  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const s = {
    hlsVersion: Hls.version, firstFrameAt: null, samples: [], undecoded: 0,
    stalls: [], events: [], ticks: [], logs: [], config,
    gaps: [], rtc: [],
  };
  window.stats = s;
  const note = (kind, details, fatal, text) => {
    if (s.events.length < 500) s.events.push({ at: now(), kind, details, fatal: !!fatal, text: String(text).slice(0, 300) });
  };
  const args = (a) => a.map((x) => (typeof x === 'string' ? x : (x && x.message) || JSON.stringify(x))).join(' ');
  const logger = {
    // The first 400 log lines, for reading how hls.js started.
    debug() {}, info() {},
    log(...a) { if (s.logs.length < 400) s.logs.push(now().toFixed(3) + ' ' + args(a).slice(0, 400)); },
    warn(...a) { note('warn', '', false, args(a)); },
    error(...a) { note('error', '', false, args(a)); },
  };
  const whep = new URL(url).pathname.endsWith("/whep");
  const hls = whep ? null : new Hls(Object.assign({}, config, { debug: logger }));
  window.hls = hls;
  if (hls) hls.on(Hls.Events.ERROR, (_, d) => {
    note('hls.js ERROR', d.details, d.fatal, d.reason || (d.error && d.error.message) || (d.frag && d.frag.url) || '');
    if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR && s.firstFrameAt !== null) {
      s.stalls.push({ at: now(), kind: 'hls.js bufferStalledError', duration: 0 });
    }
  });

  // A 'waiting' stall lasts until the next presented frame.
  let waitingSince = null;
  video.addEventListener('waiting', () => {
    if (s.firstFrameAt !== null && waitingSince === null) waitingSince = now();
  });

  let ctx = null;
  const W = 640;
  const decode = () => {
    const vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) return null;
    const b = vw / 16;                 // block side in the picture
    const scale = W / vw;              // canvas is W wide
    const ch = Math.ceil(4 * b * scale);
    if (!ctx || canvas.width !== W || canvas.height !== ch) {
      canvas.width = W; canvas.height = ch;
      ctx = canvas.getContext('2d', { willReadFrequently: true });
    }
    ctx.drawImage(video, 0, 0, vw, 4 * b, 0, 0, W, ch);
    const img = ctx.getImageData(0, 0, W, ch).data;
    const cb = b * scale;
    const bits = [];
    for (let i = 0; i < 64; i++) {
      const x0 = Math.floor((i % 16) * cb + cb / 4), y0 = Math.floor(Math.floor(i / 16) * cb + cb / 4);
      const n = Math.max(1, Math.floor(cb / 2));
      let sum = 0;
      for (let y = y0; y < y0 + n; y++) for (let x = x0; x < x0 + n; x++) sum += img[(y * W + x) * 4];
      bits.push(sum / (n * n) >= 128 ? 1 : 0);
    }
    const word = (from) => bits.slice(from, from + 16).reduce((a, v) => a * 2 + v, 0);
    const w0 = word(0), w1 = word(16), w2 = word(32), chk = word(48);
    if (((w0 ^ w1 ^ w2 ^ 0xA5A5) & 0xffff) !== chk) return null;
    return w0 * 2 ** 32 + w1 * 2 ** 16 + w2;
  };

  // Gaps between presented frames (decoded stamp or not) over 100 ms:
  // a freeze as the viewer sees it, whatever the player.
  let lastPresented = null;
  const onFrame = (_, md) => {
    const at = now();
    if (lastPresented !== null && at - lastPresented > 0.1 && s.gaps.length < 1000) {
      s.gaps.push({ at: lastPresented, gap: Math.round((at - lastPresented) * 1000) / 1000 });
    }
    lastPresented = at;
    const t = decode();
    const lat = t === null ? null : Date.now() - t;
    if (lat === null) s.undecoded++;
    else {
      if (s.firstFrameAt === null) s.firstFrameAt = at;
      s.samples.push([Math.round((at - s.firstFrameAt) * 1000) / 1000, lat, Math.round(md.mediaTime * 1000) / 1000, t]);
    }
    if (waitingSince !== null) {
      s.stalls.push({ at: waitingSince, kind: 'video waiting', duration: Math.round((at - waitingSince) * 1000) / 1000 });
      waitingSince = null;
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);

  setInterval(() => {
    if (s.firstFrameAt === null || !hls) return;
    const ct = video.currentTime;
    let ahead = 0;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= ct + 0.05 && video.buffered.end(i) > ct) ahead = video.buffered.end(i) - ct;
    }
    const pd = hls.playingDate;
    s.ticks.push({
      at: now(), hlsLatency: hls.latency, targetLatency: hls.targetLatency, buffer: ahead,
      rate: video.playbackRate, pdtLag: pd ? Date.now() - pd.getTime() : 0,
    });
  }, 1000);

  if (whep) {
    s.hlsVersion = 'WHEP';
    const pc = window.pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (e) => { video.srcObject = new MediaStream([e.track]); video.play().catch(() => {}); };
    pc.onconnectionstatechange = () => note('webrtc', pc.connectionState, pc.connectionState === 'failed', '');
    // Chromium's own account of the video, once a second: its freezes
    // (a frame late by over max(3 frame intervals, 150 ms) beyond the
    // average, per the webrtc-stats spec) and pauses.
    setInterval(async () => {
      if (s.firstFrameAt === null || s.rtc.length >= 2000) return;
      const at = now();
      (await pc.getStats()).forEach((r) => {
        if (r.type !== 'inbound-rtp' || r.kind !== 'video') return;
        s.rtc.push({
          at, freezeCount: r.freezeCount || 0, totalFreezesDuration: r.totalFreezesDuration || 0,
          pauseCount: r.pauseCount || 0, totalPausesDuration: r.totalPausesDuration || 0,
          framesDecoded: r.framesDecoded || 0, framesDropped: r.framesDropped || 0,
          packetsLost: r.packetsLost || 0, nackCount: r.nackCount || 0,
          jitterBufferMs: r.jitterBufferEmittedCount ? Math.round(r.jitterBufferDelay / r.jitterBufferEmittedCount * 1000) : 0,
        });
      });
    }, 1000);
    (async () => {
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((r) => {
        pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
        setTimeout(r, 2000);
      });
      const resp = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
      const body = await resp.text();
      if (resp.status !== 201) { note('whep', String(resp.status), true, body); return; }
      window.whepSession = new URL(resp.headers.get('Location'), url).href;
      await pc.setRemoteDescription({ type: 'answer', sdp: body });
    })().catch((e) => note('whep', String(e), true, ''));
    return { hlsSupported: true };
  }
  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch((e) => note('play()', String(e), true, ''));
  return { hlsSupported: Hls.isSupported() };
};

window.firstFrame = () => window.stats.firstFrameAt;
window.finish = function () {
  const s = window.stats;
  if (window.hls) window.hls.destroy();
  if (window.pc) {
    window.pc.close();
    if (window.whepSession) fetch(window.whepSession, { method: 'DELETE' }).catch(() => {});
  }
  return s;
};
</script>
</body></html>
`;

async function main() {
  const pageURL = await h.serve(PAGE, { '/hls.min.js': 'node_modules/hls.js/dist/hls.min.js' });
  const page = await h.launch();
  page.on('console', (m) => {
    if (m.type() === 'error') result.console.push(`${m.type()}: ${m.text()}`.slice(0, 300));
  });
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  await page.goto(pageURL, { timeout: 15000 });
  const started = await page.evaluate(([u, c]) => window.start(u, c), [url, hlsConfig]);
  if (!started.hlsSupported) {
    result.harnessError = 'hls.js says this browser cannot play HLS (no MSE?)';
    return;
  }
  await page.waitForFunction(() => window.firstFrame() !== null, null, { timeout: 30000, polling: 100 });
  await page.waitForTimeout(seconds * 1000);
  Object.assign(result, await page.evaluate(() => window.finish()));
}

await h.run(main, seconds + 60);
