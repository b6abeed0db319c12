// fount operator page: lists the streams /api/v1/streams reports, every
// 2 s, each with a muted live player. No framework; data goes into the page
// only as text, never as HTML.
'use strict';

(function () {
  const API = '/api/v1/streams';
  const POLL_MS = 2000;
  const TOKEN_KEY = 'fount.token';

  const $ = (id) => document.getElementById(id);
  const statusEl = $('status');
  const authForm = $('auth');
  const authError = $('auth-error');
  const tokenInput = $('token');
  const forgetBtn = $('forget');
  const emptyEl = $('empty');
  const streamsEl = $('streams');
  const cardTemplate = $('card');

  // path -> {el, video, hls, url, fields...}
  const cards = new Map();
  let timer = null;
  let inFlight = false;

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function setToken(v) {
    try {
      if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the token lasts until reload */ }
    memoryToken = v;
  }
  let memoryToken = token();

  // ---- formatting ----

  function bitrate(bps) {
    if (typeof bps !== 'number' || !isFinite(bps) || bps < 0) return '–';
    if (bps === 0) return '0 b/s';
    const units = ['b/s', 'kb/s', 'Mb/s', 'Gb/s'];
    let v = bps, i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)) + ' ' + units[i];
  }

  function duration(s) {
    if (!(s >= 0)) return '–';
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
    const pad = (n) => String(n).padStart(2, '0');
    return (d ? d + 'd ' : '') + (d || h ? h + ':' + pad(m) : m) + ':' + pad(sec);
  }

  function fps(r) {
    if (typeof r !== 'number' || !(r > 0)) return '';
    return (Math.round(r * 100) / 100) + ' fps';
  }

  function videoText(v) {
    if (!v) return 'none';
    const parts = [];
    if (v.width && v.height) parts.push(v.width + '×' + v.height);
    const f = fps(v.frame_rate);
    if (f) parts.push(f);
    if (v.codec) parts.push(v.codec);
    return parts.join(' · ') || 'unknown';
  }

  function audioText(a) {
    if (!a) return 'none';
    const parts = [];
    if (a.sample_rate) parts.push((a.sample_rate / 1000) + ' kHz');
    if (a.channels) parts.push(a.channels === 1 ? 'mono' : a.channels === 2 ? 'stereo' : a.channels + ' ch');
    if (a.codec) parts.push(a.codec);
    return parts.join(' · ') || 'unknown';
  }

  function playbackURL(httpPort, playbackPath) {
    const port = httpPort ? ':' + httpPort : (location.port ? ':' + location.port : '');
    return location.protocol + '//' + location.hostname + port + playbackPath;
  }

  // ---- players ----

  function startPlayer(card) {
    stopPlayer(card);
    card.playerError.hidden = true;
    const video = card.video;
    video.muted = true;
    if (window.Hls && Hls.isSupported()) {
      const hls = new Hls({ lowLatencyMode: true });
      card.hls = hls;
      let mediaRecoveries = 0;
      hls.on(Hls.Events.ERROR, (_, d) => {
        if (!d.fatal || card.hls !== hls) return;
        if (d.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 3) {
          mediaRecoveries++;
          hls.recoverMediaError();
          return;
        }
        // Network trouble or an unrecoverable error: show it and start
        // afresh on a later poll while the stream is still listed.
        showPlayerError(card, 'Player: ' + d.details);
        stopPlayer(card);
        card.retryAt = Date.now() + 5000;
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => { card.playerError.hidden = true; });
      hls.attachMedia(video);
      hls.loadSource(card.url);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = card.url;
    } else {
      showPlayerError(card, 'This browser cannot play HLS.');
      return;
    }
    const p = video.play();
    if (p && p.catch) p.catch(() => { /* autoplay refused: the controls are there */ });
  }

  function stopPlayer(card) {
    if (card.hls) {
      card.hls.destroy();
      card.hls = null;
    }
    if (card.video.getAttribute('src')) {
      card.video.removeAttribute('src');
      card.video.load();
    }
  }

  function showPlayerError(card, msg) {
    card.playerError.textContent = msg;
    card.playerError.hidden = false;
  }

  // ---- cards ----

  function newCard(path) {
    const el = cardTemplate.content.firstElementChild.cloneNode(true);
    el.dataset.stream = path;
    const q = (sel) => el.querySelector(sel);
    const card = {
      el,
      video: q('[data-player]'),
      playerError: q('.player-error'),
      name: q('.name'),
      state: q('[data-state]'),
      urlText: q('[data-url]'),
      copy: q('.copy'),
      videoInfo: q('.video'),
      audioInfo: q('.audio'),
      codecs: q('.codecs'),
      gop: q('.gop'),
      bitrateIn: q('.bitrate-in'),
      bitrateOut: q('.bitrate-out'),
      viewers: q('.viewers'),
      segments: q('.segments'),
      publisher: q('.publisher'),
      uptime: q('.uptime'),
      hls: null,
      url: '',
      retryAt: 0,
    };
    card.copy.addEventListener('click', () => copyURL(card));
    return card;
  }

  function copyURL(card) {
    const text = card.urlText.value;
    const done = (msg) => {
      card.copy.textContent = msg;
      setTimeout(() => { card.copy.textContent = 'Copy'; }, 1500);
    };
    const fallback = () => {
      card.urlText.focus();
      card.urlText.select();
      let ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      done(ok ? 'Copied' : 'Press Ctrl+C');
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => done('Copied'), fallback);
    } else {
      fallback();
    }
  }

  function set(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function updateCard(card, s, httpPort) {
    set(card.name, s.name || s.path);
    const state = s.state || 'unknown';
    set(card.state, state);
    card.state.dataset.state = state;
    card.state.className = 'state ' + state;
    card.el.dataset.streamState = state;

    set(card.videoInfo, videoText(s.video));
    set(card.audioInfo, audioText(s.audio));
    set(card.codecs, s.codecs || '–');
    if (typeof s.gop_seconds === 'number' && s.gop_seconds > 0) {
      set(card.gop, (Math.round(s.gop_seconds * 100) / 100) + ' s' + (s.gop_too_long ? ' (longer than the segment target)' : ''));
    } else {
      set(card.gop, '–');
    }
    card.gop.classList.toggle('warn', !!s.gop_too_long);
    set(card.bitrateIn, bitrate(s.bitrate_in_bps));
    set(card.bitrateOut, bitrate(s.bitrate_out_bps));
    set(card.viewers, typeof s.viewers_estimate === 'number' ? String(s.viewers_estimate) : '–');
    set(card.segments, (s.segments ?? '–') + ' segments, ' + (s.parts ?? '–') + ' parts, next #' + (s.next_media_sequence ?? '–'));
    const pub = s.publisher;
    set(card.publisher, pub && pub.remote ? pub.remote : 'none');
    const started = pub && pub.started_at ? Date.parse(pub.started_at) : NaN;
    set(card.uptime, isNaN(started) ? '–' : duration((Date.now() - started) / 1000));

    const url = playbackURL(httpPort, s.playback_path || '/' + s.path + '/index.m3u8');
    if (card.urlText.value !== url) card.urlText.value = url;
    if (url !== card.url) {
      card.url = url;
      startPlayer(card);
    } else if (!card.hls && !card.video.getAttribute('src') && card.retryAt && Date.now() >= card.retryAt) {
      card.retryAt = 0;
      startPlayer(card);
    }
  }

  function render(data) {
    const list = Array.isArray(data && data.streams) ? data.streams.slice() : [];
    list.sort((a, b) => String(a.path).localeCompare(String(b.path)));
    const seen = new Set();
    const streams = [];
    for (const s of list) {
      if (!s || typeof s.path !== 'string' || seen.has(s.path)) continue;
      seen.add(s.path);
      streams.push(s);
    }
    // Gone streams first, so that the others' cards need not move.
    for (const [path, card] of cards) {
      if (seen.has(path)) continue;
      stopPlayer(card);
      card.el.remove();
      cards.delete(path);
    }
    let prev = null;
    for (const s of streams) {
      let card = cards.get(s.path);
      if (!card) {
        card = newCard(s.path);
        cards.set(s.path, card);
      }
      // Keep the order without moving an element that is in place: moving
      // a playing <video> would interrupt it.
      const want = prev ? prev.nextSibling : streamsEl.firstChild;
      if (want !== card.el) streamsEl.insertBefore(card.el, want);
      updateCard(card, s, data.http_port);
      prev = card.el;
    }
    emptyEl.hidden = cards.size > 0;
  }

  function setStatus(text, bad) {
    set(statusEl, text);
    statusEl.classList.toggle('bad', !!bad);
  }

  // ---- polling ----

  async function poll() {
    if (inFlight) return;
    inFlight = true;
    try {
      const headers = { Accept: 'application/json' };
      if (memoryToken) headers.Authorization = 'Bearer ' + memoryToken;
      const resp = await fetch(API, { headers, cache: 'no-store', credentials: 'same-origin' });
      if (resp.status === 401) {
        stopPolling();
        authError.hidden = !memoryToken;
        authError.textContent = memoryToken ? 'That token was refused.' : '';
        authForm.hidden = false;
        forgetBtn.hidden = true;
        setStatus('Sign-in needed', true);
        tokenInput.focus();
        return;
      }
      if (!resp.ok) throw new Error('API answered ' + resp.status);
      const data = await resp.json();
      authForm.hidden = true;
      forgetBtn.hidden = !memoryToken;
      render(data);
      const n = cards.size;
      setStatus(n + (n === 1 ? ' stream' : ' streams') + ' · updated ' + new Date().toLocaleTimeString(), false);
    } catch (e) {
      setStatus('Cannot reach the API: ' + (e && e.message ? e.message : e), true);
    } finally {
      inFlight = false;
    }
  }

  function startPolling() {
    if (timer) return;
    poll();
    timer = setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    clearInterval(timer);
    timer = null;
  }

  authForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = tokenInput.value.trim();
    if (!v) return;
    setToken(v);
    tokenInput.value = '';
    authForm.hidden = true;
    startPolling();
  });

  forgetBtn.addEventListener('click', () => {
    setToken('');
    stopPolling();
    render({ streams: [] });
    startPolling();
  });

  startPolling();
})();
