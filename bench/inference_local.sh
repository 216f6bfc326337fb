#!/usr/bin/env bash
# Scenario: POST /api/v1/agents/{id}/inference with the local backend (no Gemini
# key), wrk -t2 -c64 -d10s with bench/wrk/inference.lua (6 prompts rotating), on
# two agents stored once: python_expert (the dataset in
# tests/data/python_expert_dataset.json, its training_data pairs) and
# big-agent (10 MiB of generated free text, seed 42; INFER_BIG_BYTES sets the size).
# Rounds alternate access log on (info) / off (warn); agentd restarts on the same
# data dir. Issue 10: python_expert's p50 no worse than before the change.
#
# End-to-end check with reduced sizes (not figures to publish):
#   BENCH_ROUNDS=1 BENCH_DURATION=2s INFER_BIG_BYTES=2097152 AGENTD_BIN=bin/agentd bench/run.sh inference_local
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_WARMUP=${BENCH_WARMUP_INFERENCE:-1s}
DATASET=${INFER_DATASET:-$BENCH_ROOT/tests/data/python_expert_dataset.json}
BIG_BYTES=${INFER_BIG_BYTES:-10485760}
lua="$BENCH_DIR/wrk/inference.lua"
bench_need python3 jq curl
bench_require_agentd
[ -r "$DATASET" ] || bench_die "dataset not found: $DATASET"
bench_init
unset GEMINI_API_KEY

text="$BENCH_TMP/text.txt"
bench_driver gentext --bytes "$BIG_BYTES" --seed 42 >"$text"
# The big agent's body is its text plus a little JSON: room above the default
# 10 MiB creation limit (only creation needs it).
AGENTD_SCENARIO_ARGS=(--log-level warn --max-training-bytes "$((BIG_BYTES + 1048576))")
bench_start_agentd
out=$(bench_driver create --port "$AGENTD_PORT" --count 1 --prefix python_expert- --dataset-file "$DATASET" --wait-ready)
bench_log "python_expert: $out"
out=$(bench_driver pipeline --port "$AGENTD_PORT" --text-file "$text" --user big-agent --timeout 110)
bench_log "big-agent: $out"
probe=$(curl -s -m 10 -H 'Content-Type: application/json' -d '{"prompt": "How do I create a REST API with Flask?"}' \
	"http://127.0.0.1:$AGENTD_PORT/api/v1/agents/python_expert-00000/inference")
bench_log "probe: $(jq -c '{backend, model, confidence, response: .response[0:120]}' <<<"$probe")"
bench_stop_agentd

agents=(python_expert-00000 big-agent)
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	for level in info warn; do
		AGENTD_SCENARIO_ARGS=(--log-level "$level")
		bench_start_agentd
		for a in "${agents[@]}"; do
			INFER_AGENT=$a bench_wrk "$a-$level" "http://127.0.0.1:$AGENTD_PORT" -s "$lua"
			bench_collect "$a-$level"
		done
		bench_stop_agentd
	done
done

body="$BENCH_TMP/inference_local.md"
{
	echo "POST inference, local backend, wrk -t$BENCH_THREADS -c$BENCH_CONNS -d$BENCH_DURATION, 6 prompts rotating, $BENCH_ROUNDS rounds, medians."
	echo "Ratio column: against the same agent with the access log off."
	echo
	echo "${BENCH_ROW_HEADER/| server |/| agent, access log |}"
	bench_row "python_expert (dataset, $(jq '.training_data | length' "$DATASET") pairs), log on" python_expert-00000-info python_expert-00000-warn
	bench_row "python_expert, log off" python_expert-00000-warn python_expert-00000-warn
	bench_row "big-agent ($BIG_BYTES bytes of text), log on" big-agent-info big-agent-warn
	bench_row "big-agent, log off" big-agent-warn big-agent-warn
} >"$body"
bench_report "Inference, local backend" "$body"
