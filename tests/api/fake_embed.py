"""A local fake of an OpenAI-compatible embeddings API, for black-box tests.

    fake = FakeEmbed(dim=64, dims={"fake-2": 32}, key=None).start()
    env = {"BOOKD_EMBED_URL": fake.url, "BOOKD_EMBED_MODEL": "fake-1"}
    ...
    fake.stop()

or as a pytest fixture via `fake_embed_server()` (a context manager).

POST /v1/embeddings {"model", "input": [..] | "..", "dimensions"?} answers
{"object": "list", "data": [{"object": "embedding", "index": i,
"embedding": [...]}], "model": ..., "usage": {...}}.

Vectors are deterministic: a hashed bag of lowercase, diacritic-folded word
stems (a few common English suffixes stripped, stop words dropped), each stem
adding +-1 at two hashed coordinates, L2-normalised.  Texts that share words
are therefore similar, which keeps retrieval checks meaningful.

Controls (thread-safe, for tests):
    fail_next(n, status=429, retry_after=1)   next n requests answer `status`
    hang_next(n, seconds) / hang_all(seconds)  next n (or every) request sleeps
    malformed_next(n)                          next n requests get broken JSON
    set_dim(model, dim)                        dimension per model
    key                                        required bearer key (401 otherwise)
    shuffle = True                             answer items in reverse order (by "index")
    bad_index_next(n, kind="dup")              next n answers of 2+ texts number their items
                                               wrongly: "dup" every index 0, "range" the
                                               last index one past the end
Counters: requests (total), requests_by_model, texts_by_model, max_inflight
(most requests handled at once), log (one record per request: model, inputs,
status, arrival time, dimensions asked for, Authorization header).
"""
import hashlib
import json
import math
import re
import threading
import time
import unicodedata
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOP = {
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "at", "by", "for", "with",
    "is", "are", "was", "were", "be", "been", "it", "its", "as", "that", "this",
    "these", "those", "from", "into", "than", "then", "so", "such", "not", "no",
    "but", "if", "can", "do", "does", "what", "which", "who", "how", "why",
}
SUFFIXES = ("ational", "ations", "ation", "ments", "ment", "ness", "ings", "ing",
            "edly", "ies", "ers", "er", "ed", "ly", "es", "s")
WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def fold(text):
    """Lowercase and strip diacritics."""
    t = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in t if not unicodedata.combining(c))


def stem(word):
    for suf in SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            return word[: -len(suf)]
    return word


def stems(text):
    return [stem(w) for w in WORD_RE.findall(fold(text)) if w not in STOP]


def _h(s):
    return int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "little")


def embed_text(text, dim=64):
    """The fake's vector for one text (a list of `dim` floats, unit length)."""
    v = [0.0] * dim
    for s in stems(text):
        for salt in ("a", "b"):
            h = _h(salt + s)
            v[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in v))
    if norm == 0:
        v[0] = 1.0
        return v
    return [x / norm for x in v]


def cosine(a, b):
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(x * x for x in b)) or 1.0
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


class FakeEmbed:
    def __init__(self, dim=64, dims=None, key=None):
        self.default_dim = dim
        self.dims = dict(dims or {})
        self.key = key
        self.lock = threading.Lock()
        self._release = threading.Event()  # set on stop: wakes hanging handlers
        self._fail = []          # queue of (status, retry_after)
        self._hang_n = 0
        self._hang_s = 0.0
        self._hang_all = 0.0
        self._malformed = 0
        self._bad_index = []
        self.shuffle = False
        self.reset_counters()
        self.httpd = None
        self.thread = None

    # ---- controls -------------------------------------------------------
    def fail_next(self, n, status=429, retry_after=1):
        with self.lock:
            self._fail.extend([(status, retry_after)] * n)

    def hang_next(self, n, seconds):
        with self.lock:
            self._hang_n, self._hang_s = n, float(seconds)

    def hang_all(self, seconds):
        """Every request sleeps `seconds` (0 turns it off)."""
        with self.lock:
            self._hang_all = float(seconds)

    def malformed_next(self, n):
        with self.lock:
            self._malformed = n

    def bad_index_next(self, n, kind="dup"):
        with self.lock:
            self._bad_index.extend([kind] * n)

    def clear_faults(self):
        with self.lock:
            self._bad_index = []
            self._fail = []
            self._hang_n = 0
            self._hang_all = 0.0
            self._malformed = 0

    def set_dim(self, model, dim):
        with self.lock:
            self.dims[model] = dim

    def dim_for(self, model):
        with self.lock:
            return self.dims.get(model, self.default_dim)

    def reset_counters(self):
        with self.lock:
            self.requests = 0
            self.inflight = 0
            self.max_inflight = 0
            self.requests_by_model = {}
            self.texts_by_model = {}
            self.log = []

    # ---- counters -----------------------------------------------------------
    def texts(self, model=None):
        """Texts successfully embedded (for one model, or all)."""
        with self.lock:
            if model is None:
                return sum(self.texts_by_model.values())
            return self.texts_by_model.get(model, 0)

    def ok_requests(self, model=None):
        with self.lock:
            return sum(1 for r in self.log if r["status"] == 200 and
                       (model is None or r["model"] == model))

    def snapshot(self):
        with self.lock:
            return list(self.log)

    def embedded_inputs(self, model=None):
        """Every input text of successful requests, in arrival order."""
        with self.lock:
            out = []
            for r in self.log:
                if r["status"] == 200 and (model is None or r["model"] == model):
                    out.extend(r["inputs"])
            return out

    # ---- lifecycle --------------------------------------------------------------
    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _done(self):
                # counted out before the answer goes back: the client cannot
                # start its next request before it has this one's answer
                if getattr(self, "_inflight", False):
                    self._inflight = False
                    with fake.lock:
                        fake.inflight = max(0, fake.inflight - 1)

            def _send(self, status, body, headers=None):
                self._done()
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self):
                try:
                    self._post()
                finally:
                    self._done()

            def _post(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    req = json.loads(raw or b"{}")
                except ValueError:
                    req = None
                model = req.get("model") if isinstance(req, dict) else None
                inputs = req.get("input") if isinstance(req, dict) else None
                if isinstance(inputs, str):
                    inputs = [inputs]
                rec = {"t": time.monotonic(), "model": model, "inputs": list(inputs or []),
                       "status": None, "path": self.path,
                       "dimensions": req.get("dimensions") if isinstance(req, dict) else None,
                       "auth": self.headers.get("Authorization")}
                with fake.lock:
                    fake.requests += 1
                    fake.requests_by_model[model] = fake.requests_by_model.get(model, 0) + 1
                    fake.log.append(rec)
                    fake.inflight += 1
                    fake.max_inflight = max(fake.max_inflight, fake.inflight)
                    self._inflight = True
                    hang = fake._hang_all
                    if fake._hang_n > 0:
                        fake._hang_n -= 1
                        hang = max(hang, fake._hang_s)
                    fail = fake._fail.pop(0) if fake._fail else None
                    malformed = False
                    if not fail and fake._malformed > 0:
                        fake._malformed -= 1
                        malformed = True
                if hang:
                    fake._release.wait(hang)
                if self.path.rstrip("/") != "/v1/embeddings":
                    rec["status"] = 404
                    return self._send(404, {"error": {"message": "not found"}})
                if fake.key is not None and self.headers.get("Authorization") != f"Bearer {fake.key}":
                    rec["status"] = 401
                    return self._send(401, {"error": {"message": "invalid api key"}})
                if fail:
                    status, retry_after = fail
                    rec["status"] = status
                    hdrs = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                    return self._send(status, {"error": {"message": f"fake {status}"}}, hdrs)
                if not isinstance(req, dict) or not isinstance(model, str) or \
                        not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
                    rec["status"] = 400
                    return self._send(400, {"error": {"message": "bad request"}})
                if malformed:
                    rec["status"] = 200
                    rec["malformed"] = True
                    rec["inputs"] = []
                    return self._send(200, b'{"object":"list","data":[{"object":"embedding","index":0,')
                dim = req.get("dimensions") or fake.dim_for(model)
                data = [{"object": "embedding", "index": i, "embedding": embed_text(t, dim)}
                        for i, t in enumerate(inputs)]
                with fake.lock:
                    bad = fake._bad_index.pop(0) if fake._bad_index and len(data) > 1 else None
                if bad == "dup":
                    for d in data:
                        d["index"] = 0
                elif bad == "range":
                    data[-1]["index"] = len(data)
                if bad:
                    rec["bad_index"] = bad
                if fake.shuffle:
                    data.reverse()
                toks = sum(len(t.split()) for t in inputs)
                rec["status"] = 200
                with fake.lock:
                    fake.texts_by_model[model] = fake.texts_by_model.get(model, 0) + len(inputs)
                return self._send(200, {"object": "list", "data": data, "model": model,
                                        "usage": {"prompt_tokens": toks, "total_tokens": toks}})

        class Srv(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Srv(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self._release.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


@contextmanager
def fake_embed_server(**kw):
    fake = FakeEmbed(**kw).start()
    try:
        yield fake
    finally:
        fake.stop()
