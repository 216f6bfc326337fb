#!/usr/bin/env bash
# Scenario: training throughput. 1,000 agents of ~10 KB free text each (distinct
# deterministic texts), POSTed by bench/driver.py with 8 concurrent keep-alive
# connections; time from the first POST until all are `ready` -> agents trained
# per second. Fresh agentd (--log-level warn, default workers) and data dir per
# round. The driver's own ceiling is measured on GET /health in the same round.
# Target: >= 100 agents/s on 2 cores.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
AGENTS=${THROUGHPUT_AGENTS:-1000}
TEXT_BYTES=${THROUGHPUT_TEXT_BYTES:-10240}
CONC=${THROUGHPUT_CONCURRENCY:-8}
bench_need python3 jq
bench_require_agentd
bench_init

cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
rates=() totals=() posts=() drv=() cpus=()
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	bench_wipe_agentd
	AGENTD_SCENARIO_ARGS=(--log-level warn)
	bench_start_agentd
	d=$(bench_driver get --port "$AGENTD_PORT" --path /health --requests 5000 --concurrency "$CONC")
	drv+=("$(jq -r .per_s <<<"$d")")
	c0=$(cpu_s "$AGENTD_PID")
	out=$(bench_driver create --port "$AGENTD_PORT" --count "$AGENTS" --prefix tp- --bytes "$TEXT_BYTES" \
		--seed "$((round * 100000))" --concurrency "$CONC" --wait-ready --timeout 110)
	c1=$(cpu_s "$AGENTD_PID")
	bench_log "driver /health: $d; create: $out; agentd CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }') s"
	rates+=("$(jq -r .trained_per_s <<<"$out")")
	totals+=("$(jq -r .all_ready_s <<<"$out")")
	posts+=("$(jq -r .per_s <<<"$out")")
	cpus+=("$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')")
	bench_stop_agentd
done

rate=$(bench_median "${rates[@]}")
body="$BENCH_TMP/throughput.md"
{
	echo "$AGENTS agents x $TEXT_BYTES bytes of free text, $CONC concurrent connections, $BENCH_ROUNDS rounds (fresh server each), medians."
	echo "Target: >= 100 agents trained per second."
	echo
	echo '| figure | median | each run |'
	echo '|---|---:|---|'
	echo "| agents trained per second (first POST -> all ready) | $rate | ${rates[*]} |"
	echo "| seconds, first POST -> all ready | $(bench_median "${totals[@]}") | ${totals[*]} |"
	echo "| POST /api/v1/agents accepted per second (201s) | $(bench_median "${posts[@]}") | ${posts[*]} |"
	echo "| agentd CPU seconds (user+sys) over the run | $(bench_median "${cpus[@]}") | ${cpus[*]} |"
	echo "| driver ceiling: GET /health req/s, same driver and concurrency | $(bench_median "${drv[@]}") | ${drv[*]} |"
	echo
	echo "Target met: $(awk -v r="$rate" 'BEGIN { print (r >= 100) ? "yes" : "no" }') ($rate/s vs 100/s)."
} >"$body"
bench_report "Training throughput: $AGENTS agents x ~10 KB" "$body"
