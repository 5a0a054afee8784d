"""Shared helpers for the test_pg_*.py modules (the PostgreSQL backend).

This module holds no tests; pytest collects it only because of its name.

These tests are PostgreSQL-specific: they always use a private PostgreSQL
started by pgtest (the shared one from pgtest.server(), or one of their own
for the fault tests), whatever BOOKD_TEST_DB says, and hand DATABASE_URL to
every bookd they start explicitly.  So they run in `make api` and in
`make api-pg` alike.  Everything talks to bookd over HTTP or the CLI.
"""
import sqlite3
import subprocess
import time
from pathlib import Path

import pgtest
from conftest import (ADMIN, BOOKD, JWT_SECRET, SLOW, clean_env, require_binary,
                      uniq)


def shared_pg():
    """The session's private PostgreSQL (started on first use even when
    BOOKD_TEST_DB is not postgres; removed at exit by pgtest)."""
    return pgtest.server()


def fresh_db(tag="pgtest"):
    """The URL of a new, empty database on the shared private PostgreSQL."""
    return shared_pg().database_for(uniq(tag))


def db_name(url):
    return url.rsplit("/", 1)[1]


def node_env(url, **extra):
    """Environment for one bookd node on the database `url`: every node of a
    test shares the JWT secret (>= 32 chars) and the master key (start_server
    sets BOOKD_API_KEY to the same value everywhere)."""
    env = {
        "DATABASE_URL": url,
        "BOOKD_JWT_SECRET": JWT_SECRET,
        "BOOKD_LOGIN_BURST": "100000",
        "BOOKD_LOGIN_PER_MINUTE": "100000",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


class PgWorker:
    """A `bookd worker` process."""

    def __init__(self, proc, log_path):
        self.proc = proc
        self.log_path = Path(log_path)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=15):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"bookd worker did not exit after SIGTERM:\n{self.log_tail()}")
        return self.proc.returncode


def start_pg_worker(data_dir, url, log_path, **extra):
    """Start `bookd worker` on the database `url` and wait until its workers
    are up (it logs "job workers started")."""
    require_binary()
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    e = clean_env()
    e.update({"BOOKD_DATA_DIR": str(data_dir), "BOOKD_LOG_LEVEL": "info",
              "BOOKD_API_KEY": ADMIN["X-API-Key"]})
    e.update(node_env(url, **extra))
    logf = open(log_path, "wb")
    proc = subprocess.Popen([BOOKD, "worker"], cwd=str(data_dir), env=e,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf)
    logf.close()
    w = PgWorker(proc, log_path)
    deadline = time.monotonic() + 10 * SLOW
    while "job workers started" not in w.log_text():
        if not w.alive():
            raise AssertionError(f"bookd worker exited early with {proc.returncode}:\n{w.log_tail()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"bookd worker did not start within 10s:\n{w.log_tail()}")
        time.sleep(0.03)
    return w


def wait_listening(pg, url, channel="bookd_jobs", timeout=15):
    """Wait until a session on the database `url` of the PostgreSQL `pg` has
    run LISTEN `channel` and sits idle: for the default channel, a job
    worker's listener, which connects in the background (at start, and again
    after losing its connection, with a growing back-off), is ready for
    NOTIFY."""
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
           f"AND state = 'idle' AND query ILIKE 'LISTEN {channel}%'")
    deadline = time.monotonic() + timeout * SLOW
    while int(pg.psql(sql, db=db_name(url)).strip()) < 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"no LISTEN {channel} session on {db_name(url)} within {timeout}s")
        time.sleep(0.05)


def sqlite_tables(path):
    """Tables of the SQLite schema that hold bookd's data: all but
    schema_migrations, sqlite_* and the virtual tables (FTS) with their
    shadow tables, which SQLite maintains itself."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        con.close()
    virtual = [n for n, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    return {n for n, _ in rows
            if n != "schema_migrations" and not n.startswith("sqlite_")
            and n not in virtual and not any(n.startswith(v + "_") for v in virtual)}
