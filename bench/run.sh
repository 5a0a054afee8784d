#!/bin/sh
# `make bench`: throughput and tail latency of bookd's hot path (GET of one
# ~50 KB chapter) next to nginx serving the very same bytes as a static file
# with sendfile, plus bookd's cheapest route (/health/live) as a floor; then
# the chapter's p99 with and without a concurrent burst of logins (argon2id
# must not starve other requests); then the job queue (bench/jobs.sh).
# See bench/README.md. POSIX sh: make runs it as `sh bench/run.sh`.
#
# Environment:
#   BENCH_DURATION     wrk duration of each measured run (default 10s)
#   BENCH_WARMUP       wrk duration of the warm-up run before each (default 2s)
#   BENCH_CONNECTIONS  wrk connections (default 64)
#   BENCH_THREADS      wrk threads (default 2)
#   BENCH_NGINX_TCP_NOPUSH  on (default, as Debian's nginx.conf: most req/s)
#                      or off (no ~40 ms delayed-ACK tail in nginx's p99)
#   BENCH_LOGIN_SECONDS  length of each chapter run next to the login burst
#                      (default 5)
#   BENCH_LOGIN_CLIENTS  concurrent login clients of the burst (default 8)
#   BENCH_SKIP_JOBS    1 = do not run bench/jobs.sh afterwards
#   BENCH_SKIP_SITE    1 = do not run bench/site.sh (static site vs nginx)
#   BENCH_ONLY_HTTP    1 = stop after the HTTP and job benchmarks (skip backends,
#                      search, chat and the retrieval evaluation)
#   BENCH_PYTHON       Python 3 for bench/logins.py (default python3)
#   BOOKD_THREADS      bookd worker threads (default 0 = cores)
#   BOOKD_HASH_THREADS bookd password-hashing threads (default 1)
#   BOOKD_BIN          bookd binary (default build/bookd)
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_NAME="bench"
. "$ROOT/bench/lib.sh"

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
NOPUSH=${BENCH_NGINX_TCP_NOPUSH:-on}
BIN=${BOOKD_BIN:-build/bookd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
OUT=$ROOT/bench/out
MIN_BYTES=50000
LOGIN_SECS=${BENCH_LOGIN_SECONDS:-5}
LOGIN_CLIENTS=${BENCH_LOGIN_CLIENTS:-8}
PYTHON=${BENCH_PYTHON:-python3}
HASH_THREADS=${BOOKD_HASH_THREADS:-1}

die() {
	echo "bench: $*" >&2
	exit 1
}

case $NOPUSH in on | off) ;; *) die "BENCH_NGINX_TCP_NOPUSH must be on or off" ;; esac
for v in "$LOGIN_SECS" "$LOGIN_CLIENTS" "$HASH_THREADS"; do
	case $v in '' | *[!0-9]*) die "BENCH_LOGIN_SECONDS, BENCH_LOGIN_CLIENTS and BOOKD_HASH_THREADS must be whole numbers" ;; esac
done
[ "$LOGIN_SECS" -ge 1 ] || die "BENCH_LOGIN_SECONDS must be at least 1"
[ "$LOGIN_CLIENTS" -ge 1 ] || die "BENCH_LOGIN_CLIENTS must be at least 1"
for tool in wrk nginx curl awk od "$PYTHON"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run \`make deps\`)"
done
[ -x "$BIN" ] || die "$BIN not found (run \`make build/bookd\`)"

# ---- cleanup: nothing may outlive this script -------------------------------

tmp=""
BOOKD_PID=""
NGINX_PID=""
WRK_PID=""
LOGINS_PID=""


cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	stop_pid "$WRK_PID" INT 2
	stop_pid "$LOGINS_PID" TERM 2
	stop_pid "$BOOKD_PID" TERM 10
	stop_pid "$NGINX_PID" TERM 5 # nginx master: TERM = fast shutdown, workers follow
	[ -n "$tmp" ] && rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bookd-bench.XXXXXX")
# nginx workers run as nobody when we are root: they must reach www/.
chmod 755 "$tmp"
mkdir -p "$tmp/data" "$tmp/www" "$tmp/nginx-temp" "$OUT"
rm -f "$OUT/latest.json" "$OUT"/wrk-*.txt "$OUT/bookd.log" # no stale figures after a failed run
chmod 700 "$tmp/data"

# ---- 1. a ~50 KB chapter, generated deterministically -----------------------
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

# bookd runs in $tmp so that a .env in the repo cannot change what is measured.
bookd() {
	(cd "$tmp" && env BOOKD_DATA_DIR="$tmp/data" DATABASE_URL= "$BIN" "$@")
}

imported=$(bookd import "$md" --title "Bench Book") || die "import failed"
BOOK=$(printf '%s\n' "$imported" | sed -n 's/.*"book_id" *: *"\([^"]*\)".*/\1/p')
nchap=$(printf '%s\n' "$imported" | sed -n 's/.*"chapters" *: *\([0-9]*\).*/\1/p')
[ -n "$BOOK" ] || die "import printed no book_id: $imported"
[ "$nchap" = 1 ] || die "import made ${nchap:-?} chapters, expected 1: $imported"

# ---- free loopback ports ----------------------------------------------------
#
# Below the kernel's ephemeral range so wrk's client sockets cannot take them;
# "free" = nothing answers on 127.0.0.1 (curl exit 7). A lost race shows up as
# a server that does not start, and is retried with the next port.

seed=$(($$ % 5000))


# ---- 2. bookd ---------------------------------------------------------------

# Login limits far above what the burst of section 4b can reach (100000 is
# their maximum), so that rate limiting never answers in argon2id's place.
BOOKD_THREADS_USED=${BOOKD_THREADS:-0}
tries=0
while :; do
	next_port 0
	BPORT=$PORT
	(cd "$tmp" && exec env BOOKD_DATA_DIR="$tmp/data" DATABASE_URL= BOOKD_HOST=127.0.0.1 \
		BOOKD_PORT="$BPORT" BOOKD_LOG_LEVEL=warn BOOKD_SHUTDOWN_TIMEOUT=5 \
		BOOKD_THREADS="$BOOKD_THREADS_USED" BOOKD_HASH_THREADS="$HASH_THREADS" \
		BOOKD_LOGIN_BURST=100000 BOOKD_LOGIN_PER_MINUTE=100000 "$BIN" serve) >"$tmp/bookd.log" 2>&1 &
	BOOKD_PID=$!
	wait_http "http://127.0.0.1:$BPORT/health/live" "$BOOKD_PID" 10 && break
	stop_pid "$BOOKD_PID" TERM 5
	BOOKD_PID=""
	tries=$((tries + 1))
	if [ "$tries" -ge 3 ]; then
		cat "$tmp/bookd.log" >&2
		die "bookd did not become live on 127.0.0.1 (3 tries)"
	fi
done
BOOKD=http://127.0.0.1:$BPORT
CHAPTER_PATH=/api/v1/books/$BOOK/chapters/1
startup_log_lines=$(grep -c . "$tmp/bookd.log" || true)

# ---- 3. the same bytes from nginx -------------------------------------------

code=$(curl -s -o "$tmp/www/chapter.json" -w '%{http_code}' "$BOOKD$CHAPTER_PATH")
[ "$code" = 200 ] || die "GET $CHAPTER_PATH answered $code"
chmod 644 "$tmp/www/chapter.json"
body_bytes=$(wc -c <"$tmp/www/chapter.json")
body_kb=$(awk -v b="$body_bytes" 'BEGIN { printf "%.0f", b / 1024 }')

start_nginx "$tmp" "types {}
    default_type application/json;" "root $tmp/www;
        location = /chapter.json { }" chapter.json
NGINX=http://127.0.0.1:$NPORT
curl -s "$NGINX/chapter.json" | cmp -s - "$tmp/www/chapter.json" || die "nginx does not serve the same bytes"

# ---- 4. wrk -----------------------------------------------------------------

bookd_died() { # during
	st=0
	wait "$BOOKD_PID" || st=$?
	BOOKD_PID=""
	cp "$tmp/bookd.log" "$OUT/bookd.log"
	sig=""
	[ "$st" -le 128 ] || sig=" = signal $((st - 128)) ($(kill -l "$((st - 128))" 2>/dev/null || echo ?))"
	echo "bench: bookd DIED during $1: exit status $st$sig; last lines of its log:" >&2
	tail -n 20 "$tmp/bookd.log" >&2
	die "bookd crashed under load (full log: bench/out/bookd.log, wrk output: bench/out/wrk-*.txt)"
}

run_wrk() { # name duration url
	WRK_PID=""
	wrk -t "$THREADS" -c "$CONNS" -d "$2" --latency "$3" >"$tmp/wrk-$1.txt" 2>&1 &
	WRK_PID=$!
	wrc=0
	wait "$WRK_PID" || wrc=$?
	WRK_PID=""
	cp "$tmp/wrk-$1.txt" "$OUT/wrk-$1.txt"
	kill -0 "$BOOKD_PID" 2>/dev/null || bookd_died "wrk run $1 ($3)"
	[ "$wrc" -eq 0 ] || {
		cat "$tmp/wrk-$1.txt" >&2
		die "wrk failed (exit $wrc) on $3"
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

echo "bookd bench: wrk -t$THREADS -c$CONNS -d$DURATION --latency (after a $WARMUP warm-up run each), 127.0.0.1, $(nproc 2>/dev/null || echo ?) cores shared by server and wrk"
echo "  bookd: BOOKD_LOG_LEVEL=warn (no per-request access log), BOOKD_THREADS=$BOOKD_THREADS_USED (0 = cores), port $BPORT"
echo "  nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //'), worker_processes 2, sendfile on, tcp_nopush $NOPUSH, keepalive, access_log off, port $NPORT"
echo "  chapter: $md_bytes bytes of Markdown -> $body_bytes byte JSON response"
echo

# Sets RPS P50 P99 REQS NON2XX SERR (measured run) and WARM_ERR (warm-up).
measure() { # name url
	printf '  running %-8s warm-up %s, then %s ...\n' "$1" "$WARMUP" "$DURATION" >&2
	run_wrk "$1-warmup" "$WARMUP" "$2"
	run_wrk "$1" "$DURATION" "$2"
	res=$(parse_wrk "$tmp/wrk-$1.txt") || {
		cat "$tmp/wrk-$1.txt" >&2
		die "cannot parse wrk output for $1"
	}
	read -r RPS P50 P99 REQS NON2XX SERR <<EOF
$res
EOF
	WARM_ERR=$(parse_wrk "$tmp/wrk-$1-warmup.txt" | awk '{ print $5 + $6 }') || WARM_ERR=0
}

measure chapter "$BOOKD$CHAPTER_PATH"
rps_chapter=$RPS p50_chapter=$P50 p99_chapter=$P99 reqs_chapter=$REQS
non2xx_chapter=$NON2XX serr_chapter=$SERR warm_chapter=$WARM_ERR
measure nginx "$NGINX/chapter.json"
rps_nginx=$RPS p50_nginx=$P50 p99_nginx=$P99 reqs_nginx=$REQS
non2xx_nginx=$NON2XX serr_nginx=$SERR
measure live "$BOOKD/health/live"
rps_live=$RPS p50_live=$P50 p99_live=$P99 reqs_live=$REQS
non2xx_live=$NON2XX serr_live=$SERR warm_live=$WARM_ERR

# ---- 4b. GET chapter with and without a burst of logins ---------------------
#
# argon2id (19 MiB, t=2) runs on BOOKD_HASH_THREADS, not on the HTTP threads:
# while LOGIN_CLIENTS clients log in back to back, the chapter's p99 should
# stay low. The same wrk run as above (already warm), LOGIN_SECS alone, then
# LOGIN_SECS with bench/logins.py running next to it for the same time.

LOGIN_EMAIL="bench-$$@example.com"
BENCH_LOGIN_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export BENCH_LOGIN_PASSWORD
"$PYTHON" bench/logins.py register "$BOOKD" "$LOGIN_EMAIL" || die "cannot register the login bench user"

parse_into() { # name: sets RPS P50 P99 REQS NON2XX SERR from wrk-NAME.txt
	res=$(parse_wrk "$tmp/wrk-$1.txt") || {
		cat "$tmp/wrk-$1.txt" >&2
		die "cannot parse wrk output for $1"
	}
	read -r RPS P50 P99 REQS NON2XX SERR <<EOF
$res
EOF
}

printf '  running %-8s %s s alone, then %s s next to %s login clients ...\n' chapter "$LOGIN_SECS" "$LOGIN_SECS" "$LOGIN_CLIENTS" >&2
run_wrk chapter-quiet "${LOGIN_SECS}s" "$BOOKD$CHAPTER_PATH"
parse_into chapter-quiet
rps_quiet=$RPS p50_quiet=$P50 p99_quiet=$P99 non2xx_quiet=$NON2XX serr_quiet=$SERR

"$PYTHON" bench/logins.py burst "$BOOKD" "$LOGIN_EMAIL" "$LOGIN_SECS" "$LOGIN_CLIENTS" "$tmp/logins.json" &
LOGINS_PID=$!
run_wrk chapter-logins "${LOGIN_SECS}s" "$BOOKD$CHAPTER_PATH"
lrc=0
wait "$LOGINS_PID" || lrc=$?
LOGINS_PID=""
parse_into chapter-logins
rps_burst=$RPS p50_burst=$P50 p99_burst=$P99 non2xx_burst=$NON2XX serr_burst=$SERR
[ -s "$tmp/logins.json" ] || die "bench/logins.py wrote no result (exit $lrc)"
logins_json=$(cat "$tmp/logins.json")
login_field() { # key: a number from logins.json
	printf '%s\n' "$logins_json" | sed -n "s/.*\"$1\": *\([0-9.][0-9.]*\).*/\1/p"
}
login_rate=$(login_field logins_per_sec)
login_secs=$(login_field seconds)
login_ok=$(login_field ok)
login_p50=$(login_field latency_p50_ms)
login_p99=$(login_field latency_p99_ms)
echo >&2

# ---- after the load: is bookd still alive and still right? ------------------

bookd_alive=true
kill -0 "$BOOKD_PID" 2>/dev/null || bookd_alive=false
bookd_same=false
if $bookd_alive && curl -s --max-time 5 "$BOOKD$CHAPTER_PATH" | cmp -s - "$tmp/www/chapter.json"; then
	bookd_same=true
fi
bookd_warn_lines=$(($(grep -c . "$tmp/bookd.log" || true) - startup_log_lines))
cp "$tmp/bookd.log" "$OUT/bookd.log"

# ---- 5. report --------------------------------------------------------------

ratio=$(awk -v a="$rps_chapter" -v b="$rps_nginx" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
ratio_ok=$(awk -v r="$ratio" 'BEGIN { print ((r >= 0.70) ? "true" : "false") }')
p99_ok=$(awk -v p="$p99_chapter" 'BEGIN { print ((p < 5) ? "true" : "false") }')
verdict="met"
{ [ "$ratio_ok" = true ] && [ "$p99_ok" = true ]; } || verdict="NOT met"

printf '%-32s %12s %10s %10s %12s\n' "target" "req/s" "p50 ms" "p99 ms" "errors"
row() {
	printf '%-32s %12s %10s %10s %12s\n' "$1" "$2" "$3" "$4" "$5"
}
errs() { # non2xx socket_errors
	if [ "$1" -eq 0 ] && [ "$2" -eq 0 ]; then echo 0; else echo "${1}n/${2}s"; fi
}
row "bookd GET chapter ($body_kb KB)" "$rps_chapter" "$p50_chapter" "$p99_chapter" "$(errs "$non2xx_chapter" "$serr_chapter")"
row "nginx same bytes (static)" "$rps_nginx" "$p50_nginx" "$p99_nginx" "$(errs "$non2xx_nginx" "$serr_nginx")"
row "bookd GET /health/live" "$rps_live" "$p50_live" "$p99_live" "$(errs "$non2xx_live" "$serr_live")"
echo "ratio bookd/nginx (chapter): $ratio   (target >= 0.70, p99 < 5 ms: $verdict)"
echo
row "bookd GET chapter, ${LOGIN_SECS} s alone" "$rps_quiet" "$p50_quiet" "$p99_quiet" "$(errs "$non2xx_quiet" "$serr_quiet")"
row "  same, during a login burst" "$rps_burst" "$p50_burst" "$p99_burst" "$(errs "$non2xx_burst" "$serr_burst")"
echo "login burst: $LOGIN_CLIENTS clients, ${login_ok:-0} logins in ${login_secs:-?} s = ${login_rate:-?} logins/s (p50 ${login_p50:-?} ms, p99 ${login_p99:-?} ms; BOOKD_HASH_THREADS=$HASH_THREADS)"
echo "(errors: n = \"Non-2xx or 3xx responses\", s = wrk socket errors; raw wrk output in bench/out/)"

problems=""
[ "$bookd_alive" = true ] || problems="$problems; bookd died during the run (log: bench/out/bookd.log)"
[ "$bookd_alive" = false ] || [ "$bookd_same" = true ] || problems="$problems; bookd's chapter response changed after the load"
check_bookd() { # what non2xx socket_errors warmup_errors
	[ "$2" -eq 0 ] || problems="$problems; $2 non-2xx/3xx responses from bookd ($1)"
	[ "$3" -eq 0 ] || problems="$problems; $3 socket errors against bookd ($1)"
	[ "$4" -eq 0 ] || problems="$problems; $4 errors in the warm-up run against bookd ($1)"
}
check_bookd "GET chapter" "$non2xx_chapter" "$serr_chapter" "$warm_chapter"
check_bookd "GET /health/live" "$non2xx_live" "$serr_live" "$warm_live"
check_bookd "GET chapter, alone" "$non2xx_quiet" "$serr_quiet" 0
check_bookd "GET chapter, during the login burst" "$non2xx_burst" "$serr_burst" 0
[ "$lrc" -eq 0 ] || problems="$problems; the login burst got answers other than 200 (bench/out/latest.json: login_burst)"
[ "$non2xx_nginx" -eq 0 ] && [ "$serr_nginx" -eq 0 ] || problems="$problems; nginx had errors, its figures are suspect"
[ "$startup_log_lines" -eq 0 ] || echo "note: bookd logged $startup_log_lines warn/error line(s) at startup (bench/out/bookd.log)"
[ "$bookd_warn_lines" -eq 0 ] || echo "note: bookd logged $bookd_warn_lines warn/error line(s) under load (bench/out/bookd.log)"

valid=true
[ -z "$problems" ] || valid=false

json_target() { # key label url_path rps p50 p99 requests non2xx socket_errors
	printf '    "%s": {"label": "%s", "url_path": "%s", "requests_per_sec": %s, "p50_ms": %s, "p99_ms": %s, "requests": %s, "non_2xx_3xx": %s, "socket_errors": %s}' "$@"
}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
	echo "{"
	echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
	echo "  \"commit\": \"$commit\","
	echo "  \"wrk\": {\"threads\": $THREADS, \"connections\": $CONNS, \"duration\": \"$DURATION\", \"warmup\": \"$WARMUP\"},"
	echo "  \"cores\": $(nproc 2>/dev/null || echo 0),"
	echo "  \"bookd\": {\"log_level\": \"warn\", \"threads\": $BOOKD_THREADS_USED, \"warn_lines_startup\": $startup_log_lines, \"warn_lines_under_load\": $bookd_warn_lines, \"alive_after\": $bookd_alive, \"same_bytes_after\": $bookd_same},"
	echo "  \"nginx\": {\"worker_processes\": 2, \"sendfile\": true, \"tcp_nopush\": \"$NOPUSH\"},"
	echo "  \"chapter\": {\"markdown_bytes\": $md_bytes, \"response_bytes\": $body_bytes},"
	echo "  \"targets\": {"
	json_target bookd_chapter "bookd GET chapter ($body_kb KB)" "/api/v1/books/{id}/chapters/1" \
		"$rps_chapter" "$p50_chapter" "$p99_chapter" "$reqs_chapter" "$non2xx_chapter" "$serr_chapter"
	echo ","
	json_target nginx_static "nginx same bytes (static)" "/chapter.json" \
		"$rps_nginx" "$p50_nginx" "$p99_nginx" "$reqs_nginx" "$non2xx_nginx" "$serr_nginx"
	echo ","
	json_target bookd_health_live "bookd GET /health/live" "/health/live" \
		"$rps_live" "$p50_live" "$p99_live" "$reqs_live" "$non2xx_live" "$serr_live"
	echo
	echo "  },"
	echo "  \"login_burst\": {"
	echo "    \"duration_s\": $LOGIN_SECS, \"hash_threads\": $HASH_THREADS,"
	echo "    \"chapter_alone\": {\"requests_per_sec\": $rps_quiet, \"p50_ms\": $p50_quiet, \"p99_ms\": $p99_quiet, \"non_2xx_3xx\": $non2xx_quiet, \"socket_errors\": $serr_quiet},"
	echo "    \"chapter_during_burst\": {\"requests_per_sec\": $rps_burst, \"p50_ms\": $p50_burst, \"p99_ms\": $p99_burst, \"non_2xx_3xx\": $non2xx_burst, \"socket_errors\": $serr_burst},"
	echo "    \"logins\": $logins_json"
	echo "  },"
	echo "  \"ratio_bookd_nginx_chapter\": $ratio,"
	echo "  \"target\": {\"min_ratio\": 0.70, \"max_p99_ms\": 5, \"ratio_ok\": $ratio_ok, \"p99_ok\": $p99_ok},"
	echo "  \"valid\": $valid,"
	echo "  \"problems\": \"$(printf '%s' "${problems#; }" | sed 's/["\\]/\\&/g')\""
	echo "}"
} >"$OUT/latest.json"
echo "written: bench/out/latest.json"

if [ -n "$problems" ]; then
	echo "bench: INVALID RUN: ${problems#; }" >&2
fi

# ---- 6. the job queue: bench/jobs.sh ------------------------------------------
#
# With this script's servers stopped, so that they do not share the cores.

if [ "${BENCH_SKIP_JOBS:-0}" != 1 ]; then
	stop_pid "$BOOKD_PID" TERM 10
	BOOKD_PID=""
	stop_pid "$NGINX_PID" TERM 5
	NGINX_PID=""
	echo
	jrc=0
	BENCH_PYTHON=$PYTHON BOOKD_BIN=$BIN sh bench/jobs.sh || jrc=$?
	[ "$jrc" -eq 0 ] || problems="$problems; bench/jobs.sh failed (exit $jrc)"
fi

# ---- 6b. the static site: bench/site.sh (bookd --site next to nginx) ----------

if [ "${BENCH_SKIP_SITE:-0}" != 1 ]; then
	stop_pid "$BOOKD_PID" TERM 10
	BOOKD_PID=""
	stop_pid "$NGINX_PID" TERM 5
	NGINX_PID=""
	echo
	src=0
	BOOKD_BIN=$BIN sh bench/site.sh || src=$?
	[ "$src" -eq 0 ] || problems="$problems; bench/site.sh failed (exit $src)"
fi

# ---- 7. the rest, one after another (each starts and stops its own servers) ---
#
# BENCH_ONLY_HTTP=1 stops here.

if [ "${BENCH_ONLY_HTTP:-0}" != 1 ]; then
	stop_pid "$BOOKD_PID" TERM 10
	BOOKD_PID=""
	stop_pid "$NGINX_PID" TERM 5
	NGINX_PID=""
	for b in backends.sh search.sh chat.sh tts.sh process.sh reading.sh; do
		echo
		echo "== bench/$b"
		brc=0
		BENCH_PYTHON=$PYTHON BOOKD_BIN=$BIN sh "bench/$b" || brc=$?
		[ "$brc" -eq 0 ] || problems="$problems; bench/$b failed (exit $brc)"
	done
	echo
	echo "== bench/retrieval/eval.py"
	$PYTHON bench/retrieval/eval.py || problems="$problems; bench/retrieval/eval.py failed"
fi
[ -z "$problems" ] || exit 1
