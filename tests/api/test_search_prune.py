"""Keyword search on SQLite leaves unread the rows that cannot make the answer
(those holding only a question's commonest words). The answer must still be
exactly FTS5's own BM25 ranking of every matching row: checked here against
bm25() run on the server's database file."""
import random
import sqlite3

import pytest

from conftest import start_server, uniq
from test_search_common import hits, wait_jobs_idle

COMMON = ["the", "of", "and", "robot", "system", "model"]
MID = [f"mid{n}word" for n in range(40)]
RARE = [f"rare{n}term" for n in range(80)]


def words(rnd, n):
    out = []
    for _ in range(n):
        r = rnd.random()
        out.append(rnd.choice(COMMON) if r < 0.5 else rnd.choice(MID) if r < 0.9 else rnd.choice(RARE))
    return " ".join(out)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    data = tmp_path_factory.mktemp("prune")
    srv = start_server(data, env={"BOOKD_LOG_LEVEL": "debug"}, unset=("DATABASE_URL",))
    rnd = random.Random(20261122)
    book = srv.create_book(title=uniq("prune book"))
    for c in range(8):
        sections = "\n\n".join(f"## {words(rnd, 3)}\n\n{words(rnd, 30 + rnd.randrange(60))}" for _ in range(20))
        srv.add_chapter(book["id"], title=f"Part {c}", content_markdown=sections)
    # a second book, so that a book filter is a filter (on the only book it is left out)
    other = srv.create_book(title=uniq("prune other"))
    for c in range(3):
        sections = "\n\n".join(f"## {words(rnd, 3)}\n\n{words(rnd, 30 + rnd.randrange(60))}" for _ in range(20))
        srv.add_chapter(other["id"], title=f"Other {c}", content_markdown=sections)
    wait_jobs_idle(srv)
    yield srv, book, data / "bookd.db", rnd
    assert srv.stop() == 0, srv.log_tail()


def reference(dbfile, terms, limit, book_id=None):
    """FTS5's bm25() over every row with any of the terms (bookd's weights;
    the scope column, which holds the filters, weighs nothing)."""
    match = "{heading_path text} : (" + " OR ".join(f'"{t}"' for t in terms) + ")"
    if book_id:
        match += f' AND scope : "b{book_id.replace("-", "")}"'
    db = sqlite3.connect(f"file:{dbfile}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(
            "SELECT c.id, -bm25(chunks_fts, 2.0, 1.0, 0.0) AS s FROM chunks_fts "
            "JOIN chunks c ON c.rowid = chunks_fts.rowid WHERE chunks_fts MATCH ? "
            "ORDER BY s DESC, c.id LIMIT ?", (match, limit)).fetchall()
    finally:
        db.close()


def close(a, b):
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-12)


def same_ranking(got, want, query):
    """The same scores in the same order, and the same rows but where rows
    tie (to rounding), which either side may list in either order."""
    assert len(got) == len(want), (query, len(got), len(want))
    for (_, gs), (_, ws) in zip(got, want):
        assert close(gs, ws), (query, gs, ws)
    if not want:
        return
    def groups(rows):
        out = []
        for rid, s in rows:
            if out and close(out[-1][0], s):
                out[-1][1].add(rid)
            else:
                out.append((s, {rid}))
        return out
    g, w = groups(got), groups(want)
    assert len(g) == len(w), query
    # every group but the last (a tie at the cut may keep any of its rows)
    assert [ids for _, ids in g[:-1]] == [ids for _, ids in w[:-1]], query


def test_questions_rank_exactly_as_bm25_over_every_row(corpus):
    srv, book, dbfile, rnd = corpus
    assert len(reference(dbfile, ["the"], 1000)) > 80, "too few chunks to say anything"
    pruned_before = sum("left unread" in line for line in srv.log_text().splitlines())
    for _ in range(25):
        terms = rnd.sample(COMMON, 3) + [rnd.choice(RARE), rnd.choice(MID)]
        rnd.shuffle(terms)
        res = hits(srv, q=" ".join(terms), mode="keyword", limit=10)
        same_ranking([(h["chunk_id"], h["score"]) for h in res], reference(dbfile, terms, 10), terms)
        mine = hits(srv, q=" ".join(terms), mode="keyword", limit=10, book_id=book["id"])
        same_ranking([(h["chunk_id"], h["score"]) for h in mine], reference(dbfile, terms, 10, book["id"]),
                     (terms, "book filter"))
    pruned = sum("left unread" in line for line in srv.log_text().splitlines()) - pruned_before
    assert pruned > 0, "no question was answered without reading every matching row"


def test_other_queries_rank_exactly_as_bm25(corpus):
    """Common words only, one word, words in no chunk, larger limits, a book
    filter: whichever way the answer is found, it is bm25()'s."""
    srv, book, dbfile, rnd = corpus
    cases = [(COMMON[:3], 10), (["the"], 5), ([RARE[3]], 10), (MID[:2] + ["nosuchword"], 20),
             (["nosuchword"], 10), (rnd.sample(COMMON, 2) + rnd.sample(RARE, 2), 50)]
    for terms, limit in cases:
        res = hits(srv, q=" ".join(terms), mode="keyword", limit=limit)
        same_ranking([(h["chunk_id"], h["score"]) for h in res], reference(dbfile, terms, limit), terms)
        filtered = hits(srv, q=" ".join(terms), mode="keyword", limit=limit, book_id=book["id"])
        assert all(h["book_id"] == book["id"] for h in filtered), terms
        same_ranking([(h["chunk_id"], h["score"]) for h in filtered],
                     reference(dbfile, terms, limit, book["id"]), (terms, "book filter"))


def test_an_edit_is_counted_at_once(corpus):
    """Document frequencies are cached per version of the index: a word
    that a new chapter makes common must rank as bm25() ranks it now."""
    srv, book, dbfile, rnd = corpus
    word = RARE[7]
    before = hits(srv, q=f"the {word}", mode="keyword", limit=10)
    srv.add_chapter(book["id"], title="More", content_markdown="\n\n".join(
        f"## {word} {i}\n\n{word} {words(rnd, 20)}" for i in range(20)))
    wait_jobs_idle(srv)
    after = hits(srv, q=f"the {word}", mode="keyword", limit=10)
    assert [h["chunk_id"] for h in after] != [h["chunk_id"] for h in before]
    same_ranking([(h["chunk_id"], h["score"]) for h in after], reference(dbfile, ["the", word], 10), word)
