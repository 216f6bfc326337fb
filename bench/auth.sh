#!/usr/bin/env bash
# Scenario: what authentication costs on the hot path. GET /api/v1/agents/{id}/status
# rotating over 1,000 stored agents (bench/wrk/status_rotate.lua), in alternating
# rounds: auth off (the reference), the bootstrap key, and an API token (one indexed
# read of its secret per request, the rate limiter and the RateLimit-* headers).
# The token is minted once with a per-minute limit high enough never to refuse.
# Access log off (warn) in every round; agentd restarts on the same data dir.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
AGENTS=${STATUS_AGENTS:-1000}
export STATUS_PREFIX=au- STATUS_COUNT=$AGENTS
lua="$BENCH_DIR/wrk/status_rotate.lua"
key="bench-admin-key-$$-$RANDOM"
bench_need python3 curl
bench_require_agentd
bench_init

AGENTD_SCENARIO_ARGS=(--log-level warn)
bench_start_agentd
bench_store_status_agents
bench_stop_agentd

AGENTD_SCENARIO_ARGS=(--log-level warn --api-key "$key")
bench_start_agentd
token=$(curl -s -X POST -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
	-d '{"name":"bench","scopes":["agents:read"],"agents":"*","rate_limit_per_min":1000000}' \
	"http://127.0.0.1:$AGENTD_PORT/api/v1/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
[ -n "$token" ] || bench_die "could not mint a token"
bench_stop_agentd

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	AGENTD_SCENARIO_ARGS=(--log-level warn)
	bench_start_agentd
	bench_wrk off "http://127.0.0.1:$AGENTD_PORT" -s "$lua"
	bench_collect off
	bench_stop_agentd
	# A limit no run reaches, so both callers pass through the limiter.
	AGENTD_SCENARIO_ARGS=(--log-level warn --api-key "$key" --rate-limit-per-min 1000000)
	bench_start_agentd
	bench_wrk admin "http://127.0.0.1:$AGENTD_PORT" -s "$lua" -H "Authorization: Bearer $key"
	bench_collect admin
	bench_wrk token "http://127.0.0.1:$AGENTD_PORT" -s "$lua" -H "Authorization: Bearer $token"
	bench_collect token
	bench_stop_agentd
done

body="$BENCH_TMP/auth.md"
{
	echo "GET /api/v1/agents/{id}/status rotating over $AGENTS stored agents (wrk Lua), $BENCH_ROUNDS alternating rounds, medians, access log off."
	echo "Setup: $created / $ready. Key and token rounds: --rate-limit-per-min 1000000 (never reached), so the limiter runs for both."
	echo
	echo "$BENCH_ROW_HEADER"
	bench_row "auth off (reference)" off off
	bench_row "bootstrap key" admin off
	bench_row "API token (agents:read, *)" token off
} >"$body"
bench_report "Authentication on GET status" "$body"
