#!/usr/bin/env bash
# Scenario (issue 13): one agentd on PostgreSQL against one on SQLite, same
# machine, one run each, each on an empty database:
#   agents/s       500 agents of 10 KB of free text (bench/driver.py create,
#                  32 connections), first POST -> all ready
#   inference p50  POST inference with the local answerer on the python_expert
#                  dataset agent (driver infer, 8 clients, 4,000 requests)
#   status req/s   wrk rotating GET status over the 500 agents
# and the ratios PostgreSQL / SQLite. PostgreSQL is a throwaway server on a
# unix socket, fsync off (build/release/pgserver, as the tests start it), so
# the ratio measures the driver and the server's work, not a disk.
#
# Knobs: PGB_AGENTS (500), PGB_TEXT_BYTES (10240), PGB_CREATE_CONC (32),
# PGB_INFER_REQUESTS (4000), PGB_INFER_CONC (8), BENCH_DURATION (10s) for wrk.
#
# End-to-end check with reduced sizes (not figures to publish):
#   PGB_AGENTS=20 PGB_INFER_REQUESTS=200 BENCH_DURATION=1s BENCH_WARMUP=0 \
#     AGENTD_BIN=bin/agentd bench/run.sh pg_vs_sqlite
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

bench_need python3 jq
bench_require_agentd
bench_init
unset GEMINI_API_KEY
bench_start_pg

declare -A agents=() p50=() infer=() status=() cpu=()
AGENTD_SCENARIO_ARGS=(--log-level warn --rate-limit-per-min 0)
for backend in sqlite postgresql; do
	url=""
	[ "$backend" = postgresql ] && url=$(bench_pg_db pgb_one)
	bench_start_replicas 1 "$url"
	bench_backend_figures "$backend"
	agents[$backend]=$FIG_AGENTS_S
	p50[$backend]=$FIG_INFER_P50
	infer[$backend]=$FIG_INFER_RPS
	status[$backend]=$FIG_STATUS_RPS
	cpu[$backend]=$FIG_CPU
	bench_stop_replicas
done

body="$BENCH_TMP/pg_vs_sqlite.md"
{
	echo "One agentd on PostgreSQL $(printf '%s\n' /usr/lib/postgresql/*/ | sort -V | tail -n1 | xargs basename) (unix socket, fsync off) against one on SQLite; one run each, empty database each."
	echo "$PGB_AGENTS agents x $PGB_TEXT_BYTES bytes over $PGB_CREATE_CONC connections; inference: python_expert dataset, local answerer, $PGB_INFER_CONC clients, $PGB_INFER_REQUESTS requests; status: wrk -t$BENCH_THREADS -c$BENCH_CONNS -d$BENCH_DURATION rotating over the $PGB_AGENTS agents."
	echo
	echo '| figure | SQLite | PostgreSQL | PostgreSQL / SQLite |'
	echo '|---|---:|---:|---:|'
	echo "| agents trained per second (first POST -> all ready) | ${agents[sqlite]} | ${agents[postgresql]} | $(bench_ratio "${agents[postgresql]}" "${agents[sqlite]}") |"
	echo "| inference p50, ms (lower is better) | ${p50[sqlite]} | ${p50[postgresql]} | $(bench_ratio "${p50[postgresql]}" "${p50[sqlite]}") |"
	echo "| inference req/s | ${infer[sqlite]} | ${infer[postgresql]} | $(bench_ratio "${infer[postgresql]}" "${infer[sqlite]}") |"
	echo "| GET status req/s | ${status[sqlite]} | ${status[postgresql]} | $(bench_ratio "${status[postgresql]}" "${status[sqlite]}") |"
	echo "| CPU seconds over the three runs | ${cpu[sqlite]} | ${cpu[postgresql]} | |"
} >"$body"
bench_report "PostgreSQL vs SQLite, one replica" "$body"
