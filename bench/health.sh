#!/usr/bin/env bash
# Scenario: GET /health throughput and latency, agentd vs an nginx reference that
# returns the same small JSON body from memory (a ceiling for this machine).
# The servers run one at a time so they never compete for the CPUs, alternating
# nginx / agentd (access log on, --log-level info) / agentd (access log off,
# --log-level warn) for BENCH_ROUNDS rounds (default 3); medians are reported.
# Target: agentd >= 60% of nginx's req/s.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
bench_require_agentd
bench_init

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	bench_start_nginx
	bench_wrk nginx "http://127.0.0.1:$NGINX_PORT/health"
	bench_collect nginx
	bench_stop_nginx
	[ "$BENCH_REFERENCE_ONLY" = 1 ] && continue
	for level in info warn; do
		AGENTD_SCENARIO_ARGS=(--log-level "$level")
		bench_start_agentd
		# The health route must answer 200 before it is worth measuring.
		code=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AGENTD_PORT/health" || true)
		[ "$code" = 200 ] || bench_log "warning: agentd GET /health answered '$code' before the run"
		bench_wrk "agentd-$level" "http://127.0.0.1:$AGENTD_PORT/health"
		bench_collect "agentd-$level"
		bench_stop_agentd
	done
done

body="$BENCH_TMP/health.md"
{
	echo "GET /health, $BENCH_ROUNDS alternating rounds, medians. Target: agentd >= 0.60 of nginx."
	echo
	echo "$BENCH_ROW_HEADER"
	bench_row "nginx (reference)" nginx nginx
	if [ "$BENCH_REFERENCE_ONLY" != 1 ]; then
		bench_row "agentd, access log on (info)" agentd-info nginx
		bench_row "agentd, access log off (warn)" agentd-warn nginx
	fi
} >"$body"
bench_report "GET /health" "$body"
