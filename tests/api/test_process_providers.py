"""The BookBytes pipeline with its providers configured: a language model
(outline and summaries, tests/api/fake_llm.py), metadata found (Open Library
and Google Books, tests/api/fake_openlibrary.py), S3 storage (a real
@20minutes/s3rver, tests/api/s3server.py), and storage that fails (an S3
endpoint nobody listens on, s3rver stopped mid-job, a local files directory
that cannot be written)."""
import json
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import ADMIN, free_port, random_isbn13, start_server, uniq
from fake_llm import FakeLLM
from fake_openlibrary import GB_ONLY, OL_FOX, FakeMetadata
from s3server import S3Server
from test_chat_common import llm_env
from test_process import book_with_chapters, decode_seconds, process, wait_job

MPG123 = shutil.which("mpg123")

OUTLINE = ["The Farmers", "Mr. Fox", "The Shooting", "The Terrible Shovels", "The Tractors"]
SENTENCE = ("The fox leads his family through the tunnels while the three farmers wait above "
            "with their guns and their spades, and every plan they make is undone by patience. ")


def summary_text(words=470):
    """A summary of about `words` words (what the prompt asks: 450-500)."""
    base = SENTENCE.split()
    return " ".join(base[i % len(base)] for i in range(words)).rstrip(".") + "."


def prompt_of(rec):
    return rec.messages[-1]["content"] if rec.messages else ""


class Model:
    """Answers like a model that knows the book: the outline as a numbered
    list (or JSON), a summary per chapter; chapters in `unknown` are answered
    UNKNOWN, the first ask for chapters in `empty_once` is answered empty."""

    def __init__(self, json_outline=False, unknown=(), empty_once=()):
        self.json_outline = json_outline
        self.unknown = set(unknown)
        self.empty_once = set(empty_once)
        self.asked = {}

    def __call__(self, rec):
        p = prompt_of(rec)
        if p.startswith("List the chapters"):
            if self.json_outline:
                return "```json\n" + json.dumps({"chapters": [
                    {"number": i + 1, "title": t} for i, t in enumerate(OUTLINE)]}) + "\n```"
            return ("Here is the table of contents:\n\n"
                    + "\n".join(f"{i + 1}. {t}" for i, t in enumerate(OUTLINE)) + "\n")
        m = re.match(r"Summarise chapter (\d+)", p)
        if m:
            n = int(m.group(1))
            self.asked[n] = self.asked.get(n, 0) + 1
            if n in self.unknown:
                return "UNKNOWN"
            if n in self.empty_once and self.asked[n] == 1:
                return ""
            return summary_text()
        return "UNKNOWN"


@pytest.fixture(scope="module")
def meta():
    m = FakeMetadata(hang_seconds=5).start()
    yield m
    m.stop()


def meta_env(meta, ol="ok", gb="ok"):
    return {"BOOKD_OPENLIBRARY_URL": f"{meta.url}/{ol}", "BOOKD_GOOGLE_BOOKS_URL": f"{meta.url}/{gb}",
            "BOOKD_METADATA_TRIES": "1", "BOOKD_JOB_BACKOFF_MS": "100"}


def add_book(meta, title, author="Ann Author", pages=212):
    """A new Open Library edition (and its work and author) for a fresh ISBN."""
    isbn = random_isbn13()
    tag = isbn[-7:]
    meta.add_edition(isbn, {
        "key": f"/books/OL{tag}M", "type": {"key": "/type/edition"}, "title": title,
        "publishers": ["Harbour Press"], "publish_date": "October 1, 1988", "number_of_pages": pages,
        "covers": [-1, 4242], "languages": [{"key": "/languages/eng"}],
        "works": [{"key": f"/works/OL{tag}W"}], "authors": [{"key": f"/authors/OL{tag}A"}],
        "isbn_13": [isbn]},
        work={"key": f"/works/OL{tag}W", "title": title,
              "description": {"type": "/type/text", "value": f"All about {title}."},
              "subjects": ["Foxes", "Farmers"],
              "authors": [{"author": {"key": f"/authors/OL{tag}A"}}]},
        authors=[{"key": f"/authors/OL{tag}A", "name": author}])
    return isbn


# ----------------------------------------------------------------- the model path

@pytest.fixture(scope="module")
def llm():
    f = FakeLLM().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def llm_srv(tmp_path_factory, llm, meta):
    env = dict(meta_env(meta), **llm_env(llm, providers="p1:m1", tries=1))
    s = start_server(tmp_path_factory.mktemp("llm"), env=env)
    yield s
    assert s.stop() == 0, s.log_tail()


@pytest.mark.parametrize("json_outline", [False, True], ids=["numbered", "json"])
def test_llm_outline_and_summaries(llm_srv, llm, meta, json_outline):
    model = Model(json_outline=json_outline, unknown={3}, empty_once={2})
    llm.set_model("m1", text=model)
    isbn = add_book(meta, uniq("Fantastic Fox"), author="Roald Dahl")
    j = wait_job(llm_srv, process(llm_srv, isbn)["job_id"], timeout=180)
    assert j["status"] == "completed", j
    res = j["result"]
    assert res["chapters_source"] == "llm" and res["chapters"] == len(OUTLINE), res
    assert res["metadata_source"] == "openlibrary", res

    outline_calls = [r for r in llm.calls(model="m1") if prompt_of(r).startswith("List the chapters")]
    assert outline_calls and "Roald Dahl" in prompt_of(outline_calls[-1]), outline_calls
    summary_prompts = [prompt_of(r) for r in llm.calls(model="m1") if prompt_of(r).startswith("Summarise")]
    assert all("450 to 500 words" in p for p in summary_prompts), summary_prompts[:1]

    # Chapter 3 was UNKNOWN three times: skipped with its reason.
    assert model.asked[3] == 3, model.asked
    assert [s["chapter"] for s in res["skipped"]] == [3], res["skipped"]
    assert "UNKNOWN" in res["skipped"][0]["reason"], res["skipped"]
    # Chapter 2 was empty once, then answered.
    assert model.asked[2] == 2, model.asked

    book_id = res["book_id"]
    items = llm_srv.get(f"/api/v1/books/{book_id}/chapters").json()["items"]
    assert [c["title"] for c in items] == OUTLINE, items
    assert all(c["source"] == "llm" for c in items), items
    for c in items:
        if c["number"] == 3:
            assert c["summary"] is None and c["summary_source"] is None and c["audio_url"] is None, c
        else:
            assert c["summary_source"].startswith("llm:p1"), c
            assert 450 <= len(c["summary"].split()) <= 500, len(c["summary"].split())
            assert c["audio_url"].endswith(f"/chapters/{c['number']}/audio"), c
            one = llm_srv.get(f"/api/v1/books/{book_id}/chapters/{c['number']}").json()
            assert one["summary_source"] == c["summary_source"] and one["audio_url"] == c["audio_url"], one
            assert one["source"] == "llm"
    r = llm_srv.get(f"/api/v1/books/{book_id}/chapters/1/audio")
    assert r.status_code == 200 and r.headers["Content-Type"] == "audio/mpeg" and len(r.content) > 1000
    llm.set_model("m1")


def test_llm_does_not_know_the_book(llm_srv, llm, meta):
    llm.set_model("m1", text="UNKNOWN")
    isbn = add_book(meta, uniq("Obscure"))
    j = wait_job(llm_srv, process(llm_srv, isbn)["job_id"], timeout=60)
    assert j["status"] == "failed" and "import the book's text first" in j["error"], j
    llm.set_model("m1")


def test_imported_chapters_are_not_llm(llm_srv, llm, meta):
    """An imported book keeps its chapters; only the summaries come from the model."""
    llm.set_model("m1", text=Model())
    b, isbn = book_with_chapters(llm_srv, 2)
    j = wait_job(llm_srv, process(llm_srv, isbn)["job_id"], timeout=120)
    assert j["status"] == "completed" and j["result"]["chapters_source"] == "imported", j
    items = llm_srv.get(f"/api/v1/books/{b['id']}/chapters").json()["items"]
    assert all(c["source"] == "text" and c["summary_source"].startswith("llm:") for c in items), items
    llm.set_model("m1")


# ----------------------------------------------------------------- metadata found

@pytest.fixture(scope="module")
def meta_srv(tmp_path_factory, meta):
    s = start_server(tmp_path_factory.mktemp("meta"), env=meta_env(meta))
    yield s
    assert s.stop() == 0, s.log_tail()


def test_metadata_fills_the_book_and_keeps_an_editors_title(meta_srv, meta):
    title = uniq("Harbour Lights")
    isbn = add_book(meta, title, author="Ann Author", pages=212)
    b, _ = book_with_chapters(meta_srv, 2)
    # The imported book has the ISBN: metadata fills what it lacks.
    assert meta_srv.patch(f"/api/v1/books/{b['id']}", json={"isbns": [isbn]},
                          headers=ADMIN).status_code == 200
    j = wait_job(meta_srv, process(meta_srv, isbn)["job_id"], timeout=120)
    assert j["status"] == "completed", j
    got = meta_srv.get(f"/api/v1/books/{b['id']}").json()
    # Editor-set fields stay; the rest is Open Library's.
    assert got["title"] == b["title"] and got["author"] == "A. Writer", got
    assert got["publisher"] == "Harbour Press" and got["pages"] == 212, got
    assert got["publish_date"] == "1988-10-01" and got["language"] == "en", got
    assert got["cover_url"] and "4242" in got["cover_url"], got
    assert got["description"] == f"All about {title}." and set(got["subjects"]) >= {"Foxes", "Farmers"}, got


def test_metadata_creates_the_book_then_an_editors_title_survives(meta_srv, meta, llm):
    title = uniq("Lantern Tide")
    isbn = add_book(meta, title, author="Bo Writer", pages=99)
    # Known only by metadata and no model: the job fails asking for the text,
    # but the book exists with Open Library's fields.
    j = wait_job(meta_srv, process(meta_srv, isbn)["job_id"], timeout=60)
    assert j["status"] == "failed" and "must be imported first" in j["error"], j
    book_id = j["result"]["book_id"] if j.get("result") else None
    if not book_id:
        found = [x for x in meta_srv.all_books() if x["title"] == title]
        assert len(found) == 1, found
        book_id = found[0]["id"]
    got = meta_srv.get(f"/api/v1/books/{book_id}").json()
    assert got["title"] == title and got["author"] == "Bo Writer", got
    assert got["pages"] == 99 and got["publisher"] == "Harbour Press" and got["language"] == "en", got
    assert got["publish_date"] == "1988-10-01" and "4242" in (got["cover_url"] or ""), got
    assert got["description"] == f"All about {title}." and "Foxes" in got["subjects"], got
    assert {i["isbn"] for i in got["isbns"]} >= {isbn}, got

    r = meta_srv.patch(f"/api/v1/books/{book_id}", json={"title": "Editor's Title"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    meta_srv.add_chapter(book_id, title="One", number=1,
                         content_markdown="# One\n\n" + SENTENCE * 8)
    j = wait_job(meta_srv, process(meta_srv, isbn)["job_id"], timeout=120)
    assert j["status"] == "completed" and j["result"]["metadata_source"] == "openlibrary", j
    got = meta_srv.get(f"/api/v1/books/{book_id}").json()
    assert got["title"] == "Editor's Title" and got["pages"] == 99, got
    assert "title" in got["edited_fields"], got


def test_open_library_down_google_books_used(tmp_path, meta):
    s = start_server(tmp_path / "gb", env=meta_env(meta, ol="500"))
    try:
        j = wait_job(s, process(s, GB_ONLY)["job_id"], timeout=60)
        # No text and no model: failed, but Google Books named the book.
        assert j["status"] == "failed" and "must be imported first" in j["error"], j
        found = [b for b in s.all_books() if b["title"] == "Designing Data-Intensive Applications"]
        assert len(found) == 1, [b["title"] for b in s.all_books()]
        got = s.get(f"/api/v1/books/{found[0]['id']}").json()
        assert got["author"] == "Martin Kleppmann" and got["pages"] == 616, got
        assert got["publisher"] == "O'Reilly Media" and got["publish_date"] == "2017-03-16", got
        assert got["cover_url"].startswith("https://"), got
        assert meta.counts.get("500:ol_isbn", 0) >= 1 and meta.counts.get("ok:gb", 0) >= 1, meta.counts
    finally:
        assert s.stop() == 0


def test_both_sources_down_imported_book_warns_and_goes_on(tmp_path, meta):
    s = start_server(tmp_path / "down", env=meta_env(meta, ol="500", gb="malformed"))
    try:
        b, isbn = book_with_chapters(s, 1)
        j = wait_job(s, process(s, isbn)["job_id"], timeout=120)
        assert j["status"] == "completed", j
        warnings = j["result"].get("warnings", [])
        assert any("metadata" in w and isbn in w for w in warnings), j["result"]
        assert s.get(f"/api/v1/books/{b['id']}/chapters/1/audio").status_code == 200
        # Both down and no book has the ISBN: failed (after retries), saying why.
        j = wait_job(s, process(s, OL_FOX)["job_id"], timeout=120)
        assert j["status"] == "failed" and "could not be asked" in j["error"], j
    finally:
        assert s.stop() == 0


# ----------------------------------------------------------------- S3 end to end

def s3_objects(s3, book_id):
    root = Path(s3.dir) / s3.bucket
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and book_id in str(p))


@pytest.mark.skipif(not MPG123, reason="mpg123 not installed")
def test_s3_end_to_end(tmp_path, meta):
    s3 = S3Server().start()
    s = None
    try:
        s = start_server(tmp_path / "s3", env=dict(meta_env(meta), **s3.bookd_env()))
        ready = s.get("/health/ready").json()
        assert ready["status"] == "ready" and ready["checks"]["storage"] == "ok", ready
        b, isbn = book_with_chapters(s, 2)
        j = wait_job(s, process(s, isbn)["job_id"], timeout=120)
        assert j["status"] == "completed", j
        objs = s3_objects(s3, b["id"])
        assert any("1-summary.mp3" in o for o in objs) and any("2-summary.timings.json" in o for o in objs), objs

        r = s.get(f"/api/v1/books/{b['id']}/chapters/1/audio", allow_redirects=False)
        assert r.status_code == 302, r.text
        loc = r.headers["Location"]
        assert loc.startswith(s3.endpoint) and "X-Amz-Signature=" in loc and "X-Amz-Expires=" in loc, loc
        a = requests.get(loc, timeout=10)
        assert a.status_code == 200 and a.headers["Content-Type"] == "audio/mpeg", (a.status_code, a.text[:300])
        secs, peak = decode_seconds(a.content, tmp_path)
        assert secs > 1 and peak > 1000, (secs, peak)
        # A tampered signature is refused by the server: the URL is really signed.
        bad = requests.get(re.sub(r"X-Amz-Signature=[0-9a-f]{4}", "X-Amz-Signature=0000", loc), timeout=10)
        assert bad.status_code == 403, bad.status_code

        t = s.get(f"/api/v1/books/{b['id']}/chapters/1/audio/timings")
        assert t.status_code == 200, t.text
        words = t.json()
        assert words and abs(words[-1]["end_ms"] / 1000.0 - secs) <= 0.1 * secs, (words[-1], secs)
        v = s.get(f"/api/v1/books/{b['id']}/chapters/1/audio/timings", headers={"Accept": "text/vtt"})
        assert v.status_code == 200 and v.text.startswith("WEBVTT")

        assert s.delete(f"/api/v1/books/{b['id']}", headers=ADMIN).status_code == 204
        deadline = time.time() + 10
        while s3_objects(s3, b["id"]) and time.time() < deadline:
            time.sleep(0.1)
        assert s3_objects(s3, b["id"]) == [], s3_objects(s3, b["id"])
    finally:
        if s:
            assert s.stop() == 0, s.log_tail()
        s3.stop()


# ----------------------------------------------------------------- storage down

def test_s3_unreachable_audio_step_retried_chapters_kept(tmp_path, meta):
    dead = f"http://127.0.0.1:{free_port()}"
    env = dict(meta_env(meta), **S3Server().bookd_env(BOOKD_S3_ENDPOINT=dead, BOOKD_S3_BUCKET="bookd-test"))
    s = start_server(tmp_path / "dead", env=env)
    try:
        ready = s.get("/health/ready")
        assert ready.status_code == 200, ready.text
        rj = ready.json()
        assert rj["status"] == "degraded" and rj["checks"]["storage"] == "unavailable", rj
        assert rj["checks"].get("storage_error"), rj
        b, isbn = book_with_chapters(s, 2)
        job = process(s, isbn)["job_id"]
        deadline = time.time() + 90
        while time.time() < deadline:
            j = s.get(f"/api/v1/jobs/{job}", headers=ADMIN).json()
            if j["status"] == "failed" or (j["attempts"] > 1 and j["step"] == "audio"):
                break
            time.sleep(0.2)
        assert j["attempts"] > 1 or j["status"] == "failed", j
        if j["status"] == "failed":
            assert "storage" in j["error"].lower() or "s3" in j["error"].lower(), j
        # The book and its summaries stay; nothing claims audio.
        for n in (1, 2):
            ch = s.get(f"/api/v1/books/{b['id']}/chapters/{n}").json()
            assert ch["summary"] and ch["summary_source"] == "extractive" and ch["audio_url"] is None, ch
        assert s.get(f"/api/v1/books/{b['id']}").status_code == 200
        s.post(f"/api/v1/jobs/{job}/cancel", headers=ADMIN)
    finally:
        assert s.stop() == 0, s.log_tail()


def test_s3_stopped_mid_job_then_back(tmp_path, meta):
    s3 = S3Server().start()
    s = None
    try:
        env = dict(meta_env(meta), **s3.bookd_env(), BOOKD_JOB_BACKOFF_MS="500")
        s = start_server(tmp_path / "mid", env=env)
        b, isbn = book_with_chapters(s, 6, paras=10)
        job = process(s, isbn, narrate=True)["job_id"]
        deadline = time.time() + 120
        while time.time() < deadline:  # chapter 1 finished: its summary and its narration
            r = s.get(f"/api/v1/books/{b['id']}/chapters/1/audio", params={"kind": "chapter"},
                      headers={"Range": "bytes=0-0"})
            if r.status_code == 206:
                break
            time.sleep(0.02)
        # Storage goes away with its data kept: stop the process, keep the dir.
        port, data = s3.port, s3.dir
        s3.proc.terminate()
        s3.proc.wait(timeout=5)
        s3.proc.stdout.close()
        s3.proc = None
        deadline = time.time() + 60
        while time.time() < deadline:
            j = s.get(f"/api/v1/jobs/{job}", headers=ADMIN).json()
            if j["status"] != "processing" or j["attempts"] > 1:
                break
            time.sleep(0.1)
        # The step failed and waits for its retry (or had finished first).
        assert j["status"] == "completed" or (
            j["status"] in ("pending", "processing") and j["error"] and j["error"].startswith("s3:")), j
        if j["status"] != "completed":
            assert s.get("/health/ready").json()["status"] == "degraded"
        # The chapter finished before stays recorded.
        assert s.get(f"/api/v1/books/{b['id']}/chapters/1").json()["audio_url"]
        # Storage back on the same port and directory: the job finishes,
        # without speaking chapter 1 again.
        _restart_on(s3, port, data)
        j = wait_job(s, job, timeout=180)
        assert j["status"] == "completed", j
        # Chapter 1 was finished before the outage: not spoken again. A
        # chapter whose upload the outage cut is spoken again (its audio was
        # never stored); every chapter is spoken at least once per kind.
        assert j["result"]["syntheses"]["1"] == 2, j["result"]
        assert all(v >= 2 for v in j["result"]["syntheses"].values()), j["result"]
        assert s.get("/health/ready").json()["status"] == "ready"
    finally:
        if s:
            assert s.stop() == 0, s.log_tail()
        s3.stop()


def _restart_on(s3, port, data):
    """Starts s3rver again on `port` over the directory it had."""
    import select
    args = ["node", "s3rver", "-d", data, "-a", "127.0.0.1", "-p", str(port), "-s",
            "--configure-bucket", s3.bucket]
    script = ("require('@20minutes/s3rver/lib/cli.js').parseAsync(%s)"
              ".catch(e=>{console.error(e);process.exit(1)})" % json.dumps(args))
    from s3server import S3_DIR
    s3.proc = subprocess.Popen(["node", "-e", script], cwd=S3_DIR, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    out = b""
    deadline = time.time() + 20
    while time.time() < deadline:
        ready, _, _ = select.select([s3.proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(s3.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
            if b"listening on" in out:
                s3.port = port
                s3.dir = data
                return
    raise AssertionError("s3rver did not restart: " + out.decode(errors="replace"))


def test_local_storage_unwritable(tmp_path, meta):
    """A files directory that cannot be written: the audio step fails with a
    clear error and is retried; no half file is visible; once writable the
    retry finishes. (Root ignores permissions, so the book's directory is
    also blocked by a plain file where its directory should be.)"""
    s = start_server(tmp_path / "ro", env=dict(meta_env(meta), BOOKD_JOB_BACKOFF_MS="300"))
    files = s.data_dir / "files"
    try:
        b, isbn = book_with_chapters(s, 2)
        (files / "books").mkdir(parents=True, exist_ok=True)
        blocker = files / "books" / b["id"]
        blocker.write_bytes(b"not a directory")
        os.chmod(files / "books", stat.S_IRUSR | stat.S_IXUSR)
        job = process(s, isbn)["job_id"]
        deadline = time.time() + 60
        while time.time() < deadline:
            j = s.get(f"/api/v1/jobs/{job}", headers=ADMIN).json()
            if j["status"] == "failed" or (j["attempts"] > 1 and j["step"] == "audio"):
                break
            time.sleep(0.1)
        assert j["attempts"] > 1 or j["status"] == "failed", j
        # A clear error naming storage and the path it could not make.
        assert j["error"].startswith("storage:") and b["id"] in j["error"], j
        assert "Not a directory" in j["error"] or "Permission denied" in j["error"], j
        # Nothing half-written anywhere under files/.
        assert not [p for p in files.rglob("*") if p.name.startswith(".tmp-") or p.suffix == ".mp3"]
        for n in (1, 2):
            ch = s.get(f"/api/v1/books/{b['id']}/chapters/{n}").json()
            assert ch["summary"] and ch["audio_url"] is None, ch
        # Writable again: a later attempt completes.
        os.chmod(files / "books", stat.S_IRWXU)
        blocker.unlink()
        if j["status"] != "failed":
            j = wait_job(s, job, timeout=120)
            assert j["status"] == "completed", j
            assert s.get(f"/api/v1/books/{b['id']}/chapters/1/audio").status_code == 200
    finally:
        os.chmod(files / "books", stat.S_IRWXU) if (files / "books").exists() else None
        assert s.stop() == 0, s.log_tail()


# ----------------------------------------------------------------- chapter lists

def test_chapter_list_carries_summary_source_and_audio_url(meta_srv):
    b, isbn = book_with_chapters(meta_srv, 2)
    j = wait_job(meta_srv, process(meta_srv, isbn)["job_id"], timeout=120)
    assert j["status"] == "completed", j
    items = meta_srv.get(f"/api/v1/books/{b['id']}/chapters").json()["items"]
    assert len(items) == 2
    for c in items:
        one = meta_srv.get(f"/api/v1/books/{b['id']}/chapters/{c['number']}").json()
        assert c["summary_source"] == one["summary_source"] == "extractive", (c, one)
        assert c["audio_url"] == one["audio_url"] and c["audio_url"].endswith(f"/chapters/{c['number']}/audio")
        assert c["summary"] == one["summary"] and c["source"] == one["source"] == "text"
        assert "content_markdown" not in c
