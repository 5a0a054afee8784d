"""`bookd migrate` on PostgreSQL: the same schema version as on SQLite,
idempotent, and safe when several processes migrate a fresh database at
once (several nodes starting together)."""
import re
import subprocess

from conftest import BOOKD, SLOW, clean_env, run_bookd
from test_pg_common import db_name, fresh_db, shared_pg, sqlite_tables

VERSION_RE = re.compile(r"^schema version (\d+)$", re.M)


def version_of(p):
    assert p.returncode == 0, f"migrate exited {p.returncode}: {p.stderr}"
    m = VERSION_RE.search(p.stdout)
    assert m, f"migrate should print 'schema version N': {p.stdout!r}"
    return int(m.group(1))


def sqlite_version(tmp_path):
    data = tmp_path / "sqlite-data"
    data.mkdir(exist_ok=True)
    p = run_bookd(["migrate"], data_dir=data, unset=("DATABASE_URL",))
    assert (data / "bookd.db").exists(), "migrate without DATABASE_URL did not use SQLite"
    return version_of(p), data / "bookd.db"


def pg_migrate(url, tmp_path):
    data = tmp_path / "pg-data"
    data.mkdir(exist_ok=True)
    return run_bookd(["migrate"], data_dir=data, env={"DATABASE_URL": url})


def pg_rows(url, sql):
    return shared_pg().psql(sql, db=db_name(url)).split()


def test_migrate_postgres_same_version_as_sqlite_and_idempotent(tmp_path):
    n_sqlite, dbfile = sqlite_version(tmp_path)
    url = fresh_db("migrate")
    n1 = version_of(pg_migrate(url, tmp_path))
    assert n1 == n_sqlite, f"PostgreSQL schema version {n1}, SQLite {n_sqlite}"
    n2 = version_of(pg_migrate(url, tmp_path))
    assert n2 == n1
    versions = [int(v) for v in pg_rows(url, "SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, n1 + 1)), versions
    assert not (tmp_path / "pg-data" / "bookd.db").exists(), "migrate with DATABASE_URL touched SQLite"
    # both dialects have the same tables
    pg_tables = set(pg_rows(url, "SELECT table_name FROM information_schema.tables "
                                 "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"))
    assert pg_tables - {"schema_migrations"} == sqlite_tables(dbfile), (
        sorted(pg_tables ^ (sqlite_tables(dbfile) | {"schema_migrations"})))


def test_concurrent_migrate_on_a_fresh_database(tmp_path):
    n_sqlite, _ = sqlite_version(tmp_path)
    failures = []
    for trial in range(3):
        url = fresh_db(f"migrate-race{trial}")
        e = clean_env()
        e.update({"BOOKD_DATA_DIR": str(tmp_path / "pg-data"), "DATABASE_URL": url})
        procs = [subprocess.Popen([BOOKD, "migrate"], cwd=str(tmp_path), env=e, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=30 * SLOW) for p in procs]
        for p, (out, err) in zip(procs, outs):
            m = VERSION_RE.search(out)
            if p.returncode != 0 or not m or int(m.group(1)) != n_sqlite:
                failures.append((trial, p.returncode, out.strip(), err.strip()))
        versions = [int(v) for v in pg_rows(url, "SELECT version FROM schema_migrations ORDER BY version")]
        if versions != list(range(1, n_sqlite + 1)):
            failures.append((trial, "schema_migrations holds", versions))
    assert not failures, f"concurrent `bookd migrate` failed: {failures}"
