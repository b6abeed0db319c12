// play.mjs plays a live HLS stream with hls.js in Debian's chromium and
// prints what a viewer would have seen as one JSON line on stdout.
//
//   node play.mjs PLAYLIST_URL SECONDS LOW_LATENCY(true|false)
//
// It judges nothing and exits 0 whenever it printed its line: the Go test
// (cmd/fount/browser_test.go) reads the figures and decides. A problem of
// the harness itself (no browser, no hls.js, hard time-out) is reported in
// the line's "harnessError" field.
//
// hls.js is served from node_modules by a small HTTP server of our own on
// 127.0.0.1, so the page needs nothing from outside this machine, and the
// browser is the system's chromium: playwright-core never downloads one.

import { harness } from './harness.mjs';


const [url, secondsArg, llArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!url || !(seconds > 0) || !['true', 'false'].includes(llArg)) {
  process.stderr.write('usage: node play.mjs PLAYLIST_URL SECONDS true|false\n');
  process.exit(2);
}
const lowLatency = llArg === 'true';

// What the line holds when the page never reports (launch failure,
// time-out); the page's own report replaces most of it.
const result = {
  url,
  seconds,
  lowLatency,
  harnessError: '',
  browserVersion: '',
  console: [],
};

const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount hls.js test</title></head>
<body>
<video id="v" muted playsinline autoplay width="640" height="360"></video>
<script src="/hls.min.js"></script>
<script>
// All times are seconds since start() (performance.now based).
window.start = function (url, lowLatency) {
  const video = document.getElementById('v');
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0) / 1000;
  const s = {
    hlsVersion: Hls.version,
    hlsSupported: Hls.isSupported(),
    mseH264AAC: typeof MediaSource !== 'undefined' &&
      MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"'),
    errors: [],
    stalls: [],
    seeks: [],
    playingAt: null,       // first 'playing' event
    currentTimeStart: null,
    latencySamples: [],    // hls.latency once a second after playback started
    targetLatency: null,
    videoErrors: [],
  };
  window.stats = s;
  if (!s.hlsSupported) return s;
  // Every request's protocol (h2, http/1.1) from resource timing: room
  // for all of them, not the default 250 entries.
  performance.setResourceTimingBufferSize(100000);

  const hls = new Hls({ lowLatencyMode: lowLatency });
  window.hls = hls;
  hls.on(Hls.Events.ERROR, (_, d) => {
    s.errors.push({
      at: now(), type: d.type, details: d.details, fatal: !!d.fatal,
      reason: d.reason || (d.error && String(d.error.message || d.error)) || '',
      url: (d.frag && d.frag.url) || (d.context && d.context.url) || d.url || '',
      httpStatus: (d.response && d.response.code) || null,
    });
    if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR && s.playingAt !== null) {
      s.stalls.push({ at: now(), kind: 'hls.js ' + d.details, currentTime: video.currentTime });
    }
  });
  video.addEventListener('playing', () => {
    if (s.playingAt === null) {
      s.playingAt = now();
      s.currentTimeStart = video.currentTime;
    }
  });
  video.addEventListener('waiting', () => {
    if (s.playingAt !== null) {
      s.stalls.push({ at: now(), kind: 'video waiting', currentTime: video.currentTime });
    }
  });
  video.addEventListener('seeking', () => {
    if (s.playingAt !== null) s.seeks.push({ at: now(), to: video.currentTime });
  });
  video.addEventListener('error', () => {
    const e = video.error;
    s.videoErrors.push({ at: now(), code: e && e.code, message: e && e.message });
  });
  setInterval(() => {
    if (s.playingAt === null) return;
    s.latencySamples.push(hls.latency);
    s.targetLatency = hls.targetLatency;
  }, 1000);

  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch((e) => s.errors.push({ at: now(), type: 'play()', details: String(e), fatal: true }));
  return { hlsVersion: s.hlsVersion, hlsSupported: s.hlsSupported, mseH264AAC: s.mseH264AAC };
};

window.finish = function () {
  const s = window.stats;
  const video = document.getElementById('v');
  s.currentTimeEnd = video.currentTime;
  s.advance = s.currentTimeStart === null ? 0 : video.currentTime - s.currentTimeStart;
  let played = 0;
  for (let i = 0; i < video.played.length; i++) played += video.played.end(i) - video.played.start(i);
  s.played = played;
  s.paused = video.paused;
  s.readyState = video.readyState;
  s.protocols = {};
  for (const e of performance.getEntriesByType('resource')) {
    if (!e.name.includes('.m3u8') && !e.name.includes('.m4s') && !e.name.includes('.ts') &&
        !e.name.includes('.mp4') && !e.name.includes('.key')) continue;
    if (e.name.includes('.key')) s.keys = (s.keys || 0) + 1;
    const p = e.nextHopProtocol || '(none)';
    s.protocols[p] = (s.protocols[p] || 0) + 1;
  }
  if (window.hls) {
    s.targetLatency = window.hls.targetLatency;
    s.latencyAtEnd = window.hls.latency;
    window.hls.destroy();
  }
  return s;
};
</script>
</body></html>
`;

function summarize(page) {
  Object.assign(result, page);
  const lat = (page.latencySamples || []).filter((x) => Number.isFinite(x) && x > 0);
  const sorted = [...lat].sort((a, b) => a - b);
  result.latency = {
    samples: lat.length,
    min: sorted.length ? sorted[0] : 0,
    median: sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : 0,
    last: lat.length ? lat[lat.length - 1] : 0,
  };
  result.latencySamples = lat.map((x) => Math.round(x * 1000) / 1000);
}

async function main() {
  const pageURL = await h.serve(PAGE, { '/hls.min.js': 'node_modules/hls.js/dist/hls.min.js' });
  const page = await h.launch();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') result.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  await page.goto(pageURL, { timeout: 15000 });
  const started = await page.evaluate(([u, ll]) => window.start(u, ll), [url, lowLatency]);
  if (!started.hlsSupported) {
    Object.assign(result, started);
    result.harnessError = 'hls.js says this browser cannot play HLS (no MSE?)';
    return;
  }
  await page.waitForTimeout(seconds * 1000);
  summarize(await page.evaluate(() => window.finish()));
}

await h.run(main, seconds + 40);
