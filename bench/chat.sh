#!/bin/sh
# bench/chat.sh: what the chatbot adds on top of its language model.
#
# How to run (POSIX sh; needs build/bookd, a C compiler, curl and od):
#   make build/bookd && sh bench/chat.sh
#   BENCH_DURATION=30s sh bench/chat.sh      # longer, steadier figures
#
# What it measures (the issue: "chat server overhead with an instant fake
# provider: p99 added latency < 5 ms at 50 concurrent streaming chats, and
# time from the provider's first token to the client's first SSE byte
# < 2 ms p99"):
#   bookd serve (SQLite, the sample book imported and `bookd reindex`ed,
#   keyword retrieval, BOOKD_CHAT_THREADS=64, BOOKD_LOG_LEVEL=warn) answers
#   POST /api/v1/chatbot/query with a fake OpenAI-compatible model on another
#   loopback port. Both the fake and the client are bench/chat_load.c (built
#   here with $CC; libc, pthreads and libm only): one process, two threads,
#   each on its own epoll loop, so that the load's own delays stay out of the
#   figures (its CPU per answer, printed per phase, is about a tenth of
#   bookd's, mostly the kernel's loopback TCP). The fake answers a fixed text
#   in CHUNKS deltas (SSE, chunked, keep-alive; or one JSON body), each in its
#   own write, paced by timers when asked; bookd's libcurl opens a connection
#   per model call. The client keeps BENCH_CHAT_CLIENTS (50)
#   keep-alive connections asking back to back (a new chat session per
#   question, as the master key) for BENCH_WARMUP (2 s, thrown away) +
#   BENCH_DURATION (10 s). Every question carries an id that the fake finds in
#   the prompt, so each answer is matched to the fake's record of its model
#   call. Per answer, on one CLOCK_MONOTONIC:
#     added latency = the client's total time (request written -> last byte
#                     read) minus the fake's own time (the call reached its
#                     socket -> last chunk written): auth, session, retrieval,
#                     prompt, the model call's connection, citations, storing
#                     the exchange, the response
#     first token   = the client read the first `delta` event minus the fake
#                     wrote its first chunk
#   Both also "kernel-stamped": the client's times taken from the kernel's
#   receive timestamps (SO_TIMESTAMPNS) instead of its read's.
#   Four phases, one after the other on the same bookd:
#     stream        Accept: text/event-stream, an instant fake (4 chunks sent
#                   at once): as the issue says. Closed loop, no pause: this
#                   saturates the 2 cores, so its latencies are mostly queueing
#                   (about CLIENTS / answers-per-second; Little's law), and its
#                   answers/s is the chat's throughput.
#     whole         the same, answers not streamed.
#     stream_paced  the fake takes time: BENCH_CHAT_PACED_CHUNKS (10) deltas,
#                   BENCH_CHAT_PACED_MS (50) ms apart, so 50 chats are streaming
#                   at every moment without saturating the machine: bookd's
#                   own overhead at 50 concurrent streaming chats.
#     whole_paced   the same, not streamed (the whole answer after 10 x 50 ms).
#   BENCH_CHAT_PACED_MS=0 skips the paced phases. The chats' first questions
#   are spread over one paced answer's time (PACED_CHUNKS x PACED_MS), as
#   readers who do not all press Enter in the same millisecond are: started
#   together, paced chats would stay in lock-step and ask in bursts of 50 every
#   500 ms, and the figures would measure that burst's queue on 2 cores
#   (BENCH_CHAT_STAGGER_MS=0 shows it).
#
# Figures: bench/out/chat.json after a run, and the bench table in README.md.
# They are noisy on a shared 2-core machine: note the load average (printed,
# and in chat.json) beside any figure you quote.
#
# Output: each phase's figures as it ends, then a table and the verdicts on
# stdout; bench/out/chat.json (every phase's p50/p90/p99/max/mean of added
# latency, first token, total, the fake's own time, before and after the model
# call; answers/s, errors; the verdicts), bookd's log as
# bench/out/chat-bookd.log. The run is invalid (exit 1) if any answer failed
# (not 200, an `error` event, no `done`, an extractive fallback instead of the
# fake's answer, a socket error, no answer 60 s after the phase's end, an
# answer the fake has no record of), or bookd died or did not exit cleanly on
# SIGTERM. A trap stops bookd and chat_load and removes the temp dir on any
# exit (Ctrl-C, SIGTERM too). Everything listens on 127.0.0.1.
#
# Environment:
#   BENCH_DURATION          measured seconds of each phase (default 10s; N, Ns or Nm)
#   BENCH_WARMUP            warm-up seconds before each phase (default 2s)
#   BENCH_CHAT_CLIENTS      concurrent chats (default 50, at most 4096)
#   BENCH_CHAT_CHUNKS       deltas of the instant fake's answer (default 4)
#   BENCH_CHAT_PACED_CHUNKS deltas of the paced fake's answer (default 10)
#   BENCH_CHAT_PACED_MS     ms before each paced delta (default 50; 0 = no paced phases)
#   BENCH_CHAT_PHASES       the phases to run (default "stream whole stream_paced whole_paced");
#                           whole_alias is `whole` asked through POST /api/chat (a book
#                           site's widget, api/compat.c): "whole whole_alias" compares them
#                           side by side on one bookd
#   BENCH_CHAT_STAGGER_MS   spread the chats' first questions over this many ms
#                           (default PACED_CHUNKS x PACED_MS, at most the
#                           warm-up; 0: all at once). With
#                           a paced fake every answer takes as long, so chats
#                           that start together keep asking in bursts of CLIENTS
#   CC                      C compiler for bench/chat_load.c (default cc)
#   BOOKD_THREADS           bookd HTTP threads (default 0 = cores)
#   BOOKD_CHAT_THREADS      bookd chat threads (default 64)
#   BOOKD_BIN               bookd binary (default build/bookd)
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_NAME="bench: chat"
. "$ROOT/bench/lib.sh"

CC=${CC:-cc}
BIN=${BOOKD_BIN:-build/bookd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
OUT=$ROOT/bench/out
CLIENTS=${BENCH_CHAT_CLIENTS:-50}
CHUNKS=${BENCH_CHAT_CHUNKS:-4}
PACED_CHUNKS=${BENCH_CHAT_PACED_CHUNKS:-10}
PACED_MS=${BENCH_CHAT_PACED_MS:-50}
STAGGER_MS=${BENCH_CHAT_STAGGER_MS:-default}
HTTP_THREADS=${BOOKD_THREADS:-0}
CHAT_THREADS=${BOOKD_CHAT_THREADS:-64}
PHASES=${BENCH_CHAT_PHASES:-stream whole stream_paced whole_paced}

die() {
	echo "bench: chat: $*" >&2
	exit 1
}

seconds() { # 10 | 10s | 2m -> whole seconds
	case $1 in
	*m) v=${1%m} m=60 ;;
	*s) v=${1%s} m=1 ;;
	*) v=$1 m=1 ;;
	esac
	case $v in '' | *[!0-9]*) return 1 ;; esac
	echo $((v * m))
}
DURATION=$(seconds "${BENCH_DURATION:-10s}") || die "BENCH_DURATION must be whole seconds (10, 10s or 1m)"
WARMUP=$(seconds "${BENCH_WARMUP:-2s}") || die "BENCH_WARMUP must be whole seconds (2, 2s)"
[ "$DURATION" -ge 1 ] || die "BENCH_DURATION must be at least 1 s"
if [ "$STAGGER_MS" = default ]; then # one paced answer's time, within the warm-up
	case $PACED_CHUNKS$PACED_MS$WARMUP in *[!0-9]*) STAGGER_MS=0 ;; *)
		STAGGER_MS=$((PACED_CHUNKS * PACED_MS))
		[ "$STAGGER_MS" -le $((WARMUP * 1000)) ] || STAGGER_MS=$((WARMUP * 1000)) ;;
	esac
fi
for v in "$CLIENTS" "$CHUNKS" "$PACED_CHUNKS" "$PACED_MS" "$STAGGER_MS" "$HTTP_THREADS" "$CHAT_THREADS"; do
	case $v in '' | *[!0-9]*) die "BENCH_CHAT_CLIENTS, BENCH_CHAT_CHUNKS, BENCH_CHAT_PACED_CHUNKS, BENCH_CHAT_PACED_MS, BENCH_CHAT_STAGGER_MS, BOOKD_THREADS and BOOKD_CHAT_THREADS must be whole numbers" ;; esac
done
{ [ "$CLIENTS" -ge 1 ] && [ "$CLIENTS" -le 4096 ]; } || die "BENCH_CHAT_CLIENTS must be 1 to 4096"
{ [ "$CHUNKS" -ge 1 ] && [ "$PACED_CHUNKS" -ge 1 ] && [ "$CHUNKS" -le 100 ] && [ "$PACED_CHUNKS" -le 100 ]; } ||
	die "the chunk counts must be 1 to 100"
[ "$PACED_MS" -le 10000 ] || die "BENCH_CHAT_PACED_MS must be at most 10000"
[ "$STAGGER_MS" -le $((WARMUP * 1000)) ] || die "BENCH_CHAT_STAGGER_MS must be at most the warm-up"
for p in $PHASES; do
	case $p in
	stream | whole | whole_alias) ;;
	stream_paced | whole_paced) [ "$PACED_MS" -gt 0 ] || die "phase $p needs BENCH_CHAT_PACED_MS > 0" ;;
	*) die "unknown phase '$p' in BENCH_CHAT_PHASES (stream, whole, whole_alias, stream_paced, whole_paced)" ;;
	esac
done
[ -n "$PHASES" ] || die "BENCH_CHAT_PHASES names no phase"
for tool in curl od "$CC"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run \`make deps\`)"
done
[ -x "$BIN" ] || die "$BIN not found (run \`make build/bookd\`)"

# ---- cleanup: nothing may outlive this script -------------------------------

tmp=""
BOOKD_PID=""
LOAD_PID=""
CURL_PID=""


cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	stop_pid "$CURL_PID" TERM 2
	stop_pid "$BOOKD_PID" TERM 10
	stop_pid "$LOAD_PID" TERM 5
	[ -n "$tmp" ] && rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bookd-bench-chat.XXXXXX")
mkdir -p "$tmp/data" "$OUT"
chmod 700 "$tmp/data"
rm -f "$OUT/chat.json" "$OUT/chat-bookd.log" # no stale figures after a failed run

LOAD=$tmp/chat_load
"$CC" -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -o "$LOAD" bench/chat_load.c -lpthread -lm ||
	die "cannot build bench/chat_load.c"

# A master key and a JWT secret for this run only, in the environment.
BENCH_API_KEY=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
JWT_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
{ [ ${#BENCH_API_KEY} -eq 48 ] && [ ${#JWT_SECRET} -eq 48 ]; } || die "cannot read /dev/urandom"
export BENCH_API_KEY

loadavg() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null; }
# The machine's CPU time so far, in ticks: "busy steal total" (steal: time the
# hypervisor gave our virtual CPUs to someone else).
machine_ticks() { awk '/^cpu /{t=0; for (i=2; i<=9; i++) t+=$i; print t-$5-$6, $9, t}' /proc/stat; }
# bookd's own CPU time so far (user + system), in ticks.
bookd_ticks() { awk '{print $14 + $15}' "/proc/$BOOKD_PID/stat" 2>/dev/null || echo 0; }
TICKS=$(getconf CLK_TCK 2>/dev/null || echo 100)
load_before=$(loadavg)

# ---- the sample book, imported and indexed ----------------------------------
#
# bookd runs in $tmp so that a .env in the repo cannot change what is measured;
# no embedding provider: retrieval is keyword search.

bookd() {
	(cd "$tmp" && env BOOKD_DATA_DIR="$tmp/data" DATABASE_URL= BOOKD_EMBED_URL= BOOKD_LOG_LEVEL=warn "$BIN" "$@")
}
imported=$(bookd import "$ROOT/sample/physical-ai") || die "import of sample/physical-ai failed"
BOOK=$(printf '%s\n' "$imported" | sed -n 's/.*"book_id" *: *"\([^"]*\)".*/\1/p')
[ -n "$BOOK" ] || die "import printed no book_id: $imported"
indexed=$(bookd reindex) || die "reindex failed"
chunks=$(printf '%s\n' "$indexed" | sed -n 's/.*"chunks" *: *\([0-9]*\).*/\1/p')
[ "${chunks:-0}" -gt 0 ] || die "reindex made no chunks: $indexed"

# ---- free loopback ports (as in bench/run.sh) ---------------------------------
#
# Below the kernel's ephemeral range so client sockets cannot take them;
# "free" = nothing answers on 127.0.0.1 (curl exit 7). A lost race shows up as
# a server that does not start, and is retried with the next port.

seed=$((($$ + 1250) % 5000))


# ---- the fake model and the client: bench/chat_load.c ------------------------------
#
# Its stdout is ours (each phase's figures as it ends, then the report); its
# stderr (why it stopped, if it did) goes to a log shown when something fails.

tries=0
while :; do
	next_port 1
	FPORT=$PORT
	"$LOAD" "$FPORT" "$CHUNKS" 2>"$tmp/load.log" &
	LOAD_PID=$!
	wait_http "http://127.0.0.1:$FPORT/health" "$LOAD_PID" 10 && break
	stop_pid "$LOAD_PID" TERM 5
	LOAD_PID=""
	tries=$((tries + 1))
	if [ "$tries" -ge 3 ]; then
		cat "$tmp/load.log" >&2
		die "chat_load did not start on 127.0.0.1 (3 tries)"
	fi
done
FAKE=http://127.0.0.1:$FPORT

# ---- bookd ------------------------------------------------------------------------

tries=0
while :; do
	next_port 0
	BPORT=$PORT
	(cd "$tmp" && exec env BOOKD_DATA_DIR="$tmp/data" DATABASE_URL= BOOKD_HOST=127.0.0.1 \
		BOOKD_PORT="$BPORT" BOOKD_LOG_LEVEL=warn BOOKD_SHUTDOWN_TIMEOUT=5 \
		BOOKD_API_KEY="$BENCH_API_KEY" BOOKD_JWT_SECRET="$JWT_SECRET" BOOKD_EMBED_URL= \
		BOOKD_THREADS="$HTTP_THREADS" BOOKD_CHAT_THREADS="$CHAT_THREADS" \
		BOOKD_LLM_PROVIDERS=fake:m BOOKD_LLM_FAKE_URL="$FAKE/v1" "$BIN" serve) >>"$tmp/bookd.log" 2>&1 &
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
startup_log_lines=$(grep -c . "$tmp/bookd.log" || true)

# One question by hand: the answer must come from the fake, not the
# extractive fallback (which would mean bookd cannot reach it).
answer=$(curl -s --max-time 30 -H "X-API-Key: $BENCH_API_KEY" -H 'Content-Type: application/json' \
	-d '{"question":"What is the zero moment point? bench-id:check"}' "$BOOKD/api/v1/chatbot/query") ||
	die "the first question failed"
case $answer in
*'"provider":"fake"'*) ;;
*) die "the first answer did not come from the fake model: $(printf '%s' "$answer" | cut -c1-300)" ;;
esac

# ---- the phases ---------------------------------------------------------------------

problems=""
machine_json=""
echo "bookd chat bench: $CLIENTS concurrent chats (bench/chat_load.c), ${WARMUP} s warm-up + ${DURATION} s per phase, $(nproc 2>/dev/null || echo ?) cores shared by bookd, the fake model, the client (and any other work: load average $load_before at the start)"
echo "  bookd serve: SQLite, sample book ($chunks chunks, keyword retrieval), BOOKD_CHAT_THREADS=$CHAT_THREADS, BOOKD_THREADS=$HTTP_THREADS (0 = cores), BOOKD_LOG_LEVEL=warn, port $BPORT"
echo "  fake model: bench/chat_load.c on port $FPORT, instant = $CHUNKS chunks at once; paced = $PACED_CHUNKS chunks ${PACED_MS} ms apart; first questions spread over ${STAGGER_MS} ms"
echo

bookd_check() { # during
	kill -0 "$BOOKD_PID" 2>/dev/null && return 0
	st=0
	wait "$BOOKD_PID" || st=$?
	BOOKD_PID=""
	cp "$tmp/bookd.log" "$OUT/chat-bookd.log"
	echo "bench: chat: bookd DIED during $1: exit status $st; last lines of its log:" >&2
	tail -n 20 "$tmp/bookd.log" >&2
	problems="$problems; bookd died during $1 (log: bench/out/chat-bookd.log)"
	return 1
}

load_check() { # during: chat_load must still be running
	kill -0 "$LOAD_PID" 2>/dev/null && return 0
	st=0
	wait "$LOAD_PID" || st=$?
	LOAD_PID=""
	cat "$tmp/load.log" >&2
	problems="$problems; chat_load died during $1 (exit status $st)"
	return 1
}

# GET /run answers when the phase is over: 200 and its figures (JSON), or 422
# if any answer failed. curl runs in the background so that a signal stops it.
phase() { # key mode chunks delay_ms [route]
	{ [ -n "$BOOKD_PID" ] && [ -n "$LOAD_PID" ]; } || return 0
	m0=$(machine_ticks)
	b0=$(bookd_ticks)
	curl -s --max-time $((WARMUP + DURATION + 120)) -o "$tmp/$1.json" -w '%{http_code}' \
		"$FAKE/run?key=$1&mode=$2&chunks=$3&delay_ms=$4&clients=$CLIENTS&warmup=$WARMUP&duration=$DURATION&bookd=$BPORT&stagger_ms=$STAGGER_MS&route=${5:-query}" \
		>"$tmp/$1.code" &
	CURL_PID=$!
	crc=0
	wait "$CURL_PID" || crc=$?
	CURL_PID=""
	code=$(cat "$tmp/$1.code" 2>/dev/null || true)
	case $crc/$code in
	0/200) ;;
	0/422) problems="$problems; $1: some answers failed (see above)" ;;
	*)
		problems="$problems; $1: chat_load gave no figures (curl exit $crc, HTTP ${code:-none})"
		rm -f "$tmp/$1.json"
		;;
	esac
	m1=$(machine_ticks)
	b1=$(bookd_ticks)
	# Questions asked in warm-up and measurement, as the CPU times span both.
	asked=$(sed -n 's/.*"questions_asked": *\([0-9]*\).*/\1/p' "$tmp/$1.json" 2>/dev/null | head -n 1)
	line=$(echo "$m0 $m1 $b0 $b1 ${asked:-0} $TICKS" | awk '{
		steal = $6 > $3 ? 100 * ($5 - $2) / ($6 - $3) : 0
		busy = $6 > $3 ? 100 * ($4 - $1) / ($6 - $3) : 0
		# bookd gone (its ticks read 0): no CPU figure rather than a wrong one
		if ($9 > 0 && $8 >= $7 && $8 > 0) cpu = sprintf("%.0f", 1e6 * ($8 - $7) / $10 / $9); else cpu = "null"
		printf "%.1f %.1f %s", steal, busy, cpu }')
	set -- "$1" $line
	echo "  machine: steal ${2}% of CPU time, busy ${3}%; bookd CPU ${4} us per question asked"
	machine_json="$machine_json${machine_json:+, }\"$1\": {\"steal_pct\": $2, \"busy_pct\": $3, \"bookd_cpu_us_per_question\": $4}"
	load_check "the $1 phase" || true
	bookd_check "the $1 phase" || true
	echo
}

# In the order BENCH_CHAT_PHASES lists them (each phase's sessions stay in the
# database: "whole_alias whole" and "whole whole_alias" show what order costs).
for p in $PHASES; do
	case $p in
	stream) phase stream stream "$CHUNKS" 0 ;;
	whole) phase whole whole "$CHUNKS" 0 ;;
	whole_alias) phase whole_alias whole "$CHUNKS" 0 alias ;;
	stream_paced) phase stream_paced stream "$PACED_CHUNKS" "$PACED_MS" ;;
	whole_paced) phase whole_paced whole "$PACED_CHUNKS" "$PACED_MS" ;;
	esac
done
load_after=$(loadavg)

# ---- bookd must exit cleanly ----------------------------------------------------------

all_log_lines=$(grep -c . "$tmp/bookd.log" || true)
if [ -n "$BOOKD_PID" ]; then
	kill -TERM "$BOOKD_PID" 2>/dev/null || true
	st=0
	wait "$BOOKD_PID" || st=$?
	BOOKD_PID=""
	[ "$st" -eq 0 ] || problems="$problems; bookd exited $st on SIGTERM"
fi
cp "$tmp/bookd.log" "$OUT/chat-bookd.log"
warn_lines=$((all_log_lines - startup_log_lines))
[ "$startup_log_lines" -eq 0 ] || echo "note: bookd logged $startup_log_lines warn/error line(s) at startup (bench/out/chat-bookd.log)"
[ "$warn_lines" -eq 0 ] || echo "note: bookd logged $warn_lines warn/error line(s) under load (bench/out/chat-bookd.log)"

# ---- report -----------------------------------------------------------------------------

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
esc() { printf '%s' "$1" | sed 's/["\\]/\\&/g'; }

# chat_load prints the table and the verdicts and answers
# {"phases": {...}, "target": {...}} with "{" and "}" alone on its first and
# last lines: its members are spliced in after the run's own.
report_ok=0
if [ -n "$LOAD_PID" ] && curl -fs --max-time 30 -o "$tmp/report.json" "$FAKE/report"; then
	report_ok=1
else
	problems="$problems; the report failed"
	[ -n "$LOAD_PID" ] || cat "$tmp/load.log" >&2
fi
valid=true
[ -z "$problems" ] || valid=false
{
	cat <<EOF
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "commit": "$commit",
  "cores": $(nproc 2>/dev/null || echo 0),
  "loadavg_1m_before": $load_before,
  "loadavg_1m_after": $load_after,
  "shared_machine_note": "bookd and bench/chat_load (the fake model and the client) share the cores with each other and with any other work on the machine",
  "tool": "bench/chat_load.c",
  "clients": $CLIENTS,
  "warmup_s": $WARMUP,
  "duration_s": $DURATION,
  "bookd": {"database": "sqlite", "retrieval": "keyword", "chat_threads": $CHAT_THREADS, "threads": $HTTP_THREADS, "log_level": "warn", "warn_lines_startup": $startup_log_lines, "warn_lines_under_load": $warn_lines},
  "stagger_ms": $STAGGER_MS,
  "fake": {"instant": {"chunks": $CHUNKS, "delay_ms": 0}, "paced": {"chunks": $PACED_CHUNKS, "delay_ms": $PACED_MS}},
  "machine_per_phase": {$machine_json},
  "problems": "$(esc "${problems#; }")",
  "valid": $valid,
EOF
	if [ "$report_ok" -eq 1 ]; then
		sed '1d;$d' "$tmp/report.json"
	else
		printf '  "phases": null,\n  "target": null\n'
	fi
	echo "}"
} >"$OUT/chat.json"
echo "written: bench/out/chat.json"

if [ -n "$problems" ]; then
	echo "bench: chat: INVALID RUN: ${problems#; }" >&2
	exit 1
fi
