"""`bookd copy-data`: moving an embedded (SQLite) install to PostgreSQL.

An install is filled through the CLI and the API with no DATABASE_URL, then
copied into an empty database on the private PostgreSQL; a server on that
database must serve the same books, chapters, users, API keys, preferences
and jobs."""
import json
import sqlite3
import time

import pytest

from conftest import (ADMIN, PASSWORD, SAMPLE_DIR, bearer, hyphenate13, login,
                      new_email, random_isbn13, register, run_bookd,
                      start_server, uniq, users_env)
from test_jobs_common import get_job, read_record, submit_ok, wait_job
from test_pg_common import db_name, fresh_db, node_env, shared_pg, sqlite_tables

PREFS = "/api/v1/users/me/preferences"
NO_PG = ("DATABASE_URL",)  # the embedded install must not get one, whatever BOOKD_TEST_DB says


def sqlite_counts(path, tables):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def sqlite_version(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    finally:
        con.close()


def copy_data(src, dst, cwd):
    return run_bookd(["copy-data", "--from", src, "--to", dst], cwd=cwd, timeout=60)


@pytest.fixture(scope="module")
def copied(tmp_path_factory):
    """An embedded install with some of everything, copied into an empty
    PostgreSQL database.  Returns what the tests compare against."""
    base = tmp_path_factory.mktemp("copy-data")
    data = base / "embedded"
    data.mkdir()
    env = users_env(BOOKD_TEST_JOBS=1, BOOKD_JOB_BACKOFF_MS=20)
    # books via the import CLI
    for path in (SAMPLE_DIR / "robots-plain.txt", SAMPLE_DIR / "physical-ai"):
        p = run_bookd(["import", path], data_dir=data, unset=NO_PG, env=env)
        assert p.returncode == 0, p.stderr
    srv = start_server(data, env=env, unset=NO_PG, log_name="sqlite1.stderr")
    info = {"base": base, "data": data}
    try:
        assert srv.get("/health").status_code == 200
        # books and chapters via the API (one chapter replaced: rev 2)
        book = srv.create_book(title=uniq("copied"), author="C. Opy", isbns=[hyphenate13(random_isbn13())])
        for i in range(3):
            srv.add_chapter(book["id"], title=f"Ch {i}", content_markdown=f"# Part {i}\n\nText *{i}* here.")
        r = srv.put(f"/api/v1/books/{book['id']}/chapters/2", headers=ADMIN,
                    json={"title": "Ch 1 again", "content_markdown": "replaced text"})
        assert r.status_code == 200, r.text
        info["books"] = {b["id"]: b for b in srv.all_books()}
        assert len(info["books"]) == 3, info["books"]
        info["chapters"] = {}
        for bid in info["books"]:
            r = srv.get(f"/api/v1/books/{bid}/chapters", params={"limit": 100})
            assert r.status_code == 200
            for c in r.json()["items"]:
                g = srv.get(f"/api/v1/books/{bid}/chapters/{c['id']}")
                info["chapters"][c["id"]] = (bid, g.json(), g.headers.get("ETag"))
        # users, refresh tokens, API keys, preferences
        alice, bob = new_email("alice"), new_email("bob")
        ra = register(srv, alice, display_name="Alice")
        register(srv, bob)
        lb = login(srv, bob)
        assert lb.status_code == 200
        r = srv.post("/api/v1/auth/api-keys", headers=bearer(ra["access_token"]), json={"name": "laptop"})
        assert r.status_code == 201, r.text
        info["key"] = r.json()
        prefs = {"experience_level": "advanced", "preferred_topics": ["SLAM"], "gpu_access": False}
        r = srv.put(PREFS, headers=bearer(ra["access_token"]), json=prefs)
        assert r.status_code == 200, r.text
        info["prefs"] = r.json()
        info["alice"], info["bob"] = {"email": alice, **ra}, {"email": bob, **lb.json()}
        # jobs: completed and failed ones
        rec = base / "rec"
        done = [submit_ok(srv, "test.steps", {"steps": 2, "sleep_ms": 0, "record": str(rec)}) for _ in range(3)]
        done.append(submit_ok(srv, "test.noop"))
        done.append(submit_ok(srv, "test.steps", {"steps": 1, "always_fail": True}))
        info["jobs"] = {jid: wait_job(srv, jid, timeout=10) for jid in done}
        assert [j["status"] for j in info["jobs"].values()] == ["completed"] * 4 + ["failed"]
    finally:
        assert srv.stop() == 0, srv.log_tail()
    # jobs left pending: a server that runs none
    srv = start_server(data, env={**env, "BOOKD_WORKERS": "0"}, unset=NO_PG, log_name="sqlite2.stderr")
    try:
        info["pending"] = [submit_ok(srv, "test.steps", {"steps": 1, "sleep_ms": 0, "record": str(base / "rec2")})
                           for _ in range(2)]
        info["jobs"].update({jid: get_job(srv, jid) for jid in info["pending"]})
    finally:
        assert srv.stop() == 0, srv.log_tail()

    dbfile = data / "bookd.db"
    info["dbfile"] = dbfile
    info["tables"] = sqlite_tables(dbfile)
    info["counts"] = sqlite_counts(dbfile, info["tables"])
    info["version"] = sqlite_version(dbfile)
    info["url"] = fresh_db("copy-target")
    t0 = time.monotonic()
    info["proc"] = copy_data(f"sqlite:{dbfile}", info["url"], base)
    info["took"] = time.monotonic() - t0
    # the target's rows right after the copy (other tests then serve from it)
    info["pg_counts"] = {}
    if info["proc"].returncode == 0:
        for t in copy_report(info)["copied"]:
            info["pg_counts"][t] = pg_count(info["url"], t)
    return info


def copy_report(copied):
    p = copied["proc"]
    assert p.returncode == 0, f"copy-data exited {p.returncode}: {p.stderr}"
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert lines, f"copy-data printed nothing: {p.stderr}"
    out = json.loads(lines[-1])
    assert set(out) >= {"copied", "schema_version"}, out
    return out


def pg_count(url, table):
    return int(shared_pg().psql(f'SELECT count(*) FROM "{table}"', db=db_name(url)).strip())


def test_copy_data_counts_match_the_source(copied):
    out = copy_report(copied)
    print(f"\ncopy-data took {copied['took']:.2f}s: {out}")
    assert out["schema_version"] == copied["version"], (out, copied["version"])
    for table, n in out["copied"].items():
        assert table in copied["counts"], f"copy-data reports a table SQLite does not have: {table}"
        assert n == copied["counts"][table], (table, n, copied["counts"][table])
        assert copied["pg_counts"].get(table) == n, table
    for t in ("books", "chapters", "users", "refresh_tokens", "api_keys", "preferences", "jobs", "book_isbns"):
        assert out["copied"].get(t, 0) > 0, (t, out)


def test_copy_data_covers_every_table(copied):
    """A table added to the schema later must not be skipped silently."""
    out = copy_report(copied)
    missing = copied["tables"] - set(out["copied"])
    assert not missing, (f"copy-data skipped tables of the SQLite schema: {sorted(missing)} "
                         f"(rows there: { {t: copied['counts'][t] for t in missing} })")
    pg_tables = set(shared_pg().psql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE'", db=db_name(copied["url"])).split())
    assert pg_tables - {"schema_migrations"} <= set(out["copied"]), sorted(pg_tables - set(out["copied"]))


def test_copied_install_serves_on_postgres(copied, server_factory, tmp_path):
    copy_report(copied)
    srv = server_factory(tmp_path / "pg-node", env=node_env(copied["url"], BOOKD_TEST_JOBS=1, BOOKD_WORKERS=0))
    # books and chapters, byte for byte, with the same ETags
    got = {b["id"]: b for b in srv.all_books()}
    assert got == copied["books"]
    for cid, (bid, body, etag) in copied["chapters"].items():
        r = srv.get(f"/api/v1/books/{bid}/chapters/{cid}")
        assert r.status_code == 200, r.text
        assert r.json() == body
        assert r.headers.get("ETag") == etag
    isbn = next(b for b in copied["books"].values() if b["isbns"])["isbns"][0]["isbn"]
    r = srv.get(f"/api/v1/books/isbn/{isbn}")
    assert r.status_code == 200 and r.json()["isbns"][0]["isbn"] == isbn, r.text
    # users: the old password, the old tokens (same JWT secret), the API key
    alice, bob = copied["alice"], copied["bob"]
    r = login(srv, alice["email"], PASSWORD)
    assert r.status_code == 200, r.text
    assert login(srv, alice["email"], PASSWORD + "!").status_code == 401
    me = srv.get("/api/v1/auth/me", headers=bearer(alice["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == alice["email"], me.text
    r = srv.post("/api/v1/auth/refresh", json={"refresh_token": bob["refresh_token"]})
    assert r.status_code == 200, f"refresh token from SQLite refused: {r.text}"
    r = srv.get("/api/v1/auth/me", headers={"X-API-Key": copied["key"]["key"]})
    assert r.status_code == 200 and r.json()["email"] == alice["email"], r.text
    register(srv, alice["email"], expect=409)
    # preferences
    r = srv.get(PREFS, headers=bearer(alice["access_token"]))
    assert r.status_code == 200 and r.json() == copied["prefs"], (r.text, copied["prefs"])
    # jobs, as they were
    for jid, before in copied["jobs"].items():
        after = get_job(srv, jid)
        for k in ("status", "type", "result", "error", "attempts", "steps_done", "progress",
                  "created_at", "started_at", "finished_at"):
            assert after[k] == before[k], (jid, k, after[k], before[k])
    # and the database takes new writes
    b = srv.create_book(title=uniq("after copy"))
    srv.add_chapter(b["id"], content_markdown="new on postgres")
    register(srv, new_email("new"))


def test_copied_pending_jobs_run_on_postgres(copied, server_factory, tmp_path):
    """On a copy of its own: the other tests look at the jobs as they were copied."""
    copy_report(copied)
    url = fresh_db("copy-runner")
    p = copy_data(f"sqlite:{copied['dbfile']}", url, tmp_path)
    assert p.returncode == 0, p.stderr
    srv = server_factory(tmp_path / "pg-runner",
                         env=node_env(url, BOOKD_TEST_JOBS=1, BOOKD_SHUTDOWN_TIMEOUT=3))
    rec = copied["base"] / "rec2"
    deadline = time.monotonic() + 10
    while len(read_record(rec)) < len(copied["pending"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(j for j, _ in read_record(rec)) == sorted(copied["pending"])
    jobs = [wait_job(srv, jid, timeout=3) for jid in copied["pending"]]
    assert [j["status"] for j in jobs] == ["completed"] * len(jobs), jobs


def test_copy_data_into_a_non_empty_database_is_refused(copied):
    copy_report(copied)
    before = {t: pg_count(copied["url"], t) for t in copy_report(copied)["copied"]}
    p = copy_data(f"sqlite:{copied['dbfile']}", copied["url"], copied["base"])
    assert p.returncode != 0, p.stdout
    assert "not empty" in p.stderr, p.stderr
    assert not p.stdout.strip(), p.stdout
    assert {t: pg_count(copied["url"], t) for t in before} == before


def test_copy_data_bad_source(tmp_path):
    url = fresh_db("copy-bad")
    missing = tmp_path / "nowhere" / "bookd.db"
    p = copy_data(f"sqlite:{missing}", url, tmp_path)
    assert p.returncode != 0, p.stdout
    assert str(missing) in p.stderr and "No such file" in p.stderr, p.stderr
    assert not missing.exists(), "copy-data created the missing source"
    assert not p.stdout.strip()
    # nothing was written to the target
    has_books = shared_pg().psql("SELECT count(*) FROM information_schema.tables "
                                 "WHERE table_name = 'books'", db=db_name(url)).strip() != "0"
    assert not has_books or pg_count(url, "books") == 0
    # usage errors
    p = run_bookd(["copy-data", "--from", f"sqlite:{missing}"], cwd=tmp_path)
    assert p.returncode == 2 and "--to" in p.stderr, (p.returncode, p.stderr)


def test_copy_into_sqlite_builds_the_keyword_index(copied, tmp_path):
    """copy-data into an SQLite file: bookd writes SQLite's FTS5 rows itself
    (no insert trigger), so the copy must build the keyword index from the
    copied chunks; FTS5's integrity check and its row count say it did."""
    import sqlite3
    src = sqlite3.connect(str(copied["dbfile"]))
    n_src = src.execute("SELECT count(*) FROM chunks").fetchone()[0]
    src.close()
    assert n_src > 0, "the embedded install has no chunks to copy"
    target = tmp_path / "copy.db"
    p = copy_data(f"sqlite:{copied['dbfile']}", f"sqlite:{target}", tmp_path)
    assert p.returncode == 0, f"copy-data exited {p.returncode}: {p.stderr}"
    db = sqlite3.connect(str(target))
    try:
        db.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)")
        n_chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        n_fts = db.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0]
        word = db.execute("SELECT text FROM chunks LIMIT 1").fetchone()[0].split()[-1].strip(".,;:*#")
        hits = db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (f'"{word}"',)).fetchone()[0]
    finally:
        db.close()
    assert n_chunks == n_src and n_fts == n_chunks, (n_src, n_chunks, n_fts)
    assert hits > 0, f"no chunk found for {word!r}"
