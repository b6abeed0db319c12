// codecs.mjs plays a live HLS stream with hls.js in Debian's chromium and
// prints, as one JSON line on stdout, what says whether its codecs played:
// the codecs hls.js handed to MSE, MSE's answer for the types given, the
// picture size, decoded frame and byte counts, and hls.js's errors.
//
//   node codecs.mjs PLAYLIST_URL SECONDS [MIME_TYPE ...]
//
// Each MIME_TYPE (e.g. 'video/mp4; codecs="av01.0.00M.08,opus"') is asked of
// MediaSource.isTypeSupported. Like play.mjs it judges nothing and exits 0
// whenever it printed its line: the Go test (cmd/fount/codecs_browser_test.go)
// decides. hls.js comes from node_modules through a small server of our own
// on 127.0.0.1; the browser is the system's chromium (playwright-core never
// downloads one).

import { harness } from './harness.mjs';


const [url, secondsArg, ...types] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!url || !(seconds > 0)) {
  process.stderr.write('usage: node codecs.mjs PLAYLIST_URL SECONDS [MIME_TYPE ...]\n');
  process.exit(2);
}

const result = { url, seconds, harnessError: '', browserVersion: '', console: [] };

const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount codecs test</title></head>
<body>
<video id="v" muted playsinline autoplay width="640" height="360"></video>
<script src="/hls.min.js"></script>
<script>
window.start = function (url, types) {
  const video = document.getElementById('v');
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0) / 1000;
  const s = {
    hlsVersion: Hls.version,
    hlsSupported: Hls.isSupported(),
    mse: {},
    bufferCodecs: {},   // kind -> codec string hls.js gave MSE
    errors: [],
    playingAt: null,
    currentTimeStart: null,
  };
  for (const t of types) s.mse[t] = typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported(t);
  window.stats = s;
  if (!s.hlsSupported) return s;
  const hls = new Hls({ lowLatencyMode: true });
  window.hls = hls;
  hls.on(Hls.Events.BUFFER_CODECS, (_, d) => {
    for (const k of Object.keys(d)) {
      if (d[k] && d[k].codec) s.bufferCodecs[k] = d[k].codec;
    }
  });
  hls.on(Hls.Events.ERROR, (_, d) => {
    s.errors.push({
      at: now(), type: d.type, details: d.details, fatal: !!d.fatal,
      reason: d.reason || (d.error && String(d.error.message || d.error)) || '',
      url: (d.frag && d.frag.url) || (d.context && d.context.url) || d.url || '',
    });
  });
  video.addEventListener('playing', () => {
    if (s.playingAt === null) {
      s.playingAt = now();
      s.currentTimeStart = video.currentTime;
    }
  });
  video.addEventListener('error', () => {
    const e = video.error;
    s.errors.push({ at: now(), type: 'video element', details: String(e && e.message), fatal: true });
  });
  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch((e) => s.errors.push({ at: now(), type: 'play()', details: String(e), fatal: true }));
  return { hlsSupported: s.hlsSupported };
};

window.finish = function () {
  const s = window.stats;
  const video = document.getElementById('v');
  s.advance = s.currentTimeStart === null ? 0 : video.currentTime - s.currentTimeStart;
  s.videoWidth = video.videoWidth;
  s.videoHeight = video.videoHeight;
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
  s.totalVideoFrames = q.totalVideoFrames || 0;
  s.droppedVideoFrames = q.droppedVideoFrames || 0;
  s.audioDecodedBytes = video.webkitAudioDecodedByteCount || 0;
  s.videoDecodedBytes = video.webkitVideoDecodedByteCount || 0;
  s.audioTracks = window.hls ? window.hls.audioTracks.length : 0;
  if (window.hls) window.hls.destroy();
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
  const started = await page.evaluate(([u, t]) => window.start(u, t), [url, types]);
  if (!started.hlsSupported) {
    result.harnessError = 'hls.js says this browser cannot play HLS (no MSE?)';
    return;
  }
  await page.waitForTimeout(seconds * 1000);
  Object.assign(result, await page.evaluate(() => window.finish()));
}

await h.run(main, seconds + 40);
