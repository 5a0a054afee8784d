"""Black-box test harness for bookd.

Starts the real binary (env BOOKD_BIN, default /work/main/build/bookd) and
talks to it over HTTP / the CLI only.  Nothing here knows about src/.
"""
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import pgtest
import requests

BOOKD = os.environ.get("BOOKD_BIN", "/work/main/build/bookd")
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO_ROOT / "sample"
API_KEY = "test-admin-key"
ADMIN = {"X-API-Key": API_KEY}
# the ASan/UBSan run (make api-asan) sets BOOKD_SANITIZED=1: allow more time
SLOW = 3 if os.environ.get("BOOKD_SANITIZED") else 1
HTTP_TIMEOUT = 10 * SLOW

UUID7_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I
)
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SANE_RID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

BOOK_KEYS = {
    "id", "title", "author", "language", "edition", "publisher", "pages",
    "publish_date", "cover_url", "isbns", "chapter_count", "created_at",
    "updated_at",
}
CHAPTER_KEYS = {
    "id", "book_id", "number", "title", "content_markdown", "summary",
    "word_count", "audio_url", "sections", "updated_at",
}


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def require_binary():
    if not (os.path.isfile(BOOKD) and os.access(BOOKD, os.X_OK)):
        pytest.fail(f"bookd binary not found or not executable at {BOOKD} "
                    f"(build it with `make -C /work/main build/bookd`)")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def uniq(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def clean_env():
    """The caller's environment minus every BOOKD_* variable."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("BOOKD_") and k != "DATABASE_URL"}


def isbn13_check(d12):
    s = sum((1 if i % 2 == 0 else 3) * int(c) for i, c in enumerate(d12))
    return str((10 - s % 10) % 10)


def isbn10_check(d9):
    s = sum((10 - i) * int(c) for i, c in enumerate(d9))
    r = (11 - s % 11) % 11
    return "X" if r == 10 else str(r)


def random_isbn_pair():
    """(isbn10, isbn13) for the same random book, digits only."""
    d9 = "".join(random.choice("0123456789") for _ in range(9))
    i10 = d9 + isbn10_check(d9)
    d12 = "978" + d9
    return i10, d12 + isbn13_check(d12)


def random_isbn13():
    return random_isbn_pair()[1]


def hyphenate13(i13):
    return f"{i13[:3]}-{i13[3]}-{i13[4:7]}-{i13[7:12]}-{i13[12]}"


def norm_isbn(s):
    return re.sub(r"[\s-]", "", s).upper()


def assert_error(resp, status, code):
    """Check the uniform error envelope and X-Request-ID correlation."""
    assert resp.status_code == status, (
        f"expected {status} {code}, got {resp.status_code}: {resp.text[:500]}")
    rid = resp.headers.get("X-Request-ID")
    assert rid, "error response lacks X-Request-ID"
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"error Content-Type {ctype!r}"
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"], err
    assert err["request_id"] == rid, (err, rid)
    assert isinstance(err["details"], list), err
    return err


def assert_book_shape(b):
    assert isinstance(b, dict)
    assert BOOK_KEYS <= set(b), f"missing keys {BOOK_KEYS - set(b)}"
    assert UUID7_RE.match(b["id"]), b["id"]
    assert TS_RE.match(b["created_at"]), b["created_at"]
    assert TS_RE.match(b["updated_at"]), b["updated_at"]
    assert isinstance(b["isbns"], list)
    for i in b["isbns"]:
        assert set(i) >= {"isbn", "isbn_type"}
        assert i["isbn_type"] in ("isbn13", "isbn10")
    assert isinstance(b["chapter_count"], int)


def assert_chapter_shape(c, with_content=True):
    keys = CHAPTER_KEYS if with_content else CHAPTER_KEYS - {"content_markdown"}
    assert keys <= set(c), f"missing keys {keys - set(c)}"
    assert UUID7_RE.match(c["id"]), c["id"]
    assert isinstance(c["number"], int) and c["number"] >= 1
    assert TS_RE.match(c["updated_at"]), c["updated_at"]
    assert isinstance(c["sections"], list)
    assert isinstance(c["word_count"], int)


# --------------------------------------------------------------------------
# raw HTTP (for requests the `requests` library cannot or will not send)
# --------------------------------------------------------------------------

def raw_http(port, head: bytes, body: bytes = b"", timeout=10.0):
    """Send head+body on a fresh socket (tolerating an early close by the
    server while we are still writing) and parse one HTTP response.
    Returns (status, headers-with-lowercase-names, body-bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        data = head + body
        try:
            view = memoryview(data)
            while view:
                n = s.send(view[:65536])
                view = view[n:]
        except (BrokenPipeError, ConnectionResetError):
            pass  # server answered early and closed; read what it sent
        buf = b""
        deadline = time.monotonic() + timeout
        status, headers, hdr_end = None, {}, None
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            if hdr_end is None and b"\r\n\r\n" in buf:
                hdr_end = buf.index(b"\r\n\r\n") + 4
                lines = buf[:hdr_end].decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                for ln in lines[1:]:
                    if ":" in ln:
                        k, v = ln.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
            if hdr_end is not None:
                cl = headers.get("content-length")
                if cl is not None and len(buf) - hdr_end >= int(cl):
                    break
        if status is None:
            raise AssertionError(f"no HTTP response received (got {buf[:200]!r})")
        return status, headers, buf[hdr_end:]
    finally:
        s.close()


# --------------------------------------------------------------------------
# server process wrapper
# --------------------------------------------------------------------------

class Server:
    def __init__(self, proc, port, data_dir, log_path, env, cwd):
        self.proc = proc
        self.port = port
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.base = f"http://127.0.0.1:{port}"
        self.http = requests.Session()

    def url(self, path):
        return self.base + path

    def request(self, method, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.http.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- convenience for tests ------------------------------------------
    def create_book(self, **fields):
        fields.setdefault("title", uniq("book"))
        r = self.post("/api/v1/books", json=fields, headers=ADMIN)
        assert r.status_code == 201, r.text
        return r.json()

    def add_chapter(self, book_id, **fields):
        fields.setdefault("title", uniq("chap"))
        fields.setdefault("content_markdown", "Some text.")
        r = self.post(f"/api/v1/books/{book_id}/chapters", json=fields, headers=ADMIN)
        assert r.status_code == 201, r.text
        return r.json()

    def all_books(self):
        items, cursor, seen = [], None, 0
        while True:
            params = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            r = self.get("/api/v1/books", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            items.extend(body["items"])
            cursor = body["next_cursor"]
            seen += 1
            assert seen < 1000, "pagination does not terminate"
            if not cursor:
                return items

    def books_titled(self, needle):
        return [b for b in self.all_books() if needle in (b.get("title") or "")]

    def assert_alive(self):
        assert self.proc.poll() is None, (
            f"server died with code {self.proc.returncode}; log tail:\n{self.log_tail()}")
        r = self.get("/health/live")
        assert r.status_code == 200

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_records(self):
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_log(self, pred, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.log_records() if pred(r)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        timeout *= SLOW
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"server did not exit within {timeout}s after {sig!r}")
        self.http.close()
        if os.environ.get("BOOKD_SANITIZED"):
            text = Path(self.log_path).read_text(errors="replace")
            for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                assert marker not in text, f"sanitizer report in server log:\n{self.log_tail()}"
        return self.proc.returncode


def start_server(data_dir, env=None, unset=(), cwd=None, port=None,
                 set_port=True, wait=True, log_name="server.stderr"):
    """Start `bookd serve`.  env: extra/override variables; unset: names to
    drop from the defaults; set_port=False leaves BOOKD_PORT unset (for .env
    tests; then pass port= to say where it should listen)."""
    require_binary()
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    cwd = Path(cwd) if cwd else data_dir
    # A port from free_port() is free only when it is picked: another process
    # (a bookd of another pytest worker, an outgoing connection) may take it
    # before this bookd binds it.  Then bookd exits saying so: pick another.
    own_port = port is None and set_port
    for attempt in range(5):
        srv = _start_server_once(data_dir, env, unset, cwd, port or free_port(),
                                 set_port, log_name)
        if not wait or _wait_listening(srv, retry_if_taken=own_port and attempt < 4):
            return srv


def _start_server_once(data_dir, env, unset, cwd, port, set_port, log_name):
    e = clean_env()
    e.update({
        "BOOKD_HOST": "127.0.0.1",
        "BOOKD_DATA_DIR": str(data_dir),
        "BOOKD_API_KEY": API_KEY,
        "BOOKD_LOG_LEVEL": "info",
    })
    if set_port:
        e["BOOKD_PORT"] = str(port)
    url = pgtest.database_url_for(data_dir)
    if url:
        e["DATABASE_URL"] = url
    for k in unset:
        e.pop(k, None)
    if env:
        e.update(env)
    log_path = cwd / log_name
    logf = open(log_path, "wb")
    proc = subprocess.Popen([BOOKD, "serve"], cwd=str(cwd), env=e,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=logf)
    logf.close()
    return Server(proc, port, data_dir, log_path, e, cwd)


def _wait_listening(srv, retry_if_taken):
    """Wait until this bookd answers /health/live.  An answer alone does not
    prove it is this process's: when another process holds the port, this
    bookd exits while that one answers.  So also wait for this process's own
    "listening" line (logged once its socket is bound).  Returns False when
    the port was taken and retry_if_taken is set."""
    proc = srv.proc
    logs_info = srv.env.get("BOOKD_LOG_LEVEL", "info") in ("debug", "info")
    deadline = time.monotonic() + 10 * SLOW
    while True:
        if proc.poll() is not None:
            if retry_if_taken and "cannot listen on" in srv.log_text():
                return False
            raise AssertionError(
                f"bookd serve exited early with {proc.returncode}:\n{srv.log_tail()}")
        try:
            r = requests.get(srv.url("/health/live"), timeout=1)
            if r.status_code == 200 and (not logs_info or any(
                    x.get("msg") == "listening" and str(x.get("url", "")).endswith(f":{srv.port}")
                    for x in srv.log_records())):
                return True
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"bookd did not answer /health/live within 10s:\n{srv.log_tail()}")
        time.sleep(0.05)


def run_bookd(args, data_dir=None, env=None, unset=(), cwd=None, timeout=30):
    """Run a bookd CLI command; returns CompletedProcess with str output."""
    require_binary()
    timeout *= SLOW
    e = clean_env()
    if data_dir is not None:
        e["BOOKD_DATA_DIR"] = str(data_dir)
        url = pgtest.database_url_for(data_dir)
        if url:
            e["DATABASE_URL"] = url
    for k in unset:
        e.pop(k, None)
    if env:
        e.update(env)
    if cwd is None and data_dir is not None and Path(data_dir).is_dir():
        cwd = data_dir  # never pick up a stray .env from the repo checkout
    p = subprocess.run([BOOKD, *map(str, args)], cwd=str(cwd) if cwd else None,
                       env=e, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    p.stdout = p.stdout.decode("utf-8", errors="replace")
    p.stderr = p.stderr.decode("utf-8", errors="replace")
    return p


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("shared-data")
    srv = start_server(data)
    yield srv
    rc = srv.stop()
    assert rc == 0, f"shared server exited with {rc} on SIGTERM; log tail:\n{srv.log_tail()}"


@pytest.fixture
def server_factory(tmp_path):
    started = []
    counter = [0]

    def factory(data_dir=None, **kw):
        counter[0] += 1
        if data_dir is None:
            data_dir = tmp_path / f"data{counter[0]}"
        kw.setdefault("log_name", f"server{counter[0]}.stderr")
        srv = start_server(data_dir, **kw)
        started.append(srv)
        return srv

    yield factory
    problems = []
    for srv in started:
        if srv.proc.poll() is None:
            try:
                rc = srv.stop()
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if rc != 0:
                problems.append(f"server on port {srv.port} exited {rc}:\n{srv.log_tail()}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def book(server):
    """A fresh book on the shared server."""
    return server.create_book(title=uniq("fixture book"), author="Fixture Author")


# --------------------------------------------------------------------------
# users / auth helpers (used by test_users_*.py)
# --------------------------------------------------------------------------

import base64 as _b64
import hashlib as _hashlib
import hmac as _hmac

JWT_SECRET = "users-test-jwt-secret-0123456789-abcdefghij"  # >= 32 characters
PASSWORD = "correct horse battery staple"


def b64url(data: bytes) -> str:
    return _b64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    return _b64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_encode(header: dict, claims: dict, sign) -> str:
    """header.claims.sign(signing_input); sign(bytes) -> bytes (or None: empty)."""
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    c = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{h}.{c}".encode("ascii")
    sig = sign(signing_input) if sign else b""
    return f"{h}.{c}.{b64url(sig)}"


def hs256_sign(secret):
    key = secret.encode() if isinstance(secret, str) else secret
    return lambda msg: _hmac.new(key, msg, _hashlib.sha256).digest()


def hs256_token(claims: dict, secret=JWT_SECRET, header=None) -> str:
    return jwt_encode(header or {"alg": "HS256", "typ": "JWT"}, claims, hs256_sign(secret))


def jwt_parts(token: str):
    h, c, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(c)), b64url_decode(s)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def new_email(tag="user") -> str:
    return f"{uniq(tag)}@example.com"


def run_bookd_input(args, stdin_text=None, data_dir=None, env=None, cwd=None, timeout=30):
    """Like run_bookd, but feeds stdin_text (str) on standard input."""
    require_binary()
    e = clean_env()
    if data_dir is not None:
        e["BOOKD_DATA_DIR"] = str(data_dir)
        url = pgtest.database_url_for(data_dir)
        if url:
            e["DATABASE_URL"] = url
    if env:
        e.update(env)
    if cwd is None and data_dir is not None and Path(data_dir).is_dir():
        cwd = data_dir
    p = subprocess.run([BOOKD, *map(str, args)], cwd=str(cwd) if cwd else None, env=e,
                       input=(stdin_text or "").encode(), capture_output=True,
                       timeout=timeout * SLOW)
    p.stdout = p.stdout.decode("utf-8", errors="replace")
    p.stderr = p.stderr.decode("utf-8", errors="replace")
    return p


def cli_for(srv, args, stdin_text=None, timeout=30):
    """Run a bookd CLI command against a running server's data directory with
    the server's own configuration (same JWT secret, same master key)."""
    env = {k: v for k, v in srv.env.items() if k.startswith("BOOKD_")}
    return run_bookd_input(args, stdin_text, data_dir=srv.data_dir, env=env,
                           cwd=srv.data_dir, timeout=timeout)


def users_env(**extra) -> dict:
    """Environment for a users/auth test server: a known JWT secret and
    login and registration limits high enough not to interfere unless a test
    lowers them."""
    env = {"BOOKD_JWT_SECRET": JWT_SECRET, "BOOKD_LOGIN_BURST": "100000",
           "BOOKD_LOGIN_PER_MINUTE": "100000", "BOOKD_REGISTER_BURST": "100000",
           "BOOKD_REGISTER_PER_MINUTE": "100000"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def register(srv, email=None, password=PASSWORD, display_name=None, expect=201):
    body = {"email": email or new_email(), "password": password}
    if display_name is not None:
        body["display_name"] = display_name
    r = srv.post("/api/v1/auth/register", json=body)
    assert r.status_code == expect, f"register {body['email']}: {r.status_code} {r.text[:300]}"
    return r.json()


def login(srv, email, password=PASSWORD):
    return srv.post("/api/v1/auth/login", json={"email": email, "password": password})


def make_user(srv, role="reader", password=PASSWORD, tag="user"):
    """Register a user over the API, give it `role` with the CLI, and return a
    dict with email, password, id, access, refresh and ready-made headers."""
    email = new_email(tag)
    body = register(srv, email, password)
    if role != "reader":
        p = cli_for(srv, ["user", "set-role", "--email", email, "--role", role])
        assert p.returncode == 0, f"set-role failed: {p.stdout} {p.stderr}"
    return {"email": email, "password": password, "id": body["user"]["id"],
            "access": body["access_token"], "refresh": body["refresh_token"],
            "headers": bearer(body["access_token"]), "role": role}


@pytest.fixture(scope="session")
def users_server(tmp_path_factory):
    """A server for the users/auth tests with a known BOOKD_JWT_SECRET."""
    data = tmp_path_factory.mktemp("users-data")
    srv = start_server(data, env=users_env())
    yield srv
    rc = srv.stop()
    assert rc == 0, f"users server exited with {rc} on SIGTERM; log tail:\n{srv.log_tail()}"


def pytest_collection_modifyitems(config, items):
    """BOOKD_TEST_SHUFFLE=<seed> runs the suite in a seeded random order, to find a
    test that passes only because another ran before it in the same worker: the
    modules in a random order, and the tests in a random order within each (so a
    module's shared server starts once).  Every xdist worker shuffles with the
    same seed, so their collections still agree."""
    seed = os.environ.get("BOOKD_TEST_SHUFFLE")
    if not seed:
        return
    rnd = random.Random(seed)
    modules = {}
    for item in items:
        modules.setdefault(item.module.__name__, []).append(item)
    order = list(modules)
    rnd.shuffle(order)
    items[:] = []
    for name in order:
        group = modules[name]
        rnd.shuffle(group)
        items.extend(group)
