#!/usr/bin/env bash
# Scenario: GET /health throughput and latency, agentd vs an nginx reference that
# returns the same small JSON body from memory (a ceiling for this machine).
# The servers run one at a time so they never compete for the CPUs.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

bench_require_agentd
bench_init

bench_start_nginx
bench_wrk nginx "http://127.0.0.1:$NGINX_PORT/health"
nginx_rps=$WRK_RPS
row_nginx="| nginx (reference) | $WRK_RPS | $WRK_P50 | $WRK_P90 | $WRK_P99 | $WRK_NON2XX / $WRK_SOCKET_ERRORS | 1.00 |"
bench_stop_nginx

row_agentd=""
if [ "$BENCH_REFERENCE_ONLY" != 1 ]; then
	bench_start_agentd
	# The health route must answer 200 before it is worth measuring.
	code=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AGENTD_PORT/health" || true)
	[ "$code" = 200 ] || bench_log "warning: agentd GET /health answered '$code' before the run"
	bench_wrk agentd "http://127.0.0.1:$AGENTD_PORT/health"
	ratio=$(bench_ratio "$WRK_RPS" "$nginx_rps")
	row_agentd="| agentd | $WRK_RPS | $WRK_P50 | $WRK_P90 | $WRK_P99 | $WRK_NON2XX / $WRK_SOCKET_ERRORS | $ratio |"
	bench_stop_agentd
fi

body="$BENCH_TMP/health.md"
{
	echo '| server | req/s | p50 ms | p90 ms | p99 ms | non-2xx / socket errors | req/s ratio vs nginx |'
	echo '|---|---:|---:|---:|---:|---:|---:|'
	echo "$row_nginx"
	[ -z "$row_agentd" ] || echo "$row_agentd"
} >"$body"
bench_report "GET /health" "$body"
