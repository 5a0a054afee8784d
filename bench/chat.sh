#!/bin/sh
# bench/chat.sh: what the chatbot adds on top of its language model.
#
# How to run (POSIX sh; needs build/bookd, curl, od and Python 3):
#   make build/bookd && sh bench/chat.sh
#   BENCH_DURATION=30s sh bench/chat.sh      # longer, steadier figures
#
# What it measures (the issue: "chat server overhead with an instant fake
# provider: p99 added latency < 5 ms at 50 concurrent streaming chats, and
# time from the provider's first token to the client's first SSE byte
# < 2 ms p99"):
#   bookd serve (SQLite, the sample book imported and `bookd reindex`ed,
#   keyword retrieval, BOOKD_CHAT_THREADS=64, BOOKD_LOG_LEVEL=warn) answers
#   POST /api/v1/chatbot/query with a fake OpenAI-compatible model
#   (bench/chat_fake.py: one Python thread on epoll, a fixed answer, no model)
#   on another loopback port. bench/chat_client.py runs BENCH_CHAT_CLIENTS
#   (50) threads, each with its own keep-alive connection, asking back to back
#   (a new chat session per question, as the master key) for BENCH_WARMUP
#   (2 s, thrown away) + BENCH_DURATION (10 s). Every question carries an id
#   that the fake finds in the prompt, so each answer is matched to the fake's
#   record of its model call. Per answer:
#     added latency = the client's total time (request sent -> last byte)
#                     minus the fake's own time (request arrived -> last chunk
#                     sent): auth, session, retrieval, prompt, the model call's
#                     connection, citations, storing the exchange, the response
#     first token   = the client read the first `delta` event minus the fake
#                     sent its first chunk (time.monotonic_ns, same machine)
#   Both also "kernel-stamped": the client's times taken from the kernel's
#   receive timestamps (SO_TIMESTAMPNS) instead of the Python reader's, so the
#   client's own scheduling (50 threads, one GIL) is left out.
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
#   BENCH_CHAT_PACED_MS=0 skips the paced phases.
#
# Figures (2-core VM shared with other work, load average 2.3-3.0 during the
# run; BENCH_DURATION=5s BENCH_WARMUP=2s; commit 32150a3; noisy: with the
# box busier (load 4-7, an earlier build) the instant phases gave ~475/s
# and p99s ~1.4x higher, the paced p99s 27 and 8.8 ms):
#   50 concurrent chats        answers/s  added p50  added p99  1st tok p50  1st tok p99
#   streamed, instant fake         608       65.2      168.3       19.2         69.2
#   not streamed, instant fake     731       60.5      141.5          -            -
#   streamed, paced fake           100        5.2       17.3        0.28         5.6
#   not streamed, paced fake       100        4.4       17.5          -            -
#   (ms; kernel-stamped, paced: added p99 17.1, first token p99 3.4.) With one
#   chat (BENCH_CHAT_CLIENTS=1) the paced phase gives added p50 2.4 / p99 2.6
#   and first token p50 0.33 / p99 0.50: the targets hold for one chat, not
#   for 50 on these 2 shared cores (bookd spends ~2.6 ms of CPU per answer:
#   SQLite, kernel, malloc; its chat threads 90% of it).
#
# Output: a table on stdout, bench/out/chat.json (every phase's p50/p90/p99/
# max of added latency, first token, total, the fake's own time, before and
# after the model call, answers/s, errors; the verdicts), bookd's log as
# bench/out/chat-bookd.log. The run is invalid (exit 1) if any answer failed
# (not 200, an `error` event, no `done`, an extractive fallback instead of the
# fake's answer, a socket error), or bookd died or did not exit cleanly on
# SIGTERM. A trap stops the client, bookd and the fake and removes the temp
# dir on any exit (Ctrl-C, SIGTERM too). Everything listens on 127.0.0.1.
#
# Environment:
#   BENCH_DURATION          measured seconds of each phase (default 10s; N, Ns or Nm)
#   BENCH_WARMUP            warm-up seconds before each phase (default 2s)
#   BENCH_CHAT_CLIENTS      concurrent chats (default 50)
#   BENCH_CHAT_CHUNKS       deltas of the instant fake's answer (default 4)
#   BENCH_CHAT_PACED_CHUNKS deltas of the paced fake's answer (default 10)
#   BENCH_CHAT_PACED_MS     ms before each paced delta (default 50; 0 = no paced phases)
#   BENCH_PYTHON            Python 3 (default python3)
#   BOOKD_THREADS           bookd HTTP threads (default 0 = cores)
#   BOOKD_CHAT_THREADS      bookd chat threads (default 64)
#   BOOKD_BIN               bookd binary (default build/bookd)
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)

PYTHON=${BENCH_PYTHON:-python3}
BIN=${BOOKD_BIN:-build/bookd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
OUT=$ROOT/bench/out
CLIENTS=${BENCH_CHAT_CLIENTS:-50}
CHUNKS=${BENCH_CHAT_CHUNKS:-4}
PACED_CHUNKS=${BENCH_CHAT_PACED_CHUNKS:-10}
PACED_MS=${BENCH_CHAT_PACED_MS:-50}
HTTP_THREADS=${BOOKD_THREADS:-0}
CHAT_THREADS=${BOOKD_CHAT_THREADS:-64}

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
for v in "$CLIENTS" "$CHUNKS" "$PACED_CHUNKS" "$PACED_MS" "$HTTP_THREADS" "$CHAT_THREADS"; do
	case $v in '' | *[!0-9]*) die "BENCH_CHAT_CLIENTS, BENCH_CHAT_CHUNKS, BENCH_CHAT_PACED_CHUNKS, BENCH_CHAT_PACED_MS, BOOKD_THREADS and BOOKD_CHAT_THREADS must be whole numbers" ;; esac
done
[ "$CLIENTS" -ge 1 ] || die "BENCH_CHAT_CLIENTS must be at least 1"
{ [ "$CHUNKS" -ge 1 ] && [ "$PACED_CHUNKS" -ge 1 ]; } || die "the chunk counts must be at least 1"
for tool in curl od "$PYTHON"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run \`make deps\`)"
done
[ -x "$BIN" ] || die "$BIN not found (run \`make build/bookd\`)"

# ---- cleanup: nothing may outlive this script -------------------------------

tmp=""
BOOKD_PID=""
FAKE_PID=""
CLIENT_PID=""

stop_pid() { # pid signal seconds: signal, wait, then SIGKILL
	p=$1
	[ -n "$p" ] || return 0
	kill -0 "$p" 2>/dev/null || {
		wait "$p" 2>/dev/null || true
		return 0
	}
	kill "-$2" "$p" 2>/dev/null || true
	i=0
	while kill -0 "$p" 2>/dev/null && [ "$i" -lt $(($3 * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$p" 2>/dev/null; then
		echo "bench: chat: pid $p did not stop on SIG$2 within $3 s: killing it" >&2
		kill -KILL "$p" 2>/dev/null || true
	fi
	wait "$p" 2>/dev/null || true
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	stop_pid "$CLIENT_PID" TERM 2
	stop_pid "$BOOKD_PID" TERM 10
	stop_pid "$FAKE_PID" TERM 5
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

# A master key and a JWT secret for this run only, in the environment.
BENCH_API_KEY=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
JWT_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
{ [ ${#BENCH_API_KEY} -eq 48 ] && [ ${#JWT_SECRET} -eq 48 ]; } || die "cannot read /dev/urandom"
export BENCH_API_KEY

loadavg() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null; }
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
next_port() { # parity (0 or 1): sets PORT
	while :; do
		seed=$(((seed + 1) % 5000))
		PORT=$((20000 + seed * 2 + $1))
		prc=0
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" || prc=$?
		[ "$prc" -ne 7 ] || return 0
	done
}

wait_http() { # url pid seconds
	i=0
	while [ "$i" -lt $(($3 * 10)) ]; do
		kill -0 "$2" 2>/dev/null || return 1
		curl -fs -o /dev/null --max-time 1 "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# ---- the fake model ---------------------------------------------------------------

tries=0
while :; do
	next_port 1
	FPORT=$PORT
	"$PYTHON" bench/chat_fake.py "$FPORT" "$CHUNKS" 0 >"$tmp/fake.log" 2>&1 &
	FAKE_PID=$!
	wait_http "http://127.0.0.1:$FPORT/health" "$FAKE_PID" 10 && break
	stop_pid "$FAKE_PID" TERM 5
	FAKE_PID=""
	tries=$((tries + 1))
	if [ "$tries" -ge 3 ]; then
		cat "$tmp/fake.log" >&2
		die "the fake model did not start on 127.0.0.1 (3 tries)"
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
parts=""
echo "bookd chat bench: $CLIENTS concurrent chats (bench/chat_client.py), ${WARMUP} s warm-up + ${DURATION} s per phase, $(nproc 2>/dev/null || echo ?) cores shared by bookd, the fake model, the client (and any other work: load average $load_before at the start)"
echo "  bookd serve: SQLite, sample book ($chunks chunks, keyword retrieval), BOOKD_CHAT_THREADS=$CHAT_THREADS, BOOKD_THREADS=$HTTP_THREADS (0 = cores), BOOKD_LOG_LEVEL=warn, port $BPORT"
echo "  fake model: bench/chat_fake.py on port $FPORT, instant = $CHUNKS chunks at once; paced = $PACED_CHUNKS chunks ${PACED_MS} ms apart"
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

phase() { # key mode chunks delay_ms
	[ -n "$BOOKD_PID" ] || return 0
	curl -fs -o /dev/null --max-time 5 "$FAKE/config?chunks=$3&delay_ms=$4" || {
		problems="$problems; cannot configure the fake model for $1"
		return 0
	}
	"$PYTHON" bench/chat_client.py "$2" "$BOOKD" "$FAKE" "$CLIENTS" "$WARMUP" "$DURATION" "$tmp/$1.json" &
	CLIENT_PID=$!
	crc=0
	wait "$CLIENT_PID" || crc=$?
	CLIENT_PID=""
	parts="$parts $1"
	[ "$crc" -eq 0 ] || problems="$problems; $1: bench/chat_client.py reported errors (exit $crc)"
	[ -s "$tmp/$1.json" ] || problems="$problems; $1: bench/chat_client.py wrote no result"
	bookd_check "the $1 phase" || true
	echo
}

phase stream stream "$CHUNKS" 0
phase whole whole "$CHUNKS" 0
if [ "$PACED_MS" -gt 0 ]; then
	phase stream_paced stream "$PACED_CHUNKS" "$PACED_MS"
	phase whole_paced whole "$PACED_CHUNKS" "$PACED_MS"
fi
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
cat >"$tmp/meta.json" <<EOF
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "commit": "$commit",
  "cores": $(nproc 2>/dev/null || echo 0),
  "loadavg_1m_before": $load_before,
  "loadavg_1m_after": $load_after,
  "shared_machine_note": "bookd, the fake model and the client share the cores with each other and with any other work on the machine",
  "clients": $CLIENTS,
  "warmup_s": $WARMUP,
  "duration_s": $DURATION,
  "bookd": {"database": "sqlite", "retrieval": "keyword", "chat_threads": $CHAT_THREADS, "threads": $HTTP_THREADS, "log_level": "warn", "warn_lines_startup": $startup_log_lines, "warn_lines_under_load": $warn_lines},
  "fake": {"instant": {"chunks": $CHUNKS, "delay_ms": 0}, "paced": {"chunks": $PACED_CHUNKS, "delay_ms": $PACED_MS}},
  "problems": "$(esc "${problems#; }")"
}
EOF
# shellcheck disable=SC2086 # $parts: the phases' keys, one word each
"$PYTHON" bench/chat_client.py report "$OUT/chat.json" "$tmp/meta.json" "$tmp" $parts || problems="$problems; the report failed"
echo "written: bench/out/chat.json"

if [ -n "$problems" ]; then
	echo "bench: chat: INVALID RUN: ${problems#; }" >&2
	exit 1
fi
