#!/usr/bin/env bash
# Scenario: one agent from 10 MiB of free text (deterministic English-like text,
# bench/driver.py gentext, seed 42): time from the start of the POST to status
# `ready`, beside the time the sqlite3 CLI takes to build an FTS5 index with
# stemming (porter unicode61 remove_diacritics 2: what agentd's English
# analysis does) over the same text split into ~600-byte passages (one
# transaction of INSERTs). Rounds alternate sqlite3 / agentd (fresh data dir
# each round, --log-level warn). Target: agentd <= 2x sqlite3's time.
#
#   bench/run.sh pipeline_10mib
#   BENCH_ROUNDS=1 PIPELINE_TEXT_BYTES=2097152 bench/run.sh pipeline_10mib   (a quick look)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-3}
TEXT_BYTES=${PIPELINE_TEXT_BYTES:-10485760}
bench_need python3 sqlite3 jq
bench_require_agentd
bench_init

text="$BENCH_TMP/text.txt"
sql="$BENCH_TMP/fts.sql"
db="$BENCH_TMP/fts.db"
bench_driver gentext --bytes "$TEXT_BYTES" --seed 42 >"$text"
split=$(bench_driver passages --in "$text" --sql "$sql")
# The driver writes the unicode61 tokenizer alone; the reference stems, as agentd does.
sed -i "s/tokenize='unicode61 remove_diacritics 2'/tokenize='porter unicode61 remove_diacritics 2'/" "$sql"
grep -q "tokenize='porter unicode61" "$sql" || bench_die "the reference SQL has no porter tokenizer"
bench_log "passages: $split"

now_ns() { date +%s%N; }
sq_times=() ad_times=() post_times=() hwm=()
declare -A stage_ms=()
stages=(DataProcessor ModelTrainer ModelEvaluator ModelDeployer)
summary=""
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	bench_log "round $round/$BENCH_ROUNDS"
	rm -f "$db" "$db-wal" "$db-shm"
	t0=$(now_ns)
	timeout 120 sqlite3 "$db" <"$sql" >/dev/null
	t1=$(now_ns)
	sq_times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')")
	rows=$(sqlite3 "$db" 'SELECT count(*) FROM t')
	bench_log "sqlite3: ${sq_times[-1]} s, $rows rows"

	bench_wipe_agentd
	# The limit counts the whole body, JSON included: room for the text's escapes.
	AGENTD_SCENARIO_ARGS=(--log-level warn --max-training-bytes $((TEXT_BYTES + 1048576)))
	bench_start_agentd
	out=$(bench_driver pipeline --port "$AGENTD_PORT" --text-file "$text" --user big-agent --timeout 110)
	bench_log "agentd: $out"
	ad_times+=("$(jq -r .ready_s <<<"$out")")
	post_times+=("$(jq -r .post_s <<<"$out")")
	for s in "${stages[@]}"; do
		stage_ms[$s]+="$(jq -r ".stages_ms.$s" <<<"$out") "
	done
	summary=$(jq -r '.summaries | to_entries | map("\(.key): \(.value)") | join("; ")' <<<"$out")
	hwm+=("$(bench_proc_kb "$AGENTD_PID" VmHWM)")
	bench_stop_agentd
done

sq=$(bench_median "${sq_times[@]}")
ad=$(bench_median "${ad_times[@]}")
body="$BENCH_TMP/pipeline.md"
{
	echo "One agent from $TEXT_BYTES bytes of free text; $split. $BENCH_ROUNDS alternating rounds, medians."
	echo "Target: agentd POST->ready <= 2.00x sqlite3 FTS5 (porter unicode61) build."
	echo
	echo '| what | seconds (median) | each run | ratio vs sqlite3 |'
	echo '|---|---:|---|---:|'
	echo "| sqlite3 CLI: FTS5 (porter unicode61) index over the passages (reference) | $sq | ${sq_times[*]} | 1.00 |"
	echo "| agentd: POST start -> status ready | $ad | ${ad_times[*]} | $(bench_ratio "$ad" "$sq") |"
	echo "| agentd: POST request alone (upload + store, 201) | $(bench_median "${post_times[@]}") | ${post_times[*]} | |"
	echo
	echo '| pipeline stage (GET .../pipeline duration_ms) | ms (median) | each run |'
	echo '|---|---:|---|'
	for s in "${stages[@]}"; do
		# shellcheck disable=SC2086 # space-separated figures
		echo "| $s | $(bench_median ${stage_ms[$s]}) | ${stage_ms[$s]} |"
	done
	echo
	echo "Stage summaries (last run): $summary"
	echo
	echo "agentd peak RSS (VmHWM) per run, MiB: $(for k in "${hwm[@]}"; do printf '%s ' "$(bench_mib "$k")"; done)"
} >"$body"
bench_report "Pipeline: 10 MiB free text to ready" "$body"
