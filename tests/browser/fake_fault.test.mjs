// tests/fake/main.c's --fault option: the browser tests queue Gemini faults
// on the fake as a process (fake_gemini_push_fault is a C call).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { FAKE_GEMINI_KEY, startFakeGemini, stopAll } from './harness.mjs';

after(stopAll);

async function generate(port) {
  const r = await fetch(`http://127.0.0.1:${port}/v1beta/models/gemini-test:generateContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': FAKE_GEMINI_KEY },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] }),
  });
  return { status: r.status, json: await r.json().catch(() => undefined) };
}

test('--fault 503 --fault 500: the first two model requests fail in that order, then answers are normal', async () => {
  const fake = await startFakeGemini({ faults: ['503', '500'] });
  const a = await generate(fake.port);
  assert.equal(a.status, 503);
  assert.equal(a.json.error.status, 'UNAVAILABLE');
  const b = await generate(fake.port);
  assert.equal(b.status, 500);
  const c = await generate(fake.port);
  assert.equal(c.status, 200);
  assert.match(c.json.candidates[0].content.parts.map((p) => p.text).join(''), /^ANSWER: hello/);
});

test('an unknown fault kind is a usage error (exit 2) naming the kinds', () => {
  const bin = process.env.FAKE_GEMINI_BIN || 'build/release/fake_gemini';
  const r = spawnSync(bin, ['--fault', 'nonsense'], { encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--fault KIND/);
  assert.match(r.stderr, /503/);
});
