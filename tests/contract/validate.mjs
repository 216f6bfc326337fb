// Usage: node tests/contract/validate.mjs openapi.yaml build/release/contract.jsonl
// Checks every exchange the e2e run recorded against the spec (contract.mjs);
// prints each broken contract once (with how often and where it was seen) and
// exits 1 if there is any.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { Contract } from './contract.mjs';

const [specPath, logPath] = process.argv.slice(2);
if (!specPath || !logPath) {
  console.error('usage: validate.mjs openapi.yaml contract.jsonl');
  process.exit(2);
}
const contract = new Contract(YAML.parse(readFileSync(specPath, 'utf8')));
const lines = readFileSync(logPath, 'utf8').split('\n').filter((l) => l.trim());
const problems = new Map();
const operations = new Set();
let checked = 0;
for (const [i, line] of lines.entries()) {
  let x;
  try {
    x = JSON.parse(line);
  } catch {
    // A body with invalid UTF-8 (sent on purpose by a test) can break its line.
    x = null;
  }
  if (!x) {
    const key = `${logPath}:${i + 1}: not a JSON line`;
    problems.set(key, { count: 1, example: line.slice(0, 160) });
    continue;
  }
  checked++;
  const route = contract.route(x.path);
  if (route) operations.add(`${x.method} ${route.template}`);
  for (const p of contract.check(x)) {
    const seen = problems.get(p);
    if (seen) seen.count++;
    else problems.set(p, { count: 1, example: `${x.test}: ${x.method} ${x.path} -> ${x.status} ${JSON.stringify(String(x.body).slice(0, 300))}` });
  }
}
if (checked === 0) {
  console.error(`contract: ${logPath} holds no exchange; did the e2e run record any (AGENTD_CONTRACT_LOG)?`);
  process.exit(1);
}
console.log(`contract: ${checked} responses checked against ${specPath} (${operations.size} method/route pairs)`);
if (problems.size) {
  for (const [p, { count, example }] of problems) console.error(`contract: ${p}  [${count}x; e.g. ${example}]`);
  console.error(`contract: ${problems.size} broken contract(s)`);
  process.exit(1);
}
