#!/usr/bin/python3
"""Retrieval quality of bookd's search: recall@1/5/10 and MRR of keyword,
vector and hybrid search on two books, for two chunk sizes, next to a plain
BM25 baseline over fixed 200-word windows. See bench/retrieval/README.md.

    /usr/bin/python3 bench/retrieval/eval.py        (from the repository root, after
                                                      `make build/bookd`)

Environment:
    BOOKD_BIN           bookd binary (default build/bookd)
    EVAL_CHUNK_TOKENS   chunk sizes to evaluate, comma-separated (default 128,256)
    EVAL_EMBED_URL      use this OpenAI-compatible provider (…/v1) instead of the
                        built-in fake one; EVAL_EMBED_MODEL, EVAL_EMBED_KEY go with it
    EVAL_KEEP=1         keep the temp directory (printed) for inspection

For each chunk size: a fresh data directory in a temp dir; `bookd import` of
both books; `bookd reindex` (chunks, then embeddings from the embedding
server); `bookd serve` on a free 127.0.0.1 port (BOOKD_WORKERS=0); then
GET /api/v1/search?q=…&mode=…&limit=10&book_id=… for every question and
mode. The embedding server is a local fake (deterministic hashed
bag-of-stems, 256 dims) running in this process on 127.0.0.1.

A result is correct when it comes from the question's chapter and its text
contains the answer passage, compared as sequences of words (letters and
digits; case, punctuation, Markdown markup and whitespace are ignored).
Writes bench/out/retrieval.json.
"""
import hashlib
import http.server
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "bench", "out")
LIMIT = 10
MODES = ("keyword", "vector", "hybrid")
WINDOW_WORDS = 200
EMBED_DIM = 256
FAKE_MODEL = "fake-bag-of-stems-256"

WORD = re.compile(r"[^\W_]+")


def words(s):
    """The answer-matching form: lower-case words joined by single spaces,
    padded so that `in` only matches whole words."""
    return " " + " ".join(w.lower() for w in WORD.findall(s)) + " "


# ---- the fake embedding provider ---------------------------------------------

STOP = set("""a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have
having he her here hers him his how i if in into is it its itself just me more most my no nor not now of off
on once only or other our ours out over own same she should so some such than that the their theirs them then
there these they this those through to too under until up very was we were what when where which while who
whom why will with would you your yours one two three""".split())

SUFFIXES = ("ational", "ization", "fulness", "ousness", "iveness", "tional", "ations", "ements", "ation",
            "ement", "ments", "ment", "ings", "ness", "ies", "ied", "ing", "ers", "est", "ed", "er", "es",
            "ly", "al", "s")


def stem(w):
    """A crude suffix stripper: enough to map 'robots', 'robotic' and
    'robot' near each other, nothing more."""
    for suf in SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            w = w[: -len(suf)] + ("y" if suf in ("ies", "ied") else "")
            break
    if len(w) > 4 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]  # 'stopp' -> 'stop'
    return w


def embed(text):
    """Deterministic hashed bag-of-stems: each stem adds (1 + log tf) at one
    of EMBED_DIM positions with a hash-chosen sign; L2-normalised."""
    tf = {}
    for w in WORD.findall(text.lower()):
        if w in STOP or len(w) < 2:
            continue
        s = stem(w)
        tf[s] = tf.get(s, 0) + 1
    v = [0.0] * EMBED_DIM
    for s, n in tf.items():
        h = int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
        v[h % EMBED_DIM] += (1.0 + math.log(n)) * (1.0 if (h >> 32) & 1 else -1.0)
    norm = math.sqrt(sum(x * x for x in v))
    if norm == 0:
        v[0], norm = 1.0, 1.0  # empty text: any fixed unit vector
    return [round(x / norm, 6) for x in v]


class EmbedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls = 0
    texts = 0
    lock = threading.Lock()

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(n))
            inp = req["input"]
            inp = [inp] if isinstance(inp, str) else inp
            body = json.dumps({"object": "list", "model": req.get("model", FAKE_MODEL),
                               "data": [{"object": "embedding", "index": i, "embedding": embed(t)}
                                        for i, t in enumerate(inp)]}).encode()
            code = 200
            with EmbedHandler.lock:
                EmbedHandler.calls += 1
                EmbedHandler.texts += len(inp)
        except (ValueError, KeyError, TypeError) as e:
            body, code = json.dumps({"error": {"message": str(e)}}).encode(), 400
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_embed_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EmbedHandler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---- bookd ---------------------------------------------------------------------

def bookd_env(data_dir, chunk_tokens, embed_url, model, key):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKD_") and k != "DATABASE_URL"}
    env.update({
        "BOOKD_DATA_DIR": data_dir, "DATABASE_URL": "", "BOOKD_LOG_LEVEL": "warn",
        "BOOKD_CHUNK_TOKENS": str(chunk_tokens), "BOOKD_EMBED_URL": embed_url, "BOOKD_EMBED_MODEL": model,
        "BOOKD_EMBED_KEY": key, "BOOKD_WORKERS": "0", "BOOKD_SHUTDOWN_TIMEOUT": "5",
        "BOOKD_JWT_SECRET": "retrieval-eval-" + "x" * 32,
    })
    return env


def run_bookd(binary, args, env, cwd):
    t0 = time.monotonic()
    p = subprocess.run([binary] + args, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit("eval: bookd %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return json.loads(p.stdout.strip().splitlines()[-1]), dt


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(binary, env, cwd, log_path):
    for _ in range(3):
        port = free_port()
        e = dict(env, BOOKD_HOST="127.0.0.1", BOOKD_PORT=str(port))
        log = open(log_path, "ab")
        p = subprocess.Popen([binary, "serve"], env=e, cwd=cwd, stdout=log, stderr=log)
        log.close()
        url = "http://127.0.0.1:%d" % port
        for _ in range(100):
            if p.poll() is not None:
                break
            try:
                if requests.get(url + "/health/live", timeout=1).status_code == 200:
                    return p, url
            except requests.RequestException:
                pass
            time.sleep(0.1)
        stop(p)
    raise SystemExit("eval: bookd serve did not start (log: %s)" % log_path)


def stop(p):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# ---- the books and their questions ----------------------------------------------

def load_questions(path):
    with open(path) as f:
        return json.load(f)["questions"]


def check_answers(name, folder, questions):
    for q in questions:
        with open(os.path.join(folder, q["chapter"])) as f:
            if words(q["answer"]) not in words(f.read()):
                raise SystemExit("eval: %s: answer not found in %s: %r" % (name, q["chapter"], q["answer"]))


def chapter_files(folder):
    out = []
    for d, _, files in os.walk(folder):
        for f in files:
            if f.endswith((".md", ".mdx")):
                out.append(os.path.relpath(os.path.join(d, f), folder))
    return sorted(out)


# ---- the baseline: BM25 over fixed windows of plain text -------------------------

def plain_text(md):
    """Markdown/MDX to plain text: front matter, MDX import/export lines, JSX
    tags, fences, link targets and markup characters go."""
    lines = md.split("\n")
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                lines = lines[i + 1:]
                break
    out = []
    for ln in lines:
        s = ln.strip()
        if s.startswith(("import ", "export ", "```", "~~~")):
            continue
        ln = re.sub(r"<[^>]*>", " ", ln)
        ln = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", ln)
        ln = re.sub(r"[#*_`|>]", " ", ln)
        out.append(ln)
    return "\n".join(out)


def fts_terms(q):
    """bookd's search_terms(): runs of ASCII letters/digits or non-ASCII
    characters, lower-cased, de-duplicated, at most 32."""
    terms, cur = [], []
    for c in q + " ":
        if (c.isascii() and c.isalnum()) or ord(c) >= 0x80:
            cur.append(c.lower())
        elif cur:
            t = "".join(cur)
            cur = []
            if t not in terms:
                terms.append(t)
    return terms[:32]


def fts_query(q):
    return " OR ".join('"%s"' % t for t in fts_terms(q))


class Baseline:
    def __init__(self, stride):
        self.stride = stride
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE w USING fts5(book UNINDEXED, chapter UNINDEXED, text, "
                        "tokenize='porter unicode61 remove_diacritics 2')")
        self.count = 0

    def add_book(self, book, folder):
        for ch in chapter_files(folder):
            with open(os.path.join(folder, ch)) as f:
                toks = plain_text(f.read()).split()
            start = 0
            while True:
                self.db.execute("INSERT INTO w VALUES (?, ?, ?)", (book, ch, " ".join(toks[start:start + WINDOW_WORDS])))
                self.count += 1
                if start + WINDOW_WORDS >= len(toks):
                    break
                start += self.stride

    def answerable(self, book, chapter, answer):
        a = words(answer)
        return any(a in words(t) for (t,) in self.db.execute(
            "SELECT text FROM w WHERE book = ? AND chapter = ?", (book, chapter)))

    def search(self, book, q):
        return [{"chapter": c, "text": t} for c, t in self.db.execute(
            "SELECT chapter, text FROM w WHERE w MATCH ? AND book = ? ORDER BY bm25(w) LIMIT ?",
            (fts_query(q), book, LIMIT))]


# ---- metrics ---------------------------------------------------------------------

def rank_of(results, chapter, answer):
    a = words(answer)
    for i, r in enumerate(results):
        if r["chapter"] == chapter and a in words(r["text"]):
            return i + 1
    return 0


def metrics(ranks):
    n = len(ranks)
    if not n:
        return {"n": 0}
    at = lambda k: sum(1 for r in ranks if 0 < r <= k) / n
    return {"n": n, "recall@1": round(at(1), 4), "recall@5": round(at(5), 4), "recall@10": round(at(10), 4),
            "mrr": round(sum(1.0 / r for r in ranks if r) / n, 4)}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(math.ceil(p / 100.0 * len(xs))) - 1))] if xs else 0.0


# ---- one chunk setting -------------------------------------------------------------

def eval_bookd(binary, books, chunk_tokens, embed_url, model, key, tmp):
    work = os.path.join(tmp, "t%d" % chunk_tokens)
    data = os.path.join(work, "data")
    os.makedirs(work)
    env = bookd_env(data, chunk_tokens, embed_url, model, key)
    res = {"chunk_tokens": chunk_tokens, "books": {}}
    ids = {}
    for name, folder, _ in books:
        out, dt = run_bookd(binary, ["import", folder], env, work)
        ids[name] = out["book_id"]
        res["books"][name] = {"import_s": round(dt, 3), "chapters": out["chapters"]}
    calls0, texts0 = EmbedHandler.calls, EmbedHandler.texts
    st, dt = run_bookd(binary, ["reindex"], env, work)
    res["reindex"] = dict(st, seconds=round(dt, 3), embed_requests=EmbedHandler.calls - calls0,
                          embedded_texts=EmbedHandler.texts - texts0)
    if st["embedded"] != st["chunks"]:
        raise SystemExit("eval: reindex embedded %d of %d chunks" % (st["embedded"], st["chunks"]))

    # The chunks as stored, for the answerable ceiling and chunk statistics.
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "bookd.db"), uri=True)
    chunks = {}
    for book_id, key_, text, tokens in db.execute(
            "SELECT c.book_id, ch.source_key, c.text, c.token_count FROM chunks c "
            "JOIN chapters ch ON ch.id = c.chapter_id"):
        chunks.setdefault((book_id, key_), []).append((text, tokens))
    src = {cid: k for cid, k in db.execute("SELECT id, source_key FROM chapters")}
    db.close()

    serve, url = start_serve(binary, env, work, os.path.join(work, "serve.log"))
    try:
        http = requests.Session()
        per_mode = {m: {"ranks": {}, "lat": []} for m in MODES}
        for name, folder, questions in books:
            bchunks = [c for (b, _), cs in chunks.items() if b == ids[name] for c in cs]
            res["books"][name].update({
                "chunks": len(bchunks),
                "avg_chunk_tokens": round(sum(t for _, t in bchunks) / max(1, len(bchunks)), 1),
                "answerable": sum(1 for q in questions if any(
                    words(q["answer"]) in words(t) for t, _ in chunks.get((ids[name], q["chapter"]), []))),
            })
            for m in MODES:
                ranks = []
                for q in questions:
                    t0 = time.monotonic()
                    r = http.get(url + "/api/v1/search", params={"q": q["q"], "mode": m, "limit": LIMIT,
                                                                 "book_id": ids[name]}, timeout=60)
                    per_mode[m]["lat"].append((time.monotonic() - t0) * 1000)
                    if r.status_code != 200:
                        raise SystemExit("eval: search answered %d: %s" % (r.status_code, r.text[:300]))
                    hits = [{"chapter": src.get(h["chapter_id"]), "text": h["text"]} for h in r.json()["results"]]
                    ranks.append(rank_of(hits, q["chapter"], q["answer"]))
                per_mode[m]["ranks"][name] = ranks
    finally:
        stop(serve)
    if serve.returncode not in (0, None):
        raise SystemExit("eval: bookd serve exited with %d (log: %s)" % (serve.returncode, work))
    res["modes"] = {}
    for m in MODES:
        rk = per_mode[m]["ranks"]
        res["modes"][m] = {"books": {b: metrics(r) for b, r in rk.items()},
                           "all": metrics([x for r in rk.values() for x in r]),
                           "ranks": rk,
                           "latency_ms": {"p50": round(pct(per_mode[m]["lat"], 50), 2),
                                          "p99": round(pct(per_mode[m]["lat"], 99), 2)}}
    return res


def eval_baseline(books, stride):
    bl = Baseline(stride)
    for name, folder, _ in books:
        bl.add_book(name, folder)
    rk, answerable = {}, {}
    for name, _, questions in books:
        rk[name] = [rank_of(bl.search(name, q["q"]), q["chapter"], q["answer"]) for q in questions]
        answerable[name] = sum(1 for q in questions if bl.answerable(name, q["chapter"], q["answer"]))
    return {"window_words": WINDOW_WORDS, "stride_words": stride, "windows": bl.count, "answerable": answerable,
            "books": {b: metrics(r) for b, r in rk.items()}, "all": metrics([x for r in rk.values() for x in r]),
            "ranks": rk}


# ---- report ------------------------------------------------------------------------

def row(label, m, extra=""):
    return "%-34s %5d %8.3f %8.3f %8.3f %7.3f  %s" % (label, m["n"], m["recall@1"], m["recall@5"], m["recall@10"],
                                                  m["mrr"], extra)


def main():
    binary = os.environ.get("BOOKD_BIN") or os.path.join(ROOT, "build", "bookd")
    if not os.path.isabs(binary):
        binary = os.path.join(ROOT, binary)
    if not os.access(binary, os.X_OK):
        raise SystemExit("eval: %s not found (run `make build/bookd`)" % binary)
    sizes = [int(x) for x in os.environ.get("EVAL_CHUNK_TOKENS", "128,256").split(",") if x.strip()]
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))

    tmp = tempfile.mkdtemp(prefix="bookd-retrieval.")
    embed_srv = None
    try:
        subprocess.run([sys.executable, os.path.join(HERE, "gen_book.py"), os.path.join(tmp, "gen")], check=True)
        books = [
            ("physical-ai", os.path.join(ROOT, "sample", "physical-ai"),
             load_questions(os.path.join(HERE, "questions.json"))),
            ("caldmere", os.path.join(tmp, "gen", "caldmere"),
             load_questions(os.path.join(tmp, "gen", "caldmere-questions.json"))),
        ]
        for name, folder, qs in books:
            check_answers(name, folder, qs)
        if os.environ.get("EVAL_EMBED_URL"):
            embed_url = os.environ["EVAL_EMBED_URL"]
            model = os.environ.get("EVAL_EMBED_MODEL", "text-embedding-3-small")
            key = os.environ.get("EVAL_EMBED_KEY", "")
            embedder = "external: %s (%s)" % (embed_url, model)
        else:
            embed_srv = start_embed_server()
            embed_url = "http://127.0.0.1:%d/v1" % embed_srv.server_address[1]
            model, key = FAKE_MODEL, ""
            embedder = "fake: hashed bag-of-stems, %d dims, in-process on 127.0.0.1" % EMBED_DIM

        results = [eval_bookd(binary, books, n, embed_url, model, key, tmp) for n in sizes]
        baseline = eval_baseline(books, WINDOW_WORDS)
        baseline_overlap = eval_baseline(books, WINDOW_WORDS // 2)
    finally:
        if embed_srv:
            embed_srv.shutdown()
        if os.environ.get("EVAL_KEEP") == "1":
            print("eval: kept %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- table
    nq = {name: len(qs) for name, _, qs in books}
    print("bookd retrieval evaluation: %s; limit %d; embedder %s" % (
        ", ".join("%s %d questions" % (b, n) for b, n in nq.items()), LIMIT, embedder))
    print()
    hdr = "%-34s %5s %8s %8s %8s %7s  %s" % ("system", "n", "R@1", "R@5", "R@10", "MRR", "note")
    for scope in ["all"] + list(nq):
        print("== %s" % ("all questions" if scope == "all" else scope))
        print(hdr)
        for bl, label in ((baseline, "BM25 200-word windows (baseline)"),
                          (baseline_overlap, "BM25 200-word windows, stride 100")):
            m = bl["all"] if scope == "all" else bl["books"][scope]
            ans = sum(bl["answerable"].values()) if scope == "all" else bl["answerable"][scope]
            print(row(label, m, "%d windows; answer inside one window: %d" % (bl["windows"], ans)))
        for r in results:
            for mode in MODES:
                mm = r["modes"][mode]
                m = mm["all"] if scope == "all" else mm["books"][scope]
                if scope == "all":
                    note = "%d chunks; client p50 %.1f ms" % (r["reindex"]["chunks"], mm["latency_ms"]["p50"])
                else:
                    b = r["books"][scope]
                    note = "%d chunks, avg %.0f tokens; answer inside one chunk: %d" % (
                        b["chunks"], b["avg_chunk_tokens"], b["answerable"])
                print(row("bookd %-7s chunk %d" % (mode, r["chunk_tokens"]), m, note))
        print()

    # ---- improvement of bookd's best mode over the baseline
    improvements = []
    for r in results:
        best = max(MODES, key=lambda m: (r["modes"][m]["all"]["mrr"], r["modes"][m]["all"]["recall@5"]))
        b, bb = r["modes"][best]["all"], baseline["all"]
        imp = {"chunk_tokens": r["chunk_tokens"], "best_mode": best}
        for k in ("recall@1", "recall@5", "recall@10", "mrr"):
            imp[k] = {"bookd": b[k], "baseline": bb[k], "delta": round(b[k] - bb[k], 4),
                      "relative_pct": round(100.0 * (b[k] - bb[k]) / bb[k], 1) if bb[k] else None}
        improvements.append(imp)
        print("best bookd mode at chunk %d: %s; vs BM25 200-word windows: R@1 %+.3f, R@5 %+.3f, R@10 %+.3f, "
              "MRR %+.3f (%+.0f%%)" % (r["chunk_tokens"], best, imp["recall@1"]["delta"], imp["recall@5"]["delta"],
                                        imp["recall@10"]["delta"], imp["mrr"]["delta"], imp["mrr"]["relative_pct"] or 0))

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    os.makedirs(OUT, exist_ok=True)
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "limit": LIMIT,
        "embedder": embedder,
        "match": "chapter equal and answer words a contiguous subsequence of the result's words",
        "questions": nq,
        "bookd": results,
        "baseline": baseline,
        "baseline_overlapping": baseline_overlap,
        "improvement_over_baseline": improvements,
    }
    with open(os.path.join(OUT, "retrieval.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    print("written: bench/out/retrieval.json")


if __name__ == "__main__":
    main()
