#!/usr/bin/env bash
# Fails when a forbidden arrow between modules appears: the rules are in
# scripts/layers.rules (one per line; the file says how to write one).
# Prints file:line: what and why for each violation.
# Usage: scripts/check_layers.sh [RULES_FILE [ROOT]]   (defaults: the rules
# next to this script, the repository this script is in)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rules=$(realpath "${1:-$here/layers.rules}")
root=${2:-$here/..}
cd "$root"

# Every top-level folder holding C sources, tests/ and build outputs aside.
source_dirs=""
for d in */; do
  d=${d%/}
  case "$d" in tests | build | bin | node_modules) continue ;; esac
  [ -n "$(find "$d" -type f \( -name '*.c' -o -name '*.h' \) -print -quit)" ] && source_dirs="$source_dirs $d"
done

# Expands a rule's dirs field ("a b", "* -x") into folder names.
expand_dirs() {
  local spec=$1 out="" d
  for d in $spec; do
    case "$d" in
      '*') out="$out $source_dirs" ;;
      -*) ;;
      *)
        if [ ! -d "$d" ]; then
          echo "$rules:$lineno: no folder '$d' in $(pwd)" >&2
          return 1
        fi
        out="$out $d"
        ;;
    esac
  done
  for d in $spec; do
    case "$d" in -*) out=$(printf '%s\n' $out | grep -vxF -- "${d#-}" || true) ;; esac
  done
  printf '%s\n' $out | sort -u
}

# Every #include of the files named on stdin, as "file:line<TAB>target". A
# quoted target starting with ./ or ../ is resolved against the including
# file's folder, as the compiler resolves it: "../server/app.h" in handlers/
# is server/app.h, not a way around the rules.
list_includes() {
  xargs -d '\n' awk '
    function resolve(file, t,    n, i, parts, depth, stack, out) {
      sub(/[^\/]*$/, "", file)
      n = split(file t, parts, "/")
      depth = 0
      for (i = 1; i <= n; i++) {
        if (parts[i] == "" || parts[i] == ".") continue
        if (parts[i] == ".." && depth > 0 && stack[depth] != "..") depth--
        else stack[++depth] = parts[i]
      }
      out = stack[1]
      for (i = 2; i <= depth; i++) out = out "/" stack[i]
      return out
    }
    /^[ \t]*#[ \t]*include[ \t]*[<"]/ {
      t = $0
      quoted = t ~ /^[ \t]*#[ \t]*include[ \t]*"/
      sub(/^[ \t]*#[ \t]*include[ \t]*[<"]/, "", t)
      sub(/[>"].*$/, "", t)
      if (quoted && t ~ /^\.\.?\//) t = resolve(FILENAME, t)
      printf "%s:%d\t%s\n", FILENAME, FNR, t
    }'
}

violations=0
lineno=0
set -f # a dirs field of `*` is a word here, not a glob
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  case "$line" in '' | '#'*) continue ;; esac
  kind=${line%% | *}; rest=${line#* | }
  dirs=${rest%% | *}; rest=${rest#* | }
  pattern=${rest%% | *}; why=${rest#* | }
  if [ "$kind" = "$line" ] || [ "$pattern" = "$why" ] || [ -z "$why" ]; then
    echo "$rules:$lineno: a rule is 'kind | dirs | pattern | why'" >&2
    exit 2
  fi
  # A pattern grep cannot read would match nothing and pass every tree.
  rc=0
  grep -qE -- "$pattern" </dev/null 2>/dev/null || rc=$?
  if [ "$rc" -gt 1 ]; then
    echo "$rules:$lineno: '$pattern' is not an extended regular expression" >&2
    exit 2
  fi
  folders=$(expand_dirs "$dirs") || exit 2
  [ -n "$folders" ] || continue
  set +f
  files=$(find $folders -type f \( -name '*.c' -o -name '*.h' \) | sort)
  set -f
  [ -n "$files" ] || continue
  case "$kind" in
    include)
      # grep -E matches the targets (the dialect the rules file promises);
      # its line numbers pick the includes to report.
      includes=$(printf '%s\n' "$files" | list_includes)
      [ -n "$includes" ] || continue
      found=$(printf '%s\n' "$includes" | cut -f2 | { grep -nE -- "$pattern" || true; } | cut -d: -f1 |
              WHY=$why awk -F '\t' 'NR == FNR { hit[$1] = 1; next }
                FNR in hit { printf "%s: includes %s: %s\n", $1, $2, ENVIRON["WHY"] }' - <(printf '%s\n' "$includes"))
      ;;
    grep)
      # grep -E (GNU: \b and \w work); no match is not an error.
      found=$(printf '%s\n' "$files" | { xargs -d '\n' grep -nHE -- "$pattern" || true; } |
              WHY=$why awk '{
                i = index($0, ":"); j = index(substr($0, i + 1), ":")
                text = substr($0, i + j + 1); sub(/^[ \t]+/, "", text)
                printf "%s: %s: %s\n", substr($0, 1, i + j - 1), ENVIRON["WHY"], text
              }')
      ;;
    *)
      echo "$rules:$lineno: unknown kind '$kind' (include or grep)" >&2
      exit 2
      ;;
  esac
  if [ -n "$found" ]; then
    printf '%s\n' "$found"
    violations=$((violations + $(printf '%s\n' "$found" | wc -l)))
  fi
done <"$rules"

if [ "$violations" -gt 0 ]; then
  echo "check_layers: $violations forbidden arrow(s) (rules: scripts/layers.rules)" >&2
  exit 1
fi
