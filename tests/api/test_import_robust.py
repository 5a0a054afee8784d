"""Importer robustness on real books: a file with NUL bytes or invalid UTF-8
does not refuse the book (it is skipped or cleaned and named in the result's
`warnings`, by upload and by `bookd import`), and multi-line JSX components
are stripped from what chapters, search and chat give back."""
import io
import json
import zipfile

import pytest

from conftest import ADMIN, UUID7_RE, run_bookd, start_server, uniq
from test_jobs_common import accepted_id, jobs_env, wait_job

IMPORT = "/api/v1/books/import"
FFFD = "\ufffd"

# A chapter like those of the "Physical AI" books: a component whose props
# span lines, with strings that hold `>` and `}`, around content that stays.
JSX_CHAPTER = """---
title: Sensors
sidebar_position: 2
---
import WhatYouWillLearn from '@site/src/components/WhatYouWillLearn';
import Callout from '@site/src/components/Callout';

# Sensors

<WhatYouWillLearn
  goals={[
    "Compare IMU > encoder drift",
    'Close a brace } in a string',
    {label: "nested", weight: 2},
  ]}
  level="beginner"
/>

<Callout type="tip" title={`Torque > 5 Nm`}>

Gyroscope calibration removes the bias of an inertial measurement unit before
the robot walks.

</Callout>

```jsx
<Example prop={1} />
```
"""

TAG_TEXT = ("WhatYouWillLearn", "goals=", "encoder drift", "Close a brace", "<Callout", "</Callout>",
            "level=", "Torque")


def bad_files():
    """name -> (bytes, action, words in the message)."""
    return {
        "docs/binary.md": (b"# Binary\n\nabc\x00def\n", "skipped", "NUL"),
        "docs/latin1.md": ("# Latin\n\nA caf\xe9 on the corner of a long, otherwise fine street.\n"
                           .encode("latin-1"), "cleaned", "U+FFFD"),
        "docs/utf16.md": ("# Wide\n\ntext\n".encode("utf-16"), "skipped", "NUL"),
    }


def book_entries(title):
    entries = {
        "book.json": json.dumps({"title": title, "author": "Robust Author"}),
        "docs/intro.md": "---\nsidebar_position: 1\n---\n# Intro\n\nThe introduction.\n",
        "docs/sensors.mdx": JSX_CHAPTER,
    }
    for name, (data, _, _) in bad_files().items():
        entries[name] = data
    return entries


def zip_bytes(entries, root):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(f"{root}/{name}", data)
    return bio.getvalue()


def write_tree(root, entries):
    for name, data in entries.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return root


def check_warnings(res, where):
    """Exactly the bad files, each named relative to the book's root."""
    ws = res.get("warnings")
    assert isinstance(ws, list), f"{where}: no warnings list in {res}"
    assert res.get("warnings_omitted") == 0, res
    got = {w["file"]: w for w in ws}
    want = bad_files()
    assert set(got) == set(want), f"{where}: warned about {sorted(got)}, expected {sorted(want)}"
    for name, (_, action, word) in want.items():
        w = got[name]
        assert set(w) == {"file", "action", "message"}, w
        assert w["action"] == action, w
        assert word in w["message"], w
        assert not w["file"].startswith("/") and "uploads" not in w["file"], w


@pytest.fixture(scope="module")
def rsrv(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("import-robust"), env=jobs_env())
    yield srv
    rc = srv.stop()
    assert rc == 0, f"server exited with {rc}; log:\n{srv.log_tail()}"


def upload(srv, filename, data, ctype):
    r = srv.post(IMPORT, files={"file": (filename, data, ctype)}, headers=ADMIN)
    j = wait_job(srv, accepted_id(r), timeout=15)
    assert j["status"] == "completed", f"{filename}: the import did not complete: {j}"
    return j["result"]


def chapters(srv, book_id):
    r = srv.get(f"/api/v1/books/{book_id}/chapters", params={"limit": 100})
    assert r.status_code == 200, r.text
    out = []
    for c in r.json()["items"]:
        g = srv.get(f"/api/v1/books/{book_id}/chapters/{c['id']}")
        assert g.status_code == 200, g.text
        out.append(g.json())
    return out


def assert_no_tags(text, where):
    for t in TAG_TEXT:
        assert t not in text, f"{where}: JSX text {t!r} survived:\n{text}"


@pytest.fixture(scope="module")
def zipped(rsrv):
    title = uniq("Robust Zip")
    res = upload(rsrv, "robust.zip", zip_bytes(book_entries(title), "physical-ai"), "application/zip")
    return title, res


@pytest.fixture(scope="module")
def jsx_book(rsrv):
    """Only clean files: what is checked here is the JSX alone."""
    entries = {k: v for k, v in book_entries(uniq("JSX Zip")).items() if k not in bad_files()}
    return upload(rsrv, "jsx.zip", zip_bytes(entries, "jsx-book"), "application/zip")


def test_zip_upload_imports_the_rest_and_warns(rsrv, zipped):
    title, res = zipped
    assert UUID7_RE.match(res["book_id"]), res
    assert res["title"] == title
    check_warnings(res, "POST /books/import")
    assert str(rsrv.data_dir) not in json.dumps(res), "the result names a server path"
    chs = chapters(rsrv, res["book_id"])
    assert [c["title"] for c in chs] == ["Intro", "Sensors", "Latin"], [c["title"] for c in chs]
    assert f"A caf{FFFD} on the corner" in chs[2]["content_markdown"]


def test_multiline_jsx_gone_from_chapter(rsrv, jsx_book):
    res = jsx_book
    ch = [c for c in chapters(rsrv, res["book_id"]) if c["title"] == "Sensors"][0]
    md = ch["content_markdown"]
    assert_no_tags(md, "content_markdown")
    assert "Gyroscope calibration removes the bias" in md, md
    assert "```jsx\n<Example prop={1} />\n```" in md, "JSX inside a code fence must stay"


def test_multiline_jsx_gone_from_search_and_chat(rsrv, jsx_book):
    res = jsx_book
    r = rsrv.post("/api/v1/chatbot/query", headers=ADMIN, timeout=30,
                  json={"question": "What does gyroscope calibration remove?", "book_id": res["book_id"]})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["citations"], a
    assert_no_tags(a["answer"], "chat answer")
    for c in a["citations"]:
        assert_no_tags(c["quote"], "chat citation")
    r = rsrv.get("/api/v1/search", params={"q": "gyroscope calibration", "book_id": res["book_id"]})
    assert r.status_code == 200, r.text
    hits = r.json()["results"]
    assert hits, "the chapter was not indexed"
    for h in hits:
        assert_no_tags(h["text"], "search hit")


def test_zip_upload_strips_jsx_beside_bad_files(rsrv, zipped):
    _, res = zipped
    ch = [c for c in chapters(rsrv, res["book_id"]) if c["title"] == "Sensors"][0]
    assert_no_tags(ch["content_markdown"], "content_markdown")


def test_cli_import_reports_warnings(rsrv, tmp_path):
    title = uniq("Robust Folder")
    root = write_tree(tmp_path / "book", book_entries(title))
    p = run_bookd(["import", str(root)], data_dir=rsrv.data_dir)
    assert p.returncode == 0, f"bookd import failed: {p.stderr}"
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stdout
    res = json.loads(lines[0])
    check_warnings(res, "bookd import")
    assert res["chapters"] == 3, res
    for name in bad_files():
        assert name in p.stderr, f"stderr does not name {name}: {p.stderr!r}"
    md = [c for c in chapters(rsrv, res["book_id"]) if c["title"] == "Sensors"][0]["content_markdown"]
    assert_no_tags(md, "content_markdown (CLI)")


def test_single_markdown_upload_cleaned_names_the_upload(rsrv):
    name = uniq("notes") + ".md"
    data = "# Notes\n\nA na\xefve but mostly fine line of text, long enough.\n".encode("latin-1")
    res = upload(rsrv, name, data, "text/markdown")
    assert res["warnings"] == [{"file": name, "action": "cleaned",
                                "message": res["warnings"][0]["message"]}], res
    assert "1 invalid UTF-8 byte" in res["warnings"][0]["message"], res
    md = chapters(rsrv, res["book_id"])[0]["content_markdown"]
    assert f"na{FFFD}ve" in md, md


def test_warnings_are_capped(rsrv, tmp_path):
    root = tmp_path / "many"
    entries = {"book.json": json.dumps({"title": uniq("Many Bad")}), "a.md": "# A\n\ntext\n"}
    entries.update({f"bin/{i:03d}.md": b"\x00" for i in range(103)})
    write_tree(root, entries)
    p = run_bookd(["import", str(root)], data_dir=rsrv.data_dir)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert len(res["warnings"]) == 100, len(res["warnings"])
    assert res["warnings_omitted"] == 3, res
    assert res["warnings"][0] == {"file": "bin/000.md", "action": "skipped",
                                  "message": "contains NUL bytes (not a text file)"}
    assert res["chapters"] == 1


def test_openapi_documents_warnings(zipped):
    from test_openapi import SPEC, conform
    schema = SPEC["components"]["schemas"]["BookImportResult"]
    assert {"warnings", "warnings_omitted"} <= set(schema["required"]), schema["required"]
    problems = conform(schema, zipped[1])
    assert not problems, problems
