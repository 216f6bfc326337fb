// The dashboard at / in Debian's chromium, against the real agentd with auth
// on and Gemini served by tests/fake (its first answer fails once with 503).
// One scenario, step by step, as a user would go: token, create, watch the
// pipeline, chat, train, deploy and roll back, a duplicate, delete. Elements
// are found only by role and accessible name (the contract in
// /work/brief/api12.md, README "Dashboard"), never by CSS class. After each
// step: axe-core at 1280×800 and 390×844 (no serious or critical
// violation) and a screenshot at both widths, $BROWSER_OUT/NN-step-WIDTH.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import {
  ROOT, startAgentd, startFakeGemini, launchBrowser, guardedContext, assertNoForeignRequests,
  screenshot, axeSerious, api, stopAll,
} from './harness.mjs';

const KEY = 'browser-admin-key-0123456789';
const DATASET = path.join(ROOT, 'tests/data/python_expert_dataset.json');
const WIDE = { width: 1280, height: 800 };
const NARROW = { width: 390, height: 844 };

let agentd;
let browser;
let context;
let blocked;
let page;
const keyInUrl = [];

before(async () => {
  const fake = await startFakeGemini({ faults: ['503'] });
  agentd = await startAgentd({ env: { AGENTD_API_KEY: KEY, ...fake.env } });
  browser = await launchBrowser();
  ({ context, blocked } = await guardedContext(browser, { viewport: WIDE }));
  // Fast polling for the test (the page reads this override).
  await context.addInitScript(() => sessionStorage.setItem('agentd.poll_ms', '200'));
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  // The token must never be in an address, on any request the page makes.
  context.on('request', (r) => {
    if (r.url().includes(KEY)) keyInUrl.push(r.url());
  });
});

after(async () => {
  if (process.exitCode && agentd) process.stderr.write(`---- agentd log ----\n${agentd.log()}\n`);
  await stopAll();
});

// axe and screenshots at both widths; back to 1280×800 after.
async function checkpoint(name) {
  const problems = [];
  for (const [size, tag] of [[WIDE, '1280'], [NARROW, '390']]) {
    await page.setViewportSize(size);
    const v = await axeSerious(page);
    if (v.length) problems.push(`${name} at ${tag}: ${v.join('; ')}`);
    await screenshot(page, `${name}-${tag}`);
  }
  await page.setViewportSize(WIDE);
  assert.deepEqual(problems, [], 'axe: serious or critical violations');
}

const alert = () => page.getByRole('alert');
const tableRows = (caption) => page.getByRole('table', { name: caption }).locator('tbody').getByRole('row');

// Waits until fn() holds, polling; fails with `what` after `ms`.
async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('the dashboard, from the token to an empty list', async (top) => {
  // The steps build on each other: after a failure the rest are skipped,
  // not each left to time out.
  let failed = false;
  const step = (name, fn) => top.test(name, async (t) => {
    if (failed) {
      t.skip('an earlier step failed');
      return;
    }
    try {
      await fn(t);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
  await step('01 token: a 401 opens the dialog; the key goes to sessionStorage, never the URL', async () => {
    await page.goto(`${agentd.url}/`);
    const dialog = page.getByRole('dialog', { name: 'API token' });
    await dialog.waitFor();
    await checkpoint('01-token');
    await dialog.getByRole('textbox', { name: 'Token' }).fill(KEY);
    await dialog.getByRole('button', { name: 'Save token' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('heading', { name: 'Agents', exact: true }).waitFor();
    assert.ok(!page.url().includes(KEY), page.url());
    assert.deepEqual(keyInUrl, [], 'the key in a request URL');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('agentd.token')), KEY);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
    await checkpoint('02-home');
  });

  await step('03 create from the dataset file: four stages completed with durations', async () => {
    await page.getByRole('textbox', { name: 'Agent id' }).fill('py');
    await page.getByLabel('Dataset file (JSON)').setInputFiles(DATASET);
    await page.getByText('python_expert_dataset.json: 20 items ready.').waitFor();
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.waitForURL(/#\/agents\/py$/);
    await page.getByRole('heading', { level: 2, name: 'py' }).waitFor();
    const pipeline = page.getByRole('region', { name: 'Pipeline' });
    const stages = pipeline.getByRole('listitem');
    await until('four stages completed', async () => {
      const texts = await stages.allTextContents();
      return texts.length === 4 && texts.every((s) => /completed/.test(s));
    });
    for (const s of await stages.allTextContents()) {
      assert.match(s, /completed — \d+(\.\d+)? (ms|s) — \S/, `a stage with its duration and summary: ${s}`);
    }
    assert.deepEqual((await stages.allTextContents()).map((s) => s.split(' — ')[0]),
      ['DataProcessor', 'ModelTrainer', 'ModelEvaluator', 'ModelDeployer']);
    await pipeline.getByText('Status: ready').waitFor();
    assert.equal(await pipeline.getByRole('progressbar', { name: 'Progress' }).getAttribute('value'), '100');
    await checkpoint('03-pipeline');
  });

  await step('04 a large dataset: "about N s left" while it processes', async (t) => {
    await page.goto(`${agentd.url}/#/`);
    await page.getByRole('textbox', { name: 'Agent id' }).fill('big');
    // 3000 items, ~2.4 MiB: about 1.5 s of processing here, so status polls at
    // 200 ms catch eta_s (when none does, nothing is asked of the page). A
    // file, not typed text: a textarea holding MiB of text takes chromium
    // tens of seconds to lay out.
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    const words = Array.from({ length: 5000 }, () => `w${(rnd() % 100000).toString(36)}x`);
    const sentence = (k) => Array.from({ length: k }, () => words[rnd() % words.length]).join(' ');
    const items = Array.from({ length: 3000 }, () => ({ prompt: `${sentence(8)}?`, answer: `${sentence(120)}.` }));
    // From a file on disk: chromium reads it itself (a buffer would cross
    // the DevTools connection in base64).
    // chromium reads the file only when the page asks for its text, after
    // setInputFiles has returned: it is removed once the page has it.
    const dir = mkdtempSync(path.join(tmpdir(), 'agentd-big-'));
    const file = path.join(dir, 'big.json');
    try {
      writeFileSync(file, JSON.stringify(items));
      await page.getByLabel('Dataset file (JSON)').setInputFiles(file);
      await page.getByText('big.json: 3000 items ready.').waitFor();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // What the page shows, recorded as it changes, and what the API said.
    await page.evaluate(() => {
      window.etaSeen = [];
      const main = document.querySelector('main');
      new MutationObserver(() => {
        for (const p of main.querySelectorAll('p')) {
          if (/s left/.test(p.textContent)) window.etaSeen.push(p.textContent);
        }
      }).observe(main, { subtree: true, childList: true, characterData: true });
    });
    // The status answers the page itself got: each one that carried eta_s
    // while the agent worked must have been drawn as "about N s left".
    // Judged on what the page received, not on a timing window, so the
    // check holds on a fast machine as on a slow one.
    const bodies = [];
    const onResponse = (r) => {
      if (new URL(r.url()).pathname === '/api/v1/agents/big/status') bodies.push(r.json().catch(() => null));
    };
    page.on('response', onResponse);
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.waitForURL(/#\/agents\/big$/);
    // The page's status poll is sequential: once it shows ready, every
    // earlier answer has been drawn.
    await page.getByRole('region', { name: 'Pipeline' }).getByText(/^Status: (ready|error)/).waitFor({ timeout: 30000 });
    page.off('response', onResponse);
    const got = (await Promise.all(bodies)).filter(Boolean);
    const etaSeen = await page.evaluate(() => window.etaSeen);
    const expected = [...new Set(got.filter((s) => (s.status === 'processing' || s.status === 'initializing') && s.eta_s)
      .map((s) => `about ${s.eta_s} s left`))];
    t.diagnostic(`the page got ${got.length} status answers, eta_s in ${expected.length ? expected.join(', ') : 'none'}; `
      + `it showed ${JSON.stringify([...new Set(etaSeen)])}`);
    assert.equal(got.at(-1)?.status, 'ready', 'the big agent ends ready');
    for (const e of expected) assert.ok(etaSeen.includes(e), `eta_s answered as "${e}", never shown`);
    assert.ok(etaSeen.every((s) => /^about [1-9]\d* s left$/.test(s)), etaSeen.join(', '));
    const del = await api(agentd.url, 'DELETE', '/api/v1/agents/big', { key: KEY });
    assert.equal(del.status, 200);
  });

  await step('05 the list: ready and a quality label', async () => {
    await page.goto(`${agentd.url}/#/`);
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'py', exact: true }) });
    await until('py ready in the list', async () => /ready/.test(await row.textContent()));
    const q = (await api(agentd.url, 'GET', '/api/v1/agents/py', { key: KEY })).json.quality;
    assert.ok(q && q.label, 'agentd gives a quality');
    assert.match(await row.textContent(), new RegExp(`${q.label} \\(${q.score.toFixed(2)}\\)`));
    assert.ok(await row.getByRole('progressbar').count() === 1);
    await checkpoint('05-list');
  });

  await step('05b the list updates live; create from typed text', async () => {
    // An agent made behind the page's back shows up, gets ready and goes
    // away in the list with no reload: the list polls.
    const text = 'Python lists are mutable sequences; tuples are immutable. A dict maps keys to values. '
      + 'Use a virtual environment (python -m venv) to isolate dependencies.';
    const row = (id) => page.getByRole('row').filter({ has: page.getByRole('link', { name: id, exact: true }) });
    const url = page.url();
    const made = await api(agentd.url, 'POST', '/api/v1/agents', { key: KEY, body: { user_id: 'live', training_data: text } });
    assert.equal(made.status, 201, made.text);
    await until('live listed, ready, 100 %', async () => (await row('live').count()) === 1
      && /ready/.test(await row('live').textContent()) && /100 %/.test(await row('live').textContent()));
    assert.equal((await api(agentd.url, 'DELETE', '/api/v1/agents/live', { key: KEY })).status, 200);
    await until('live gone from the list', async () => (await row('live').count()) === 0);
    assert.equal(page.url(), url, 'no navigation');
    // The typed-text path of the form.
    await page.getByRole('textbox', { name: 'Agent id' }).fill('typed');
    await page.getByRole('textbox', { name: 'Training text' }).fill(text);
    await page.getByRole('button', { name: 'Create agent' }).click();
    await page.waitForURL(/#\/agents\/typed$/);
    await page.getByRole('region', { name: 'Pipeline' }).getByText('Status: ready').waitFor();
    const typed = await api(agentd.url, 'GET', '/api/v1/agents/typed', { key: KEY });
    assert.equal(typed.json.source, 'text', typed.text);
    await page.goto(`${agentd.url}/#/`);
    await page.getByRole('link', { name: 'py', exact: true }).waitFor();
    assert.equal((await api(agentd.url, 'DELETE', '/api/v1/agents/typed', { key: KEY })).status, 200);
    await until('typed gone from the list', async () => (await row('typed').count()) === 0);
  });

  await step('06 chat: the answer streams, sources with snippet and score, usage with retries: 1, feedback', async () => {
    await page.getByRole('link', { name: 'py', exact: true }).click();
    await page.getByRole('navigation', { name: 'Agent sections' }).getByRole('link', { name: 'Chat' }).click();
    const answer = page.getByTestId('answer');
    await answer.waitFor({ state: 'attached' });
    assert.equal(await answer.getAttribute('aria-live'), 'polite');
    // Count the answer's DOM updates until the usage line (the `done` event).
    await page.evaluate(() => {
      const el = document.querySelector('[data-testid="answer"]');
      window.answerUpdates = 0;
      window.updatesBeforeDone = -1;
      new MutationObserver(() => {
        window.answerUpdates++;
      }).observe(el, { subtree: true, childList: true, characterData: true });
      new MutationObserver(() => {
        if (window.updatesBeforeDone < 0 && document.querySelector('[data-testid="usage"]')) {
          window.updatesBeforeDone = window.answerUpdates;
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    await page.getByRole('textbox', { name: 'Question' }).fill('How do I create a REST API with Flask?');
    await page.getByRole('button', { name: 'Ask' }).click();
    const usage = page.getByTestId('usage');
    await usage.waitFor();
    assert.match(await usage.textContent(), /retries: 1/);
    assert.match(await usage.textContent(), /tokens: prompt \d+, output \d+/);
    const updates = await page.evaluate(() => window.updatesBeforeDone);
    assert.ok(updates >= 2, `the answer changed ${updates} times before done`);
    assert.match(await answer.textContent(), /^ANSWER: /);
    const sources = page.getByRole('list', { name: 'Sources' }).getByRole('listitem');
    assert.ok(await sources.count() >= 1, 'sources listed');
    for (const s of await sources.allTextContents()) assert.match(s, /\S.* score \d\.\d\d$/, s);
    assert.match(await sources.first().textContent(), /Flask/);
    await checkpoint('06-chat');
    await page.getByRole('button', { name: 'Helpful', exact: true }).click();
    await page.getByText('Feedback sent').waitFor();
  });

  await step('07 training: 3 iterations, a chart of 3 polylines × 3 points, 3 rows, chosen parameters', async () => {
    await page.getByRole('navigation', { name: 'Agent sections' }).getByRole('link', { name: 'Training' }).click();
    await page.getByRole('spinbutton', { name: 'Iterations' }).fill('3');
    await page.getByRole('button', { name: 'Start training' }).click();
    const rows = tableRows('Iterations');
    await until('3 iterations in the table', async () => (await rows.count()) === 3, 30000);
    const params = page.getByRole('region', { name: 'Chosen parameters' });
    await params.getByText(/^Iteration \d, quality/).waitFor({ timeout: 30000 });
    const chart = page.getByRole('img', { name: 'Training metrics per iteration' });
    const lines = chart.locator('polyline');
    assert.equal(await lines.count(), 3);
    for (const pts of await lines.evaluateAll((ls) => ls.map((l) => l.getAttribute('points')))) {
      assert.equal(pts.trim().split(/\s+/).length, 3, pts);
    }
    assert.deepEqual(await lines.evaluateAll((ls) => ls.map((l) => l.getAttribute('data-metric'))),
      ['hit@1', 'MRR', 'quality']);
    assert.ok((await params.getByRole('definition').count()) >= 1, 'parameter values listed');
    await checkpoint('07-training');
  });

  await step('08 deployments: create and push the trained version, remove it (rolled back), logs', async () => {
    await page.getByRole('navigation', { name: 'Agent sections' }).getByRole('link', { name: 'Deployments' }).click();
    const rows = tableRows('Deployments');
    const model = page.getByRole('combobox', { name: 'Model version' });
    await until('model versions listed', async () => (await model.locator('option').count()) >= 2);
    const versions = (await api(agentd.url, 'GET', '/api/v1/agents/py/models', { key: KEY })).json.models;
    const serving = versions.find((m) => m.deployed);
    const other = versions.find((m) => !m.deployed);
    assert.ok(serving && other, JSON.stringify(versions));
    await model.selectOption(other.name);
    assert.ok(await page.getByRole('checkbox', { name: 'Push live now' }).isChecked());
    const before = await rows.count();
    await page.getByRole('button', { name: 'Create deployment' }).click();
    // A row's status is its first cell (the model is the row header).
    const statusOf = async (row) => ((await row.getByRole('cell').first().textContent()) || '').trim();
    const rowOf = (name) => rows.filter({ has: page.getByRole('rowheader', { name, exact: true }) }).first();
    const mine = rowOf(other.name);
    await until('the new deployment live', async () => (await rows.count()) > before && (await statusOf(mine)) === 'live');
    await checkpoint('08-deployed');
    await mine.getByRole('button', { name: 'Remove' }).click();
    await until('removed, and the earlier version live again',
      async () => (await statusOf(mine)) === 'removed' && (await statusOf(rowOf(serving.name))) === 'live');
    const now = (await api(agentd.url, 'GET', '/api/v1/agents/py/models', { key: KEY })).json.models;
    assert.equal(now.find((m) => m.deployed)?.name, serving.name, 'the earlier version serves again');
    await mine.getByRole('button', { name: 'Logs' }).click();
    const log = page.getByRole('list', { name: 'Deployment log' }).getByRole('listitem');
    await until('log events', async () => (await log.count()) >= 2);
    await checkpoint('09-rolled-back');
  });

  await step('10 a duplicate create (dropped file) shows agentd\'s 409 message', async () => {
    await page.goto(`${agentd.url}/#/`);
    await page.getByRole('textbox', { name: 'Agent id' }).fill('py');
    // The drop path: a DataTransfer with the file, dropped on the zone.
    const content = readFileSync(DATASET, 'utf8');
    const zone = page.getByLabel('Dataset file (JSON)').locator('xpath=..');
    const dt = await page.evaluateHandle((text) => {
      const d = new DataTransfer();
      d.items.add(new File([text], 'dropped.json', { type: 'application/json' }));
      return d;
    }, content);
    await zone.dispatchEvent('dragover', { dataTransfer: dt });
    await zone.dispatchEvent('drop', { dataTransfer: dt });
    await page.getByText('dropped.json: 20 items ready.').waitFor();
    await page.getByRole('button', { name: 'Create agent' }).click();
    const direct = await api(agentd.url, 'POST', '/api/v1/agents',
      { key: KEY, body: { user_id: 'py', training_data: 'x' } });
    assert.equal(direct.status, 409);
    await until('the 409 message shown', async () => (await alert().textContent()).includes(direct.json.error));
    assert.match(page.url(), /#\/$/, 'still on the list');
    await checkpoint('10-duplicate');
  });

  await step('11 delete: the dialog, then an empty list', async () => {
    await page.getByRole('link', { name: 'py', exact: true }).click();
    await page.getByRole('button', { name: 'Delete agent' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete agent' });
    await dialog.waitFor();
    await checkpoint('11-delete');
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.waitForURL(/#\/$/);
    await page.getByText('No agents yet.').waitFor();
    await until('no agent link', async () => (await page.getByRole('link', { name: 'py', exact: true }).count()) === 0);
    const list = await api(agentd.url, 'GET', '/api/v1/agents', { key: KEY });
    assert.equal(list.json.total_users, 0);
    await checkpoint('12-empty');
    assertNoForeignRequests(blocked);
    assert.deepEqual(keyInUrl, [], 'the key in a request URL');
  });
});
