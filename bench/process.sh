#!/bin/sh
# The BookBytes pipeline end to end: `bookd serve` (embedded SQLite, local
# storage, espeak-ng + LAME, extractive summaries, metadata sources pointed
# at a closed port so the best-effort lookup fails at once) processes a
# 12-chapter book (about 1,500 words a chapter) from POST /books/process to
# the last chapter's audio. The figure is the job's wall time, and the CPU
# seconds bookd used. Target: < 30 s on 2 cores. `make bench` runs it;
# alone: `sh bench/process.sh`.
#
# Environment:
#   BENCH_CHAPTERS   chapters (default 12)
#   BENCH_NARRATE    1 = also narrate whole chapters (default 0)
#   BENCH_PYTHON     Python 3 (default python3)
#   BOOKD_BIN        bookd binary (default build/bookd)
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${BENCH_PYTHON:-python3}
BIN=${BOOKD_BIN:-build/bookd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
CHAPTERS=${BENCH_CHAPTERS:-12}
NARRATE=${BENCH_NARRATE:-0}
case $CHAPTERS$NARRATE in '' | *[!0-9]*) echo "bench: process: BENCH_CHAPTERS and BENCH_NARRATE are numbers" >&2; exit 1 ;; esac
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT INT TERM

exec "$PYTHON" - "$BIN" "$DATA" "$CHAPTERS" "$NARRATE" <<'PY'
import json, os, random, signal, socket, subprocess, sys, time, urllib.request

binary, data, nch, narrate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
dead = socket.socket(); dead.bind(("127.0.0.1", 0)); dead_port = dead.getsockname()[1]; dead.close()
key = "bench-master-key-0123456789abcdef"
env = dict(os.environ, BOOKD_PORT=str(port), BOOKD_DATA_DIR=data, BOOKD_API_KEY=key,
           BOOKD_OPENLIBRARY_URL=f"http://127.0.0.1:{dead_port}", BOOKD_GOOGLE_BOOKS_URL=f"http://127.0.0.1:{dead_port}",
           BOOKD_METADATA_TRIES="1", BOOKD_LOG_LEVEL="warn")
proc = subprocess.Popen([binary, "serve"], env=env, stderr=open(os.path.join(data, "log"), "w"))
base = f"http://127.0.0.1:{port}"

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")

for _ in range(100):
    try:
        call("GET", "/health/live"); break
    except Exception:
        time.sleep(0.05)

def isbn13():
    d = "978" + "".join(random.choice("0123456789") for _ in range(9))
    c = (10 - sum(int(x) * (1 if i % 2 == 0 else 3) for i, x in enumerate(d)) % 10) % 10
    return d + str(c)

words = ("river lantern harbour compass voyage island merchant storm sailor chart anchor tide beacon "
         "cargo keel mast rope cabin deck horizon signal current shore reef gull").split()
rnd = random.Random(7)
isbn = isbn13()
book = call("POST", "/api/v1/books", {"title": "Bench voyage", "author": "Bench", "isbns": [isbn]})
for n in range(1, nch + 1):
    paras = []
    for p in range(10):
        sents = [" ".join(rnd.choice(words) for _ in range(14)).capitalize() + "." for _ in range(10)]
        paras.append(" ".join(sents))
    call("POST", f"/api/v1/books/{book['id']}/chapters",
         {"title": f"Chapter {n}", "number": n, "content_markdown": f"# Chapter {n}\n\n" + "\n\n".join(paras)})

def cpu():
    with open(f"/proc/{proc.pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")

c0, t0 = cpu(), time.monotonic()
job = call("POST", "/api/v1/books/process", {"isbn": isbn, "narrate": narrate})["job_id"]
while True:
    j = call("GET", f"/api/v1/jobs/{job}")
    if j["status"] in ("completed", "failed", "cancelled"):
        break
    time.sleep(0.05)
wall, used = time.monotonic() - t0, cpu() - c0
proc.send_signal(signal.SIGTERM); proc.wait(timeout=30)
audio_ms = sum(a["duration_ms"] for a in (j.get("result") or {}).get("audio", []))
print(f"bench: process: {nch} chapters{' (narrated)' if narrate else ''}: {j['status']} in {wall:.2f} s wall, "
      f"{used:.2f} s CPU; {audio_ms / 1000:.0f} s of audio; target < 30 s")
sys.exit(0 if j["status"] == "completed" else 1)
PY
