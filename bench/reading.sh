#!/bin/sh
# Chapters for each reader: a translated and a personalised chapter, cached,
# served next to the plain chapter by one `bookd serve` (embedded SQLite)
# whose language model is a fake (tests/api/fake_llm.py, in this process:
# every answer is its input uppercased outside the placeholders).
#
#   1. provider calls per chapter: the first translated (ur) and personalised
#      GET compute every section (one call each); the second must make none;
#   2. wrk -t2 -c8 (BENCH_READING_CONNECTIONS): the plain chapter GET, the
#      cached translated GET and the cached personalised GET, one after the
#      other on the same server (target: each within 20 % of the plain
#      chapter's req/s, p99 < 5 ms);
#   3. time to the first section of a cold streamed translation (another
#      language, nothing cached, Accept: text/event-stream) when each model
#      call takes BENCH_READING_LATENCY_MS (200): target one call's latency
#      + < 5 ms.
#
# `make bench` runs it; alone: `sh bench/reading.sh`.
#
# Environment:
#   BENCH_DURATION             wrk duration of each measured run (default 10s)
#   BENCH_WARMUP               wrk warm-up before each (default 2s)
#   BENCH_READING_CONNECTIONS  wrk connections (default 8)
#   BENCH_THREADS              wrk threads (default 2)
#   BENCH_READING_BYTES        size of the chapter's Markdown (default 20000)
#   BENCH_READING_LATENCY_MS   the fake model's latency for step 3 (default 200)
#   BENCH_PYTHON               Python 3 (default python3)
#   BOOKD_BIN                  bookd binary (default build/bookd)
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${BENCH_PYTHON:-python3}
BIN=${BOOKD_BIN:-build/bookd}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac

die() {
	echo "bench: reading: $*" >&2
	exit 1
}

for tool in wrk "$PYTHON"; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run \`make deps\`)"
done
[ -x "$BIN" ] || die "$BIN not found (run \`make build/bookd\`)"
for v in "${BENCH_READING_CONNECTIONS:-8}" "${BENCH_THREADS:-2}" "${BENCH_READING_BYTES:-20000}" \
	"${BENCH_READING_LATENCY_MS:-200}"; do
	case $v in '' | *[!0-9]*) die "BENCH_READING_CONNECTIONS, BENCH_THREADS, BENCH_READING_BYTES and BENCH_READING_LATENCY_MS must be whole numbers" ;; esac
done

exec "$PYTHON" - "$ROOT" "$BIN" <<'PY'
import http.client, json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.request

root, binary = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(root, "tests", "api"))
from fake_llm import FakeLLM  # noqa: E402

DURATION = os.environ.get("BENCH_DURATION", "10s")
WARMUP = os.environ.get("BENCH_WARMUP", "2s")
CONNS = int(os.environ.get("BENCH_READING_CONNECTIONS", "8"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
BYTES = int(os.environ.get("BENCH_READING_BYTES", "20000"))
LATENCY_MS = int(os.environ.get("BENCH_READING_LATENCY_MS", "200"))
problems = []


def die(msg):
    print(f"bench: reading: {msg}", file=sys.stderr)
    sys.exit(1)


def chapter_markdown():
    """The sample chapters in C-locale order, front matter dropped, headings
    demoted one level, until BYTES: one chapter with many sections."""
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "sample", "physical-ai"))
                   for f in fs if f.endswith(".md"))
    if not files:
        die("no sample chapters under sample/physical-ai")
    out = ["# Reading Bench\n\nThe sample chapters, one long chapter for `bench/reading.sh`.\n"]
    size, i = len(out[0]), 0
    while size < BYTES:
        text = open(files[i % len(files)], encoding="utf-8").read()
        text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
        lines, fence = [], False
        for line in text.split("\n"):
            if re.match(r" {0,3}(```|~~~)", line):
                fence = not fence
            if not fence and line.startswith("#"):
                line = "#" + line
            lines.append(line)
        part = f"\n## Part {i + 1}\n\n" + "\n".join(lines) + "\n"
        out.append(part)
        size += len(part)
        i += 1
    return "".join(out)


fake = FakeLLM().start()
fake.set_default(transform="upper")
tmp = tempfile.mkdtemp(prefix="bookd-reading-bench.")
os.chmod(tmp, 0o700)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
key = "bench-" + secrets.token_hex(16)
env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKD_") and k != "DATABASE_URL"}
env.update(BOOKD_HOST="127.0.0.1", BOOKD_PORT=str(port), BOOKD_DATA_DIR=os.path.join(tmp, "data"),
           BOOKD_API_KEY=key, BOOKD_LOG_LEVEL="warn", BOOKD_SHUTDOWN_TIMEOUT="5",
           BOOKD_LLM_PROVIDERS="fake:m", BOOKD_LLM_FAKE_URL=fake.url, BOOKD_LLM_FAKE_KEY="bench",
           BOOKD_LLM_TRIES="1")
log = open(os.path.join(tmp, "bookd.log"), "wb")
proc = subprocess.Popen([binary, "serve"], cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=log)
base = f"http://127.0.0.1:{port}"
AUTH = {"X-API-Key": key}


def finish(rc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    fake.stop()
    tail = open(os.path.join(tmp, "bookd.log"), encoding="utf-8", errors="replace").read()[-2000:]
    shutil.rmtree(tmp, ignore_errors=True)
    if rc and tail:
        print(tail, file=sys.stderr)
    sys.exit(rc)


def call(method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={**AUTH, "Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


try:
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/health/live", timeout=1).read()
            break
        except Exception:
            if proc.poll() is not None:
                die("bookd exited at startup")
            time.sleep(0.05)
    else:
        die("bookd did not become live")

    book = call("POST", "/api/v1/books", {"title": "Reading Bench", "author": "Bench"})["id"]
    md = chapter_markdown()
    call("POST", f"/api/v1/books/{book}/chapters", {"title": "Reading Bench", "number": 1,
                                                    "content_markdown": md})
    call("PUT", "/api/v1/users/me/preferences",
         {"experience_level": "beginner", "software_background": "Python", "hardware_background": "Arduino"})
    plain = f"/api/v1/books/{book}/chapters/1"
    translated = f"{plain}/translated/ur"
    personalized = f"{plain}/personalized"

    # ---- 1. provider calls per chapter, first and second request -------------
    calls = {}
    for name, path in (("translated", translated), ("personalized", personalized)):
        got = []
        for _ in range(2):
            n0 = len(fake.calls())
            r = call("GET", path)
            got.append(len(fake.calls()) - n0)
            fb = sum(1 for x in r["sections"] if x.get("fallback"))
            if fb:
                problems.append(f"{name}: {fb} sections fell back to the source")
        calls[name] = (got, len(r["sections"]), r["method"])
        if got[1] != 0:
            problems.append(f"{name}: the second request made {got[1]} provider calls")
        if r["method"] != "llm":
            problems.append(f"{name}: method {r['method']}, not llm")

    # ---- 2. wrk: plain, cached translated, cached personalised ---------------
    def ms(v):
        m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", v)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m.group(2)]

    def wrk(path, duration):
        out = subprocess.run(["wrk", "-t", str(THREADS), "-c", str(CONNS), "-d", duration, "--latency",
                              "-H", f"X-API-Key: {key}", base + path],
                             capture_output=True, text=True, timeout=600).stdout
        rps = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
        p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
        p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
        if not (rps and p50 and p99):
            die(f"cannot parse wrk output for {path}:\n{out}")
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        serr = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, serr.groups())) if serr else 0)
        return float(rps.group(1)), ms(p50.group(1)), ms(p99.group(1)), errors

    sizes = {}
    for name, path in (("plain", plain), ("translated", translated), ("personalized", personalized)):
        with urllib.request.urlopen(urllib.request.Request(base + path, headers=AUTH), timeout=60) as r:
            sizes[name] = len(r.read())
    n_before = len(fake.calls())
    runs = {}
    for name, path in (("plain", plain), ("translated", translated), ("personalized", personalized)):
        print(f"  running {name:<12} warm-up {WARMUP}, then {DURATION} ...", file=sys.stderr)
        wrk(path, WARMUP)
        runs[name] = wrk(path, DURATION)
        if proc.poll() is not None:
            die(f"bookd died during the {name} run")
        if runs[name][3]:
            problems.append(f"{name}: {runs[name][3]} errors under load")
    if len(fake.calls()) != n_before:
        problems.append(f"the cached runs made {len(fake.calls()) - n_before} provider calls")

    # ---- 3. time to the first section, cold, streamed ------------------------
    fake.set_default(transform="upper", delay=LATENCY_MS / 1000)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    n0 = len(fake.calls())
    t0 = time.monotonic()
    conn.request("GET", f"{plain}/translated/de", headers={**AUTH, "Accept": "text/event-stream"})
    resp = conn.getresponse()
    if resp.status != 200:
        die(f"streamed translation answered {resp.status}: {resp.read()[:300]!r}")
    first, sections, done = None, 0, False
    while True:
        line = resp.fp.readline()
        if not line:
            break
        if line.startswith(b"event: section"):
            sections += 1
            if first is None:
                first = time.monotonic() - t0
        elif line.startswith(b"event: done") or line.startswith(b"event: error"):
            done = line.startswith(b"event: done")
            break
    total = time.monotonic() - t0
    conn.close()
    cold_calls = fake.calls()[n0:]
    if first is None or not done:
        problems.append("the cold streamed translation did not deliver sections and `done`")
        first = first or total
    first_call = min(cold_calls, key=lambda c: c.t) if cold_calls else None
    call_ms = ((first_call.t_end - first_call.t) * 1000) if first_call and first_call.t_end else float("nan")
    # Before the first call reached the fake, and from its answer to the first section.
    pre_ms = (first_call.t - t0) * 1000 if first_call else float("nan")
    post_ms = (t0 + first - first_call.t_end) * 1000 if first_call and first_call.t_end else float("nan")
except urllib.error.HTTPError as exc:
    die(f"{exc.code} {exc.read()[:300]!r}")
except SystemExit as exc:
    finish(exc.code or 0)
except BaseException:
    import traceback
    traceback.print_exc()
    finish(1)

# ---- report ----------------------------------------------------------------------------
p_rps, p_p50, p_p99, _ = runs["plain"]
print(f"bookd reading bench: wrk -t{THREADS} -c{CONNS} -d{DURATION} --latency (after {WARMUP} warm-up), "
      f"127.0.0.1, {os.cpu_count()} cores shared by bookd, the fake model and wrk")
print(f"  chapter: {len(md.encode())} bytes of Markdown, {calls['translated'][1]} sections; "
      f"responses: plain {sizes['plain']} B, translated {sizes['translated']} B, personalized {sizes['personalized']} B")
print(f"  {'GET':<34} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
for name, label in (("plain", "chapter (plain)"), ("translated", "translated/ur (cached)"),
                    ("personalized", "personalized (cached)")):
    rps, p50, p99, errs = runs[name]
    print(f"  {label:<34} {rps:>10.0f} {p50:>8.2f} {p99:>8.2f} {errs:>7}")
ratios = {n: runs[n][0] / p_rps if p_rps else 0 for n in ("translated", "personalized")}
ok = all(r >= 0.8 for r in ratios.values()) and all(runs[n][2] < 5 for n in ("translated", "personalized"))
print(f"  ratio translated/plain: {ratios['translated']:.2f}, personalized/plain: {ratios['personalized']:.2f}"
      f"   (target >= 0.80, p99 < 5 ms: {'met' if ok else 'NOT met'})")
for name in ("translated", "personalized"):
    (first_n, second_n), nsec, method = calls[name]
    print(f"  provider calls, {name} ({nsec} sections, method {method}): first request {first_n}, "
          f"second {second_n}   (target: second 0: {'met' if second_n == 0 else 'NOT met'})")
over = first * 1000 - LATENCY_MS
print(f"  cold streamed translation (de), model latency {LATENCY_MS} ms (the fake's first call took "
      f"{call_ms:.1f} ms): first section after {first * 1000:.1f} ms (latency + {over:.1f} ms), "
      f"{sections} sections in {total:.2f} s, {len(cold_calls)} calls"
      f"   (target latency + < 5 ms: {'met' if over < 5 else 'NOT met'})")
print(f"    of which: request to the fake's first call {pre_ms:.1f} ms, its answer to the first section "
      f"{post_ms:.1f} ms (both include the Python fake's own HTTP handling)")
if problems:
    print("bench: reading: INVALID RUN: " + "; ".join(problems), file=sys.stderr)
finish(1 if problems else 0)
PY
