"""Several bookd nodes on one PostgreSQL database: two `bookd serve` processes
(different data dirs, the same DATABASE_URL, master key and JWT secret) and a
`bookd worker`.  What one node writes, the other reads; tokens and API keys
issued by one node work on the other; chapters cached by a node are not
served stale once it has heard (PostgreSQL's change notification) that
another node changed them."""
import time

import pytest

from conftest import (ADMIN, PASSWORD, SLOW, bearer, login, new_email, register,
                      uniq)
from test_jobs_common import TERMINAL, log_json, read_record, submit_ok
from test_pg_common import fresh_db, node_env, start_pg_worker

PREFS = "/api/v1/users/me/preferences"


@pytest.fixture
def cluster(server_factory, tmp_path, request):
    """Nodes A and B plus a worker on one fresh database.  The servers run
    jobs themselves when request.param is 1, or leave them all to the worker
    (BOOKD_WORKERS=0)."""
    server_workers = getattr(request, "param", 1)
    url = fresh_db("nodes")
    env = node_env(url, BOOKD_TEST_JOBS=1, BOOKD_WORKERS=server_workers,
                   BOOKD_JOB_BACKOFF_MS=50)
    a = server_factory(tmp_path / "node-a", env=env)
    b = server_factory(tmp_path / "node-b", env=env)
    w = start_pg_worker(tmp_path / "node-w", url, tmp_path / "worker.stderr",
                        BOOKD_TEST_JOBS=1, BOOKD_JOB_BACKOFF_MS=50)
    yield {"a": a, "b": b, "w": w, "url": url, "server_workers": server_workers}
    rc = w.stop()
    assert rc == 0, f"worker exited {rc}:\n{w.log_tail()}"


def chapter_path(book_id, ref):
    return f"/api/v1/books/{book_id}/chapters/{ref}"


def heard(srv, path, pred, timeout=5, **kw):
    """GET path on srv until pred(response) holds (or the time is up): a node
    trusts what it cached until PostgreSQL's change notification of another
    node's write reaches it, a moment after that write's commit (docs/DESIGN.md,
    "Caches under change notifications").  Returns the last response."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        r = srv.get(path, **kw)
        if pred(r) or time.monotonic() > deadline:
            return r
        time.sleep(0.02)


def has_text(text):
    return lambda r: r.status_code == 200 and text in r.json()["content_markdown"]


def test_books_and_chapters_written_on_a_are_read_on_b(cluster):
    a, b = cluster["a"], cluster["b"]
    book = a.create_book(title=uniq("two nodes"), author="Ann Author")
    r = b.get(f"/api/v1/books/{book['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["title"] == book["title"] and r.json()["author"] == "Ann Author"
    assert book["id"] in {x["id"] for x in b.all_books()}

    ch = a.add_chapter(book["id"], title="First", content_markdown="# One\n\nversion one text")
    assert ch["number"] == 1
    # B renders and caches the chapter
    r1 = b.get(chapter_path(book["id"], 1))
    assert r1.status_code == 200, r1.text
    assert "version one text" in r1.json()["content_markdown"]
    etag1 = r1.headers.get("ETag")
    assert etag1, r1.headers
    r1b = b.get(chapter_path(book["id"], ch["id"]))
    assert r1b.status_code == 200 and r1b.headers.get("ETag") == etag1
    r304 = b.get(chapter_path(book["id"], 1), headers={"If-None-Match": etag1})
    assert r304.status_code == 304, r304.status_code

    # A replaces it: B must serve the new text with a new ETag once it has
    # heard of the change
    r = a.put(chapter_path(book["id"], 1), headers=ADMIN,
              json={"title": "First, revised", "content_markdown": "# One\n\nversion two text"})
    assert r.status_code == 200, r.text
    etag_a = r.headers.get("ETag")
    assert etag_a and etag_a != etag1
    r2 = heard(b, chapter_path(book["id"], 1), has_text("version two text"))
    assert r2.status_code == 200, r2.text
    assert "version two text" in r2.json()["content_markdown"], r2.json()
    assert r2.json()["title"] == "First, revised"
    assert r2.headers.get("ETag") == etag_a, (r2.headers.get("ETag"), etag_a, etag1)
    # the old validator no longer matches on B
    r3 = b.get(chapter_path(book["id"], 1), headers={"If-None-Match": etag1})
    assert r3.status_code == 200 and "version two text" in r3.json()["content_markdown"]
    # ... and the same holds the other way round
    r = b.put(chapter_path(book["id"], ch["id"]), headers=ADMIN,
              json={"title": "Third", "content_markdown": "version three text"})
    assert r.status_code == 200, r.text
    ra = heard(a, chapter_path(book["id"], 1), has_text("version three text"))
    assert ra.json()["content_markdown"] == "version three text"
    assert ra.headers.get("ETag") == r.headers.get("ETag")
    assert len({etag1, etag_a, r.headers.get("ETag")}) == 3

    # a chapter added on B shows in A's listing; metadata updates cross too
    b.add_chapter(book["id"], title="Second", content_markdown="two")
    r = a.get(f"/api/v1/books/{book['id']}/chapters")
    assert [c["title"] for c in r.json()["items"]] == ["Third", "Second"]
    r = b.patch(f"/api/v1/books/{book['id']}", headers=ADMIN, json={"publisher": "Node B Press"})
    assert r.status_code == 200, r.text
    got = a.get(f"/api/v1/books/{book['id']}").json()
    assert got["publisher"] == "Node B Press" and got["chapter_count"] == 2

    # deleting on A: B (which cached chapter 1) answers 404
    r = a.delete(chapter_path(book["id"], 1), headers=ADMIN)
    assert r.status_code == 204, r.text
    assert heard(b, chapter_path(book["id"], ch["id"]), lambda r: r.status_code == 404).status_code == 404
    assert a.delete(f"/api/v1/books/{book['id']}", headers=ADMIN).status_code == 204
    assert b.get(f"/api/v1/books/{book['id']}").status_code == 404


def test_users_tokens_keys_and_preferences_cross_nodes(cluster):
    a, b = cluster["a"], cluster["b"]
    email = new_email("nodes")
    reg = register(a, email, display_name="Two Nodes")
    uid = reg["user"]["id"]
    # an access token issued by A works on B, and the other way round
    me = b.get("/api/v1/auth/me", headers=bearer(reg["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == uid and me.json()["email"] == email
    r = login(b, email)
    assert r.status_code == 200, r.text
    tok_b = r.json()["access_token"]
    assert a.get("/api/v1/auth/me", headers=bearer(tok_b)).json()["id"] == uid
    # a refresh token from A is redeemed on B, and its reuse is seen on A
    r = b.post("/api/v1/auth/refresh", json={"refresh_token": reg["refresh_token"]})
    assert r.status_code == 200, r.text
    new_refresh = r.json()["refresh_token"]
    r = a.post("/api/v1/auth/refresh", json={"refresh_token": reg["refresh_token"]})
    assert r.status_code == 401, f"reused refresh token accepted on the other node: {r.text}"
    # the same email cannot be registered again on the other node
    register(b, email, expect=409)
    # ... which revoked the whole family: the newest token is refused on B too
    r = b.post("/api/v1/auth/refresh", json={"refresh_token": new_refresh})
    assert r.status_code == 401, r.text
    # wrong password is refused on both
    assert login(a, email, PASSWORD + "x").status_code == 401

    # preferences written on A are read on B, patched on B, read on A
    r = a.put(PREFS, headers=bearer(reg["access_token"]),
              json={"experience_level": "beginner", "programming_languages": ["C", "Rust"]})
    assert r.status_code == 200, r.text
    r = b.get(PREFS, headers=bearer(tok_b))
    assert r.status_code == 200, r.text
    assert r.json()["experience_level"] == "beginner"
    assert r.json()["programming_languages"] == ["C", "Rust"]
    r = b.patch(PREFS, headers=bearer(tok_b), json={"gpu_access": True})
    assert r.status_code == 200, r.text
    got = heard(a, PREFS, lambda r: r.status_code == 200 and r.json()["gpu_access"] is True,
                headers=bearer(reg["access_token"])).json()
    assert got["gpu_access"] is True and got["experience_level"] == "beginner", got

    # an API key created on B works on A; deleted on A it stops working on B
    r = b.post("/api/v1/auth/api-keys", headers=bearer(tok_b), json={"name": uniq("k")})
    assert r.status_code == 201, r.text
    key = r.json()
    r = a.get("/api/v1/auth/me", headers={"X-API-Key": key["key"]})
    assert r.status_code == 200 and r.json()["id"] == uid, r.text
    r = a.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=bearer(reg["access_token"]))
    assert r.status_code == 204, r.text
    assert heard(b, "/api/v1/auth/me", lambda r: r.status_code == 401,
                 headers={"X-API-Key": key["key"]}).status_code == 401

    # the master key's user is one user, whichever node made it first
    ids = {srv.get("/api/v1/auth/me", headers=ADMIN).json()["id"] for srv in (a, b)}
    assert len(ids) == 1, ids


@pytest.mark.parametrize("cluster", [1, 0], indirect=True,
                         ids=["servers-run-jobs", "servers-workers-0"])
def test_jobs_submitted_on_either_node_run_once(cluster, tmp_path):
    a, b, w = cluster["a"], cluster["b"], cluster["w"]
    rec = tmp_path / "rec"
    ids = []
    for i in range(30):
        srv = (a, b)[i % 2]
        ids.append(submit_ok(srv, "test.steps",
                             {"steps": 2, "sleep_ms": 0, "record": str(rec)}))
    # every step runs exactly once, wherever the job was submitted
    want = sorted((jid, s) for jid in ids for s in (0, 1))
    deadline = time.monotonic() + 15
    while len(read_record(rec)) < len(want) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a duplicate run would show up now
    assert sorted(read_record(rec)) == want
    # who ran them: the "job" log lines of every process, each job once (a
    # job's line is logged after its last step is recorded: wait for them)
    deadline = time.monotonic() + 10
    while True:
        ran = {}
        for name, path in (("a", a.log_path), ("b", b.log_path), ("w", w.log_path)):
            for o in log_json(path):
                if o.get("msg") == "job" and o.get("status") in ("completed", "failed"):
                    ran.setdefault(o["job_id"], []).append(name)
        if set(ran) >= set(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(ran) == sorted(ids), (set(ids) ^ set(ran))
    assert all(len(v) == 1 for v in ran.values()), {k: v for k, v in ran.items() if len(v) != 1}
    if cluster["server_workers"] == 0:
        assert {v[0] for v in ran.values()} == {"w"}, "a server with BOOKD_WORKERS=0 ran jobs"
    deadline = time.monotonic() + 4
    while True:
        # each job is visible on both nodes
        states = {}
        for i, jid in enumerate(ids):
            r = (b, a)[i % 2].get(f"/api/v1/jobs/{jid}", headers=ADMIN)
            assert r.status_code == 200, r.text
            states[jid] = r.json()
        if all(j["status"] in TERMINAL for j in states.values()):
            break
        assert time.monotonic() < deadline, (
            "jobs whose steps all ran never finished: "
            + repr([(j["id"], j["status"], j["steps_done"], j["attempts"])
                    for j in states.values() if j["status"] not in TERMINAL][:3])
            + "\nerrors logged: " + "\n".join(
                l for t in (a.log_text(), b.log_text(), w.log_text())
                for l in t.splitlines() if '"level":"error"' in l)[:600])
        time.sleep(0.1)
    assert {j["status"] for j in states.values()} == {"completed"}, states
    assert all(j["attempts"] == 1 for j in states.values()), [j for j in states.values() if j["attempts"] != 1]
    assert w.alive()


def test_sigterm_on_a_worker_hands_its_running_job_to_another(server_factory, tmp_path):
    """`bookd worker` W runs a job; W gets SIGTERM: the step in flight is
    interrupted, W hands the job back and exits promptly, and a second worker
    process resumes it from its checkpoint (steps already done are not run
    again)."""
    url = fresh_db("handoff")
    a = server_factory(tmp_path / "node-a", env=node_env(url, BOOKD_TEST_JOBS=1, BOOKD_WORKERS=0))
    w1 = start_pg_worker(tmp_path / "w1", url, tmp_path / "w1.stderr",
                         BOOKD_TEST_JOBS=1, BOOKD_WORKER_MAX_JOBS=1)
    w2 = None
    try:
        rec = tmp_path / "rec"
        jid = submit_ok(a, "test.steps", {"steps": 3, "sleep_ms": 600, "record": str(rec)})
        deadline = time.monotonic() + 10
        while not read_record(rec):  # step 0 done; step 1 running on W1
            assert time.monotonic() < deadline, w1.log_tail()
            time.sleep(0.02)
        time.sleep(0.1)
        w2 = start_pg_worker(tmp_path / "w2", url, tmp_path / "w2.stderr",
                             BOOKD_TEST_JOBS=1, BOOKD_WORKER_MAX_JOBS=1)
        t0 = time.monotonic()
        w1.proc.terminate()
        try:
            w1.proc.wait(timeout=20)
        except Exception:
            w1.proc.kill()
            raise
        took = time.monotonic() - t0
        deadline = time.monotonic() + 10
        while True:
            j = a.get(f"/api/v1/jobs/{jid}", headers=ADMIN).json()
            if j["status"] in TERMINAL:
                break
            assert time.monotonic() < deadline, (j, w2.log_tail())
            time.sleep(0.05)
        assert j["status"] == "completed", j
        assert sorted(read_record(rec)) == [(jid, 0), (jid, 1), (jid, 2)], read_record(rec)
        assert w1.proc.returncode == 0, w1.log_tail()
        print(f"\nworker exit on SIGTERM: {took:.2f}s")
        assert took < 3, (f"`bookd worker` took {took:.1f}s to exit on SIGTERM although its job "
                          f"step stopped at once (log):\n{w1.log_tail(8)}")
    finally:
        for w in (w1, w2):
            if w and w.alive():
                w.proc.kill()
                w.proc.wait()
