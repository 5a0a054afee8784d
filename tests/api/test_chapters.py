"""Chapters: CRUD, numbering, ETags, sections/anchors, word counts."""
import time

import pytest

from conftest import ADMIN, assert_chapter_shape, assert_error

NIL7 = "00000000-0000-7000-8000-000000000000"


def chapters_url(book_id):
    return f"/api/v1/books/{book_id}/chapters"


def book_chapter_count(server, book_id):
    r = server.get(f"/api/v1/books/{book_id}")
    assert r.status_code == 200
    return r.json()["chapter_count"]


# --------------------------------------------------------------- create

def test_create_chapter_shape(server, book):
    r = server.post(chapters_url(book["id"]),
                    json={"title": "First Steps", "content_markdown": "Hello there world."},
                    headers=ADMIN)
    assert r.status_code == 201, r.text
    c = r.json()
    assert_chapter_shape(c)
    assert c["book_id"] == book["id"]
    assert c["number"] == 1
    assert c["title"] == "First Steps"
    assert c["content_markdown"] == "Hello there world."
    assert c["word_count"] == 3
    assert c["sections"] == []
    assert c["summary"] is None or isinstance(c["summary"], str)
    assert c["audio_url"] is None or isinstance(c["audio_url"], str)


def test_default_numbers_and_chapter_count(server, book):
    nums = [server.add_chapter(book["id"])["number"] for _ in range(3)]
    assert nums == [1, 2, 3]
    assert book_chapter_count(server, book["id"]) == 3


def test_explicit_number_then_default_is_last_plus_one(server, book):
    c5 = server.add_chapter(book["id"], number=5)
    assert c5["number"] == 5
    nxt = server.add_chapter(book["id"])
    assert nxt["number"] == 6
    c2 = server.add_chapter(book["id"], number=2)
    assert c2["number"] == 2
    assert server.add_chapter(book["id"])["number"] == 7


def test_empty_content_allowed(server, book):
    c = server.add_chapter(book["id"], title="Blank", content_markdown="")
    assert c["content_markdown"] == ""
    assert c["word_count"] == 0
    assert c["sections"] == []


def test_duplicate_number_conflict(server, book):
    server.add_chapter(book["id"], number=1, title="Original One")
    r = server.post(chapters_url(book["id"]),
                    json={"title": "Usurper", "content_markdown": "x", "number": 1},
                    headers=ADMIN)
    assert_error(r, 409, "conflict")
    items = server.get(chapters_url(book["id"])).json()["items"]
    assert [c["title"] for c in items] == ["Original One"]
    assert book_chapter_count(server, book["id"]) == 1


@pytest.mark.parametrize("payload,field", [
    ({"content_markdown": "x"}, "title"),
    ({"title": "", "content_markdown": "x"}, "title"),
    ({"title": "No content"}, "content_markdown"),
    ({"title": "T", "content_markdown": "x", "number": 0}, "number"),
    ({"title": "T", "content_markdown": "x", "number": -1}, "number"),
    ({"title": "T", "content_markdown": "x", "number": "two"}, "number"),
    ({"title": 7, "content_markdown": "x"}, "title"),
    ({"title": "T", "content_markdown": 7}, "content_markdown"),
])
def test_create_chapter_validation(server, book, payload, field):
    r = server.post(chapters_url(book["id"]), json=payload, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    assert any(d.get("field") == field for d in err["details"]), err
    assert server.get(chapters_url(book["id"])).json()["items"] == []
    assert book_chapter_count(server, book["id"]) == 0


def test_create_chapter_unknown_book_404(server):
    r = server.post(chapters_url(NIL7), json={"title": "x", "content_markdown": ""},
                    headers=ADMIN)
    assert_error(r, 404, "not_found")


# ----------------------------------------------------------------- read

def test_list_chapters_ordered_without_content(server, book):
    server.add_chapter(book["id"], number=3, title="Three")
    server.add_chapter(book["id"], number=1, title="One")
    server.add_chapter(book["id"], number=2, title="Two")
    r = server.get(chapters_url(book["id"]))
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"items", "next_cursor"}
    assert body["next_cursor"] is None
    assert [c["number"] for c in body["items"]] == [1, 2, 3]
    assert [c["title"] for c in body["items"]] == ["One", "Two", "Three"]
    for c in body["items"]:
        assert "content_markdown" not in c
        assert_chapter_shape(c, with_content=False)
        assert c["book_id"] == book["id"]


def test_list_chapters_unknown_book_404(server):
    assert_error(server.get(chapters_url(NIL7)), 404, "not_found")


def test_get_chapter_by_id_and_number(server, book):
    server.add_chapter(book["id"], title="Ch one")
    c = server.add_chapter(book["id"], title="Ch two", content_markdown="## Part\n\nBody text")
    by_id = server.get(f"{chapters_url(book['id'])}/{c['id']}")
    by_num = server.get(f"{chapters_url(book['id'])}/2")
    assert by_id.status_code == 200 and by_num.status_code == 200
    assert by_id.json() == by_num.json() == c


def test_get_chapter_not_found(server, book):
    other = server.create_book()
    oc = server.add_chapter(other["id"])
    server.add_chapter(book["id"])
    base = chapters_url(book["id"])
    assert_error(server.get(f"{base}/99"), 404, "not_found")
    assert_error(server.get(f"{base}/{NIL7}"), 404, "not_found")
    # a chapter id that belongs to another book
    assert_error(server.get(f"{base}/{oc['id']}"), 404, "not_found")


# ----------------------------------------------------------------- etag

def test_etag_conditional_get(server, book):
    c = server.add_chapter(book["id"], title="Etag", content_markdown="version one")
    url = f"{chapters_url(book['id'])}/{c['id']}"
    r1 = server.get(url)
    etag = r1.headers.get("ETag")
    assert etag, "no ETag header"
    assert not etag.startswith("W/"), f"ETag must be strong: {etag}"
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2, etag

    r2 = server.get(url, headers={"If-None-Match": etag})
    assert r2.status_code == 304
    assert r2.content == b""

    # by number too
    r3 = server.get(f"{chapters_url(book['id'])}/{c['number']}", headers={"If-None-Match": etag})
    assert r3.status_code == 304

    r4 = server.get(url, headers={"If-None-Match": '"something-else"'})
    assert r4.status_code == 200
    assert r4.json()["content_markdown"] == "version one"

    time.sleep(0.01)
    u = server.put(url, json={"title": "Etag", "content_markdown": "version two"}, headers=ADMIN)
    assert u.status_code == 200, u.text
    r5 = server.get(url, headers={"If-None-Match": etag})
    assert r5.status_code == 200
    assert r5.json()["content_markdown"] == "version two"
    assert r5.headers.get("ETag") and r5.headers["ETag"] != etag


def test_etag_differs_between_chapters(server, book):
    a = server.add_chapter(book["id"], content_markdown="same")
    b = server.add_chapter(book["id"], content_markdown="same")
    ea = server.get(f"{chapters_url(book['id'])}/{a['id']}").headers["ETag"]
    eb = server.get(f"{chapters_url(book['id'])}/{b['id']}").headers["ETag"]
    assert ea != eb


# ------------------------------------------------------------------ put

def test_put_replaces_chapter(server, book):
    c = server.add_chapter(book["id"], title="Before", content_markdown="old words here")
    time.sleep(0.01)
    url = f"{chapters_url(book['id'])}/{c['id']}"
    r = server.put(url, json={"title": "After", "content_markdown": "## New\n\nfresh"},
                   headers=ADMIN)
    assert r.status_code == 200, r.text
    u = r.json()
    assert_chapter_shape(u)
    assert u["id"] == c["id"] and u["number"] == c["number"]
    assert u["title"] == "After"
    assert u["content_markdown"] == "## New\n\nfresh"
    assert [s["anchor"] for s in u["sections"]] == ["new"]
    assert u["updated_at"] > c["updated_at"]
    assert server.get(url).json() == u


def test_put_by_number_and_renumber(server, book):
    c = server.add_chapter(book["id"], title="Movable")
    r = server.put(f"{chapters_url(book['id'])}/{c['number']}",
                   json={"title": "Moved", "content_markdown": "x", "number": 10},
                   headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["number"] == 10
    g = server.get(f"{chapters_url(book['id'])}/10")
    assert g.status_code == 200 and g.json()["id"] == c["id"]
    assert_error(server.get(f"{chapters_url(book['id'])}/{c['number']}"), 404, "not_found")


def test_put_missing_title_422_unchanged(server, book):
    c = server.add_chapter(book["id"], title="Keep me", content_markdown="keep")
    url = f"{chapters_url(book['id'])}/{c['id']}"
    r = server.put(url, json={"content_markdown": "changed"}, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    assert any(d.get("field") == "title" for d in err["details"]), err
    assert server.get(url).json() == c


def test_put_missing_content_422(server, book):
    c = server.add_chapter(book["id"], title="Keep me too", content_markdown="keep")
    url = f"{chapters_url(book['id'])}/{c['id']}"
    r = server.put(url, json={"title": "changed"}, headers=ADMIN)
    assert_error(r, 422, "validation_failed")
    assert server.get(url).json() == c


# --------------------------------------------------------------- delete

def test_delete_chapter(server, book):
    a = server.add_chapter(book["id"], title="Stay")
    b = server.add_chapter(book["id"], title="Go")
    assert book_chapter_count(server, book["id"]) == 2
    r = server.delete(f"{chapters_url(book['id'])}/{b['id']}", headers=ADMIN)
    assert r.status_code == 204
    assert r.content == b""
    assert_error(server.get(f"{chapters_url(book['id'])}/{b['id']}"), 404, "not_found")
    assert book_chapter_count(server, book["id"]) == 1
    items = server.get(chapters_url(book["id"])).json()["items"]
    assert [c["id"] for c in items] == [a["id"]]
    r = server.delete(f"{chapters_url(book['id'])}/1", headers=ADMIN)
    assert r.status_code == 204
    assert book_chapter_count(server, book["id"]) == 0
    assert_error(server.delete(f"{chapters_url(book['id'])}/1", headers=ADMIN), 404, "not_found")


# ------------------------------------------------------ sections/anchors

def test_sections_anchors_and_duplicates(server, book):
    md = (
        "Intro paragraph.\n\n"
        "## Hello World!\n\ntext\n\n"
        "## Hello World\n\ntext\n\n"
        "### Getting Started: Part 2\n\ntext\n\n"
        "## Hello World\n\nmore\n\n"
        "#### What's New?\n\nend\n"
    )
    c = server.add_chapter(book["id"], content_markdown=md)
    assert c["sections"] == [
        {"anchor": "hello-world", "heading": "Hello World!", "level": 2},
        {"anchor": "hello-world-1", "heading": "Hello World", "level": 2},
        {"anchor": "getting-started-part-2", "heading": "Getting Started: Part 2", "level": 3},
        {"anchor": "hello-world-2", "heading": "Hello World", "level": 2},
        {"anchor": "whats-new", "heading": "What's New?", "level": 4},
    ]
    # the same data when fetched again
    g = server.get(f"{chapters_url(book['id'])}/{c['id']}").json()
    assert g["sections"] == c["sections"]


def test_sections_uppercase_and_inline_markup(server, book):
    md = "## The `API` Reference\n\nx\n\n## UPPER case **Bold**\n"
    c = server.add_chapter(book["id"], content_markdown=md)
    anchors = [s["anchor"] for s in c["sections"]]
    assert anchors == ["the-api-reference", "upper-case-bold"]
    assert [s["level"] for s in c["sections"]] == [2, 2]


def test_heading_inside_code_fence_is_not_a_section(server, book):
    md = "## Real\n\n```bash\n# just a comment\necho hi\n```\n\n## Also Real\n"
    c = server.add_chapter(book["id"], content_markdown=md)
    assert [s["anchor"] for s in c["sections"]] == ["real", "also-real"]


# ------------------------------------------------------------ word count

def test_word_count_ignores_markdown_syntax(server, book):
    md = (
        "Alpha **beta** _gamma_ `delta` [epsilon](https://example.com/a/b/c)\n"
        "\n"
        "- zeta\n"
        "- eta\n"
    )
    c = server.add_chapter(book["id"], content_markdown=md)
    assert c["word_count"] == 7


def test_word_count_includes_heading_text(server, book):
    md = "## Heading Words\n\none two three\n\n> quoted four\n"
    c = server.add_chapter(book["id"], content_markdown=md)
    assert c["word_count"] == 7


def test_unicode_content_roundtrip(server, book):
    md = "Grüße aus Köln — 日本語のテキスト 🚀\n"
    c = server.add_chapter(book["id"], title="Ünïcödé", content_markdown=md)
    g = server.get(f"{chapters_url(book['id'])}/{c['id']}").json()
    assert g["content_markdown"] == md
    assert g["title"] == "Ünïcödé"
