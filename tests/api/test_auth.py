"""Write authorization: X-API-Key against BOOKD_API_KEY; 403 when unset."""
import pytest

from conftest import ADMIN, assert_error, uniq

BAD_KEYS = [None, "wrong-key", "TEST-ADMIN-KEY", "test-admin-ke", ""]


def _hdr(key):
    return {} if key is None else {"X-API-Key": key}


@pytest.mark.parametrize("key", BAD_KEYS)
def test_create_book_requires_key(server, key):
    tag = uniq("noauth")
    r = server.post("/api/v1/books", json={"title": tag}, headers=_hdr(key))
    assert_error(r, 401, "unauthorized")
    assert server.books_titled(tag) == []


def test_bearer_is_not_the_api_key(server):
    tag = uniq("bearer")
    r = server.post("/api/v1/books", json={"title": tag},
                    headers={"Authorization": "Bearer wrong"})
    assert_error(r, 401, "unauthorized")
    assert server.books_titled(tag) == []


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_patch_and_delete_require_key(server, book, key):
    url = f"/api/v1/books/{book['id']}"
    assert_error(server.patch(url, json={"title": "hijacked"}, headers=_hdr(key)),
                 401, "unauthorized")
    assert_error(server.delete(url, headers=_hdr(key)), 401, "unauthorized")
    assert server.get(url).json() == book


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_chapter_writes_require_key(server, book, key):
    c = server.add_chapter(book["id"], title="Guarded", content_markdown="safe")
    base = f"/api/v1/books/{book['id']}/chapters"
    assert_error(server.post(base, json={"title": "x", "content_markdown": ""},
                             headers=_hdr(key)), 401, "unauthorized")
    assert_error(server.put(f"{base}/{c['id']}", json={"title": "x", "content_markdown": ""},
                            headers=_hdr(key)), 401, "unauthorized")
    assert_error(server.delete(f"{base}/{c['id']}", headers=_hdr(key)), 401, "unauthorized")
    items = server.get(base).json()["items"]
    assert [i["id"] for i in items] == [c["id"]]
    assert server.get(f"{base}/{c['id']}").json() == c


def test_reads_need_no_key(server, book):
    assert server.get("/api/v1/books").status_code == 200
    assert server.get(f"/api/v1/books/{book['id']}").status_code == 200
    assert server.get(f"/api/v1/books/{book['id']}/chapters").status_code == 200


def test_correct_key_works(server):
    r = server.post("/api/v1/books", json={"title": uniq("authed")}, headers=ADMIN)
    assert r.status_code == 201


def test_no_master_key_configured_old_key_is_no_credential(server_factory, tmp_path):
    """Without BOOKD_API_KEY the former master key is just an unknown key: 401,
    like an anonymous write (writes need an editor's token or a write key)."""
    data = tmp_path / "noauth-data"
    # seed a book with a keyed server, then restart the same data dir without a key
    srv = server_factory(data_dir=data)
    b = srv.create_book(title=uniq("seeded"))
    c = srv.add_chapter(b["id"], title="Seeded chapter")
    assert srv.stop() == 0

    srv = server_factory(data_dir=data, unset=("BOOKD_API_KEY",))
    for hdr in ({}, ADMIN, {"X-API-Key": "anything"}):
        assert_error(srv.post("/api/v1/books", json={"title": uniq("forbidden")}, headers=hdr),
                     401, "unauthorized")
        assert_error(srv.patch(f"/api/v1/books/{b['id']}", json={"title": "x"}, headers=hdr),
                     401, "unauthorized")
        assert_error(srv.delete(f"/api/v1/books/{b['id']}", headers=hdr), 401, "unauthorized")
        base = f"/api/v1/books/{b['id']}/chapters"
        assert_error(srv.post(base, json={"title": "x", "content_markdown": ""}, headers=hdr),
                     401, "unauthorized")
        assert_error(srv.put(f"{base}/1", json={"title": "x", "content_markdown": ""},
                             headers=hdr), 401, "unauthorized")
        assert_error(srv.delete(f"{base}/1", headers=hdr), 401, "unauthorized")
    # reads still work and nothing changed
    g = srv.get(f"/api/v1/books/{b['id']}")
    assert g.status_code == 200
    assert g.json()["title"] == b["title"]
    assert g.json()["chapter_count"] == 1
    assert srv.get(f"/api/v1/books/{b['id']}/chapters/1").json()["id"] == c["id"]
    assert [x["id"] for x in srv.all_books()] == [b["id"]]
    assert srv.get("/health/ready").status_code == 200
