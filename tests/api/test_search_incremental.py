"""Incremental indexing: chapter edits re-chunk only that chapter, unchanged
chunks keep their ids, moved ones keep their ids with new offsets, deletes
cascade at once; `bookd reindex` after incremental edits changes nothing."""
import threading

import pytest

from conftest import ADMIN, start_server, uniq
from test_search_common import (chapter_chunks, check_hit, get_chapter, hits,
                                reindex_cli, wait_jobs_idle)


@pytest.fixture(scope="module")
def isrv(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("search-incr"), env={"BOOKD_JOB_BACKOFF_MS": "50"})
    yield srv
    rc = srv.stop()
    assert rc == 0, f"server exited with {rc}:\n{srv.log_tail()}"


def section(name, word, n=3):
    body = " ".join(f"The {word} paragraph of section {name} says thing {i}." for i in range(n))
    return f"## {name}\n\n{body}\n"


CH1 = "Intro words of the alpha chapter.\n\n" + "\n".join(
    section(n, w) for n, w in [("Apples", "pomaceous"), ("Bananas", "musaceous"),
                               ("Cherries", "drupaceous"), ("Dates", "phoenician")])
CH2 = "\n".join(section(n, w) for n, w in [("Eels", "anguilliform"), ("Figs", "ficus"),
                                              ("Grapes", "viniferous")])


def snapshot(srv, ch):
    ch = get_chapter(srv, ch["book_id"], ch["id"])
    chunks = chapter_chunks(srv, ch)
    cache = {ch["id"]: ch}
    for h in chunks:
        check_hit(srv, h, cache)  # offsets match the current content
    return {h["chunk_id"]: h for h in chunks}


def put_chapter(srv, ch, md, title=None):
    r = srv.put(f"/api/v1/books/{ch['book_id']}/chapters/{ch['id']}",
                json={"title": title or ch["title"], "content_markdown": md}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def ident(chunks):
    return {(h["chunk_id"], h["chapter_id"], h["char_start"], h["char_end"], h["text"], h["heading"],
             h["anchor"]) for h in chunks.values()}


def test_edit_moves_and_deletes(isrv):
    srv = isrv
    b = srv.create_book(title=uniq("incremental book"))
    c1 = srv.add_chapter(b["id"], title="Alpha Zqinc", content_markdown=CH1)
    c2 = srv.add_chapter(b["id"], title="Beta Zqinc", content_markdown=CH2)
    wait_jobs_idle(srv)
    s1, s2 = snapshot(srv, c1), snapshot(srv, c2)
    assert len(s1) == 5 and len(s2) == 3, (len(s1), len(s2))
    by_head = {h["heading"]: h for h in s1.values()}

    # change one paragraph of Bananas, making it longer: Cherries and Dates move
    new_md = CH1.replace("musaceous paragraph of section Bananas says thing 1.",
                         "musaceous paragraph of section Bananas now says something much longer 1.")
    assert new_md != CH1
    put_chapter(srv, c1, new_md)
    wait_jobs_idle(srv)
    t1, t2 = snapshot(srv, c1), snapshot(srv, c2)
    assert len(t1) == 5
    new_ids = set(t1) - set(s1)
    assert len(new_ids) == 1, f"expected exactly one new chunk id, got {len(new_ids)}"
    assert t1[new_ids.pop()]["heading"] == "Bananas"
    for head in ("Alpha Zqinc", "Apples", "Cherries", "Dates"):
        old = by_head[head]
        assert old["chunk_id"] in t1, f"unchanged chunk {head} got a new id"
        now = t1[old["chunk_id"]]
        assert now["text"] == old["text"]
        if head in ("Cherries", "Dates"):
            assert now["char_start"] > old["char_start"], "moved chunk kept its old offsets"
    assert by_head["Bananas"]["chunk_id"] not in t1, "the replaced chunk is still indexed"
    assert ident(t2) == ident(s2), "the other chapter's chunks changed"
    # the old text is no longer found, the new one is
    assert not [h for h in hits(srv, q="thing", book_id=b["id"], chapter_id=c1["id"], limit=50)
                if "says thing 1." in h["text"] and "Bananas" in h["heading_path"]]
    assert hits(srv, q="something", chapter_id=c1["id"])

    # swap two sections: both keep their ids (moved), nothing added or removed
    parts = new_md.split("## ")
    swapped = "## ".join([parts[0], parts[1], parts[3], parts[2], parts[4]])
    put_chapter(srv, c1, swapped)
    wait_jobs_idle(srv)
    u1 = snapshot(srv, c1)
    assert set(u1) == set(t1), "reordering sections changed chunk ids"
    order = [h["heading"] for h in sorted(u1.values(), key=lambda h: h["char_start"])]
    assert order == ["Alpha Zqinc", "Apples", "Cherries", "Bananas", "Dates"], order

    # a full reindex now changes nothing (incremental == full)
    out = reindex_cli(srv, "--book", b["id"])
    assert out["chapters"] == 2 and out["chunks"] == 8, out
    assert (out["added"], out["moved"], out["removed"]) == (0, 0, 0), out
    assert out["unchanged"] == 8 and out["embedded"] == 0, out
    assert ident(snapshot(srv, c1)) == ident(u1)
    again = reindex_cli(srv, "--book", b["id"])
    assert again == out

    # delete chapter 2: its chunks vanish at once (no waiting for a job)
    r = srv.delete(f"/api/v1/books/{b['id']}/chapters/{c2['id']}", headers=ADMIN)
    assert r.status_code == 204, r.text
    assert hits(srv, q="Beta Zqinc anguilliform ficus viniferous", chapter_id=c2["id"]) == []
    res = hits(srv, q="Beta Zqinc anguilliform ficus viniferous Alpha", book_id=b["id"], limit=50)
    assert res and all(h["chapter_id"] != c2["id"] for h in res)
    out = reindex_cli(srv, "--book", b["id"])
    assert (out["chapters"], out["chunks"], out["added"], out["removed"]) == (1, 5, 0, 0), out

    # delete the book: nothing of it is found
    r = srv.delete(f"/api/v1/books/{b['id']}", headers=ADMIN)
    assert r.status_code == 204, r.text
    assert hits(srv, q="Alpha Zqinc pomaceous drupaceous", book_id=b["id"]) == []
    assert not [h for h in hits(srv, q="pomaceous drupaceous Zqinc", limit=50) if h["book_id"] == b["id"]]


def test_retitle_rechunks_the_chapter(isrv):
    srv = isrv
    b = srv.create_book(title=uniq("retitle book"))
    c = srv.add_chapter(b["id"], title="Gamma Zqret", content_markdown=CH2)
    wait_jobs_idle(srv)
    before = snapshot(srv, c)
    put_chapter(srv, c, CH2, title="Delta Zqret")
    wait_jobs_idle(srv)
    ch = get_chapter(srv, b["id"], c["id"])
    after = snapshot(srv, ch)
    assert len(after) == len(before)
    assert all(h["heading_path"].startswith("Delta Zqret") for h in after.values())
    assert hits(srv, q="Gamma", book_id=b["id"]) == [], "chunks with the old title remain"


def test_reindex_everything_reports_unchanged(isrv):
    srv = isrv
    b = srv.create_book(title=uniq("all book"))
    srv.add_chapter(b["id"], title="Eta Zqall", content_markdown=CH1)
    wait_jobs_idle(srv)
    out = reindex_cli(srv)
    assert out["chapters"] >= 1 and out["chunks"] >= 5, out
    assert (out["added"], out["moved"], out["removed"]) == (0, 0, 0), out


def test_rapid_concurrent_edits_leave_a_consistent_index(isrv):
    """Many edits of one chapter in quick succession queue many index jobs
    that the workers run in parallel: the index must end up equal to a
    fresh chunking of the final text (no stale or duplicate chunks).
    Five rounds, as the interleaving is up to the scheduler."""
    srv = isrv
    for round_ in range(5):
        b = srv.create_book(title=uniq("race book"))
        c = srv.add_chapter(b["id"], title="Race Zqrace", content_markdown=CH1)
        wait_jobs_idle(srv)
        versions = [CH1.replace("says thing 1.", f"says version {i} of thing 1.") for i in range(8)]
        errors = []

        def edit(md):
            try:
                r = srv.http.put(srv.url(f"/api/v1/books/{b['id']}/chapters/{c['id']}"),
                                 json={"title": c["title"], "content_markdown": md}, headers=ADMIN,
                                 timeout=10)
                if r.status_code != 200:
                    errors.append(r.text)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

        threads = [threading.Thread(target=edit, args=(v,)) for v in versions]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        wait_jobs_idle(srv)
        ch = get_chapter(srv, b["id"], c["id"])
        chunks = chapter_chunks(srv, ch)
        texts = [h["text"][:50] for h in chunks]
        assert len(chunks) == 5, f"round {round_}: {len(chunks)} chunks for a 5-chunk chapter: {texts}"
        cache = {ch["id"]: ch}
        for h in chunks:
            check_hit(srv, h, cache)
        out = reindex_cli(srv, "--book", b["id"])
        assert (out["added"], out["removed"]) == (0, 0), \
            f"round {round_}: the index did not match the final text: {out}"


def test_sqlite_keyword_index_stays_whole(tmp_path):
    """On SQLite, chunks are added to the FTS5 index by bookd itself (no
    insert trigger) and removed by triggers, cascades included: after
    imports, edits, chapter and book deletes and a reindex, FTS5's own
    integrity check passes and it holds exactly the chunks there are."""
    import sqlite3
    data = tmp_path / "fts"
    srv = start_server(data, env={"BOOKD_JOB_BACKOFF_MS": "50"}, unset=("DATABASE_URL",))
    try:
        books = []
        for i in range(3):
            b = srv.create_book(title=uniq("fts book"))
            chs = [srv.add_chapter(b["id"], title=f"C{k}", content_markdown=CH1 if k % 2 else CH2)
                   for k in range(3)]
            books.append((b, chs))
        wait_jobs_idle(srv)
        b0, chs0 = books[0]
        put_chapter(srv, chs0[0], CH1.replace("Apples", "Quinces"))
        put_chapter(srv, chs0[1], CH2 + "\n## Extra\n\nOne more section about kiwis.\n")
        r = srv.delete(f"/api/v1/books/{b0['id']}/chapters/{chs0[2]['id']}", headers=ADMIN)
        assert r.status_code == 204, r.text
        r = srv.delete(f"/api/v1/books/{books[1][0]['id']}", headers=ADMIN)
        assert r.status_code == 204, r.text
        wait_jobs_idle(srv)
        reindex_cli(srv)
        assert hits(srv, q="Quinces", book_id=b0["id"]), "an edited chapter's new words are found"
        assert not hits(srv, q="Eels", book_id=books[1][0]["id"]), "a deleted book's chunks are gone"
        db = sqlite3.connect(str(data / "bookd.db"), timeout=10)
        try:
            db.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)")
            n_chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            n_fts = db.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0]
        finally:
            db.close()
        assert n_chunks == n_fts and n_chunks > 0, (n_chunks, n_fts)
    finally:
        assert srv.stop() == 0, srv.log_tail()
