// The contract between agentd and openapi.yaml: every exchange the e2e suites
// record (tests/e2e/harness.c, e2e_contract_record) is matched to its
// operation in the spec; its status must be documented there, and its body
// must validate against that response's schema (each Server-Sent Event against
// the stream's event schema). Used by validate.mjs and by contract.test.mjs.
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const SPEC_ID = 'agentd-openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// Path templates as regular expressions, the most literal first, so that
// /api/v1/agents/all wins over /api/v1/agents/{user_id}.
function compileRoutes(spec) {
  return Object.keys(spec.paths || {})
    .map((template) => {
      const parts = template.split('/');
      const params = parts.filter((p) => /^\{[^}]+\}$/.test(p)).length;
      const re = parts
        .map((p) => (/^\{[^}]+\}$/.test(p) ? '[^/]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/');
      return { template, params, re: new RegExp(`^${re}$`), item: spec.paths[template] };
    })
    .sort((a, b) => a.params - b.params || b.template.length - a.template.length);
}

function deref(spec, obj) {
  let o = obj;
  for (let hops = 0; o && o.$ref && hops < 8; hops++) {
    if (!o.$ref.startsWith('#/')) throw new Error(`external $ref ${o.$ref} is not supported`);
    o = o.$ref
      .slice(2)
      .split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((acc, k) => (acc == null ? acc : acc[k]), spec);
  }
  return o;
}

// A schema from the spec, with its refs resolved against the whole spec.
function schemaFor(ajv, pointer) {
  return ajv.getSchema(`${SPEC_ID}#${pointer}`) || ajv.compile({ $ref: `${SPEC_ID}#${pointer}` });
}

function pointerOf(parts) {
  return '/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

function errorsText(validate) {
  return (validate.errors || [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '(body)'} ${e.message}`)
    .join('; ');
}

// Events of an SSE body as [{event, data}] (data parsed as JSON when it is).
// As in the event-stream format, an event is dispatched by the blank line
// that ends it: a last block without one is not an event (a client drops it).
export function parseSse(body) {
  const events = [];
  const blocks = body.replace(/\r\n/g, '\n').split(/\n\n+/);
  blocks.pop(); // what follows the last blank line: empty, or an unended event
  for (const block of blocks) {
    if (!block.trim()) continue;
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    const text = data.join('\n');
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    events.push({ event, data: parsed });
  }
  return events;
}

export class Contract {
  constructor(spec) {
    this.spec = spec;
    this.routes = compileRoutes(spec);
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(this.ajv);
    // The spec's components and paths under one id, so that its '#/...' refs
    // resolve; ajv compiles only the schemas it is pointed at.
    this.ajv.addSchema({ $id: SPEC_ID, components: spec.components || {}, paths: spec.paths || {} });
    this.errorSchema = spec.components?.schemas?.Error ? schemaFor(this.ajv, '/components/schemas/Error') : null;
  }

  route(path) {
    const bare = path.split('?')[0].split('#')[0];
    return this.routes.find((r) => r.re.test(bare)) || null;
  }

  // The problems of one exchange {method, path, status, content_type, body},
  // as strings; empty when it keeps the contract.
  check(x) {
    const method = String(x.method || '').toLowerCase();
    const route = this.route(x.path || '');
    let opMethod = method;
    let op = route && METHODS.includes(method) ? route.item[method] : null;
    const bodyless = method === 'head' || x.status === 204 || x.status === 304;
    let opName = route ? `${method.toUpperCase()} ${route.template}` : null;
    if (!op && route && method === 'head' && route.item.get && x.status < 400) {
      op = route.item.get; // HEAD is GET without a body (RFC 9110)
      opMethod = 'get';
      opName = `GET ${route.template} (as HEAD)`;
    }
    if (!op) return this.checkUndocumented(x, route, bodyless);

    const responses = op.responses || {};
    const code = String(x.status);
    const key = [code, `${code[0]}XX`, `${code[0]}xx`, 'default'].find((k) => k in responses);
    if (!key) return [`${opName}: status ${x.status} is not documented (documented: ${Object.keys(responses).join(', ')})`];
    const response = deref(this.spec, responses[key]);
    const where = `${opName} ${key}`;
    const body = x.body || '';
    const content = response.content || {};
    if (bodyless) return [];
    if (Object.keys(content).length === 0) {
      return body.length ? [`${where}: the spec documents no body, got ${x.content_type || 'no content type'}`] : [];
    }
    const type = String(x.content_type || '').split(';')[0].trim().toLowerCase();
    const mediaKey = Object.keys(content).find((k) => k.toLowerCase() === type);
    if (!mediaKey) return [`${where}: content type '${type}' is not documented (documented: ${Object.keys(content).join(', ')})`];
    const pointer = this.mediaPointer(route.template, opMethod, responses[key], key, mediaKey);
    const media = content[mediaKey];
    if (mediaKey === 'text/event-stream') return this.checkSse(where, media, pointer, body);
    // A documented body without a schema would let any body through.
    if (!media.schema) return [`${where}: the spec gives no schema for ${mediaKey}, so nothing can be checked`];
    // A text body (the metrics exposition, the dashboard's page and files) is
    // documented as a string: its content type is what can be checked here.
    if (mediaKey !== 'application/json') {
      const schema = deref(this.spec, media.schema);
      return schema.type === 'string' ? [] : [`${where}: ${mediaKey} is not JSON, so its schema must be a string`];
    }
    let json;
    try {
      json = JSON.parse(body);
    } catch {
      return [`${where}: the body is not JSON: ${body.slice(0, 120)}`];
    }
    const validate = schemaFor(this.ajv, pointer + '/schema');
    return validate(json) ? [] : [`${where}: ${errorsText(validate)}`];
  }

  // Where the media type object lives, following a response $ref.
  mediaPointer(template, method, responseObj, key, mediaKey) {
    if (responseObj.$ref) return responseObj.$ref.slice(1) + pointerOf(['content', mediaKey]);
    return pointerOf(['paths', template, method, 'responses', key, 'content', mediaKey]);
  }

  checkSse(where, media, pointer, body) {
    const eventPointer = media.schema && media.schema.contentSchema ? pointer + '/schema/contentSchema' : null;
    if (!eventPointer) return [`${where}: the stream has no contentSchema for its events`];
    const validate = schemaFor(this.ajv, eventPointer);
    const problems = [];
    const events = parseSse(body);
    if (events.length === 0) problems.push(`${where}: an empty event stream`);
    const tail = body.replace(/\r\n/g, '\n').split(/\n\n+/).pop();
    if (tail.trim()) problems.push(`${where}: the stream ends inside an event (no blank line after it): ${tail.slice(0, 120)}`);
    events.forEach((ev, i) => {
      if (!validate(ev)) problems.push(`${where}: event ${i} (${ev.event}): ${errorsText(validate)}`);
    });
    return problems;
  }

  // Unknown paths and methods are not operations of the spec; its conventions
  // say they are errors (404, 405, 501...) in the Error shape.
  checkUndocumented(x, route, bodyless) {
    const what = route ? `${String(x.method).toUpperCase()} ${route.template} (no such operation)` : `${x.method} ${x.path} (no such path)`;
    // The spec's conventions: without credentials, a CORS preflight under /api/
    // is answered 204 whatever the path, so it tells nothing of which routes exist.
    const preflight = String(x.method).toUpperCase() === 'OPTIONS' && x.status === 204 &&
      !(x.body || '').length && String(x.path).startsWith('/api/');
    if (preflight) return [];
    if (x.status < 400) return [`${what}: answered ${x.status}, but the spec has no operation for it`];
    if (bodyless || !(x.body || '').length) return [];
    const type = String(x.content_type || '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') return [`${what}: status ${x.status} with ${type || 'no content type'}, not a JSON error`];
    let json;
    try {
      json = JSON.parse(x.body);
    } catch {
      return [`${what}: the body is not JSON`];
    }
    if (this.errorSchema && !this.errorSchema(json)) return [`${what}: not an Error: ${errorsText(this.errorSchema)}`];
    return [];
  }
}
