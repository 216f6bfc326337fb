// The original service's page (tests/browser/original/frontend.html, a
// reconstruction: see its header and PROVENANCE) against agentd, in the same
// chromium: served from its own loopback origin, so every call to agentd is
// cross-origin, as when the page was opened beside the Flask service.
// Auth off, local answerer. Its fixed base URL http://localhost:8080 is
// mapped to agentd's port by chromium's host resolver rules (not
// page.route: while playwright intercepts it answers CORS preflights itself,
// and here agentd must answer them), so the file stays as it is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ROOT, startAgentd, launchBrowser, guardedContext, assertNoForeignRequests, screenshot, api, stopAll,
} from './harness.mjs';

const PAGE = path.join(ROOT, 'tests/browser/original/frontend.html');

let agentd;
let browser;
let site;
const dialogs = []; // alert/confirm texts, in order

// The page's own origin: a static server on another loopback port.
function serve() {
  const html = readFileSync(PAGE);
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      if (req.url === '/' || req.url === '/frontend.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(html);
      } else {
        res.writeHead(404).end();
      }
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

before(async () => {
  agentd = await startAgentd();
  browser = await launchBrowser({ hostMap: { 'localhost:8080': agentd.port } });
  site = await serve();
});

after(async () => {
  await new Promise((r) => site?.close(r) ?? r());
  await stopAll();
});

test('the original page creates an agent, sees it ready, asks it, and deletes all agents', async () => {
  const { context, blocked } = await guardedContext(browser, { viewport: { width: 1280, height: 800 } },
    { intercept: false });
  const page = await context.newPage();
  const calls = [];
  page.on('request', (r) => {
    if (r.url().startsWith('http://localhost:8080/')) calls.push(r);
  });
  page.on('dialog', async (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    await d.accept();
  });
  const pageUrl = `http://127.0.0.1:${site.address().port}/frontend.html`;
  await page.goto(pageUrl);
  await page.getByText('Agents: online').waitFor({ timeout: 10000 });

  await page.getByLabel('User ID', { exact: true }).fill('orig_python');
  await page.getByLabel('Training data').fill(
    'Python lists are mutable sequences; tuples are immutable. A dict maps keys to values. '
    + 'Use a virtual environment (python -m venv) to isolate dependencies. '
    + 'List comprehensions build lists from iterables in one expression.');
  await page.getByRole('button', { name: 'Create agent' }).click();
  await page.getByText('User ID: orig_python').waitFor({ timeout: 10000 });

  // The page has no live updates faster than 30 s: press refresh until ready,
  // as its user would.
  const status = page.locator('.card[data-user="orig_python"] .agent-status');
  const deadline = Date.now() + 20000;
  for (;;) {
    await page.getByRole('button', { name: 'Refresh agent list' }).click();
    await status.waitFor({ timeout: 5000 });
    const s = (await status.textContent()).trim();
    if (s === 'ready') break;
    assert.notEqual(s, 'error', 'the agent failed');
    assert.ok(Date.now() < deadline, `still ${s} after 20 s`);
    await page.waitForTimeout(200);
  }

  await page.getByLabel('Agent user ID').fill('orig_python');
  await page.getByLabel('Question', { exact: true }).fill('Are tuples mutable?');
  await page.getByRole('button', { name: 'Ask' }).click();
  const answer = page.locator('#test-result');
  await answer.getByText('Answer: ').waitFor({ timeout: 10000 });
  assert.match(await answer.textContent(), /Question: Are tuples mutable\?/);
  assert.match(await answer.textContent(), /Answer: \S/, 'an answer with text');
  assert.doesNotMatch(await answer.textContent(), /Answer: undefined/);

  await page.getByRole('button', { name: 'Delete all agents' }).click();
  // Two confirmations, then the page's report.
  const until = Date.now() + 10000;
  while (dialogs.filter((d) => d.startsWith('alert')).length === 0 && Date.now() < until) await page.waitForTimeout(50);
  const confirms = dialogs.filter((d) => d.startsWith('confirm'));
  assert.equal(confirms.length, 2, dialogs.join(' | '));
  assert.match(confirms[0], /Delete ALL 1 agents/);
  // Its report reads result.removed_users.length and result.failed_users.
  const alerts = dialogs.filter((d) => d.startsWith('alert'));
  assert.equal(alerts.length, 1, dialogs.join(' | '));
  assert.match(alerts[0], /Deletion finished/);
  assert.match(alerts[0], /Removed: 1/);

  const list = await api(agentd.url, 'GET', '/api/v1/agents');
  assert.equal(list.status, 200);
  assert.equal(list.json.total_users, 0);
  assert.deepEqual(list.json.users, {});

  await page.getByRole('button', { name: 'Refresh agent list' }).click();
  await page.getByText('No agents found').waitFor({ timeout: 5000 });
  await screenshot(page, 'original');

  // Really cross-origin: the page's origin, not agentd's, sent every call,
  // and agentd itself answered the preflights of the JSON POSTs.
  const origins = new Set(await Promise.all(calls.map(async (r) => (await r.allHeaders()).origin)));
  assert.deepEqual([...origins], [`http://127.0.0.1:${site.address().port}`]);
  const preflights = agentd.log().split('\n').filter((l) => l.includes('"method":"OPTIONS"'));
  assert.ok(preflights.length >= 2, `agentd answered ${preflights.length} preflights`);
  assert.ok(preflights.every((l) => /"status":20[04]/.test(l)), preflights.join('\n'));
  assertNoForeignRequests(blocked);
  await context.close();
});
