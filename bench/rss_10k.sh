#!/usr/bin/env bash
# Scenario: memory with 10,000 agents stored (tiny free text each, ~100 bytes),
# created by bench/driver.py (8 connections). agentd's VmRSS / VmHWM
# (/proc/PID/status) once all are ready, and again after 1,000 status reads
# (ids 0..999). Fresh agentd (--log-level warn) and data dir per round.
# Target: VmRSS <= 64 MiB.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
AGENTS=${RSS_AGENTS:-10000}
bench_need python3 jq
bench_require_agentd
bench_init

idle=() after_ready=() after_reads=() peak=() secs=()
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	bench_wipe_agentd
	AGENTD_SCENARIO_ARGS=(--log-level warn)
	bench_start_agentd
	idle+=("$(bench_proc_kb "$AGENTD_PID" VmRSS)")
	out=$(bench_driver create --port "$AGENTD_PORT" --count "$AGENTS" --prefix rs- --bytes 100 \
		--seed "$round" --concurrency 8 --wait-ready --timeout 110)
	bench_log "create: $out"
	secs+=("$(jq -r .all_ready_s <<<"$out")")
	after_ready+=("$(bench_proc_kb "$AGENTD_PID" VmRSS)")
	reads=$(bench_driver get --port "$AGENTD_PORT" --path '/api/v1/agents/rs-{i}/status' --rotate "$AGENTS" \
		--requests 1000 --concurrency 8)
	bench_log "status reads: $reads"
	after_reads+=("$(bench_proc_kb "$AGENTD_PID" VmRSS)")
	peak+=("$(bench_proc_kb "$AGENTD_PID" VmHWM)")
	bench_stop_agentd
done

mibs() { local k; for k in "$@"; do printf '%s ' "$(bench_mib "$k")"; done; }
final=$(bench_mib "$(bench_median "${after_reads[@]}")")
body="$BENCH_TMP/rss.md"
{
	echo "$AGENTS agents (~100 bytes of text each), $BENCH_ROUNDS rounds (fresh server each), medians. Target: VmRSS <= 64 MiB."
	echo
	echo '| agentd memory | MiB (median) | each run, MiB |'
	echo '|---|---:|---|'
	echo "| VmRSS at start (empty) | $(bench_mib "$(bench_median "${idle[@]}")") | $(mibs "${idle[@]}")|"
	echo "| VmRSS, all $AGENTS ready | $(bench_mib "$(bench_median "${after_ready[@]}")") | $(mibs "${after_ready[@]}")|"
	echo "| VmRSS, after 1,000 status reads | $final | $(mibs "${after_reads[@]}")|"
	echo "| VmHWM (peak) | $(bench_mib "$(bench_median "${peak[@]}")") | $(mibs "${peak[@]}")|"
	echo
	echo "Creating $AGENTS agents until all ready took $(bench_median "${secs[@]}") s (median; ${secs[*]})."
	echo "Target met: $(awk -v r="$final" 'BEGIN { print (r <= 64) ? "yes" : "no" }') ($final MiB vs 64 MiB)."
} >"$body"
bench_report "Memory: $AGENTS agents stored" "$body"
