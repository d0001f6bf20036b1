// Media: the catalog (this node's store and what peers announced), search,
// and a player for files (Range requests) and live streams (HLS through the
// vendored hls.js), with the live table of a download's providers.
import { get, post } from '../api.js';
import { h, show, table, bytes, short, errorBox } from '../dom.js';

function row(item) {
  return [
    h('a', { href: `#/media/${item.id}`, class: 'media-link', 'data-id': item.id }, item.title || short(item.id)),
    item.live ? 'live' : item.mime,
    item.live ? '—' : bytes(item.size),
    item.complete ? 'stored' : `${Math.round(100 * (item.bytes_present || 0) / Math.max(1, item.size || 1))} %`,
    (item.tags || []).join(', '),
  ];
}

export async function catalog() {
  const results = h('div', { id: 'catalog' });
  const draw = async (q) => {
    try {
      const list = await get(q ? `media?q=${encodeURIComponent(q)}` : 'media');
      results.replaceChildren(list.length
        ? table(['title', 'type', 'size', 'here', 'tags'], list.map(row))
        : h('p', { class: 'muted' }, q ? 'nothing matches' : 'no content yet: publish with `rusty-cli stream publish`'));
    } catch (e) { results.replaceChildren(errorBox(e)); }
  };
  const input = h('input', { id: 'media-search', placeholder: 'Search titles and tags' });
  show(
    h('h1', {}, 'Media'),
    h('form', { onsubmit: (ev) => { ev.preventDefault(); draw(input.value.trim()); } }, input, ' ', h('button', { type: 'submit' }, 'Search')),
    results,
  );
  await draw('');
}

let hlsLoaded = null;
function loadHls() {
  if (!hlsLoaded) {
    hlsLoaded = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = '/assets/vendor/hls.min.js';
      s.onload = () => resolve(window.Hls);
      s.onerror = () => reject(new Error('could not load hls.js'));
      document.head.append(s);
    });
  }
  return hlsLoaded;
}

function providerTable(status) {
  const d = status && status.downloads && status.downloads[0];
  if (!d) {
    const l = status && status.live && status.live[0];
    if (!l) return h('p', { class: 'muted' }, 'no download running');
    return h('dl', {},
      h('dt', {}, 'Segments'), h('dd', {}, String(l.segments)),
      h('dt', {}, 'Latency p50 / p95'), h('dd', {}, `${l.latency_p50_ms ?? '–'} / ${l.latency_p95_ms ?? '–'} ms`),
      h('dt', {}, 'Skipped'), h('dd', {}, String(l.skipped)),
      h('dt', {}, 'Received'), h('dd', {}, bytes(l.received_bytes)));
  }
  return h('div', {},
    h('p', {}, `${d.state} · ${bytes(d.bytes_present)} of ${bytes(d.size)} · ${bytes(d.rate)}/s · ${d.bad_chunks} bad chunks`),
    table(['provider', 'received', 'in flight', 'rate', 'state'], (d.peers || []).map((p) => [
      h('span', { class: 'mono' }, short(p.peer)), bytes(p.bytes), String(p.in_flight), `${bytes(p.rate)}/s`,
      h('span', { class: p.state === 'active' ? 'ok' : 'error' }, p.state),
    ]), { id: 'providers' }));
}

export async function player(id) {
  const info = await get(`media/${id}`);
  const video = h('video', { id: 'player', controls: true, muted: true, autoplay: true, playsinline: true });
  const providers = h('div', { id: 'provider-table' });
  const state = h('p', { id: 'player-state', class: 'muted' }, 'starting…');
  show(
    h('h1', { id: 'media-title' }, info.title || short(id)),
    h('p', { class: 'muted' }, info.live ? 'live stream' : `${info.mime} · ${bytes(info.size)}`),
    video, state,
    h('h2', {}, 'Providers'), providers,
    h('h2', {}, 'Tags'), h('p', {}, (info.tags || []).join(', ') || '—'),
  );
  await post(`media/${id}/view`);
  let hls = null;
  if (info.live) {
    const Hls = await loadHls();
    const src = `/media/${id}/live.m3u8`;
    if (Hls && Hls.isSupported()) {
      hls = new Hls({ enableWorker: false, liveSyncDurationCount: 3, manifestLoadingMaxRetry: 20, manifestLoadingRetryDelay: 500 });
      hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) state.textContent = `player error: ${data.type} ${data.details}`; });
      hls.loadSource(src);
      hls.attachMedia(video);
    } else {
      video.src = src;
    }
  } else {
    video.src = `/media/${id}/content`;
  }
  video.addEventListener('playing', () => { state.textContent = 'playing'; });
  video.addEventListener('error', () => { state.textContent = `media error ${video.error && video.error.code}`; });
  video.play().catch(() => {});
  const poll = async () => {
    try { providers.replaceChildren(providerTable(await get(`media/${id}/status`))); } catch (_) { /* next tick */ }
  };
  await poll();
  const timer = setInterval(poll, 1000);
  window.__rustyCleanup = () => { clearInterval(timer); if (hls) hls.destroy(); video.removeAttribute('src'); video.load(); };
}
