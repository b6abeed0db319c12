// abr.mjs plays a live multivariant HLS stream in Debian's chromium with
// hls.js or Shaka Player, throttles the page's network through the Chrome
// DevTools Protocol, lifts the throttle again, and prints as one JSON line
// on stdout which renditions the player saw and which it played when.
//
//   node abr.mjs MULTIVARIANT_URL hlsjs|shaka [THROTTLE_BPS [TOP_WAIT_S DOWN_WAIT_S UP_WAIT_S [LOW_LATENCY]]]
//
// The procedure, each phase ending as soon as its condition holds:
//   1. play unthrottled until the played rendition is the top one (the
//      highest BANDWIDTH), for at most TOP_WAIT_S (default 20);
//   2. throttle downloads (and uploads) to THROTTLE_BPS (default 1.5e6)
//      and wait, at most DOWN_WAIT_S (default 25), until the played
//      rendition's BANDWIDTH is below THROTTLE_BPS;
//   3. lift the throttle and wait, at most UP_WAIT_S (default 35), until
//      the played rendition's BANDWIDTH is above THROTTLE_BPS again;
//   4. play on until the video element shows the rendition played, for at
//      least 3 s and at most 13 s.
// "Played" is the player's own notion: hls.js's LEVEL_SWITCHED (fired when
// the playhead enters a fragment of another level), Shaka's active variant
// (what it streams; it changes with its 'adaptation' event). The video
// element's own size changes ('resize') are reported beside them, as what
// was displayed.
//
// Like play.mjs it judges nothing and exits 0 whenever it printed its line:
// the Go test (cmd/fount/abr_browser_test.go) decides; the waits above are
// a little longer than the test's bounds so that an overshoot is measured,
// not only noticed. hls.js and Shaka come from node_modules through a small
// server of our own on 127.0.0.1; the browser is the system's chromium
// (playwright-core never downloads one). Harness problems go in the line's
// "harnessError" field.
//
// Player configuration: defaults, except
//   - low-latency mode as LOW_LATENCY says (default false: hls.js's
//     lowLatencyMode, on by default, off; Shaka's streaming.lowLatencyMode
//     off as by default);
//   - Shaka: abr.useNetworkInformation off. With it on (the default),
//     Shaka throws its measurements away whenever navigator.connection
//     changes, which DevTools throttling does (downlink becomes the
//     throttle: see "connection" in the report), and then goes by that
//     downlink until it has sampled 128 kB again: its switch down would
//     follow the emulated Network Information, not the downloads. Off, it
//     estimates from the segments it downloads, as hls.js does.
// No other ABR knob is set: both switched within the bounds with their
// defaults (Shaka's abr.switchInterval, 8 s, sets the pace of its switches).

import { harness } from './harness.mjs';


const args = process.argv.slice(2);
const [url, player] = args;
const throttleBps = Number(args[2] || 1.5e6);
const topWait = Number(args[3] || 20);
const downWait = Number(args[4] || 25);
const upWait = Number(args[5] || 35);
const lowLatency = args[6] === 'true';
const AFTER = 3; // s of playback at least after the way back up
// FAST_BPS is the network before the throttle and after it is lifted: a
// good viewer's line rather than loopback's unbounded speed, from which
// Shaka's bandwidth estimate (an EWMA seeded at ~200 Mbit/s by the first
// loopback downloads) took 24-32 s to come down to 1.5 Mbit/s.
const FAST_BPS = 10e6;
if (!url || !['hlsjs', 'shaka'].includes(player) || !(throttleBps > 0) ||
    !(topWait > 0) || !(downWait > 0) || !(upWait > 0) || !['true', 'false', undefined].includes(args[6])) {
  process.stderr.write('usage: node abr.mjs MULTIVARIANT_URL hlsjs|shaka [THROTTLE_BPS [TOP_WAIT_S DOWN_WAIT_S UP_WAIT_S [LOW_LATENCY]]]\n');
  process.exit(2);
}

// All times are seconds since the page's start() (performance.now based).
const result = {
  url,
  player,
  throttleBps,
  lowLatency,
  waits: { top: topWait, down: downWait, up: upWait },
  harnessError: '',
  browserVersion: '',
  playerVersion: '',
  levels: [],          // [{id, width, height, bandwidth, averageBandwidth}] in the player's order
  playingAt: null,     // first 'playing'
  topAt: null,         // the played rendition first the top one
  throttledAt: null,   // the throttle set (CDP call returned)
  levelAtThrottle: null,
  downAt: null,        // first played rendition below throttleBps after throttledAt
  unthrottledAt: null, // the throttle lifted
  levelAtUnthrottle: null,
  upAt: null,          // first played rendition above throttleBps after unthrottledAt
  endAt: null,
  switchDown: null,    // downAt - throttledAt
  switchUp: null,      // upAt - unthrottledAt
  displayedDownAt: null, // the video element first showing a rendition below throttleBps after throttledAt
  displayedUpAt: null,   // ... above throttleBps after unthrottledAt (by height: see below)
  played: [],          // [{at, id, width, height, bandwidth}] the played rendition, on each change
  decided: [],         // same, for the player's decision to load another rendition
  displayed: [],       // [{at, width, height}] the video element's size, on each change
  estimates: [],       // [{at, bps}] the player's bandwidth estimate, once a second
  connection: {},      // navigator.connection.downlink (Mbit/s) before, throttled, after
  errors: [],          // [{at, fatal, type, details, reason, url}]
  httpErrors: [],      // [{at, status, url}] responses >= 400 the page received
  stalls: [],          // [{at, currentTime}] 'waiting' after playback started
  videoErrors: [],
  advance: 0,          // currentTime at the end minus at the first 'playing'
  wall: 0,             // s from the first 'playing' to the end
  advanceAfterUnthrottle: 0,
  droppedFrames: 0,
  totalFrames: 0,
  console: [],
};

const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount ABR test</title></head>
<body>
<video id="v" muted playsinline autoplay width="640" height="360"></video>
<script src="/player.js"></script>
<script>
const t0 = performance.now();
window.now = () => Math.round(performance.now() - t0) / 1000;
const video = document.getElementById('v');
const s = {
  playerVersion: '', supported: false, levels: [], played: [], decided: [], displayed: [],
  estimates: [], errors: [], stalls: [], videoErrors: [],
  playingAt: null, currentTimeStart: null,
};
window.stats = s;
let current = null; // the played rendition {id, width, height, bandwidth}

function push(list, l) {
  const last = list[list.length - 1];
  if (l && (!last || last.id !== l.id)) list.push({ at: now(), ...l });
}
video.addEventListener('playing', () => {
  if (s.playingAt === null) { s.playingAt = now(); s.currentTimeStart = video.currentTime; }
});
video.addEventListener('waiting', () => {
  if (s.playingAt !== null) s.stalls.push({ at: now(), currentTime: video.currentTime });
});
video.addEventListener('resize', () => {
  s.displayed.push({ at: now(), width: video.videoWidth, height: video.videoHeight });
});
video.addEventListener('error', () => {
  const e = video.error;
  s.videoErrors.push({ at: now(), code: e && e.code, message: e && e.message });
});

window.startHlsjs = function (url, lowLatency) {
  s.playerVersion = Hls.version;
  s.supported = Hls.isSupported();
  if (!s.supported) return s.supported;
  const hls = new Hls({ lowLatencyMode: lowLatency });
  window.hls = hls;
  const level = (i) => {
    const l = hls.levels[i];
    if (!l) return null;
    return {
      id: i, width: l.width, height: l.height,
      bandwidth: Number(l.attrs && l.attrs.BANDWIDTH) || l.maxBitrate || l.bitrate,
      averageBandwidth: Number(l.attrs && l.attrs['AVERAGE-BANDWIDTH']) || null,
    };
  };
  hls.on(Hls.Events.MANIFEST_PARSED, () => { s.levels = hls.levels.map((_, i) => level(i)); });
  hls.on(Hls.Events.LEVEL_SWITCHING, (_, d) => push(s.decided, level(d.level)));
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => { current = level(d.level); push(s.played, current); });
  hls.on(Hls.Events.ERROR, (_, d) => {
    s.errors.push({
      at: now(), fatal: !!d.fatal, type: d.type, details: d.details,
      reason: d.reason || (d.error && String(d.error.message || d.error)) || '',
      url: (d.frag && d.frag.url) || (d.context && d.context.url) || d.url || '',
    });
  });
  setInterval(() => s.estimates.push({ at: now(), bps: Math.round(hls.bandwidthEstimate) }), 1000);
  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch((e) => s.errors.push({ at: now(), fatal: true, type: 'play()', details: String(e) }));
  return s.supported;
};

window.startShaka = async function (url, lowLatency) {
  shaka.polyfill.installAll();
  s.playerVersion = shaka.Player.version;
  s.supported = shaka.Player.isBrowserSupported();
  if (!s.supported) return s.supported;
  const player = new shaka.Player();
  window.player = player;
  await player.attach(video);
  player.configure({ abr: { useNetworkInformation: false }, streaming: { lowLatencyMode: lowLatency } });
  const track = (t) => t && {
    id: t.id, width: t.width, height: t.height, bandwidth: t.bandwidth,
    videoBandwidth: t.videoBandwidth || null,
  };
  const active = () => track(player.getVariantTracks().find((t) => t.active));
  const poll = () => {
    const a = active();
    if (a) { current = a; push(s.played, a); }
  };
  player.addEventListener('adaptation', (e) => { push(s.decided, track(e.newTrack) || active()); poll(); });
  player.addEventListener('variantchanged', poll);
  player.addEventListener('trackschanged', () => {
    s.levels = player.getVariantTracks().map(track);
  });
  player.addEventListener('error', (e) => {
    const d = e.detail || {};
    s.errors.push({
      at: now(), fatal: d.severity === shaka.util.Error.Severity.CRITICAL,
      type: 'shaka category ' + d.category, details: 'code ' + d.code,
      reason: JSON.stringify(d.data || []).slice(0, 300),
      url: d.code === 1001 && d.data ? String(d.data[0]) : '',
    });
  });
  setInterval(() => {
    poll();
    s.estimates.push({ at: now(), bps: Math.round(player.getStats().estimatedBandwidth) });
  }, 250);
  try {
    await player.load(url);
  } catch (e) {
    s.errors.push({ at: now(), fatal: true, type: 'load()', details: 'code ' + (e && e.code), reason: String(e && (e.message || e)) });
    return s.supported;
  }
  s.levels = player.getVariantTracks().map(track);
  poll();
  video.play().catch((e) => s.errors.push({ at: now(), fatal: true, type: 'play()', details: String(e) }));
  return s.supported;
};

window.snapshot = function () {
  return {
    at: now(), current, playingAt: s.playingAt, levels: s.levels,
    fatal: s.errors.some((e) => e.fatal) || s.videoErrors.length > 0,
    currentTime: video.currentTime,
    videoHeight: video.videoHeight,
    downlink: navigator.connection ? navigator.connection.downlink : null,
  };
};

window.finish = function () {
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
  s.totalFrames = q.totalVideoFrames || 0;
  s.droppedFrames = q.droppedVideoFrames || 0;
  s.currentTimeEnd = video.currentTime;
  s.advance = s.currentTimeStart === null ? 0 : video.currentTime - s.currentTimeStart;
  s.paused = video.paused;
  s.endAt = now();
  if (window.hls) window.hls.destroy();
  if (window.player) window.player.destroy();
  return s;
};
</script>
</body></html>
`;

const PLAYER_JS = {
  hlsjs: 'node_modules/hls.js/dist/hls.min.js',
  shaka: 'node_modules/shaka-player/dist/shaka-player.compiled.js',
}[player];

const hardLimit = topWait + downWait + upWait + AFTER + 45;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// waitFor polls the page until cond(snapshot) holds, a fatal error shows,
// or seconds pass; it returns the last snapshot.
async function waitFor(page, seconds, cond) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const snap = await page.evaluate(() => window.snapshot());
    if (snap.fatal || cond(snap) || Date.now() >= deadline) return snap;
    await sleep(200);
  }
}

async function main() {
  const pageURL = await h.serve(PAGE, { '/player.js': PLAYER_JS });
  const page = await h.launch();
  page.on('console', (m) => {
    if ((m.type() === 'error' || m.type() === 'warning') && result.console.length < 50) {
      result.console.push(`${m.type()}: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  let pageT0 = null; // Date.now() at the page's t0
  page.on('response', (r) => {
    if (r.status() >= 400 && result.httpErrors.length < 50) {
      const at = pageT0 === null ? null : Math.round(Date.now() - pageT0) / 1000;
      result.httpErrors.push({ at, status: r.status(), url: r.url() });
    }
  });
  await page.goto(pageURL, { timeout: 15000 });
  pageT0 = Date.now() - 1000 * (await page.evaluate(() => window.now()));
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const throttle = (bps) => cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0,
    downloadThroughput: bps > 0 ? bps / 8 : -1,
    uploadThroughput: bps > 0 ? bps / 8 : -1,
  });
  await throttle(FAST_BPS);

  const ok = await page.evaluate(([u, ll]) => (window.Hls ? window.startHlsjs(u, ll) : window.startShaka(u, ll)), [url, lowLatency]);
  if (!ok) {
    result.harnessError = `${player} says this browser cannot play HLS (no MSE?)`;
    return;
  }
  // The top rendition: the highest BANDWIDTH the player lists.
  const top = (snap) => Math.max(...snap.levels.map((l) => l.bandwidth));
  const bw = (snap) => (snap.current ? snap.current.bandwidth : NaN);

  // 1. Unthrottled, until the top rendition plays.
  let snap = await waitFor(page, topWait, (x) => x.playingAt !== null && x.levels.length > 0 && bw(x) >= top(x));
  result.connection.before = snap.downlink;
  if (snap.playingAt !== null && snap.levels.length > 0 && bw(snap) >= top(snap)) result.topAt = snap.at;
  if (snap.fatal) return;

  // 2. Throttled, until a rendition below the throttle plays.
  await throttle(throttleBps);
  result.throttledAt = await page.evaluate(() => window.now());
  result.levelAtThrottle = snap.current;
  snap = await waitFor(page, downWait, (x) => bw(x) < throttleBps);
  result.connection.throttled = snap.downlink;
  if (bw(snap) < throttleBps) result.downAt = snap.at;
  if (snap.fatal) return;

  // 3. Unthrottled, until a rendition above the throttle plays again.
  await throttle(FAST_BPS);
  result.unthrottledAt = await page.evaluate(() => window.now());
  result.levelAtUnthrottle = snap.current;
  snap = await waitFor(page, upWait, (x) => bw(x) > throttleBps);
  result.connection.after = snap.downlink;
  if (bw(snap) > throttleBps) result.upAt = snap.at;
  if (snap.fatal) return;
  const ctUp = snap.currentTime;

  // 4. Playback until the video element shows the rendition played (Shaka
  // switches what it streams, the picture follows once the buffer ahead
  // has played out), for at least AFTER and at most AFTER + 10 s.
  const upAt = snap.at;
  snap = await waitFor(page, AFTER + 10, (x) => x.at - upAt >= AFTER && x.current && x.videoHeight === x.current.height);
  result.advanceAfterUnthrottle = snap.currentTime - ctUp;
}

// finish reads what the page recorded and derives the switch times.
async function finish() {
  try {
    const page = h.context() && h.context().pages()[0];
    if (page) {
      const s = await page.evaluate(() => window.finish());
      for (const k of ['playerVersion', 'levels', 'played', 'decided', 'displayed', 'estimates', 'errors',
        'stalls', 'videoErrors', 'playingAt', 'advance', 'droppedFrames', 'totalFrames', 'endAt']) {
        result[k] = s[k];
      }
      if (s.playingAt !== null) result.wall = s.endAt - s.playingAt;
    }
  } catch (e) {
    if (!result.harnessError) result.harnessError = 'finish: ' + String((e && e.message) || e);
  }
  // Samples snapshot() took (downAt, upAt) are up to 0.2 s late; the
  // played list has the exact times of the same changes.
  const firstPlayed = (after, cond) => {
    const p = (result.played || []).find((x) => x.at >= after && cond(x));
    return p ? p.at : null;
  };
  if (result.downAt !== null) result.downAt = firstPlayed(result.throttledAt, (x) => x.bandwidth < throttleBps) ?? result.downAt;
  if (result.upAt !== null) result.upAt = firstPlayed(result.unthrottledAt, (x) => x.bandwidth > throttleBps) ?? result.upAt;
  // What the picture showed, by its height: a height is taken as below the
  // throttle when every rendition of that height is (and above it when any is).
  const shown = (after, cond) => {
    if (after === null) return null;
    const d = (result.displayed || []).find((x) => x.at >= after &&
      cond((result.levels || []).filter((l) => l.height === x.height).map((l) => l.bandwidth)));
    return d ? d.at : null;
  };
  result.displayedDownAt = shown(result.throttledAt, (b) => b.length > 0 && b.every((x) => x < throttleBps));
  result.displayedUpAt = shown(result.unthrottledAt, (b) => b.some((x) => x > throttleBps));
  if (result.downAt !== null) result.switchDown = Math.round((result.downAt - result.throttledAt) * 1000) / 1000;
  if (result.upAt !== null) result.switchUp = Math.round((result.upAt - result.unthrottledAt) * 1000) / 1000;
}

await h.run(main, hardLimit, finish);
