"""Shared helpers for the test_search_*.py modules (chunking, keyword, vector
and hybrid search, incremental indexing, `bookd search` / `bookd reindex`).
This module holds no tests; pytest collects it only because of its name.
Everything here talks to bookd over HTTP or runs the binary."""
import json
import math
import time

import requests

from conftest import ADMIN, SAMPLE_DIR, SLOW, UUID7_RE, cli_for

SAMPLE_BOOK = SAMPLE_DIR / "physical-ai"
SEARCH = "/api/v1/search"
HIT_KEYS = {
    "chunk_id", "book_id", "chapter_id", "chapter_number", "chapter_title", "heading",
    "heading_path", "anchor", "text", "score", "char_start", "char_end", "token_count", "language",
}
TERMINAL = {"completed", "failed", "cancelled"}
RRF_MAX = 2.0 / 61.0


def alive(srv):
    """Fail with the log tail when the server process has died."""
    rc = srv.proc.poll()
    assert rc is None, f"the server died (exit status {rc}); log tail:\n{srv.log_tail()}"


def _get(srv, path, **kw):
    try:
        return srv.get(path, **kw)
    except requests.exceptions.ConnectionError:
        time.sleep(0.2)
        alive(srv)
        raise


def search(srv, expect=200, **params):
    alive(srv)
    r = _get(srv, SEARCH, params=params)
    assert r.status_code == expect, f"search {params}: {r.status_code} {r.text[:500]}"
    return r.json()


def hits(srv, **params):
    body = search(srv, **params)
    assert isinstance(body.get("results"), list), body
    return body["results"]


def all_jobs(srv):
    alive(srv)
    items, cursor = [], None
    for _ in range(100):
        params = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        r = _get(srv, "/api/v1/jobs", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("job pagination does not end")


def wait_jobs_idle(srv, timeout=15.0, type_=None):
    """Wait until no job (of type_, or any) is pending or processing twice in
    a row; returns the list of all jobs."""
    deadline = time.monotonic() + timeout * SLOW
    calm = 0
    while True:
        jobs = all_jobs(srv)
        busy = [j for j in jobs if j["status"] not in TERMINAL and (type_ is None or j["type"] == type_)]
        calm = calm + 1 if not busy else 0
        if calm >= 2:
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs still busy after {timeout}s: {busy[:3]}\n{srv.log_tail()}")
        time.sleep(0.05)


def get_job(srv, jid):
    alive(srv)
    r = _get(srv, f"/api/v1/jobs/{jid}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def wait_job(srv, jid, timeout=15.0):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        j = get_job(srv, jid)
        if j["status"] in TERMINAL:
            return j
        if time.monotonic() > deadline:
            raise AssertionError(f"job {jid} not finished after {timeout}s: {j}\n{srv.log_tail()}")
        time.sleep(0.05)


def reindex_api(srv, book_id, headers=ADMIN):
    r = srv.post(f"/api/v1/books/{book_id}/reindex", headers=headers)
    assert r.status_code == 202, f"reindex: {r.status_code} {r.text[:300]}"
    body = r.json()
    assert UUID7_RE.match(body["job_id"]), body
    assert r.headers.get("Location") == f"/api/v1/jobs/{body['job_id']}"
    return body["job_id"]


def import_sample(srv, path=SAMPLE_BOOK):
    """`bookd import` into the server's data dir; returns the book id."""
    p = cli_for(srv, ["import", str(path)])
    assert p.returncode == 0, f"import failed: {p.stdout} {p.stderr}"
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    out = json.loads(lines[-1])
    assert UUID7_RE.match(out["book_id"]), out
    return out["book_id"]


def chapters_of(srv, book_id):
    r = srv.get(f"/api/v1/books/{book_id}/chapters")
    assert r.status_code == 200, r.text
    out = []
    for it in r.json()["items"]:
        out.append(get_chapter(srv, book_id, it["id"]))
    return out


def get_chapter(srv, book_id, chapter_id):
    g = srv.get(f"/api/v1/books/{book_id}/chapters/{chapter_id}")
    assert g.status_code == 200, g.text
    return g.json()


def chapter_chunks(srv, chapter, mode="keyword"):
    """Every chunk of a chapter: every chunk's heading path starts with the
    chapter title, so a query of the title's words matches them all."""
    res = hits(srv, q=chapter["title"], chapter_id=chapter["id"], limit=50, mode=mode)
    assert len(res) < 50, "chapter has too many chunks for this helper"
    return sorted(res, key=lambda h: h["char_start"])


def check_hit(srv, h, chapters_cache=None):
    """Shape and consistency of one search result against its chapter."""
    assert set(h) == HIT_KEYS, f"hit keys differ: {set(h) ^ HIT_KEYS}"
    for k in ("chunk_id", "book_id", "chapter_id"):
        assert UUID7_RE.match(h[k]), (k, h[k])
    assert isinstance(h["score"], (int, float)) and math.isfinite(h["score"]), h
    assert isinstance(h["char_start"], int) and isinstance(h["char_end"], int)
    assert 0 <= h["char_start"] < h["char_end"], h
    text_bytes = h["text"].encode("utf-8")
    assert h["token_count"] == (len(text_bytes) + 3) // 4, h
    assert h["text"] == h["text"].strip(" \n\r"), "chunk text is not trimmed"
    key = h["chapter_id"]
    cache = chapters_cache if chapters_cache is not None else {}
    if key not in cache:
        cache[key] = get_chapter(srv, h["book_id"], h["chapter_id"])
    ch = cache[key]
    assert h["chapter_number"] == ch["number"], (h, ch["number"])
    assert h["chapter_title"] == ch["title"]
    md = ch["content_markdown"].encode("utf-8")
    assert h["char_end"] <= len(md), h
    assert md[h["char_start"]:h["char_end"]] == text_bytes, (
        f"content_markdown[{h['char_start']}:{h['char_end']}] (bytes) is not the chunk text:\n"
        f"{md[h['char_start']:h['char_end']][:200]!r}\nvs\n{text_bytes[:200]!r}")
    assert h["heading_path"].startswith(ch["title"]), h
    assert h["heading"] and h["heading_path"].endswith(h["heading"]), h
    sections = {(s["anchor"], s["heading"]) for s in ch["sections"]}
    if h["anchor"] is None:
        assert h["heading"] == ch["title"], f"chunk without anchor has heading {h['heading']!r}"
    else:
        assert (h["anchor"], h["heading"]) in sections, (
            f"anchor/heading {h['anchor']!r}/{h['heading']!r} not among the chapter's sections {sections}")
    return ch


def wait_search(srv, pred, timeout=10.0, what="results", **params):
    """Poll a search until pred(results) holds; returns the results."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        res = hits(srv, **params)
        if pred(res):
            return res
        if time.monotonic() > deadline:
            raise AssertionError(f"search {params} never gave {what} within {timeout}s; last {res[:2]}\n"
                                 f"{srv.log_tail()}")
        time.sleep(0.05)


def reindex_cli(srv, *args, env=None):
    p = cli_for(srv, ["reindex", *args]) if env is None else cli_env(srv, ["reindex", *args], env)
    assert p.returncode == 0, f"bookd reindex failed rc={p.returncode}: {p.stderr}"
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one JSON line, got {p.stdout!r}"
    out = json.loads(lines[0])
    assert set(out) == {"chapters", "chunks", "added", "moved", "removed", "unchanged", "embedded"}, out
    for v in out.values():
        assert isinstance(v, int) and v >= 0, out
    assert out["added"] + out["moved"] + out["unchanged"] == out["chunks"], out
    return out


def cli_env(srv, args, env):
    from conftest import run_bookd_input
    e = {k: v for k, v in srv.env.items() if k.startswith("BOOKD_")}
    e.update(env)
    return run_bookd_input(args, None, data_dir=srv.data_dir, env=e, cwd=srv.data_dir)
