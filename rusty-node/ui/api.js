// The node's /api/v1 façade. POSTs carry the session's CSRF token; the
// session cookie itself is HttpOnly and never seen here.

let csrf = null;

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function parse(res) {
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: text }; }
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || `HTTP ${res.status}`);
  return body;
}

export async function session() {
  const s = await parse(await fetch('/api/v1/session', { credentials: 'same-origin' }));
  csrf = s.csrf;
  return s;
}

export async function get(path) {
  return parse(await fetch(`/api/v1/${path}`, { credentials: 'same-origin' }));
}

export async function post(path, body = {}) {
  if (!csrf) await session();
  const res = await fetch(`/api/v1/${path}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: JSON.stringify(body),
  });
  const out = await parse(res);
  if (out && out.csrf) csrf = out.csrf;
  return out;
}
