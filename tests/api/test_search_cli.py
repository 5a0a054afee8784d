"""`bookd search` and `bookd reindex` on the command line: JSON lines per hit,
a JSON summary per reindex, argument errors, and both with and without an
embedding provider."""
import json

import pytest

from conftest import run_bookd, uniq
from fake_embed import FakeEmbed
from test_search_common import SAMPLE_BOOK, cli_env, hits, import_sample, wait_jobs_idle

CLI_KEYS = {"score", "chapter_title", "chapter_number", "heading", "anchor", "text", "chunk_id", "chapter_id"}


def cli_search(srv, *args, env=None, rc=0):
    p = cli_env(srv, ["search", *args], env or {})
    assert p.returncode == rc, f"bookd search {args}: rc={p.returncode} {p.stderr}"
    lines = [json.loads(ln) for ln in p.stdout.splitlines() if ln.strip()]
    return lines, p


@pytest.fixture(scope="module")
def ksrv(tmp_path_factory):
    from conftest import start_server
    srv = start_server(tmp_path_factory.mktemp("search-cli"), env={"BOOKD_JOB_BACKOFF_MS": "50"})
    book_id = import_sample(srv)
    wait_jobs_idle(srv)
    yield srv, book_id
    assert srv.stop() == 0


def test_search_prints_json_lines(ksrv):
    srv, book_id = ksrv
    lines, p = cli_search(srv, "what is a zero moment point?", "--book", book_id, "--limit", "3")
    assert len(lines) == 3, p.stdout
    api = hits(srv, q="what is a zero moment point?", book_id=book_id, limit=3)
    for ln, h in zip(lines, api):
        assert set(ln) == CLI_KEYS, ln
        assert ln["chunk_id"] == h["chunk_id"] and ln["chapter_id"] == h["chapter_id"]
        assert ln["chapter_title"] == h["chapter_title"] and ln["heading"] == h["heading"]
        assert ln["anchor"] == h["anchor"] and ln["chapter_number"] == h["chapter_number"]
        assert abs(ln["score"] - h["score"]) < 1e-9
        assert h["text"].startswith(ln["text"]) and len(ln["text"].encode()) <= 300
    t = lines[0]["text"].lower()
    assert "zmp" in t or "zero moment point" in t
    # default limit 5; --mode keyword; nothing found: no lines, success
    lines, _ = cli_search(srv, "robot")
    assert len(lines) == 5
    lines, _ = cli_search(srv, "robot", "--mode", "keyword", "--limit", "1")
    assert len(lines) == 1
    lines, p = cli_search(srv, "qqqqzzzz")
    assert lines == [] and p.stdout == ""


@pytest.mark.parametrize("args,rc", [
    (["search"], 2),
    (["search", ""], 2),
    (["search", "a", "b"], 2),
    (["search", "robot", "--limit", "0"], 2),
    (["search", "robot", "--limit", "51"], 2),
    (["search", "robot", "--limit", "x"], 2),
    (["search", "robot", "--mode", "bogus"], 2),
    (["search", "robot", "--mode", "vector"], 1),
    (["search", "robot", "--mode", "hybrid"], 1),
    (["reindex", "--book", "01900000-0000-7000-8000-000000000000"], 1),
])
def test_argument_errors(ksrv, args, rc):
    srv, _ = ksrv
    p = cli_env(srv, args, {})
    assert p.returncode == rc, f"{args}: rc={p.returncode} {p.stdout} {p.stderr}"
    assert p.stdout == ""
    assert p.stderr.startswith("bookd: "), p.stderr


def test_search_text_cut_inside_a_multibyte_character(ksrv):
    """The CLI shortens texts to 300 bytes; a hit whose 300th byte falls
    inside a UTF-8 character must still be printed (cut at a character)."""
    srv, _ = ksrv
    b = srv.create_book(title=uniq("cli utf8"))
    md = "Zqutf " + "\u00e9" * 146 + "x" + "\u00e9" * 200
    assert len(md.encode()[:300].decode("utf-8", errors="ignore").encode()) < 300  # the cut splits one
    srv.add_chapter(b["id"], title="Accents", content_markdown=md)
    srv.add_chapter(b["id"], title="Plain", content_markdown="Zqutf plain ascii text.")
    wait_jobs_idle(srv)
    assert len(hits(srv, q="zqutf", book_id=b["id"])) == 2
    lines, p = cli_search(srv, "zqutf", "--book", b["id"])
    assert len(lines) == 2, f"a hit is missing from the output: {p.stdout!r} {p.stderr!r}"
    acc = [ln for ln in lines if ln["chapter_title"] == "Accents"][0]
    assert md.startswith(acc["text"]) and 290 <= len(acc["text"].encode()) <= 300


def test_reindex_and_search_without_a_server(tmp_path):
    data = tmp_path / "offline"
    data.mkdir()
    p = run_bookd(["import", str(SAMPLE_BOOK)], data_dir=data)
    assert p.returncode == 0, p.stderr
    book_id = json.loads(p.stdout.splitlines()[-1])["book_id"]
    p = run_bookd(["reindex", "--book", book_id], data_dir=data)
    assert p.returncode == 0, p.stderr
    first = json.loads(p.stdout)
    assert first["chapters"] == 6 and first["chunks"] == first["added"] > 10, first
    assert (first["moved"], first["removed"], first["unchanged"], first["embedded"]) == (0, 0, 0, 0), first
    p = run_bookd(["reindex"], data_dir=data)
    second = json.loads(p.stdout)
    assert second["unchanged"] == first["chunks"] and second["added"] == 0 and second["removed"] == 0, second
    p = run_bookd(["search", "zero moment point", "--book", book_id, "--limit", "3"], data_dir=data)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert len(lines) == 3 and set(lines[0]) == CLI_KEYS
    assert all(ln["score"] > 0 for ln in lines)


def test_reindex_and_search_with_a_provider(tmp_path):
    data = tmp_path / "withvec"
    data.mkdir()
    fake = FakeEmbed(dim=48).start()
    try:
        env = {"BOOKD_EMBED_URL": fake.url, "BOOKD_EMBED_MODEL": "cli-model", "BOOKD_EMBED_BATCH": "16"}
        p = run_bookd(["import", str(SAMPLE_BOOK)], data_dir=data)
        book_id = json.loads(p.stdout.splitlines()[-1])["book_id"]
        p = run_bookd(["reindex", "--book", book_id], data_dir=data, env=env)
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["embedded"] == out["chunks"] > 10, out
        assert fake.texts("cli-model") == out["chunks"] + 1  # + the dimension probe
        p = run_bookd(["reindex", "--book", book_id], data_dir=data, env=env)
        assert json.loads(p.stdout)["embedded"] == 0
        for mode, lo, hi in [("vector", -1.0, 1.0), ("hybrid", 0.0, 2.0 / 61)]:
            p = run_bookd(["search", "zero moment point balance", "--book", book_id, "--limit", "3",
                           "--mode", mode], data_dir=data, env=env)
            assert p.returncode == 0, p.stderr
            lines = [json.loads(ln) for ln in p.stdout.splitlines()]
            assert len(lines) == 3, (mode, p.stdout)
            assert all(lo <= ln["score"] <= hi + 1e-12 for ln in lines), (mode, lines)
        # provider down: vector mode fails, hybrid answers from keywords
        fake.fail_next(1000, 500, retry_after=None)
        p = run_bookd(["search", "zmp", "--mode", "vector"], data_dir=data, env=env)
        assert p.returncode == 1 and p.stdout == "" and "500" in p.stderr, (p.stdout, p.stderr)
        p = run_bookd(["search", "zmp", "--limit", "2"], data_dir=data, env=env)
        assert p.returncode == 0 and len(p.stdout.splitlines()) == 2, (p.stdout, p.stderr)
    finally:
        fake.stop()
