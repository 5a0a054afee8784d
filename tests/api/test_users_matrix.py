"""Authorization matrix: every route x every kind of caller.

Callers: anonymous, reader A, reader B, editor, admin (a user token), the
master key, an API key of the editor with write scope limited to book A, and
a read-only API key of reader A.
Each cell gives the expected status; some cells also check *whose* data came
back (the caller's own, never anyone else's)."""
import pytest

from conftest import (
    ADMIN, assert_error, make_user, start_server, uniq, users_env,
)

PRINCIPALS = ["anon", "reader_a", "reader_b", "editor", "admin", "master", "scoped_key",
              "read_key"]
OWNER = {"reader_a": "reader_a", "reader_b": "reader_b", "editor": "editor", "admin": "admin",
         "master": "master", "scoped_key": "editor", "read_key": "reader_a"}  # whose data


class World:
    pass


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("matrix-data"), env=users_env())
    w = World()
    w.srv = srv
    users = {
        "reader_a": make_user(srv, "reader", tag="ra"),
        "reader_b": make_user(srv, "reader", tag="rb"),
        "editor": make_user(srv, "editor", tag="ed"),
        "admin": make_user(srv, "admin", tag="ad"),
    }
    w.headers = {"anon": {}, "master": dict(ADMIN)}
    w.ids = {"master": srv.get("/api/v1/auth/me", headers=ADMIN).json()["id"]}
    for name, u in users.items():
        w.headers[name] = u["headers"]
        w.ids[name] = u["id"]
    w.book_a = srv.create_book(title=uniq("book A"))["id"]
    w.book_b = srv.create_book(title=uniq("book B"))["id"]
    w.ch_a = srv.add_chapter(w.book_a, title="A one")["id"]
    w.ch_b = srv.add_chapter(w.book_b, title="B one")["id"]
    r = srv.post("/api/v1/auth/api-keys", headers=w.headers["editor"],
                 json={"name": "scoped", "scopes": ["read", "write"], "book_ids": [w.book_a]})
    assert r.status_code == 201, r.text
    w.headers["scoped_key"] = {"X-API-Key": r.json()["key"]}
    r = srv.post("/api/v1/auth/api-keys", headers=w.headers["reader_a"], json={"name": "ro"})
    assert r.status_code == 201, r.text
    w.headers["read_key"] = {"X-API-Key": r.json()["key"]}
    # a marker in every user's preferences, to see whose come back
    for p in ("reader_a", "reader_b", "editor", "admin", "master"):
        r = srv.put("/api/v1/users/me/preferences", json={"learning_goals": f"marker {p}"},
                    headers=w.headers[p])
        assert r.status_code == 200, r.text
    yield w
    rc = srv.stop()
    assert rc == 0, srv.log_tail()


# --------------------------------------------------------------------------
# per-cell set-up of fresh resources and checks of the answer
# --------------------------------------------------------------------------

def fresh_key_of_reader_a(w):
    r = w.srv.post("/api/v1/auth/api-keys", json={"name": uniq("victim")}, headers=w.headers["reader_a"])
    assert r.status_code == 201
    return {"key_id": r.json()["id"], "key_secret": r.json()["key"]}


def fresh_book(w):
    return {"fresh": w.srv.create_book(title=uniq("fresh"))["id"]}


def fresh_chapter_in_a(w):
    return {"fresh_ch": w.srv.add_chapter(w.book_a, title=uniq("tmp"))["id"]}


def check_me(w, who, r):
    assert r.json()["id"] == w.ids[OWNER[who]]


def check_prefs(w, who, r):
    assert r.json()["learning_goals"] == f"marker {OWNER[who]}", r.json()


def check_own_keys(w, who, r):
    owners = {i["user_id"] for i in r.json()["items"]}
    assert owners <= {w.ids[OWNER[who]]}, owners
    assert all("key" not in i for i in r.json()["items"])


def check_all_keys(w, who, r):
    owners = {i["user_id"] for i in r.json()["items"]}
    assert {w.ids["reader_a"], w.ids["editor"]} <= owners


def after_key_delete(w, who, r, ctx):
    """The victim key works unless the delete succeeded."""
    code = w.srv.get("/api/v1/auth/me", headers={"X-API-Key": ctx["key_secret"]}).status_code
    assert code == (401 if r.status_code == 204 else 200), code


def after_book_write(w, who, r, ctx):
    title = w.srv.get(ctx["url"]).json()["title"]
    assert (title == f"renamed by {who}") == (r.status_code == 200), (r.status_code, title)


BOOK_BODY = {"title": "renamed by {who}"}
CH_BODY = {"title": "renamed chapter", "content_markdown": "text"}
PREFS = "/api/v1/users/me/preferences"
KEYS = "/api/v1/auth/api-keys"
_ = None  # not run: it would destroy a shared fixture

# name, method, path, json body, setup, check, then the expected status for
#        anon reader_a reader_b editor admin master scoped_key read_key
ROUTES = [
    ("list_books", "GET", "/api/v1/books", None, None, None,
     (200, 200, 200, 200, 200, 200, 200, 200)),
    ("get_book", "GET", "/api/v1/books/{A}", None, None, None,
     (200, 200, 200, 200, 200, 200, 200, 200)),
    ("list_chapters", "GET", "/api/v1/books/{B}/chapters", None, None, None,
     (200, 200, 200, 200, 200, 200, 200, 200)),
    ("get_chapter", "GET", "/api/v1/books/{B}/chapters/1", None, None, None,
     (200, 200, 200, 200, 200, 200, 200, 200)),
    ("health", "GET", "/health", None, None, None,
     (200, 200, 200, 200, 200, 200, 200, 200)),

    ("me", "GET", "/api/v1/auth/me", None, None, check_me,
     (401, 200, 200, 200, 200, 200, 200, 200)),
    ("prefs_get", "GET", PREFS, None, None, check_prefs,
     (401, 200, 200, 200, 200, 200, 200, 200)),
    ("prefs_patch", "PATCH", PREFS, {"example_style": "mixed"}, None, check_prefs,
     (401, 200, 200, 200, 200, 200, 200, 403)),
    ("prefs_put", "PUT", PREFS, {"learning_goals": "marker {owner}"}, None, check_prefs,
     (401, 200, 200, 200, 200, 200, 200, 403)),

    ("keys_list", "GET", KEYS, None, None, check_own_keys,
     (401, 200, 200, 200, 200, 200, 200, 200)),
    ("keys_list_all", "GET", KEYS + "?all=true", None, None, check_all_keys,
     (401, 403, 403, 403, 200, 200, 403, 403)),
    ("key_create_read", "POST", KEYS, {"name": "m", "scopes": ["read"]}, None, None,
     (401, 201, 201, 201, 201, 201, 403, 403)),
    ("key_create_write", "POST", KEYS, {"name": "m", "scopes": ["read", "write"]}, None, None,
     (401, 403, 403, 201, 201, 201, 403, 403)),
    ("key_create_admin", "POST", KEYS, {"name": "m", "scopes": ["admin"]}, None, None,
     (401, 403, 403, 403, 201, 201, 403, 403)),
    ("key_delete_reader_a", "DELETE", KEYS + "/{key_id}", None, fresh_key_of_reader_a,
     after_key_delete,
     (401, 204, 404, 404, 204, 204, 403, 403)),

    ("book_create", "POST", "/api/v1/books", {"title": "matrix new"}, None, None,
     (401, 403, 403, 201, 201, 201, 403, 403)),
    ("book_patch_a", "PATCH", "/api/v1/books/{A}", BOOK_BODY, None, after_book_write,
     (401, 403, 403, 200, 200, 200, 200, 403)),
    ("book_patch_b", "PATCH", "/api/v1/books/{B}", BOOK_BODY, None, after_book_write,
     (401, 403, 403, 200, 200, 200, 403, 403)),
    ("book_delete_fresh", "DELETE", "/api/v1/books/{fresh}", None, fresh_book, None,
     (401, 403, 403, 204, 204, 204, 403, 403)),
    ("chapter_create_a", "POST", "/api/v1/books/{A}/chapters", CH_BODY, None, None,
     (401, 403, 403, 201, 201, 201, 201, 403)),
    ("chapter_create_b", "POST", "/api/v1/books/{B}/chapters", CH_BODY, None, None,
     (401, 403, 403, 201, 201, 201, 403, 403)),
    ("chapter_put_a", "PUT", "/api/v1/books/{A}/chapters/{A_ch}", CH_BODY, None, None,
     (401, 403, 403, 200, 200, 200, 200, 403)),
    ("chapter_put_b", "PUT", "/api/v1/books/{B}/chapters/{B_ch}", CH_BODY, None, None,
     (401, 403, 403, 200, 200, 200, 403, 403)),
    ("chapter_delete_a", "DELETE", "/api/v1/books/{A}/chapters/{fresh_ch}", None,
     fresh_chapter_in_a, None,
     (401, 403, 403, 204, 204, 204, 204, 403)),
    ("chapter_delete_b", "DELETE", "/api/v1/books/{B}/chapters/{B_ch}", None, None, None,
     (401, 403, 403, _, _, _, 403, 403)),
]


def cases():
    for name, method, path, body, setup, check, expected in ROUTES:
        assert len(expected) == len(PRINCIPALS), name
        for who, status in zip(PRINCIPALS, expected):
            if status is None:
                continue
            yield pytest.param(name, method, path, body, status, setup, check, who,
                               id=f"{name}-{who}")


@pytest.mark.parametrize("name,method,path,body,status,setup,check,who", list(cases()))
def test_matrix(world, name, method, path, body, status, setup, check, who):
    w = world
    ctx = setup(w) if setup else {}
    url = path.format(A=w.book_a, B=w.book_b, A_ch=w.ch_a, B_ch=w.ch_b, **ctx)
    if isinstance(body, dict):
        body = {k: v.format(owner=OWNER.get(who, who), who=who) if isinstance(v, str) else v
                for k, v in body.items()}
    ctx["url"] = url
    r = w.srv.request(method, url, json=body, headers=w.headers[who])
    if status >= 400:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}[status]
        err = assert_error(r, status, code)
        if status == 401:
            assert err["details"] == []
    else:
        assert r.status_code == status, f"{method} {url} as {who}: {r.status_code} {r.text[:300]}"
    if check is not None:
        if check.__code__.co_argcount == 4:
            check(w, who, r, ctx)
        elif r.status_code < 300:
            check(w, who, r)


def test_refused_creates_left_no_trace(world):
    """Every caller tries to create a book: only the allowed creators' books exist.

    Self-contained, since the parametrized cells may run on other workers."""
    title = uniq("no trace")
    for who in PRINCIPALS:
        r = world.srv.post("/api/v1/books", json={"title": title}, headers=world.headers[who])
        want = {"anon": 401, "editor": 201, "admin": 201, "master": 201}.get(who, 403)
        assert r.status_code == want, f"{who}: {r.status_code} {r.text[:200]}"
    titles = [b["title"] for b in world.srv.all_books()]
    # editor, admin and master may create; everyone else left nothing behind
    assert titles.count(title) == 3, titles
