"""PostgreSQL going away under bookd: while it is down, requests fail fast
with 503 and /health/ready says unavailable; once it is back, bookd works
again by itself and no acknowledged write is lost.

These tests stop and start PostgreSQL, so they use a private instance of
their own (never the session's shared one, which other tests may be using)."""
import random
import threading
import time

import pytest
import requests

import pgtest
from conftest import ADMIN, assert_error, uniq
from test_jobs_common import accepted_id, ts
from test_pg_common import node_env, start_pg_worker, wait_listening

CLIENT_TIMEOUT = 15


@pytest.fixture(scope="module")
def own_pg():
    pg = pgtest.PrivatePostgres()
    yield pg
    pg.destroy()


def new_database(pg):
    name = "f_" + uniq("db").replace("-", "_")
    pg.psql(f"CREATE DATABASE {name}")
    return pg.url(name)


def wait_ready(srv, timeout):
    """Poll /health/ready until 200; returns seconds waited (or None)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if requests.get(srv.url("/health/ready"), timeout=5).status_code == 200:
                return time.monotonic() - t0
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return None


def test_database_down_under_load_fails_fast_and_recovers(own_pg, server_factory, tmp_path):
    pg = own_pg
    url = new_database(pg)
    srv = server_factory(tmp_path / "data", env=node_env(url, BOOKD_SHUTDOWN_TIMEOUT=3))
    pid = srv.proc.pid
    n_threads = 4
    books = []
    for k in range(n_threads):
        b = srv.create_book(title=uniq(f"fault{k}"))
        chs = [srv.add_chapter(b["id"], content_markdown=f"seed {k}.{i}") for i in range(3)]
        books.append((b["id"], [(c["id"], c["content_markdown"]) for c in chs]))

    stop = threading.Event()
    results = []  # (op, t_start, t_end, status or exception text)
    acked = []    # (book_id, chapter_id, content) of every 201
    lock = threading.Lock()
    t0 = time.monotonic()

    def client(k):
        book_id, known = books[k]
        known = list(known)
        s = requests.Session()
        rnd = random.Random(k)
        n = 0
        try:
            while not stop.is_set():
                cid, _ = rnd.choice(known)
                ts_ = time.monotonic()
                try:
                    r = s.get(srv.url(f"/api/v1/books/{book_id}/chapters/{cid}"), timeout=CLIENT_TIMEOUT)
                    out = r.status_code
                except requests.RequestException as exc:
                    out = repr(exc)
                with lock:
                    results.append(("get", ts_ - t0, time.monotonic() - t0, out))
                n += 1
                content = f"written by {k} #{n} {uniq('c')}"
                ts_ = time.monotonic()
                try:
                    r = s.post(srv.url(f"/api/v1/books/{book_id}/chapters"), headers=ADMIN,
                               json={"title": f"w{k}-{n}", "content_markdown": content},
                               timeout=CLIENT_TIMEOUT)
                    out = r.status_code
                    if out == 201:
                        c = r.json()
                        known.append((c["id"], content))
                        with lock:
                            acked.append((book_id, c["id"], content))
                    elif out == 503:
                        assert_error(r, 503, "unavailable")
                except requests.RequestException as exc:
                    out = repr(exc)
                except AssertionError as exc:
                    out = f"bad 503 body: {exc}"
                with lock:
                    results.append(("post", ts_ - t0, time.monotonic() - t0, out))
                time.sleep(0.01)
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(n_threads)]
    for t in threads:
        t.start()
    ready_down = []
    pg_down = False
    try:
        time.sleep(1.5)
        pg.stop("fast")
        pg_down = True
        t_down = time.monotonic() - t0
        time.sleep(0.3)
        for _ in range(3):
            ts_ = time.monotonic()
            r = requests.get(srv.url("/health/ready"), timeout=CLIENT_TIMEOUT)
            ready_down.append((r.status_code, r.json(), time.monotonic() - ts_))
            time.sleep(0.5)
        time.sleep(max(0.0, t_down + 2.5 - (time.monotonic() - t0)))
        t_restart = time.monotonic() - t0  # the server accepts connections before start() returns
        pg.start()
        pg_down = False
        t_up = time.monotonic() - t0
        waited = wait_ready(srv, 8)
        if waited is not None:  # keep the load on a while after recovery (and until
            # enough requests were made after it, however slow the machine is)
            def late():
                with lock:
                    return sum(1 for x in results if x[1] > t_up + 3.5)
            while time.monotonic() - t0 < t_up + 5.0 or (
                    late() <= 20 and time.monotonic() - t0 < t_up + 20.0):
                time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(CLIENT_TIMEOUT + 5)
        if pg_down:
            pg.start()

    assert srv.proc.poll() is None and srv.proc.pid == pid, "bookd died"
    for status, body, took in ready_down:
        assert status == 503, (status, body)
        assert body["status"] == "unavailable", body
        assert body["checks"]["database"] == "unavailable", body
        assert took < 2, f"/health/ready took {took:.2f}s while the database was down"
    assert waited is not None, f"/health/ready not 200 within 8s after PostgreSQL came back:\n{srv.log_tail()}"

    broken = [x for x in results if not isinstance(x[3], int) or x[3] not in (200, 201, 503)]
    assert not broken, f"{len(broken)} requests failed otherwise than 503, e.g. {broken[:5]}"
    slow_503 = [x for x in results if x[3] == 503 and x[2] - x[1] >= 2.0]
    n503 = sum(1 for x in results if x[3] == 503)
    max503 = max((x[2] - x[1] for x in results if x[3] == 503), default=0)
    print(f"\nrequests {len(results)}, 503s {n503}, slowest 503 {max503 * 1000:.0f} ms, "
          f"down at {t_down:.2f}s, up at {t_up:.2f}s, ready after {waited:.2f}s, "
          f"acked writes {len(acked)}")
    assert not slow_503, f"{len(slow_503)} 503 answers took >= 2s, e.g. {slow_503[:5]}"
    assert n503 > 0, "no request saw the outage"
    # while it was down (after connections in flight were cut), nothing succeeded
    during = [x for x in results if x[1] > t_down + 0.2 and x[2] < t_restart]
    assert during and all(x[3] == 503 for x in during), [x for x in during if x[3] != 503][:5]
    # back to normal within a few seconds of PostgreSQL being back
    late_fail = [x for x in results if x[1] > t_up + 3.5 and x[3] != 200 and x[3] != 201]
    assert not late_fail, f"still failing 3.5s after PostgreSQL came back: {late_fail[:5]}"
    assert sum(1 for x in results if x[1] > t_up + 3.5) > 20, "too few requests after recovery"
    assert any(x[0] == "post" and x[3] == 201 and x[1] > t_up for x in results)

    # no acknowledged write is lost
    missing = []
    for book_id, cid, content in acked:
        r = srv.get(f"/api/v1/books/{book_id}/chapters/{cid}")
        if r.status_code != 200 or r.json()["content_markdown"] != content:
            missing.append((cid, r.status_code))
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost: {missing[:5]}"
    listed = set()
    for book_id, _ in books:
        cursor = None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            r = srv.get(f"/api/v1/books/{book_id}/chapters", params=params)
            assert r.status_code == 200, r.text
            listed |= {c["id"] for c in r.json()["items"]}
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
    assert {cid for _, cid, _ in acked} <= listed


def test_database_restarted_while_idle_then_requests_succeed(own_pg, server_factory, tmp_path):
    """The database restarts while bookd has no traffic (a maintenance
    restart, a failover).  Once it is back, requests must succeed: bookd's
    pooled connections to the old server are dead, and handing them to
    requests turns each into a 503 although the database is up."""
    pg = own_pg
    url = new_database(pg)
    # an API-only node (jobs run in `bookd worker`): nothing but requests uses the pool
    srv = server_factory(tmp_path / "data", env=node_env(url, BOOKD_WORKERS=0, BOOKD_THREADS=8))
    book = srv.create_book(title=uniq("idle restart"))
    srv.add_chapter(book["id"], content_markdown="hello")
    path = srv.url(f"/api/v1/books/{book['id']}/chapters/1")

    # open several pooled connections with some concurrency
    def burst():
        with requests.Session() as s:
            for _ in range(5):
                assert s.get(path, timeout=CLIENT_TIMEOUT).status_code == 200
    threads = [threading.Thread(target=burst) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    try:
        pg.stop("fast")
        time.sleep(0.5)
    finally:
        pg.start()
    time.sleep(1.5)  # the database has been back for a while now
    statuses = []
    with requests.Session() as s:
        for _ in range(20):
            statuses.append(s.get(path, timeout=CLIENT_TIMEOUT).status_code)
        statuses.append(s.get(srv.url("/health/ready"), timeout=CLIENT_TIMEOUT).status_code)
        r = s.post(srv.url(f"/api/v1/books/{book['id']}/chapters"), headers=ADMIN,
                   json={"title": "after", "content_markdown": "after restart"}, timeout=CLIENT_TIMEOUT)
        statuses.append(r.status_code)
    assert statuses == [200] * 21 + [201], (
        f"requests after the database was back for 1.5s: {statuses}")


def test_worker_listener_reconnects_after_restart(own_pg, server_factory, tmp_path):
    """After a database restart, a `bookd worker` is again woken by
    LISTEN/NOTIFY (its listener reconnects), not only by its 500 ms poll."""
    pg = own_pg
    url = new_database(pg)
    srv = server_factory(tmp_path / "data", env=node_env(url, BOOKD_WORKERS=0, BOOKD_TEST_JOBS=1))
    w = start_pg_worker(tmp_path / "worker", url, tmp_path / "worker.stderr",
                        BOOKD_TEST_JOBS=1, BOOKD_WORKER_MAX_JOBS=1)
    try:
        try:
            pg.stop("fast")
            time.sleep(1.0)
        finally:
            pg.start()
        assert wait_ready(srv, 8) is not None, srv.log_tail()

        def run_one():
            jid = None
            for _ in range(20):  # the server's own pool may still hand out a dead connection
                r = srv.post("/api/v1/jobs", headers=ADMIN, json={"type": "test.noop"})
                if r.status_code != 503:
                    jid = accepted_id(r)
                    break
                time.sleep(0.05)
            assert jid, "job submission kept failing after the restart"
            deadline = time.monotonic() + 8
            while True:
                j = srv.get(f"/api/v1/jobs/{jid}", headers=ADMIN).json()
                if j.get("started_at"):
                    return (ts(j["started_at"]) - ts(j["created_at"])) * 1000
                assert time.monotonic() < deadline, f"job never started: {j}\n{w.log_tail()}"
                time.sleep(0.01)

        run_one()  # by now the worker is back (its poll alone would do)
        # the listener retries after 0.2, 0.4, 0.8, 1.6, 3.2 s ...: how soon it is
        # back depends on how long PostgreSQL took to stop and start; wait for it
        wait_listening(pg, url)
        rnd = random.Random(3)
        delays = []
        for _ in range(6):
            time.sleep(rnd.uniform(0.1, 0.45))
            delays.append(run_one())
        mean = sum(delays) / len(delays)
        print(f"\nafter restart, submit-to-start delays (ms): {[round(d) for d in delays]}")
        assert mean < 100, f"the worker is no longer woken by NOTIFY after a restart: {delays}"
    finally:
        rc = w.stop()
    assert rc == 0, w.log_tail()
