// harness.mjs is what the browser scripts (play.mjs, page.mjs, codecs.mjs,
// abr.mjs) share: Debian's chromium with one set of flags (playwright-core
// never downloads a browser), a local server for a script's page and its
// player from node_modules, one JSON line on stdout, a hard time-out and a
// bounded clean-up. Each script judges nothing and exits 0 once it printed
// its line: the Go tests decide.

import { createServer } from 'node:http';
import { createServer as createTLSServer } from 'node:https';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.FOUNT_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
// A test that serves over HTTPS (the page and fount) trusts its own
// certificate by its key's hash, as Chromium allows from the command line;
// FOUNT_PAGE_TLS_CERT/KEY then make the page's origin https too.
if (process.env.FOUNT_CHROMIUM_SPKI) {
  CHROMIUM_FLAGS.push(`--ignore-certificate-errors-spki-list=${process.env.FOUNT_CHROMIUM_SPKI}`);
}
const PAGE_TLS = process.env.FOUNT_PAGE_TLS_CERT && process.env.FOUNT_PAGE_TLS_KEY;

// harness returns the shared steps for one run whose report is result
// (which gets harnessError and browserVersion).
export function harness(result) {
  let context, server, userDataDir, printed = false;
  const h = {
    print() {
      if (printed) return;
      printed = true;
      process.stdout.write(JSON.stringify(result) + '\n');
    },

    // serve answers '/' with html and each path of files (e.g.
    // '/hls.min.js') with that file under this directory; it returns the
    // page's URL.
    async serve(html, files = {}) {
      const handler = async (req, res) => {
        const path = new URL(req.url, 'http://x').pathname;
        try {
          if (path === '/') {
            res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
            res.end(html);
          } else if (files[path]) {
            const js = await readFile(join(here, files[path]));
            res.writeHead(200, { 'Content-Type': 'text/javascript' });
            res.end(js);
          } else {
            res.writeHead(404);
            res.end();
          }
        } catch (e) {
          res.writeHead(500);
          res.end(String(e));
        }
      };
      server = PAGE_TLS
        ? createTLSServer({
          cert: await readFile(process.env.FOUNT_PAGE_TLS_CERT),
          key: await readFile(process.env.FOUNT_PAGE_TLS_KEY),
        }, handler)
        : createServer(handler);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      return `${PAGE_TLS ? 'https' : 'http'}://127.0.0.1:${server.address().port}/`;
    },

    // launch starts chromium with a fresh profile and returns its first
    // page, with a crash noted as a harness error; extraArgs are added to
    // the flags (whip.mjs: a fake camera and microphone).
    async launch(extraArgs = []) {
      userDataDir = await mkdtemp(join(tmpdir(), 'fount-chromium-'));
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: [...CHROMIUM_FLAGS, ...extraArgs],
        timeout: 30000,
      });
      result.browserVersion = context.browser() ? context.browser().version() : '';
      const page = context.pages()[0] || (await context.newPage());
      page.on('crash', () => { result.harnessError = 'page crashed'; });
      return page;
    },

    context: () => context,

    async cleanup() {
      // Bounded: a hung browser must not keep us past the hard time-out.
      const steps = [];
      if (context) steps.push(context.close().catch(() => {}));
      if (server) steps.push(new Promise((r) => server.close(r)), server.closeAllConnections());
      await Promise.race([Promise.all(steps), new Promise((r) => setTimeout(r, 10000))]);
      if (userDataDir) {
        // Twice: after a forced close, a dying chromium process may still write.
        await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
        await new Promise((r) => setTimeout(r, 300));
        await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
      }
    },

    // run runs main, bounded by hardSeconds; whatever happens it prints
    // the line (after finish, if given, has added to it), cleans up and
    // exits 0.
    async run(main, hardSeconds, finish) {
      const hard = setTimeout(async () => {
        result.harnessError = `hard time-out after ${hardSeconds} s`;
        h.print();
        await h.cleanup();
        process.exit(0);
      }, hardSeconds * 1000);
      try {
        await main();
      } catch (e) {
        result.harnessError = String((e && e.stack) || e);
      }
      clearTimeout(hard);
      if (finish) {
        try {
          await finish();
        } catch (e) {
          result.harnessError = result.harnessError || String((e && e.stack) || e);
        }
      }
      h.print();
      await h.cleanup();
      process.exit(0);
    },
  };
  return h;
}
