#!/usr/bin/env bash
# Tests scripts/check_layers.sh on small trees built here: every rule of
# scripts/layers.rules reports the file:line that breaks it, the arrows the
# layering allows pass, and a `grep` rule and bad rules behave as documented.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
check="$repo/scripts/check_layers.sh"
rules="$repo/scripts/layers.rules"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# A tree where every module includes only what it may.
clean_tree() {
  local t=$1 d
  rm -rf "$t"
  for d in base config api server handlers pipeline model llm storage ctl tests/unit; do
    mkdir -p "$t/$d"
  done
  printf '#include <stddef.h>\n' >"$t/base/buf.h"
  printf '#include "base/buf.h"\n#include "llm/client.h"\n' >"$t/config/config.c"
  printf '#include "base/buf.h"\n#include "config/config.h"\n' >"$t/api/request.h"
  printf '#include <microhttpd.h>\n#include "api/request.h"\n#include "handlers/agents.h"\n' >"$t/server/http.c"
  printf '/* not server/app.h: #include "server/app.h" */\n#include "api/request.h"\n#include "pipeline/pool.h"\n' >"$t/handlers/agents.c"
  printf '#include "model/text.h"\n#include "storage/db.h"\n' >"$t/pipeline/pool.c"
  printf '#include "storage/db.h"\n' >"$t/model/text.c"
  printf '#include <curl/curl.h>\n#include "base/buf.h"\n' >"$t/llm/client.c"
  printf '#include <curl/curl.h>\n#include "base/buf.h"\n#include "ctl/client.h"\n' >"$t/ctl/client.c"
  mkdir -p "$t/storage/sqlite"
  printf '#include <sqlite3.h>\n#include "base/buf.h"\n#include "../db.h"\n#include "./stmt.h"\n' >"$t/storage/sqlite/db.c"
  printf '#include <microhttpd.h>\n#include <curl/curl.h>\n#include "server/router.h"\n#include "storage/internal.h"\n' >"$t/tests/unit/http.c"
}

# add FILE LINE TEXT TARGET: appends TEXT to FILE in the tree as line LINE
# and records the report it must cause.
add() {
  local file=$1 line=$2 text=$3 target=$4
  mkdir -p "$(dirname "$t/$file")"
  touch "$t/$file"
  while [ "$(wc -l <"$t/$file")" -lt $((line - 1)) ]; do printf '\n' >>"$t/$file"; done
  printf '%s\n' "$text" >>"$t/$file"
  [ "$(wc -l <"$t/$file")" -eq "$line" ] || { echo "test setup: $file has no line $line" >&2; exit 2; }
  printf '%s:%s: includes %s\n' "$file" "$line" "$target" >>"$work/expected"
}

t="$work/tree"
clean_tree "$t"
out=$("$check" "$rules" "$t" 2>&1) || fail "the clean tree fails: $out"
[ -z "$out" ] || fail "the clean tree prints: $out"

# One tree breaking every rule in every folder it covers: the checker must
# report exactly these lines, each as file:line, and count them.
: >"$work/expected"
for d in handlers pipeline model llm storage api; do
  add "$d/up.c" 3 '#include "server/app.h"' server/app.h
done
add api/async.h 2 '#include "handlers/agents.h"' handlers/agents.h
n=1
for d in handlers pipeline model llm server api; do
  add storage/jobs.c "$n" "#include \"$d/x.h\"" "$d/x.h"
  n=$((n + 1))
done
add storage/sqlite/conn.c 1 '#include "pipeline/stages.h"' pipeline/stages.h
for d in base config api handlers pipeline model llm storage; do
  add "$d/mhd.c" 2 '#include <microhttpd.h>' microhttpd.h
done
add handlers/agents.c 4 '#  include <microhttpd.h>' microhttpd.h
for d in base config api server handlers pipeline model storage; do
  add "$d/curl.c" 2 '#include <curl/curl.h>' curl/curl.h
done
for d in pipeline model llm; do
  add "$d/http.c" 1 '#include "api/request.h"' api/request.h
  add "$d/http.c" 2 '#include "handlers/agents.h"' handlers/agents.h
done
for d in base config api server handlers pipeline model llm; do
  add "$d/sql.c" 1 '#include <sqlite3.h>' sqlite3.h
  add "$d/sql.c" 2 '#include "storage/internal.h"' storage/internal.h
  add "$d/sql.c" 3 '#include <libpq-fe.h>' libpq-fe.h
done
# agentctl (ctl/) may use libcurl and base/, and nothing of the server.
n=1
for d in server handlers storage pipeline model llm api config; do
  add ctl/up.c "$n" "#include \"$d/x.h\"" "$d/x.h"
  n=$((n + 1))
done
add ctl/mhd.c 1 '#include <microhttpd.h>' microhttpd.h
add ctl/sql.c 1 '#include <sqlite3.h>' sqlite3.h
# A relative include is the path it resolves to, not a way around a rule.
add handlers/rel.c 1 '#include "../server/app.h"' server/app.h
add storage/sqlite/rel.c 2 '#include "../../handlers/./agents.h"' handlers/agents.h
add api/rel.h 1 '#include "../storage/../server/http.h"' server/http.h
# storage/ including server/ breaks two rules, and each says so.
printf '%s\n' "storage/up.c:3: includes server/app.h" "storage/jobs.c:5: includes server/x.h" >>"$work/expected"
rc=0
out=$("$check" "$rules" "$t" 2>"$work/stderr") || rc=$?
[ "$rc" -eq 1 ] || fail "the broken tree gave exit $rc, want 1"
sed 's/: includes \([^:]*\): .*/: includes \1/' <<<"$out" | sort >"$work/got"
sort -o "$work/expected" "$work/expected"
diff -u "$work/expected" "$work/got" >&2 || fail "reports differ from the violations (- missing, + extra)"
want=$(wc -l <"$work/expected")
grep -qF "check_layers: $want forbidden arrow(s)" "$work/stderr" || fail "count: $(cat "$work/stderr")"

# A `grep` rule (the kind a text check such as "no SQLite above storage/" uses).
clean_tree "$t"
printf 'grep | * -storage | \\bsqlite3_[a-z]+ | SQLite stays in storage/\n' >"$work/grep.rules"
printf 'int f(void)\n{\n    return sqlite3_close(db);\n}\n' >"$t/model/bad.c"
printf 'int mysqlite3_x;\n' >"$t/pipeline/ok.c"
rc=0
out=$("$check" "$work/grep.rules" "$t" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "grep rule gave exit $rc: $out"
grep -qxF "model/bad.c:3: SQLite stays in storage/: return sqlite3_close(db);" <<<"$out" ||
  fail "grep rule output: $out"
grep -qF "pipeline/ok.c" <<<"$out" && fail "grep rule matched inside a word: $out"
grep -qF "storage/" <<<"${out%%SQLite*}" && fail "grep rule covered storage/: $out"

# Rules that cannot be read are errors (exit 2), not silent passes: a
# pattern grep -E cannot read is one, of either kind, even where no file has
# a line it would be tried on.
for kind in include grep; do
  printf '%s | handlers | ^server/[a- | an unclosed bracket\n' "$kind" >"$work/regex.rules"
  rc=0
  out=$("$check" "$work/regex.rules" "$t" 2>&1) || rc=$?
  [ "$rc" -eq 2 ] || fail "a $kind rule whose pattern is not a regular expression gave exit $rc, want 2"
  grep -qF "regex.rules:1:" <<<"$out" || fail "the bad pattern's report does not name its line: $out"
done

printf 'include | handlers ^server/ | no separator\n' >"$work/bad.rules"
rc=0
"$check" "$work/bad.rules" "$t" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "a malformed rule gave exit $rc, want 2"
printf 'include | handler | ^server/ | a typo in a folder name\n' >"$work/typo.rules"
rc=0
"$check" "$work/typo.rules" "$t" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "a rule naming a missing folder gave exit $rc, want 2"
printf 'includes | handlers | ^server/ | unknown kind\n' >"$work/kind.rules"
rc=0
"$check" "$work/kind.rules" "$t" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "an unknown kind gave exit $rc, want 2"

if [ "$failures" -gt 0 ]; then
  echo "test_check_layers: $failures failure(s)" >&2
  exit 1
fi
echo "test_check_layers: ok"
