#!/bin/sh
# Search performance of bookd: (a) how fast `bookd import` and `bookd reindex`
# (chunking + FTS5 indexing, no embeddings) get through a ~50 MB Markdown
# corpus; (b) keyword search latency and throughput under wrk, on that corpus
# and on the sample book; (c) the in-memory vector scan alone
# (bench/vindex_bench.c, 100,000 x 768-d vectors). Writes bench/out/search.json.
# See bench/retrieval/README.md. POSIX sh: `sh bench/search.sh`.
#
# Environment:
#   BENCH_CORPUS_MB         size of the generated corpus in MB (default 50)
#   BENCH_SEARCH_DURATION   wrk duration of each measured run (default 10s)
#   BENCH_SEARCH_WARMUP     wrk warm-up before the first run per server (default 2s)
#   BENCH_VINDEX_ARGS       arguments of vindex_bench (default "100000 768 200 8 2")
#   BOOKD_CHUNK_TOKENS      chunk size for the reindex (default bookd's, 256)
#   BOOKD_BIN               bookd binary (default build/bookd)
#   CC                      C compiler for vindex_bench (default cc)
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_NAME="bench/search"
. "$ROOT/bench/lib.sh"

CORPUS_MB=${BENCH_CORPUS_MB:-50}
DURATION=${BENCH_SEARCH_DURATION:-10s}
WARMUP=${BENCH_SEARCH_WARMUP:-2s}
VINDEX_ARGS=${BENCH_VINDEX_ARGS:-100000 768 200 8 2}
BIN=${BOOKD_BIN:-build/bookd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
CC=${CC:-cc}
OUT=$ROOT/bench/out
TARGET_MBS=5
TARGET_KW_P99_MS=5
TARGET_VEC_P99_MS=15

die() {
	echo "bench/search: $*" >&2
	exit 1
}

case $CORPUS_MB in '' | *[!0-9]*) die "BENCH_CORPUS_MB must be a whole number" ;; esac
[ "$CORPUS_MB" -ge 1 ] || die "BENCH_CORPUS_MB must be at least 1"
for tool in wrk curl awk "$CC"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run \`make deps\`)"
done
[ -x "$BIN" ] || die "$BIN not found (run \`make build/bookd\`)"
for o in build/obj/services/vindex.o build/obj/core/mem.o; do
	[ -f "$o" ] || die "$o not found (run \`make build/bookd\`)"
done

# ---- cleanup: nothing may outlive this script ----------------------------------

tmp=""
BOOKD_PID=""
WRK_PID=""
VB_PID=""


cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	stop_pid "$WRK_PID" INT 2
	stop_pid "$VB_PID" TERM 2
	stop_pid "$BOOKD_PID" TERM 10
	[ -n "$tmp" ] && rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bookd-search-bench.XXXXXX")
mkdir -p "$tmp/corpus" "$tmp/data" "$tmp/sample-data" "$OUT"
chmod 700 "$tmp/data" "$tmp/sample-data"
rm -f "$OUT/search.json" "$OUT"/wrk-search-*.txt "$OUT/search-bookd.log" # no stale figures

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "? ? ?"; }
ncores=$(nproc 2>/dev/null || echo 0)
load_start=$(loadavg)

# Runs bookd with the environment of this bench only (no .env: the working
# directory is the temp dir). $1 = data directory; the rest = arguments.
bookd_in() {
	d=$1
	shift
	(cd "$tmp" && env BOOKD_DATA_DIR="$d" DATABASE_URL= BOOKD_EMBED_URL= BOOKD_LOG_LEVEL=warn \
		${BOOKD_CHUNK_TOKENS:+BOOKD_CHUNK_TOKENS=$BOOKD_CHUNK_TOKENS} "$BIN" "$@")
}

# `bookd ARGS` on a data directory, timed: sets T_WALL and T_CPU (user + sys
# of bookd, from /usr/bin/time when there is one, else "null").
timed_bookd() { # output-file data-dir args...
	o=$1 d=$2
	shift 2
	set -- env BOOKD_DATA_DIR="$d" DATABASE_URL= BOOKD_EMBED_URL= BOOKD_LOG_LEVEL=warn \
		${BOOKD_CHUNK_TOKENS:+BOOKD_CHUNK_TOKENS=$BOOKD_CHUNK_TOKENS} "$BIN" "$@"
	if [ -x /usr/bin/time ]; then
		(cd "$tmp" && /usr/bin/time -f '%e %U %S' -o "$tmp/time.txt" "$@") >"$o" || die "$* failed"
		read -r T_WALL tu ts <"$tmp/time.txt"
		T_CPU=$(awk -v u="$tu" -v s="$ts" 'BEGIN { printf "%.2f", u + s }')
	else
		t0=$(now)
		(cd "$tmp" && "$@") >"$o" || die "$* failed"
		T_WALL=$(elapsed "$t0" "$(now)")
		T_CPU=null
	fi
}

mbs() { # bytes seconds: MB/s (null when seconds is null)
	[ "$2" != null ] || {
		echo null
		return
	}
	awk -v b="$1" -v s="$2" 'BEGIN { printf "%.2f", (s > 0 ? b / 1e6 / s : 0) }'
}

# ---- (a) the corpus -------------------------------------------------------------
#
# BENCH_CORPUS_MB of Markdown in files of ~100 KB: one H1 per file, then H2
# sections (a third with an H3), each with paragraphs of 3-7 sentences, bullet
# lists, fenced code and tables. Words: 42 % from 80 common English words, the
# rest from 20,000 pseudo-words built from syllables, drawn with a skewed
# (Zipf-like) distribution. A Park-Miller generator with a fixed seed (exact in
# awk's doubles): the same corpus on every run and every awk. It also writes
# the wrk queries: 2-3 mid-frequency words ("keywords"), and natural questions
# made of common words around three of them ("questions").

cat >"$tmp/gen.awk" <<'EOF'
function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
function ri(n) { return int(rnd() * n) }
function word(   u) {
	if (rnd() < 0.42) return common[ri(ncommon)]
	u = rnd(); return vocab[int(nv * u * u * u)]
}
function cap(w) { return toupper(substr(w, 1, 1)) substr(w, 2) }
function sentence(   n, s, i) {
	n = 6 + ri(17); s = cap(word())
	for (i = 1; i < n; i++) s = s (ri(14) == 0 ? ", " : " ") word()
	return s (ri(9) == 0 ? "?" : ".")
}
function title(   n, s, i) {
	n = 2 + ri(4); s = cap(vocab[int(nv * rnd() * rnd())])
	for (i = 1; i < n; i++) s = s " " vocab[int(nv * rnd() * rnd())]
	return s
}
function out(s) { print s > file; bytes += length(s) + 1 }
function paragraph(   n, s, i) {
	n = 3 + ri(5); s = sentence()
	for (i = 1; i < n; i++) s = s " " sentence()
	out(s); out("")
}
function block(   r, i, n) {
	r = rnd()
	if (r < 0.10) { n = 3 + ri(4); for (i = 0; i < n; i++) out("- " sentence()); out(""); return }
	if (r < 0.15) {
		out("```"); n = 5 + ri(10)
		for (i = 0; i < n; i++) out(sprintf("%" (4 * ri(3) + 1) "s%s(%s, %d);", " ", vocab[ri(400)], vocab[ri(nv)], ri(1000)))
		out("```"); out(""); return
	}
	if (r < 0.19) {
		out("| " cap(word()) " | " cap(word()) " | " cap(word()) " |"); out("|---|---|---|")
		n = 3 + ri(4)
		for (i = 0; i < n; i++) out("| " word() " " word() " | " ri(10000) " | " word() " " word() " " word() " |")
		out(""); return
	}
	paragraph()
}
BEGIN {
	seed = 20240917
	ncommon = split("the of and to a in is that for it as with was on be by this are or from at an which not have has but their its can also more one these other they were all when may such between into than been only there two most over after would some through both each while under where those how what first many new used", cw, " ")
	for (i = 1; i <= ncommon; i++) common[i - 1] = cw[i]
	no = split("b c d f g h k l m n p r s t v w z br cr dr fl gr pl st tr sh ch th", on, " ")
	nvw = split("a e i o u ai ea ou io ar er or", vw, " ")
	nco = split("_ _ _ n r s l t m nd st rk", co, " ")
	nv = 20000
	for (i = 0; i < nv; i++) {
		k = 1 + ri(3) + (ri(4) == 0); w = ""
		for (j = 0; j < k; j++) { c = co[1 + ri(nco)]; if (c == "_") c = ""; w = w on[1 + ri(no)] vw[1 + ri(nvw)] c }
		vocab[i] = w
	}
	target = mb * 1000000; total = 0; nfile = 0
	while (total < target) {
		nfile++; file = sprintf("%s/part-%04d.md", dir, nfile); bytes = 0
		out("# " title()); out("")
		paragraph()
		while (bytes < 100000) {
			out("## " title()); out("")
			nb = 2 + ri(5); for (b = 0; b < nb; b++) block()
			if (ri(3) == 0) { out("### " title()); out(""); nb = 1 + ri(3); for (b = 0; b < nb; b++) block() }
		}
		close(file); total += bytes
	}
	for (q = 0; q < 8; q++) {
		print vocab[100 + ri(3000)] "+" vocab[100 + ri(3000)] (q % 2 ? "+" vocab[100 + ri(3000)] : "") > kw
		print "how+does+the+" vocab[100 + ri(3000)] "+affect+" vocab[100 + ri(3000)] "+in+" vocab[100 + ri(3000)] > qs
	}
	printf "%d %d\n", nfile, total
}
EOF

# The sample book, for the same measurement on a small book: questions a
# reader would type (URL-encoded).
cat >"$tmp/queries-sample.txt" <<'EOF'
how+does+a+humanoid+robot+keep+its+balance
what+is+the+zero+moment+point
why+put+a+spring+in+series+with+the+motor
how+do+robots+learn+from+human+demonstrations
what+is+domain+randomization
which+sensor+tells+the+robot+which+way+is+down
how+does+model+predictive+control+work
what+safety+standards+apply+to+collaborative+robots
EOF

echo "bookd search bench: $ncores cores, load average at start $load_start (1/5/15 min)"
printf '  (a) generating a %s MB Markdown corpus ...\n' "$CORPUS_MB" >&2
t0=$(now)
gen_out=$(LC_ALL=C awk -v mb="$CORPUS_MB" -v dir="$tmp/corpus" -v kw="$tmp/queries-keywords.txt" \
	-v qs="$tmp/queries-questions.txt" -f "$tmp/gen.awk")
corpus_files=${gen_out%% *}
gen_s=$(elapsed "$t0" "$(now)")
corpus_bytes=$(cat "$tmp"/corpus/*.md | wc -c | tr -d ' ')
[ "$corpus_bytes" -ge $((CORPUS_MB * 1000000)) ] || die "the corpus has $corpus_bytes bytes"

printf '  (a) bookd import (%s files) ...\n' "$corpus_files" >&2
timed_bookd "$tmp/import.json" "$tmp/data" import "$tmp/corpus" --title "Search Bench Corpus"
import_wall=$T_WALL import_cpu=$T_CPU
BOOK=$(sed -n 's/.*"book_id" *: *"\([^"]*\)".*/\1/p' "$tmp/import.json")
nchap=$(sed -n 's/.*"chapters" *: *\([0-9]*\).*/\1/p' "$tmp/import.json")
[ -n "$BOOK" ] || die "import printed no book_id: $(cat "$tmp/import.json")"
[ "$nchap" = "$corpus_files" ] || die "import made ${nchap:-?} chapters of $corpus_files files"

printf '  (a) bookd reindex (chunking + keyword index, no embeddings) ...\n' >&2
timed_bookd "$tmp/reindex.json" "$tmp/data" reindex
reindex_wall=$T_WALL reindex_cpu=$T_CPU
nchunks=$(sed -n 's/.*"chunks" *: *\([0-9]*\).*/\1/p' "$tmp/reindex.json")
added=$(sed -n 's/.*"added" *: *\([0-9]*\).*/\1/p' "$tmp/reindex.json")
if [ -z "$nchunks" ] || [ "$nchunks" -eq 0 ] || [ "$added" != "$nchunks" ]; then
	die "reindex: $(cat "$tmp/reindex.json")"
fi

# The same again: nothing changed, so every chunk is matched by its content
# hash and nothing is written: the cost of reading + chunking alone.
printf '  (a) bookd reindex again (nothing changed) ...\n' >&2
timed_bookd "$tmp/reindex2.json" "$tmp/data" reindex
again_wall=$T_WALL again_cpu=$T_CPU
unchanged=$(sed -n 's/.*"unchanged" *: *\([0-9]*\).*/\1/p' "$tmp/reindex2.json")
[ "$unchanged" = "$nchunks" ] || die "second reindex: $(cat "$tmp/reindex2.json")"
db_bytes=$(cat "$tmp/data"/bookd.db* | wc -c | tr -d ' ')

import_mbs=$(mbs "$corpus_bytes" "$import_wall")
reindex_mbs=$(mbs "$corpus_bytes" "$reindex_wall")
reindex_mbs_cpu=$(mbs "$corpus_bytes" "$reindex_cpu")
again_mbs=$(mbs "$corpus_bytes" "$again_wall")
both_mbs=$(mbs "$corpus_bytes" "$(awk -v a="$import_wall" -v b="$reindex_wall" 'BEGIN { print a + b }')")
index_ok=$(awk -v r="$reindex_mbs" -v t="$TARGET_MBS" 'BEGIN { print ((r >= t) ? "true" : "false") }')

# The sample book, in its own data directory.
bookd_in "$tmp/sample-data" import "$ROOT/sample/physical-ai" >"$tmp/sample-import.json" || die "cannot import the sample book"
bookd_in "$tmp/sample-data" reindex >"$tmp/sample-reindex.json" || die "cannot index the sample book"
sample_chunks=$(sed -n 's/.*"chunks" *: *\([0-9]*\).*/\1/p' "$tmp/sample-reindex.json")

# ---- (b) keyword search under wrk ---------------------------------------------------

seed=$(($$ % 5000))


# BOOKD_WORKERS=0: the book.index jobs queued by `bookd import` stay queued
# (the reindex above did their work), so nothing runs next to the load.
start_bookd() { # data-dir: sets BOOKD_PID, BOOKD
	tries=0
	while :; do
		next_port
		(cd "$tmp" && exec env BOOKD_DATA_DIR="$1" DATABASE_URL= BOOKD_EMBED_URL= BOOKD_HOST=127.0.0.1 \
			BOOKD_PORT="$PORT" BOOKD_LOG_LEVEL=warn BOOKD_WORKERS=0 BOOKD_SHUTDOWN_TIMEOUT=5 \
			BOOKD_JWT_SECRET=search-bench-secret-not-used-for-anything "$BIN" serve) >>"$tmp/bookd.log" 2>&1 &
		BOOKD_PID=$!
		BOOKD=http://127.0.0.1:$PORT
		wait_http "$BOOKD/health/live" "$BOOKD_PID" 10 && return 0
		stop_pid "$BOOKD_PID" TERM 5
		BOOKD_PID=""
		tries=$((tries + 1))
		if [ "$tries" -ge 3 ]; then
			cat "$tmp/bookd.log" >&2
			die "bookd did not become live on 127.0.0.1 (3 tries)"
		fi
	done
}

stop_bookd() {
	st=0
	kill -0 "$BOOKD_PID" 2>/dev/null || die "bookd died during the load (log: bench/out/search-bookd.log)"
	kill -TERM "$BOOKD_PID"
	wait "$BOOKD_PID" || st=$?
	BOOKD_PID=""
	[ "$st" -eq 0 ] || die "bookd exited with status $st on SIGTERM"
}

lua_script() { # queries-file book-id script
	{
		echo "local paths = {"
		while read -r q; do
			[ -n "$q" ] && echo "  \"/api/v1/search?q=$q&mode=keyword&limit=10&book_id=$2\","
		done <"$1"
		echo "}"
		echo "local i = 0"
		echo "request = function()"
		echo "  i = i % #paths + 1"
		echo "  return wrk.format(\"GET\", paths[i])"
		echo "end"
	} >"$3"
}

check_queries() { # queries-file book-id: each answers 200 with results
	while read -r q; do
		[ -n "$q" ] || continue
		code=$(curl -s -o "$tmp/q.json" -w '%{http_code}' "$BOOKD/api/v1/search?q=$q&mode=keyword&limit=10&book_id=$2")
		[ "$code" = 200 ] || die "search for $q answered $code: $(head -c 300 "$tmp/q.json")"
		grep -q '"chunk_id"' "$tmp/q.json" || die "search for $q found nothing"
	done <"$1"
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

# bookd's CPU time so far (user + sys, in clock ticks), from /proc: with
# the requests of a run it gives the server's CPU time per search, which the
# other work on a shared machine does not inflate the way it does latency.
TICKS=$(getconf CLK_TCK 2>/dev/null || echo 100)
proc_cpu() {
	awk '{ print $14 + $15 }' "/proc/$BOOKD_PID/stat" 2>/dev/null || echo 0
}

problems=""
json_runs=""
p99_kw_c1=""
p99_sample_c1=""
# wrk_run name connections script duration: appends to json_runs, prints a row
wrk_run() {
	threads=1
	[ "$2" -eq 1 ] || threads=2
	WRK_PID=""
	cpu0=$(proc_cpu)
	# --timeout 10s: a slow answer is measured, not counted as a socket error
	wrk -t "$threads" -c "$2" -d "$4" --timeout 10s --latency -s "$3" "$BOOKD" >"$tmp/wrk-$1.txt" 2>&1 &
	WRK_PID=$!
	wrc=0
	wait "$WRK_PID" || wrc=$?
	WRK_PID=""
	cp "$tmp/wrk-$1.txt" "$OUT/wrk-search-$1.txt"
	[ "$wrc" -eq 0 ] || die "wrk failed (exit $wrc): $(cat "$tmp/wrk-$1.txt")"
	kill -0 "$BOOKD_PID" 2>/dev/null || die "bookd died during wrk run $1"
	cpu1=$(proc_cpu)
	res=$(parse_wrk "$tmp/wrk-$1.txt") || die "cannot parse wrk output: $(cat "$tmp/wrk-$1.txt")"
	# shellcheck disable=SC2086 # res: six numbers
	set -- "$1" "$2" $res
	[ "$7" -eq 0 ] && [ "$8" -eq 0 ] || problems="$problems; $1: $7 non-2xx responses, $8 socket errors"
	case $1 in *warmup) return 0 ;; esac
	cpu_ms=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$TICKS" -v n="$6" 'BEGIN { printf "%.3f", (n > 0 ? (b - a) * 1000 / t / n : 0) }')
	printf '  %-30s %4s %11s %9s %9s %11s %7s\n' "$1" "$2" "$3" "$4" "$5" "$cpu_ms" "$(($7 + $8))"
	[ -z "$json_runs" ] || json_runs="$json_runs,"
	json_runs="$json_runs
    \"$1\": {\"connections\": $2, \"requests_per_sec\": $3, \"p50_ms\": $4, \"p99_ms\": $5, \"requests\": $6, \"non_2xx_3xx\": $7, \"socket_errors\": $8, \"server_cpu_ms_per_request\": $cpu_ms}"
	case $1 in
	corpus-keywords-c1) p99_kw_c1=$5 ;;
	sample-questions-c1) p99_sample_c1=$5 ;;
	esac
}

echo
echo "(a) indexing, no embeddings: $corpus_files files, $corpus_bytes bytes of Markdown -> $nchunks chunks (sample book: $sample_chunks)"
printf '  %-44s %8s %8s %8s\n' "step" "wall s" "cpu s" "MB/s"
printf '  %-44s %8s %8s %8s\n' "generate the corpus (awk)" "$gen_s" "-" "-"
printf '  %-44s %8s %8s %8s\n' "bookd import (read, parse, store)" "$import_wall" "$import_cpu" "$import_mbs"
printf '  %-44s %8s %8s %8s   (%s MB/s per CPU second)\n' "bookd reindex (chunk + FTS5 index)" "$reindex_wall" "$reindex_cpu" "$reindex_mbs" "$reindex_mbs_cpu"
printf '  %-44s %8s %8s %8s\n' "bookd reindex again (nothing changed)" "$again_wall" "$again_cpu" "$again_mbs"
printf '  import + reindex: %s MB/s; database after: %s bytes; target reindex >= %s MB/s: %s\n' \
	"$both_mbs" "$db_bytes" "$TARGET_MBS" "$([ "$index_ok" = true ] && echo met || echo NOT met)"
echo
echo "(b) keyword search: GET /api/v1/search?q=…&mode=keyword&limit=10&book_id=…, 8 queries in turn, wrk $DURATION per run"
printf '  %-30s %4s %11s %9s %9s %11s %7s\n' "run" "conn" "req/s" "p50 ms" "p99 ms" "cpu ms/req" "errors"

start_bookd "$tmp/data"
lua_script "$tmp/queries-keywords.txt" "$BOOK" "$tmp/kw.lua"
lua_script "$tmp/queries-questions.txt" "$BOOK" "$tmp/qs.lua"
check_queries "$tmp/queries-keywords.txt" "$BOOK"
check_queries "$tmp/queries-questions.txt" "$BOOK"
wrk_run corpus-warmup 1 "$tmp/kw.lua" "$WARMUP"
wrk_run corpus-keywords-c1 1 "$tmp/kw.lua" "$DURATION"
wrk_run corpus-keywords-c8 8 "$tmp/kw.lua" "$DURATION"
wrk_run corpus-questions-c1 1 "$tmp/qs.lua" "$DURATION"
wrk_run corpus-questions-c8 8 "$tmp/qs.lua" "$DURATION"
stop_bookd

SAMPLE_BOOK=$(sed -n 's/.*"book_id" *: *"\([^"]*\)".*/\1/p' "$tmp/sample-import.json")
start_bookd "$tmp/sample-data"
lua_script "$tmp/queries-sample.txt" "$SAMPLE_BOOK" "$tmp/sample.lua"
check_queries "$tmp/queries-sample.txt" "$SAMPLE_BOOK"
wrk_run sample-warmup 1 "$tmp/sample.lua" "$WARMUP"
wrk_run sample-questions-c1 1 "$tmp/sample.lua" "$DURATION"
wrk_run sample-questions-c8 8 "$tmp/sample.lua" "$DURATION"
stop_bookd
cp "$tmp/bookd.log" "$OUT/search-bookd.log"
kw_ok=$(awk -v p="$p99_kw_c1" -v q="$p99_sample_c1" -v t="$TARGET_KW_P99_MS" \
	'BEGIN { print ((p < t && q < t) ? "true" : "false") }')
echo "  target: single-query p99 < $TARGET_KW_P99_MS ms (corpus keywords and sample questions, 1 connection): $([ "$kw_ok" = true ] && echo met || echo NOT met)"

# ---- (c) the vector scan ------------------------------------------------------------

echo
echo "(c) vector scan: bench/vindex_bench.c on build/obj/services/vindex.o (args: $VINDEX_ARGS)"
"$CC" -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Isrc -o "$tmp/vindex_bench" bench/vindex_bench.c \
	build/obj/services/vindex.o build/obj/core/mem.o -lpthread -lm || die "cannot build bench/vindex_bench.c"
# shellcheck disable=SC2086
"$tmp/vindex_bench" $VINDEX_ARGS >"$tmp/vindex.json" 2>"$tmp/vindex.txt" &
VB_PID=$!
vrc=0
wait "$VB_PID" || vrc=$?
VB_PID=""
sed 's/^/  /' "$tmp/vindex.txt"
[ "$vrc" -eq 0 ] || die "vindex_bench failed (exit $vrc)"
vindex_json=$(cat "$tmp/vindex.json")
vec_p99=$(printf '%s\n' "$vindex_json" | sed -n 's/.*"top10": {"p50_ms": [0-9.]*, "p99_ms": \([0-9.]*\).*/\1/p')
vec_cpu_p99=$(printf '%s\n' "$vindex_json" | sed -n 's/.*"top10": {[^}]*"cpu_p99_ms": \([0-9.]*\).*/\1/p')
vec_ok=$(awk -v p="$vec_p99" -v t="$TARGET_VEC_P99_MS" 'BEGIN { print ((p + 0 < t) ? "true" : "false") }')
echo "  target: top-10 p99 < $TARGET_VEC_P99_MS ms: $([ "$vec_ok" = true ] && echo met || echo NOT met) (wall $vec_p99 ms, CPU $vec_cpu_p99 ms)"

# ---- report ---------------------------------------------------------------------------

load_end=$(loadavg)
echo
echo "load average at the end: $load_end (1/5/15 min) on $ncores cores"
busy=$(awk -v a="${load_start%% *}" -v b="${load_end%% *}" -v c="$ncores" \
	'BEGIN { print ((c > 0 && (a >= c / 2 || b >= c / 2)) ? "true" : "false") }')
[ "$busy" = false ] || echo "note: the machine was busy with other work (load ${load_start%% *} at the start, ${load_end%% *} at the end, $ncores cores): wall-clock figures are pessimistic, CPU-time figures (cpu s, cpu ms/req, vector CPU p50/p99) much less so"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
valid=true
[ -z "$problems" ] || valid=false
{
	echo "{"
	echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
	echo "  \"commit\": \"$commit\","
	echo "  \"cores\": $ncores,"
	echo "  \"load_average_start\": \"$load_start\", \"load_average_end\": \"$load_end\","
	echo "  \"corpus\": {\"mb\": $CORPUS_MB, \"files\": $corpus_files, \"bytes\": $corpus_bytes, \"chunks\": $nchunks, \"chunk_tokens\": ${BOOKD_CHUNK_TOKENS:-256}, \"database_bytes\": $db_bytes, \"generate_s\": $gen_s},"
	echo "  \"indexing\": {"
	echo "    \"import\": {\"wall_s\": $import_wall, \"cpu_s\": $import_cpu, \"mb_per_s\": $import_mbs},"
	echo "    \"reindex\": {\"wall_s\": $reindex_wall, \"cpu_s\": $reindex_cpu, \"mb_per_s\": $reindex_mbs, \"mb_per_cpu_s\": $reindex_mbs_cpu},"
	echo "    \"reindex_unchanged\": {\"wall_s\": $again_wall, \"cpu_s\": $again_cpu, \"mb_per_s\": $again_mbs},"
	echo "    \"import_plus_reindex_mb_per_s\": $both_mbs,"
	echo "    \"target_mb_per_s\": $TARGET_MBS, \"target_met\": $index_ok"
	echo "  },"
	echo "  \"keyword_search\": {"
	echo "    \"duration\": \"$DURATION\", \"sample_chunks\": $sample_chunks,"
	echo "    \"queries\": {\"corpus-keywords\": \"$(tr '\n' '|' <"$tmp/queries-keywords.txt")\", \"corpus-questions\": \"$(tr '\n' '|' <"$tmp/queries-questions.txt")\", \"sample-questions\": \"$(tr '\n' '|' <"$tmp/queries-sample.txt")\"},"
	echo "    \"runs\": {$json_runs"
	echo "    },"
	echo "    \"target_p99_ms\": $TARGET_KW_P99_MS, \"target_met\": $kw_ok"
	echo "  },"
	echo "  \"vector_scan\": $vindex_json,"
	echo "  \"vector_target_p99_ms\": $TARGET_VEC_P99_MS, \"vector_target_met\": $vec_ok,"
	echo "  \"valid\": $valid,"
	echo "  \"problems\": \"$(printf '%s' "${problems#; }" | sed 's/["\\]/\\&/g')\""
	echo "}"
} >"$OUT/search.json"
echo "written: bench/out/search.json"
if [ -n "$problems" ]; then
	echo "bench/search: INVALID RUN: ${problems#; }" >&2
	exit 1
fi
