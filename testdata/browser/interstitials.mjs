// interstitials.mjs plays a live HLS stream with hls.js in Debian's
// chromium and reports, as one JSON line on stdout, what hls.js's
// interstitials support did with the stream's EXT-X-DATERANGE
// (CLASS="com.apple.hls.interstitial"): its interstitial events in order,
// with the page clock and the video's currentTime at each, its errors, and
// how far the primary (live) playback went on after the interstitial.
//
//   node interstitials.mjs SECONDS PLAYLIST_URL
//
// It stops early once the primary stream has played on for 2 s after
// INTERSTITIAL_ENDED, else after SECONDS. It judges nothing and exits 0
// whenever it printed its line: the Go test
// (cmd/fount/interstitials_browser_test.go) decides.

import { harness } from './harness.mjs';

const [secondsArg, url] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!(seconds > 0) || !url) {
  process.stderr.write('usage: node interstitials.mjs SECONDS PLAYLIST_URL\n');
  process.exit(2);
}

const result = { url, harnessError: '', browserVersion: '', console: [] };
const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount interstitials test</title></head>
<body>
<video id="v" muted playsinline autoplay width="640" height="360"></video>
<script src="/hls.min.js"></script>
<script>
window.start = function (url) {
  const video = document.getElementById('v');
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0) / 1000;
  const s = { hlsVersion: Hls.version, supported: Hls.isSupported(), events: [], errors: [],
    playingAt: null, endedAt: null, endedCurrentTime: null, afterEnded: 0 };
  window.state = s;
  if (!s.supported) return s;
  // lowLatencyMode off: the stream is classic HLS; the rest is hls.js's
  // defaults, interstitials support included.
  // hls.js's own log lines about interstitials (and its warnings) are
  // kept, the last 60, for a failure's report.
  s.log = [];
  const keep = (level) => (...a) => {
    const line = a.map(String).join(' ');
    if (level !== 'warn' && level !== 'error' && !/nterstitial|asset/i.test(line)) return;
    s.log.push(now() + ' ' + level + ' ' + line.slice(0, 300));
    if (s.log.length > 60) s.log.shift();
  };
  const debug = { trace: () => {}, debug: keep('debug'), log: keep('log'), info: keep('info'), warn: keep('warn'), error: keep('error') };
  const hls = new Hls({ lowLatencyMode: false, debug });
  window.hls = hls;
  const note = (name, d) => {
    const e = { name, at: now(), currentTime: video.currentTime };
    if (d && d.event) e.id = d.event.identifier;
    if (d && d.asset) e.asset = d.asset.uri;
    if (d && d.events) e.ids = d.events.map((ev) => ev.identifier);
    if (d && d.error) e.error = String(d.error.message || d.error);
    s.events.push(e);
  };
  for (const name of ['INTERSTITIALS_UPDATED', 'INTERSTITIALS_BUFFERED_TO_BOUNDARY', 'INTERSTITIAL_STARTED', 'INTERSTITIAL_ASSET_PLAYER_CREATED',
    'INTERSTITIAL_ASSET_STARTED', 'INTERSTITIAL_ASSET_ENDED', 'INTERSTITIAL_ASSET_ERROR',
    'INTERSTITIAL_ENDED', 'INTERSTITIALS_PRIMARY_RESUMED']) {
    hls.on(Hls.Events[name], (_, d) => {
      // INTERSTITIALS_UPDATED comes with every playlist refresh: only
      // the first that lists an interstitial is kept.
      if (name === 'INTERSTITIALS_UPDATED' && (s.events.some((e) => e.name === name) || !d.events.length)) return;
      note(name, d);
      if (name === 'INTERSTITIAL_ENDED') {
        s.endedAt = now();
        s.endedCurrentTime = video.currentTime;
      }
    });
  }
  hls.on(Hls.Events.ERROR, (_, d) => s.errors.push({ at: now(), type: d.type, details: d.details, fatal: !!d.fatal,
    url: (d.frag && d.frag.url) || (d.context && d.context.url) || '' }));
  video.addEventListener('playing', () => { if (s.playingAt === null) s.playingAt = now(); });
  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch(() => {});
  return s;
};
// poll reports how far playback went on after INTERSTITIAL_ENDED.
window.poll = function () {
  const s = window.state;
  if (s.endedCurrentTime !== null) s.afterEnded = window.hls.media ? window.hls.media.currentTime - s.endedCurrentTime : 0;
  const m = window.hls.interstitialsManager;
  s.playingPrimary = !!m && !!m.playingItem && !m.playingItem.event;
  return s;
};
</script>
</body></html>
`;

async function main() {
  const pageURL = await h.serve(PAGE, { '/hls.min.js': 'node_modules/hls.js/dist/hls.min.js' });
  const page = await h.launch();
  page.on('console', (m) => {
    if (m.type() === 'error') result.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  await page.goto(pageURL, { timeout: 15000 });
  const s = await page.evaluate((u) => window.start(u), url);
  if (!s.supported) {
    result.harnessError = 'hls.js says this browser cannot play HLS (no MSE?)';
    return;
  }
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const st = await page.evaluate(() => window.poll());
    if (st.afterEnded >= 2 && st.playingPrimary) break;
    await page.waitForTimeout(250);
  }
  Object.assign(result, await page.evaluate(() => window.poll()));
}

await h.run(main, seconds + 40);
