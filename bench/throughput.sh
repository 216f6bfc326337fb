#!/usr/bin/env bash
# Scenario: training throughput (issue 10). 500 agents of ~10 KB free text each
# (distinct deterministic texts), POSTed by bench/driver.py over 32 concurrent
# keep-alive connections; time from the first POST until all are `ready` -> agents
# trained per second. Two cases per round, each on a fresh agentd (--log-level
# warn, default workers) and data dir:
#   empty  nothing else stored;
#   big    one agent of 10 MiB of generated text (seed 42) created and ready
#          before the timed run (the run waits for its own agents only).
# The driver's own ceiling is measured on GET /health in each case.
# Target: >= 100 agents/s in both cases, on 2 cores.
#
# Knobs: BENCH_ROUNDS (3), THROUGHPUT_AGENTS (500), THROUGHPUT_TEXT_BYTES (10240),
# THROUGHPUT_CONCURRENCY (32), THROUGHPUT_BIG_BYTES (10485760; 0 skips the big case).
#
# End-to-end check with reduced sizes (not figures to publish):
#   BENCH_ROUNDS=1 THROUGHPUT_AGENTS=100 THROUGHPUT_BIG_BYTES=2097152 \
#     AGENTD_BIN=bin/agentd bench/run.sh throughput
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
AGENTS=${THROUGHPUT_AGENTS:-500}
TEXT_BYTES=${THROUGHPUT_TEXT_BYTES:-10240}
CONC=${THROUGHPUT_CONCURRENCY:-32}
BIG_BYTES=${THROUGHPUT_BIG_BYTES:-10485760}
bench_need python3 jq
bench_require_agentd
bench_init

cases=(empty)
if ((BIG_BYTES > 0)); then
	cases+=(big)
	big_text="$BENCH_TMP/big.txt"
	bench_driver gentext --bytes "$BIG_BYTES" --seed 42 >"$big_text"
fi
# The big agent's body is its text plus a little JSON; leave room for it above the
# default 10 MiB creation limit.
training_limit=$(((BIG_BYTES > TEXT_BYTES ? BIG_BYTES : TEXT_BYTES) + 1048576))

cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
declare -A rates=() totals=() posts=() drv=() cpus=()
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	for c in "${cases[@]}"; do
		bench_log "round $round/$BENCH_ROUNDS, case $c"
		bench_wipe_agentd
		AGENTD_SCENARIO_ARGS=(--log-level warn --max-training-bytes "$training_limit")
		bench_start_agentd
		if [ "$c" = big ]; then
			out=$(bench_driver pipeline --port "$AGENTD_PORT" --text-file "$big_text" --user big-agent --timeout 300)
			bench_log "big agent: $(jq -c '{status, ready_s, summaries}' <<<"$out")"
		fi
		d=$(bench_driver get --port "$AGENTD_PORT" --path /health --requests 5000 --concurrency "$CONC")
		drv[$c]+="$(jq -r .per_s <<<"$d") "
		c0=$(cpu_s "$AGENTD_PID")
		out=$(bench_driver create --port "$AGENTD_PORT" --count "$AGENTS" --prefix tp- --bytes "$TEXT_BYTES" \
			--seed "$((round * 100000))" --concurrency "$CONC" --wait-ready --timeout 300)
		c1=$(cpu_s "$AGENTD_PID")
		bench_log "driver /health: $d; create: $out; agentd CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }') s"
		rates[$c]+="$(jq -r .trained_per_s <<<"$out") "
		totals[$c]+="$(jq -r .all_ready_s <<<"$out") "
		posts[$c]+="$(jq -r .per_s <<<"$out") "
		cpus[$c]+="$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') "
		bench_stop_agentd
	done
done

# med ARRAY CASE: the median of ARRAY's figures for CASE.
med() {
	local -n arr=$1
	# shellcheck disable=SC2086 # space-separated figures
	bench_median ${arr[$2]}
}
label() {
	if [ "$1" = big ]; then echo "with one $BIG_BYTES-byte agent stored"; else echo "empty service"; fi
}

body="$BENCH_TMP/throughput.md"
{
	echo "$AGENTS agents x $TEXT_BYTES bytes of free text, $CONC concurrent connections, $BENCH_ROUNDS rounds, medians."
	echo "Each case on a fresh server and data dir; \"with one agent stored\": that agent was ready before the first POST."
	echo "Target: >= 100 agents trained per second in each case."
	echo
	echo '| figure | case | median | each run |'
	echo '|---|---|---:|---|'
	for c in "${cases[@]}"; do
		echo "| agents trained per second (first POST -> all ready) | $(label "$c") | $(med rates "$c") | $(xargs <<<"${rates[$c]}") |"
		echo "| seconds, first POST -> all ready | $(label "$c") | $(med totals "$c") | $(xargs <<<"${totals[$c]}") |"
		echo "| POST /api/v1/agents accepted per second (201s) | $(label "$c") | $(med posts "$c") | $(xargs <<<"${posts[$c]}") |"
		echo "| agentd CPU seconds (user+sys) over the run | $(label "$c") | $(med cpus "$c") | $(xargs <<<"${cpus[$c]}") |"
		echo "| driver ceiling: GET /health req/s, same driver and concurrency | $(label "$c") | $(med drv "$c") | $(xargs <<<"${drv[$c]}") |"
	done
	echo
	for c in "${cases[@]}"; do
		r=$(med rates "$c")
		echo "Target met, $(label "$c"): $(awk -v r="$r" 'BEGIN { print (r >= 100) ? "yes" : "**no**" }') ($r/s vs 100/s)."
	done
} >"$body"
bench_report "Training throughput: $AGENTS agents x ~10 KB, $CONC clients" "$body"
