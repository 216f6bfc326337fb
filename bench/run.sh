#!/usr/bin/env bash
# Runs the benchmark scenarios: every bench/*.sh except lib.sh and run.sh, in
# name order, or only those named on the command line.
#
#   bench/run.sh                 all scenarios
#   bench/run.sh health          bench/health.sh only
#   BENCH_ROUNDS=5 bench/run.sh metrics   metrics on vs off (the same build)
#   BENCH_DURATION=30s bench/run.sh health
#   BENCH_REFERENCE_ONLY=1 bench/run.sh health    nginx reference only, no agentd
#
# See bench/lib.sh for the knobs. Results go to stdout and are appended to
# bench/results/<date>.md (gitignored); BENCHMARKS.md is curated from them.
set -euo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$dir/.." && pwd)
agentd=${AGENTD_BIN:-$root/bin/agentd}

if [ "${BENCH_REFERENCE_ONLY:-0}" != 1 ] && [ ! -x "$agentd" ]; then
	echo "bench: $agentd not found or not executable; run 'make build' first (or 'make bench')" >&2
	exit 1
fi

available=()
for f in "$dir"/*.sh; do
	case "$(basename "$f")" in
	lib.sh | run.sh) ;;
	*) available+=("$(basename "$f" .sh)") ;;
	esac
done

if [ "$#" -eq 0 ]; then
	selected=("${available[@]}")
else
	selected=()
	for arg in "$@"; do
		name=$(basename "$arg" .sh)
		if [ "$name" = lib ] || [ "$name" = run ] || [ ! -f "$dir/$name.sh" ]; then
			echo "bench: unknown scenario '$arg' (available: ${available[*]})" >&2
			exit 2
		fi
		selected+=("$name")
	done
fi

failed=()
for name in "${selected[@]}"; do
	echo "==> $name" >&2
	if ! bash "$dir/$name.sh"; then
		echo "bench: scenario '$name' failed" >&2
		failed+=("$name")
	fi
done

if [ "${#failed[@]}" -gt 0 ]; then
	echo "bench: failed scenarios: ${failed[*]}" >&2
	exit 1
fi
