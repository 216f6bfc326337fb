#!/bin/sh
# Tests scripts/check_storage_seam.sh on a throw-away tree: a clean tree (SQL
# inside storage/ and tests/, SQL words in comments, English in lower case)
# passes, and each kind of violation planted in handlers/ fails with its
# file:line.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
check="$here/scripts/check_storage_seam.sh"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/handlers" "$tree/storage" "$tree/tests/unit"
cat >"$tree/storage/agents.c" <<'C'
#include <sqlite3.h>
static const char *q = "SELECT id FROM agents WHERE user_id = ?1";
int f(sqlite3 *db) { return storage_begin(db, 0); }
C
echo 'int t(sqlite3 *db) { return sqlite3_exec(db, "DELETE FROM agents", 0, 0, 0) == SQLITE_OK; }' \
    >"$tree/tests/unit/agents.c"
cat >"$tree/handlers/clean.c" <<'C'
/* The storage call below runs a SELECT and may BEGIN IMMEDIATE; sqlite3 is
 * named only in comments,
 * even across lines: COMMIT. */
static const char *msg = "select a model version, then begin";  // ROLLBACK in a comment
static const char *two = "update the " "agent, then "  /* a comment between */
                         "commit to it";
static const char c = '"';
#if 0
Text that is not code: it's not a literal, nor is "this one
#endif
int g(storage_conn *db) { return storage_units_replace(db, 1, 0, 0, "{}", 0, 0); }
C

fail=0
# A check that loops on some input fails here instead of hanging make test.
if ! out=$(timeout 20 "$check" "$tree" 2>&1); then
    echo "FAIL: a clean tree was refused:"; echo "$out"; fail=1
fi

# Each planted line, in a file of its own, must be caught at that file's line 2.
n=0
while IFS= read -r planted; do
    n=$((n + 1))
    printf 'int x;\n%s\n' "$planted" >"$tree/handlers/bad$n.c"
done <<'PLANTS'
#include <sqlite3.h>
#include "storage/internal.h"
static sqlite3_stmt *st;
int rc = SQLITE_BUSY;
PGconn *pg;
static const char *a = "SELECT count(*) FROM agents";
static const char *b = "INSERT INTO jobs (agent_id) VALUES (?1)";
static const char *c = "UPDATE agents SET status = 'ready'";
static const char *d = "DELETE FROM versions WHERE id = ?1";
static const char *e = "BEGIN IMMEDIATE";
static const char *f = "COMMIT";
static const char *g = "PRAGMA user_version";
static const char *h = "CREATE TABLE t (x)";
static const char *i = "scope : v1 AND body MATCH x";
int h1(storage_conn *db) { return storage_begin(db, 0); }
void h2(storage_conn *db) { storage_rollback(db); }
int h3(storage_conn *db) { return storage_commit (db, 0); }
void *h4(storage_conn *db) { return storage_stmt(db, q); }
static const char *j = "select id from agents where user_id = ?1";
static const char *k = "insert into jobs (agent_id) values (?1)";
static const char *l = "delete from versions where id = ?1";
static const char *m = "update agents set status = 'ready'";
static const char *o = "pragma user_version";
static const char *p = "begin immediate";
PLANTS
# SQL split over adjacent literals, as C joins them, is one string: caught
# at the line where it begins, whichever piece holds the keyword.
n=$((n + 1))
printf 'int x;\nstatic const char *s = "UPDATE agents"\n    /* why */ " SET status = 1";\n' >"$tree/handlers/bad$n.c"
n=$((n + 1))
printf 'int x;\nstatic const char *s = "DELETE"\n    " FROM units";\n' >"$tree/handlers/bad$n.c"
n=$((n + 1))
printf 'int x;\nstatic const char *s = "INSERT "\n    "INTO t (a) VALUES (1)";\n' >"$tree/handlers/bad$n.c"
if out=$(timeout 20 "$check" "$tree" 2>&1); then
    echo "FAIL: no planted violation was caught"; fail=1
fi
# One line per planted file, nothing else (a few processes: keep it under a second).
found=$(printf '%s\n' "$out" | sed -n 's|^handlers/bad\([0-9]*\)\.c:2: .*|\1|p' | sort -un | tr '\n' ' ')
want=$(seq 1 "$n" | tr '\n' ' ')
if [ "$found" != "$want" ]; then
    echo "FAIL: planted files 1..$n, caught at line 2: $found"; echo "$out"; fail=1
fi
if [ "$(printf '%s\n' "$out" | wc -l)" -ne "$n" ]; then
    echo "FAIL: findings beyond the planted lines:"; echo "$out"; fail=1
fi

[ "$fail" = 0 ] && echo "check_storage_seam: a clean tree passes, $n planted violations are caught"
exit "$fail"
