"""POST /api/v1/books/import: uploads (multipart and raw bodies), the
book.import job (zip of a Markdown folder, .md, .txt), its failure modes
(corrupt or hostile archives, bad text) and upload limits."""
import io
import json
import random
import time
import zipfile

import pytest

from conftest import (ADMIN, SLOW, UUID7_RE, assert_error, make_user,
                      raw_http, start_server, uniq)
from test_jobs_common import accepted_id, jobs_env, wait_job

IMPORT = "/api/v1/books/import"


@pytest.fixture(scope="module")
def isrv(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("jobs-import"), env=jobs_env())
    yield srv
    rc = srv.stop()
    assert rc == 0, f"import server exited with {rc}; log:\n{srv.log_tail()}"


@pytest.fixture(scope="module")
def iusers(isrv):
    return {"editor": make_user(isrv, "editor"), "reader": make_user(isrv, "reader")}


# ------------------------------------------------------------------ helpers

def zip_bytes(entries, root=None):
    """entries: {name: bytes|str}; with root, every name is put under root/."""
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        if root:
            z.writestr(zipfile.ZipInfo(root + "/"), b"")
        for name, data in entries.items():
            if isinstance(data, str):
                data = data.encode("utf-8")
            z.writestr(f"{root}/{name}" if root else name, data)
    return bio.getvalue()


def docusaurus_entries(title, author="Zip Author"):
    """book.json + three chapters whose order comes from front matter and
    _category_.json, not from file names: Welcome, Alpha, Beta."""
    return {
        "book.json": json.dumps({"title": title, "author": author, "language": "en"}),
        "intro.md": "---\ntitle: Welcome\nsidebar_position: 1\n---\n\nWelcome text.\n",
        "zz-part/_category_.json": json.dumps({"label": "Part", "position": 2}),
        "zz-part/b.md": "---\nsidebar_position: 2\n---\n\n# Beta\n\nBeta body.\n",
        "zz-part/a.mdx": "---\nsidebar_position: 1\n---\nimport X from '@site/x';\n\n# Alpha\n\nAlpha body.\n",
        "static/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    }


def upload(srv, filename, data, ctype="application/octet-stream", fields=None, headers=ADMIN, key=None):
    h = dict(headers or {})
    if key is not None:
        h["Idempotency-Key"] = key
    return srv.post(IMPORT, files={"file": (filename, data, ctype)}, data=fields or {}, headers=h)


def import_job(srv, r, headers=ADMIN, timeout=10):
    jid = accepted_id(r)
    assert r.json()["status"] == "pending", r.text
    return wait_job(srv, jid, headers=headers, timeout=timeout)


def import_ok(srv, r, headers=ADMIN):
    j = import_job(srv, r, headers)
    assert j["status"] == "completed", j
    assert j["type"] == "book.import"
    assert j["steps_done"] == j["steps_total"] >= 3 and j["progress"] == 100, j
    assert j["step"] == "cleanup", j
    assert j["attempts"] == 1 and j["error"] is None, j
    res = j["result"]
    assert {"book_id", "chapters", "title", "created"} <= set(res), res
    assert UUID7_RE.match(res["book_id"]), res
    return res


def chapters(srv, book_id):
    r = srv.get(f"/api/v1/books/{book_id}/chapters", params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def chapter_texts(srv, book_id):
    out = []
    for c in chapters(srv, book_id):
        g = srv.get(f"/api/v1/books/{book_id}/chapters/{c['id']}")
        assert g.status_code == 200, g.text
        out.append(g.json())
    return out


def wait_uploads_empty(srv, timeout=3.0):
    """Upload files and scratch folders are removed when a job ends."""
    d = srv.data_dir / "uploads"
    deadline = time.monotonic() + timeout * SLOW
    while True:
        left = sorted(p.name for p in d.iterdir()) if d.exists() else []
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# ------------------------------------------------------------------ successful imports

def test_import_zip_of_docusaurus_folder(isrv):
    title = uniq("Zip Book")
    data = zip_bytes(docusaurus_entries(title), root="my-book")
    r = upload(isrv, "my-book.zip", data, "application/zip")
    res = import_ok(isrv, r)
    assert res["created"] is True, res
    assert res["title"] == title, "book.json inside the single top-level folder was not used"
    assert res["chapters"] == 3, res
    b = isrv.get(f"/api/v1/books/{res['book_id']}").json()
    assert b["title"] == title and b["author"] == "Zip Author" and b["language"] == "en", b
    assert b["chapter_count"] == 3
    chs = chapter_texts(isrv, res["book_id"])
    assert [c["title"] for c in chs] == ["Welcome", "Alpha", "Beta"], [c["title"] for c in chs]
    assert [c["number"] for c in chs] == [1, 2, 3]
    assert "Alpha body." in chs[1]["content_markdown"]
    assert "import X" not in chs[1]["content_markdown"], "MDX import line kept"
    assert wait_uploads_empty(isrv) == [], "upload files left behind"


def test_import_zip_flat_with_macos_junk(isrv):
    """A zip without a top-level folder; __MACOSX and dot files ignored."""
    title = uniq("Flat Zip")
    entries = {"book.json": json.dumps({"title": title}),
               "01-one.md": "# One\n\nfirst\n", "02-two.md": "# Two\n\nsecond\n",
               "__MACOSX/._01-one.md": b"\x00\x05\x16\x07junk", ".DS_Store": b"\x00\x00junk"}
    res = import_ok(isrv, upload(isrv, "flat.zip", zip_bytes(entries), "application/zip"))
    assert res["title"] == title and res["chapters"] == 2, res
    assert [c["title"] for c in chapters(isrv, res["book_id"])] == ["One", "Two"]


def test_import_zip_single_folder_plus_macosx(isrv):
    title = uniq("Mac Zip")
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("book/book.json", json.dumps({"title": title}))
        z.writestr("book/ch.md", "# Only\n\ntext\n")
        z.writestr("__MACOSX/book/._ch.md", b"\x00\x05\x16\x07junk")
    res = import_ok(isrv, upload(isrv, "book.zip", bio.getvalue(), "application/zip"))
    assert res["title"] == title and res["chapters"] == 1, res


def test_import_markdown_file_with_fields(isrv):
    title = uniq("Md Book")
    md = "# First Part\n\nHello **world**.\n\n# Second Part\n\nMore words here.\n"
    res = import_ok(isrv, upload(isrv, "notes.md", md.encode(), "text/markdown",
                                 fields={"title": title, "author": "Md Author", "language": "fr"}))
    assert res["title"] == title and res["chapters"] == 2 and res["created"] is True, res
    b = isrv.get(f"/api/v1/books/{res['book_id']}").json()
    assert (b["author"], b["language"]) == ("Md Author", "fr"), b
    chs = chapter_texts(isrv, res["book_id"])
    assert [c["title"] for c in chs] == ["First Part", "Second Part"]
    assert "Hello **world**." in chs[0]["content_markdown"]


def test_import_text_file(isrv):
    title = uniq("Plain Text Book")
    txt = f"{title}\nby Someone\n\nChapter 1: The Start\nIt began.\n\nChapter 2: The End\nIt ended.\n"
    res = import_ok(isrv, upload(isrv, "story.txt", txt.encode(), "text/plain"))
    assert res["title"] == title, res
    assert res["chapters"] == 2
    chs = chapter_texts(isrv, res["book_id"])
    assert [c["title"] for c in chs] == ["The Start", "The End"]
    assert "It ended." in chs[1]["content_markdown"]


def test_untitled_markdown_takes_the_uploaded_file_name(isrv):
    """Without a title (field, front matter or book.json) `bookd import`
    names a book after its file; an upload must use the name the client
    sent, not the server's random scratch name."""
    name = uniq("the-quiet-garden")
    res = import_ok(isrv, upload(isrv, f"{name}.md", b"# Chapter One\n\nText.\n", "text/markdown"))
    b = isrv.get(f"/api/v1/books/{res['book_id']}").json()
    assert not UUID7_RE.match(b["title"]), (
        f"POST {IMPORT} file={name}.md: book title is the server's scratch name {b['title']!r}")
    assert b["title"] == name, b["title"]


def test_untitled_flat_zip_takes_the_uploaded_file_name(isrv):
    name = uniq("field-notes")
    data = zip_bytes({"a.md": "# A\n\ntext\n", "b.md": "# B\n\ntext\n"})
    res = import_ok(isrv, upload(isrv, f"{name}.zip", data, "application/zip"))
    b = isrv.get(f"/api/v1/books/{res['book_id']}").json()
    assert "uploads" not in b["title"] and not UUID7_RE.match(b["title"].split(".")[0]), (
        f"POST {IMPORT} file={name}.zip: book title is the server's scratch name {b['title']!r}")
    assert b["title"] == name, b["title"]


@pytest.mark.parametrize("how", ["header", "query", "content-type-only"])
def test_import_raw_body(isrv, how):
    title = uniq("Raw Book")
    if how == "header":
        data = zip_bytes({"book.json": json.dumps({"title": title}), "c.md": "# C\n\ntext\n"}, root="r")
        r = isrv.post(IMPORT, data=data, headers={**ADMIN, "Content-Type": "application/zip",
                                                  "X-Filename": "raw.zip"})
        want = 1
    elif how == "query":
        md = "# X\n\nx\n\n# Y\n\ny\n"
        r = isrv.post(IMPORT, params={"filename": "raw.md", "title": title}, data=md.encode(),
                      headers={**ADMIN, "Content-Type": "text/markdown"})
        want = 2
    else:
        txt = f"{title}\n\nChapter 1: Only\nbody\n"
        r = isrv.post(IMPORT, data=txt.encode(), headers={**ADMIN, "Content-Type": "text/plain; charset=utf-8"})
        want = 1
    res = import_ok(isrv, r)
    assert res["title"] == title and res["chapters"] == want, res


def test_reimport_same_zip_updates_in_place(isrv):
    title = uniq("Again Book")
    data = zip_bytes(docusaurus_entries(title), root="again")
    first = import_ok(isrv, upload(isrv, "again.zip", data, "application/zip"))
    second = import_ok(isrv, upload(isrv, "again.zip", data, "application/zip"))
    assert first["created"] is True and second["created"] is False, (first, second)
    assert second["book_id"] == first["book_id"]
    assert second["chapters"] == first["chapters"] == 3
    assert second.get("unchanged") == 3 and second.get("added") == 0, second
    assert len(chapters(isrv, first["book_id"])) == 3
    assert len(isrv.books_titled(title)) == 1


def test_import_into_existing_book_id(isrv):
    book = isrv.create_book(title=uniq("Target"), author="T")
    res = import_ok(isrv, upload(isrv, "x.md", b"# Added\n\nbody\n", "text/markdown",
                                 fields={"book_id": book["id"]}))
    assert res["book_id"] == book["id"] and res["created"] is False, res
    assert [c["title"] for c in chapters(isrv, book["id"])] == ["Added"]


def test_import_progress_fields_after_completion(isrv):
    r = upload(isrv, "p.md", b"# P\n\nq\n", "text/markdown", fields={"title": uniq("P")})
    j = import_job(isrv, r)
    assert j["status"] == "completed" and j["step"] == "cleanup" and j["eta_seconds"] == 0, j
    assert j["started_at"] and j["finished_at"]


# ------------------------------------------------------------------ request validation

def test_missing_file_is_422(isrv):
    r = isrv.post(IMPORT, files={"title": (None, "Only a title")}, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    assert any(d.get("field") == "file" for d in err["details"]), err


@pytest.mark.parametrize("how", ["multipart", "raw"])
def test_empty_file_is_422(isrv, how):
    if how == "multipart":
        r = upload(isrv, "empty.md", b"", "text/markdown")
    else:
        r = isrv.post(IMPORT, data=b"", headers={**ADMIN, "Content-Type": "text/markdown",
                                                   "X-Filename": "e.md"})
    err = assert_error(r, 422, "validation_failed")
    assert any(d.get("field") == "file" for d in err["details"]), err


@pytest.mark.parametrize("filename, ctype", [
    ("setup.exe", "application/octet-stream"),
    ("setup.exe", "application/zip"),      # the name decides, not the type
    ("book.pdf", "application/pdf"),
    ("noext", "application/octet-stream"),
])
def test_unsupported_upload_is_415(isrv, filename, ctype):
    before = isrv.get("/api/v1/jobs", params={"limit": 100}, headers=ADMIN).json()["items"]
    assert_error(upload(isrv, filename, b"MZ\x90\x00binary", ctype), 415, "unsupported_media_type")
    after = isrv.get("/api/v1/jobs", params={"limit": 100}, headers=ADMIN).json()["items"]
    assert len(after) == len(before), "a job was queued for a refused upload"


def test_raw_unknown_content_type_is_415(isrv):
    r = isrv.post(IMPORT, data=b"\x7fELF....", headers={**ADMIN, "Content-Type": "application/octet-stream"})
    assert_error(r, 415, "unsupported_media_type")


def test_import_auth(isrv, iusers):
    body = {"file": ("a.md", b"# A\n\nb\n", "text/markdown")}
    assert_error(isrv.post(IMPORT, files=body), 401, "unauthorized")
    assert_error(isrv.post(IMPORT, files=body, headers=iusers["reader"]["headers"]), 403, "forbidden")
    ed = iusers["editor"]["headers"]
    r = isrv.post(IMPORT, files=body, data={"title": uniq("Editor Import")}, headers=ed)
    res = import_ok(isrv, r, headers=ed)
    assert res["created"] is True
    assert wait_uploads_empty(isrv) == []


def test_idempotency_key_on_import(isrv, iusers):
    key = uniq("imp-key")
    title = uniq("Idem Book")
    f = {"title": title}
    r1 = upload(isrv, "i.md", b"# I\n\ntext\n", "text/markdown", fields=f, key=key)
    jid = accepted_id(r1)
    assert "Idempotent-Replayed" not in r1.headers
    r2 = upload(isrv, "i.md", b"# I\n\ntext\n", "text/markdown", fields=f, key=key)
    assert accepted_id(r2) == jid
    assert r2.headers.get("Idempotent-Replayed") == "true", r2.headers
    assert wait_job(isrv, jid)["status"] == "completed"
    r3 = upload(isrv, "i.md", b"# I\n\ntext\n", "text/markdown", fields=f, key=key)
    assert accepted_id(r3) == jid and r3.json()["status"] == "completed"
    assert len(isrv.books_titled(title)) == 1
    # another user with the same key gets their own job
    ed = iusers["editor"]["headers"]
    r4 = upload(isrv, "i.md", b"# I\n\ntext\n", "text/markdown", fields=f, key=key, headers=ed)
    other = accepted_id(r4)
    assert other != jid and "Idempotent-Replayed" not in r4.headers
    wait_job(isrv, other, headers=ed)
    # replays leave no upload files behind
    assert wait_uploads_empty(isrv) == [], "upload of a replayed request left behind"


# ------------------------------------------------------------------ failures

def bomb_zip(path, mib=300):
    """One entry of `mib` MiB of zeros, deflated (~300 KB), streamed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        zi = zipfile.ZipInfo("bomb/zeros.md")
        zi.compress_type = zipfile.ZIP_DEFLATED
        with z.open(zi, "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(mib):
                f.write(chunk)
    return path


def hostile_zip(kind):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("book/ok.md", "# Fine\n\nfine\n")
        if kind == "traversal":
            z.writestr(zipfile.ZipInfo("../evil.md"), "# Evil\n\nevil\n")
        elif kind == "traversal-deep":
            z.writestr(zipfile.ZipInfo("book/../../evil.md"), "# Evil\n\nevil\n")
        elif kind == "absolute":
            z.writestr(zipfile.ZipInfo("/etc/x.md"), "# Evil\n\nevil\n")
        elif kind == "symlink":
            zi = zipfile.ZipInfo("book/link.md")
            zi.create_system = 3
            zi.external_attr = 0o120777 << 16
            z.writestr(zi, "/etc/passwd")
    return bio.getvalue()


def real_zip():
    return zip_bytes({"book.json": json.dumps({"title": uniq("Trunc")}),
                      **{f"c{i}.md": f"# C{i}\n\n" + "words " * 2000 for i in range(5)}}, root="t")


FAILURES = {
    # name: (filename, ctype, data-factory, words expected in the error)
    "random-bytes-zip": ("junk.zip", "application/zip", lambda: random.randbytes(4096), ["zip"]),
    "pk-header-garbage": ("junk.zip", "application/zip",
                          lambda: b"PK\x03\x04" + random.randbytes(4096), ["zip"]),
    "truncated-zip": ("trunc.zip", "application/zip", lambda: (lambda z: z[:len(z) // 2])(real_zip()), ["zip"]),
    "traversal": ("t.zip", "application/zip", lambda: hostile_zip("traversal"), ["unsafe path"]),
    "traversal-deep": ("t.zip", "application/zip", lambda: hostile_zip("traversal-deep"), ["unsafe path"]),
    "absolute": ("a.zip", "application/zip", lambda: hostile_zip("absolute"), ["unsafe path"]),
    "symlink": ("s.zip", "application/zip", lambda: hostile_zip("symlink"), ["link"]),
    "invalid-utf8-md": ("bad.md", "text/markdown", lambda: b"# Title\n\nabc \xff\xfe\xfd def\n", ["UTF-8"]),
    "nul-md": ("nul.md", "text/markdown", lambda: b"# Title\n\nabc\x00def\n", ["NUL"]),
    "nul-txt": ("nul.txt", "text/plain", lambda: b"Book\n\nChapter 1: A\nx\x00y\n", ["NUL"]),
    "zip-as-markdown": ("x.md", "text/markdown", lambda: zip_bytes({"a.md": "# A\n"}), ["zip"]),
    "text-as-zip": ("x.zip", "application/zip", lambda: b"# Not a zip\n\njust text\n", ["not a zip"]),
    "txt-without-chapters": ("n.txt", "text/plain", lambda: b"just some words\nno chapters\n", ["chapter"]),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_import_failure(isrv, case):
    filename, ctype, make, words = FAILURES[case]
    before = len(isrv.all_books())
    j = import_job(isrv, upload(isrv, filename, make(), ctype))
    assert j["status"] == "failed", j
    err = j["error"]
    assert isinstance(err, str) and err, j
    for w in words:
        assert w.lower() in err.lower(), f"error {err!r} does not mention {w!r}"
    assert j["attempts"] == 1, f"bad input must fail at once, not be retried: {j}"
    assert j["result"] is None, j
    assert str(isrv.data_dir) not in err, f"error exposes server paths: {err!r}"
    assert len(isrv.all_books()) == before, "a failed import left a book behind"
    assert wait_uploads_empty(isrv) == [], "upload files left behind after a failure"


def test_zip_bomb_is_rejected(isrv, tmp_path):
    path = bomb_zip(tmp_path / "bomb.zip")
    size = path.stat().st_size
    assert size < 2 << 20, size
    before = len(isrv.all_books())
    t0 = time.monotonic()
    with open(path, "rb") as f:
        r = upload(isrv, "bomb.zip", f, "application/zip")
    j = import_job(isrv, r, timeout=20)
    assert j["status"] == "failed", j
    assert "expands" in j["error"], j["error"]
    assert j["attempts"] == 1
    assert len(isrv.all_books()) == before
    assert wait_uploads_empty(isrv) == [], "the bomb's scratch files were left behind"
    assert time.monotonic() - t0 < 15 * SLOW


# Folders nested deeper than the importer follows: an error that refuses the
# book (a file that is merely not text is skipped with a warning instead).
TOO_DEEP = "/".join(f"d{i}" for i in range(18)) + "/deep.md"


def test_partial_zip_leaves_no_book(isrv):
    """Good chapters before a bad part: nothing is imported."""
    title = uniq("Half Book")
    data = zip_bytes({"book.json": json.dumps({"title": title}), "a.md": "# A\n\nfine\n",
                      "b.md": "# B\n\nfine\n", f"c/{TOO_DEEP}": "# C\n\ndeep\n"}, root="half")
    j = import_job(isrv, upload(isrv, "half.zip", data, "application/zip"))
    assert j["status"] == "failed" and "nested" in j["error"], j
    assert "half.zip" in j["error"], f"error does not name the upload: {j['error']!r}"
    assert isrv.books_titled(title) == []


def test_failed_reimport_keeps_existing_book(isrv):
    title = uniq("Keep Book")
    good = zip_bytes({"book.json": json.dumps({"title": title}), "a.md": "# A\n\nfine\n"}, root="k")
    res = import_ok(isrv, upload(isrv, "k.zip", good, "application/zip"))
    bad = zip_bytes({"book.json": json.dumps({"title": title}), "a.md": "# A\n\nchanged\n",
                     TOO_DEEP: "# B\n\nb\n"}, root="k")
    j = import_job(isrv, upload(isrv, "k.zip", bad, "application/zip"))
    assert j["status"] == "failed", j
    chs = chapter_texts(isrv, res["book_id"])
    assert [c["title"] for c in chs] == ["A"]
    assert "fine" in chs[0]["content_markdown"], "a failed re-import changed the book"


# ------------------------------------------------------------------ upload size limit

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("jobs-small"), env=jobs_env(BOOKD_MAX_UPLOAD="10K"))
    yield srv
    rc = srv.stop()
    assert rc == 0, f"small-upload server exited with {rc}; log:\n{srv.log_tail()}"


def check_413(status, headers, body):
    assert status == 413, (status, body[:300])
    err = json.loads(body)["error"]
    assert err["code"] == "payload_too_large", err


def job_count(srv):
    return len(srv.get("/api/v1/jobs", params={"limit": 100}, headers=ADMIN).json()["items"])


def head(port, extra):
    return (f"POST {IMPORT} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: test-admin-key\r\n"
            f"Content-Type: text/markdown\r\nX-Filename: big.md\r\n{extra}Connection: close\r\n\r\n").encode()


def big_md(n):
    line = b"# Big\n\n" + b"word " * 20 + b"\n"
    return (line * (n // len(line) + 1))[:n]


def test_upload_over_limit_content_length(small):
    n0 = job_count(small)
    body = big_md(20 * 1024)
    check_413(*raw_http(small.port, head(small.port, f"Content-Length: {len(body)}\r\n"), body))
    assert job_count(small) == n0


def test_upload_over_limit_chunked(small):
    n0 = job_count(small)
    data = big_md(20 * 1024)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 1000]), data[i:i + 1000])
                      for i in range(0, len(data), 1000)) + b"0\r\n\r\n"
    check_413(*raw_http(small.port, head(small.port, "Transfer-Encoding: chunked\r\n"), chunks))
    assert job_count(small) == n0


def test_upload_over_limit_multipart(small):
    n0 = job_count(small)
    r = upload(small, "big.md", big_md(20 * 1024), "text/markdown")
    assert_error(r, 413, "payload_too_large")
    assert job_count(small) == n0


def test_upload_under_limit_ok_and_no_temp_files_left(small):
    r = upload(small, "ok.md", big_md(9 * 1024), "text/markdown", fields={"title": uniq("Small")})
    j = import_job(small, r)
    assert j["status"] == "completed", j
    # chunked under the limit works too
    data = big_md(8 * 1024)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 1000]), data[i:i + 1000])
                      for i in range(0, len(data), 1000)) + b"0\r\n\r\n"
    status, _, body = raw_http(small.port, head(small.port, "Transfer-Encoding: chunked\r\n"), chunks)
    assert status == 202, body
    assert wait_job(small, json.loads(body)["job_id"])["status"] == "completed"
    assert wait_uploads_empty(small) == [], "refused or finished uploads left temp files"
