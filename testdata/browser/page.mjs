// page.mjs opens fount's operator page in Debian's chromium, watches one
// stream's card and its player, and prints what it saw as one JSON line on
// stdout.
//
//   node page.mjs PAGE_URL SECONDS STREAM_PATH [TOKEN]
//
// STREAM_PATH is the card's data-stream, e.g. live/show. When the page asks
// for a bearer token and TOKEN is given, page.mjs types it into the form. Like play.mjs it
// judges nothing and exits 0 whenever it printed its line: the Go test
// (cmd/fount/web_test.go) decides. Harness problems (no browser, the card
// never appearing, hard time-out) go in the line's "harnessError" field.
// The page is fount's own, with its own hls.js: nothing comes from outside
// this machine, and playwright-core never downloads a browser. With
// FOUNT_PAGE_SCREENSHOT=FILE.png it also saves a screenshot of the page.

import { harness } from './harness.mjs';


const [pageURL, secondsArg, streamPath, token] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!pageURL || !(seconds > 0) || !streamPath) {
  process.stderr.write('usage: node page.mjs PAGE_URL SECONDS STREAM_PATH [TOKEN]\n');
  process.exit(2);
}

const result = {
  pageURL,
  seconds,
  stream: streamPath,
  harnessError: '',
  browserVersion: '',
  authPrompted: false, // the page showed its token form
  listed: false,       // the stream's card appeared
  listedAt: null,      // s after the page loaded
  name: '',
  state: '',           // the card's data-state
  resolution: '',      // the card's video line as shown
  url: '',             // the playback URL as shown
  copied: null,        // what the clipboard held after Copy, or null
  copyError: '',
  copyButton: '',      // the button's text after the click
  playingAt: null,     // s after the card appeared until currentTime > 0
  currentTimeStart: null,
  currentTimeEnd: null,
  advance: 0,
  samePlayer: null,    // the <video> element was not replaced during the watch
  playerSrc: '',       // blob:… with hls.js, the playlist URL with native HLS
  paused: null,
  readyState: null,
  hlsVersion: '',
  cards: 0,            // cards at the end
  maxCards: 0,         // most cards at once during the watch
  players: 0,          // <video> elements at the end
  endAdvance: null,    // s the clock moved in the last second of the watch
  stalls: [],          // 'waiting' events of any player on the page
  hlsErrors: [],       // hls.js errors of any player, fatal or not
  consoleErrors: [],
  pageErrors: [],
};

const h = harness(result);

async function main() {
  const page = await h.launch();
  const origin = new URL(pageURL).origin;
  await h.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin }).catch(() => {});
  page.on('console', (m) => {
    if (m.type() === 'error') result.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => result.pageErrors.push(e.message));

  // Before the page's scripts: note every player's stalls and every hls.js
  // error, so that a failed run says why its clock did not move.
  await page.addInitScript(() => {
    const t0 = Date.now();
    const at = () => (Date.now() - t0) / 1000;
    window.__stalls = [];
    window.__hlsErrors = [];
    const where = (v) => {
      const c = v && v.closest && v.closest('[data-stream]');
      return c ? c.dataset.stream : '';
    };
    document.addEventListener('waiting', (e) => {
      window.__stalls.push({ at: at(), stream: where(e.target), currentTime: e.target.currentTime });
    }, true);
    let hls;
    Object.defineProperty(window, 'Hls', {
      configurable: true,
      get: () => hls,
      set: (v) => {
        hls = v;
        const trigger = v && v.prototype && v.prototype.trigger;
        if (typeof trigger !== 'function') return;
        v.prototype.trigger = function (event, data) {
          if (event === 'hlsError' && data) {
            const r = data.response || {};
            window.__hlsErrors.push({
              at: at(), stream: where(this.media), details: String(data.details), fatal: !!data.fatal,
              url: (data.frag && data.frag.url) || (data.context && data.context.url) || '', status: r.code || 0,
            });
          }
          return trigger.call(this, event, data);
        };
      },
    });
  });

  await page.goto(pageURL, { timeout: 15000 });
  const t0 = Date.now();
  const card = `[data-stream="${streamPath}"]`;
  try {
    await page.waitForSelector(`${card}, #auth:not([hidden])`, { timeout: 20000 });
    if (await page.isVisible('#auth')) {
      result.authPrompted = true;
      if (token) {
        await page.fill('#token', token);
        await page.click('#auth button[type=submit]');
      }
    }
  } catch (e) { /* reported below */ }
  try {
    await page.waitForSelector(card, { timeout: 20000 });
  } catch (e) {
    result.harnessError = `no card ${card} within 20 s`;
    return;
  }
  result.listed = true;
  result.listedAt = (Date.now() - t0) / 1000;
  const tListed = Date.now();

  // Playing: the clock has moved.
  try {
    await page.waitForFunction((sel) => {
      const v = document.querySelector(sel + ' [data-player]');
      return v && v.currentTime > 0 && !v.paused;
    }, card, { timeout: 20000, polling: 100 });
    result.playingAt = (Date.now() - tListed) / 1000;
  } catch (e) {
    result.harnessError = 'the player did not start within 20 s';
  }

  const start = await page.evaluate((sel) => {
    const v = document.querySelector(sel + ' [data-player]');
    window.__watched = v;
    window.__maxCards = 0;
    const count = () => {
      window.__maxCards = Math.max(window.__maxCards, document.querySelectorAll('[data-stream]').length);
    };
    count();
    setInterval(count, 100);
    return v ? v.currentTime : null;
  }, card);
  result.currentTimeStart = start;

  // The copy button, while the clock runs.
  await page.click(card + ' button.copy').catch((e) => { result.copyError = String(e.message || e); });
  await page.waitForTimeout(300);
  try {
    result.copied = await page.evaluate(() => navigator.clipboard.readText());
  } catch (e) {
    result.copyError = result.copyError || String(e.message || e);
  }
  result.copyButton = await page.textContent(card + ' button.copy').catch(() => '');

  await page.waitForTimeout(seconds * 1000 - 1000);
  const before = await page.evaluate(() => window.__watched ? window.__watched.currentTime : null);
  await page.waitForTimeout(1000);

  if (process.env.FOUNT_PAGE_SCREENSHOT) {
    // For a person looking at the page: FOUNT_PAGE_SCREENSHOT=/tmp/page.png
    await page.screenshot({ path: process.env.FOUNT_PAGE_SCREENSHOT, fullPage: true }).catch(() => {});
  }
  Object.assign(result, await page.evaluate((sel) => {
    const el = document.querySelector(sel);
    const v = el.querySelector('[data-player]');
    const text = (q) => { const n = el.querySelector(q); return n ? n.textContent.trim() : ''; };
    return {
      name: text('.name'),
      state: el.querySelector('[data-state]').dataset.state || '',
      resolution: text('[data-resolution]'),
      url: el.querySelector('[data-url]').value,
      currentTimeEnd: v ? v.currentTime : null,
      samePlayer: v === window.__watched,
      playerSrc: v ? v.currentSrc || v.src || '' : '',
      paused: v ? v.paused : null,
      readyState: v ? v.readyState : null,
      hlsVersion: window.Hls ? Hls.version : '',
      cards: document.querySelectorAll('[data-stream]').length,
      maxCards: window.__maxCards,
      players: document.querySelectorAll('[data-player]').length,
      stalls: window.__stalls || [],
      hlsErrors: window.__hlsErrors || [],
    };
  }, card));
  if (before !== null && result.currentTimeEnd !== null) {
    result.endAdvance = result.currentTimeEnd - before;
  }
  if (result.currentTimeStart !== null && result.currentTimeEnd !== null) {
    result.advance = result.currentTimeEnd - result.currentTimeStart;
  }
}

await h.run(main, seconds + 50);
