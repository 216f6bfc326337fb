#!/usr/bin/env bash
# Installs the Debian packages agentd needs, only those missing.
# Usage: scripts/deps.sh [build|test|bench|lint|fuzz|smoke]   (every level includes build)
set -eu
level=${1:-build}
pkgs="gcc make pkg-config libmicrohttpd-dev libcjson-dev libsqlite3-dev libcurl4-openssl-dev"
case "$level" in
  test) pkgs="$pkgs check curl sqlite3 python3" ;;
  smoke) pkgs="$pkgs curl python3" ;;
  bench) pkgs="$pkgs check curl sqlite3 python3 wrk nginx-light procps" ;;
  lint) pkgs="$pkgs bear cppcheck clang-format" ;;
  # clang-14 does not pull in its sanitizer/libFuzzer runtimes (libclang_rt.*);
  # they are in libclang-rt-14-dev, which bookworm's clang only recommends.
  fuzz) pkgs="$pkgs clang clang-14 libclang-rt-14-dev" ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || true
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
