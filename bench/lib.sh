# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the scenario scripts
# Shared helpers for bench scenarios. Source it from a scenario script:
#
#   source "$(dirname "$0")/lib.sh"
#   bench_init
#   bench_start_nginx;  bench_wrk nginx "http://127.0.0.1:$NGINX_PORT/health";  bench_stop_nginx
#   bench_start_agentd; bench_wrk agentd "http://127.0.0.1:$AGENTD_PORT/health"; bench_stop_agentd
#
# Everything listens on 127.0.0.1 only, and every wait is bounded.
#
# Environment knobs (all optional):
#   AGENTD_BIN            binary to benchmark (default: <repo>/bin/agentd)
#   AGENTD_BENCH_ARGS     extra flags for agentd, e.g. "--workers 2 --http-threads 4"
#   BENCH_THREADS         wrk threads        (default 2)
#   BENCH_CONNS           wrk connections    (default 64)
#   BENCH_DURATION        wrk duration       (default 10s)
#   BENCH_WARMUP          warm-up run before each measurement, discarded (default 2s; 0 = none)
#   BENCH_REFERENCE_ONLY  1 = measure only the nginx reference (no agentd needed)
#   BENCH_KEEP_TMP        1 = keep the temp dir (logs, configs) even on success

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_RESULTS_DIR="$BENCH_DIR/results"

AGENTD_BIN=${AGENTD_BIN:-$BENCH_ROOT/bin/agentd}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_DURATION=${BENCH_DURATION:-10s}
BENCH_WARMUP=${BENCH_WARMUP:-2s}
BENCH_REFERENCE_ONLY=${BENCH_REFERENCE_ONLY:-0}
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}

BENCH_START_TIMEOUT=10 # seconds to wait for a server to come up
BENCH_STOP_TIMEOUT=15  # seconds to wait for a server to exit after SIGTERM

BENCH_TMP=""
NGINX_PID=""
NGINX_PORT=""
AGENTD_PID=""
AGENTD_PORT=""
AGENTD_LOG=""
AGENTD_SCENARIO_ARGS=()
BENCH_LAUNCHED=()

bench_log() { printf '[bench] %s\n' "$*" >&2; }
bench_die() {
	printf '[bench] error: %s\n' "$*" >&2
	exit 1
}

bench_need() {
	local cmd
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 ||
			bench_die "'$cmd' not found; install it with: scripts/deps.sh bench"
	done
}

# Fails clearly when the agentd binary is missing (unless reference-only).
bench_require_agentd() {
	[ "$BENCH_REFERENCE_ONLY" = 1 ] && return 0
	[ -x "$AGENTD_BIN" ] ||
		bench_die "agentd binary not found or not executable: $AGENTD_BIN (run 'make build' first, or set AGENTD_BIN; BENCH_REFERENCE_ONLY=1 measures nginx alone)"
}

# Creates the temp dir and installs the cleanup trap. Call once per scenario.
bench_init() {
	bench_need wrk nginx timeout
	BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/agentd-bench.XXXXXX")
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

bench_cleanup() {
	local rc=$?
	trap - EXIT
	bench_stop_agentd || true
	bench_stop_replicas || true
	bench_stop_nginx || true
	bench_stop_fake_gemini || true
	bench_stop_pg || true
	if [ -n "$BENCH_TMP" ] && [ -d "$BENCH_TMP" ]; then
		if [ "$rc" -ne 0 ] || [ "$BENCH_KEEP_TMP" = 1 ]; then
			bench_log "logs and configs kept in $BENCH_TMP"
		else
			rm -rf "$BENCH_TMP"
		fi
	fi
	exit "$rc"
}

# bench_stop_pid PID NAME: SIGTERM, wait up to BENCH_STOP_TIMEOUT, then SIGKILL.
bench_stop_pid() {
	local pid=$1 name=$2 i
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < BENCH_STOP_TIMEOUT * 10; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			bench_log "$name (pid $pid) did not stop within ${BENCH_STOP_TIMEOUT}s after SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

# True when something accepts connections on 127.0.0.1:PORT.
bench_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------- nginx

# Starts nginx (2 workers, `return 200 '{"status":"healthy"}'` on every path) on a
# random free loopback port below the kernel's ephemeral range; sets NGINX_PORT/NGINX_PID.
bench_start_nginx() {
	local dir="$BENCH_TMP/nginx" attempt port user_line="" i
	mkdir -p "$dir"
	# As root, the master would switch workers to "nobody", who cannot enter the
	# private temp dir; keep the workers as root for this loopback-only server.
	[ "$(id -u)" -eq 0 ] && user_line="user root root;"
	for attempt in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 12000))
		bench_port_open "$port" && continue
		cat >"$dir/nginx.conf" <<EOF
$user_line
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        location / {
            return 200 '{"status":"healthy"}';
        }
    }
}
EOF
		nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" </dev/null >"$dir/stdout.log" 2>&1 &
		NGINX_PID=$!
		for ((i = 0; i < BENCH_START_TIMEOUT * 10; i++)); do
			kill -0 "$NGINX_PID" 2>/dev/null || break
			if bench_port_open "$port"; then
				NGINX_PORT=$port
				bench_log "nginx reference up on 127.0.0.1:$port (pid $NGINX_PID)"
				return 0
			fi
			sleep 0.1
		done
		if kill -0 "$NGINX_PID" 2>/dev/null; then
			bench_stop_pid "$NGINX_PID" nginx
			NGINX_PID=""
			bench_die "nginx did not listen on port $port within ${BENCH_START_TIMEOUT}s; see $dir/error.log"
		fi
		wait "$NGINX_PID" 2>/dev/null || true
		NGINX_PID=""
		grep -q 'Address already in use' "$dir/error.log" "$dir/stdout.log" 2>/dev/null || {
			cat "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
			bench_die "nginx failed to start; see $dir/error.log"
		}
		bench_log "port $port taken, retrying (attempt $attempt)"
	done
	bench_die "could not find a free port for nginx"
}

bench_stop_nginx() {
	[ -n "$NGINX_PID" ] || return 0
	bench_stop_pid "$NGINX_PID" nginx
	NGINX_PID=""
	NGINX_PORT=""
}

# ---------------------------------------------------------------- agentd

# Starts agentd on an ephemeral port with a fresh data dir; its stderr (JSON log,
# one access-log line per request) goes to $AGENTD_LOG. Sets AGENTD_PORT/AGENTD_PID.
# A scenario may set the array AGENTD_SCENARIO_ARGS for flags it needs; they go
# after AGENTD_BENCH_ARGS.
bench_start_agentd() {
	AGENTD_LOG="$BENCH_TMP/agentd.log"
	bench_launch_agentd "$BENCH_TMP/agentd-data" "$AGENTD_LOG" "$BENCH_TMP/agentd.stdout"
	AGENTD_PID=$LAUNCH_PID
	AGENTD_PORT=$LAUNCH_PORT
}

# bench_launch_agentd DATA_DIR LOG STDOUT: starts one agentd (AGENTD_BENCH_ARGS,
# then AGENTD_SCENARIO_ARGS) on an ephemeral port and waits until it listens;
# sets LAUNCH_PID/LAUNCH_PORT. Every pid started is also kept in
# BENCH_LAUNCHED, which the cleanup stops.
bench_launch_agentd() {
	local data=$1 log=$2 stdout=$3 line i
	bench_require_agentd
	mkdir -p "$data"
	: >"$log"
	# shellcheck disable=SC2086 # AGENTD_BENCH_ARGS is a list of flags
	"$AGENTD_BIN" --port 0 --bind 127.0.0.1 --data-dir "$data" ${AGENTD_BENCH_ARGS:-} "${AGENTD_SCENARIO_ARGS[@]}" \
		</dev/null >"$stdout" 2>"$log" &
	LAUNCH_PID=$!
	LAUNCH_PORT=""
	BENCH_LAUNCHED+=("$LAUNCH_PID")
	for ((i = 0; i < BENCH_START_TIMEOUT * 10; i++)); do
		if ! kill -0 "$LAUNCH_PID" 2>/dev/null; then
			wait "$LAUNCH_PID" 2>/dev/null || true
			tail -n 20 "$log" >&2 || true
			bench_die "agentd exited during startup (log: $log)"
		fi
		line=$(grep -m1 '"msg":"listening"' "$log" 2>/dev/null || true)
		if [ -z "$line" ]; then
			# With --log-level warn there is no "listening" line: ask the kernel
			# which loopback port this pid listens on.
			LAUNCH_PORT=$(bench_listen_port "$LAUNCH_PID")
			if [ -n "$LAUNCH_PORT" ]; then
				bench_log "agentd up on 127.0.0.1:$LAUNCH_PORT (pid $LAUNCH_PID, log $log; port from ss)"
				return 0
			fi
		fi
		if [ -n "$line" ]; then
			LAUNCH_PORT=$(sed -n 's/.*"port":[[:space:]]*\([0-9][0-9]*\).*/\1/p' <<<"$line")
			if [ -z "$LAUNCH_PORT" ] || [ "$LAUNCH_PORT" -eq 0 ]; then
				bench_die "no port in agentd's listening line: $line"
			fi
			bench_log "agentd up on 127.0.0.1:$LAUNCH_PORT (pid $LAUNCH_PID, log $log)"
			return 0
		fi
		sleep 0.1
	done
	tail -n 20 "$log" >&2 || true
	bench_die "agentd logged no \"listening\" line within ${BENCH_START_TIMEOUT}s (log: $log)"
}

# bench_listen_port PID: the TCP port PID listens on (empty when none yet).
bench_listen_port() {
	ss -Hltnp 2>/dev/null | awk -v p="pid=$1," 'index($0, p) { n = split($4, a, ":"); print a[n]; exit }'
}

bench_stop_agentd() {
	[ -n "$AGENTD_PID" ] || return 0
	bench_stop_pid "$AGENTD_PID" agentd
	AGENTD_PID=""
	AGENTD_PORT=""
}

# ---------------------------------------------------------------- wrk

# Converts a wrk duration ("812.00us", "1.23ms", "2.00s", "1.00m") to milliseconds.
bench_to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		else if (u == "h") n *= 3600000; else if (u != "ms") { print "nan"; exit }
		printf "%.3f", n }'
}

# bench_wrk NAME URL [extra wrk args...]
# Runs an optional warm-up, then `wrk -t -c -d --latency`, keeps the raw output in
# $BENCH_TMP/NAME.wrk, and sets: WRK_RPS, WRK_P50, WRK_P90, WRK_P99 (ms),
# WRK_REQUESTS, WRK_NON2XX, WRK_SOCKET_ERRORS (sum of connect/read/write/timeout).
bench_wrk() {
	local name=$1 url=$2 out secs
	shift 2
	out="$BENCH_TMP/$name.wrk"
	# Bound wrk's wall time: its duration plus a generous margin.
	secs=$(bench_seconds "$BENCH_DURATION")
	if [ "$BENCH_WARMUP" != 0 ] && [ -n "$BENCH_WARMUP" ]; then
		timeout "$(($(bench_seconds "$BENCH_WARMUP") + 30))" \
			wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"$BENCH_WARMUP" --timeout 5s "$@" "$url" \
			>"$BENCH_TMP/$name.warmup.wrk" 2>&1 || bench_die "wrk warm-up against $url failed: $(cat "$BENCH_TMP/$name.warmup.wrk")"
	fi
	bench_log "wrk -t$BENCH_THREADS -c$BENCH_CONNS -d$BENCH_DURATION --latency $url"
	timeout "$((secs + 30))" \
		wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"$BENCH_DURATION" --timeout 5s --latency "$@" "$url" \
		>"$out" 2>&1 || bench_die "wrk against $url failed: $(cat "$out")"
	WRK_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	WRK_P50=$(bench_to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
	WRK_P90=$(bench_to_ms "$(awk '$1 == "90%" {print $2}' "$out")")
	WRK_P99=$(bench_to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
	WRK_REQUESTS=$(awk '/ requests in / {print $1}' "$out")
	WRK_NON2XX=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$out")
	WRK_NON2XX=${WRK_NON2XX:-0}
	WRK_SOCKET_ERRORS=$(awk '/Socket errors:/ {
		s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i; print s }' "$out")
	WRK_SOCKET_ERRORS=${WRK_SOCKET_ERRORS:-0}
	if [ -z "$WRK_RPS" ] || [ -z "$WRK_REQUESTS" ]; then
		bench_die "could not parse wrk output: $out"
	fi
	if [ "$WRK_NON2XX" != 0 ] || [ "$WRK_SOCKET_ERRORS" != 0 ]; then
		bench_log "warning: $name had $WRK_NON2XX non-2xx responses and $WRK_SOCKET_ERRORS socket errors"
	fi
}

# "10s" / "2m" / "500ms" / "10" -> whole seconds (rounded up), for timeouts.
bench_seconds() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "ms") n /= 1000; else if (u == "m") n *= 60; else if (u == "h") n *= 3600
		printf "%d", (n == int(n)) ? n : int(n) + 1 }'
}

# ---------------------------------------------------------------- reporting

# bench_ratio A B -> A/B with 2 decimals ("n/a" when B is 0 or empty).
bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

# Header lines for a dated results section: host, tools, wrk parameters.
bench_env_lines() {
	local ver="n/a"
	if [ "$BENCH_REFERENCE_ONLY" != 1 ] && [ -x "$AGENTD_BIN" ]; then
		ver=$("$AGENTD_BIN" --version 2>&1 | head -n1 || true)
	fi
	printf -- '- host: %s, %s CPUs, %s\n' "$(uname -srm)" "$(nproc)" \
		"$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown cpu)"
	printf -- '- agentd: %s (args: %s)\n' "$ver" "${AGENTD_BENCH_ARGS:-defaults}"
	printf -- '- reference: %s, 2 workers, access_log off\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
	printf -- '- load: wrk -t%s -c%s -d%s --latency (warm-up %s), loopback\n' \
		"$BENCH_THREADS" "$BENCH_CONNS" "$BENCH_DURATION" "$BENCH_WARMUP"
}

# bench_report TITLE FILE: prints FILE (a markdown body) and appends it as a
# dated section to bench/results/<UTC date>.md.
bench_report() {
	local title=$1 body=$2 results
	mkdir -p "$BENCH_RESULTS_DIR"
	results="$BENCH_RESULTS_DIR/$(date -u +%F).md"
	{
		printf '\n## %s — %s\n\n' "$title" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		bench_env_lines
		printf '\n'
		cat "$body"
	} | tee -a "$results"
	bench_log "appended to ${results#"$BENCH_ROOT"/}"
}

# ---------------------------------------------------------------- extras

BENCH_DRIVER="$BENCH_DIR/driver.py"
FAKE_GEMINI_BIN=${FAKE_GEMINI_BIN:-$BENCH_ROOT/build/release/fake_gemini}
FAKE_GEMINI_PID=""
FAKE_GEMINI_PORT=""

# bench_driver ARGS...: runs the Python load driver (bench/driver.py).
bench_driver() { python3 "$BENCH_DRIVER" "$@"; }

# bench_store_status_agents: on the running agentd, stores $STATUS_COUNT small
# text agents named $STATUS_PREFIX<n> (what bench/wrk/status_rotate.lua asks
# for) and waits until every one is ready; sets `created` and `ready` to the
# driver's reports, which the scenarios print under their tables.
bench_store_status_agents() {
	created=$(bench_driver create --port "$AGENTD_PORT" --count "$STATUS_COUNT" --prefix "$STATUS_PREFIX" \
		--bytes 300 --concurrency 8)
	ready=$(bench_driver wait --port "$AGENTD_PORT" --count "$STATUS_COUNT" --timeout 100)
	bench_log "created: $created; ready: $ready"
}

# bench_median N...: the median of the numbers given (mean of the middle two when even).
bench_median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
		if (NR == 0) { print "n/a"; exit }
		if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# bench_proc_kb PID FIELD: a /proc/PID/status field in kB (VmRSS, VmHWM, ...).
bench_proc_kb() {
	awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status" 2>/dev/null
}

# bench_mib KB: kB -> MiB with one decimal.
bench_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# bench_wipe_agentd: stops agentd and wipes its data dir (the next start is fresh).
bench_wipe_agentd() {
	bench_stop_agentd
	rm -rf "$BENCH_TMP/agentd-data"
}

# Starts build/release/fake_gemini on an ephemeral loopback port with
# --delay-ms DELAY; sets FAKE_GEMINI_PORT/FAKE_GEMINI_PID.
bench_start_fake_gemini() {
	local delay=$1 out="$BENCH_TMP/fake_gemini.out" i
	[ -x "$FAKE_GEMINI_BIN" ] ||
		bench_die "fake Gemini server not found: $FAKE_GEMINI_BIN (run 'make build/release/fake_gemini')"
	: >"$out"
	"$FAKE_GEMINI_BIN" --port 0 --delay-ms "$delay" </dev/null >"$out" 2>"$BENCH_TMP/fake_gemini.err" &
	FAKE_GEMINI_PID=$!
	for ((i = 0; i < BENCH_START_TIMEOUT * 10; i++)); do
		FAKE_GEMINI_PORT=$(head -n1 "$out")
		if [ -n "$FAKE_GEMINI_PORT" ]; then
			bench_log "fake Gemini up on 127.0.0.1:$FAKE_GEMINI_PORT (pid $FAKE_GEMINI_PID, delay ${delay}ms)"
			return 0
		fi
		kill -0 "$FAKE_GEMINI_PID" 2>/dev/null || bench_die "fake_gemini exited: $(cat "$BENCH_TMP/fake_gemini.err")"
		sleep 0.1
	done
	bench_die "fake_gemini printed no port within ${BENCH_START_TIMEOUT}s"
}

bench_stop_fake_gemini() {
	[ -n "$FAKE_GEMINI_PID" ] || return 0
	bench_stop_pid "$FAKE_GEMINI_PID" fake_gemini
	FAKE_GEMINI_PID=""
	FAKE_GEMINI_PORT=""
}

# Per-configuration wrk figures across rounds, keyed by a name.
declare -A BENCH_RPS=() BENCH_P50=() BENCH_P99=() BENCH_ERRS=()

# bench_collect NAME: records the last bench_wrk figures under NAME.
bench_collect() {
	BENCH_RPS[$1]+="$WRK_RPS "
	BENCH_P50[$1]+="$WRK_P50 "
	BENCH_P99[$1]+="$WRK_P99 "
	BENCH_ERRS[$1]=$((${BENCH_ERRS[$1]:-0} + WRK_NON2XX + WRK_SOCKET_ERRORS))
}

# bench_med ARRAY NAME: the median of the figures recorded under NAME in ARRAY
# (BENCH_RPS, BENCH_P50, BENCH_P99).
bench_med() {
	local -n arr=$1
	# shellcheck disable=SC2086 # the figures are a space-separated list
	bench_median ${arr[$2]}
}

# bench_row LABEL NAME REF_NAME: a markdown row: median req/s, p50, p99, errors,
# ratio of the median req/s to REF_NAME's, and every run's req/s.
bench_row() {
	local label=$1 name=$2 ref=$3 rps
	rps=$(bench_med BENCH_RPS "$name")
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$rps" \
		"$(bench_med BENCH_P50 "$name")" "$(bench_med BENCH_P99 "$name")" "${BENCH_ERRS[$name]:-0}" \
		"$( [ -n "$ref" ] && bench_ratio "$rps" "$(bench_med BENCH_RPS "$ref")" || echo -)" \
		"$(echo "${BENCH_RPS[$name]}" | xargs | sed 's/ /, /g')"
}

BENCH_ROW_HEADER='| server | req/s (median) | p50 ms | p99 ms | non-2xx + socket errors (all runs) | ratio vs reference | req/s of each run |
|---|---:|---:|---:|---:|---:|---|'

# ---------------------------------------------------------------- PostgreSQL and replicas

PGSERVER_BIN=${PGSERVER_BIN:-$BENCH_ROOT/build/release/pgserver}
PG_DIR=""
PG_PORT=""
REPLICA_PIDS=()
REPLICA_PORTS=()

# Starts a throwaway PostgreSQL server (build/release/pgserver: initdb into a
# temp dir, unix socket only, fsync off, as the tests do); sets PG_DIR/PG_PORT.
bench_start_pg() {
	local out
	[ -x "$PGSERVER_BIN" ] ||
		bench_die "pgserver not found: $PGSERVER_BIN (run 'make build/release/pgserver'; PostgreSQL from scripts/deps.sh test)"
	out=$("$PGSERVER_BIN" start) || bench_die "could not start PostgreSQL (pgserver start)"
	read -r PG_DIR PG_PORT <<<"$out"
	bench_log "PostgreSQL up in $PG_DIR (socket port $PG_PORT)"
}

# bench_pg_db NAME: creates database NAME on the server; prints its --database-url.
bench_pg_db() {
	"$PGSERVER_BIN" createdb "$PG_DIR" "$PG_PORT" "$1" || bench_die "CREATE DATABASE $1 failed"
}

bench_stop_pg() {
	[ -n "$PG_DIR" ] || return 0
	"$PGSERVER_BIN" destroy "$PG_DIR" "$PG_PORT" || true
	PG_DIR=""
	PG_PORT=""
}

# bench_pg_cpu: CPU seconds (user+sys) used so far by the PostgreSQL server
# (the postmaster and its backends), or 0 when none runs.
bench_pg_cpu() {
	local pm
	[ -n "$PG_DIR" ] || { echo 0; return 0; }
	pm=$(head -n1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
	[ -n "$pm" ] || { echo 0; return 0; }
	{ cat "/proc/$pm/stat"; for c in $(pgrep -P "$pm"); do cat "/proc/$c/stat"; done; } 2>/dev/null |
		awk '{ s += $14 + $15 } END { printf "%.2f", s / 100 }'
}

# bench_cpu PID...: CPU seconds (user+sys) used so far by the processes given.
bench_cpu() {
	local p
	for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done | awk '{ s += $14 + $15 } END { printf "%.2f", s / 100 }'
}

# bench_start_replicas N URL: N agentd processes on the database URL, each with
# a data dir, log and port of its own (AGENTD_SCENARIO_ARGS apply to each);
# sets REPLICA_PIDS and REPLICA_PORTS. An empty URL starts them on SQLite
# (only sensible with N = 1: one process per data dir).
bench_start_replicas() {
	local n=$1 url=$2 k saved=("${AGENTD_SCENARIO_ARGS[@]}")
	REPLICA_PIDS=()
	REPLICA_PORTS=()
	for ((k = 0; k < n; k++)); do
		AGENTD_SCENARIO_ARGS=("${saved[@]}")
		[ -n "$url" ] && AGENTD_SCENARIO_ARGS+=(--database-url "$url")
		bench_launch_agentd "$BENCH_TMP/replica-$k" "$BENCH_TMP/replica-$k.log" "$BENCH_TMP/replica-$k.stdout"
		REPLICA_PIDS+=("$LAUNCH_PID")
		REPLICA_PORTS+=("$LAUNCH_PORT")
	done
	AGENTD_SCENARIO_ARGS=("${saved[@]}")
}

# Stops every agentd bench_launch_agentd started and wipes the replicas' dirs.
bench_stop_replicas() {
	local p
	for p in "${BENCH_LAUNCHED[@]}"; do bench_stop_pid "$p" agentd; done
	BENCH_LAUNCHED=()
	REPLICA_PIDS=()
	REPLICA_PORTS=()
	AGENTD_PID=""
	AGENTD_PORT=""
	rm -rf "$BENCH_TMP"/replica-*
}

# bench_wrk_spread NAME PATH_URL_SUFFIX [extra wrk args...]: one wrk per
# replica in REPLICA_PORTS, all at once, the threads and connections shared
# out (BENCH_THREADS and BENCH_CONNS in all); sets WRK_RPS to the sum of
# their req/s, WRK_P50/WRK_P99 to the highest of theirs, WRK_NON2XX and
# WRK_SOCKET_ERRORS to the sums.
bench_wrk_spread() {
	local name=$1 suffix=$2 n=${#REPLICA_PORTS[@]} k t c secs pids=() out
	shift 2
	t=$(((BENCH_THREADS + n - 1) / n))
	c=$((BENCH_CONNS / n))
	((c >= t)) || c=$t
	secs=$(bench_seconds "$BENCH_DURATION")
	if [ "$BENCH_WARMUP" != 0 ] && [ -n "$BENCH_WARMUP" ]; then
		for ((k = 0; k < n; k++)); do
			timeout "$(($(bench_seconds "$BENCH_WARMUP") + 30))" wrk -t"$t" -c"$c" -d"$BENCH_WARMUP" --timeout 5s "$@" \
				"http://127.0.0.1:${REPLICA_PORTS[$k]}$suffix" >"$BENCH_TMP/$name.$k.warmup.wrk" 2>&1 &
			pids+=($!)
		done
		for k in "${pids[@]}"; do wait "$k" || bench_die "wrk warm-up ($name) failed"; done
		pids=()
	fi
	bench_log "$n x wrk -t$t -c$c -d$BENCH_DURATION --latency (one per replica)"
	for ((k = 0; k < n; k++)); do
		timeout "$((secs + 30))" wrk -t"$t" -c"$c" -d"$BENCH_DURATION" --timeout 5s --latency "$@" \
			"http://127.0.0.1:${REPLICA_PORTS[$k]}$suffix" >"$BENCH_TMP/$name.$k.wrk" 2>&1 &
		pids+=($!)
	done
	for k in "${pids[@]}"; do wait "$k" || bench_die "wrk ($name) failed: $(cat "$BENCH_TMP/$name".*.wrk)"; done
	WRK_RPS=0 WRK_P50=0 WRK_P99=0 WRK_NON2XX=0 WRK_SOCKET_ERRORS=0
	for ((k = 0; k < n; k++)); do
		out="$BENCH_TMP/$name.$k.wrk"
		WRK_RPS=$(awk -v s="$WRK_RPS" '/^Requests\/sec:/ { printf "%.2f", s + $2 }' "$out")
		WRK_P50=$(awk -v a="$WRK_P50" -v b="$(bench_to_ms "$(awk '$1 == "50%" {print $2}' "$out")")" \
			'BEGIN { print (b > a) ? b : a }')
		WRK_P99=$(awk -v a="$WRK_P99" -v b="$(bench_to_ms "$(awk '$1 == "99%" {print $2}' "$out")")" \
			'BEGIN { print (b > a) ? b : a }')
		WRK_NON2XX=$((WRK_NON2XX + $(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$out" | grep . || echo 0)))
		WRK_SOCKET_ERRORS=$((WRK_SOCKET_ERRORS + $(awk '/Socket errors:/ {
			s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i; print s }' "$out" | grep . || echo 0)))
	done
	[ -n "$WRK_RPS" ] || bench_die "could not parse wrk output: $BENCH_TMP/$name.*.wrk"
	if [ "$WRK_NON2XX" != 0 ] || [ "$WRK_SOCKET_ERRORS" != 0 ]; then
		bench_log "warning: $name had $WRK_NON2XX non-2xx responses and $WRK_SOCKET_ERRORS socket errors"
	fi
}

# bench_backend_figures LABEL: on the replicas running (REPLICA_PORTS, one
# or more, empty database), the three figures the backend and replica
# scenarios compare, the load spread over every replica:
#   FIG_AGENTS_S   agents trained per second: $PGB_AGENTS agents of
#                  $PGB_TEXT_BYTES bytes, first POST -> all ready
#   FIG_INFER_P50  inference p50 (ms), local answerer, python_expert dataset,
#                  $PGB_INFER_CONC concurrent clients
#   FIG_INFER_RPS  inference req/s in the same run
#   FIG_STATUS_RPS GET status req/s (wrk rotating over those agents)
#   FIG_CPU        "agentd X s, postgres Y s": CPU over the three runs
# Logs each driver report under LABEL.
bench_backend_figures() {
	local label=$1 ports out a0 p0
	ports=$(IFS=,; echo "${REPLICA_PORTS[*]}")
	a0=$(bench_cpu "${REPLICA_PIDS[@]}")
	p0=$(bench_pg_cpu)
	out=$(bench_driver create --port "$ports" --count "$PGB_AGENTS" --prefix pgb- --bytes "$PGB_TEXT_BYTES" \
		--concurrency "$PGB_CREATE_CONC" --wait-ready --timeout 600) || bench_die "$label: create: $out"
	bench_log "$label: create: $out"
	FIG_AGENTS_S=$(jq -r .trained_per_s <<<"$out")
	out=$(bench_driver create --port "${REPLICA_PORTS[0]}" --count 1 --prefix python_expert- \
		--dataset-file "$BENCH_ROOT/tests/data/python_expert_dataset.json" --wait-ready) ||
		bench_die "$label: dataset agent: $out"
	out=$(bench_driver infer --port "$ports" --agent python_expert-00000 --prompts python \
		--requests "$PGB_INFER_REQUESTS" --warmup "$((PGB_INFER_REQUESTS / 10))" --concurrency "$PGB_INFER_CONC") ||
		bench_die "$label: inference: $out"
	bench_log "$label: inference: $out"
	FIG_INFER_P50=$(jq -r .p50_ms <<<"$out")
	FIG_INFER_RPS=$(jq -r .per_s <<<"$out")
	STATUS_PREFIX=pgb- STATUS_COUNT=$PGB_AGENTS bench_wrk_spread "$label-status" "" -s "$BENCH_DIR/wrk/status_rotate.lua"
	FIG_STATUS_RPS=$WRK_RPS
	FIG_CPU="agentd $(awk -v a="$a0" -v b="$(bench_cpu "${REPLICA_PIDS[@]}")" 'BEGIN { printf "%.1f", b - a }') s, postgres $(awk -v a="$p0" -v b="$(bench_pg_cpu)" 'BEGIN { printf "%.1f", b - a }') s"
	bench_log "$label: $FIG_AGENTS_S agents/s, inference p50 $FIG_INFER_P50 ms ($FIG_INFER_RPS req/s), status $FIG_STATUS_RPS req/s, CPU $FIG_CPU"
}

# Sizes for bench_backend_figures (the scenarios pg_vs_sqlite and replicas).
PGB_AGENTS=${PGB_AGENTS:-500}
PGB_TEXT_BYTES=${PGB_TEXT_BYTES:-10240}
PGB_CREATE_CONC=${PGB_CREATE_CONC:-32}
PGB_INFER_REQUESTS=${PGB_INFER_REQUESTS:-4000}
PGB_INFER_CONC=${PGB_INFER_CONC:-8}
