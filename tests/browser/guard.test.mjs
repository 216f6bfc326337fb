// The harness's no-network guard: a page that reaches for a host off this
// machine has the request stopped and recorded, and assertNoForeignRequests
// fails the test. Without this, a guard that let requests through (or
// recorded none) would leave "no network at run time" unchecked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { launchBrowser, guardedContext, assertNoForeignRequests, stopAll } from './harness.mjs';

let browser;
let site;

before(async () => {
  browser = await launchBrowser();
  site = await new Promise((resolve) => {
    const s = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><title>guard</title><p>local</p>');
    });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
});

after(async () => {
  await new Promise((r) => site?.close(r) ?? r());
  await stopAll();
});

// A page on loopback that fetches `foreignUrl` and loads an image from
// another foreign host; returns what the guard recorded.
async function reachOut(intercept) {
  const { context, blocked } = await guardedContext(browser, {}, { intercept });
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${site.address().port}/`);
    const fetched = await page.evaluate(async () => {
      try {
        await fetch('http://example.invalid/leak?x=1');
        return 'reached';
      } catch {
        return 'failed';
      }
    });
    assert.equal(fetched, 'failed', 'a foreign fetch must not succeed');
    await page.evaluate(() => new Promise((resolve) => {
      const img = new Image();
      img.onload = resolve;
      img.onerror = resolve;
      img.src = 'https://203.0.113.9/pixel.png';
    }));
    assert.equal(await page.getByText('local').count(), 1, 'the loopback page itself loads');
    return blocked;
  } finally {
    await context.close();
  }
}

for (const intercept of [true, false]) {
  test(`a foreign request is caught (intercept: ${intercept})`, async () => {
    const blocked = await reachOut(intercept);
    assert.ok(blocked.some((u) => u.startsWith('http://example.invalid/leak')), blocked.join(', '));
    assert.ok(blocked.some((u) => u.startsWith('https://203.0.113.9/')), blocked.join(', '));
    assert.ok(blocked.every((u) => !u.includes('127.0.0.1')), blocked.join(', '));
    assert.throws(() => assertNoForeignRequests(blocked), /requests left the machine: .*example\.invalid/);
  });
}
