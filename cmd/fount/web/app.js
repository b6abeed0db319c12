// fount operator page: lists the streams /api/v1/streams reports, every
// 2 s, each with a muted live player, and the recordings /api/v1/recordings
// reports (--record): under their stream's card, or under "past streams"
// once the stream is gone. A recording plays in its card's player. No
// framework; data goes into the page only as text, never as HTML.
'use strict';

(function () {
  const API = '/api/v1/streams';
  const RECORDINGS_API = '/api/v1/recordings';
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
  const pastEl = $('past');
  const pastStreamsEl = $('past-streams');
  const pastTemplate = $('past-card');
  const rowTemplate = $('rec-row');

  // path -> {el, video, hls, url, fields...}
  const cards = new Map();
  // path -> the card of a stream gone from the API that left recordings
  const pastCards = new Map();
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

  function size(n) {
    if (typeof n !== 'number' || !isFinite(n) || n < 0) return '–';
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let v = n, i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)) + ' ' + units[i];
  }

  // viewerScheme is the viewer port's scheme as the API says it ("https"
  // when that port speaks TLS only); this page may be served over plain HTTP.
  let viewerScheme = '';

  function playbackURL(httpPort, playbackPath) {
    const port = httpPort ? ':' + httpPort : (location.port ? ':' + location.port : '');
    const scheme = viewerScheme ? viewerScheme + ':' : location.protocol;
    return scheme + '//' + location.hostname + port + playbackPath;
  }

  // ---- players ----

  function startPlayer(card) {
    stopRealtime(card);
    stopPlayer(card);
    card.playerError.hidden = true;
    const video = card.video;
    // Live players are many and muted; a recording plays because someone
    // asked for it, from its start ("start over" while it is being made).
    const rec = !!card.rec;
    video.muted = !rec;
    if (window.Hls && Hls.isSupported()) {
      const hls = new Hls(rec ? { startPosition: 0 } : { lowLatencyMode: true });
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
      if (rec) video.currentTime = 0;
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

  // ---- real time: WebRTC playback (realtime.js) ----

  const realtimeUI = { set, showPlayerError, stopPlayer };
  function startRealtime(card) { window.fountRealtime.start(card, realtimeUI); }
  function stopRealtime(card) { window.fountRealtime.stop(card, realtimeUI); }

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
      webrtc: q('.webrtc'),
      realtimeRow: q('[data-realtime-row]'),
      realtimeButton: q('[data-realtime]'),
      realtimeNote: q('[data-realtime-note]'),
      pc: null,          // the WebRTC (WHEP) player's connection, while it plays
      whepURL: '',
      whepSession: '',
      segments: q('.segments'),
      publisher: q('.publisher'),
      uptime: q('.uptime'),
      hls: null,
      url: '',
      liveURL: '',
      retryAt: 0,
    };
    addRecordings(card, el);
    card.copy.addEventListener('click', () => copyURL(card));
    card.realtimeButton.addEventListener('click', () => {
      if (card.pc) {
        stopRealtime(card);
        startPlayer(card);
      } else {
        startRealtime(card);
      }
    });
    return card;
  }

  // newPastCard is the card of a stream gone from the API that left
  // recordings: a name, a player shown while one of them plays, the list.
  function newPastCard(stream) {
    const el = pastTemplate.content.firstElementChild.cloneNode(true);
    el.dataset.recordingsOf = stream;
    const card = {
      el,
      past: true,
      video: el.querySelector('[data-player]'),
      playerError: el.querySelector('.player-error'),
      hls: null,
      url: '',
      retryAt: 0,
    };
    set(el.querySelector('.name'), stream);
    addRecordings(card, el);
    return card;
  }

  // ---- recordings ----

  // addRecordings gives card its list of recordings (the [data-recordings]
  // section of el).
  function addRecordings(card, el) {
    card.recSection = el.querySelector('[data-recordings]');
    card.recBody = card.recSection.querySelector('.rec-list');
    card.recPlaying = card.recSection.querySelector('.rec-playing');
    card.recPlayingText = card.recSection.querySelector('.rec-playing-text');
    card.rows = new Map(); // recording id -> row
    card.rec = '';         // id of the recording playing, '' for live
    card.recSection.querySelector('.rec-live').addEventListener('click', () => stopRecording(card));
  }

  function playRecording(card, rec, httpPort) {
    card.rec = rec.id;
    card.url = playbackURL(httpPort, rec.playlist);
    card.retryAt = 0;
    set(card.recPlayingText, 'Playing recording ' + rec.id + '.');
    card.recPlaying.hidden = false;
    card.video.hidden = false;
    markPlaying(card);
    startPlayer(card);
  }

  // stopRecording goes back to the live stream, or stops a past stream's
  // player.
  function stopRecording(card) {
    card.rec = '';
    card.recPlaying.hidden = true;
    card.playerError.hidden = true;
    markPlaying(card);
    if (card.past) {
      card.url = '';
      stopPlayer(card);
      card.video.hidden = true;
      return;
    }
    card.url = card.liveURL;
    startPlayer(card);
  }

  function markPlaying(card) {
    for (const [id, row] of card.rows) row.el.classList.toggle('playing', id === card.rec);
  }

  function newRow(card) {
    const el = rowTemplate.content.firstElementChild.cloneNode(true);
    const q = (sel) => el.querySelector(sel);
    const row = {
      el,
      id: q('.rec-id'),
      state: q('.rec-state'),
      duration: q('.rec-duration'),
      size: q('.rec-size'),
      play: q('.rec-play'),
      download: q('.rec-download'),
      rec: null,
      httpPort: 0,
    };
    row.play.addEventListener('click', () => {
      if (row.rec) playRecording(card, row.rec, row.httpPort);
    });
    return row;
  }

  // viewerPath accepts a path on the viewer port as the API gives it.
  function viewerPath(p) {
    return typeof p === 'string' && p.startsWith('/') && !p.startsWith('//');
  }

  // updateRecordings lists recs (newest first) in card; the recording
  // playing stops when it is no longer listed (deleted).
  function updateRecordings(card, recs, httpPort) {
    const seen = new Set();
    let prev = null;
    for (const r of recs) {
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      let row = card.rows.get(r.id);
      if (!row) {
        row = newRow(card);
        card.rows.set(r.id, row);
      }
      const want = prev ? prev.nextSibling : card.recBody.firstChild;
      if (want !== row.el) card.recBody.insertBefore(row.el, want);
      prev = row.el;
      row.rec = r;
      row.httpPort = httpPort;
      row.el.dataset.recording = r.id;
      set(row.id, r.id);
      const start = Date.parse(r.start);
      row.id.title = isNaN(start) ? '' : 'Started ' + new Date(start).toLocaleString();
      const state = r.state === 'recording' ? 'recording' : 'finished';
      set(row.state, state);
      row.state.className = 'state rec-state ' + state;
      set(row.duration, duration(r.duration));
      set(row.size, size(r.bytes));
      row.play.disabled = !viewerPath(r.playlist);
      if (viewerPath(r.download)) {
        const href = playbackURL(httpPort, r.download);
        if (row.download.href !== href) row.download.href = href;
        row.download.hidden = false;
      } else {
        row.download.removeAttribute('href');
        row.download.hidden = true;
      }
    }
    for (const [id, row] of card.rows) {
      if (seen.has(id)) continue;
      row.el.remove();
      card.rows.delete(id);
    }
    if (card.rec && !seen.has(card.rec)) stopRecording(card);
    markPlaying(card);
    card.recSection.hidden = card.rows.size === 0;
  }

  // renderRecordings puts each stream's recordings under its card, and
  // those of streams without one under "past streams". data is null when
  // the API has no recordings to give (an older fount).
  function renderRecordings(data) {
    const list = data && Array.isArray(data.recordings) ? data.recordings : [];
    const httpPort = data ? data.http_port : 0;
    if (data && data.http_scheme) viewerScheme = data.http_scheme;
    const byStream = new Map();
    for (const r of list) {
      if (!r || typeof r.stream !== 'string' || typeof r.id !== 'string') continue;
      if (!byStream.has(r.stream)) byStream.set(r.stream, []);
      byStream.get(r.stream).push(r);
    }
    for (const [path, card] of cards) updateRecordings(card, byStream.get(path) || [], httpPort);
    const past = [...byStream.keys()].filter((p) => !cards.has(p)).sort();
    for (const [path, card] of pastCards) {
      if (past.includes(path)) continue;
      stopPlayer(card);
      card.el.remove();
      pastCards.delete(path);
    }
    let prev = null;
    for (const path of past) {
      let card = pastCards.get(path);
      if (!card) {
        card = newPastCard(path);
        pastCards.set(path, card);
      }
      const want = prev ? prev.nextSibling : pastStreamsEl.firstChild;
      if (want !== card.el) pastStreamsEl.insertBefore(card.el, want);
      updateRecordings(card, byStream.get(path), httpPort);
      prev = card.el;
    }
    pastEl.hidden = pastCards.size === 0;
    return list.length;
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
    const rtc = s.webrtc;
    set(card.webrtc, rtc ? rtc.viewers + ' viewer' + (rtc.viewers === 1 ? '' : 's') +
      (rtc.video ? ', ' + (rtc.video_codec || 'video') + (rtc.audio ? ' and Opus audio' : ' only (the audio is not Opus)') : ', no video WebRTC can send (H.264, VP9, AV1)') +
      (rtc.b_frames ? '; B-frames: browsers show only keyframes' : '') : 'off');
    card.realtimeRow.hidden = !(rtc && rtc.video) && !card.pc;
    if (rtc) card.whepURL = playbackURL(httpPort, rtc.whep_path);
    set(card.segments, (s.segments ?? '–') + ' segments, ' + (s.parts ?? '–') + ' parts, next #' + (s.next_media_sequence ?? '–'));
    const pub = s.publisher;
    set(card.publisher, pub && pub.remote ? pub.remote : 'none');
    const started = pub && pub.started_at ? Date.parse(pub.started_at) : NaN;
    set(card.uptime, isNaN(started) ? '–' : duration((Date.now() - started) / 1000));

    const url = playbackURL(httpPort, s.playback_path || '/' + s.path + '/index.m3u8');
    if (card.urlText.value !== url) card.urlText.value = url;
    card.liveURL = url;
    if (!card.rec && url !== card.url) {
      card.url = url;
      startPlayer(card);
    } else if (!card.pc && !card.hls && !card.video.getAttribute('src') && card.retryAt && Date.now() >= card.retryAt) {
      card.retryAt = 0;
      startPlayer(card);
    }
  }

  function render(data) {
    const list = Array.isArray(data && data.streams) ? data.streams.slice() : [];
    if (data && data.http_scheme) viewerScheme = data.http_scheme;
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
      stopRealtime(card);
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

  function apiGet(url) {
    const headers = { Accept: 'application/json' };
    if (memoryToken) headers.Authorization = 'Bearer ' + memoryToken;
    return fetch(url, { headers, cache: 'no-store', credentials: 'same-origin' });
  }

  async function poll() {
    if (inFlight) return;
    inFlight = true;
    try {
      const [resp, recResp] = await Promise.all([apiGet(API), apiGet(RECORDINGS_API).catch(() => null)]);
      if (resp.status === 401 || (recResp && recResp.status === 401)) {
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
      // Recordings are extra: without them (an older fount, a hiccup) the
      // streams are still shown.
      let recs = null;
      if (recResp && recResp.ok) recs = await recResp.json().catch(() => null);
      authForm.hidden = true;
      forgetBtn.hidden = !memoryToken;
      render(data);
      const nrec = renderRecordings(recs);
      const n = cards.size;
      setStatus(n + (n === 1 ? ' stream' : ' streams') +
        (nrec ? ' · ' + nrec + (nrec === 1 ? ' recording' : ' recordings') : '') +
        ' · updated ' + new Date().toLocaleTimeString(), false);
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
    renderRecordings(null);
    startPolling();
  });

  startPolling();
})();
