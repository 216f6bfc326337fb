#!/usr/bin/env bash
# Scenario: isolation between agents (issue 10). One round, on one fresh agentd
# (--log-level warn, local backend: no Gemini key) and data dir:
#   (a) empty service: create the small agent ("iso-small-00000", ~20 KB of generated
#       text, seed 7) and wait until ready; then
#       - its inference latency: ISOLATION_REQUESTS sequential POST inference
#         requests (one connection, 8 fixed prompts rotating, driver.py infer
#         --prompts text), after ISOLATION_WARMUP uncounted ones -> p50;
#       - a new small agent's time to ready: ISOLATION_NEW_AGENTS agents of 20 KB
#         (seeds 500, 501, ...) created one after another, each timed from the start
#         of its POST until GET .../status says ready (polled every 2 ms) -> median.
#   (b) store ISOLATION_OTHER_MIB MiB of other agents' material on the same server:
#       ISOLATION_OTHER_AGENTS text agents of equal size, distinct texts (seeds 1001,
#       1002, ...) drawn from the same vocabulary as the small agent's, all ready;
#       then the same two figures again (the same small agent and prompts; new agents
#       with the same texts as in (a) under other ids).
# Reports the medians over the rounds and the ratios (b)/(a).
# Target (issue 10): each ratio <= 1.3.
#
# Knobs: BENCH_ROUNDS (3), ISOLATION_SMALL_BYTES (20480), ISOLATION_REQUESTS (300),
# ISOLATION_WARMUP (30), ISOLATION_NEW_AGENTS (5), ISOLATION_OTHER_MIB (40),
# ISOLATION_OTHER_AGENTS (4), ISOLATION_SETTLE (1: seconds of quiet before each
# phase's measurements, so the phases start alike), ISOLATION_SMALL_DATASET (a dataset JSON file such as
# tests/data/python_expert_dataset.json: the small agent is made from it instead,
# and asked the python prompts).
#
# End-to-end check with reduced sizes (not figures to publish):
#   BENCH_ROUNDS=1 ISOLATION_OTHER_MIB=8 ISOLATION_REQUESTS=100 ISOLATION_NEW_AGENTS=3 \
#     AGENTD_BIN=bin/agentd bench/run.sh isolation
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
SMALL_BYTES=${ISOLATION_SMALL_BYTES:-20480}
REQUESTS=${ISOLATION_REQUESTS:-300}
WARMUP=${ISOLATION_WARMUP:-30}
NEW_AGENTS=${ISOLATION_NEW_AGENTS:-5}
SETTLE=${ISOLATION_SETTLE:-1}
OTHER_MIB=${ISOLATION_OTHER_MIB:-40}
OTHER_AGENTS=${ISOLATION_OTHER_AGENTS:-4}
SMALL_DATASET=${ISOLATION_SMALL_DATASET:-}
bench_need python3 jq
bench_require_agentd
[ -z "$SMALL_DATASET" ] || [ -r "$SMALL_DATASET" ] || bench_die "dataset not found: $SMALL_DATASET"
((OTHER_AGENTS >= 1)) || bench_die "ISOLATION_OTHER_AGENTS must be >= 1"
bench_init
unset GEMINI_API_KEY

other_bytes=$((OTHER_MIB * 1048576 / OTHER_AGENTS))
# Each other agent's body is its text plus a little JSON; leave room for it above
# the default 10 MiB creation limit so 10 MiB texts are accepted.
training_limit=$(((other_bytes > SMALL_BYTES ? other_bytes : SMALL_BYTES) + 1048576))

bench_log "generating $OTHER_AGENTS texts of $other_bytes bytes"
for ((k = 0; k < OTHER_AGENTS; k++)); do
	bench_driver gentext --bytes "$other_bytes" --seed "$((1001 + k))" >"$BENCH_TMP/other-$k.txt"
done
if [ -n "$SMALL_DATASET" ]; then
	small_desc="dataset $(basename "$SMALL_DATASET") ($(jq '.training_data | length' "$SMALL_DATASET") pairs)"
	prompts=python
	small_src=(--dataset-file "$SMALL_DATASET")
else
	small_desc="$SMALL_BYTES bytes of generated text"
	prompts=text
	bench_driver gentext --bytes "$SMALL_BYTES" --seed 7 >"$BENCH_TMP/small.txt"
	small_src=(--text-file "$BENCH_TMP/small.txt")
fi

# measure PHASE: the small agent's inference figures and the new agents' times to
# ready, appended to the per-phase arrays.
declare -A p50=() p99=() ready=()
measure() {
	local phase=$1 out
	sleep "$SETTLE"
	out=$(bench_driver infer --port "$AGENTD_PORT" --agent iso-small-00000 --prompts "$prompts" \
		--requests "$REQUESTS" --warmup "$WARMUP")
	bench_log "($phase) small agent inference: $out"
	[ "$(jq -r '.backends | join(",")' <<<"$out")" = local ] || bench_die "inference did not use the local backend: $out"
	p50[$phase]+="$(jq -r .p50_ms <<<"$out") "
	p99[$phase]+="$(jq -r .p99_ms <<<"$out") "
	out=$(bench_driver ready --port "$AGENTD_PORT" --count "$NEW_AGENTS" --prefix "iso-new-$phase-" \
		--bytes "$SMALL_BYTES" --seed 500 --interval 0.002)
	bench_log "($phase) new agents: $out"
	ready[$phase]+="$(jq -r .median_ready_s <<<"$out") "
}

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	bench_wipe_agentd
	AGENTD_SCENARIO_ARGS=(--log-level warn --max-training-bytes "$training_limit")
	bench_start_agentd
	out=$(bench_driver create --port "$AGENTD_PORT" --count 1 --prefix iso-small- --concurrency 1 \
		"${small_src[@]}" --wait-ready --timeout 60)
	bench_log "small agent: $out"
	measure empty
	for ((k = 0; k < OTHER_AGENTS; k++)); do
		out=$(bench_driver pipeline --port "$AGENTD_PORT" --text-file "$BENCH_TMP/other-$k.txt" \
			--user "iso-other-$k" --timeout 300)
		bench_log "other agent $k: $(jq -c '{status, ready_s, summaries}' <<<"$out")"
	done
	measure loaded
	bench_stop_agentd
done

# row LABEL UNIT TARGET ARRAY: a markdown row from the (a)/(b) figures in ARRAY
# (TARGET empty: no target for this figure).
row() {
	local label=$1 unit=$2 target=$3 a b r met=- target_text=-
	local -n arr=$4
	# shellcheck disable=SC2086 # space-separated figures
	a=$(bench_median ${arr[empty]})
	# shellcheck disable=SC2086
	b=$(bench_median ${arr[loaded]})
	r=$(bench_ratio "$b" "$a")
	if [ -n "$target" ]; then
		target_text="≤ ${target}×"
		met=$(awk -v r="$r" -v t="$target" 'BEGIN { print (r != "n/a" && r + 0 <= t) ? "yes" : "**no**" }')
	fi
	printf '| %s | %s %s | %s %s | %s | %s | %s | %s → %s |\n' "$label" "$a" "$unit" "$b" "$unit" "$r" \
		"$target_text" "$met" "$(xargs <<<"${arr[empty]}")" "$(xargs <<<"${arr[loaded]}")"
}

body="$BENCH_TMP/isolation.md"
{
	echo "Small agent: $small_desc, local backend, $REQUESTS sequential inference requests ($WARMUP warm-up, $prompts prompts)."
	echo "New agents: $NEW_AGENTS per phase, $SMALL_BYTES bytes of text each, one after another, POST start -> ready."
	echo "Others: $OTHER_AGENTS agents x $other_bytes bytes ($OTHER_MIB MiB) of distinct text, same vocabulary, all ready before (b)."
	echo "$BENCH_ROUNDS rounds (fresh server and data dir each), medians; ratio = (b) / (a). Target: each ratio <= 1.3."
	echo
	echo "| figure | (a) empty service | (b) with $OTHER_MIB MiB of others | ratio | target | met? | each round, (a) → (b) |"
	echo '|---|---:|---:|---:|---|---|---|'
	row "small agent's inference p50" ms 1.3 p50
	row "small agent's inference p99" ms "" p99
	row "new ${SMALL_BYTES}-byte agent, POST -> ready (median of $NEW_AGENTS)" s 1.3 ready
} >"$body"
bench_report "Isolation: a small agent beside $OTHER_MIB MiB of others" "$body"
