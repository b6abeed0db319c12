// players.mjs plays one live (LL-)HLS stream in Debian's chromium with
// several browser players in turn — hls.js, Shaka Player, video.js (its
// VHS engine) — each in a fresh page of one browser, and prints what each
// showed as one JSON line on stdout.
//
//   node players.mjs PLAYLIST_URL SECONDS PLAYER[,PLAYER...]
//
// PLAYER is one of
//   hlsjs          hls.js with lowLatencyMode (its default)
//   shaka          Shaka Player with streaming.lowLatencyMode (its default
//                  in 5.x) and manifest.hls.sequenceMode on: what fount's
//                  LL parts need (docs/players.md says why)
//   shaka-segments the same with sequenceMode off (Shaka's default), to
//                  measure what it does without it
//   videojs        video.js with VHS (its default; llhls on by default)
//   videojs-segments  the same with llhls off: whole segments
//
// For each player: wait (at most 25 s) for the first 'playing' with the
// clock past 0, then watch SECONDS of playback and report
//   - frames: presented frames per second over the watch (of wall clock
//     and of media played), from requestVideoFrameCallback's
//     presentedFrames, decoded and dropped ones from
//     getVideoPlaybackQuality(), and holes: consecutive presented frames
//     more than 1.5 frames (of 30 fps) apart in media time;
//   - the clock: currentTime's advance against the wall clock;
//   - stalls ('waiting' after the first 'playing', and how long until the
//     clock moved again), seeks, the player's
//     errors (fatal or not) and the video element's, and HTTP responses
//     >= 400 (s since the page was opened);
//   - audio and video: Chromium's decoded byte counters of the element
//     advancing over the watch, and the picture's size;
//   - latency behind live, twice a second: (a) "pdt": the wall clock now
//     minus the EXT-X-PROGRAM-DATE-TIME of the frame at currentTime, as the
//     player maps it (hls.js playingDate, Shaka getPlayheadTimeAsDate(),
//     video.js: see below); fount's PDT is the wall clock at which the
//     publish's first segment opened plus media time, so on one machine
//     this is how long after fount received a frame the player shows it;
//     (b) "own": the player's own figure (hls.js latency, Shaka
//     getStats().liveLatency; VHS has none, so for video.js the end of the
//     newest segment or part in its media playlist, as VHS placed it on
//     its timeline, minus currentTime: behind the newest media it knows).
//     VHS's own convertToProgramTime fails on segments played as parts, so
//     its "pdt" maps currentTime through the segment VHS placed it in.
//
// Like the other scripts it judges nothing and exits 0 once it printed its
// line; the Go test (cmd/fount/players_browser_test.go) decides. The
// players come from node_modules through the harness's server on
// 127.0.0.1; the browser is the system's chromium.

import { harness } from './harness.mjs';

const PLAYERS = ['hlsjs', 'shaka', 'shaka-segments', 'videojs', 'videojs-segments'];
const [url, secondsArg, playersArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
const players = (playersArg || '').split(',').filter(Boolean);
if (!url || !(seconds > 0) || players.length === 0 || players.some((p) => !PLAYERS.includes(p))) {
  process.stderr.write(`usage: node players.mjs PLAYLIST_URL SECONDS PLAYER[,PLAYER...] (players: ${PLAYERS.join(' ')})\n`);
  process.exit(2);
}
const START_WAIT = 25; // s for the first frame

const result = {
  url,
  seconds,
  harnessError: '',
  browserVersion: '',
  players: [], // one report per player, in order
};

const h = harness(result);

const SCRIPTS = {
  '/hls.js': 'node_modules/hls.js/dist/hls.min.js',
  '/shaka.js': 'node_modules/shaka-player/dist/shaka-player.compiled.js',
  '/video.js': 'node_modules/video.js/dist/video.min.js',
};

// The page loads the player named in its query string. All times are
// seconds since start() (performance.now based).
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount players test</title></head>
<body>
<video id="v" class="video-js" muted playsinline autoplay width="640" height="360"></video>
<script>
const which = new URLSearchParams(location.search).get('player');
document.write('<script src="' + ({ hlsjs: '/hls.js', shaka: '/shaka.js', 'shaka-segments': '/shaka.js', videojs: '/video.js', 'videojs-segments': '/video.js' })[which] + '"><\\/script>');
</script>
<script>
const t0 = performance.now();
const now = () => Math.round(performance.now() - t0) / 1000;
let video = document.getElementById('v');
const s = {
  player: which, playerVersion: '', config: null,
  errors: [], stalls: [], seeks: [], videoErrors: [],
  playingAt: null, currentTimeAtPlaying: null,
  latency: [], // [{at, pdt, own}]
};
window.stats = s;
let pdtNow = () => null, ownNow = () => null;

function watchVideo(v) {
  v.addEventListener('playing', () => {
    if (s.playingAt === null && v.currentTime > 0) { s.playingAt = now(); s.currentTimeAtPlaying = v.currentTime; }
  });
  v.addEventListener('timeupdate', () => {
    if (s.playingAt === null && v.currentTime > 0 && !v.paused) { s.playingAt = now(); s.currentTimeAtPlaying = v.currentTime; }
  });
  // A stall lasts from 'waiting' until the clock moves again.
  v.addEventListener('waiting', () => {
    if (s.playingAt !== null) s.stalls.push({ at: now(), currentTime: v.currentTime, seconds: null });
  });
  const resumed = () => {
    const st = s.stalls[s.stalls.length - 1];
    if (st && st.seconds === null && !v.paused && v.currentTime > st.currentTime) st.seconds = now() - st.at;
  };
  v.addEventListener('playing', resumed);
  v.addEventListener('timeupdate', resumed);
  v.addEventListener('seeking', () => {
    if (s.playingAt !== null) s.seeks.push({ at: now(), to: v.currentTime });
  });
  v.addEventListener('error', () => {
    const e = v.error;
    s.videoErrors.push({ at: now(), code: e && e.code, message: e && e.message });
  });
  // Presented frames, as the compositor counts them.
  // Holes in the picture: consecutive presented frames more than 1.5
  // frame durations (of 30 fps) apart in media time.
  s.presented = 0;
  s.holes = [];
  let lastMedia = null;
  const onFrame = (_, meta) => {
    s.presented = meta.presentedFrames;
    if (lastMedia !== null && meta.mediaTime - lastMedia > 0.05 && s.holes.length < 100) {
      s.holes.push({ at: now(), from: lastMedia, to: meta.mediaTime });
    }
    lastMedia = meta.mediaTime;
    v.requestVideoFrameCallback(onFrame);
  };
  if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(onFrame);
}

function err(fatal, type, details, reason, url) {
  s.errors.push({ at: now(), fatal: !!fatal, type: String(type), details: String(details), reason: String(reason || '').slice(0, 300), url: url || '' });
}

window.start = async function (url) {
  if (which === 'hlsjs') {
    s.playerVersion = Hls.version;
    if (!Hls.isSupported()) return 'hls.js: not supported';
    s.config = { lowLatencyMode: true };
    const hls = new Hls(s.config);
    window.hls = hls;
    hls.on(Hls.Events.ERROR, (_, d) => err(d.fatal, d.type, d.details,
      d.reason || (d.error && (d.error.message || d.error)), (d.frag && d.frag.url) || (d.context && d.context.url) || ''));
    pdtNow = () => hls.playingDate ? Date.now() - hls.playingDate.getTime() : null;
    ownNow = () => Number.isFinite(hls.latency) ? hls.latency : null;
    watchVideo(video);
    hls.attachMedia(video);
    hls.loadSource(url);
    video.play().catch((e) => err(true, 'play()', e));
    return '';
  }
  if (which === 'shaka' || which === 'shaka-segments') {
    shaka.polyfill.installAll();
    s.playerVersion = shaka.Player.version;
    if (!shaka.Player.isBrowserSupported()) return 'shaka: browser not supported';
    const player = new shaka.Player();
    window.player = player;
    await player.attach(video);
    s.config = {
      streaming: { lowLatencyMode: true },
      manifest: { hls: { sequenceMode: which === 'shaka' } },
    };
    player.configure(s.config);
    player.addEventListener('error', (e) => {
      const d = e.detail || {};
      err(d.severity === shaka.util.Error.Severity.CRITICAL, 'shaka category ' + d.category, 'code ' + d.code,
        JSON.stringify(d.data || []), d.code === 1001 && d.data ? String(d.data[0]) : '');
    });
    pdtNow = () => { const d = player.getPlayheadTimeAsDate(); return d ? Date.now() - d.getTime() : null; };
    ownNow = () => { const l = player.getStats().liveLatency; return Number.isFinite(l) && l > 0 ? l : null; };
    watchVideo(video);
    try {
      await player.load(url);
    } catch (e) {
      err(true, 'load()', 'code ' + (e && e.code), e && (e.message || e));
      return '';
    }
    video.play().catch((e) => err(true, 'play()', e));
    return '';
  }
  if (which === 'videojs' || which === 'videojs-segments') {
    const vv = videojs.VhsHandler && videojs.VhsHandler.version ? videojs.VhsHandler.version() : {};
    s.playerVersion = videojs.VERSION + ' (VHS ' + (vv['@videojs/http-streaming'] || '?') + ')';
    s.config = { html5: { vhs: { llhls: which === 'videojs' } }, liveui: true, muted: true, autoplay: true };
    const player = videojs(video, s.config);
    window.player = player;
    video = player.tech({ IWillNotUseThisInPlugins: true }).el();
    watchVideo(video);
    player.on('error', () => {
      const e = player.error();
      err(true, 'video.js error', e && e.code, e && e.message);
    });
    player.src({ src: url, type: 'application/x-mpegURL' });
    const vhs = () => { const t = player.tech({ IWillNotUseThisInPlugins: true }); return t && t.vhs; };
    // VHS's convertToProgramTime needs a segment's transmuxer timing, which
    // segments played part by part never get ("valid programTime was not
    // found"); so map currentTime through the media playlist as VHS placed
    // it: the segment holding currentTime, its EXT-X-PROGRAM-DATE-TIME plus
    // the offset into it.
    const media = () => { const v = vhs(); return v && v.playlists && v.playlists.media(); };
    pdtNow = () => {
      const m = media();
      if (!m) return null;
      const ct = player.currentTime();
      const seg = m.segments.find((x) => Number.isFinite(x.start) && x.start <= ct && ct < x.end);
      if (!seg || !seg.dateTimeObject) return null;
      return Date.now() - (seg.dateTimeObject.getTime() + (ct - seg.start) * 1000);
    };
    // VHS has no latency figure of its own: the end of the newest segment
    // or part it has placed on its timeline, minus currentTime.
    ownNow = () => {
      const m = media();
      if (!m || !m.segments.length) return null;
      const last = m.segments[m.segments.length - 1];
      return Number.isFinite(last.end) ? last.end - player.currentTime() : null;
    };
    player.ready(() => {
      s.usingVHS = !!vhs();
      player.play().catch((e) => err(true, 'play()', e));
    });
    return '';
  }
  return 'unknown player ' + which;
};

window.sample = function () {
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
  return {
    at: now(),
    currentTime: video.currentTime,
    paused: video.paused,
    presented: s.presented,
    totalFrames: q.totalVideoFrames || 0,
    droppedFrames: q.droppedVideoFrames || 0,
    videoBytes: video.webkitVideoDecodedByteCount || 0,
    audioBytes: video.webkitAudioDecodedByteCount || 0,
    width: video.videoWidth,
    height: video.videoHeight,
    playingAt: s.playingAt,
    fatal: s.errors.some((e) => e.fatal) || s.videoErrors.length > 0,
  };
};

window.sampleLatency = function () {
  let pdt = null, own = null;
  try { pdt = pdtNow(); } catch (e) { /* not yet */ }
  try { own = ownNow(); } catch (e) { /* not yet */ }
  s.latency.push({ at: now(), pdt: pdt === null ? null : pdt / 1000, own });
};

window.finish = function () {
  if (which.startsWith('videojs') && window.player) s.usingVHS = !!window.player.tech({ IWillNotUseThisInPlugins: true }).vhs;
  if (which === 'shaka' || which === 'shaka-segments') {
    const p = window.player;
    const t = p.getVariantTracks().find((x) => x.active);
    s.tracks = t ? { videoCodec: t.videoCodec, audioCodec: t.audioCodec, width: t.width, height: t.height, frameRate: t.frameRate } : null;
    s.playerLowLatency = p.getConfiguration().streaming.lowLatencyMode;
  }
  if (which === 'hlsjs' && window.hls) {
    s.tracks = { audioTracks: window.hls.audioTracks.length, levels: window.hls.levels.map((l) => ({ codecs: l.attrs && l.attrs.CODECS, videoCodec: l.videoCodec, audioCodec: l.audioCodec })) };
  }
  return s;
};
</script>
</body></html>
`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)] : null;
}

async function playOne(pageURL, player) {
  const rep = { player, harnessError: '', console: [] };
  result.players.push(rep);
  const page = await h.context().newPage();
  page.on('crash', () => { rep.harnessError = 'page crashed'; });
  page.on('console', (m) => {
    if ((m.type() === 'error' || m.type() === 'warning') && rep.console.length < 50) rep.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => rep.console.push(`pageerror: ${e.message}`));
  // Responses >= 400 the page got (a 404 for a part or a preload hint is
  // the origin's, not the player's).
  rep.httpErrors = [];
  const opened = Date.now();
  page.on('response', (r) => {
    if (r.status() >= 400 && rep.httpErrors.length < 50) {
      rep.httpErrors.push({ at: (Date.now() - opened) / 1000, status: r.status(), url: r.url() });
    }
  });
  try {
    await page.goto(pageURL + '?player=' + player, { timeout: 15000 });
    const problem = await page.evaluate((u) => window.start(u), url);
    if (problem) { rep.harnessError = problem; return; }
    // Until the first frame (or a fatal error).
    const t0 = Date.now();
    let first = null;
    while (Date.now() - t0 < START_WAIT * 1000) {
      const x = await page.evaluate(() => window.sample());
      if (x.playingAt !== null || x.fatal) { first = x; break; }
      await sleep(100);
    }
    if (!first || first.playingAt === null) {
      rep.harnessError = `no playback within ${START_WAIT} s`;
      Object.assign(rep, await page.evaluate(() => window.finish()));
      return;
    }
    // The watch: latency twice a second.
    const begin = await page.evaluate(() => window.sample());
    const startWall = Date.now();
    while (Date.now() - startWall < seconds * 1000) {
      await sleep(500);
      await page.evaluate(() => window.sampleLatency());
    }
    const end = await page.evaluate(() => window.sample());
    Object.assign(rep, await page.evaluate(() => window.finish()));
    const wall = end.at - begin.at;
    rep.watch = {
      wall,
      begin, end,
      advance: end.currentTime - begin.currentTime,
      presentedFps: (end.presented - begin.presented) / wall,
      decodedFps: (end.totalFrames - begin.totalFrames) / wall,
      // Per second of media played rather than of wall clock: a stall or
      // a slow clock on a busy machine does not count as frames missing.
      presentedPerMediaSecond: (end.presented - begin.presented) / (end.currentTime - begin.currentTime),
      decodedPerMediaSecond: (end.totalFrames - begin.totalFrames) / (end.currentTime - begin.currentTime),
      dropped: end.droppedFrames - begin.droppedFrames,
      videoBytes: end.videoBytes - begin.videoBytes,
      audioBytes: end.audioBytes - begin.audioBytes,
      width: end.width,
      height: end.height,
    };
    const late = rep.latency.filter((l) => l.at >= begin.at);
    rep.latencySummary = {
      samples: late.length,
      pdtMedian: median(late.map((l) => l.pdt)),
      pdtLast: late.length ? late[late.length - 1].pdt : null,
      ownMedian: median(late.map((l) => l.own)),
      ownLast: late.length ? late[late.length - 1].own : null,
    };
  } catch (e) {
    rep.harnessError = String((e && e.stack) || e);
  } finally {
    await page.evaluate(() => { if (window.hls) window.hls.destroy(); if (window.player) window.player.destroy ? window.player.destroy() : window.player.dispose(); }).catch(() => {});
    await page.close().catch(() => {});
  }
}

async function main() {
  const pageURL = await h.serve(PAGE, SCRIPTS);
  const first = await h.launch();
  for (const p of players) await playOne(pageURL, p);
  await first.close().catch(() => {});
}

await h.run(main, players.length * (seconds + START_WAIT + 20) + 30);
