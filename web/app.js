// The dashboard's entry: the hash router (#/, #/agents/{id},
// #/agents/{id}/chat|training|deployments; the hash only ever holds an
// agent id), the token dialog, and the header's "Forget token".
import { onUnauthorized, setToken } from './api.js';
import { agentFrame, renderOverview } from './agent.js';
import { renderHome } from './agents.js';
import { renderChat } from './chat.js';
import { renderDeployments } from './deployments.js';
import { renderTraining } from './training.js';
import { announce, clearError } from './ui.js';

const main = document.getElementById('main');
let stopView = () => {};
let lastRoute = null;

function parseRoute(hash) {
  const m = /^#\/agents\/([^/]+)(?:\/(chat|training|deployments))?\/?$/.exec(hash);
  if (m) {
    let id;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      return { view: 'home' };
    }
    return { view: 'agent', id, section: m[2] || '' };
  }
  return { view: 'home' };
}

function route(force) {
  const hash = location.hash;
  // In-page anchors (the skip link) are not routes.
  if (hash && !hash.startsWith('#/') && !force && lastRoute !== null) return;
  const r = parseRoute(hash);
  const key = JSON.stringify(r);
  if (key === lastRoute && !force) return;
  const sameAgent = lastRoute && r.view === 'agent' && JSON.parse(lastRoute).id === r.id;
  lastRoute = key;
  stopView();
  clearError();
  if (r.view === 'home') {
    stopView = renderHome(main);
    document.title = 'Agents · agentd';
  } else {
    const { body } = agentFrame(main, r.id, r.section);
    const render = { '': renderOverview, chat: renderChat, training: renderTraining, deployments: renderDeployments }[r.section];
    stopView = render(body, r.id);
    const name = { '': 'Overview', chat: 'Chat', training: 'Training', deployments: 'Deployments' }[r.section];
    document.title = `${r.id} · ${name} · agentd`;
  }
  // Move focus to the new view's heading, unless only the section of the
  // same agent changed (then the section link keeps it).
  if (!force && !sameAgent) main.querySelector('h2')?.focus();
}

// Token dialog: opened by any 401; the token goes to sessionStorage only.
const dialog = document.getElementById('token-dialog');
const form = document.getElementById('token-form');
const input = document.getElementById('token-input');
onUnauthorized(() => {
  if (!dialog.open) {
    input.value = '';
    dialog.showModal();
  }
});
form.addEventListener('submit', (e) => {
  e.preventDefault();
  const t = input.value.trim();
  if (!t) {
    input.focus();
    return;
  }
  setToken(t);
  input.value = '';
  dialog.close();
  announce('Token saved for this tab');
  route(true);
});
document.getElementById('token-cancel').addEventListener('click', () => dialog.close());
document.getElementById('forget-token').addEventListener('click', () => {
  setToken('');
  announce('Token forgotten');
  route(true);
});
document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});

window.addEventListener('hashchange', () => route(false));
route(false);
