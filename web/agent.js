// One agent (#/agents/{id}[/section]): its heading, the section links, the
// delete dialog, and the Overview section (status, the four stages with
// their timings and summaries, progress and the time left).
import { api, seg } from './api.js';
import { fill, h, uid } from './dom.js';
import { announce, clearError, poll, showError } from './ui.js';

const STATUS_MS = 1000;
const IDLE_MS = 5000;

export const SECTIONS = [
  ['', 'Overview'],
  ['chat', 'Chat'],
  ['training', 'Training'],
  ['deployments', 'Deployments'],
];

function deleteDialog(id) {
  const title = uid('delete-title');
  const dlg = h('dialog', { 'aria-labelledby': title });
  const del = h('button', { type: 'button', class: 'danger' }, 'Delete');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  fill(dlg,
    h('h2', { id: title }, 'Delete agent'),
    h('p', {}, `Delete agent ${id} with its material, versions, deployments and feedback? This cannot be undone.`),
    h('div', { class: 'actions' }, del, cancel));
  cancel.addEventListener('click', () => dlg.close());
  del.addEventListener('click', async () => {
    del.disabled = true;
    try {
      await api('DELETE', `/api/v1/agents/${seg(id)}`);
      dlg.close();
      clearError();
      announce(`Agent ${id} deleted`);
      location.hash = '#/';
    } catch (err) {
      dlg.close();
      showError(err);
    } finally {
      del.disabled = false;
    }
  });
  dlg.addEventListener('close', () => dlg.remove());
  return dlg;
}

// The frame of an agent's page; `section` is '', 'chat', 'training' or
// 'deployments'. Returns {body} where the section draws.
export function agentFrame(main, id, section) {
  const open = h('button', { type: 'button', class: 'danger' }, 'Delete agent');
  open.addEventListener('click', () => {
    const dlg = deleteDialog(id);
    document.body.append(dlg);
    dlg.showModal();
  });
  const body = h('div', {});
  fill(main,
    h('div', { class: 'agent-head' },
      h('h2', { tabindex: -1 }, id),
      open),
    h('nav', { class: 'agent-nav', 'aria-label': 'Agent sections' },
      h('ul', {}, SECTIONS.map(([s, name]) =>
        h('li', {}, h('a', {
          href: `#/agents/${seg(id)}${s ? `/${s}` : ''}`,
          'aria-current': s === section ? 'page' : undefined,
        }, name))))),
    body);
  return { body };
}

function stageItem(st) {
  const parts = [h('span', { class: 'name' }, st.name), ` — ${st.status}`];
  if (st.duration_ms !== null && st.duration_ms !== undefined) parts.push(` — ${st.duration_ms} ms`);
  if (st.summary) parts.push(h('span', { class: 'summary' }, ` — ${st.summary}`));
  return h('li', { class: st.status }, parts);
}

function trainingLine(t) {
  if (!t) return null;
  if (t.status === 'failed') return `Training failed: ${t.error || 'no reason given'}`;
  if (t.status === 'cancelled') return 'Training cancelled';
  const eta = t.eta_s ? `, about ${t.eta_s} s left` : '';
  return `Training ${t.status}: ${t.iteration} of ${t.iterations} iterations${eta}`;
}

// The Overview section; returns its stop function.
export function renderOverview(body, id) {
  const progId = uid('progress');
  const statusText = h('p', {});
  const eta = h('p', { 'aria-live': 'polite' });
  const prog = h('progress', { id: progId, max: 100, value: 0 });
  const progText = h('span', {});
  const stages = h('ol', { class: 'stages' });
  const training = h('p', {});
  const titleId = uid('pipeline-title');
  fill(body,
    h('section', { 'aria-labelledby': titleId },
      h('h3', { id: titleId }, 'Pipeline'),
      statusText,
      h('p', {}, h('label', { for: progId, class: 'inline' }, 'Progress'), ' ', prog, progText),
      eta,
      stages),
    training);

  let lastStatus = '';
  let lastStage;
  let lastPipeline = '';
  let pipelineDone = false;
  const loadPipeline = async () => {
    const p = await api('GET', `/api/v1/agents/${seg(id)}/pipeline`);
    const key = JSON.stringify(p.stages);
    if (key !== lastPipeline) {
      lastPipeline = key;
      fill(stages, p.stages.map(stageItem));
    }
  };
  return poll(async () => {
    const s = await api('GET', `/api/v1/agents/${seg(id)}/status`);
    const working = s.status === 'initializing' || s.status === 'processing';
    const stageText = s.stage ? `, stage ${s.stage}` : '';
    statusText.textContent = `Status: ${s.status}${stageText}${s.status === 'error' && s.error ? ` — ${s.error}` : ''}`;
    prog.value = s.progress;
    const left = working && s.eta_s ? `about ${s.eta_s} s left` : '';
    prog.setAttribute('aria-valuetext', `${s.stage ? `${s.stage}, ` : ''}${s.progress} %${left ? `, ${left}` : ''}`);
    progText.textContent = ` ${s.progress} %`;
    eta.textContent = left;
    const tl = trainingLine(s.training);
    training.textContent = tl || '';
    training.hidden = !tl;
    // The stages change only when the stage or status does; once the
    // pipeline has ended they are read once more and then left alone.
    if (s.status !== lastStatus || s.stage !== lastStage || (working && !lastPipeline) || (!working && !pipelineDone)) {
      lastStatus = s.status;
      lastStage = s.stage;
      await loadPipeline();
      pipelineDone = !working;
    }
    return working || (s.training && (s.training.status === 'queued' || s.training.status === 'running')) ? STATUS_MS : IDLE_MS;
  }, STATUS_MS);
}
