// Server-Sent Events from a fetch() response. The browser's EventSource
// cannot POST (an inference is a POST with a body), so the stream is read
// with fetch + ReadableStream and split here, as the WHATWG "event stream
// interpretation" says: lines end in CRLF, LF or CR; `event:` names the
// event, `data:` lines are joined with "\n", a line starting with ':' is a
// comment, a blank line dispatches. A maintained parser from npm would
// bring a bundler into the build; this is the one hand-written parser of
// the page. No DOM use: tests run it under node.

export class SseParser {
  // onEvent({event, data, id}) is called once per dispatched event.
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = '';
    this.data = [];
    this.event = '';
    this.lastId = '';
    this.sawCR = false;
    this.first = true;
  }

  // Feeds decoded text; any split (mid-line, between CR and LF) is fine.
  push(text) {
    if (this.first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.first = false;
    }
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 && this.sawCR && i === start && this.buf === '') {
        // the LF of a CRLF whose CR ended the previous line
        this.sawCR = false;
        start = i + 1;
        continue;
      }
      this.sawCR = false;
      if (c === 10 || c === 13) {
        this.line(this.buf + text.slice(start, i));
        this.buf = '';
        if (c === 13) {
          if (i + 1 < text.length && text.charCodeAt(i + 1) === 10) i++;
          else if (i + 1 === text.length) this.sawCR = true;
        }
        start = i + 1;
      }
    }
    this.buf += text.slice(start);
  }

  // The stream ended: an event not closed by a blank line is dropped, as
  // the standard says.
  end() {
    this.buf = '';
    this.data = [];
    this.event = '';
  }

  line(l) {
    if (l === '') {
      if (this.data.length > 0) {
        this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.lastId });
      }
      this.data = [];
      this.event = '';
      return;
    }
    if (l.charCodeAt(0) === 58) return; // ':' comment
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    // `retry` and unknown fields: nothing to do for a one-shot POST stream
  }
}

// Reads the body of `response` to its end, calling onEvent per event;
// `await onEvent(...)` lets the caller pace the work. Rejects with the
// AbortError when the fetch is aborted.
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder('utf-8');
  const queue = [];
  const parser = new SseParser((ev) => queue.push(ev));
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      parser.push(decoder.decode());
      break;
    }
    parser.push(decoder.decode(value, { stream: true }));
    while (queue.length > 0) await onEvent(queue.shift());
  }
  while (queue.length > 0) await onEvent(queue.shift());
  parser.end();
}
