#!/bin/sh
# bench/site.sh (run by `make bench`, or alone): a hashed JavaScript asset of a
# static site, as Docusaurus emits it (assets/js/main.<hash>.js), served by
# `bookd serve --site DIR` and by nginx from the same directory, with wrk one
# after the other; prints both and the ratio (target: bookd >= 0.8x nginx).
# Both send the file with sendfile and the same caching headers.
#
# Environment:
#   BENCH_DURATION     wrk duration of each measured run (default 10s)
#   BENCH_WARMUP       wrk warm-up before each (default 2s)
#   BENCH_CONNECTIONS  wrk connections (default 64)
#   BENCH_THREADS      wrk threads (default 2)
#   BENCH_SITE_BYTES   size of the asset (default 65536)
#   BENCH_NGINX_TCP_NOPUSH  on (default) or off, as in bench/run.sh
#   BOOKD_BIN          bookd binary (default build/bookd)
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_NAME="bench/site.sh"
. "$ROOT/bench/lib.sh"

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
BYTES=${BENCH_SITE_BYTES:-65536}
NOPUSH=${BENCH_NGINX_TCP_NOPUSH:-on}
BIN=${BOOKD_BIN:-build/bookd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
ASSET=assets/js/main.3f2a1b9c.js

die() {
	echo "$BENCH_NAME: $*" >&2
	exit 1
}

case $BYTES in '' | *[!0-9]*) die "BENCH_SITE_BYTES must be a whole number" ;; esac
for tool in wrk nginx curl awk cmp; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run \`make deps\`)"
done
[ -x "$BIN" ] || die "$BIN not found (run \`make build/bookd\`)"

tmp=""
BOOKD_PID=""
NGINX_PID=""
WRK_PID=""
cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	stop_pid "$WRK_PID" INT 2
	stop_pid "$BOOKD_PID" TERM 10
	stop_pid "$NGINX_PID" TERM 5
	[ -n "$tmp" ] && rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bookd-site-bench.XXXXXX")
chmod 755 "$tmp" # nginx workers run as nobody when we are root
mkdir -p "$tmp/data" "$tmp/site/assets/js" "$tmp/nginx-temp"
chmod 700 "$tmp/data"
# A deterministic JavaScript-looking file of BYTES bytes.
awk -v n="$BYTES" 'BEGIN { s = ""; i = 0
	while (length(s) < n) { s = s sprintf("function f%d(a){return a*%d+\"chunk-%d\"}\n", i, i, i); i++ }
	printf "%s", substr(s, 1, n) }' >"$tmp/site/$ASSET"
echo '<!doctype html><title>bench</title>' >"$tmp/site/index.html"
chmod -R a+rX "$tmp/site"
seed=$((($$ + 2500) % 5000))

tries=0
while :; do
	next_port 0
	BPORT=$PORT
	(cd "$tmp" && exec env BOOKD_DATA_DIR="$tmp/data" DATABASE_URL= BOOKD_HOST=127.0.0.1 \
		BOOKD_PORT="$BPORT" BOOKD_LOG_LEVEL=warn BOOKD_SHUTDOWN_TIMEOUT=5 BOOKD_WORKERS=0 \
		"$BIN" serve --site "$tmp/site") >"$tmp/bookd.log" 2>&1 &
	BOOKD_PID=$!
	wait_http "http://127.0.0.1:$BPORT/health/live" "$BOOKD_PID" 10 && break
	stop_pid "$BOOKD_PID" TERM 5
	BOOKD_PID=""
	tries=$((tries + 1))
	[ "$tries" -lt 3 ] || {
		cat "$tmp/bookd.log" >&2
		die "bookd did not become live (3 tries)"
	}
done

start_nginx "$tmp" "types { text/javascript js; text/html html; }
    default_type application/octet-stream;" "root $tmp/site;
        location /assets/ {
            add_header Cache-Control \"public, max-age=31536000, immutable\";
            add_header X-Content-Type-Options nosniff;
        }" "$ASSET"

for url in "http://127.0.0.1:$BPORT/$ASSET" "http://127.0.0.1:$NPORT/$ASSET"; do
	curl -s "$url" | cmp -s - "$tmp/site/$ASSET" || die "$url does not serve the file's bytes"
done
curl -sI "http://127.0.0.1:$BPORT/$ASSET" | grep -qi '^cache-control: .*immutable' ||
	die "bookd does not mark the hashed asset immutable"

# Prints: req/s p50_ms p99_ms non2xx+socket_errors, from wrk's output.
parse_wrk() {
	awk '
		function ms(v,  n, u) {
			n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
			if (u == "us") return n / 1000
			if (u == "ms") return n
			if (u == "s") return n * 1000
			return -1
		}
		/^Requests\/sec:/ { rps = $2 }
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		/Non-2xx or 3xx responses:/ { bad += $NF }
		/Socket errors:/ { gsub(/,/, ""); bad += $4 + $6 + $8 + $10 }
		END {
			if (rps == "") exit 1
			printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad
		}
	' "$1"
}

measure() { # name url: sets RPS P50 P99 BAD
	for run in warmup measured; do
		d=$DURATION
		[ "$run" = measured ] || d=$WARMUP
		wrk -t "$THREADS" -c "$CONNS" -d "$d" --latency "$2" >"$tmp/wrk-$1.txt" 2>&1 &
		WRK_PID=$!
		wait "$WRK_PID" || die "wrk failed on $2: $(cat "$tmp/wrk-$1.txt")"
		WRK_PID=""
	done
	kill -0 "$BOOKD_PID" 2>/dev/null || die "bookd died under load: $(tail -n 20 "$tmp/bookd.log")"
	res=$(parse_wrk "$tmp/wrk-$1.txt") || die "cannot parse wrk output: $(cat "$tmp/wrk-$1.txt")"
	read -r RPS P50 P99 BAD <<EOF
$res
EOF
}

echo "static site: GET /$ASSET ($BYTES bytes), wrk -t$THREADS -c$CONNS -d$DURATION --latency (after $WARMUP warm-up), $(nproc 2>/dev/null || echo ?) cores shared"
echo "  bookd serve --site (sendfile), port $BPORT; nginx $(nginx -v 2>&1 | sed 's/^nginx version: //'), worker_processes 2, sendfile on, tcp_nopush $NOPUSH, port $NPORT"
measure bookd "http://127.0.0.1:$BPORT/$ASSET"
b_rps=$RPS b_p50=$P50 b_p99=$P99 b_bad=$BAD
measure nginx "http://127.0.0.1:$NPORT/$ASSET"
n_rps=$RPS n_p50=$P50 n_p99=$P99 n_bad=$BAD
printf '  %-6s %10s req/s   p50 %6s ms   p99 %6s ms   errors %s\n' bookd "$b_rps" "$b_p50" "$b_p99" "$b_bad"
printf '  %-6s %10s req/s   p50 %6s ms   p99 %6s ms   errors %s\n' nginx "$n_rps" "$n_p50" "$n_p99" "$n_bad"
ratio=$(awk -v a="$b_rps" -v b="$n_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8 ? "met" : "NOT met") }')
echo "  ratio bookd/nginx: $ratio   (target >= 0.80: $verdict)"
[ "$b_bad" -eq 0 ] && [ "$n_bad" -eq 0 ] || die "errors during the runs: the figures are suspect"
