// captions.mjs plays a live HLS stream with hls.js in Debian's chromium,
// with hls.js's CEA-608 captions rendered as native text tracks, and prints
// as one JSON line what hls.js made of the stream's captions and
// subtitles: the CLOSED-CAPTIONS and SUBTITLES renditions of the
// multivariant playlist, hls.js's subtitle tracks, and every text track of
// the video element with its cues.
//
//   node captions.mjs PLAYLIST_URL SECONDS
//
// Like the other scripts it judges nothing and exits 0 whenever it printed
// its line: the Go test (cmd/fount/captions_browser_test.go) decides.

import { harness } from './harness.mjs';

const [url, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!url || !(seconds > 0)) {
  process.stderr.write('usage: node captions.mjs PLAYLIST_URL SECONDS\n');
  process.exit(2);
}

const result = { url, seconds, harnessError: '', browserVersion: '', console: [] };
const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount captions test</title></head>
<body>
<video id="v" muted playsinline autoplay width="640" height="360"></video>
<script src="/hls.min.js"></script>
<script>
window.start = function (url) {
  const video = document.getElementById('v');
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0) / 1000;
  const s = { hlsVersion: Hls.version, errors: [], manifestCaptions: [], manifestSubtitles: [], playingAt: null };
  window.stats = s;
  if (!Hls.isSupported()) return false;
  const hls = new Hls({ lowLatencyMode: true, enableCEA708Captions: true, renderTextTracksNatively: true, enableWebVTT: true });
  window.hls = hls;
  // A disabled track has no cues to read: every track is kept hidden.
  video.textTracks.addEventListener('addtrack', (e) => { if (e.track.mode === 'disabled') e.track.mode = 'hidden'; });
  video.textTracks.addEventListener('change', () => {
    for (const t of video.textTracks) if (t.mode === 'disabled') t.mode = 'hidden';
  });
  hls.on(Hls.Events.MANIFEST_LOADED, (_, d) => {
    for (const c of d.captions || []) s.manifestCaptions.push({ name: c.name, lang: c.lang, instreamId: c.instreamId, groupId: c.groupId });
    for (const c of d.subtitles || []) s.manifestSubtitles.push({ name: c.name, lang: c.lang, groupId: c.groupId, url: c.url });
  });
  hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => { if (hls.subtitleTracks.length && hls.subtitleTrack < 0) hls.subtitleTrack = 0; });
  hls.on(Hls.Events.ERROR, (_, d) => {
    s.errors.push({ at: now(), type: d.type, details: d.details, fatal: !!d.fatal,
      url: (d.frag && d.frag.url) || (d.context && d.context.url) || d.url || '' });
  });
  video.addEventListener('playing', () => { if (s.playingAt === null) s.playingAt = now(); });
  // Cues seen at any time, per track: hls.js may remove old ones as its
  // back buffer goes.
  s.userdata = 0;
  hls.on(Hls.Events.FRAG_PARSING_USERDATA, (_, d) => { s.userdata += d.samples.length; });
  window.seen = new Map();
  window.poll = setInterval(() => {
    for (const t of video.textTracks) {
      for (const c of t.cues || []) window.seen.set(t.label + '|' + t.kind + '|' + c.startTime, { track: t.label, kind: t.kind, start: c.startTime, end: c.endTime, text: c.text });
    }
  }, 100);
  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch(() => {});
  return true;
};

window.finish = function () {
  const s = window.stats;
  const video = document.getElementById('v');
  s.currentTime = video.currentTime;
  clearInterval(window.poll);
  s.seenCues = [...window.seen.values()];
  s.subtitleTracks = window.hls ? window.hls.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang })) : [];
  s.textTracks = [];
  for (const t of video.textTracks) {
    const cues = [];
    for (const c of t.cues || []) cues.push({ start: c.startTime, end: c.endTime, text: c.text });
    s.textTracks.push({ kind: t.kind, label: t.label, language: t.language, mode: t.mode, cues });
  }
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
  if (!(await page.evaluate((u) => window.start(u), url))) {
    result.harnessError = 'hls.js says this browser cannot play HLS (no MSE?)';
    return;
  }
  await page.waitForTimeout(seconds * 1000);
  Object.assign(result, await page.evaluate(() => window.finish()));
}

await h.run(main, seconds + 40);
