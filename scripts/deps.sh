#!/usr/bin/env bash
# Installs the Debian packages agentd needs, only those missing.
# Usage: scripts/deps.sh [build|test|bench|lint|fuzz|smoke]   (every level includes build)
set -eu
level=${1:-build}
pkgs="gcc make pkg-config libmicrohttpd-dev libcjson-dev libsqlite3-dev libcurl4-openssl-dev
  libstemmer-dev libutf8proc-dev libssl-dev libpq-dev"
case "$level" in
  # The metrics tests parse /metrics with the Prometheus client's own parser;
  # the browser tests drive Debian's chromium (a font for its screenshots).
  # The PostgreSQL backend's tests start a throwaway server (initdb, pg_ctl).
  test) pkgs="$pkgs check curl sqlite3 python3 python3-prometheus-client chromium fonts-dejavu-core
    postgresql" ;;
  smoke) pkgs="$pkgs curl python3" ;;
  bench) pkgs="$pkgs check curl sqlite3 python3 wrk nginx-light procps jq postgresql" ;;
  lint) pkgs="$pkgs bear cppcheck clang-format" ;;
  # clang-14 does not pull in its sanitizer/libFuzzer runtimes (libclang_rt.*);
  # they are in libclang-rt-14-dev, which bookworm's clang only recommends.
  fuzz) pkgs="$pkgs clang clang-14 libclang-rt-14-dev" ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The contract test (test) and the OpenAPI linter (lint) run on Node.js. A
# Node.js that did not come from Debian (its own nodejs package bundles npm)
# is used as it is: only a machine without npm gets Debian's.
case "$level" in
  test|lint) command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm" ;;
esac
if [ -n "$missing" ]; then
  echo "installing:$missing" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || true
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The npm tools, exactly as package-lock.json pins them; npm ci again only
# when the lockfile changed since the last install.
case "$level" in
  test|lint)
    cd "$(dirname "$0")/.."
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
      echo "installing the npm tools (npm ci)" >&2
      npm ci --no-audit --no-fund --loglevel=error >/dev/null
    fi
    ;;
esac
