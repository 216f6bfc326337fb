#!/usr/bin/env bash
# Scenario (issue 13): two agentd replicas on one PostgreSQL against one,
# the same figures as bench/pg_vs_sqlite.sh (agents/s for 500 x 10 KB,
# inference p50 with the local answerer, GET status req/s with wrk), each
# configuration on an empty database, the load spread over every replica
# (the driver's connections alternate between them; one wrk per replica with
# half the threads and connections). Prints the ratios two / one.
#
# On one machine the replicas share its cores with PostgreSQL and the load
# generators, so the ratio shows what a second process buys on the same
# cores; the CPU row says where the time went (agentd vs postgres).
#
# Knobs: as bench/pg_vs_sqlite.sh (PGB_*, BENCH_DURATION).
#
# End-to-end check with reduced sizes (not figures to publish):
#   PGB_AGENTS=20 PGB_INFER_REQUESTS=200 BENCH_DURATION=1s BENCH_WARMUP=0 \
#     AGENTD_BIN=bin/agentd bench/run.sh replicas
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
for n in 1 2; do
	bench_start_replicas "$n" "$(bench_pg_db "pgb_replicas_$n")"
	bench_backend_figures "$n replica(s)"
	agents[$n]=$FIG_AGENTS_S
	p50[$n]=$FIG_INFER_P50
	infer[$n]=$FIG_INFER_RPS
	status[$n]=$FIG_STATUS_RPS
	cpu[$n]=$FIG_CPU
	bench_stop_replicas
done

body="$BENCH_TMP/replicas.md"
{
	echo "Two agentd replicas on one PostgreSQL (unix socket, fsync off) against one; one run each, empty database each; $(nproc) CPUs shared by everything."
	echo "$PGB_AGENTS agents x $PGB_TEXT_BYTES bytes over $PGB_CREATE_CONC connections; inference: python_expert dataset, local answerer, $PGB_INFER_CONC clients, $PGB_INFER_REQUESTS requests; status: wrk rotating over the $PGB_AGENTS agents, -t$BENCH_THREADS -c$BENCH_CONNS -d$BENCH_DURATION in all. Load spread over the replicas."
	echo
	echo '| figure | one replica | two replicas | two / one |'
	echo '|---|---:|---:|---:|'
	echo "| agents trained per second (first POST -> all ready) | ${agents[1]} | ${agents[2]} | $(bench_ratio "${agents[2]}" "${agents[1]}") |"
	echo "| inference p50, ms (lower is better) | ${p50[1]} | ${p50[2]} | $(bench_ratio "${p50[2]}" "${p50[1]}") |"
	echo "| inference req/s | ${infer[1]} | ${infer[2]} | $(bench_ratio "${infer[2]}" "${infer[1]}") |"
	echo "| GET status req/s | ${status[1]} | ${status[2]} | $(bench_ratio "${status[2]}" "${status[1]}") |"
	echo "| CPU seconds over the three runs | ${cpu[1]} | ${cpu[2]} | |"
} >"$body"
bench_report "Two replicas vs one, PostgreSQL" "$body"
