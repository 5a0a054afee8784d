#!/bin/sh
# The job queue's throughput: `bookd serve` with 5 job workers gets N
# test.noop jobs as fast as a client can queue them; the figures are the
# submit rate, the completion throughput (claim + run + complete, per
# second) and the total time. See bench/README.md. POSIX sh; `make bench`
# runs it after bench/run.sh, or run it alone: `sh bench/jobs.sh`.
#
# Environment:
#   BENCH_JOBS              jobs to queue (default 2000)
#   BENCH_JOBS_CONCURRENCY  concurrent submitting clients (default 8)
#   BENCH_JOBS_TIMEOUT      seconds to wait, after the last submit, for the
#                           queue to empty (default 300)
#   BENCH_PYTHON            Python 3 for bench/jobs.py (default python3)
#   BOOKD_BIN               bookd binary (default build/bookd)
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_NAME="bench: jobs"
. "$ROOT/bench/lib.sh"

NJOBS=${BENCH_JOBS:-2000}
CONC=${BENCH_JOBS_CONCURRENCY:-8}
TIMEOUT=${BENCH_JOBS_TIMEOUT:-300}
PYTHON=${BENCH_PYTHON:-python3}
BIN=${BOOKD_BIN:-build/bookd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
OUT=$ROOT/bench/out
WORKERS=5

die() {
	echo "bench: jobs: $*" >&2
	exit 1
}

for v in "$NJOBS" "$CONC" "$TIMEOUT"; do
	case $v in '' | *[!0-9]*) die "BENCH_JOBS, BENCH_JOBS_CONCURRENCY and BENCH_JOBS_TIMEOUT must be whole numbers" ;; esac
done
[ "$NJOBS" -ge 1 ] || die "BENCH_JOBS must be at least 1"
[ "$CONC" -ge 1 ] || die "BENCH_JOBS_CONCURRENCY must be at least 1"
for tool in curl od "$PYTHON"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run \`make deps\`)"
done
[ -x "$BIN" ] || die "$BIN not found (run \`make build/bookd\`)"

# ---- cleanup: nothing may outlive this script -------------------------------

tmp=""
BOOKD_PID=""
CLIENT_PID=""


cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	stop_pid "$CLIENT_PID" TERM 2
	stop_pid "$BOOKD_PID" TERM 10
	[ -n "$tmp" ] && rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bookd-bench-jobs.XXXXXX")
mkdir -p "$OUT"
rm -f "$OUT/jobs.json" "$OUT/jobs-bookd.log" # no stale figures after a failed run

# A fresh master key for this run only, handed over in the environment; a
# JWT secret too, so that bookd has nothing to warn about at startup.
BENCH_API_KEY=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
JWT_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
[ ${#BENCH_API_KEY} -eq 48 ] || die "cannot read /dev/urandom"
[ ${#JWT_SECRET} -eq 48 ] || die "cannot read /dev/urandom"
export BENCH_API_KEY

# ---- a free loopback port (as in bench/run.sh) -------------------------------
#
# Below the kernel's ephemeral range so client sockets cannot take it; "free"
# = nothing answers on 127.0.0.1 (curl exit 7). A lost race shows up as a
# server that does not start, and is retried with the next port.

seed=$((($$ + 2500) % 5000))


# ---- bookd ---------------------------------------------------------------------
#
# It runs in $tmp so that a .env in the repo cannot change what is measured.

start_bookd() { # data_dir workers(0|1) log: sets BOOKD_PID BOOKD
	tries=0
	while :; do
		next_port
		BPORT=$PORT
		(cd "$tmp" && exec env BOOKD_DATA_DIR="$1" DATABASE_URL= BOOKD_HOST=127.0.0.1 \
			BOOKD_PORT="$BPORT" BOOKD_LOG_LEVEL=warn BOOKD_SHUTDOWN_TIMEOUT=5 \
			BOOKD_API_KEY="$BENCH_API_KEY" BOOKD_JWT_SECRET="$JWT_SECRET" BOOKD_TEST_JOBS=1 BOOKD_WORKERS="$2" \
			BOOKD_WORKER_MAX_JOBS=$WORKERS "$BIN" serve) >>"$3" 2>&1 &
		BOOKD_PID=$!
		wait_http "http://127.0.0.1:$BPORT/health/live" "$BOOKD_PID" 10 && break
		stop_pid "$BOOKD_PID" TERM 5
		BOOKD_PID=""
		tries=$((tries + 1))
		if [ "$tries" -ge 3 ]; then
			cat "$3" >&2
			die "bookd did not become live on 127.0.0.1 (3 tries)"
		fi
	done
	BOOKD=http://127.0.0.1:$BPORT
}

problems=""
stop_bookd() { # during: SIGTERM; a crash or an unclean exit makes the run invalid
	if ! kill -0 "$BOOKD_PID" 2>/dev/null; then
		st=0
		wait "$BOOKD_PID" || st=$?
		BOOKD_PID=""
		echo "bench: jobs: bookd DIED during $1: exit status $st; last lines of its log:" >&2
		tail -n 20 "$tmp/bookd.log" >&2
		problems="$problems; bookd died during $1 (log: bench/out/jobs-bookd.log)"
		return 0
	fi
	kill -TERM "$BOOKD_PID" 2>/dev/null || true
	st=0
	wait "$BOOKD_PID" || st=$?
	BOOKD_PID=""
	[ "$st" -eq 0 ] || problems="$problems; bookd exited $st on SIGTERM after $1"
}

client() { # out_json mode args...: bench/jobs.py, stoppable by the traps
	cout=$1
	shift
	"$PYTHON" bench/jobs.py "$@" "$cout" &
	CLIENT_PID=$!
	crc=0
	wait "$CLIENT_PID" || crc=$?
	CLIENT_PID=""
	[ "$crc" -eq 0 ] || problems="$problems; bench/jobs.py $1 reported problems (exit $crc)"
	[ -s "$cout" ] || problems="$problems; bench/jobs.py $1 wrote no result"
}

echo "bookd jobs bench: $NJOBS test.noop jobs per phase from $CONC concurrent clients (bench/jobs.py), $(nproc 2>/dev/null || echo ?) cores shared by server and client"
echo "  bookd serve: BOOKD_WORKER_MAX_JOBS=$WORKERS, BOOKD_TEST_JOBS=1, BOOKD_LOG_LEVEL=warn, SQLite in a fresh data directory"
: >"$tmp/bookd.log"

# ---- 1. live: jobs queued while the 5 workers run -------------------------------

echo "live: queued while $WORKERS workers run, until every job has completed"
mkdir -p "$tmp/live"
chmod 700 "$tmp/live"
start_bookd "$tmp/live" 1 "$tmp/bookd.log"
startup_log_lines=$(grep -c . "$tmp/bookd.log" || true)
client "$tmp/live.json" live "$BOOKD" "$NJOBS" "$CONC" "$TIMEOUT"
stop_bookd "the live phase"

# ---- 2. backlog: N jobs already queued, then the 5 workers start --------------
#
# Queued by a bookd that runs no jobs (BOOKD_WORKERS=0); then bookd restarts
# on the same data directory with its workers, which find the whole backlog:
# their throughput is not bounded by how fast a client can queue.

echo "backlog: queued with BOOKD_WORKERS=0, then bookd restarted with $WORKERS workers"
mkdir -p "$tmp/backlog"
chmod 700 "$tmp/backlog"
start_bookd "$tmp/backlog" 0 "$tmp/bookd.log"
client "$tmp/queue.json" queue "$BOOKD" "$NJOBS" "$CONC"
stop_bookd "the queueing of the backlog"
if [ -s "$tmp/queue.json" ]; then
	start_bookd "$tmp/backlog" 1 "$tmp/bookd.log"
	client "$tmp/drain.json" drain "$BOOKD" "$tmp/queue.json" "$TIMEOUT"
	stop_bookd "the backlog phase"
fi

# ---- report ---------------------------------------------------------------------

all_log_lines=$(grep -c . "$tmp/bookd.log" || true)
cp "$tmp/bookd.log" "$OUT/jobs-bookd.log"
[ "$startup_log_lines" -eq 0 ] || echo "note: bookd logged $startup_log_lines warn/error line(s) at its first startup (bench/out/jobs-bookd.log)"
[ "$all_log_lines" -eq 0 ] || echo "note: bookd logged $all_log_lines warn/error line(s) in all (bench/out/jobs-bookd.log)"

valid=true
[ -z "$problems" ] || valid=false
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
json_part() { # key file: "key": <the file's JSON, indented>,
	if [ -s "$2" ]; then
		printf '  "%s": ' "$1"
		sed '1!s/^/  /' "$2"
	else
		printf '  "%s": null' "$1"
	fi
	echo ","
}
{
	echo "{"
	echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
	echo "  \"commit\": \"$commit\","
	echo "  \"cores\": $(nproc 2>/dev/null || echo 0),"
	echo "  \"bookd\": {\"command\": \"serve\", \"worker_max_jobs\": $WORKERS, \"log_level\": \"warn\", \"database\": \"sqlite\", \"warn_lines_startup\": $startup_log_lines, \"warn_lines_total\": $all_log_lines},"
	echo "  \"job_type\": \"test.noop\","
	echo "  \"jobs_per_phase\": $NJOBS,"
	echo "  \"submit_concurrency\": $CONC,"
	json_part live "$tmp/live.json"
	json_part backlog "$tmp/drain.json"
	echo "  \"valid\": $valid,"
	echo "  \"problems\": \"$(printf '%s' "${problems#; }" | sed 's/["\\]/\\&/g')\""
	echo "}"
} >"$OUT/jobs.json"
echo "written: bench/out/jobs.json"

if [ -n "$problems" ]; then
	echo "bench: jobs: INVALID RUN: ${problems#; }" >&2
	exit 1
fi
