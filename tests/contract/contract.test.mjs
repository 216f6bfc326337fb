// The contract checker itself, on openapi.yaml: it must pass what the spec
// documents and catch each way a response can break it (run by make check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { Contract, parseSse } from './contract.mjs';

const contract = new Contract(YAML.parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')));
const JSON_TYPE = 'application/json';
const health = {
  status: 'healthy',
  version: '0.1.0',
  uptime_s: 3,
  timestamp: '2026-11-22T06:41:37.527Z',
  checks: { database: { status: 'ok' }, workers: { status: 'ok', count: 2, busy: 0 }, queue: { depth: 0, running: 0 } },
};
const exchange = (over) => ({ method: 'GET', path: '/health', status: 200, content_type: JSON_TYPE, body: JSON.stringify(health), ...over });
const done = { backend: 'local', model: 'local-bm25', version: 'v1', usage: { prompt_tokens: 1, output_tokens: 1, total_tokens: 2 }, sources: [], latency_ms: 0, retries: 0, finish_reason: 'STOP', confidence: 0.5 };
const sse = (events) => events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
const stream = (body) => ({ method: 'POST', path: '/api/v1/agents/alice/inference', status: 200, content_type: 'text/event-stream', body });

test('a documented response passes', () => {
  assert.deepEqual(contract.check(exchange({})), []);
});

test('a missing required field is caught', () => {
  const { status, ...rest } = health;
  assert.equal(status, 'healthy');
  const problems = contract.check(exchange({ body: JSON.stringify(rest) }));
  assert.equal(problems.length, 1);
  assert.match(problems[0], /GET \/health 200: .*required property 'status'/);
});

test('a field of the wrong type is caught', () => {
  assert.notDeepEqual(contract.check(exchange({ body: JSON.stringify({ ...health, uptime_s: 'long' }) })), []);
});

test('an undocumented status is caught', () => {
  assert.match(contract.check(exchange({ status: 418 })).join(), /status 418 is not documented/);
});

test('an undocumented content type is caught', () => {
  assert.match(contract.check(exchange({ content_type: 'text/html' })).join(), /content type 'text\/html' is not documented/);
});

test('a body that is not JSON is caught', () => {
  assert.match(contract.check(exchange({ body: '<html>' })).join(), /not JSON/);
});

test('path templates match, the literal route first', () => {
  assert.equal(contract.route('/api/v1/agents/alice/status?x=1').template, '/api/v1/agents/{user_id}/status');
  assert.equal(contract.route('/api/v1/agents/all').template, '/api/v1/agents/all');
  assert.equal(contract.route('/nope'), null);
});

test('unknown paths must be errors in the Error shape', () => {
  const err = JSON.stringify({ error: 'no route for GET /nope', code: 'not_found', request_id: 'r1' });
  assert.deepEqual(contract.check({ method: 'GET', path: '/nope', status: 404, content_type: JSON_TYPE, body: err }), []);
  assert.notDeepEqual(contract.check({ method: 'GET', path: '/nope', status: 200, content_type: JSON_TYPE, body: '{}' }), []);
  assert.notDeepEqual(contract.check({ method: 'GET', path: '/nope', status: 404, content_type: JSON_TYPE, body: '{"code":"x"}' }), []);
});

test('every event of a stream is checked', () => {
  assert.deepEqual(contract.check(stream(sse([['token', { text: 'Hi' }], ['done', done]]))), []);
  assert.match(contract.check(stream(sse([['token', { txt: 'Hi' }], ['done', done]]))).join(), /event 0 \(token\)/);
  const { retries, ...noRetries } = done;
  assert.equal(retries, 0);
  assert.match(contract.check(stream(sse([['token', { text: 'Hi' }], ['done', noRetries]]))).join(), /event 1 \(done\)/);
  assert.match(contract.check(stream(sse([['surprise', {}]]))).join(), /event 0 \(surprise\)/);
  assert.match(contract.check(stream('')).join(), /empty event stream/);
});

test('SSE parsing follows the event-stream format', () => {
  assert.deepEqual(parseSse(': comment\nevent: token\ndata: {"text":"a"}\n\ndata: plain\n\n'), [
    { event: 'token', data: { text: 'a' } },
    { event: 'message', data: 'plain' },
  ]);
});

test('a last event without its ending blank line is caught', () => {
  const body = sse([['token', { text: 'Hi' }], ['done', done]]);
  assert.match(contract.check(stream(body.slice(0, -1))).join(), /ends inside an event/);
  assert.deepEqual(parseSse('event: token\ndata: {"text":"a"}\n\nevent: done\ndata: {}\n'), [
    { event: 'token', data: { text: 'a' } },
  ]);
});

test('a documented body without a schema is caught, not waved through', () => {
  const spec = {
    openapi: '3.1.0',
    paths: { '/x': { get: { responses: { 200: { description: 'x', content: { 'application/json': {} } } } } } },
  };
  const bare = new Contract(spec);
  assert.match(bare.check({ method: 'GET', path: '/x', status: 200, content_type: JSON_TYPE, body: '{}' }).join(), /no schema/);
});
