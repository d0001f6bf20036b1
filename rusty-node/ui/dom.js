// Building the page: every string from the node (titles, descriptions,
// addresses) goes in as a text node, never as HTML.

/** An element: h('a', {href: '#/x'}, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the page's content. */
export function show(...children) {
  const page = document.getElementById('page');
  page.replaceChildren(...children.flat());
}

/** Base units (10^-8 RSC) as coins, exactly. */
export function coins(units) {
  if (units === undefined || units === null) return '–';
  const n = BigInt(units);
  const sign = n < 0n ? '-' : '';
  const a = n < 0n ? -n : n;
  const frac = (a % 100000000n).toString().padStart(8, '0');
  return `${sign}${a / 100000000n}.${frac} RSC`;
}

export function ago(unixSeconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - unixSeconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function bytes(n) {
  if (n === undefined || n === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function short(hash) {
  return hash && hash.length > 20 ? `${hash.slice(0, 10)}…${hash.slice(-8)}` : hash;
}

export function card(label, value, id) {
  return h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, value));
}

export function table(headers, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

export function errorBox(e) {
  return h('p', { class: 'error', id: 'error' }, e && e.message ? e.message : String(e));
}
