"""The job queue itself, through the test.* job types (BOOKD_TEST_JOBS=1):
POST/GET /api/v1/jobs, retries with backoff, cancel, SSE progress, ETA,
idempotency keys, ownership."""
import json
import threading
import time
import uuid

import pytest
import requests

from conftest import (ADMIN, SLOW, assert_error, make_user, start_server,
                      uniq)
from test_jobs_common import (TERMINAL, accepted_id, assert_job_shape,
                              get_job, jobs_env, read_record, steps_of,
                              submit, submit_ok, ts, wait_job)
from test_jobs_common import worker_factory  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def qsrv(tmp_path_factory):
    """Server that runs jobs itself (5 worker threads)."""
    srv = start_server(tmp_path_factory.mktemp("jobs-queue"), env=jobs_env())
    yield srv
    rc = srv.stop()
    assert rc == 0, f"jobs server exited with {rc}; log:\n{srv.log_tail()}"


@pytest.fixture(scope="module")
def idle(tmp_path_factory):
    """Server that runs no jobs (BOOKD_WORKERS=0): jobs stay pending."""
    srv = start_server(tmp_path_factory.mktemp("jobs-idle"), env=jobs_env(BOOKD_WORKERS=0))
    yield srv
    rc = srv.stop()
    assert rc == 0, f"idle server exited with {rc}; log:\n{srv.log_tail()}"


@pytest.fixture(scope="module")
def users(qsrv):
    return {"editor": make_user(qsrv, "editor"), "reader": make_user(qsrv, "reader"),
            "admin": make_user(qsrv, "admin")}


# ------------------------------------------------------------------ submit

def test_noop_job_lifecycle_and_shape(qsrv):
    t0 = time.time()
    r = submit(qsrv, "test.noop", {})
    jid = accepted_id(r)
    assert r.json()["status"] == "pending"
    j = wait_job(qsrv, jid, timeout=5)
    assert j["status"] == "completed", j
    assert j["type"] == "test.noop"
    assert j["progress"] == 100
    assert j["steps_done"] == j["steps_total"] == 1
    assert j["step"] == "run"
    assert j["attempts"] == 1 and j["max_attempts"] == 3
    assert j["error"] is None
    assert j["eta_seconds"] == 0
    created, started, finished = ts(j["created_at"]), ts(j["started_at"]), ts(j["finished_at"])
    assert created <= started <= finished <= ts(j["updated_at"]) + 0.001, j
    assert abs(created - t0) < 60, "created_at is not now"


def test_steps_job_result_and_record(qsrv, tmp_path):
    rec = tmp_path / "rec"
    jid = submit_ok(qsrv, "test.steps", {"steps": 4, "sleep_ms": 10, "record": str(rec)})
    j = wait_job(qsrv, jid, timeout=5)
    assert j["status"] == "completed", j
    assert j["result"] == {"steps": 4}, j
    assert j["progress"] == 100
    assert steps_of(rec, jid) == [0, 1, 2, 3]


@pytest.mark.parametrize("body, field", [
    ({"type": "no.such.type"}, None),
    ({"payload": {}}, "type"),
    ({"type": ""}, "type"),
    ({"type": 5}, "type"),
    ({"type": "test.noop", "payload": [1, 2]}, "payload"),
    ({"type": "test.noop", "payload": "x"}, "payload"),
])
def test_submit_validation(qsrv, body, field):
    r = qsrv.post("/api/v1/jobs", json=body, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    if field:
        assert any(d.get("field") == field for d in err["details"]), err


def test_submit_malformed_json(qsrv):
    r = qsrv.post("/api/v1/jobs", data=b"{not json", headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert "error" in r.json()


def test_submit_needs_admin(qsrv, users):
    assert_error(submit(qsrv, "test.noop", {}, headers={}), 401, "unauthorized")
    for role in ("reader", "editor"):
        assert_error(submit(qsrv, "test.noop", {}, headers=users[role]["headers"]), 403, "forbidden")
    # an admin user (not only the master key) may
    jid = submit_ok(qsrv, "test.noop", {}, headers=users["admin"]["headers"])
    assert wait_job(qsrv, jid, headers=users["admin"]["headers"])["status"] == "completed"


def test_test_types_need_bookd_test_jobs(server):
    """The shared server runs without BOOKD_TEST_JOBS: test.* are unknown."""
    for t in ("test.noop", "test.steps"):
        assert_error(submit(server, t, {}), 422, "validation_failed")


def test_generic_submit_cannot_import_arbitrary_server_files(qsrv, tmp_path):
    """POST /api/v1/jobs must not let a client choose the server-side upload
    path of a book.import job: the job would read any file the server can
    read and then delete it (import_finish unlinks the "upload")."""
    victim = tmp_path / "victim.md"
    title = uniq("Victim Book")
    victim.write_text("# Private Chapter\n\nnot for import\n")
    r = submit(qsrv, "book.import", {"upload": str(victim), "kind": "markdown", "title": title})
    if r.status_code == 202:
        wait_job(qsrv, r.json()["job_id"], timeout=5)
    assert victim.exists(), (
        f"POST /api/v1/jobs {{type: book.import, payload.upload: {victim}}} answered "
        f"{r.status_code} and the server deleted that file")
    assert not qsrv.books_titled(title), "the server imported a file chosen by path"
    assert r.status_code in (403, 422), r.text


# ------------------------------------------------------------------ get / list / ownership

def test_get_unknown_job(qsrv):
    assert_error(qsrv.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=ADMIN), 404, "not_found")
    assert_error(qsrv.get("/api/v1/jobs/not-a-uuid", headers=ADMIN), 404, "not_found")
    assert_error(qsrv.post(f"/api/v1/jobs/{uuid.uuid4()}/cancel", headers=ADMIN), 404, "not_found")
    assert_error(qsrv.get(f"/api/v1/jobs/{uuid.uuid4()}/events", headers=ADMIN), 404, "not_found")


def test_anonymous_is_401(qsrv):
    jid = submit_ok(qsrv, "test.noop", {})
    for method, path in [("GET", "/api/v1/jobs"), ("GET", f"/api/v1/jobs/{jid}"),
                         ("POST", f"/api/v1/jobs/{jid}/cancel"),
                         ("GET", f"/api/v1/jobs/{jid}/events")]:
        assert_error(qsrv.request(method, path), 401, "unauthorized")


def test_other_users_job_is_404(qsrv, users, tmp_path):
    """An admin-submitted job is invisible to an editor; the editor's own
    import job is invisible to a reader, visible to admins."""
    jid = submit_ok(qsrv, "test.noop", {})
    wait_job(qsrv, jid)
    ed = users["editor"]["headers"]
    assert_error(qsrv.get(f"/api/v1/jobs/{jid}", headers=ed), 404, "not_found")
    assert_error(qsrv.post(f"/api/v1/jobs/{jid}/cancel", headers=ed), 404, "not_found")
    assert_error(qsrv.get(f"/api/v1/jobs/{jid}/events", headers=ed, timeout=5), 404, "not_found")
    listed = qsrv.get("/api/v1/jobs", params={"limit": 100}, headers=ed).json()["items"]
    assert jid not in [j["id"] for j in listed]

    r = qsrv.post("/api/v1/books/import", headers=ed,
                  files={"file": ("own.md", b"# One\n\ntext\n", "text/markdown")},
                  data={"title": uniq("Editor Book")})
    own = accepted_id(r)
    assert get_job(qsrv, own, headers=ed)["id"] == own
    rd = users["reader"]["headers"]
    assert_error(qsrv.get(f"/api/v1/jobs/{own}", headers=rd), 404, "not_found")
    assert_error(qsrv.post(f"/api/v1/jobs/{own}/cancel", headers=rd), 404, "not_found")
    assert_error(qsrv.get(f"/api/v1/jobs/{own}/events", headers=rd, timeout=5), 404, "not_found")
    assert get_job(qsrv, own, headers=users["admin"]["headers"])["id"] == own
    assert get_job(qsrv, own)["id"] == own  # master key
    assert wait_job(qsrv, own, headers=ed)["status"] == "completed"
    mine = qsrv.get("/api/v1/jobs", params={"limit": 100}, headers=ed).json()["items"]
    assert [j["id"] for j in mine] == [own], "an editor lists exactly their own jobs"
    assert qsrv.get("/api/v1/jobs", headers=rd).json()["items"] == []


def test_list_newest_first_filter_and_paging(idle):
    ids = [submit_ok(idle, "test.noop", {}) for _ in range(5)]
    r = idle.get("/api/v1/jobs", params={"limit": 100}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "next_cursor"}
    listed = [j["id"] for j in body["items"]]
    assert listed == sorted(listed, reverse=True), "not newest first"
    assert listed[:5] == ids[::-1]
    for j in body["items"]:
        assert_job_shape(j)
    # paging
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = idle.get("/api/v1/jobs", params=params, headers=ADMIN).json()
        assert len(page["items"]) <= 2
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        pages += 1
        assert pages < 100
        if not cursor:
            break
    assert seen == listed, "pages do not add up to the full list"
    # status filter
    idle.post(f"/api/v1/jobs/{ids[0]}/cancel", headers=ADMIN)
    cancelled = idle.get("/api/v1/jobs", params={"status": "cancelled", "limit": 100},
                         headers=ADMIN).json()["items"]
    assert ids[0] in [j["id"] for j in cancelled]
    assert all(j["status"] == "cancelled" for j in cancelled)
    pending = idle.get("/api/v1/jobs", params={"status": "pending", "limit": 100},
                       headers=ADMIN).json()["items"]
    assert set(ids[1:]) <= {j["id"] for j in pending} and ids[0] not in {j["id"] for j in pending}
    # (other tests run workers against this data directory: look at ours only)
    completed = idle.get("/api/v1/jobs", params={"status": "completed", "limit": 100},
                         headers=ADMIN).json()["items"]
    assert all(j["status"] == "completed" for j in completed)
    assert not set(ids) & {j["id"] for j in completed}


@pytest.mark.parametrize("params, field", [
    ({"status": "done"}, "status"), ({"status": ""}, "status"), ({"status": "PENDING"}, "status"),
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "x"}, "limit"),
    ({"cursor": "not-a-uuid"}, None),
])
def test_list_bad_params(qsrv, params, field):
    err = assert_error(qsrv.get("/api/v1/jobs", params=params, headers=ADMIN), 422, "validation_failed")
    if field:
        assert any(d.get("field") == field for d in err["details"]), err


# ------------------------------------------------------------------ retries

def test_transient_failures_are_retried(qsrv, tmp_path):
    rec = tmp_path / "rec"
    jid = submit_ok(qsrv, "test.steps", {"steps": 2, "sleep_ms": 0, "fail_times": 2, "record": str(rec)})
    j = wait_job(qsrv, jid, timeout=8)
    assert j["status"] == "completed", j
    assert j["attempts"] == 3, j
    assert j["error"] is None, "a job that finally completed still shows an error"
    assert j["result"] == {"steps": 2}
    # step 0 ran three times (two failures, one success), step 1 once
    assert steps_of(rec, jid) == [0, 0, 0, 1], read_record(rec)


def test_always_failing_job_gives_up_after_max_attempts(qsrv):
    jid = submit_ok(qsrv, "test.steps", {"steps": 1, "sleep_ms": 0, "always_fail": True})
    seen_retry_pending = False
    deadline = time.monotonic() + 8 * SLOW
    while True:
        j = get_job(qsrv, jid)
        if j["status"] == "pending" and j["attempts"] >= 1:
            seen_retry_pending = True
            assert j["error"] == "this job always fails", j
        if j["status"] in TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert j["status"] == "failed", j
    assert j["attempts"] == 3 == j["max_attempts"], j
    assert j["error"] == "this job always fails", j
    assert j["finished_at"] is not None and j["eta_seconds"] is None, j
    assert seen_retry_pending, "never saw the job waiting for its retry"


def test_retry_waits_for_backoff(tmp_path):
    """With a 1.2 s backoff (+-25 %) the second attempt does not start at once."""
    srv = start_server(tmp_path / "d", env=jobs_env(BOOKD_JOB_BACKOFF_MS=1200))
    try:
        rec = tmp_path / "rec"
        jid = submit_ok(srv, "test.steps", {"steps": 1, "sleep_ms": 0, "fail_times": 1, "record": str(rec)})
        j = wait_job(srv, jid, lambda j: j["status"] == "pending" and j["attempts"] == 1, timeout=5,
                     what="pending after its first failure")
        # when it failed, by the server's clock (the same wall clock as ours):
        # seeing it here may come later on a busy machine
        t_fail = ts(j["updated_at"])
        time.sleep(max(0.0, t_fail + 0.6 - time.time()))
        j = get_job(srv, jid)
        assert j["status"] == "pending" and j["attempts"] == 1, f"retried before the backoff: {j}"
        assert j["error"], "a job waiting for its retry shows no error"
        j = wait_job(srv, jid, timeout=8)
        assert j["status"] == "completed" and j["attempts"] == 2, j
        assert ts(j["finished_at"]) - t_fail >= 0.8, (t_fail, j)
    finally:
        assert srv.stop() == 0


# ------------------------------------------------------------------ cancel

def test_cancel_pending_job(idle):
    jid = submit_ok(idle, "test.steps", {"steps": 2})
    assert get_job(idle, jid)["status"] == "pending"
    r = idle.post(f"/api/v1/jobs/{jid}/cancel", headers=ADMIN)
    assert r.status_code == 202, r.text
    j = assert_job_shape(r.json())
    assert j["id"] == jid and j["status"] == "cancelled", j
    assert j["finished_at"] is not None
    assert get_job(idle, jid)["status"] == "cancelled"
    # cancelling again changes nothing
    r = idle.post(f"/api/v1/jobs/{jid}/cancel", headers=ADMIN)
    assert r.status_code in (202, 409), r.text
    assert get_job(idle, jid)["status"] == "cancelled"


def test_cancelled_pending_job_never_runs(idle, worker_factory, tmp_path):
    rec = tmp_path / "rec"
    jid = submit_ok(idle, "test.steps", {"steps": 1, "record": str(rec)})
    other = submit_ok(idle, "test.steps", {"steps": 1, "record": str(rec)})
    assert idle.post(f"/api/v1/jobs/{jid}/cancel", headers=ADMIN).status_code == 202
    w = worker_factory(idle)
    assert wait_job(idle, other, timeout=5)["status"] == "completed"
    time.sleep(0.3)
    assert get_job(idle, jid)["status"] == "cancelled"
    assert steps_of(rec, jid) == [], "a cancelled job ran"
    rc, _ = w.stop()
    assert rc == 0


def test_cancel_finished_job_keeps_its_status(qsrv):
    jid = submit_ok(qsrv, "test.noop", {})
    wait_job(qsrv, jid)
    r = qsrv.post(f"/api/v1/jobs/{jid}/cancel", headers=ADMIN)
    assert r.status_code in (202, 409), r.text
    assert get_job(qsrv, jid)["status"] == "completed"


def test_cancel_running_job(qsrv, tmp_path):
    rec = tmp_path / "rec"
    jid = submit_ok(qsrv, "test.steps", {"steps": 10, "sleep_ms": 500, "record": str(rec)})
    wait_job(qsrv, jid, lambda j: j["status"] == "processing" and j["steps_done"] >= 1, timeout=5,
             what="processing with a step done")
    t0 = time.monotonic()
    r = qsrv.post(f"/api/v1/jobs/{jid}/cancel", headers=ADMIN)
    assert r.status_code == 202, r.text
    assert r.json()["id"] == jid and r.json()["status"] in ("processing", "cancelled"), r.json()
    j = wait_job(qsrv, jid, timeout=3)
    took = time.monotonic() - t0
    assert j["status"] == "cancelled", j
    assert took < 2.0 * SLOW, f"cancel took {took:.2f}s"
    assert j["finished_at"] is not None
    n = len(steps_of(rec, jid))
    assert 1 <= n < 10
    time.sleep(1.2)
    assert len(steps_of(rec, jid)) == n, "steps kept running after the cancel"
    assert get_job(qsrv, jid)["status"] == "cancelled"


# ------------------------------------------------------------------ SSE

def read_sse(srv, jid, headers=ADMIN, limit_s=15.0):
    """Read the whole event stream; returns (response, [(event, data), ...],
    seconds).  Fails if the stream does not end within limit_s."""
    t0 = time.monotonic()
    r = srv.get(f"/api/v1/jobs/{jid}/events", headers=headers, stream=True, timeout=5 * SLOW)
    events, ev, data = [], None, []
    try:
        assert r.status_code == 200, r.text
        for raw in r.iter_lines(chunk_size=1, decode_unicode=False):
            line = raw.decode("utf-8")
            if line == "":
                if ev is not None or data:
                    events.append((ev or "message", "\n".join(data)))
                ev, data = None, []
            elif line.startswith(":"):
                pass
            elif line.startswith("event:"):
                ev = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            if time.monotonic() - t0 > limit_s * SLOW:
                raise AssertionError(f"event stream still open after {limit_s}s: {events[-3:]}")
    finally:
        r.close()
    return r, events, time.monotonic() - t0


def test_sse_progress_until_done(qsrv):
    jid = submit_ok(qsrv, "test.steps", {"steps": 10, "sleep_ms": 150})
    r, events, took = read_sse(qsrv, jid)
    assert r.headers["Content-Type"].startswith("text/event-stream"), r.headers
    assert events, "no events"
    names = [e for e, _ in events]
    assert names[-1] == "done", names
    assert names.count("done") == 1
    assert set(names[:-1]) <= {"progress"}, names
    jobs = [json.loads(d) for _, d in events]
    for j in jobs:
        assert_job_shape(j)
        assert j["id"] == jid
    assert jobs[-1]["status"] == "completed" and jobs[-1]["progress"] == 100, jobs[-1]
    assert all(j["status"] not in TERMINAL for j in jobs[:-1])
    progress = [j["progress"] for j in jobs]
    assert progress == sorted(progress), f"progress went backwards: {progress}"
    steps = [j["steps_done"] for j in jobs]
    assert steps == sorted(steps), steps
    assert len(events) >= 5, f"expected progress events while running, got {names}"
    assert len(set(progress)) >= 4, progress
    assert took < 8 * SLOW


def test_sse_for_finished_job_is_one_done_event(qsrv):
    jid = submit_ok(qsrv, "test.steps", {"steps": 1, "sleep_ms": 0, "always_fail": True})
    wait_job(qsrv, jid, timeout=8)
    _, events, took = read_sse(qsrv, jid, limit_s=5)
    assert [e for e, _ in events] == ["done"], events
    j = json.loads(events[0][1])
    assert j["status"] == "failed" and j["error"] == "this job always fails", j
    assert took < 2 * SLOW


def test_sse_reports_cancel(qsrv):
    jid = submit_ok(qsrv, "test.steps", {"steps": 10, "sleep_ms": 300})
    out = {}

    def reader():
        try:
            out["v"] = read_sse(qsrv, jid)
        except BaseException as exc:  # reported below
            out["exc"] = exc

    t = threading.Thread(target=reader)
    t.start()
    wait_job(qsrv, jid, lambda j: j["steps_done"] >= 1, timeout=5, what="a step done")
    assert qsrv.post(f"/api/v1/jobs/{jid}/cancel", headers=ADMIN).status_code == 202
    t.join(10 * SLOW)
    assert not t.is_alive(), "event stream did not end after the cancel"
    if "exc" in out:
        raise out["exc"]
    _, events, _ = out["v"]
    assert events[-1][0] == "done"
    assert json.loads(events[-1][1])["status"] == "cancelled"


# ------------------------------------------------------------------ ETA

def test_eta_while_running(qsrv):
    jid = submit_ok(qsrv, "test.steps", {"steps": 10, "sleep_ms": 300})
    j = wait_job(qsrv, jid, lambda j: j["status"] == "processing" and j["steps_done"] >= 3, timeout=6,
                 what="3 steps done")
    checked = 0
    while j["status"] == "processing" and j["steps_done"] <= 6:
        eta = j["eta_seconds"]
        remaining = (10 - j["steps_done"]) * 0.3
        assert isinstance(eta, int) and eta >= 1, f"eta_seconds {eta!r} while running: {j}"
        assert 0.5 * remaining <= eta <= 3 * remaining + 0.5, (
            f"eta_seconds {eta} not consistent with ~{remaining:.1f}s left: {j}")
        checked += 1
        time.sleep(0.25)
        j = get_job(qsrv, jid)
    assert checked >= 2, j
    assert qsrv.post(f"/api/v1/jobs/{jid}/cancel", headers=ADMIN).status_code == 202
    j = wait_job(qsrv, jid, timeout=3)
    assert j["status"] == "cancelled" and j["eta_seconds"] is None, j


def test_eta_unknown_while_pending(idle):
    jid = submit_ok(idle, "test.steps", {"steps": 3})
    j = get_job(idle, jid)
    assert j["status"] == "pending" and j["eta_seconds"] is None, j
    assert j["started_at"] is None and j["attempts"] == 0 and j["progress"] == 0, j
    assert j["step"] is None and j["result"] is None and j["error"] is None, j


# ------------------------------------------------------------------ idempotency

def test_idempotency_key_on_jobs(qsrv, users):
    key = uniq("idem")
    r1 = submit(qsrv, "test.noop", {}, key=key)
    jid = accepted_id(r1)
    assert "Idempotent-Replayed" not in r1.headers
    r2 = submit(qsrv, "test.noop", {}, key=key)
    assert accepted_id(r2) == jid
    assert r2.headers.get("Idempotent-Replayed") == "true", r2.headers
    # even with another payload, the key names the first job
    r3 = submit(qsrv, "test.steps", {"steps": 2}, key=key)
    assert accepted_id(r3) == jid
    assert get_job(qsrv, jid)["type"] == "test.noop"
    # replay after completion still returns the job (with its status)
    wait_job(qsrv, jid)
    r4 = submit(qsrv, "test.noop", {}, key=key)
    assert accepted_id(r4) == jid and r4.json()["status"] == "completed", r4.text
    # another user, same key: their own job
    adm = users["admin"]["headers"]
    r5 = submit(qsrv, "test.noop", {}, headers=adm, key=key)
    other = accepted_id(r5)
    assert other != jid
    assert "Idempotent-Replayed" not in r5.headers
    assert accepted_id(submit(qsrv, "test.noop", {}, headers=adm, key=key)) == other
    # no key: always a new job
    assert submit_ok(qsrv, "test.noop", {}) != submit_ok(qsrv, "test.noop", {})


def test_idempotency_key_too_long(qsrv):
    err = assert_error(submit(qsrv, "test.noop", {}, key="k" * 129), 422, "validation_failed")
    assert any(d.get("field") == "Idempotency-Key" for d in err["details"]), err
    accepted_id(submit(qsrv, "test.noop", {}, key="k" * 128))


def test_idempotency_key_concurrent_submits(qsrv):
    """Ten simultaneous submits with one key make one job."""
    key = uniq("race")
    ids, errors = [], []

    def go():
        try:
            r = requests.post(qsrv.url("/api/v1/jobs"), json={"type": "test.noop", "payload": {}},
                              headers={**ADMIN, "Idempotency-Key": key}, timeout=10)
            ids.append((r.status_code, r.json().get("job_id")))
        except Exception as exc:
            errors.append(exc)

    ts_ = [threading.Thread(target=go) for _ in range(10)]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join()
    assert not errors, errors
    assert {s for s, _ in ids} == {202}, ids
    assert len({i for _, i in ids}) == 1, ids
