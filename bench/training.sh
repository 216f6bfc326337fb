#!/usr/bin/env bash
# Scenario: time per training iteration (POST .../train, iterations=5) on each
# dataset in tests/data and on a 1 MiB free text. Reads each iteration's
# duration_ms from GET .../training and reports the median per agent.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

ITERATIONS=${TRAIN_ITERATIONS:-5}
DATA=$BENCH_ROOT/tests/data
bench_need python3 jq curl
bench_require_agentd
bench_init

# shellcheck disable=SC2034 # read by bench_start_agentd
AGENTD_SCENARIO_ARGS=(--log-level warn)
bench_start_agentd
base="http://127.0.0.1:$AGENTD_PORT/api/v1/agents"

create() { # user_id body_file
	curl -sf -o /dev/null -X POST "$base" -H 'Content-Type: application/json' --data-binary "@$2"
	for _ in $(seq 1 600); do
		[ "$(curl -s "$base/$1/status" | jq -r .status)" = ready ] && return 0
		sleep 0.1
	done
	bench_die "agent $1 did not become ready"
}

for ds in ml_expert python_expert; do
	jq -c --arg id "$ds" '{user_id: $id, dataset: .training_data}' "$DATA/${ds}_dataset.json" \
		>"$BENCH_TMP/$ds.json"
	create "$ds" "$BENCH_TMP/$ds.json"
done
bench_driver gentext --bytes $((1024 * 1024)) --seed 5 >"$BENCH_TMP/text.txt"
jq -Rs -c '{user_id: "text_1mib", training_data: .}' "$BENCH_TMP/text.txt" >"$BENCH_TMP/text.json"
create text_1mib "$BENCH_TMP/text.json"

body="$BENCH_TMP/report.md"
{
	printf 'POST .../train {"iterations": %d} on each agent; per-iteration duration_ms from GET .../training.\n\n' "$ITERATIONS"
	printf '| agent | units | median ms per iteration | each iteration, ms | run wall time, s | best iteration | quality first -> best |\n'
	printf '|---|---:|---:|---|---:|---:|---|\n'
} >"$body"
for id in ml_expert python_expert text_1mib; do
	t0=$(date +%s%N)
	curl -sf -o /dev/null -X POST "$base/$id/train" -H 'Content-Type: application/json' \
		-d "{\"iterations\": $ITERATIONS}"
	for _ in $(seq 1 1200); do
		st=$(curl -s "$base/$id/training" | jq -r .training.status)
		[ "$st" = "done" ] || [ "$st" = "failed" ] && break
		sleep 0.1
	done
	t1=$(date +%s%N)
	tr=$(curl -s "$base/$id/training")
	[ "$(jq -r .training.status <<<"$tr")" = "done" ] || bench_die "training of $id: $(jq -c .training <<<"$tr")"
	ms=$(jq -r --arg id "$id" '.training_data[$id] | to_entries | sort_by(.key | tonumber) | map(.value.duration_ms) | join(" ")' <<<"$tr")
	units=$(curl -s "$base/$id/pipeline" | jq -r '.stages[0].summary' | awk '{print $1}')
	best=$(jq -r .training.best_iteration <<<"$tr")
	q=$(jq -r --arg id "$id" --arg b "$best" '"\(.training_data[$id]["1"].metrics.quality_score) -> \(.training_data[$id][$b].metrics.quality_score)"' <<<"$tr")
	# shellcheck disable=SC2086 # a list of numbers
	med=$(bench_median $ms)
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$id" "$units" "$med" "$ms" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')" "$best" "$q" >>"$body"
done
bench_stop_agentd
bench_report "Training iterations" "$body"
