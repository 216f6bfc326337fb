// Deployments (#/agents/{id}/deployments): the agent's deployments with
// their status, create one from a model version (pushed live or left
// pending), push one, remove one (removing the live one rolls back to the
// one before), and read a deployment's log.
import { api, seg } from './api.js';
import { fill, formatTime, h, uid } from './dom.js';
import { announce, clearError, poll, showError } from './ui.js';

const LIST_MS = 3000;

export function renderDeployments(body, id) {
  const modelId = uid('model');
  const pushId = uid('push');
  const logTitle = uid('log-title');
  const model = h('select', { id: modelId, name: 'model' });
  const push = h('input', { id: pushId, type: 'checkbox', checked: true, name: 'push' });
  const create = h('button', { type: 'submit' }, 'Create deployment');
  const rows = h('tbody', {});
  const none = h('p', { class: 'hint', hidden: true }, 'No deployment yet.');
  const logHead = h('h3', { id: logTitle }, 'Deployment log');
  const logWho = h('p', { class: 'hint' }, 'Choose Logs on a deployment to read its events.');
  const log = h('ol', { class: 'log', 'aria-labelledby': logTitle });
  const base = `/api/v1/agents/${seg(id)}`;

  const act = async (what, fn) => {
    try {
      await fn();
      clearError();
      announce(what);
      await refresh(true);
    } catch (err) {
      showError(err);
    }
  };

  const showLogs = async (d) => {
    try {
      const r = await api('GET', `${base}/deployments/${seg(d.id)}/logs`);
      clearError();
      logWho.textContent = `Deployment ${d.id} (${d.model})`;
      fill(log, r.events.map((ev) => h('li', {},
        h('time', { datetime: ev.at }, formatTime(ev.at)), ` — ${ev.event}: ${ev.message}`)));
      logHead.focus?.();
    } catch (err) {
      showError(err);
    }
  };

  const row = (d) => {
    const pushB = h('button', { type: 'button', class: 'secondary' }, 'Push');
    const removeB = h('button', { type: 'button', class: 'secondary' }, 'Remove');
    const logsB = h('button', { type: 'button', class: 'secondary' }, 'Logs');
    pushB.disabled = d.status === 'live' || d.status === 'removed';
    removeB.disabled = d.status === 'removed';
    pushB.addEventListener('click', () => act(`Deployment of ${d.model} pushed`,
      () => api('POST', `${base}/deployments/${seg(d.id)}/push`, {})));
    removeB.addEventListener('click', () => act(`Deployment of ${d.model} removed`,
      () => api('DELETE', `${base}/deployments/${seg(d.id)}`)));
    logsB.addEventListener('click', () => showLogs(d));
    return h('tr', { 'data-deployment': d.id },
      h('th', { scope: 'row' }, d.model),
      h('td', {}, d.status),
      h('td', { class: 'num' }, typeof d.quality === 'number' ? d.quality.toFixed(3) : '—'),
      h('td', { class: 'hide-narrow' }, d.reason || ''),
      h('td', { class: 'hide-narrow' }, formatTime(d.created_at)),
      h('td', {}, h('div', { class: 'actions' }, pushB, removeB, logsB)));
  };

  let lastList = '';
  let lastModels = '';
  const refresh = async (force) => {
    const [ms, ds] = await Promise.all([
      api('GET', `${base}/models`),
      api('GET', `${base}/deployments?limit=100`),
    ]);
    const mk = JSON.stringify(ms.models.map((m) => [m.name, m.state, m.deployed]));
    if (mk !== lastModels) {
      lastModels = mk;
      const chosen = model.value;
      fill(model, ms.models.map((m) => h('option', { value: m.name },
        `${m.name}${m.deployed ? ' (serving)' : ''}${m.metrics ? `, quality ${m.metrics.quality_score.toFixed(2)}` : ''}`)));
      if (chosen && ms.models.some((m) => m.name === chosen)) model.value = chosen;
      else if (ms.models.length) model.value = ms.models[ms.models.length - 1].name;
    }
    const dk = JSON.stringify(ds.deployments);
    if (force || dk !== lastList) {
      lastList = dk;
      fill(rows, ds.deployments.map(row));
      none.hidden = ds.deployments.length > 0;
    }
  };

  const form = h('form', { novalidate: true },
    h('label', { for: modelId }, 'Model version'), model,
    h('p', {}, h('label', { for: pushId, class: 'inline' }, push, 'Push live now')),
    h('div', { class: 'actions' }, create));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!model.value) {
      showError(new Error('Model version: this agent has no version to deploy yet'));
      return;
    }
    create.disabled = true;
    await act(`Deployment of ${model.value} created`,
      () => api('POST', `${base}/deployments`, { model: model.value, push: push.checked }));
    create.disabled = false;
  });

  const tableTitle = 'Deployments';
  fill(body, form,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', {}, tableTitle),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Model'), h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col', class: 'num' }, 'Quality'), h('th', { scope: 'col', class: 'hide-narrow' }, 'Reason'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'Created'), h('th', { scope: 'col' }, 'Actions'))),
      rows)),
    none,
    h('section', { 'aria-labelledby': logTitle }, logHead, logWho, log));
  return poll(() => refresh(false), LIST_MS);
}
