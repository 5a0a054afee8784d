"""Bad input: malformed JSON, bad UTF-8, body limits, media types, wrong
types, request smuggling.  After every failure nothing changed and the
server is still alive."""
import json

import pytest

from conftest import ADMIN, API_KEY, assert_error, raw_http, uniq

JSON_ADMIN = {"X-API-Key": API_KEY, "Content-Type": "application/json"}


def post_raw_body(server, path, body: bytes, headers=JSON_ADMIN, method="POST"):
    return server.request(method, path, data=body, headers=headers)


# ---------------------------------------------------------- malformed

@pytest.mark.parametrize("body", [
    b'{"title": "TAG"',
    b'{"title": TAG}',
    b'{"title": "TAG",}',
    b"{'title': 'TAG'}",
    b'{"title": "TAG"} trailing',
    b'',
])
def test_malformed_json_400(server, body):
    tag = uniq("malformed")
    r = post_raw_body(server, "/api/v1/books", body.replace(b"TAG", tag.encode()))
    assert_error(r, 400, "bad_request")
    assert server.books_titled(tag) == []
    server.assert_alive()


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])
def test_invalid_utf8_in_json_400(server, bad):
    tag = uniq("badutf8")
    body = b'{"title": "' + tag.encode() + b" " + bad + b' end"}'
    r = post_raw_body(server, "/api/v1/books", body)
    assert_error(r, 400, "bad_request")
    assert server.books_titled(tag) == []
    server.assert_alive()


def test_invalid_utf8_in_chapter_body_400(server, book):
    body = b'{"title": "ok", "content_markdown": "abc \xff def"}'
    r = post_raw_body(server, f"/api/v1/books/{book['id']}/chapters", body)
    assert_error(r, 400, "bad_request")
    assert server.get(f"/api/v1/books/{book['id']}/chapters").json()["items"] == []


def test_json_escapes_decoded(server):
    tag = uniq("escapes")
    body = ('{"title": "' + tag + ' \\u00e9\\ud83d\\ude80\\n\\"q\\""}').encode()
    r = post_raw_body(server, "/api/v1/books", body)
    assert r.status_code == 201, r.text
    assert r.json()["title"] == tag + ' é🚀\n"q"'


def test_lone_surrogate_escape_rejected(server):
    tag = uniq("surrogate")
    body = ('{"title": "' + tag + ' \\ud83d"}').encode()
    r = post_raw_body(server, "/api/v1/books", body)
    assert r.status_code in (400, 422), r.text
    assert server.books_titled(tag) == []
    server.assert_alive()


# ------------------------------------------------------- not an object

@pytest.mark.parametrize("body", [b"[]", b'"just a string"', b"42", b"null", b"true",
                                  b'[{"title": "x"}]'])
def test_json_not_object_422(server, body):
    r = post_raw_body(server, "/api/v1/books", body)
    assert_error(r, 422, "validation_failed")
    server.assert_alive()


# ---------------------------------------------------------- wrong types

@pytest.mark.parametrize("payload,field", [
    ({"title": 5}, "title"),
    ({"title": ["a"]}, "title"),
    ({"title": "TAG", "pages": "x"}, "pages"),
    ({"title": "TAG", "pages": True}, "pages"),
    ({"title": "TAG", "author": 12}, "author"),
    ({"title": "TAG", "isbns": "9780306406157"}, "isbns"),
    ({"title": "TAG", "isbns": [9780306406157]}, "isbns[0]"),
    ({"title": "TAG", "language": 1}, "language"),
])
def test_wrong_types_422(server, payload, field):
    tag = uniq("wrongtype")
    payload = {k: (tag if v == "TAG" else v) for k, v in payload.items()}
    r = server.post("/api/v1/books", json=payload, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    assert field in [d.get("field") for d in err["details"]], err
    assert server.books_titled(tag) == []


def test_multiple_errors_reported_together(server):
    r = server.post("/api/v1/books", json={"title": 5, "pages": "x"}, headers=ADMIN)
    err = assert_error(r, 422, "validation_failed")
    fields = {d.get("field") for d in err["details"]}
    assert {"title", "pages"} <= fields, err


def test_deeply_nested_json_does_not_crash(server):
    body = b'{"title": "deep", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    r = post_raw_body(server, "/api/v1/books", body)
    assert 400 <= r.status_code < 500, r.status_code
    server.assert_alive()


# --------------------------------------------------------- media type

def test_text_plain_415(server):
    tag = uniq("textplain")
    body = json.dumps({"title": tag}).encode()
    r = post_raw_body(server, "/api/v1/books", body,
                      headers={"X-API-Key": API_KEY, "Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")
    assert server.books_titled(tag) == []


def test_form_urlencoded_415(server):
    tag = uniq("form")
    r = server.post("/api/v1/books", data={"title": tag}, headers=ADMIN)
    assert_error(r, 415, "unsupported_media_type")
    assert server.books_titled(tag) == []


def test_json_with_charset_accepted(server):
    tag = uniq("charset")
    r = post_raw_body(server, "/api/v1/books", json.dumps({"title": tag}).encode(),
                      headers={"X-API-Key": API_KEY,
                               "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text


def test_patch_text_plain_415_unchanged(server, book):
    r = server.patch(f"/api/v1/books/{book['id']}", data=b'{"title":"nope"}',
                     headers={"X-API-Key": API_KEY, "Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")
    assert server.get(f"/api/v1/books/{book['id']}").json() == book


def test_patch_malformed_json_unchanged(server, book):
    r = server.patch(f"/api/v1/books/{book['id']}", data=b'{"title":',
                     headers=JSON_ADMIN)
    assert_error(r, 400, "bad_request")
    assert server.get(f"/api/v1/books/{book['id']}").json() == book


# ---------------------------------------------------------- body size

def _post_raw(port, path, payload: dict, tag):
    body = json.dumps(payload).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nX-API-Key: {API_KEY}\r\n"
            f"X-Request-ID: {tag}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return raw_http(port, head, body)


def _big_book(port, size, tag):
    return _post_raw(port, "/api/v1/books", {"title": tag, "publisher": "a" * size}, tag)


def _big_chapter(port, book_id, size, tag):
    words = ("lorem " * (size // 6 + 1))[:size]
    return _post_raw(port, f"/api/v1/books/{book_id}/chapters",
                     {"title": tag, "content_markdown": words}, tag)


def _check_413(status, headers, body, tag):
    assert status == 413, (status, body[:300])
    err = json.loads(body)["error"]
    assert err["code"] == "payload_too_large"
    assert err["request_id"] == tag == headers.get("x-request-id")


def test_default_limit_1_1_mib_413(server):
    tag = uniq("huge")
    status, headers, body = _big_book(server.port, int(1.1 * 1024 * 1024), tag)
    _check_413(status, headers, body, tag)
    assert server.books_titled(tag) == []
    server.assert_alive()


def test_default_limit_1_1_mib_chapter_413(server, book):
    tag = uniq("hugechap")
    status, headers, body = _big_chapter(server.port, book["id"], int(1.1 * 1024 * 1024), tag)
    _check_413(status, headers, body, tag)
    assert server.get(f"/api/v1/books/{book['id']}/chapters").json()["items"] == []
    server.assert_alive()


def test_default_limit_allows_900_kib_chapter(server, book):
    tag = uniq("large-ok")
    status, headers, body = _big_chapter(server.port, book["id"], 900 * 1024, tag)
    assert status == 201, (status, body[:300])
    c = json.loads(body)
    assert len(c["content_markdown"]) == 900 * 1024
    assert c["word_count"] == len(c["content_markdown"].split())


def test_small_max_body(server_factory):
    srv = server_factory(env={"BOOKD_MAX_BODY": "1024"})
    tag = uniq("small-limit")
    status, headers, body = _big_book(srv.port, 2000, tag)
    _check_413(status, headers, body, tag)
    assert srv.books_titled(tag) == []
    b = srv.create_book(title=uniq("small server book"))
    status, headers, body = _big_chapter(srv.port, b["id"], 700, uniq("under-limit"))
    assert status == 201, (status, body[:300])
    status, headers, body = _big_chapter(srv.port, b["id"], 1500, tag)
    _check_413(status, headers, body, tag)
    items = srv.get(f"/api/v1/books/{b['id']}/chapters").json()["items"]
    assert len(items) == 1
    srv.assert_alive()


def test_small_max_body_via_requests(server_factory):
    srv = server_factory(env={"BOOKD_MAX_BODY": "1024"})
    tag = uniq("small-req")
    r = srv.post("/api/v1/books", json={"title": tag, "publisher": "p" * 3000}, headers=ADMIN)
    assert_error(r, 413, "payload_too_large")
    assert srv.books_titled(tag) == []


# ------------------------------------------------------------ smuggling

def test_content_length_and_transfer_encoding_400(server):
    tag = uniq("smuggle")
    payload = json.dumps({"title": tag}).encode()
    chunked = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
    head = (f"POST /api/v1/books HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nX-API-Key: {API_KEY}\r\n"
            f"X-Request-ID: {tag}\r\n"
            f"Content-Length: {len(chunked)}\r\nTransfer-Encoding: chunked\r\n"
            f"Connection: close\r\n\r\n").encode()
    status, headers, body = raw_http(server.port, head, chunked)
    assert status == 400, (status, body[:300])
    err = json.loads(body)["error"]
    assert err["code"] == "bad_request"
    assert headers.get("x-request-id") == tag == err["request_id"]
    assert server.books_titled(tag) == []
    server.assert_alive()


def test_garbage_request_line_does_not_crash(server):
    status, headers, body = raw_http(server.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert 400 <= status < 500
    server.assert_alive()


def test_invalid_content_length_400(server):
    head = (f"POST /api/v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {API_KEY}\r\nContent-Length: abc\r\nConnection: close\r\n\r\n").encode()
    status, headers, body = raw_http(server.port, head, b'{"title":"x"}')
    assert status == 400, (status, body[:200])
    server.assert_alive()


def test_server_alive_after_bad_input(server):
    server.assert_alive()
    r = server.get("/health/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready"
