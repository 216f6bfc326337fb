// The one way the page calls agentd: the token from sessionStorage as a
// Bearer header (never in a URL), every non-2xx turned into an ApiError
// carrying agentd's own message, a 401 handed to the token dialog, a 429
// waited out as its Retry-After says, and RateLimit-Remaining/-Reset kept
// so the polling slows down before the limit is reached.

const TOKEN_KEY = 'agentd.token';
const POLL_KEY = 'agentd.poll_ms';

export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let unauthorized = () => {};
// fn(error) runs on every 401 (the page opens its token dialog).
export function onUnauthorized(fn) {
  unauthorized = fn;
}

let retryAt = 0; // ms epoch before which no call should be made (429)
let budget = null; // {remaining, resetAt} from the last RateLimit-* headers

// How long a poll of nominal period `ms` should wait now: the override in
// sessionStorage, at least 10 s in a hidden tab, and never faster than
// what is left of the caller's rate limit allows until its window resets
// (spent at half speed, so clicks still get through), nor before a 429's
// Retry-After.
export function pollDelay(ms) {
  const override = Number(sessionStorage.getItem(POLL_KEY));
  let d = Number.isFinite(override) && override > 0 ? override : ms;
  if (document.visibilityState === 'hidden') d = Math.max(d, 10000);
  if (budget) {
    const left = budget.resetAt - Date.now();
    if (left > 0) d = Math.max(d, (2 * left) / Math.max(budget.remaining, 1));
  }
  return Math.max(d, retryAt - Date.now());
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });

function noteRate(res) {
  const remaining = Number(res.headers.get('RateLimit-Remaining'));
  const reset = Number(res.headers.get('RateLimit-Reset'));
  if (!res.headers.has('RateLimit-Remaining') || !Number.isFinite(remaining) || !(reset > 0)) return;
  budget = { remaining, resetAt: Date.now() + reset * 1000 };
}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const message = body && typeof body.error === 'string' ? body.error : `${res.status} ${res.statusText}`;
  return new ApiError(res.status, body?.code || 'http_error', message,
    body?.request_id || res.headers.get('X-Request-Id') || '');
}

// Calls `method path` with an optional JSON body; resolves to the parsed
// JSON (null for 204), or with {raw: true} to the Response itself (a
// stream). opts.signal aborts; opts.accept overrides the Accept header.
export async function api(method, path, body, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    const wait = retryAt - Date.now();
    if (wait > 0) await sleep(wait, opts.signal);
    const headers = { Accept: opts.accept || 'application/json' };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
      cache: 'no-store',
    });
    noteRate(res);
    if (res.status === 429) {
      const s = Number(res.headers.get('Retry-After'));
      retryAt = Date.now() + (Number.isFinite(s) && s > 0 ? s : 1) * 1000;
      if (attempt < 2 && (Number.isFinite(s) ? s : 1) <= 60) continue;
    }
    if (!res.ok) {
      const err = await errorOf(res);
      if (res.status === 401) unauthorized(err);
      throw err;
    }
    if (opts.raw) return res;
    if (res.status === 204) return null;
    return res.json();
  }
}

// Path segment for an agent id, a deployment id, a version name.
export const seg = (s) => encodeURIComponent(s);
