"""GET /api/content/chapters/{doc id}: the chapter a Docusaurus doc id names
(the path of its file under the imported folder or its docs/ folder, without
.md/.mdx; a folder's index.md), as Markdown with Accept: text/markdown, else
JSON {id, title, content, content_markdown, book_id, number}; ?book= picks
one of several books with the same id; unknown ids are 404 in the API's
error format. Both backends (BOOKD_TEST_DB=postgres for PostgreSQL)."""
import pytest

from conftest import UUID7_RE, start_server, uniq
from test_search_common import import_sample

FILES = {
    "docs/intro.md": "---\ntitle: Welcome\nsidebar_position: 1\n---\n\n# Welcome\n\nIntro text INTRO.\n",
    "docs/module-1/chapter-1.md": "# Chapter One\n\nFirst chapter M1C1.\n\n```python\nprint('keep')\n```\n",
    "docs/module-1/chapter-2.mdx": "# Chapter Two\n\nSecond chapter M1C2.\n",
    "docs/module-2/index.md": "# Module Two\n\nOverview M2.\n",
    "docs/a/b/c/deep.md": "# Deep\n\nFour segments DEEP.\n",
}


def write_site(root, tag):
    for rel, text in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text.replace("INTRO", tag), encoding="utf-8")
    (root / "book.json").write_text('{"title": "%s"}' % uniq("site"), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("content-chapters"))
    root = write_site(tmp_path_factory.mktemp("site"), "first")
    book = import_sample(srv, root)
    yield srv, book, root
    rc = srv.stop()
    assert rc == 0, f"server exited with {rc}:\n{srv.log_tail()}"


def get(srv, doc, markdown=False, **params):
    headers = {"Accept": "text/markdown"} if markdown else {}
    return srv.get(f"/api/content/chapters/{doc}", headers=headers, params=params)


@pytest.mark.parametrize("doc, marker", [
    ("intro", "first"),
    ("module-1/chapter-1", "M1C1"),
    ("module-1/chapter-2", "M1C2"),
    ("module-1/chapter-1.md", "M1C1"),
    ("module-2", "M2"),
    ("a/b/c/deep", "DEEP"),
])
def test_markdown_by_doc_id(site, doc, marker):
    srv, book, _ = site
    r = get(srv, doc, markdown=True)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert marker in r.content.decode("utf-8")


def test_json_by_doc_id(site):
    srv, book, _ = site
    r = get(srv, "module-1/chapter-1")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"id", "title", "content", "content_markdown", "book_id", "number"}, body
    assert UUID7_RE.match(body["id"]) and body["book_id"] == book
    assert body["title"] == "Chapter One" and isinstance(body["number"], int)
    assert body["content"] == body["content_markdown"] and "print('keep')" in body["content"]
    ch = srv.get(f"/api/v1/books/{book}/chapters/{body['id']}").json()
    assert ch["content_markdown"] == body["content_markdown"]
    md = get(srv, "module-1/chapter-1", markdown=True).content.decode("utf-8")
    assert md == body["content_markdown"]


@pytest.mark.parametrize("doc", ["nope", "module-1/nope", "module-1", "a/b/c/d/e", "../intro"])
def test_unknown_doc_id_is_404(site, doc):
    srv, _, _ = site
    for markdown in (False, True):
        r = get(srv, doc, markdown=markdown)
        assert r.status_code == 404, r.text
        err = r.json()["error"]
        assert err["code"] == "not_found" and err["message"], err


def test_book_param_when_two_books_share_an_id(site, tmp_path):
    srv, book, _ = site
    other = import_sample(srv, write_site(tmp_path / "second", "second"))
    r = get(srv, "intro", markdown=True)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "conflict"
    for b, marker in ((book, "first"), (other, "second")):
        r = get(srv, "intro", markdown=True, book=b)
        assert r.status_code == 200, r.text
        assert marker in r.text
    r = get(srv, "intro", book=other)
    assert r.json()["book_id"] == other
    assert get(srv, "intro", book="not-a-book").status_code == 404
