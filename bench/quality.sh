#!/usr/bin/env bash
# Scenario: retrieval quality on questions worded unlike the material (issue 10).
# bench/quality.py starts agentd with no Gemini key (local answerer), one server
# per dataset, creates ml_expert, python_expert and pt_expert from tests/data/,
# and asks every original prompt and every paraphrase of tests/data/paraphrases/;
# hit@1 = the answer is the expected pair's answer. No load, no wrk: a few
# hundred sequential requests. QUALITY_ARGS passes flags to quality.py (e.g.
# "--language-field" once the server takes `language`).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

bench_need python3
bench_require_agentd
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/agentd-bench.XXXXXX")
trap 'rm -rf "$BENCH_TMP"' EXIT

body="$BENCH_TMP/quality.md"
# shellcheck disable=SC2086 # QUALITY_ARGS is a list of flags
AGENTD_BIN="$AGENTD_BIN" python3 "$BENCH_DIR/quality.py" --misses 5 ${QUALITY_ARGS:-} >"$body"
mkdir -p "$BENCH_RESULTS_DIR"
results="$BENCH_RESULTS_DIR/$(date -u +%F).md"
{
	printf '\n## Retrieval quality on paraphrases — %s\n\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf -- '- agentd: %s, local backend, args: %s\n\n' \
		"$("$AGENTD_BIN" --version 2>&1 | head -n1 || true)" "${QUALITY_ARGS:-defaults}"
	cat "$body"
} | tee -a "$results"
bench_log "appended to ${results#"$BENCH_ROOT"/}"
