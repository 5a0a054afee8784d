"""Job workers: `bookd worker` processes beside a server on the same data
directory, concurrency, crash recovery through lease expiry (kill -9),
graceful SIGTERM (lease released, resumed from the checkpoint), and
exactly-once execution with several claimers."""
import io
import json
import signal
import statistics
import threading
import time
import zipfile
from collections import Counter

import requests

from conftest import ADMIN, SLOW, uniq
from test_jobs_common import (get_job, jobs_env, log_json, read_record,
                              steps_of, submit_ok, ts, wait_all, wait_job)
from test_jobs_common import worker_factory  # noqa: F401  (fixture)


def test_jobs_wait_for_a_worker_then_run_concurrently(server_factory, worker_factory):
    """BOOKD_WORKERS=0: the server only queues; a `bookd worker` with
    BOOKD_WORKER_MAX_JOBS=5 runs five 600 ms jobs at the same time."""
    srv = server_factory(env=jobs_env(BOOKD_WORKERS=0))
    ids = [submit_ok(srv, "test.steps", {"steps": 1, "sleep_ms": 600}) for _ in range(5)]
    time.sleep(0.6)
    assert {get_job(srv, i)["status"] for i in ids} == {"pending"}, "a server with BOOKD_WORKERS=0 ran jobs"
    w = worker_factory(srv, env={"BOOKD_WORKER_MAX_JOBS": 5})
    t0 = time.monotonic()
    done = wait_all(srv, ids, timeout=10)
    took = time.monotonic() - t0
    assert {j["status"] for j in done.values()} == {"completed"}, done
    starts = [ts(j["started_at"]) for j in done.values()]
    ends = [ts(j["finished_at"]) for j in done.values()]
    assert max(starts) < min(ends), f"the five jobs did not overlap: starts {starts} ends {ends}"
    assert took < 2.5 * SLOW, f"5 x 600 ms jobs took {took:.2f}s with 5 worker slots"
    assert all(j["attempts"] == 1 for j in done.values())
    rc, _ = w.stop()
    assert rc == 0, w.log_tail()


def test_worker_slots_limit_concurrency(server_factory, worker_factory):
    """BOOKD_WORKER_MAX_JOBS=2: never more than two jobs processing."""
    srv = server_factory(env=jobs_env(BOOKD_WORKERS=0))
    ids = [submit_ok(srv, "test.steps", {"steps": 1, "sleep_ms": 400}) for _ in range(4)]
    w = worker_factory(srv, env={"BOOKD_WORKER_MAX_JOBS": 2})
    deadline = time.monotonic() + 10 * SLOW
    peak = 0
    while time.monotonic() < deadline:
        # One list query is one snapshot; reading the jobs one by one is not
        # (a job may finish between two reads while the next one starts).
        r = srv.get("/api/v1/jobs?status=processing&limit=100", headers=ADMIN)
        assert r.status_code == 200, r.text
        peak = max(peak, sum(1 for j in r.json()["items"] if j["id"] in ids))
        st = [get_job(srv, i)["status"] for i in ids]
        if all(s == "completed" for s in st):
            break
        time.sleep(0.05)
    assert all(s == "completed" for s in st), st
    assert 1 <= peak <= 2, f"{peak} jobs ran at once with BOOKD_WORKER_MAX_JOBS=2"
    w.stop()


def test_new_job_starts_promptly_on_an_idle_server(server_factory):
    """Submitting wakes an idle worker thread: a job does not wait for the
    next poll (0.5 s).  Sequential submits, each after the previous one
    finished."""
    srv = server_factory(env=jobs_env())
    delays = []
    for _ in range(4):
        jid = submit_ok(srv, "test.noop", {})
        j = wait_job(srv, jid, timeout=5)
        delays.append(ts(j["started_at"]) - ts(j["created_at"]))
        time.sleep(0.05)
    med = statistics.median(delays)
    assert med < 0.2 * SLOW, (
        f"POST /api/v1/jobs on an idle server (5 idle worker threads): jobs start "
        f"{med * 1000:.0f} ms after submission (delays {[round(d, 3) for d in delays]})")


def check_resumed_record(rec, jid, checkpointed):
    """Every step 0..9 ran; the steps checkpointed before the crash exactly
    once; the interrupted step (number `checkpointed`) at most twice; the
    later ones once."""
    steps = steps_of(rec, jid)
    counts = Counter(steps)
    assert set(counts) == set(range(10)), f"steps recorded: {steps}"
    for s, n in counts.items():
        limit = 2 if s == checkpointed else 1
        assert n <= limit, f"step {s} ran {n} times (checkpointed before the crash: {checkpointed}): {steps}"
    return steps


def test_kill9_worker_mid_job_resumes_once(server_factory, worker_factory, tmp_path):
    lease = {"BOOKD_JOB_LEASE": 1}
    srv = server_factory(env=jobs_env(BOOKD_WORKERS=0, **lease))
    rec = tmp_path / "rec"
    jid = submit_ok(srv, "test.steps", {"steps": 10, "sleep_ms": 300, "record": str(rec)})
    a = worker_factory(srv, env=lease)
    j = wait_job(srv, jid, lambda j: j["steps_done"] >= 3, timeout=8, what="3 steps done")
    time.sleep(0.15)  # in the middle of a step
    a.kill9()
    j = get_job(srv, jid)
    assert j["status"] == "processing" and j["attempts"] == 1, j
    checkpointed = j["steps_done"]
    assert 3 <= checkpointed <= 5, j
    b = worker_factory(srv, env=lease)
    j = wait_job(srv, jid, timeout=12)
    assert j["status"] == "completed", j
    assert j["attempts"] == 2, f"expected one crash + one resume: {j}"
    assert j["result"] == {"steps": 10} and j["progress"] == 100 and j["steps_done"] == 10, j
    check_resumed_record(rec, jid, checkpointed)
    rc, _ = b.stop()
    assert rc == 0


def docusaurus_zip(title):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("b/book.json", json.dumps({"title": title, "author": "Crash"}))
        for i in range(1, 4):
            z.writestr(f"b/{i:02d}-c.md", f"# Chapter {i}\n\ntext {i}\n")
    return bio.getvalue()


def import_zip(srv, data):
    r = srv.post("/api/v1/books/import", files={"file": ("b.zip", data, "application/zip")}, headers=ADMIN)
    assert r.status_code == 202, r.text
    j = wait_job(srv, r.json()["job_id"], timeout=10)
    assert j["status"] == "completed", j
    return j["result"]


def test_kill9_server_mid_job_resumes_once_then_reimport_is_clean(server_factory, tmp_path):
    env = jobs_env(BOOKD_JOB_LEASE=1)
    data_dir = tmp_path / "shared"
    srv = server_factory(data_dir, env=env)
    rec = tmp_path / "rec"
    jid = submit_ok(srv, "test.steps", {"steps": 10, "sleep_ms": 300, "record": str(rec)})
    wait_job(srv, jid, lambda j: j["steps_done"] >= 4, timeout=8, what="4 steps done")
    time.sleep(0.1)
    srv.proc.kill()
    srv.proc.wait()
    look = server_factory(data_dir, env={**env, "BOOKD_WORKERS": "0"})
    j = get_job(look, jid)
    assert j["status"] == "processing" and j["attempts"] == 1, j
    checkpointed = j["steps_done"]
    assert checkpointed >= 4, j
    assert look.stop() == 0
    srv2 = server_factory(data_dir, env=env)
    j = wait_job(srv2, jid, timeout=12)
    assert j["status"] == "completed" and j["attempts"] == 2, j
    check_resumed_record(rec, jid, checkpointed)
    # after the crash/restart, importing one zip twice gives one book, no duplicate chapters
    title = uniq("Crash Zip")
    data = docusaurus_zip(title)
    first = import_zip(srv2, data)
    second = import_zip(srv2, data)
    assert first["created"] is True and second["created"] is False, (first, second)
    assert first["book_id"] == second["book_id"]
    items = srv2.get(f"/api/v1/books/{first['book_id']}/chapters").json()["items"]
    assert [c["title"] for c in items] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    assert len(srv2.books_titled(title)) == 1


def test_exactly_once_with_server_and_worker(server_factory, worker_factory, tmp_path):
    """100 noop and 30 recorded jobs are queued first; then a server (5
    threads) and a `bookd worker` (5 threads) start together on the same
    data dir and drain the queue: each job runs exactly once."""
    data_dir = tmp_path / "shared"
    # a 3 s lease only to bound the shutdown wait (see the SIGTERM test)
    queue = server_factory(data_dir, env=jobs_env(BOOKD_WORKERS=0, BOOKD_JOB_LEASE=3))
    rec = tmp_path / "rec"
    ids, rec_ids, errors = [], [], []
    lock = threading.Lock()

    # the recorded jobs take 300 ms: one process alone needs about 2 s for
    # them, so the one that starts later still finds work
    def submitter(n_noop, n_rec):
        s = requests.Session()
        try:
            for i in range(n_noop + n_rec):
                body = ({"type": "test.noop", "payload": {}} if i < n_noop else
                        {"type": "test.steps", "payload": {"steps": 1, "sleep_ms": 300, "record": str(rec)}})
                r = s.post(queue.url("/api/v1/jobs"), json=body, headers=ADMIN, timeout=10)
                assert r.status_code == 202, r.text
                with lock:
                    (ids if i < n_noop else rec_ids).append(r.json()["job_id"])
        except BaseException as exc:
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=submitter, args=(25, 15 if k < 2 else 0)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(ids) == 100 and len(rec_ids) == 30
    assert queue.stop() == 0

    w = worker_factory(queue, env={"BOOKD_WORKER_MAX_JOBS": 5}, wait=False)
    srv = server_factory(data_dir, env=jobs_env(BOOKD_WORKER_MAX_JOBS=5, BOOKD_JOB_LEASE=3))
    done = wait_all(srv, ids + rec_ids, timeout=30)
    bad = {i: j for i, j in done.items() if j["status"] != "completed" or j["attempts"] != 1}
    assert not bad, f"{len(bad)} jobs not completed exactly once, e.g. {list(bad.values())[:3]}"
    counts = Counter(j for j, _ in read_record(rec))
    assert set(counts) == set(rec_ids), "record file names other jobs or misses some"
    dup = {j: n for j, n in counts.items() if n != 1}
    assert not dup, f"jobs recorded more than once: {dup}"
    # each job finished once, by one of the two processes (their logs); a
    # job's line is logged just after it is recorded as completed: wait for it
    deadline = time.monotonic() + 5 * SLOW
    while True:
        srv_done = [r["job_id"] for r in log_json(srv.log_path)
                    if r.get("msg") == "job" and r.get("status") == "completed"]
        w_done = [r["job_id"] for r in log_json(w.log_path)
                  if r.get("msg") == "job" and r.get("status") == "completed"]
        if set(srv_done + w_done) >= set(ids + rec_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    both = Counter(srv_done + w_done)
    assert set(both) == set(ids + rec_ids) and set(both.values()) == {1}, (
        f"completions logged: {len(srv_done)} by the server, {len(w_done)} by the worker, "
        f"duplicates {[k for k, v in both.items() if v > 1][:5]}")
    assert srv_done and w_done, (
        f"both processes should have taken jobs: server {len(srv_done)}, worker {len(w_done)}")
    rc, _ = w.stop()
    assert rc == 0, w.log_tail()


def test_sigterm_worker_releases_lease_and_another_resumes(server_factory, worker_factory, tmp_path):
    """Lease 6 s.  Worker A is SIGTERMed mid-step, then worker B: each gives
    the job back at once (status pending, attempt not counted) and exits
    promptly; the next worker resumes at the checkpoint without waiting for
    the lease to expire; worker C finishes; every step ran exactly once."""
    srv = server_factory(env=jobs_env(BOOKD_WORKERS=0, BOOKD_JOB_LEASE=6))
    rec = tmp_path / "rec"
    jid = submit_ok(srv, "test.steps", {"steps": 10, "sleep_ms": 300, "record": str(rec)})
    exits = []
    for name, upto in (("A", 3), ("B", 6)):
        w = worker_factory(srv)
        t0 = time.monotonic()
        wait_job(srv, jid, lambda j: j["steps_done"] >= upto, timeout=8, what=f"{upto} steps done")
        if name == "B":
            assert time.monotonic() - t0 < 2.5 * SLOW, "worker B waited for the lease to expire"
        time.sleep(0.1)  # mid-step
        rc, took = w.stop(signal.SIGTERM, timeout=35)
        exits.append(round(took, 2))
        assert rc == 0, w.log_tail()
        j = get_job(srv, jid)
        assert j["status"] == "pending", f"SIGTERM did not give the job back: {j}"
        assert j["attempts"] == 0, f"the interrupted attempt was counted: {j}"
        assert j["steps_done"] == len(steps_of(rec, jid)) >= upto, (j, steps_of(rec, jid))
        assert j["progress"] >= 10 * upto, j
    c = worker_factory(srv)
    j = wait_job(srv, jid, timeout=10)
    assert j["status"] == "completed" and j["attempts"] == 1, j
    assert steps_of(rec, jid) == list(range(10)), f"steps re-run or skipped: {steps_of(rec, jid)}"
    c.stop()
    assert max(exits) < 1.5 * SLOW, (
        f"`bookd worker` (BOOKD_JOB_LEASE=6) took {exits} s to exit after SIGTERM although its "
        f"step stopped at once (the exit waits about lease/3 s: 10 s with the default lease)")


def test_sigterm_idle_worker_exits_fast(server_factory, worker_factory):
    srv = server_factory(env=jobs_env(BOOKD_WORKERS=0))
    w = worker_factory(srv)
    jid = submit_ok(srv, "test.noop", {})
    wait_job(srv, jid, timeout=5)
    rc, took = w.stop(signal.SIGTERM, timeout=35)
    assert rc == 0 and took < 2 * SLOW, (rc, took, w.log_tail())


def test_sigterm_server_with_running_job(server_factory, tmp_path):
    """The server's own workers on SIGTERM: the job goes back to pending
    with its progress (attempt not counted); a restarted server finishes it
    without re-running finished steps."""
    data_dir = tmp_path / "d"
    env = jobs_env(BOOKD_JOB_LEASE=3)
    srv = server_factory(data_dir, env=env)
    rec = tmp_path / "rec"
    jid = submit_ok(srv, "test.steps", {"steps": 10, "sleep_ms": 200, "record": str(rec)})
    wait_job(srv, jid, lambda j: j["steps_done"] >= 2, timeout=8, what="2 steps done")
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.proc.wait(timeout=40 * SLOW)
    took = time.monotonic() - t0
    assert rc == 0, srv.log_tail()
    look = server_factory(data_dir, env={**env, "BOOKD_WORKERS": "0"})
    j = get_job(look, jid)
    assert j["status"] == "pending" and j["attempts"] == 0 and j["steps_done"] >= 2, j
    assert look.stop() == 0
    srv3 = server_factory(data_dir, env=env)
    j = wait_job(srv3, jid, timeout=10)
    assert j["status"] == "completed" and j["attempts"] == 1, j
    assert steps_of(rec, jid) == list(range(10)), steps_of(rec, jid)
    assert took < 3 * SLOW, f"`bookd serve` took {took:.1f}s to stop with a running job"
