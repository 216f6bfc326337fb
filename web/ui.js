// What every view shares: the one alert region for errors, a polite status
// line, and a poller that stops with its view.
import { fill, h } from './dom.js';
import { pollDelay } from './api.js';

// Shows an API error as the message agentd gave it (code and request id in
// small print); an abort is no error.
export function showError(err) {
  if (!err || err.name === 'AbortError') return;
  const box = document.getElementById('error');
  const small = [];
  if (err.code) small.push(`code ${err.code}`);
  if (err.requestId) small.push(`request ${err.requestId}`);
  fill(box, h('span', {}, err.message || String(err)), small.length ? [' ', h('small', {}, small.join(' · '))] : null);
}

export function clearError() {
  document.getElementById('error').replaceChildren();
}

// A short message for screen readers (role=status).
export function announce(text) {
  const s = document.getElementById('status');
  s.textContent = '';
  s.textContent = text;
}

// Calls `tick()` now and then every `ms` (pollDelay decides: the override
// in sessionStorage, hidden tab, rate budget, Retry-After) until the
// returned stop() is called, tick returns false or a call is refused
// for want of a token (401); a tick returning a number
// sets the next period (slower when nothing moves). A failing tick shows its
// error and the polling goes on.
export function poll(tick, ms) {
  let stopped = false;
  let timer = 0;
  const run = async () => {
    if (stopped) return;
    let next = ms;
    try {
      const r = await tick();
      if (r === false) return;
      if (typeof r === 'number') next = r;
    } catch (err) {
      showError(err);
      // Without a token nothing will work until one is given, and giving
      // one draws the view again.
      if (err.status === 401) return;
    }
    if (!stopped) timer = setTimeout(run, pollDelay(next));
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
