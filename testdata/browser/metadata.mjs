// metadata.mjs plays live HLS streams with hls.js in Debian's chromium, one
// video element each, and prints as one JSON line on stdout the timed
// metadata hls.js exposed: its FRAG_PARSING_METADATA samples and the cues
// of the metadata TextTrack it makes, each with its media time mapped to a
// program date time through the fragment holding it.
//
// hls.js (1.7.4) makes that track as a <track> element whose src is an
// empty WebVTT data: URL; Chromium loads it asynchronously and the load
// empties the cue list, so the cues of the very first metadata event can
// be lost. Every cue seen is kept (polled), and the samples are reported
// too.
//
//   node metadata.mjs SECONDS PLAYLIST_URL...
//
// It judges nothing and exits 0 whenever it printed its line: the Go test
// (cmd/fount/metadata_browser_test.go) decides.

import { harness } from './harness.mjs';

const [secondsArg, ...urls] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!(seconds > 0) || urls.length === 0) {
  process.stderr.write('usage: node metadata.mjs SECONDS PLAYLIST_URL...\n');
  process.exit(2);
}

const result = { harnessError: '', browserVersion: '', console: [], players: [] };
const h = harness(result);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>fount metadata test</title></head>
<body>
<script src="/hls.min.js"></script>
<script>
// text keeps an ID3 tag's printable bytes, enough to tell tags apart.
function text(u8) {
  let s = '';
  for (const b of u8) s += b >= 32 && b < 127 ? String.fromCharCode(b) : '.';
  return s;
}
window.start = function (urls) {
  window.players = urls.map((url) => {
    const video = document.createElement('video');
    video.muted = true; video.autoplay = true; video.playsInline = true;
    document.body.appendChild(video);
    const p = { url, hlsVersion: Hls.version, samples: [], errors: [], playing: false, video, cues: [] };
    const hls = new Hls();
    p.hls = hls;
    hls.on(Hls.Events.FRAG_PARSING_METADATA, (_, d) => {
      for (const s of d.samples) p.samples.push({ pts: s.pts, type: s.type, data: text(s.data) });
    });
    hls.on(Hls.Events.ERROR, (_, d) => p.errors.push({ details: d.details, fatal: !!d.fatal }));
    video.addEventListener('playing', () => { p.playing = true; });
    hls.attachMedia(video);
    hls.loadSource(url);
    video.play().catch(() => {});
    // Cues hls.js adds may be removed again (a buffer flush): every cue
    // seen is kept, by time and text.
    p.seen = new Map();
    p.timer = setInterval(() => {
      for (const tt of video.textTracks) {
        if (tt.kind !== 'metadata' || !tt.cues) continue;
        for (const c of tt.cues) p.seen.set(c.startTime + '|' + JSON.stringify(c.value || {}), c);
      }
    }, 50);
    return p;
  });
  return Hls.isSupported();
};
window.finish = function () {
  return window.players.map((p) => {
    const level = p.hls.levels[p.hls.currentLevel >= 0 ? p.hls.currentLevel : 0];
    const frags = (level && level.details && level.details.fragments) || [];
    const pdtAt = (t) => {
      for (const f of frags) {
        if (f.programDateTime && t >= f.start - 0.0005 && t < f.start + f.duration) {
          return new Date(f.programDateTime + (t - f.start) * 1000).toISOString();
        }
      }
      return '';
    };
    clearInterval(p.timer);
    const cues = [];
    for (const c of p.seen.values()) {
      const v = c.value || {};
      cues.push({ start: c.startTime, key: v.key || '', info: v.info || '', data: typeof v.data === 'string' ? v.data : '', pdt: pdtAt(c.startTime) });
    }
    const samples = p.samples.map((m) => Object.assign(m, { pdt: pdtAt(m.pts) }));
    const out = { url: p.url, hlsVersion: p.hlsVersion, samples, errors: p.errors, playing: p.playing, currentTime: p.video.currentTime, cues };
    p.hls.destroy();
    return out;
  });
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
  if (!(await page.evaluate((u) => window.start(u), urls))) {
    result.harnessError = 'hls.js says this browser cannot play HLS (no MSE?)';
    return;
  }
  await page.waitForTimeout(seconds * 1000);
  result.players = await page.evaluate(() => window.finish());
}

await h.run(main, seconds + 40);
