#!/usr/bin/env bash
# Scenario: GET /api/v1/agents/{id}/status with 1,000 agents stored (small free
# text each, created by bench/driver.py), wrk rotating over the 1,000 ids
# (bench/wrk/status_rotate.lua), beside nginx returning a static JSON 200 on the
# same paths. Rounds alternate nginx / agentd access log on (info) / agentd access
# log off (warn); agentd restarts on the same data dir. Target: agentd >= 50% of nginx.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
AGENTS=${STATUS_AGENTS:-1000}
export STATUS_PREFIX=st- STATUS_COUNT=$AGENTS
lua="$BENCH_DIR/wrk/status_rotate.lua"
bench_need python3 curl
bench_require_agentd
bench_init

# Store the agents once; later starts reuse the data dir.
AGENTD_SCENARIO_ARGS=(--log-level warn)
bench_start_agentd
bench_store_status_agents
code=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AGENTD_PORT/api/v1/agents/${STATUS_PREFIX}00999/status" || true)
[ "$code" = 200 ] || bench_die "GET status of the last agent answered '$code'"
bench_stop_agentd

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	bench_start_nginx
	bench_wrk nginx "http://127.0.0.1:$NGINX_PORT" -s "$lua"
	bench_collect nginx
	bench_stop_nginx
	for level in info warn; do
		AGENTD_SCENARIO_ARGS=(--log-level "$level")
		bench_start_agentd
		bench_wrk "agentd-$level" "http://127.0.0.1:$AGENTD_PORT" -s "$lua"
		bench_collect "agentd-$level"
		bench_stop_agentd
	done
done

body="$BENCH_TMP/status.md"
{
	echo "GET /api/v1/agents/{id}/status rotating over $AGENTS stored agents (wrk Lua), $BENCH_ROUNDS alternating rounds, medians."
	echo "Setup: $created / $ready. Target: agentd >= 0.50 of nginx."
	echo
	echo "$BENCH_ROW_HEADER"
	bench_row "nginx (reference, static JSON)" nginx nginx
	bench_row "agentd, access log on (info)" agentd-info nginx
	bench_row "agentd, access log off (warn)" agentd-warn nginx
} >"$body"
bench_report "GET /api/v1/agents/{id}/status" "$body"
