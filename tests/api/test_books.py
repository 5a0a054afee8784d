"""Books resource: create, read, list/paginate, patch, delete, validation."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (ADMIN, UUID7_RE, assert_book_shape, assert_error,
                      norm_isbn, random_isbn13, random_isbn_pair, hyphenate13,
                      uniq)

NIL7 = "00000000-0000-7000-8000-000000000000"


# --------------------------------------------------------------- create

def test_create_minimal_book_defaults(server):
    title = uniq("Minimal Book")
    r = server.post("/api/v1/books", json={"title": title}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    b = r.json()
    assert_book_shape(b)
    assert b["title"] == title
    assert b["language"] == "en"
    for k in ("author", "edition", "publisher", "pages", "publish_date", "cover_url"):
        assert b[k] is None, f"{k} should be null, got {b[k]!r}"
    assert b["isbns"] == []
    assert b["chapter_count"] == 0
    assert b["created_at"] == b["updated_at"] or b["updated_at"] >= b["created_at"]
    loc = r.headers.get("Location")
    assert loc and loc.endswith(f"/api/v1/books/{b['id']}"), loc


def test_create_full_book_and_get_roundtrip(server):
    i13 = random_isbn13()
    body = {
        "title": uniq("Full Book ü – 日本"),
        "author": "Ada Lövelace",
        "language": "pt-BR",
        "publisher": "Example Press",
        "pages": 321,
        "publish_date": "2024-05-01",
        "cover_url": "https://example.com/cover.png",
        "isbns": [hyphenate13(i13)],
    }
    r = server.post("/api/v1/books", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    b = r.json()
    assert_book_shape(b)
    for k in ("title", "author", "language", "publisher", "pages", "publish_date", "cover_url"):
        assert b[k] == body[k], k
    assert len(b["isbns"]) == 1
    assert norm_isbn(b["isbns"][0]["isbn"]) == i13
    assert b["isbns"][0]["isbn_type"] == "isbn13"

    g = server.get(f"/api/v1/books/{b['id']}")
    assert g.status_code == 200
    assert g.json() == b


def test_ids_are_distinct_uuid7(server):
    ids = {server.create_book()["id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(UUID7_RE.match(i) for i in ids)


def test_title_500_chars_ok_501_rejected(server):
    ok = ("T" * 500 + uniq(""))[-500:]
    assert len(ok) == 500
    r = server.post("/api/v1/books", json={"title": ok}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["title"] == ok

    tag = uniq("long")
    too_long = (tag + "x" * 600)[:501]
    r = server.post("/api/v1/books", json={"title": too_long}, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    assert any(d.get("field") == "title" for d in err["details"]), err
    assert server.books_titled(tag) == []


def test_title_multibyte_500_chars_ok(server):
    # 500 characters, not 500 bytes
    title = ("é" * 488 + uniq("")[:12])[:500]
    r = server.post("/api/v1/books", json={"title": title}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["title"] == title


@pytest.mark.parametrize("payload,field", [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": None}, "title"),
    ({"title": "ok", "language": "english1"}, "language"),
    ({"title": "ok", "language": "e"}, "language"),
    ({"title": "ok", "language": "en_US"}, "language"),
    ({"title": "ok", "pages": 0}, "pages"),
    ({"title": "ok", "pages": -3}, "pages"),
    ({"title": "ok", "pages": 1.5}, "pages"),
])
def test_create_validation(server, payload, field):
    tag = uniq("invalid")
    if payload.get("title") == "ok":
        payload = dict(payload, title=tag)
    r = server.post("/api/v1/books", json=payload, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    fields = [d.get("field") for d in err["details"]]
    assert field in fields, err
    for d in err["details"]:
        assert isinstance(d.get("message"), str) and d["message"]
    assert server.books_titled(tag) == []


@pytest.mark.parametrize("lang", ["en", "de", "fil", "pt-BR", "zh-Hant-TW", "en-US"])
def test_language_accepted(server, lang):
    b = server.create_book(language=lang)
    assert b["language"] == lang


def test_invalid_isbn_in_list(server):
    tag = uniq("badisbn")
    r = server.post("/api/v1/books",
                    json={"title": tag, "isbns": ["978-0-306-40615-8"]}, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    d = [x for x in err["details"] if x.get("field") == "isbns[0]"]
    assert d, err
    assert "checksum" in d[0]["message"].lower()
    assert server.books_titled(tag) == []


def test_invalid_isbn_second_element(server):
    tag = uniq("badisbn2")
    r = server.post("/api/v1/books",
                    json={"title": tag, "isbns": [random_isbn13(), "12345"]}, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    assert any(x.get("field") == "isbns[1]" for x in err["details"]), err
    assert server.books_titled(tag) == []


def test_duplicate_isbn_conflict(server):
    i13 = random_isbn13()
    first = server.create_book(isbns=[i13])
    tag = uniq("dupisbn")
    r = server.post("/api/v1/books", json={"title": tag, "isbns": [hyphenate13(i13)]},
                    headers=ADMIN)
    assert_error(r, 409, "conflict")
    assert server.books_titled(tag) == []
    assert server.get(f"/api/v1/books/{first['id']}").status_code == 200


def test_equivalent_isbn10_conflicts_with_isbn13(server):
    i10, i13 = random_isbn_pair()
    server.create_book(isbns=[i13])
    tag = uniq("dupisbn10")
    r = server.post("/api/v1/books", json={"title": tag, "isbns": [i10]}, headers=ADMIN)
    assert_error(r, 409, "conflict")
    assert server.books_titled(tag) == []


# ----------------------------------------------------------------- read

def test_get_unknown_book_404(server):
    assert_error(server.get(f"/api/v1/books/{NIL7}"), 404, "not_found")


@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "x" * 200])
def test_get_non_uuid_404(server, bad):
    assert_error(server.get(f"/api/v1/books/{bad}"), 404, "not_found")


# ----------------------------------------------------------------- list

def test_list_shape(server, book):
    r = server.get("/api/v1/books", params={"limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"items", "next_cursor"}
    assert isinstance(body["items"], list) and 1 <= len(body["items"]) <= 5
    for b in body["items"]:
        assert_book_shape(b)


def test_list_default_limit_is_20(server):
    for _ in range(21):
        server.create_book()
    r = server.get("/api/v1/books")
    assert r.status_code == 200
    body = r.json()
    assert len(body["items"]) == 20
    assert isinstance(body["next_cursor"], str) and body["next_cursor"]


def test_list_limit_100_allowed(server):
    r = server.get("/api/v1/books", params={"limit": 100})
    assert r.status_code == 200
    assert len(r.json()["items"]) <= 100


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5"])
def test_list_bad_limit_422(server, limit):
    r = server.get("/api/v1/books", params={"limit": limit})
    assert_error(r, 422, "validation_failed")


def test_list_garbage_cursor_rejected(server):
    r = server.get("/api/v1/books", params={"cursor": "!!not-a-cursor!!"})
    assert r.status_code in (400, 422), r.text
    assert_error(r, r.status_code, "bad_request" if r.status_code == 400 else "validation_failed")


def test_pagination_walk(server):
    mine = [server.create_book(title=uniq("page walk"))["id"] for _ in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = server.get("/api/v1/books", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 2
        seen.extend(b["id"] for b in body["items"])
        cursor = body["next_cursor"]
        pages += 1
        assert pages < 2000
        if cursor is None:
            break
        assert body["items"], "non-final page must not be empty"
    assert len(seen) == len(set(seen)), "duplicates while paginating"
    big = [b["id"] for b in server.all_books()]
    assert seen == big, "limit=2 walk and limit=100 walk disagree"
    pos = [seen.index(i) for i in mine]
    assert pos == sorted(pos), "books are not in (ascending) creation order"


# ---------------------------------------------------------------- patch

def test_patch_partial_update(server):
    b = server.create_book(title=uniq("Patch me"), author="Orig Author", pages=10)
    time.sleep(0.01)
    new_title = uniq("Patched")
    r = server.patch(f"/api/v1/books/{b['id']}",
                     json={"title": new_title, "pages": 300}, headers=ADMIN)
    assert r.status_code == 200, r.text
    p = r.json()
    assert_book_shape(p)
    assert p["id"] == b["id"]
    assert p["title"] == new_title
    assert p["pages"] == 300
    assert p["author"] == "Orig Author"
    assert p["language"] == b["language"]
    assert p["created_at"] == b["created_at"]
    assert p["updated_at"] > b["updated_at"]
    assert server.get(f"/api/v1/books/{b['id']}").json() == p


def test_patch_isbns(server):
    b = server.create_book()
    i13 = random_isbn13()
    r = server.patch(f"/api/v1/books/{b['id']}", json={"isbns": [i13]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [norm_isbn(x["isbn"]) for x in r.json()["isbns"]] == [i13]
    assert server.get(f"/api/v1/books/isbn/{i13}").json()["id"] == b["id"]


@pytest.mark.parametrize("payload,field", [
    ({"title": ""}, "title"),
    ({"pages": 0}, "pages"),
    ({"language": "not a lang"}, "language"),
    ({"title": 5}, "title"),
])
def test_patch_invalid_leaves_book_unchanged(server, payload, field):
    b = server.create_book(title=uniq("Patch invalid"), pages=7)
    r = server.patch(f"/api/v1/books/{b['id']}", json=payload, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    assert any(d.get("field") == field for d in err["details"]), err
    assert server.get(f"/api/v1/books/{b['id']}").json() == b


def test_patch_unknown_book_404(server):
    r = server.patch(f"/api/v1/books/{NIL7}", json={"title": "x"}, headers=ADMIN)
    assert_error(r, 404, "not_found")


def test_patch_isbn_conflict_409(server):
    i13 = random_isbn13()
    server.create_book(isbns=[i13])
    b = server.create_book()
    r = server.patch(f"/api/v1/books/{b['id']}", json={"isbns": [i13]}, headers=ADMIN)
    assert_error(r, 409, "conflict")
    assert server.get(f"/api/v1/books/{b['id']}").json() == b


# --------------------------------------------------------------- delete

def test_delete_book(server):
    b = server.create_book()
    server.add_chapter(b["id"], title="Doomed chapter")
    r = server.delete(f"/api/v1/books/{b['id']}", headers=ADMIN)
    assert r.status_code == 204
    assert r.content == b""
    assert_error(server.get(f"/api/v1/books/{b['id']}"), 404, "not_found")
    assert_error(server.get(f"/api/v1/books/{b['id']}/chapters"), 404, "not_found")
    assert_error(server.get(f"/api/v1/books/{b['id']}/chapters/1"), 404, "not_found")
    assert b["id"] not in [x["id"] for x in server.all_books()]
    # deleting again is a 404
    assert_error(server.delete(f"/api/v1/books/{b['id']}", headers=ADMIN), 404, "not_found")


def test_delete_frees_isbn(server):
    i13 = random_isbn13()
    b = server.create_book(isbns=[i13])
    assert server.delete(f"/api/v1/books/{b['id']}", headers=ADMIN).status_code == 204
    assert_error(server.get(f"/api/v1/books/isbn/{i13}"), 404, "not_found")
    b2 = server.create_book(isbns=[i13])
    assert server.get(f"/api/v1/books/isbn/{i13}").json()["id"] == b2["id"]


def test_concurrent_creates(server):
    tag = uniq("concurrent")
    with ThreadPoolExecutor(max_workers=16) as ex:
        results = list(ex.map(lambda i: _make_with_own_session(server, tag, i), range(64)))
    assert all(s == 201 for s, _ in results), [s for s, _ in results]
    ids = {b["id"] for _, b in results}
    assert len(ids) == 64
    listed = [b for b in server.all_books() if b["title"].startswith(tag)]
    assert len(listed) == 64
    server.assert_alive()


def _make_with_own_session(server, tag, i):
    r = requests.post(server.url("/api/v1/books"),
                      json={"title": f"{tag} {i}", "isbns": [random_isbn13()]},
                      headers=ADMIN, timeout=30)
    return r.status_code, r.json()
