// Home (#/): every agent with its status, stage, progress and quality,
// polled; and the form that creates one from typed text or a dataset file.
import { api, seg } from './api.js';
import { fill, h, uid } from './dom.js';
import { announce, clearError, poll, showError } from './ui.js';

const LIST_MS = 2000;

// The items of a dataset file: the file is an array of {prompt, answer,
// category?}, or (like tests/data/*_dataset.json and the original's files)
// an object holding that array as `training_data`, as POST
// /agents/advanced also reads it. Anything else: null.
export function datasetItems(data) {
  if (Array.isArray(data)) return data;
  if (data && typeof data === 'object' && Array.isArray(data.training_data)) return data.training_data;
  return null;
}

// Checks that `data` is what POST /agents takes as `dataset`: an array of
// {prompt, answer, category?} with non-empty strings. Returns null or a
// message naming the first bad item.
export function datasetProblem(data) {
  if (!Array.isArray(data)) return 'the file must hold a JSON array of {"prompt", "answer"} items (or an object with one as "training_data")';
  if (data.length === 0) return 'the dataset is empty: it needs at least one {"prompt", "answer"} item';
  for (let i = 0; i < data.length; i++) {
    const it = data[i];
    const which = `item ${i + 1} (index ${i})`;
    if (it === null || typeof it !== 'object' || Array.isArray(it)) return `${which} is not an object with "prompt" and "answer"`;
    for (const f of ['prompt', 'answer']) {
      if (typeof it[f] !== 'string' || it[f].trim() === '') return `${which}: "${f}" must be a non-empty string`;
    }
    if (it.category !== undefined && typeof it.category !== 'string') return `${which}: "category" must be a string`;
  }
  return null;
}

function qualityText(q) {
  if (!q) return 'not deployed';
  const score = typeof q.score === 'number' ? ` (${q.score.toFixed(2)})` : '';
  return `${q.label}${score}`;
}

function agentRow(id, a) {
  const progress = typeof a.progress === 'number' ? a.progress : 0;
  return h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `#/agents/${seg(id)}` }, id)),
    h('td', {}, a.status, a.status === 'error' && a.error ? h('span', { class: 'hint' }, ` — ${a.error}`) : null),
    h('td', {}, a.stage || '—'),
    h('td', {}, h('progress', { max: 100, value: progress, 'aria-label': `Progress of ${id}`, 'aria-valuetext': `${progress} %` }),
      ` ${progress} %`),
    h('td', {}, qualityText(a.quality)));
}

function listView() {
  const body = h('tbody', {});
  const empty = h('p', { class: 'hint', hidden: true }, 'No agents yet. Create one with the form.');
  const total = h('p', { class: 'hint' });
  const table = h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Agents and their status'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Agent'), h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col' }, 'Stage'), h('th', { scope: 'col' }, 'Progress'),
        h('th', { scope: 'col' }, 'Quality'))),
      body));
  let last = '';
  const tick = async () => {
    const users = {};
    let cursor = '';
    let count = 0;
    // At most 10 pages (1,000 agents): a dashboard is no bulk export.
    for (let page = 0; page < 10; page++) {
      const q = `/api/v1/agents?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r = await api('GET', q);
      Object.assign(users, r.users);
      count = r.total_users;
      if (!r.next_cursor) break;
      cursor = r.next_cursor;
    }
    const key = JSON.stringify(users);
    if (key === last) return;
    last = key;
    const ids = Object.keys(users).sort();
    fill(body, ids.map((id) => agentRow(id, users[id])));
    empty.hidden = ids.length > 0;
    table.hidden = ids.length === 0;
    total.textContent = `${count} agent${count === 1 ? '' : 's'}`;
  };
  return { el: h('div', {}, total, empty, table), tick };
}

function createForm() {
  const idIn = uid('agent-id');
  const textIn = uid('training-text');
  const fileIn = uid('dataset-file');
  const hintId = uid('file-hint');
  let dataset = null;
  let datasetName = '';

  const agentId = h('input', { id: idIn, type: 'text', name: 'user_id', autocomplete: 'off', required: true, spellcheck: 'false' });
  const text = h('textarea', { id: textIn, name: 'training_data', rows: 6 });
  const fileHint = h('p', { id: hintId, class: 'hint' }, 'Or drop a .json file here: an array of {"prompt", "answer"} items.');
  const file = h('input', { id: fileIn, type: 'file', accept: '.json,application/json', 'aria-describedby': hintId });
  const loaded = h('p', { class: 'hint', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit' }, 'Create agent');

  const take = async (f) => {
    dataset = null;
    datasetName = '';
    loaded.textContent = '';
    if (!f) return;
    let data;
    try {
      data = JSON.parse(await f.text());
    } catch (e) {
      showError(new Error(`${f.name} is not valid JSON: ${e.message}`));
      return;
    }
    const items = datasetItems(data);
    const bad = datasetProblem(items);
    if (bad) {
      showError(new Error(`${f.name}: ${bad}`));
      return;
    }
    clearError();
    if (!agentId.value.trim() && !Array.isArray(data) && typeof data.user_id === 'string') agentId.value = data.user_id;
    dataset = items;
    data = items;
    datasetName = f.name;
    loaded.textContent = `${f.name}: ${data.length} item${data.length === 1 ? '' : 's'} ready.`;
  };
  file.addEventListener('change', () => take(file.files[0]));

  const zone = h('div', { class: 'dropzone' },
    h('label', { for: fileIn }, 'Dataset file (JSON)'), fileHint, file, loaded);
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) take(f);
  });

  const form = h('form', { novalidate: true, 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'Create an agent'),
    h('label', { for: idIn }, 'Agent id'),
    agentId,
    h('label', { for: textIn }, 'Training text'),
    text,
    zone,
    h('div', { class: 'actions' }, submit));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = agentId.value.trim();
    if (!id) {
      showError(new Error('Agent id: type the id of the agent to create'));
      agentId.focus();
      return;
    }
    let body;
    if (dataset) body = { user_id: id, dataset };
    else if (text.value.trim()) body = { user_id: id, training_data: text.value };
    else {
      showError(new Error('Type some training text or choose a dataset file'));
      text.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api('POST', '/api/v1/agents', body);
      clearError();
      announce(`Agent ${id} created${dataset ? ` from ${datasetName}` : ''}`);
      location.hash = `#/agents/${seg(id)}`;
    } catch (err) {
      showError(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// The home view; returns its stop function.
export function renderHome(main) {
  const list = listView();
  fill(main,
    h('div', { class: 'grid' },
      h('section', { 'aria-labelledby': 'agents-title' },
        h('h2', { id: 'agents-title', tabindex: -1 }, 'Agents'), list.el),
      h('div', { class: 'panel' }, createForm())));
  return poll(list.tick, LIST_MS);
}
