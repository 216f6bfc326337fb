#!/usr/bin/env bash
# Scenario: what /metrics costs on the hot path (issue 12: >= 0.95). The same
# binary with metrics off (AGENTD_METRICS=false) and on, in alternating rounds,
# on GET /health and on GET /api/v1/agents/{id}/status rotating over 1,000 stored
# agents (bench/wrk/status_rotate.lua). While metrics are on, a loop scrapes
# /metrics once a second, as a Prometheus with a short interval would, so the
# scrape's own cost (summing the shards, the census of agents and jobs) is in
# the figures. Access log off (warn); agentd restarts on the same data dir.
#   BENCH_ROUNDS=5 bench/run.sh metrics      METRICS_AGENTS=100 for a quick look
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-5}
AGENTS=${METRICS_AGENTS:-1000}
export STATUS_PREFIX=mt- STATUS_COUNT=$AGENTS
lua="$BENCH_DIR/wrk/status_rotate.lua"
bench_need python3 curl
bench_require_agentd
bench_init

AGENTD_SCENARIO_ARGS=(--log-level warn)
bench_start_agentd
bench_store_status_agents
code=$(timeout 5 curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AGENTD_PORT/metrics" || true)
[ "$code" = 200 ] || bench_die "GET /metrics answered '$code'"
bench_stop_agentd

SCRAPER_PID=""
# Scrapes /metrics every second until stopped (or agentd is gone, should the
# scenario die first); counts the scrapes that failed.
scraper_start() {
	local url="http://127.0.0.1:$AGENTD_PORT/metrics" failed="$BENCH_TMP/scrapes-failed" pid=$AGENTD_PID
	(
		while kill -0 "$pid" 2>/dev/null; do
			curl -s -f -o /dev/null --max-time 5 "$url" || echo x >>"$failed"
			sleep 1
		done
	) &
	SCRAPER_PID=$!
}
scraper_stop() {
	[ -n "$SCRAPER_PID" ] || return 0
	kill "$SCRAPER_PID" 2>/dev/null || true
	wait "$SCRAPER_PID" 2>/dev/null || true
	SCRAPER_PID=""
}

# run NAME METRICS(true|false): one start of agentd, both routes measured.
run() {
	local name=$1 on=$2
	AGENTD_METRICS=$on bench_start_agentd
	[ "$on" = true ] && scraper_start
	bench_wrk "$name-health" "http://127.0.0.1:$AGENTD_PORT/health"
	bench_collect "$name-health"
	bench_wrk "$name-status" "http://127.0.0.1:$AGENTD_PORT" -s "$lua"
	bench_collect "$name-status"
	scraper_stop
	bench_stop_agentd
}

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	# The order alternates, so drift (heat, a noisy neighbour) falls on both.
	if ((round % 2)); then
		run off false
		run on true
	else
		run on true
		run off false
	fi
done
failed=0
[ -f "$BENCH_TMP/scrapes-failed" ] && failed=$(wc -l <"$BENCH_TMP/scrapes-failed")

body="$BENCH_TMP/metrics.md"
{
	echo "Metrics on vs off, the same binary (AGENTD_METRICS=false for off), $BENCH_ROUNDS alternating rounds, medians,"
	echo "access log off; /metrics scraped every 1 s during the metrics-on runs ($failed scrape(s) failed)."
	echo "Status: GET /api/v1/agents/{id}/status rotating over $AGENTS stored agents ($created / $ready)."
	echo "Target: ratio on/off >= 0.95 on both routes."
	echo
	echo "$BENCH_ROW_HEADER"
	bench_row "GET /health, metrics off (reference)" off-health off-health
	bench_row "GET /health, metrics on + scrapes" on-health off-health
	bench_row "GET status, metrics off (reference)" off-status off-status
	bench_row "GET status, metrics on + scrapes" on-status off-status
} >"$body"
bench_report "Metrics on/off" "$body"
