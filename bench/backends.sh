#!/bin/sh
# bench/backends.sh: the chapter and preferences benchmarks on both database
# backends, SQLite and PostgreSQL, side by side.
#
# How to run (POSIX sh; needs build/bookd, wrk, curl, awk, od, psql and
# PostgreSQL's server binaries, by default /usr/lib/postgresql/15/bin; as root
# PostgreSQL runs as the `postgres` user through runuser):
#   make build/bookd && sh bench/backends.sh
#   BENCH_DURATION=30s sh bench/backends.sh  # longer, steadier figures
#
# What it measures (the issue: "make bench runs the chapter and preferences
# benchmarks on both backends and prints them side by side; PostgreSQL reads
# should be within 2x of SQLite's"):
#   Two `bookd serve`, one on SQLite (a fresh data directory) and one on a
#   private PostgreSQL (initdb in the temp dir, on a free loopback port, trust
#   authentication on 127.0.0.1, synchronous_commit=off like SQLite's
#   WAL + synchronous=NORMAL: a crash may lose the last commits, never
#   corrupt; fsync and full_page_writes stay on), each with the same ~50 KB
#   chapter imported (built exactly as bench/run.sh builds it) and one user
#   registered over the API with its preferences set (PUT). Then, for each
#   target, first on SQLite then on PostgreSQL (interleaved, so that drift of
#   the shared machine hits both alike), a wrk warm-up run (BENCH_WARMUP,
#   figures thrown away) and a measured run:
#     wrk -t2 -c64 -d$BENCH_DURATION --latency
#     GET   /api/v1/books/{id}/chapters/1      public, the rendered-chapter cache
#     GET   /api/v1/users/me/preferences       -H "Authorization: Bearer <token>"
#     PATCH /api/v1/users/me/preferences       a wrk Lua script, small JSON body
#   All requests are from the one user: the PATCHes write the same row.
#   Only one bookd is under load at a time; the other is idle.
#   Reported per target and backend: req/s, p50, p99, errors; the ratios
#   PostgreSQL/SQLite of req/s and p99. "Reads within 2x" (the two GETs) is
#   checked both ways: PostgreSQL's req/s >= half SQLite's, and its p99 <=
#   twice SQLite's.
#
# Figures: bench/out/backends.json after a run, and the bench table in
# README.md; noisy on a shared 2-core machine, so compare runs made close
# together. Round trips to PostgreSQL per request (log_statement=all): a GET
# of a cached chapter or of preferences makes none once the node has cached
# them (src/store/changes.c: the caches hold until PostgreSQL notifies a
# change; BOOKD_CACHE_NOTIFIED=false makes it one per read, and preferences
# two); a PATCH makes four or five (BEGIN, SELECT, upsert, COMMIT, and the
# user row again, as the write made its cached copy stale). PostgreSQL's backends share the
# 2 cores with bookd and wrk.
#
# Output: the table on stdout; bench/out/backends.json; the raw wrk output as
# bench/out/backends-wrk-<backend>-<target>.txt; the bookd logs as
# bench/out/backends-bookd-<backend>.log and PostgreSQL's as
# bench/out/backends-postgres.log. The run is invalid (exit 1) on any non-2xx
# answer or socket error, a bookd that died or did not exit cleanly on
# SIGTERM, or PATCHes that did not stick. A trap stops wrk, both bookds and
# PostgreSQL (pg_ctl stop; immediate mode, then SIGKILL of its postmaster if
# it hangs) and removes the temp dir, on any exit (Ctrl-C, SIGTERM too).
#
# Environment:
#   BENCH_DURATION      wrk duration of each measured run (default 10s)
#   BENCH_WARMUP        wrk duration of the warm-up run before each (default 2s)
#   BENCH_CONNECTIONS   wrk connections (default 64)
#   BENCH_THREADS       wrk threads (default 2)
#   BENCH_PG_SYNCHRONOUS_COMMIT  PostgreSQL's synchronous_commit (default off)
#   BOOKD_PG_BIN        PostgreSQL's server binaries (default /usr/lib/postgresql/15/bin)
#   BOOKD_THREADS       bookd worker threads (default 0 = cores)
#   BOOKD_DB_POOL       bookd database connections (default 16)
#   BOOKD_BIN           bookd binary (default build/bookd)
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_NAME="bench: backends"
. "$ROOT/bench/lib.sh"

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
SYNC_COMMIT=${BENCH_PG_SYNCHRONOUS_COMMIT:-off}
PG_BIN=${BOOKD_PG_BIN:-/usr/lib/postgresql/15/bin}
HTTP_THREADS=${BOOKD_THREADS:-0}
DB_POOL=${BOOKD_DB_POOL:-16}
BIN=${BOOKD_BIN:-build/bookd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
OUT=$ROOT/bench/out
MIN_BYTES=50000

die() {
	echo "bench: backends: $*" >&2
	exit 1
}

case $SYNC_COMMIT in on | off | local | remote_write | remote_apply) ;; *) die "BENCH_PG_SYNCHRONOUS_COMMIT must be on, off, local, remote_write or remote_apply" ;; esac
for v in "$CONNS" "$THREADS" "$HTTP_THREADS" "$DB_POOL"; do
	case $v in '' | *[!0-9]*) die "BENCH_CONNECTIONS, BENCH_THREADS, BOOKD_THREADS and BOOKD_DB_POOL must be whole numbers" ;; esac
done
for tool in wrk curl awk od psql; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run \`make deps\`)"
done
for tool in initdb pg_ctl postgres; do
	[ -x "$PG_BIN/$tool" ] || die "$PG_BIN/$tool not found (PostgreSQL 15's server; or set BOOKD_PG_BIN)"
done
[ -x "$BIN" ] || die "$BIN not found (run \`make build/bookd\`)"
if [ "$(id -u)" -eq 0 ]; then
	command -v runuser >/dev/null 2>&1 || die "runuser not found (PostgreSQL refuses to run as root)"
	id postgres >/dev/null 2>&1 || die "no postgres user to run PostgreSQL as (PostgreSQL refuses to run as root)"
fi

# PostgreSQL's tools, as the postgres user when we are root.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# ---- cleanup: nothing may outlive this script -------------------------------

tmp=""
WRK_PID=""
SQ_PID=""
PG_PID=""
PGDATA_DIR=""


stop_postgres() {
	[ -n "$PGDATA_DIR" ] || return 0
	if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
		pm=$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 20 stop >/dev/null 2>&1 ||
			as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
		# pg_ctl -w returns when the pid file is gone: the process may take a moment more
		case $pm in '' | *[!0-9]*) ;; *) await_exit "$pm" 5 PostgreSQL ;; esac
	fi
	PGDATA_DIR=""
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	stop_pid "$WRK_PID" INT 2
	stop_pid "$SQ_PID" TERM 10
	stop_pid "$PG_PID" TERM 10
	stop_postgres
	[ -n "$tmp" ] && rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bookd-bench-backends.XXXXXX")
# PostgreSQL runs as postgres when we are root: it must reach $tmp/pg.
chmod 755 "$tmp"
mkdir -p "$tmp/sqlite" "$tmp/pgbookd" "$tmp/pg" "$OUT"
chmod 700 "$tmp/sqlite" "$tmp/pgbookd"
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$tmp/pg"
rm -f "$OUT/backends.json" "$OUT"/backends-wrk-*.txt "$OUT"/backends-bookd-*.log "$OUT/backends-postgres.log"

JWT_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
{ [ ${#JWT_SECRET} -eq 48 ] && [ ${#PASSWORD} -eq 32 ]; } || die "cannot read /dev/urandom"

loadavg() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null; }
load_before=$(loadavg)

# ---- 1. a ~50 KB chapter, generated deterministically (as bench/run.sh) -----
#
# The .md sample chapters in C-locale order, front matter dropped, every
# heading demoted one level (outside code fences) so that `# Bench Chapter`
# stays the only H1; whole files are appended, cycling, until >= 50,000 bytes.

md=$tmp/bench.md
files=$(find sample/physical-ai -type f -name '*.md' | LC_ALL=C sort)
[ -n "$files" ] || die "no sample chapters under sample/physical-ai"
{
	echo "# Bench Chapter"
	echo
	echo "The sample chapters of *Physical AI and Humanoid Robotics*, concatenated into one long chapter for \`make bench\`."
	echo
} >"$md"
round=0
while [ "$(wc -c <"$md")" -lt "$MIN_BYTES" ]; do
	round=$((round + 1))
	for f in $files; do
		{
			echo "## Round $round: $(basename "$f" .md)"
			echo
			LC_ALL=C awk '
				NR == 1 && /^---[ \t\r]*$/ { fm = 1; next }
				fm { if (/^---[ \t\r]*$/) fm = 0; next }
				/^ ? ? ?(```|~~~)/ { fence = !fence }
				!fence && /^#/ { $0 = "#" $0 }
				{ print }
			' "$f"
			echo
		} >>"$md"
		[ "$(wc -c <"$md")" -lt "$MIN_BYTES" ] || break
	done
done
md_bytes=$(wc -c <"$md")
h1=$(awk '/^ ? ? ?(```|~~~)/ { f = !f } !f && /^ ? ? ?#[ \t]/ { n++ } END { print n + 0 }' "$md")
[ "$h1" -eq 1 ] || die "generated bench.md has $h1 H1 headings, expected 1"

# ---- free loopback ports (as in bench/run.sh) ---------------------------------
#
# Below the kernel's ephemeral range so wrk's client sockets cannot take them;
# "free" = nothing answers on 127.0.0.1 (curl exit 7). A lost race shows up as
# a server that does not start, and is retried with the next port.

seed=$((($$ + 3750) % 5000))


# ---- 2. a private PostgreSQL ------------------------------------------------------

PGDIR=$tmp/pg
as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$tmp/initdb.log" 2>&1 || {
	cat "$tmp/initdb.log" >&2
	die "initdb failed"
}
tries=0
while :; do
	next_port 1
	PGPORT=$PORT
	PGDATA_DIR=$PGDIR/data
	: >"$tmp/pg-start.log"
	if as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -t 30 \
		-o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=100 -c synchronous_commit=$SYNC_COMMIT" \
		start >"$tmp/pg-start.log" 2>&1; then
		break
	fi
	stop_postgres
	tries=$((tries + 1))
	if [ "$tries" -ge 3 ]; then
		cat "$tmp/pg-start.log" "$PGDIR/log" >&2 2>/dev/null || true
		die "PostgreSQL did not start on 127.0.0.1 (3 tries)"
	fi
done
pg_version=$("$PG_BIN/postgres" --version | sed 's/^postgres (PostgreSQL) //')
psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAtc "CREATE DATABASE bookd_bench" >/dev/null ||
	die "cannot create the bench database"
PG_URL=postgres://postgres@127.0.0.1:$PGPORT/bookd_bench

# ---- 3. the chapter on both backends ------------------------------------------------
#
# bookd runs in $tmp so that a .env in the repo cannot change what is measured.

bookd_env() { # backend: the environment of a bookd on that backend
	if [ "$1" = sqlite ]; then
		echo "BOOKD_DATA_DIR=$tmp/sqlite DATABASE_URL="
	else
		echo "BOOKD_DATA_DIR=$tmp/pgbookd DATABASE_URL=$PG_URL"
	fi
}

import() { # backend: sets BOOK
	# shellcheck disable=SC2046 # bookd_env: NAME=VALUE words without spaces
	imported=$(cd "$tmp" && env $(bookd_env "$1") BOOKD_LOG_LEVEL=warn "$BIN" import "$md" --title "Bench Book") ||
		die "import into $1 failed"
	BOOK=$(printf '%s\n' "$imported" | sed -n 's/.*"book_id" *: *"\([^"]*\)".*/\1/p')
	nchap=$(printf '%s\n' "$imported" | sed -n 's/.*"chapters" *: *\([0-9]*\).*/\1/p')
	[ -n "$BOOK" ] || die "import into $1 printed no book_id: $imported"
	[ "$nchap" = 1 ] || die "import into $1 made ${nchap:-?} chapters, expected 1: $imported"
}
case $tmp in *' '*) die "the temp dir must not contain spaces: $tmp" ;; esac
import sqlite
BOOK_SQ=$BOOK
import postgres
BOOK_PG=$BOOK

start_bookd() { # backend: sets PID_OF_LAST PORT_OF_LAST
	tries=0
	while :; do
		next_port 0
		bport=$PORT
		# shellcheck disable=SC2046 # bookd_env: NAME=VALUE words without spaces
		(cd "$tmp" && exec env $(bookd_env "$1") BOOKD_HOST=127.0.0.1 BOOKD_PORT="$bport" \
			BOOKD_LOG_LEVEL=warn BOOKD_SHUTDOWN_TIMEOUT=5 BOOKD_THREADS="$HTTP_THREADS" \
			BOOKD_DB_POOL="$DB_POOL" BOOKD_JWT_SECRET="$JWT_SECRET" BOOKD_JWT_TTL=3600 \
			"$BIN" serve) >>"$tmp/bookd-$1.log" 2>&1 &
		bpid=$!
		wait_http "http://127.0.0.1:$bport/health/live" "$bpid" 10 && break
		stop_pid "$bpid" TERM 5
		tries=$((tries + 1))
		if [ "$tries" -ge 3 ]; then
			cat "$tmp/bookd-$1.log" >&2
			die "bookd ($1) did not become live on 127.0.0.1 (3 tries)"
		fi
	done
	PID_OF_LAST=$bpid
	PORT_OF_LAST=$bport
}
: >"$tmp/bookd-sqlite.log"
: >"$tmp/bookd-postgres.log"
start_bookd sqlite
SQ_PID=$PID_OF_LAST
SQ=http://127.0.0.1:$PORT_OF_LAST
start_bookd postgres
PG_PID=$PID_OF_LAST
PG=http://127.0.0.1:$PORT_OF_LAST
startup_lines_sq=$(grep -c . "$tmp/bookd-sqlite.log" || true)
startup_lines_pg=$(grep -c . "$tmp/bookd-postgres.log" || true)

# ---- 4. a user with preferences on each -----------------------------------------------

PREFS_FULL='{"software_background":"Python web developer, some C++","hardware_background":"Arduino hobbyist","learning_goals":"Build a ROS 2 mobile robot","robotics_kit_experience":"TurtleBot 3","experience_level":"intermediate","preferred_language":"en","programming_languages":["Python","C++"],"preferred_topics":["SLAM","motion planning"],"gpu_access":true,"personalization_enabled":true,"content_complexity":"standard","explanation_depth":"detailed","example_style":"code"}'
PATCH_BODY='{"experience_level":"advanced","preferred_topics":["SLAM","locomotion","manipulation"]}'

user() { # base_url: sets TOKEN (the password goes to curl on stdin, not argv)
	email="bench-backends-$$@example.com"
	printf '{"email":"%s","password":"%s"}' "$email" "$PASSWORD" |
		curl -s -o "$tmp/register.json" -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' \
			--data-binary @- "$1/api/v1/auth/register" >"$tmp/register.code" || die "register at $1 failed"
	[ "$(cat "$tmp/register.code")" = 201 ] || die "register at $1 answered $(cat "$tmp/register.code"): $(cut -c1-300 "$tmp/register.json")"
	TOKEN=$(sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p' "$tmp/register.json")
	[ -n "$TOKEN" ] || die "register at $1 gave no access_token"
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/json' --data-binary "$PREFS_FULL" "$1/api/v1/users/me/preferences")
	[ "$code" = 200 ] || die "PUT preferences at $1 answered $code"
}
user "$SQ"
TOKEN_SQ=$TOKEN
user "$PG"
TOKEN_PG=$TOKEN
rm -f "$tmp/register.json"

# Both serve the same chapter (the ids differ: each import made its own).
bytes_sq=$(curl -s --max-time 10 "$SQ/api/v1/books/$BOOK_SQ/chapters/1" | wc -c)
bytes_pg=$(curl -s --max-time 10 "$PG/api/v1/books/$BOOK_PG/chapters/1" | wc -c)
{ [ "$bytes_sq" -gt "$MIN_BYTES" ] && [ "$bytes_pg" -gt "$MIN_BYTES" ]; } || die "the chapter is missing (SQLite $bytes_sq bytes, PostgreSQL $bytes_pg bytes)"
body_kb=$(awk -v b="$bytes_sq" 'BEGIN { printf "%.0f", b / 1024 }')

cat >"$tmp/patch.lua" <<EOF
-- PATCH /api/v1/users/me/preferences with a small JSON body (Authorization: wrk -H)
wrk.method = "PATCH"
wrk.body = '$PATCH_BODY'
wrk.headers["Content-Type"] = "application/json"
EOF

# ---- 5. wrk ---------------------------------------------------------------------------

problems=""

run_wrk() { # file duration pid_of_bookd wrk-args...
	file=$1 dur=$2 bpid=$3
	shift 3
	WRK_PID=""
	wrk -t "$THREADS" -c "$CONNS" -d "$dur" --latency "$@" >"$file" 2>&1 &
	WRK_PID=$!
	wrc=0
	wait "$WRK_PID" || wrc=$?
	WRK_PID=""
	[ "$wrc" -eq 0 ] || {
		cat "$file" >&2
		die "wrk failed (exit $wrc): $*"
	}
	kill -0 "$bpid" 2>/dev/null || {
		st=0
		wait "$bpid" || st=$?
		for b in sqlite postgres; do
			cp "$tmp/bookd-$b.log" "$OUT/backends-bookd-$b.log" 2>/dev/null || true
		done
		echo "bench: backends: bookd DIED under wrk ($*): exit status $st" >&2
		die "bookd crashed under load (bench/out/backends-bookd-*.log, raw wrk output in bench/out/backends-wrk-*.txt)"
	}
}

# Prints: req/s p50_ms p99_ms requests non2xx socket_errors, from wrk's output.
parse_wrk() {
	awk '
		function ms(v,  n, u) {
			n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
			if (u == "us") return n / 1000
			if (u == "ms") return n
			if (u == "s") return n * 1000
			if (u == "m") return n * 60000
			if (u == "h") return n * 3600000
			return -1
		}
		/^Requests\/sec:/ { rps = $2 }
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		/ requests in / { reqs = $1 }
		/Non-2xx or 3xx responses:/ { non2xx = $NF }
		/Socket errors:/ { gsub(/,/, ""); serr = $4 + $6 + $8 + $10 }
		END {
			if (rps == "" || p99 == "") exit 1
			printf "%.2f %.3f %.3f %d %d %d\n", rps, p50, p99, reqs, non2xx, serr
		}
	' "$1"
}

# measure target backend: warm-up, then the measured run; sets R_<target>_<backend>
measure() {
	target=$1 backend=$2
	if [ "$backend" = sqlite ]; then
		base=$SQ book=$BOOK_SQ token=$TOKEN_SQ bpid=$SQ_PID
	else
		base=$PG book=$BOOK_PG token=$TOKEN_PG bpid=$PG_PID
	fi
	case $target in
	chapter) set -- "$base/api/v1/books/$book/chapters/1" ;;
	prefs_get) set -- -H "Authorization: Bearer $token" "$base/api/v1/users/me/preferences" ;;
	prefs_patch) set -- -H "Authorization: Bearer $token" -s "$tmp/patch.lua" "$base/api/v1/users/me/preferences" ;;
	esac
	printf '  running %-12s on %-10s warm-up %s, then %s ...\n' "$target" "$backend" "$WARMUP" "$DURATION" >&2
	f=$OUT/backends-wrk-$backend-$target.txt
	run_wrk "$f.warmup" "$WARMUP" "$bpid" "$@"
	run_wrk "$f" "$DURATION" "$bpid" "$@"
	res=$(parse_wrk "$f") || {
		cat "$f" >&2
		die "cannot parse wrk output for $target on $backend"
	}
	warm=$(parse_wrk "$f.warmup" | awk '{ print $5 + $6 }') || warm=0
	rm -f "$f.warmup"
	[ "${warm:-0}" -eq 0 ] || problems="$problems; $warm errors in the warm-up of $target on $backend"
	# shellcheck disable=SC2086 # six numbers
	set -- $res
	[ "$5" -eq 0 ] || problems="$problems; $5 non-2xx/3xx answers to $target on $backend"
	[ "$6" -eq 0 ] || problems="$problems; $6 socket errors on $target on $backend"
	eval "R_${target}_${backend}=\"\$res\""
}

echo "bookd backends bench: wrk -t$THREADS -c$CONNS -d$DURATION --latency (after a $WARMUP warm-up run each), 127.0.0.1, $(nproc 2>/dev/null || echo ?) cores shared by bookd, PostgreSQL, wrk (and any other work: load average $load_before at the start)"
echo "  bookd: BOOKD_LOG_LEVEL=warn, BOOKD_THREADS=$HTTP_THREADS (0 = cores), BOOKD_DB_POOL=$DB_POOL; SQLite (WAL, synchronous=NORMAL) vs PostgreSQL $pg_version (synchronous_commit=$SYNC_COMMIT), port $PGPORT"
echo "  chapter: $md_bytes bytes of Markdown -> $bytes_sq byte JSON response; one user, Bearer token"
echo

for target in chapter prefs_get prefs_patch; do
	for backend in sqlite postgres; do
		measure "$target" "$backend"
	done
done
echo >&2

# ---- 6. after the load: alive, and the PATCHes stuck? ---------------------------------

for backend in sqlite postgres; do
	if [ "$backend" = sqlite ]; then base=$SQ token=$TOKEN_SQ; else base=$PG token=$TOKEN_PG; fi
	got=$(curl -s --max-time 10 -H "Authorization: Bearer $token" "$base/api/v1/users/me/preferences" || true)
	case $got in
	*'"experience_level":"advanced"'*'"locomotion"'* | *'"locomotion"'*'"experience_level":"advanced"'*) ;;
	*) problems="$problems; the PATCHed preferences did not stick on $backend" ;;
	esac
done
load_after=$(loadavg)

lines_sq=$(grep -c . "$tmp/bookd-sqlite.log" || true)
lines_pg=$(grep -c . "$tmp/bookd-postgres.log" || true)
for backend in sqlite postgres; do
	if [ "$backend" = sqlite ]; then p=$SQ_PID; SQ_PID=""; else p=$PG_PID; PG_PID=""; fi
	if kill -0 "$p" 2>/dev/null; then
		kill -TERM "$p" 2>/dev/null || true
		st=0
		wait "$p" || st=$?
		[ "$st" -eq 0 ] || problems="$problems; bookd ($backend) exited $st on SIGTERM"
	else
		problems="$problems; bookd ($backend) died during the run"
	fi
	cp "$tmp/bookd-$backend.log" "$OUT/backends-bookd-$backend.log"
done
stop_postgres
cp "$PGDIR/log" "$OUT/backends-postgres.log" 2>/dev/null || true
warn_sq=$((lines_sq - startup_lines_sq))
warn_pg=$((lines_pg - startup_lines_pg))
[ "$startup_lines_sq" -eq 0 ] && [ "$startup_lines_pg" -eq 0 ] ||
	echo "note: bookd logged warn/error lines at startup: SQLite $startup_lines_sq, PostgreSQL $startup_lines_pg (bench/out/backends-bookd-*.log)"
[ "$warn_sq" -eq 0 ] && [ "$warn_pg" -eq 0 ] ||
	echo "note: bookd logged warn/error lines under load: SQLite $warn_sq, PostgreSQL $warn_pg (bench/out/backends-bookd-*.log)"

# ---- 7. report --------------------------------------------------------------------------

field() { # "res" n: the nth figure of a parse_wrk line
	echo "$1" | awk -v n="$2" '{ print $n }'
}
ratio() { # a b: a / b with 2 decimals (0 when b is 0)
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'
}
errs() { # non2xx socket_errors
	if [ "$1" -eq 0 ] && [ "$2" -eq 0 ]; then echo 0; else echo "${1}n/${2}s"; fi
}

one() { # backend res: its JSON
	printf '"%s": {"requests_per_sec": %s, "p50_ms": %s, "p99_ms": %s, "requests": %s, "non_2xx_3xx": %s, "socket_errors": %s}' \
		"$1" "$(field "$2" 1)" "$(field "$2" 2)" "$(field "$2" 3)" "$(field "$2" 4)" "$(field "$2" 5)" "$(field "$2" 6)"
}

printf '%-22s %12s %8s %8s %12s %8s %8s %10s %8s\n' "target" "SQLite req/s" "p99 ms" "errors" "PG req/s" "p99 ms" "errors" "PG/SQ req/s" "PG/SQ p99"
reads_rps_ok=true
reads_p99_ok=true
json_targets=""
for target in chapter prefs_get prefs_patch; do
	sq="" pg=""
	eval "sq=\$R_${target}_sqlite pg=\$R_${target}_postgres"
	case $target in
	chapter) label="GET chapter ($body_kb KB)" path="/api/v1/books/{id}/chapters/1" ;;
	prefs_get) label="GET preferences" path="/api/v1/users/me/preferences" ;;
	prefs_patch) label="PATCH preferences" path="/api/v1/users/me/preferences" ;;
	esac
	rr=$(ratio "$(field "$pg" 1)" "$(field "$sq" 1)")
	pr=$(ratio "$(field "$pg" 3)" "$(field "$sq" 3)")
	printf '%-22s %12s %8s %8s %12s %8s %8s %10s %8s\n' "$label" \
		"$(field "$sq" 1)" "$(field "$sq" 3)" "$(errs "$(field "$sq" 5)" "$(field "$sq" 6)")" \
		"$(field "$pg" 1)" "$(field "$pg" 3)" "$(errs "$(field "$pg" 5)" "$(field "$pg" 6)")" "$rr" "$pr"
	if [ "$target" != prefs_patch ]; then
		awk -v r="$rr" 'BEGIN { exit !(r >= 0.5) }' || reads_rps_ok=false
		awk -v r="$pr" 'BEGIN { exit !(r > 0 && r <= 2) }' || reads_p99_ok=false
	fi
	json_targets="$json_targets${json_targets:+,
}    \"$target\": {\"label\": \"$label\", \"url_path\": \"$path\", $(one sqlite "$sq"), $(one postgres "$pg"), \"ratio_pg_sqlite_rps\": $rr, \"ratio_pg_sqlite_p99\": $pr}"
done
verdict() { if [ "$1" = true ]; then echo met; else echo "NOT met"; fi; }
echo "reads within 2x (the two GETs): PostgreSQL req/s >= SQLite/2: $(verdict $reads_rps_ok); PostgreSQL p99 <= 2 x SQLite: $(verdict $reads_p99_ok)"
echo "(errors: n = \"Non-2xx or 3xx responses\", s = wrk socket errors; raw wrk output in bench/out/backends-wrk-*.txt)"

valid=true
[ -z "$problems" ] || valid=false
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
	echo "{"
	echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
	echo "  \"commit\": \"$commit\","
	echo "  \"cores\": $(nproc 2>/dev/null || echo 0),"
	echo "  \"loadavg_1m_before\": $load_before,"
	echo "  \"loadavg_1m_after\": $load_after,"
	echo "  \"shared_machine_note\": \"bookd, PostgreSQL and wrk share the cores with each other and with any other work on the machine\","
	echo "  \"wrk\": {\"threads\": $THREADS, \"connections\": $CONNS, \"duration\": \"$DURATION\", \"warmup\": \"$WARMUP\"},"
	echo "  \"bookd\": {\"log_level\": \"warn\", \"threads\": $HTTP_THREADS, \"db_pool\": $DB_POOL, \"warn_lines_startup\": {\"sqlite\": $startup_lines_sq, \"postgres\": $startup_lines_pg}, \"warn_lines_under_load\": {\"sqlite\": $warn_sq, \"postgres\": $warn_pg}},"
	echo "  \"sqlite\": {\"journal_mode\": \"wal\", \"synchronous\": \"normal\"},"
	echo "  \"postgres\": {\"version\": \"$pg_version\", \"synchronous_commit\": \"$SYNC_COMMIT\", \"fsync\": true, \"max_connections\": 100},"
	echo "  \"chapter\": {\"markdown_bytes\": $md_bytes, \"response_bytes_sqlite\": $bytes_sq, \"response_bytes_postgres\": $bytes_pg},"
	echo "  \"targets\": {"
	echo "$json_targets"
	echo "  },"
	echo "  \"reads_within_2x\": {\"rps_ok\": $reads_rps_ok, \"p99_ok\": $reads_p99_ok},"
	echo "  \"valid\": $valid,"
	echo "  \"problems\": \"$(printf '%s' "${problems#; }" | sed 's/["\\]/\\&/g')\""
	echo "}"
} >"$OUT/backends.json"
echo "written: bench/out/backends.json"

if [ -n "$problems" ]; then
	echo "bench: backends: INVALID RUN: ${problems#; }" >&2
	exit 1
fi
