// recording.mjs plays a finished recording (a VOD HLS playlist:
// EXT-X-PLAYLIST-TYPE:VOD, EXT-X-ENDLIST, segments named ../../segN.m4s or
// ../../segN.ts, maybe an EXT-X-DISCONTINUITY and a second EXT-X-MAP where
// the encoder reconnected) with hls.js in Debian's chromium: it starts
// playing from 0, seeks to the middle, plays to the end at 8x (4x if
// chromium refuses 8) and prints what it saw as one JSON line on stdout.
//
//   node recording.mjs PLAYLIST_URL
//
// Like dvr.mjs it judges nothing: cmd/fount/recording_browser_test.go
// decides.

import { harness } from './harness.mjs';

const [url] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: node recording.mjs PLAYLIST_URL\n');
  process.exit(2);
}

const result = { url, harnessError: '', browserVersion: '', console: [] };
const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount recording test</title></head>
<body>
<video id="v" muted playsinline autoplay width="640" height="360"></video>
<script src="/hls.min.js"></script>
<script>
const quality = (v) => (v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : { totalVideoFrames: 0, droppedVideoFrames: 0 });
const frames = (v) => quality(v).totalVideoFrames;
const last = (u) => { try { return new URL(u, location.href).pathname.split('/').pop(); } catch (e) { return String(u); } };
window.start = function (url) {
  const video = document.getElementById('v');
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0) / 1000;
  const s = {
    hlsVersion: Hls.version,
    hlsSupported: Hls.isSupported(),
    mseH264AAC: typeof MediaSource !== 'undefined' &&
      MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"'),
    errors: [], videoErrors: [], fragsLoaded: [],
    manifestParsedAt: null, loadedMetadataAt: null, playingAt: null, startTime: null,
    seekedAt: null, endedAt: null, ended: false,
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
  hls.on(Hls.Events.MANIFEST_PARSED, () => { if (s.manifestParsedAt === null) s.manifestParsedAt = now(); });
  hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
    const det = d.details, fr = det.fragments;
    let disc = 0;
    for (let i = 1; i < fr.length; i++) if (fr[i].cc !== fr[i - 1].cc) disc++;
    s.playlist = { live: det.live, type: det.type || null, totalduration: det.totalduration,
      fragments: fr.length, discontinuities: disc };
  });
  hls.on(Hls.Events.FRAG_LOADED, (_, d) => { s.fragsLoaded.push(last(d.frag.url || d.frag.relurl)); });
  video.addEventListener('loadedmetadata', () => { if (s.loadedMetadataAt === null) s.loadedMetadataAt = now(); });
  video.addEventListener('playing', () => {
    if (s.playingAt === null) { s.playingAt = now(); s.startTime = video.currentTime; }
  });
  video.addEventListener('seeked', () => { if (s.seekTo !== undefined && s.seekedAt === null) s.seekedAt = now(); });
  video.addEventListener('ended', () => {
    if (s.ended) return;
    s.ended = true;
    s.endedAt = now();
    s.endTime = video.currentTime;
    s.endDuration = video.duration;
    s.framesAtEnd = frames(video);
  });
  video.addEventListener('error', () => {
    const e = video.error;
    s.videoErrors.push({ at: now(), code: e && e.code, message: e && e.message });
  });
  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch((e) => s.errors.push({ at: now(), type: 'play()', details: String(e), fatal: true }));
  return { hlsVersion: s.hlsVersion, hlsSupported: s.hlsSupported, mseH264AAC: s.mseH264AAC };
};
// started: playing, with a few frames presented.
window.started = (n) => {
  const v = document.getElementById('v');
  return window.stats.playingAt !== null && v.currentTime > 0 && frames(v) >= n;
};
// seek goes to the middle and plays on at rate (or 4 if chromium refuses it).
window.seek = function (rate) {
  const s = window.stats, video = document.getElementById('v');
  s.duration = video.duration;
  s.timeBeforeSeek = video.currentTime;
  s.startFrames = frames(video);
  s.fragsBeforeSeek = s.fragsLoaded.length;
  s.seekTo = video.duration / 2;
  s.seekStartedAt = Math.round(performance.now()) / 1000;
  video.currentTime = s.seekTo;
  s.rateRefused = '';
  try {
    video.playbackRate = rate;
  } catch (e) {
    s.rateRefused = String(e);
  }
  if (video.playbackRate !== rate) {
    s.rateRefused = s.rateRefused || 'playbackRate reads ' + video.playbackRate;
    try { video.playbackRate = 4; } catch (e) { s.rateRefused += '; 4: ' + String(e); }
  }
  s.playbackRate = video.playbackRate;
  if (video.paused) video.play().catch(() => {});
  return s.seekTo;
};
window.sample = function () {
  const video = document.getElementById('v');
  const q = quality(video);
  return { currentTime: video.currentTime, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
    paused: video.paused, ended: video.ended, readyState: video.readyState, playbackRate: video.playbackRate };
};
window.finish = function () {
  const s = window.stats, video = document.getElementById('v');
  s.end = window.sample();
  if (!s.ended) {
    s.endTime = video.currentTime;
    s.framesAtEnd = frames(video);
  }
  s.finalDuration = video.duration;
  if (s.seekTo !== undefined) s.framesAfterSeek = s.framesAtEnd - s.startFrames;
  else s.startFrames = s.framesAtEnd; // no seek: all were before it
  const b = video.buffered;
  s.buffered = [];
  for (let i = 0; i < b.length; i++) s.buffered.push([b.start(i), b.end(i)]);
  s.fragsAfterSeek = s.fragsLoaded.slice(s.fragsBeforeSeek || 0);
  s.fragsBeforeSeek = s.fragsLoaded.slice(0, s.fragsBeforeSeek || 0);
  delete s.fragsLoaded;
  delete s.seekStartedAt;
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
  // From 0 at 1x until a few frames are presented.
  await page.waitForFunction(() => window.started(12), null, { timeout: 30000, polling: 100 });
  const seekWall = Date.now();
  await page.evaluate((r) => window.seek(r), 8);
  result.samples = [];
  // Up to 60 s for the 'ended' event; a fatal error ends the wait, and so
  // does a playhead that has stood still for 3 s at the end (hls.js 1.7
  // may not end a stream whose buffer has a hole under maxBufferHole
  // before the playhead: see checkRecordingPlays).
  let still = 0;
  let lastTime = -1;
  for (let i = 0; i < 600; i++) {
    await page.waitForTimeout(100);
    const smp = await page.evaluate(() => window.sample());
    // Every 0.5 s while the playhead moves, every 5 s once it does not.
    const prev = result.samples[result.samples.length - 1];
    if (i % 5 === 0 && (!prev || prev.currentTime !== smp.currentTime || i % 50 === 0)) result.samples.push(smp);
    const over = await page.evaluate(() => {
      const s = window.stats;
      return s.ended || s.videoErrors.length > 0 || s.errors.some((e) => e.fatal);
    });
    if (over) break;
    const dur = await page.evaluate(() => document.getElementById('v').duration);
    still = smp.currentTime === lastTime ? still + 1 : 0;
    lastTime = smp.currentTime;
    if (still >= 30 && smp.currentTime >= dur - 0.3) {
      result.stalledAtEnd = true;
      break;
    }
  }
  result.secondsSeekToEnd = (Date.now() - seekWall) / 1000;
}

await h.run(main, 120, async () => {
  // Whatever happened (a time-out waiting for frames included), the page's
  // stats go into the report.
  const page = h.context() && h.context().pages()[0];
  if (!page) return;
  const s = await page.evaluate(() => (window.stats && window.hls ? window.finish() : window.stats || null));
  if (s) Object.assign(result, s);
});
