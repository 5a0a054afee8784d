"""Shared helpers for the test_jobs_*.py modules (background jobs, uploads,
`bookd worker`).  This module holds no tests; pytest collects it only
because of its name.  Everything here talks to bookd over HTTP or runs the
binary -- nothing knows about src/."""
import json
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import (ADMIN, BOOKD, SLOW, TS_RE, UUID7_RE, clean_env,
                      require_binary, users_env)

TERMINAL = {"completed", "failed", "cancelled"}
STATUSES = {"pending", "processing"} | TERMINAL
JOB_KEYS = {
    "id", "type", "status", "progress", "step", "steps_done", "steps_total",
    "attempts", "max_attempts", "result", "error", "eta_seconds", "created_at",
    "updated_at", "started_at", "finished_at",
}


def jobs_env(**extra):
    """Environment for a jobs test server: test.* job types on, short retry
    backoff, a known JWT secret (so make_user works)."""
    env = users_env()
    env.update({"BOOKD_TEST_JOBS": "1", "BOOKD_JOB_BACKOFF_MS": "50"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def ts(s):
    """API timestamp -> seconds since the epoch (float)."""
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


def assert_job_shape(j):
    assert isinstance(j, dict), j
    assert set(j) == JOB_KEYS, f"job keys differ: {set(j) ^ JOB_KEYS}"
    assert UUID7_RE.match(j["id"]), j["id"]
    assert j["status"] in STATUSES, j
    assert isinstance(j["progress"], int) and 0 <= j["progress"] <= 100, j
    for k in ("steps_done", "steps_total", "attempts", "max_attempts"):
        assert isinstance(j[k], int) and j[k] >= 0, (k, j)
    assert j["steps_done"] <= j["steps_total"], j
    assert j["eta_seconds"] is None or (isinstance(j["eta_seconds"], int) and j["eta_seconds"] >= 0), j
    assert TS_RE.match(j["created_at"]) and TS_RE.match(j["updated_at"]), j
    for k in ("started_at", "finished_at"):
        assert j[k] is None or TS_RE.match(j[k]), (k, j)
    if j["status"] in TERMINAL:
        assert j["finished_at"] is not None, j
    else:
        assert j["finished_at"] is None, j
    return j


def submit(srv, type_, payload=None, headers=ADMIN, key=None):
    """POST /api/v1/jobs; returns the response (not checked)."""
    body = {"type": type_}
    if payload is not None:
        body["payload"] = payload
    h = dict(headers or {})
    if key is not None:
        h["Idempotency-Key"] = key
    return srv.post("/api/v1/jobs", json=body, headers=h)


def accepted_id(r):
    """Check a 202 job-accepted answer; return the job id."""
    assert r.status_code == 202, f"{r.status_code}: {r.text[:500]}"
    body = r.json()
    assert set(body) == {"job_id", "status"}, body
    assert UUID7_RE.match(body["job_id"]), body
    assert r.headers.get("Location") == f"/api/v1/jobs/{body['job_id']}", r.headers
    return body["job_id"]


def submit_ok(srv, type_, payload=None, headers=ADMIN, key=None):
    r = submit(srv, type_, payload, headers, key)
    jid = accepted_id(r)
    assert r.json()["status"] == "pending", r.text
    return jid


def get_job(srv, jid, headers=ADMIN):
    r = srv.get(f"/api/v1/jobs/{jid}", headers=headers)
    assert r.status_code == 200, f"GET job {jid}: {r.status_code} {r.text[:300]}"
    return assert_job_shape(r.json())


def wait_job(srv, jid, pred=None, timeout=10.0, headers=ADMIN, what="a terminal status"):
    """Poll the job until pred(job) (default: terminal); returns the job."""
    pred = pred or (lambda j: j["status"] in TERMINAL)
    deadline = time.monotonic() + timeout * SLOW
    while True:
        j = get_job(srv, jid, headers)
        if pred(j):
            return j
        if time.monotonic() > deadline:
            raise AssertionError(f"job {jid} did not reach {what} within {timeout}s; last: {j}")
        time.sleep(0.03)


def wait_all(srv, ids, timeout=20.0):
    """Wait until every job is terminal; returns {id: job}."""
    deadline = time.monotonic() + timeout * SLOW
    done = {}
    while True:
        for jid in [i for i in ids if i not in done]:
            j = get_job(srv, jid)
            if j["status"] in TERMINAL:
                done[jid] = j
        if len(done) == len(ids):
            return done
        if time.monotonic() > deadline:
            left = [get_job(srv, i) for i in ids if i not in done][:3]
            raise AssertionError(f"{len(ids) - len(done)} of {len(ids)} jobs not finished "
                                 f"within {timeout}s, e.g. {left}")
        time.sleep(0.1)


def read_record(path):
    """The record file of test.steps jobs: [(job_id, step), ...] in order."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        jid, step = line.split()
        out.append((jid, int(step)))
    return out


def steps_of(path, jid):
    return [s for j, s in read_record(path) if j == jid]


def log_json(path):
    out = []
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if isinstance(o, dict):
            out.append(o)
    return out


# --------------------------------------------------------------------------
# `bookd worker` processes
# --------------------------------------------------------------------------

class Worker:
    def __init__(self, proc, log_path):
        self.proc = proc
        self.log_path = Path(log_path)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=20):
        return "\n".join(self.log_text().splitlines()[-n:])

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send sig and wait; returns (returncode, seconds taken)."""
        t0 = time.monotonic()
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"bookd worker did not exit within {timeout}s after "
                                     f"{sig!r}; log:\n{self.log_tail()}")
        return self.proc.returncode, time.monotonic() - t0


def start_worker(srv, log_path, env=None, wait=True):
    """Start `bookd worker` with the server's configuration (BOOKD_* and
    DATABASE_URL: the same data dir and database), plus `env` overrides."""
    require_binary()
    e = clean_env()
    e.update({k: v for k, v in srv.env.items() if k.startswith("BOOKD_") or k == "DATABASE_URL"})
    e.pop("BOOKD_PORT", None)
    if env:
        e.update({k: str(v) for k, v in env.items()})
    logf = open(log_path, "wb")
    proc = subprocess.Popen([BOOKD, "worker"], cwd=str(srv.data_dir), env=e,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf)
    logf.close()
    w = Worker(proc, log_path)
    if wait:
        deadline = time.monotonic() + 10 * SLOW
        while "job workers started" not in w.log_text():
            if not w.alive():
                raise AssertionError(f"bookd worker exited early with {proc.returncode}:\n{w.log_tail()}")
            if time.monotonic() > deadline:
                w.kill9()
                raise AssertionError(f"bookd worker did not start within 10s:\n{w.log_tail()}")
            time.sleep(0.03)
    return w


@pytest.fixture
def worker_factory(tmp_path):
    started = []

    def factory(srv, env=None, wait=True):
        w = start_worker(srv, tmp_path / f"worker{len(started) + 1}.stderr", env, wait)
        started.append(w)
        return w

    yield factory
    for w in started:
        if w.alive():
            w.kill9()
