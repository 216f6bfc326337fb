#!/bin/sh
# Runs every suite of a Check test binary in a process of its own, JOBS at a
# time, and prints each suite's output whole when it ends. The e2e suites
# wait on agentd far more than they compute (pipelines, deadlines, restarts),
# so running a few at once shortens `make test` on two cores without
# changing what any test sees: each has its own agentd, port, temp dir and,
# on PostgreSQL, its own throwaway server. Exits 1 when any suite failed,
# naming them.
#
# Usage: tests/common/run_suites.sh BIN JOBS LOGDIR [SUITE...]
# (the named suites only, when given; the environment passes through)
set -u
bin=$1 jobs=$2 logs=$3
shift 3
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs"/*.failed
if [ $# -gt 0 ]; then printf '%s\n' "$@"; else "$bin" --list; fi | xargs -P "$jobs" -I{} sh -c '
  "$1" "$2" >"$3/$2.log" 2>&1 || : >"$3/$2.failed"
  cat "$3/$2.log"' sh "$bin" {} "$logs"
failed=$(cd "$logs" && ls -- *.failed 2>/dev/null | sed 's/\.failed$//')
if [ -n "$failed" ]; then
  echo "suites failed:" $failed >&2
  exit 1
fi
