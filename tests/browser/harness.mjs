// The browser tests' harness: the real agentd and the fake Gemini as child
// processes on ephemeral loopback ports, and Debian's chromium driven by
// playwright-core. Every process and browser started here is registered and
// ended by stopAll() (each test file calls it in after()).
//
// Environment: AGENTD_BIN (default build/release/agentd), FAKE_GEMINI_BIN
// (default build/release/fake_gemini), CHROMIUM_BIN (default
// /usr/bin/chromium), BROWSER_OUT (screenshots; default build/release/browser).
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OUT = process.env.BROWSER_OUT || path.join(ROOT, 'build/release/browser');
const AGENTD_BIN = process.env.AGENTD_BIN || path.join(ROOT, 'build/release/agentd');
const FAKE_BIN = process.env.FAKE_GEMINI_BIN || path.join(ROOT, 'build/release/fake_gemini');
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

// The key the fake Gemini accepts (FAKE_GEMINI_KEY, tests/fake/gemini.h).
export const FAKE_GEMINI_KEY = 'fk-test-0123456789-SECRET-abcdef';

const running = []; // {stop: async () => void}, ended in reverse order

function register(stop) {
  running.push({ stop });
}

// Ends every browser and process this file started, newest first.
export async function stopAll() {
  while (running.length) {
    const r = running.pop();
    try {
      await r.stop();
    } catch {
      // Already gone: nothing left to end.
    }
  }
}

// Sends SIGTERM, and SIGKILL after `graceMs` if the process is still there.
function endProcess(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// Waits for the first stderr (agentd) or stdout (fake) line `pick` accepts,
// returning what pick returned; fails if the process exits first.
function waitForLine(child, stream, pick, what, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const lines = [];
    const rl = createInterface({ input: stream });
    const timer = setTimeout(() => {
      reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${lines.join('\n')}`));
    }, timeoutMs);
    const onExit = (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited during start-up (${code ?? signal}):\n${lines.join('\n')}`));
    };
    child.once('exit', onExit);
    rl.on('line', (line) => {
      lines.push(line);
      const v = pick(line);
      if (v !== undefined) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(v);
      }
    });
  });
}

// Starts agentd on 127.0.0.1, port 0, with a fresh data directory. `env` is
// added to the environment (AGENTD_API_KEY for auth, GEMINI_* for the fake).
// Returns {url, port, log(), dataDir}. Its log (stderr) is kept in memory
// so a failing test can print it.
export async function startAgentd({ args = [], env = {} } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'agentd-browser-'));
  const dataDir = path.join(dir, 'data');
  const child = spawn(
    AGENTD_BIN,
    ['--port', '0', '--bind', '127.0.0.1', '--data-dir', dataDir, '--workers', '2', ...args],
    // No ambient key: a test that wants Gemini or auth says so in `env`.
    { env: { ...process.env, GEMINI_API_KEY: '', AGENTD_API_KEY: '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const log = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => log.push(d));
  register(async () => {
    await endProcess(child);
    rmSync(dir, { recursive: true, force: true });
  });
  // agentd logs one JSON object per line; start-up ends with msg "listening"
  // carrying the port it bound (tests/e2e/harness.c reads it the same way).
  const port = await waitForLine(child, child.stderr, (line) => {
    try {
      const o = JSON.parse(line);
      return o.msg === 'listening' ? o.port : undefined;
    } catch {
      return undefined;
    }
  }, 'agentd');
  return { url: `http://127.0.0.1:${port}`, port, dataDir, log: () => log.join('') };
}

// Starts tests/fake's fake Gemini on an ephemeral port; each of `faults` is
// queued with --fault (e.g. ['503'] makes the first model request fail once).
// Returns {port, env}: env points agentd at it (no start-up model lookup,
// fast retry backoff).
export async function startFakeGemini({ faults = [], gapMs } = {}) {
  const args = ['--port', '0'];
  for (const f of faults) args.push('--fault', f);
  if (gapMs !== undefined) args.push('--gap-ms', String(gapMs));
  const child = spawn(FAKE_BIN, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  register(() => endProcess(child));
  const port = await waitForLine(child, child.stdout, (line) => (/^\d+$/.test(line) ? Number(line) : undefined), 'fake_gemini');
  return {
    port,
    env: {
      GEMINI_API_KEY: FAKE_GEMINI_KEY,
      GEMINI_BASE_URL: `http://127.0.0.1:${port}`,
      GEMINI_MODEL: 'gemini-test',
      GEMINI_CHECK_TIMEOUT_MS: '0',
      GEMINI_BACKOFF_BASE_MS: '10',
      GEMINI_MAX_ATTEMPTS: '3',
    },
  };
}

// Launches Debian's chromium (one per test file). `hostMap` maps
// "host:port" to a loopback port (chromium's host resolver rules), so a page
// with a fixed base URL reaches agentd with no request interception; every
// other name resolves to nothing, a second wall behind guardedContext.
export async function launchBrowser({ hostMap = {} } = {}) {
  const rules = Object.entries(hostMap).map(([from, port]) => `MAP ${from} 127.0.0.1:${port}`);
  rules.push('MAP * ~NOTFOUND', 'EXCLUDE 127.0.0.1');
  const browser = await chromium.launch({
    executablePath: CHROMIUM_BIN,
    // --no-sandbox: CI runs the tests as root, and chromium's sandbox refuses
    // to start as root. Acceptable here only: the pages are our own, served
    // on loopback, and nothing off the machine is reachable (guardNetwork).
    // The rest keep chromium from phoning home or needing a GPU or a large
    // /dev/shm in a container.
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', `--host-resolver-rules=${rules.join(', ')}`],
  });
  register(() => browser.close());
  return browser;
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function foreign(url) {
  const u = new URL(url);
  return ['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol) && !LOCAL_HOSTS.has(u.hostname);
}

// A new context whose every request must go to loopback: any other is
// aborted and recorded in the returned `blocked` list, which
// assertNoForeignRequests checks ("no network at run time"). With
// intercept: false the requests are only recorded (the resolver rules of
// launchBrowser stop them): while playwright intercepts, it answers CORS
// preflights itself, and a cross-origin test wants agentd to answer them.
export async function guardedContext(browser, options = {}, { intercept = true } = {}) {
  const context = await browser.newContext(options);
  const blocked = [];
  if (intercept) {
    await context.route('**/*', (route) => {
      if (foreign(route.request().url())) {
        blocked.push(route.request().url());
        return route.abort('blockedbyclient');
      }
      return route.fallback();
    });
  } else {
    context.on('request', (r) => {
      if (foreign(r.url())) blocked.push(r.url());
    });
  }
  return { context, blocked };
}

export function assertNoForeignRequests(blocked) {
  if (blocked.length) throw new Error(`requests left the machine: ${blocked.join(', ')}`);
}

// Writes $BROWSER_OUT/<name>.png.
export async function screenshot(page, name) {
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

const AXE = path.join(ROOT, 'node_modules/axe-core/axe.min.js');

let axeSource;

// Runs axe-core on the page as it is now; returns the serious and critical
// violations, each as "id: help (n nodes: selectors)". axe goes in through
// the DevTools protocol (page.evaluate), not a <script> tag: the dashboard's
// CSP (script-src 'self') rightly refuses inline scripts, and turning the
// CSP off for the test would hide a page that breaks it.
export async function axeSerious(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    axeSource ??= readFileSync(AXE, 'utf8');
    await page.evaluate(axeSource);
  }
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.length} nodes: ${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

// The JSON of a file under tests/.
export function testData(rel) {
  return JSON.parse(readFileSync(path.join(ROOT, 'tests', rel), 'utf8'));
}

// fetch with a deadline, for the tests' own API calls.
export async function api(base, method, p, { key, body } = {}) {
  const headers = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(base + p, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10000),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text };
}
