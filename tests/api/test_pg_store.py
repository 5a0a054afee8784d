"""The PostgreSQL backend against its operator and its network: the
operator's DATABASE_URL wins over bookd's session defaults, and a statement
whose reply was lost is never run a second time."""
import os
import re
import socket
import subprocess
import threading
import time
from urllib.parse import quote

import pgtest
from conftest import ADMIN, SLOW, uniq
from test_jobs_common import jobs_env
from test_pg_common import db_name, fresh_db, node_env, shared_pg


def psql_session(pg, db, script):
    """A psql of its own running `script` (for a lock held while bookd works)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.Popen(prefix + ["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", db,
                                      "-v", "ON_ERROR_STOP=1", "-Atc", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def bookd_app_names(pg, db):
    out = pg.psql(f"SELECT application_name FROM pg_stat_activity WHERE datname = '{db}' "
                  "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
    return set(out.split())


def test_application_name_of_the_url_wins(server_factory, tmp_path):
    url = fresh_db("appname")
    srv = server_factory(tmp_path / "data", env=node_env(url + "?application_name=mine"))
    assert srv.get("/health/ready").status_code == 200
    names = bookd_app_names(shared_pg(), db_name(url))
    assert names == {"mine"}, f"bookd's sessions are named {names}, the URL said 'mine'"


def test_application_name_defaults_to_bookd(server_factory, tmp_path):
    url = fresh_db("appname-default")
    srv = server_factory(tmp_path / "data", env=node_env(url))
    assert srv.get("/health/ready").status_code == 200
    assert bookd_app_names(shared_pg(), db_name(url)) == {"bookd"}


def test_statement_timeout_of_the_url_wins(server_factory, tmp_path):
    """bookd's sessions default to a 10 s statement_timeout; an operator who
    says 400 ms in the URL's options gets 400 ms: a request blocked by a lock
    fails fast instead of waiting for bookd's 10 s."""
    url = fresh_db("stmt-timeout")
    options = quote("-c statement_timeout=400", safe="")
    srv = server_factory(tmp_path / "data", env=node_env(f"{url}?options={options}"))
    assert srv.get("/api/v1/books").status_code == 200
    pg = shared_pg()
    locker = psql_session(pg, db_name(url), "BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; "
                                            "SELECT pg_sleep(6); COMMIT;")
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # wait until the lock is held
            held = pg.psql(f"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                           f"WHERE c.relname = 'books' AND l.mode = 'AccessExclusiveLock' AND l.granted",
                           db=db_name(url))
            if held.strip() == "1":
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the lock was never taken")
        t0 = time.monotonic()
        r = srv.get("/api/v1/books", timeout=20)
        took = time.monotonic() - t0
    finally:
        locker.kill()
        locker.wait()
    assert r.status_code == 503, f"{r.status_code} after {took:.1f}s: {r.text[:200]}"
    assert took < 3 * SLOW, f"the URL's statement_timeout (400 ms) was not used: {took:.1f}s"


class CuttingProxy:
    """A TCP proxy to PostgreSQL that, once armed, forwards the statement
    bound to an `INSERT INTO jobs`, lets the server run (and commit) it, and
    then cuts the connection before the reply reaches the client."""

    def __init__(self, port):
        self.target = ("127.0.0.1", port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.armed = threading.Event()
        self.cut = threading.Event()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(self.target)
            dropping = threading.Event()
            threading.Thread(target=self.upstream, args=(c, s, dropping), daemon=True).start()
            threading.Thread(target=self.downstream, args=(c, s, dropping), daemon=True).start()

    def upstream(self, c, s, dropping):
        names = set()  # statements on this connection that insert jobs
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                for m in re.finditer(rb"P....([^\x00]*)\x00INSERT INTO jobs", data, re.S):
                    names.add(m.group(1))
                hit = self.armed.is_set() and any(
                    re.search(rb"B....[^\x00]*\x00" + re.escape(n) + rb"\x00", data, re.S) for n in names)
                if hit:
                    self.armed.clear()
                    dropping.set()  # what the server answers now never reaches bookd
                    self.cut.set()
                    s.sendall(data)
                    time.sleep(0.5)  # the server runs and commits it meanwhile
                    break
                s.sendall(data)
        except OSError:
            pass
        for x in (c, s):
            try:
                x.close()
            except OSError:
                pass

    def downstream(self, c, s, dropping):
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                if dropping.is_set():
                    continue
                c.sendall(data)
        except OSError:
            pass
        for x in (c, s):
            try:
                x.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()


def test_insert_whose_reply_was_lost_is_not_run_again(server_factory, tmp_path):
    """The connection breaks after an autocommit INSERT reached the server
    (which committed it) but before its reply came back. Running it again on
    a new connection would answer 409 for a job the client never saw; the
    outcome is unknown, so bookd must say 503 (retry), and a retry with an
    Idempotency-Key must be safe."""
    pg = shared_pg()
    url = fresh_db("lost-reply")
    proxy = CuttingProxy(pg.port)
    try:
        proxied = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{proxy.port}", url)
        srv = server_factory(tmp_path / "data", env=node_env(proxied, **{k: v for k, v in jobs_env().items()
                                                                        if k != "DATABASE_URL"},
                                                          BOOKD_WORKERS=0))
        r = srv.post("/api/v1/jobs", json={"type": "test.noop"}, headers=ADMIN)
        assert r.status_code == 202, r.text  # the INSERT is prepared on this connection now
        before = int(pg.psql("SELECT count(*) FROM jobs", db=db_name(url)))
        proxy.armed.set()
        r = srv.post("/api/v1/jobs", json={"type": "test.noop"}, headers=ADMIN, timeout=20)
        assert proxy.cut.is_set(), "the proxy never saw the INSERT"
        after = int(pg.psql("SELECT count(*) FROM jobs", db=db_name(url)))
        assert after == before + 1, "the INSERT did not reach the server: the test proves nothing"
        assert r.status_code == 503, f"a statement of unknown outcome was answered {r.status_code}: {r.text[:300]}"
        # the server is still usable
        r = srv.post("/api/v1/jobs", json={"type": "test.noop"}, headers=ADMIN)
        assert r.status_code == 202, r.text
    finally:
        proxy.close()
