// Chat (#/agents/{id}/chat): the answer streams in token by token (POST
// inference, stream: true, read as Server-Sent Events), then its sources,
// and with Gemini its usage and retries; Stop aborts the request (agentd
// cancels the upstream call when the client hangs up); feedback on the
// answer.
import { api, seg } from './api.js';
import { fill, h, uid } from './dom.js';
import { readEvents } from './sse.js';
import { announce, clearError, showError } from './ui.js';

// Yields to the event loop between tokens that arrived together, so each
// one is its own DOM update (a MessageChannel task: not throttled like a
// timer in a background tab).
function nextTask() {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(0);
  });
}

function usageText(done) {
  const u = done.usage;
  const tokens = u
    ? `tokens: prompt ${u.prompt_tokens}, output ${u.output_tokens}${u.thinking_tokens ? `, thinking ${u.thinking_tokens}` : ''}, total ${u.total_tokens}`
    : 'tokens: not reported';
  return `${done.model} · ${tokens} · retries: ${done.retries} · ${done.latency_ms} ms`;
}

export function renderChat(body, id) {
  const qId = uid('question');
  const sourcesTitle = uid('sources-title');
  const commentId = uid('comment');
  const question = h('textarea', { id: qId, rows: 3, name: 'prompt' });
  const ask = h('button', { type: 'submit' }, 'Ask');
  const stop = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Stop');
  const state = h('p', { class: 'meta', role: 'status' });
  const answer = h('div', { class: 'answer', 'aria-live': 'polite', 'data-testid': 'answer' });
  const meta = h('p', { class: 'meta' });
  const sourcesHead = h('h3', { id: sourcesTitle, hidden: true }, 'Sources');
  const sources = h('ol', { class: 'sources', 'aria-labelledby': sourcesTitle, hidden: true });
  const comment = h('input', { id: commentId, type: 'text', name: 'feedback' });
  const helpful = h('button', { type: 'button', class: 'secondary' }, 'Helpful');
  const notHelpful = h('button', { type: 'button', class: 'secondary' }, 'Not helpful');
  const fbState = h('p', { role: 'status' });
  const feedback = h('div', { hidden: true },
    h('h3', {}, 'Was this answer useful?'),
    h('label', { for: commentId }, 'Comment (optional)'), comment,
    h('div', { class: 'actions' }, helpful, notHelpful),
    fbState);

  let ctrl = null;
  let last = null; // {prompt, response} of the answer feedback is about

  const form = h('form', { novalidate: true },
    h('label', { for: qId }, 'Question'), question,
    h('div', { class: 'actions' }, ask, stop));

  // Ctrl+Enter (Cmd+Enter) asks, as in most chat boxes; Enter alone keeps
  // its newline.
  question.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !ask.disabled) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  const finish = () => {
    ask.disabled = false;
    stop.disabled = true;
    ctrl = null;
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const prompt = question.value.trim();
    if (!prompt) {
      showError(new Error('Question: type a question first'));
      question.focus();
      return;
    }
    ctrl = new AbortController();
    const mine = ctrl;
    ask.disabled = true;
    stop.disabled = false;
    answer.replaceChildren();
    meta.textContent = '';
    meta.removeAttribute('data-testid');
    sources.replaceChildren();
    sources.hidden = true;
    sourcesHead.hidden = true;
    feedback.hidden = true;
    fbState.textContent = '';
    last = null;
    state.textContent = 'Asking…';
    let text = '';
    try {
      const res = await api('POST', `/api/v1/agents/${seg(id)}/inference`, { prompt, stream: true },
        { raw: true, accept: 'text/event-stream', signal: mine.signal });
      clearError();
      let ended = false;
      if (!(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
        // an answer as JSON (a replayed Idempotency-Key, say)
        const j = await res.json();
        text = j.response;
        answer.append(document.createTextNode(text));
        ended = true;
        showDone(j);
      } else {
        state.textContent = 'Answering…';
        await readEvents(res, async (ev) => {
          if (ended) return;
          let data;
          try {
            data = JSON.parse(ev.data);
          } catch {
            return;
          }
          if (ev.event === 'token') {
            text += data.text;
            answer.append(document.createTextNode(data.text));
            await nextTask();
          } else if (ev.event === 'done') {
            ended = true;
            showDone(data);
          } else if (ev.event === 'error') {
            ended = true;
            showError({ message: data.error, code: data.code });
            state.textContent = 'The answer stopped with an error.';
          }
        });
      }
      if (ended && text) {
        last = { prompt, response: text };
        feedback.hidden = false;
      }
      if (!ended) state.textContent = 'The stream ended before the answer was complete.';
    } catch (err) {
      if (err.name === 'AbortError') {
        state.textContent = 'Stopped.';
        if (text) {
          last = { prompt, response: text };
          feedback.hidden = false;
        }
      } else {
        state.textContent = '';
        showError(err);
      }
    } finally {
      if (ctrl === mine) finish();
    }
  });

  function showDone(d) {
    state.textContent = 'Answered.';
    if (d.backend === 'gemini') {
      meta.setAttribute('data-testid', 'usage');
      meta.textContent = usageText(d);
    } else {
      const conf = typeof d.confidence === 'number' ? `, confidence ${d.confidence.toFixed(2)}` : '';
      meta.textContent = `Answered locally by ${d.model}${conf} · ${d.latency_ms} ms`;
    }
    const list = d.sources || [];
    fill(sources, list.map((s) => h('li', {},
      h('span', {}, s.snippet), ' ',
      h('span', { class: 'score' }, `score ${Number(s.score).toFixed(2)}`))));
    sources.hidden = list.length === 0;
    sourcesHead.hidden = list.length === 0;
    announce('Answer complete');
  }

  stop.addEventListener('click', () => {
    if (ctrl) ctrl.abort();
  });

  const send = async (good) => {
    if (!last) return;
    helpful.disabled = true;
    notHelpful.disabled = true;
    try {
      await api('POST', `/api/v1/agents/${seg(id)}/feedback`, {
        prompt: last.prompt,
        response: last.response,
        feedback: comment.value.trim() || (good ? 'helpful' : 'not helpful'),
        rating: good ? 5 : 1,
      });
      clearError();
      fbState.textContent = 'Feedback sent';
    } catch (err) {
      showError(err);
    } finally {
      helpful.disabled = false;
      notHelpful.disabled = false;
    }
  };
  helpful.addEventListener('click', () => send(true));
  notHelpful.addEventListener('click', () => send(false));

  fill(body, form, state, h('h3', {}, 'Answer'), answer, meta, sourcesHead, sources, feedback);
  return () => {
    if (ctrl) ctrl.abort();
  };
}
