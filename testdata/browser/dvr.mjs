// dvr.mjs plays a live HLS stream with a DVR window with hls.js in Debian's
// chromium, seeks BACK seconds behind the live edge once playing, and
// prints what it saw as one JSON line on stdout.
//
//   node dvr.mjs PLAYLIST_URL BACK_SECONDS
//
// Like play.mjs it judges nothing: cmd/fount/dvr_e2e_test.go decides.

import { harness } from './harness.mjs';

const [url, backArg] = process.argv.slice(2);
const back = Number(backArg);
if (!url || !(back > 0)) {
  process.stderr.write('usage: node dvr.mjs PLAYLIST_URL BACK_SECONDS\n');
  process.exit(2);
}

const result = { url, back, harnessError: '', browserVersion: '', console: [] };
const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount DVR test</title></head>
<body>
<video id="v" muted playsinline autoplay width="640" height="360"></video>
<script src="/hls.min.js"></script>
<script>
const frames = (v) => (v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0);
window.start = function (url) {
  const video = document.getElementById('v');
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0) / 1000;
  const s = {
    hlsVersion: Hls.version,
    hlsSupported: Hls.isSupported(),
    mseH264AAC: typeof MediaSource !== 'undefined' &&
      MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"'),
    errors: [], videoErrors: [], playingAt: null, fragsLoaded: [],
  };
  window.stats = s;
  if (!s.hlsSupported) return s;
  const hls = new Hls({ lowLatencyMode: false });
  window.hls = hls;
  hls.on(Hls.Events.ERROR, (_, d) => {
    s.errors.push({
      at: now(), type: d.type, details: d.details, fatal: !!d.fatal,
      reason: d.reason || (d.error && String(d.error.message || d.error)) || '',
      url: (d.frag && d.frag.url) || (d.context && d.context.url) || d.url || '',
      httpStatus: (d.response && d.response.code) || null,
    });
  });
  hls.on(Hls.Events.FRAG_LOADED, (_, d) => { s.fragsLoaded.push(d.frag.relurl || d.frag.url); });
  video.addEventListener('playing', () => { if (s.playingAt === null) s.playingAt = now(); });
  video.addEventListener('error', () => {
    const e = video.error;
    s.videoErrors.push({ at: now(), code: e && e.code, message: e && e.message });
  });
  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch((e) => s.errors.push({ at: now(), type: 'play()', details: String(e), fatal: true }));
  return { hlsVersion: s.hlsVersion, hlsSupported: s.hlsSupported, mseH264AAC: s.mseH264AAC };
};
window.playing = () => window.stats.playingAt !== null && document.getElementById('v').currentTime > 0;
// seek goes back seconds behind the live edge and returns where to.
window.seek = function (back) {
  const s = window.stats, video = document.getElementById('v');
  const r = video.seekable;
  s.seekableStart = r.length ? r.start(0) : null;
  s.seekableEnd = r.length ? r.end(r.length - 1) : null;
  s.liveSyncPosition = window.hls.liveSyncPosition;
  s.timeBeforeSeek = video.currentTime;
  const edge = s.seekableEnd;
  s.seekTo = Math.max(edge - back, s.seekableStart);
  s.framesAtSeek = frames(video);
  s.fragsBeforeSeek = s.fragsLoaded.length;
  video.currentTime = s.seekTo;
  return s.seekTo;
};
window.sample = function () {
  const video = document.getElementById('v');
  const d = window.hls.playingDate;
  return { currentTime: video.currentTime, frames: frames(video), paused: video.paused,
    playingDate: d ? d.toISOString() : null };
};
window.finish = function () {
  const s = window.stats;
  s.end = window.sample();
  s.fragsAfterSeek = s.fragsLoaded.slice(s.fragsBeforeSeek || 0);
  delete s.fragsLoaded;
  window.hls.destroy();
  return s;
};
</script>
</body></html>
`;

async function main() {
  const pageURL = await h.serve(PAGE, { '/hls.min.js': 'node_modules/hls.js/dist/hls.min.js' });
  const page = await h.launch();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') result.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  await page.goto(pageURL, { timeout: 15000 });
  const started = await page.evaluate((u) => window.start(u), url);
  if (!started.hlsSupported) {
    Object.assign(result, started);
    result.harnessError = 'hls.js says this browser cannot play HLS (no MSE?)';
    return;
  }
  await page.waitForFunction(() => window.playing(), null, { timeout: 30000, polling: 100 });
  const to = await page.evaluate((b) => window.seek(b), back);
  result.samples = [];
  // Up to 30 s for playback to move 3 s past the seek point.
  for (let i = 0; i < 300; i++) {
    await page.waitForTimeout(100);
    const smp = await page.evaluate(() => window.sample());
    if (i % 10 === 0) result.samples.push(smp);
    if (smp.currentTime >= to + 3) break;
  }
  Object.assign(result, await page.evaluate(() => window.finish()));
}

await h.run(main, 90);
