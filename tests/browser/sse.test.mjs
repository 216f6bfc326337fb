// web/sse.js, the dashboard's event-stream parser, under node: the same
// events however the stream is cut into chunks and whichever line ending it
// uses (WHATWG HTML, "event stream interpretation").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser, readEvents } from '../../web/sse.js';

// One stream written with "\n"; each case renders it with another ending.
const STREAM = [
  ': a comment line, ignored',
  'event: token',
  'data: {"text":"Hel"}',
  '',
  'event: token',
  'data:{"text":"lo"}', // no space after the colon
  'id: 7',
  '',
  ':keep-alive',
  'data: line one',
  'data:  two leading spaces keep one',
  'data',
  'data: é € 😀',
  '',
  '', // a blank line with no data dispatches nothing
  'event: done',
  'data: {"finish":"stop"}',
  'retry: 100',
  'unknown: field',
  '',
  'data: never closed by a blank line',
].join('\n');

const EXPECTED = [
  { event: 'token', data: '{"text":"Hel"}', id: '' },
  { event: 'token', data: '{"text":"lo"}', id: '7' },
  { event: 'message', data: 'line one\n two leading spaces keep one\n\né € 😀', id: '7' },
  { event: 'done', data: '{"finish":"stop"}', id: '7' },
];

const ENDINGS = { LF: '\n', CRLF: '\r\n', CR: '\r' };

function parseChunks(chunks) {
  const got = [];
  const p = new SseParser((ev) => got.push(ev));
  for (const c of chunks) p.push(c);
  p.end();
  return got;
}

for (const [name, eol] of Object.entries(ENDINGS)) {
  const text = STREAM.replaceAll('\n', eol);

  test(`${name}: the whole stream at once`, () => {
    assert.deepEqual(parseChunks([text]), EXPECTED);
  });

  test(`${name}: cut in two at every position`, () => {
    for (let i = 0; i <= text.length; i++) {
      assert.deepEqual(parseChunks([text.slice(0, i), text.slice(i)]), EXPECTED, `cut at ${i}`);
    }
  });

  test(`${name}: one character per chunk`, () => {
    assert.deepEqual(parseChunks([...text]), EXPECTED);
  });

  test(`${name}: bytes one per network read, UTF-8 split inside characters (readEvents)`, async () => {
    const bytes = new TextEncoder().encode(text);
    const body = new ReadableStream({
      start(controller) {
        for (const b of bytes) controller.enqueue(new Uint8Array([b]));
        controller.close();
      },
    });
    const got = [];
    await readEvents(new Response(body), async (ev) => {
      got.push(ev);
    });
    assert.deepEqual(got, EXPECTED);
  });
}

test('CR then LF in the next chunk is one line end, not an empty line between', () => {
  // Read as two line ends, the CR LF after "event: x" would be a blank line
  // that clears the event name before "b" arrives.
  const got = parseChunks(['event: x\r', '\ndata: b\r', '\n\r', '\n']);
  assert.deepEqual(got, [{ event: 'x', data: 'b', id: '' }]);
});

test('CR CR is a blank line (dispatch), also across chunks', () => {
  assert.deepEqual(parseChunks(['data: a\r', '\r']), [{ event: 'message', data: 'a', id: '' }]);
  assert.deepEqual(parseChunks(['data: a\r\r']), [{ event: 'message', data: 'a', id: '' }]);
});

test('a byte-order mark at the very start is dropped, not later', () => {
  assert.deepEqual(parseChunks(['\ufeffdata: a\n\n']), [{ event: 'message', data: 'a', id: '' }]);
  assert.deepEqual(parseChunks(['data: a\n\n', '\ufeffdata: b\n\n']), [{ event: 'message', data: 'a', id: '' }]);
});

test('an id with NUL is ignored; the last id is kept across events', () => {
  const got = parseChunks(['id: 1\ndata: a\n\nid: 2\u0000x\ndata: b\n\n']);
  assert.deepEqual(got.map((e) => e.id), ['1', '1']);
});
