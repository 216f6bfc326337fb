// Training (#/agents/{id}/training): start a run, follow it (polled), a
// chart and a table of each iteration's hit@1, MRR and quality, and the
// parameters the run chose.
import { ApiError, api, seg } from './api.js';
import { fill, formatMs, h, uid } from './dom.js';
import { metricsChart } from './chart.js';
import { announce, clearError, poll, showError } from './ui.js';

const RUN_MS = 1000;
const IDLE_MS = 10000;

function fmt(v) {
  return typeof v === 'number' ? v.toFixed(3) : '—';
}

// The run's iterations, in order, from the crewAI-shaped training_data.
function iterationsOf(run, id) {
  const per = (run.training_data && run.training_data[id]) || {};
  return Object.keys(per)
    .map(Number)
    .filter((k) => Number.isInteger(k) && k > 0)
    .sort((a, b) => a - b)
    .map((k) => ({ iteration: k, ...per[String(k)] }));
}

function paramsList(params) {
  return h('dl', { class: 'params' }, Object.entries(params || {}).flatMap(([k, v]) =>
    [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))]));
}

export function renderTraining(body, id) {
  const itId = uid('iterations');
  const captionId = uid('chart-caption');
  const paramsTitle = uid('params-title');
  const iterations = h('input', { id: itId, type: 'number', min: 1, max: 1000, value: '3', name: 'iterations', inputmode: 'numeric' });
  const start = h('button', { type: 'submit' }, 'Start training');
  const runState = h('p', { 'aria-live': 'polite' });
  const chartBox = h('div', {});
  const rows = h('tbody', {});
  const table = h('table', {},
    h('caption', {}, 'Iterations'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Iteration'),
      h('th', { scope: 'col', class: 'num' }, 'hit@1'),
      h('th', { scope: 'col', class: 'num' }, 'MRR'),
      h('th', { scope: 'col', class: 'num' }, 'Quality'),
      h('th', { scope: 'col', class: 'num hide-narrow' }, 'Time'))),
    rows);
  const params = h('div', {}, h('p', { class: 'hint' }, 'Shown when a run has finished.'));
  const form = h('form', { novalidate: true },
    h('label', { for: itId }, 'Iterations'), iterations,
    h('div', { class: 'actions' }, start));

  let trainingId = null;
  let last = '';

  const draw = (run) => {
    const t = run.training;
    const key = JSON.stringify([t, run.training_data, run.trained_data]);
    if (key === last) return;
    last = key;
    const its = iterationsOf(run, id);
    const best = t.best_iteration ? `, best iteration ${t.best_iteration}` : '';
    let line = `Run ${t.training_id} (${t.name}): ${t.status}, ${t.done_iterations} of ${t.iterations} iterations${best}`;
    if (t.status === 'failed') line = `Training failed: ${t.error || 'no reason given'}`;
    runState.textContent = line;
    fill(chartBox, its.length ? metricsChart(its, captionId) : h('p', { class: 'hint' }, 'No iteration finished yet.'));
    fill(rows, its.map((it) => h('tr', {},
      h('th', { scope: 'row' }, String(it.iteration)),
      h('td', { class: 'num' }, fmt(it.metrics?.hit_at_1)),
      h('td', { class: 'num' }, fmt(it.metrics?.mrr)),
      h('td', { class: 'num' }, fmt(it.metrics?.quality_score)),
      h('td', { class: 'num hide-narrow' }, formatMs(it.duration_ms)))));
    const td = run.trained_data;
    if (td) {
      const dep = td.deployment ? (td.deployment.deployed ? `deployed as ${td.deployment.version}` : `not deployed: ${td.deployment.reason}`) : '';
      fill(params,
        h('p', {}, `Iteration ${td.best_iteration}, quality ${fmt(td.quality_score)} (${td.quality_label})${dep ? `; ${dep}` : ''}.`),
        paramsList(td.best_params),
        td.final_summary ? h('p', { class: 'hint' }, td.final_summary) : null);
    }
  };

  const tick = async () => {
    let run;
    try {
      run = await api('GET', `/api/v1/agents/${seg(id)}/training${trainingId ? `?training_id=${trainingId}` : ''}`);
    } catch (err) {
      // No run yet is no error for this view.
      if (err instanceof ApiError && err.status === 404 && !trainingId) {
        runState.textContent = 'No training run yet.';
        return IDLE_MS;
      }
      throw err;
    }
    trainingId = run.training.training_id;
    draw(run);
    const going = run.training.status === 'queued' || run.training.status === 'running';
    return going ? RUN_MS : IDLE_MS;
  };
  let stopPoll = poll(tick, RUN_MS);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const n = Number(iterations.value);
    if (!Number.isInteger(n) || n < 1 || n > 1000) {
      showError(new Error('Iterations: a whole number from 1 to 1000'));
      iterations.focus();
      return;
    }
    start.disabled = true;
    try {
      const q = await api('POST', `/api/v1/agents/${seg(id)}/train`, { iterations: n });
      clearError();
      trainingId = q.training_id;
      last = '';
      announce(`Training run ${q.training_id} queued`);
      runState.textContent = `Run ${q.training_id} (${q.name}): queued, 0 of ${q.iterations} iterations`;
      stopPoll();
      stopPoll = poll(tick, RUN_MS);
    } catch (err) {
      showError(err);
    } finally {
      start.disabled = false;
    }
  });

  fill(body, form, runState, chartBox, h('div', { class: 'table-wrap' }, table),
    h('section', { 'aria-labelledby': paramsTitle },
      h('h3', { id: paramsTitle }, 'Chosen parameters'), params));
  return () => stopPoll();
}
