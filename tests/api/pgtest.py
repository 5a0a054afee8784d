"""A private PostgreSQL for the black-box suite.

With BOOKD_TEST_DB=postgres every bookd the tests start gets a DATABASE_URL:
one database per data directory (so a restart on the same data dir finds its
data, and tests stay isolated). The server is initialised in a temporary
directory, listens on a free loopback port, runs as the `postgres` system user
(PostgreSQL refuses root), and is stopped and removed when the tests end.
"""
import atexit
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading

PG_BIN = os.environ.get("BOOKD_PG_BIN", "/usr/lib/postgresql/15/bin")
_lock = threading.Lock()
_server = None


def enabled():
    return os.environ.get("BOOKD_TEST_DB", "sqlite") == "postgres"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args, **kw):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, check=True, capture_output=True, text=True, **kw)


class PrivatePostgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bookd-pg-")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        _as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--locale=C.UTF-8"])
        # a free port is free only when picked: another process may bind it
        # before PostgreSQL does, which then fails to start; pick another
        for attempt in range(3):
            self.port = _free_port()
            try:
                self.start()
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
        self.databases = set()

    def start(self):
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        _as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"),
                      "-o", opts, "-w", "start"])

    def stop(self, mode="fast"):
        _as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"])

    def psql(self, sql, db="postgres"):
        return _as_postgres(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                             "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql]).stdout

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def database_for(self, key):
        name = "t_" + hashlib.sha1(str(key).encode()).hexdigest()[:16]
        with _lock:
            if name not in self.databases:
                self.psql(f"CREATE DATABASE {name}")
                self.databases.add(name)
        return self.url(name)

    def destroy(self):
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def server():
    """The shared private server, started on first use."""
    global _server
    with _lock:
        if _server is None:
            _server = PrivatePostgres()
            atexit.register(_server.destroy)
    return _server


def database_url_for(data_dir):
    """DATABASE_URL for a bookd whose data dir is data_dir (None when on SQLite)."""
    if not enabled() or data_dir is None:
        return None
    return server().database_for(os.path.realpath(str(data_dir)))
