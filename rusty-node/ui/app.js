// The single page: a hash router over the page modules, and one
// server-sent event stream whose events the open page may follow.
import { get, session } from './api.js';
import { show, errorBox } from './dom.js';
import * as home from './pages/home.js';
import * as explorer from './pages/explorer.js';
import * as media from './pages/media.js';
import * as masternodes from './pages/masternodes.js';
import * as governance from './pages/governance.js';
import * as wallet from './pages/wallet.js';

const routes = [
  [/^\/?$/, () => home.render()],
  [/^\/block\/([^/]+)$/, (m) => explorer.block(m[1])],
  [/^\/tx\/([0-9a-fA-F]{64})$/, (m) => explorer.tx(m[1])],
  [/^\/address\/([^/]+)$/, (m) => explorer.address(m[1])],
  [/^\/media$/, () => media.catalog()],
  [/^\/media\/([0-9a-fA-F]{64})$/, (m) => media.player(m[1])],
  [/^\/masternodes$/, () => masternodes.render()],
  [/^\/governance$/, () => governance.render()],
  [/^\/wallet$/, () => wallet.render()],
];

/** Handlers of the open page for server-sent events, by event name. */
export const live = { handlers: {} };

async function route() {
  live.handlers = {};
  if (window.__rustyCleanup) { window.__rustyCleanup(); window.__rustyCleanup = null; }
  const path = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  const started = performance.now();
  for (const [re, render] of routes) {
    const m = path.match(re);
    if (m) {
      try {
        await render(m);
      } catch (e) {
        show(errorBox(e));
      }
      // The browser test reads how long the page took to be ready.
      document.body.dataset.pageMs = String(Math.round(performance.now() - started));
      // From navigation start to the first page drawn (a fresh load).
      if (!document.body.dataset.readyMs) document.body.dataset.readyMs = String(Math.round(performance.now()));
      document.body.dataset.page = path;
      return;
    }
  }
  show(errorBox(new Error(`no page ${path}`)));
}

let events = null;

// One stream per tab. It is closed when the page is hidden for good or put
// in the back/forward cache: over HTTP/1.1 a browser keeps at most six
// connections to a host, and streams left open by cached pages would hold
// them and stall the next page's requests.
function connect() {
  const state = document.getElementById('live-state');
  if (events) events.close();
  const es = new EventSource('/api/v1/events');
  events = es;
  es.onopen = () => { state.textContent = 'live'; state.className = 'ok'; };
  es.onerror = () => { state.textContent = 'reconnecting…'; state.className = 'error'; };
  for (const name of ['block', 'mempool', 'resync']) {
    es.addEventListener(name, (ev) => {
      const f = live.handlers[name];
      if (f) f(JSON.parse(ev.data));
    });
  }
}

document.getElementById('search').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const q = document.getElementById('search-input').value.trim();
  if (!q) return;
  try {
    const found = await get(`search?q=${encodeURIComponent(q)}`);
    document.getElementById('search-input').value = '';
    location.hash = `#/${found.kind}/${found.id}`;
  } catch (e) {
    show(errorBox(e));
  }
});

window.addEventListener('hashchange', route);
window.addEventListener('pagehide', () => { if (events) { events.close(); events = null; } });
window.addEventListener('pageshow', (ev) => { if (ev.persisted) connect(); });
session().finally(() => { route(); connect(); });
