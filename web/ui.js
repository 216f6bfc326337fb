// What every view shares: the one alert region for errors, a polite status
// line, and a poller that stops with its view.
import { fill, h } from './dom.js';
import { pollDelay } from './api.js';

// Shows an API error as the message agentd gave it (code and request id in
// small print); an abort is no error.
// Returns the element shown (for clearErrorShown), or null.
export function showError(err) {
  if (!err || err.name === 'AbortError') return null;
  const box = document.getElementById('error');
  const small = [];
  if (err.code) small.push(`code ${err.code}`);
  if (err.requestId) small.push(`request ${err.requestId}`);
  const msg = h('span', {}, err.message || String(err));
  fill(box, msg, small.length ? [' ', h('small', {}, small.join(' · '))] : null);
  return msg;
}

// Clears the alert if it still shows `shown` (what showError returned),
// and leaves any later error alone.
function clearErrorShown(shown) {
  const box = document.getElementById('error');
  if (shown && box.contains(shown)) box.replaceChildren();
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
// error and the polling goes on; the error goes when a tick works again.
export function poll(tick, ms) {
  let stopped = false;
  let timer = 0;
  let shown = null;
  const run = async () => {
    if (stopped) return;
    let next = ms;
    try {
      const r = await tick();
      // A poll that works again takes back the error it showed.
      clearErrorShown(shown);
      shown = null;
      if (r === false) return;
      if (typeof r === 'number') next = r;
    } catch (err) {
      shown = showError(err);
      // Without a token nothing will work until one is given, and giving
      // one draws the view again.
      if (err.status === 401) return;
    }
    if (!stopped) timer = setTimeout(() => {
      timer = 0;
      run();
    }, pollDelay(next));
  };
  // A tab coming back into view is brought up to date at once, not after
  // the slow period it was waiting out while hidden.
  const wake = () => {
    if (document.visibilityState === 'visible' && timer && !stopped) {
      clearTimeout(timer);
      timer = 0;
      run();
    }
  };
  document.addEventListener('visibilitychange', wake);
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', wake);
  };
}
