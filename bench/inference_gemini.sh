#!/usr/bin/env bash
# Scenario: POST inference through the Gemini backend against the fake Gemini
# server (build/release/fake_gemini --delay-ms 1000, loopback), 500 concurrent
# connections: wrk -t2 -c500 -d15s --timeout 10s with bench/wrk/inference.lua on
# an agent trained on the python_expert dataset. Each answer takes >= 1 s, so 500
# req/s is the ceiling by construction. agentd's peak RSS is VmHWM, and VmRSS is
# polled every 0.2 s during the run. Rounds alternate access log on (info) / off
# (warn). Targets: >= 400 req/s; peak RSS <= 150 MiB.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_CONNS=${GEMINI_CONNS:-500}
BENCH_DURATION=${GEMINI_DURATION:-15s}
BENCH_WARMUP=0
DELAY_MS=${GEMINI_DELAY_MS:-1000}
DATASET=${INFER_DATASET:-$BENCH_ROOT/tests/data/python_expert_dataset.json}
lua="$BENCH_DIR/wrk/inference.lua"
bench_need python3 jq curl
bench_require_agentd
ulimit -n 4096
bench_init

bench_start_fake_gemini "$DELAY_MS"
# The key the fake server accepts (tests/fake/gemini.h FAKE_GEMINI_KEY), a test constant.
GEMINI_API_KEY=$(sed -n 's/^#define FAKE_GEMINI_KEY "\(.*\)"/\1/p' "$BENCH_ROOT/tests/fake/gemini.h")
GEMINI_BASE_URL="http://127.0.0.1:$FAKE_GEMINI_PORT"
export GEMINI_API_KEY GEMINI_BASE_URL

AGENTD_SCENARIO_ARGS=(--log-level warn)
bench_start_agentd
out=$(bench_driver create --port "$AGENTD_PORT" --count 1 --prefix python_expert- --dataset-file "$DATASET" --wait-ready)
bench_log "python_expert: $out"
probe=$(curl -s -m 10 -H 'Content-Type: application/json' -d '{"prompt": "How do I create a REST API with Flask?"}' \
	"http://127.0.0.1:$AGENTD_PORT/api/v1/agents/python_expert-00000/inference")
bench_log "probe: $(jq -c '{backend, model, latency_ms, retries, error, response: .response[0:80]}' <<<"$probe")"
[ "$(jq -r .backend <<<"$probe")" = gemini ] || bench_die "inference did not go through the Gemini backend: $probe"
bench_stop_agentd

declare -A hwm=() rss_peak=()
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	for level in info warn; do
		AGENTD_SCENARIO_ARGS=(--log-level "$level")
		bench_start_agentd
		poll="$BENCH_TMP/rss.$level.$round"
		# Bounded poller: at most the run's length plus a margin.
		(
			end=$((SECONDS + $(bench_seconds "$BENCH_DURATION") + 20))
			while [ "$SECONDS" -lt "$end" ] && kill -0 "$AGENTD_PID" 2>/dev/null; do
				bench_proc_kb "$AGENTD_PID" VmRSS
				sleep 0.2
			done
		) >"$poll" &
		poller=$!
		INFER_AGENT=python_expert-00000 bench_wrk "gemini-$level" "http://127.0.0.1:$AGENTD_PORT" -s "$lua" --timeout 10s
		bench_collect "gemini-$level"
		hwm[$level]+="$(bench_proc_kb "$AGENTD_PID" VmHWM) "
		kill "$poller" 2>/dev/null || true
		wait "$poller" 2>/dev/null || true
		rss_peak[$level]+="$(sort -n "$poll" | tail -n1) "
		bench_log "round $round $level: $WRK_RPS req/s, p50 $WRK_P50 ms, p99 $WRK_P99 ms, VmHWM $(bench_proc_kb "$AGENTD_PID" VmHWM) kB"
		bench_stop_agentd
	done
done

mibs() { local k; for k in "$@"; do printf '%s ' "$(bench_mib "$k")"; done; }
body="$BENCH_TMP/inference_gemini.md"
{
	echo "POST inference via the Gemini backend (fake server, ${DELAY_MS} ms per answer), wrk -t$BENCH_THREADS -c$BENCH_CONNS -d$BENCH_DURATION --timeout 10s, $BENCH_ROUNDS rounds, medians."
	echo "Ceiling by construction: $BENCH_CONNS connections / ${DELAY_MS} ms = $((BENCH_CONNS * 1000 / DELAY_MS)) req/s; ratio column is against that ceiling."
	echo "Targets: >= 400 req/s; agentd peak RSS <= 150 MiB."
	echo
	echo "| access log | req/s (median) | p50 ms | p99 ms | non-2xx + socket errors (all runs) | ratio vs ceiling | req/s of each run | peak RSS (VmHWM) MiB, median | VmHWM each run, MiB | max polled VmRSS each run, MiB |"
	echo '|---|---:|---:|---:|---:|---:|---|---:|---|---|'
	for level in info warn; do
		rps=$(bench_med BENCH_RPS "gemini-$level")
		# shellcheck disable=SC2086 # space-separated figures
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
			"$([ "$level" = info ] && echo "on (info)" || echo "off (warn)")" "$rps" \
			"$(bench_med BENCH_P50 "gemini-$level")" "$(bench_med BENCH_P99 "gemini-$level")" \
			"${BENCH_ERRS[gemini-$level]:-0}" "$(bench_ratio "$rps" "$((BENCH_CONNS * 1000 / DELAY_MS))")" \
			"$(echo "${BENCH_RPS[gemini-$level]}" | xargs | sed 's/ /, /g')" \
			"$(bench_mib "$(bench_median ${hwm[$level]})")" "$(mibs ${hwm[$level]})" "$(mibs ${rss_peak[$level]})"
	done
} >"$body"
bench_report "Inference, Gemini backend (fake, ${DELAY_MS} ms), $BENCH_CONNS connections" "$body"
