#!/usr/bin/env bash
# make smoke-gemini: a handful of real calls to Google's Gemini API, for a
# user to check a key and a model. Never part of `make test` (no test reaches
# the internet). Without GEMINI_API_KEY in the environment it says so and
# exits 0. GEMINI_MODEL, GEMINI_BASE_URL and the other GEMINI_* settings are
# honoured as agentd honours them.
set -eu
if [ -z "${GEMINI_API_KEY:-}" ]; then
  echo "smoke-gemini: skipped: GEMINI_API_KEY is not set"
  exit 0
fi
bin=${AGENTD_BIN:-build/release/agentd}
port=${SMOKE_PORT:-18089}
base="http://127.0.0.1:$port/api/v1"
data=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT
fail() { echo "smoke-gemini: FAILED: $*" >&2; exit 1; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(eval("d"+sys.argv[1])))' "$1"; }

echo "== 1. the model, as --check-config looks it up"
"$bin" --check-config >/dev/null || fail "the configured model is missing or retired (see above)"

echo "== 2. agentd on 127.0.0.1:$port, data in $data"
AGENTD_API_KEY= "$bin" --bind 127.0.0.1 --port "$port" --data-dir "$data" --log-level warn &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
health=$(curl -s "http://127.0.0.1:$port/health")
for _ in $(seq 50); do
  echo "$health" | grep -q '"model_state":"unchecked"' || break
  sleep 0.1
  health=$(curl -s "http://127.0.0.1:$port/health")
done
echo "health: $(echo "$health" | field '["checks"]["upstream"]')"

echo "== 3. an agent"
curl -fs -X POST "$base/agents" -H 'Content-Type: application/json' -d '{"user_id":"smoke",
  "training_data":"Ana bakes sourdough every morning at six. The bakery is closed on Sundays. Rye bread is baked on Mondays and Thursdays."}' >/dev/null \
  || fail "cannot create the agent"
for _ in $(seq 300); do
  st=$(curl -s "$base/agents/smoke/status" | field '["status"]')
  [ "$st" = '"ready"' ] && break
  [ "$st" = '"error"' ] && fail "the agent's pipeline failed"
  sleep 0.1
done

ask() {
  out=$(curl -s -w '\n%{http_code}' -X POST "$base/agents/smoke/inference" -H 'Content-Type: application/json' -d "$1")
  code=$(echo "$out" | tail -n 1)
  body=$(echo "$out" | sed '$d')
  echo "$2: HTTP $code"
  echo "$body" | head -c 600
  echo
  [ "$code" = 200 ] || fail "$2 answered $code"
}
echo "== 4. a question"
ask '{"prompt":"When is the sourdough baked?"}' "unary"
echo "== 5. a question with its own thinking level"
ask '{"prompt":"Which days is rye baked?","thinking_level":"low","max_output_tokens":800}' "thinking low"
echo "== 6. streamed"
stream=$(curl -sN -X POST "$base/agents/smoke/inference" -H 'Content-Type: application/json' \
  -d '{"prompt":"Is the bakery open on Sunday?","stream":true}')
echo "$stream" | tail -n 3
echo "$stream" | grep -q '^event: done' || fail "the stream did not end in done"
echo "smoke-gemini: ok"
