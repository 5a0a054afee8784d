"""The job queue on PostgreSQL with several processes: claims are exactly-once
under concurrency (FOR UPDATE SKIP LOCKED), and an idle worker process is
woken by LISTEN/NOTIFY when another process submits a job instead of waiting
for its next poll (every 500 ms)."""
import random
import statistics
import threading
import time
from collections import Counter

import requests

from conftest import ADMIN, HTTP_TIMEOUT
from test_jobs_common import TERMINAL, accepted_id, log_json, read_record, ts
from test_pg_common import fresh_db, node_env, shared_pg, start_pg_worker, wait_listening


def list_all_jobs(srv):
    items, cursor = [], None
    for _ in range(100):
        params = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        r = srv.get("/api/v1/jobs", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("job list paging does not end")


def test_300_jobs_on_three_processes_each_claimed_exactly_once(server_factory, tmp_path):
    url = fresh_db("claims")
    env = node_env(url, BOOKD_TEST_JOBS=1, BOOKD_WORKER_MAX_JOBS=5, BOOKD_JOB_BACKOFF_MS=50)
    a = server_factory(tmp_path / "node-a", env=env)
    b = server_factory(tmp_path / "node-b", env=env)
    w = start_pg_worker(tmp_path / "node-w", url, tmp_path / "worker.stderr",
                        BOOKD_TEST_JOBS=1, BOOKD_WORKER_MAX_JOBS=5, BOOKD_JOB_BACKOFF_MS=50)
    try:
        rec = tmp_path / "rec"
        n_jobs, n_threads = 300, 6
        ids, errors, lock = [], [], threading.Lock()

        def submitter(k):
            s = requests.Session()
            try:
                for i in range(k, n_jobs, n_threads):
                    srv = (a, b)[i % 2]
                    try:
                        r = s.post(srv.url("/api/v1/jobs"), headers=ADMIN, timeout=HTTP_TIMEOUT,
                                   json={"type": "test.steps",
                                         "payload": {"steps": 1, "sleep_ms": 0, "record": str(rec)}})
                        jid = accepted_id(r)
                    except Exception as exc:  # reported below
                        with lock:
                            errors.append(repr(exc))
                        continue
                    with lock:
                        ids.append(jid)
            finally:
                s.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=submitter, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:5]
        assert len(ids) == n_jobs and len(set(ids)) == n_jobs

        # every job's step 0 is recorded, and exactly once
        deadline = time.monotonic() + 20
        while len(read_record(rec)) < n_jobs and time.monotonic() < deadline:
            time.sleep(0.1)
        ran_in = time.monotonic() - t0
        time.sleep(0.5)  # late duplicates would show up now
        lines = read_record(rec)
        counts = Counter(jid for jid, step in lines if step == 0)
        dup = {j: c for j, c in counts.items() if c > 1}
        assert not dup, f"{len(dup)} jobs ran step 0 more than once, e.g. {list(dup.items())[:5]}"
        lost = set(ids) - set(counts)
        assert not lost, f"{len(lost)} of {n_jobs} jobs never ran (after {ran_in:.1f}s), e.g. {sorted(lost)[:3]}"
        assert set(counts) == set(ids), set(counts) - set(ids)
        assert all(step == 0 for _, step in lines), [x for x in lines if x[1] != 0][:5]

        # the work was shared: every process ran some, and each job is in one log
        ran_by = {}
        for name, path in (("a", a.log_path), ("b", b.log_path), ("w", w.log_path)):
            for o in log_json(path):
                if o.get("msg") == "job" and o.get("job_id") in counts:
                    ran_by.setdefault(o["job_id"], []).append(name)
        twice = {j: v for j, v in ran_by.items() if len(v) > 1}
        assert not twice, f"jobs finished by more than one process: {list(twice.items())[:5]}"
        per_proc = Counter(v[0] for v in ran_by.values())
        assert set(per_proc) == {"a", "b", "w"}, f"not every process took jobs: {per_proc}"

        # all end completed, each after one attempt; none is lost
        deadline = time.monotonic() + 4
        while True:
            jobs = {j["id"]: j for j in list_all_jobs(a)}
            left = [j for j in jobs.values() if j["status"] not in TERMINAL]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert set(jobs) == set(ids), f"job list differs: {len(set(ids) - set(jobs))} missing"
        statuses = Counter(j["status"] for j in jobs.values())
        errs = [l for srv in (a, b) for l in srv.log_text().splitlines() if '"level":"error"' in l]
        errs += [l for l in w.log_text().splitlines() if '"level":"error"' in l]
        assert statuses == {"completed": n_jobs}, (
            f"statuses {dict(statuses)}; first errors logged:\n" + "\n".join(errs[:3]))
        attempts = Counter(j["attempts"] for j in jobs.values())
        assert attempts == {1: n_jobs}, attempts
        assert all(j["progress"] == 100 and j["finished_at"] for j in jobs.values())
    finally:
        rc = w.stop()
    assert rc == 0, w.log_tail()


def test_idle_worker_process_is_woken_by_notify(server_factory, tmp_path):
    """A server that runs no jobs (BOOKD_WORKERS=0) and one `bookd worker` with
    a single worker thread, idle: a job submitted on the server must be
    started well within the 500 ms poll interval.  (Polling alone would give
    about 250 ms on average.)"""
    url = fresh_db("notify")
    srv = server_factory(tmp_path / "node-a", env=node_env(url, BOOKD_TEST_JOBS=1, BOOKD_WORKERS=0))
    w = start_pg_worker(tmp_path / "node-w", url, tmp_path / "worker.stderr",
                        BOOKD_TEST_JOBS=1, BOOKD_WORKER_MAX_JOBS=1)
    try:
        wait_listening(shared_pg(), url)  # the worker's listener connects in the background
        time.sleep(0.3)  # let its first poll pass
        delays = []
        rnd = random.Random(7)
        for _ in range(10):
            time.sleep(rnd.uniform(0.1, 0.45))  # vary the phase against the poll timer
            r = srv.post("/api/v1/jobs", headers=ADMIN, json={"type": "test.noop"})
            jid = accepted_id(r)
            deadline = time.monotonic() + 5
            while True:
                j = srv.get(f"/api/v1/jobs/{jid}", headers=ADMIN).json()
                if j["started_at"]:
                    break
                assert time.monotonic() < deadline, f"job never started: {j}\n{w.log_tail()}"
                time.sleep(0.01)
            delays.append((ts(j["started_at"]) - ts(j["created_at"])) * 1000)
        mean = statistics.mean(delays)
        print(f"submit-to-start delays (ms): {[round(d) for d in delays]}, mean {mean:.1f}")
        assert mean < 100, f"jobs waited {mean:.0f} ms on average for an idle worker: {delays}"
        assert statistics.median(delays) < 100, delays
        assert w.alive(), w.log_tail()
    finally:
        rc = w.stop()
    assert rc == 0, w.log_tail()
