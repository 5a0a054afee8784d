"""ISBN lookup and validation: GET /api/v1/books/isbn/{isbn}."""
from urllib.parse import quote

import pytest

from conftest import (ADMIN, assert_error, hyphenate13, norm_isbn,
                      random_isbn13, random_isbn_pair, uniq)


def lookup(server, isbn):
    return server.get("/api/v1/books/isbn/" + quote(isbn, safe=""))


def test_lookup_by_isbn13_forms(server):
    i13 = random_isbn13()
    b = server.create_book(isbns=[i13])
    spaced = " ".join(hyphenate13(i13).split("-"))
    for form in (i13, hyphenate13(i13), spaced):
        r = lookup(server, form)
        assert r.status_code == 200, (form, r.text)
        assert r.json()["id"] == b["id"]
        assert r.json() == server.get(f"/api/v1/books/{b['id']}").json()


def test_isbn10_stored_found_by_isbn13(server):
    i10, i13 = random_isbn_pair()
    b = server.create_book(isbns=[i10])
    assert b["isbns"][0]["isbn_type"] == "isbn10"
    assert norm_isbn(b["isbns"][0]["isbn"]) == i10
    for form in (i13, hyphenate13(i13), i10):
        r = lookup(server, form)
        assert r.status_code == 200, (form, r.text)
        assert r.json()["id"] == b["id"]


def test_isbn13_stored_found_by_isbn10(server):
    i10, i13 = random_isbn_pair()
    b = server.create_book(isbns=[i13])
    r = lookup(server, i10)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == b["id"]


def test_documented_example_pair(server):
    # 0-306-40615-2 <-> 978-0-306-40615-7 (only this test uses this ISBN on the shared server)
    b = server.create_book(title=uniq("Example pair"), isbns=["0-306-40615-2"])
    r = lookup(server, "978-0-306-40615-7")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == b["id"]
    r = lookup(server, "0 306 40615 2")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == b["id"]


def test_isbn10_with_x_check_digit(server):
    isbn = "0-8044-2957-X"
    assert_error(lookup(server, isbn), 404, "not_found")
    b = server.create_book(isbns=[isbn])
    assert b["isbns"][0]["isbn_type"] == "isbn10"
    assert norm_isbn(b["isbns"][0]["isbn"]) == "080442957X"
    r = lookup(server, isbn)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == b["id"]
    # the ISBN-13 equivalent of 080442957X is 9780804429573
    r = lookup(server, "978-0-8044-2957-3")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == b["id"]


def test_book_with_multiple_isbns(server):
    a, b13 = random_isbn13(), random_isbn13()
    b = server.create_book(isbns=[a, b13])
    assert sorted(norm_isbn(x["isbn"]) for x in b["isbns"]) == sorted([a, b13])
    assert lookup(server, a).json()["id"] == b["id"]
    assert lookup(server, b13).json()["id"] == b["id"]


def test_valid_unknown_isbn_404(server):
    assert_error(lookup(server, random_isbn13()), 404, "not_found")
    i10, _ = random_isbn_pair()
    assert_error(lookup(server, i10), 404, "not_found")


@pytest.mark.parametrize("isbn,word", [
    ("978-0-306-40615-8", "checksum"),
    ("9780306406158", "checksum"),
    ("0-306-40615-3", "checksum"),
    ("12345", "length"),
    ("97803064061571", "length"),
    ("030640615", "length"),
    ("97803064061X7", "character"),
    ("030640X152", "character"),
    ("978030640615A", "character"),
])
def test_invalid_isbn_lookup_422(server, isbn, word):
    err = assert_error(lookup(server, isbn), 422, "validation_failed")
    assert word in err["message"].lower(), err


@pytest.mark.parametrize("isbn,word", [
    ("978-0-306-40615-8", "checksum"),
    ("12345", "length"),
    ("97803064061X7", "character"),
])
def test_invalid_isbn_on_create_names_check(server, isbn, word):
    tag = uniq("isbncheck")
    r = server.post("/api/v1/books", json={"title": tag, "isbns": [isbn]}, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    d = [x for x in err["details"] if x.get("field") == "isbns[0]"]
    assert d and word in d[0]["message"].lower(), err
    assert server.books_titled(tag) == []
