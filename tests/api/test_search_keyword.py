"""Keyword search without an embedding provider: GET /api/v1/search on the
sample book (imported with `bookd import`, indexed by the server's workers),
result shape and byte offsets, filters, validation, query-syntax injection,
stemming and diacritic folding, POST /api/v1/books/{id}/reindex."""
import pytest

import pgtest
from conftest import ADMIN, assert_error, make_user, start_server, uniq, users_env
from test_search_common import (HIT_KEYS, SEARCH, chapters_of, check_hit, hits,
                                import_sample, reindex_api, search, wait_job,
                                wait_jobs_idle, wait_search)


@pytest.fixture(scope="module")
def kw(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("search-kw"),
                       env=users_env(BOOKD_JOB_BACKOFF_MS="50"))
    book_id = import_sample(srv)
    wait_jobs_idle(srv)
    wait_search(srv, lambda r: len(r) > 0, q="zero moment point", book_id=book_id)
    yield srv, book_id
    rc = srv.stop()
    assert rc == 0, f"server exited with {rc}:\n{srv.log_tail()}"


def test_zmp_top_hit_shape_offsets_anchor(kw):
    srv, book_id = kw
    # the book's own hits: other tests add books that mention the ZMP too
    body = search(srv, q="zero moment point", book_id=book_id)
    assert body["mode"] == "keyword", body
    assert set(body) == {"results", "mode"}, body
    res = body["results"]
    assert 0 < len(res) <= 10
    top = res[0]
    t = top["text"].lower()
    assert "zero moment point" in t or "zmp" in t, top
    cache = {}
    for h in res:
        check_hit(srv, h, cache)
        assert h["book_id"] == book_id
        assert h["score"] > 0, h
    scores = [h["score"] for h in res]
    assert scores == sorted(scores, reverse=True), scores
    assert len({h["chunk_id"] for h in res}) == len(res), "duplicate chunks"
    # the top hit's anchor is one of its chapter's section anchors
    ch = cache[top["chapter_id"]]
    assert top["anchor"] in {s["anchor"] for s in ch["sections"]}, (top["anchor"], ch["sections"])


def test_every_sample_chunk_consistent(kw):
    """All chunks of every sample chapter: offsets, anchors, no overlap, and
    all the chapter's prose is covered (every word of a paragraph is in
    some chunk)."""
    srv, book_id = kw
    from test_search_common import chapter_chunks
    for ch in chapters_of(srv, book_id):
        chunks = chapter_chunks(srv, ch)
        assert chunks, f"chapter {ch['title']!r} has no chunks"
        cache = {ch["id"]: ch}
        prev_end = 0
        for h in chunks:
            check_hit(srv, h, cache)
            assert h["char_start"] >= prev_end, "chunks overlap"
            prev_end = h["char_end"]
        # every zero-moment-point mention is searchable: one chunk per paragraph mention
        joined = "\n".join(h["text"] for h in chunks)
        for para in ch["content_markdown"].split("\n\n"):
            p = para.strip()
            if p and not p.startswith("#") and not p.startswith("<") and not p.startswith("import ") \
                    and not p.startswith("---") and len(p) > 40:
                assert p[:40] in joined, f"paragraph not in any chunk: {p[:80]!r}"


def test_book_and_chapter_filters(kw):
    srv, book_id = kw
    other = srv.create_book(title=uniq("other zmp book"))
    oc = srv.add_chapter(other["id"], title="Other", content_markdown="The zero moment point again, elsewhere.")
    wait_jobs_idle(srv)
    all_res = wait_search(srv, lambda r: any(h["book_id"] == other["id"] for h in r),
                          q="zero moment point", limit=50)
    assert {h["book_id"] for h in all_res} == {book_id, other["id"]}
    only = hits(srv, q="zero moment point", book_id=book_id, limit=50)
    assert only and all(h["book_id"] == book_id for h in only)
    only2 = hits(srv, q="zero moment point", book_id=other["id"], limit=50)
    assert [h["chapter_id"] for h in only2] == [oc["id"]]
    target = only[0]["chapter_id"]
    byc = hits(srv, q="zero moment point", chapter_id=target, limit=50)
    assert byc and all(h["chapter_id"] == target for h in byc)
    assert len(byc) <= len(only)
    # both filters, contradicting each other: nothing
    assert hits(srv, q="zero moment point", book_id=other["id"], chapter_id=target) == []
    # an unknown (well-formed) id: nothing, not an error
    assert hits(srv, q="zero moment point", book_id="01900000-0000-7000-8000-000000000000") == []
    assert hits(srv, q="zero moment point", limit=1).__len__() == 1


@pytest.mark.parametrize("params,field", [
    ({}, "q"),
    ({"q": ""}, "q"),
    ({"q": "x" * 1001}, "q"),
    ({"q": "robot", "limit": "0"}, "limit"),
    ({"q": "robot", "limit": "51"}, "limit"),
    ({"q": "robot", "limit": "abc"}, "limit"),
    ({"q": "robot", "limit": ""}, "limit"),
    ({"q": "robot", "limit": "5x"}, "limit"),
    ({"q": "robot", "mode": "bogus"}, "mode"),
    ({"q": "robot", "book_id": "not-a-uuid"}, "book_id"),
    ({"q": "robot", "chapter_id": "123"}, "chapter_id"),
])
def test_validation(kw, params, field):
    srv, _ = kw
    r = srv.get(SEARCH, params=params)
    err = assert_error(r, 422, "validation_failed")
    assert field in [d.get("field") for d in err["details"]], err


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_vector_modes_need_provider(kw, mode):
    srv, _ = kw
    r = srv.get(SEARCH, params={"q": "robot", "mode": mode})
    assert_error(r, 422, "validation_failed")


def test_limit_bounds_ok(kw):
    srv, _ = kw
    assert len(hits(srv, q="robot", limit=1)) == 1
    many = hits(srv, q="robot humanoid the", limit=50)
    assert 10 < len(many) <= 50
    assert len(hits(srv, q="robot humanoid the")) == 10  # default limit


INJECTIONS = [
    'NEAR("a" b) OR * AND -- "; DROP TABLE chunks; --',
    '"unbalanced',
    "a:b",
    "^title",
    "NOT",
    "AND OR NOT",
    "robot*",
    "(robot",
    "robot)",
    "text:robot",
    "heading_path : zmp",
    "' OR 1=1 --",
    "robot & | ! <-> :* ()",
    "'robot':*A",
    "\\",
    "{robot}",
    "!!!",
    "\u2019\u201c\u201d",          # typographic punctuation only
    "na\u00efve \u00fcber caf\u00e9",
    "\u00a0robot\u00a0zmp",        # non-breaking spaces
    "\U0001F916 robot",
    "zmp\ufeff",
]


def test_injection_is_never_syntax(kw):
    srv, book_id = kw
    before = hits(srv, q="zero moment point", limit=50)
    for q in INJECTIONS:
        r = srv.get(SEARCH, params={"q": q})
        assert r.status_code == 200, f"q={q!r}: {r.status_code} {r.text[:300]}"
        body = r.json()
        assert body["mode"] == "keyword" and isinstance(body["results"], list)
        for h in body["results"]:
            assert set(h) == HIT_KEYS
    # words inside the syntax still match as words
    res = hits(srv, q='"; DROP TABLE chunks; -- zmp')
    assert res and ("zmp" in res[0]["text"].lower() or "zmp" in res[0]["heading_path"].lower())
    after = hits(srv, q="zero moment point", limit=50)
    assert [h["chunk_id"] for h in after] == [h["chunk_id"] for h in before], "the index changed"
    srv.assert_alive()


@pytest.mark.parametrize("space", ["\u3000", "\u2003", "\u2028", "\u0085", "\u00a0"])
def test_unicode_space_between_words(kw, space):
    """Words separated by a non-ASCII space are still plain words (the
    ideographic space of CJK text, em space, line separator...)."""
    srv, book_id = kw
    r = srv.get(SEARCH, params={"q": f"zero{space}moment{space}point", "book_id": book_id})
    assert r.status_code == 200, f"{space!r}: {r.status_code} {r.text[:300]}"
    assert isinstance(r.json()["results"], list)


def test_invalid_utf8_query_is_not_a_server_error(kw):
    srv, _ = kw
    for raw in ("%FF", "%C3%28", "robot%ED%A0%80", "a%00b", "%F0%9F%A4"):
        r = srv.get(SEARCH + "?q=" + raw)
        assert r.status_code in (200, 400), f"q={raw}: {r.status_code} {r.text[:300]}"
        if r.status_code == 400:
            assert_error(r, 400, "bad_request")
    assert hits(srv, q="zmp"), "search broken afterwards"


def test_stemming(kw):
    srv, _ = kw
    b = srv.create_book(title=uniq("stem book"))
    c1 = srv.add_chapter(b["id"], title="Gaits", content_markdown="The quadruped walks carefully over gravel.")
    c2 = srv.add_chapter(b["id"], title="Runs", content_markdown="A robot walking on ice needs small steps.")
    wait_jobs_idle(srv)
    res = wait_search(srv, lambda r: len(r) == 2, q="walking", book_id=b["id"], what="both chapters")
    assert {h["chapter_id"] for h in res} == {c1["id"], c2["id"]}
    res = hits(srv, q="walk", book_id=b["id"])
    assert {h["chapter_id"] for h in res} == {c1["id"], c2["id"]}
    res = hits(srv, q="WALKED", book_id=b["id"])
    assert {h["chapter_id"] for h in res} == {c1["id"], c2["id"]}
    res = hits(srv, q="gravels", book_id=b["id"])
    assert [h["chapter_id"] for h in res] == [c1["id"]]


def test_diacritics(kw):
    srv, _ = kw
    b = srv.create_book(title=uniq("diacritics book"))
    c1 = srv.add_chapter(b["id"], title="Models", content_markdown="A na\u00efve controller ignores friction.")
    c2 = srv.add_chapter(b["id"], title="Cafe", content_markdown="Robots serving coffee in a cafe.")
    wait_jobs_idle(srv)
    # the exact spelling always matches
    res = wait_search(srv, lambda r: len(r) == 1, q="na\u00efve", book_id=b["id"])
    assert res[0]["chapter_id"] == c1["id"]
    assert "na\u00efve" in res[0]["text"]
    if not pgtest.enabled():
        # SQLite FTS5: unicode61 remove_diacritics folds both ways
        assert [h["chapter_id"] for h in hits(srv, q="naive", book_id=b["id"])] == [c1["id"]]
        assert [h["chapter_id"] for h in hits(srv, q="NA\u00cfVE", book_id=b["id"])] == [c1["id"]]
        assert [h["chapter_id"] for h in hits(srv, q="caf\u00e9", book_id=b["id"])] == [c2["id"]]
    else:
        # PostgreSQL's english configuration does not fold accents: at least no error
        search(srv, q="naive", book_id=b["id"])


def test_heading_words_rank_their_section_first(kw):
    srv, book_id = kw
    res = hits(srv, q="Beyond ZMP", book_id=book_id)
    assert res[0]["heading"] == "Beyond ZMP", [h["heading"] for h in res]


def test_reindex_api(kw, tmp_path):
    srv, book_id = kw
    jid = reindex_api(srv, book_id)
    j = wait_job(srv, jid)
    assert j["status"] == "completed", j
    r = j["result"]
    assert r["chunks"] > 10 and r["added"] == 0 and r["removed"] == 0, r
    assert r["embedded"] == 0, r
    # unknown book, malformed id: 404; anonymous: 401; reader: 403
    r = srv.post("/api/v1/books/01900000-0000-7000-8000-000000000000/reindex", headers=ADMIN)
    assert_error(r, 404, "not_found")
    r = srv.post(f"/api/v1/books/{book_id}/reindex")
    assert_error(r, 401, "unauthorized")
    reader = make_user(srv, "reader")
    r = srv.post(f"/api/v1/books/{book_id}/reindex", headers=reader["headers"])
    assert_error(r, 403, "forbidden")
    editor = make_user(srv, "editor")
    jid = reindex_api(srv, book_id, headers=editor["headers"])
    assert wait_job(srv, jid)["status"] == "completed"
    # searchable by anyone, also anonymous (no credentials above)
    assert hits(srv, q="zmp")


def test_filters_on_a_server_with_one_book(tmp_path):
    """With a single book, filtering on it is skipped inside the index (it
    filters nothing): results are those of no filter; another book id still
    finds nothing, and so does a chapter filter on another chapter."""
    srv = start_server(tmp_path / "one-book", env={"BOOKD_JOB_BACKOFF_MS": "50"})
    try:
        book_id = import_sample(srv)
        wait_jobs_idle(srv)
        wait_search(srv, lambda r: len(r) > 0, q="zero moment point", book_id=book_id)
        plain = [h["chunk_id"] for h in hits(srv, q="zero moment point", limit=20)]
        scoped = [h["chunk_id"] for h in hits(srv, q="zero moment point", book_id=book_id, limit=20)]
        assert plain and scoped == plain
        assert hits(srv, q="zero moment point", book_id="00000000-0000-7000-8000-000000000000") == []
        chapters = chapters_of(srv, book_id)
        first = hits(srv, q="zero moment point", book_id=book_id, limit=1)[0]
        others = [c["id"] for c in chapters if c["id"] != first["chapter_id"]]
        for h in hits(srv, q="zero moment point", book_id=book_id, chapter_id=others[0], limit=20):
            assert h["chapter_id"] == others[0], h
    finally:
        assert srv.stop() == 0, srv.log_tail()
