"""API keys, roles, and the user / apikey CLI."""
import json
import re

import pytest

from conftest import (
    ADMIN, PASSWORD, TS_RE, UUID7_RE, assert_error, bearer, cli_for, login, make_user,
    new_email, uniq, users_env,
)

KEYS = "/api/v1/auth/api-keys"
ME = "/api/v1/auth/me"
KEY_FIELDS = {"id", "user_id", "name", "prefix", "scopes", "book_ids", "created_at", "last_used_at"}


def create_key(srv, headers, expect=201, **body):
    body.setdefault("name", uniq("key"))
    r = srv.post(KEYS, json=body, headers=headers)
    assert r.status_code == expect, f"{r.status_code} {r.text[:300]}"
    return r.json()


def xkey(k):
    return {"X-API-Key": k["key"] if isinstance(k, dict) else k}


def list_keys(srv, headers, **params):
    r = srv.get(KEYS, headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


# --------------------------------------------------------------------------
# creating, listing, using, deleting
# --------------------------------------------------------------------------

def test_create_read_key(users_server):
    a = make_user(users_server)
    k = create_key(users_server, a["headers"], name="my laptop")
    assert set(k) == KEY_FIELDS | {"key"}, k
    assert UUID7_RE.match(k["id"])
    assert k["user_id"] == a["id"]
    assert k["name"] == "my laptop"
    assert k["scopes"] == ["read"]
    assert k["book_ids"] is None
    assert TS_RE.match(k["created_at"])
    assert k["last_used_at"] is None
    assert k["key"].startswith("bk_")
    assert k["prefix"].startswith("bk_") and k["key"].startswith(k["prefix"])
    assert len(k["key"]) >= len(k["prefix"]) + 32
    m = users_server.get(ME, headers=xkey(k))
    assert m.status_code == 200, m.text
    assert m.json()["id"] == a["id"]
    assert m.json()["auth"] == "api_key"
    assert m.json()["scopes"] == "read"
    assert_error(users_server.post("/api/v1/books", json={"title": uniq("rk")}, headers=xkey(k)),
                 403, "forbidden")
    # two keys never share a secret or a prefix
    k2 = create_key(users_server, a["headers"])
    assert k2["key"] != k["key"] and k2["prefix"] != k["prefix"]


def test_list_shows_own_keys_without_secret(users_server):
    a, b = make_user(users_server), make_user(users_server)
    ka = create_key(users_server, a["headers"])
    kb = create_key(users_server, b["headers"])
    r = users_server.get(KEYS, headers=a["headers"])
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["id"] for i in items] == [ka["id"]]
    assert set(items[0]) == KEY_FIELDS, items[0]
    secret_part = ka["key"][len(ka["prefix"]):].lstrip("_")
    assert ka["key"] not in r.text and secret_part not in r.text
    assert items[0]["prefix"] == ka["prefix"]
    assert kb["id"] not in r.text
    # last_used_at is filled in once the key is used
    assert users_server.get(ME, headers=xkey(ka)).status_code == 200
    used = list_keys(users_server, a["headers"])[0]
    assert used["last_used_at"] is not None and TS_RE.match(used["last_used_at"])


def test_scope_limits_by_role(users_server):
    reader = make_user(users_server)
    for scopes in (["write"], ["read", "write"], ["admin"], ["read", "admin"]):
        r = users_server.post(KEYS, json={"name": "x", "scopes": scopes}, headers=reader["headers"])
        assert_error(r, 403, "forbidden")
    editor = make_user(users_server, "editor")
    k = create_key(users_server, editor["headers"], scopes=["read", "write"])
    assert k["scopes"] == ["read", "write"]
    assert_error(users_server.post(KEYS, json={"name": "x", "scopes": ["admin"]},
                                   headers=editor["headers"]), 403, "forbidden")
    admin = make_user(users_server, "admin")
    k = create_key(users_server, admin["headers"], scopes=["read", "write", "admin"])
    assert k["scopes"] == ["read", "write", "admin"]
    assert users_server.get(ME, headers=xkey(k)).json()["scopes"] == "read write admin"
    # nothing was created by the refused attempts
    assert len(list_keys(users_server, reader["headers"])) == 0


def test_api_key_cannot_create_api_keys(users_server):
    admin = make_user(users_server, "admin")
    k = create_key(users_server, admin["headers"], scopes=["read", "write", "admin"])
    r = users_server.post(KEYS, json={"name": "child"}, headers=xkey(k))
    assert_error(r, 403, "forbidden")
    mk = create_key(users_server, ADMIN, scopes=["read", "write", "admin"])
    assert_error(users_server.post(KEYS, json={"name": "child"}, headers=xkey(mk)), 403, "forbidden")
    assert len(list_keys(users_server, admin["headers"])) == 1


def test_delete_key(users_server):
    a = make_user(users_server)
    k = create_key(users_server, a["headers"])
    keep = create_key(users_server, a["headers"])
    assert users_server.get(ME, headers=xkey(k)).status_code == 200
    r = users_server.delete(f"{KEYS}/{k['id']}", headers=a["headers"])
    assert r.status_code == 204, r.text
    err = assert_error(users_server.get(ME, headers=xkey(k)), 401, "unauthorized")
    assert err["details"] == []
    assert_error(users_server.delete(f"{KEYS}/{k['id']}", headers=a["headers"]), 404, "not_found")
    assert [i["id"] for i in list_keys(users_server, a["headers"])] == [keep["id"]]
    assert users_server.get(ME, headers=xkey(keep)).status_code == 200


def test_other_users_key_is_404(users_server):
    a, b = make_user(users_server), make_user(users_server)
    editor = make_user(users_server, "editor")
    ka = create_key(users_server, a["headers"])
    for who in (b, editor):
        assert_error(users_server.delete(f"{KEYS}/{ka['id']}", headers=who["headers"]),
                     404, "not_found")
    # an unknown id says the same
    assert_error(users_server.delete(f"{KEYS}/01900000-0000-7000-8000-000000000000",
                                     headers=b["headers"]), 404, "not_found")
    assert users_server.get(ME, headers=xkey(ka)).status_code == 200
    assert_error(users_server.get(KEYS, params={"all": "true"}, headers=b["headers"]),
                 403, "forbidden")
    assert_error(users_server.get(KEYS, params={"all": "true"}, headers=editor["headers"]),
                 403, "forbidden")
    assert_error(users_server.get(KEYS, params={"all": "true"}, headers=xkey(ka)),
                 403, "forbidden")


def test_admin_sees_and_revokes_all(users_server):
    a = make_user(users_server)
    admin = make_user(users_server, "admin")
    ka = create_key(users_server, a["headers"])
    mine = list_keys(users_server, admin["headers"])
    assert ka["id"] not in [i["id"] for i in mine]
    everything = list_keys(users_server, admin["headers"], all="true")
    found = [i for i in everything if i["id"] == ka["id"]]
    assert len(found) == 1 and found[0]["user_id"] == a["id"]
    assert all("key" not in i for i in everything)
    assert ka["key"] not in json.dumps(everything)
    assert ka["id"] in [i["id"] for i in list_keys(users_server, ADMIN, all="true")]
    r = users_server.delete(f"{KEYS}/{ka['id']}", headers=admin["headers"])
    assert r.status_code == 204
    assert_error(users_server.get(ME, headers=xkey(ka)), 401, "unauthorized")


@pytest.fixture(scope="module")
def keyval_user(users_server):
    return make_user(users_server)


@pytest.mark.parametrize("body,field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "k", "scopes": ["root"]}, "scopes"),
    ({"name": "k", "scopes": "read"}, "scopes"),
    ({"name": "k", "scopes": [1]}, "scopes"),
    ({"name": "k", "book_ids": ["not-a-uuid"]}, "book_ids"),
    ({"name": "k", "book_ids": "01900000-0000-7000-8000-000000000000"}, "book_ids"),
    ({"name": "k", "book_ids": ["01900000-0000-7000-8000-%012d" % i for i in range(17)]}, "book_ids"),
])
def test_key_validation(users_server, keyval_user, body, field):
    a = keyval_user
    err = assert_error(users_server.post(KEYS, json=body, headers=a["headers"]), 422,
                       "validation_failed")
    assert field in [d["field"] for d in err["details"]], err


@pytest.mark.parametrize("value", [
    "bk_", "bk_00000000_" + "A" * 43, "bk_" + "x" * 300, "nonsense", "Bearer x",
])
def test_unknown_api_keys(users_server, value):
    err = assert_error(users_server.get(ME, headers={"X-API-Key": value}), 401, "unauthorized")
    assert err["details"] == []


def test_near_miss_api_key(users_server):
    a = make_user(users_server)
    k = create_key(users_server, a["headers"])["key"]
    for bad in (k[:-1], k + "x", k[:-1] + ("A" if k[-1] != "A" else "B"), k.upper(), k.replace("_", "-")):
        assert_error(users_server.get(ME, headers={"X-API-Key": bad}), 401, "unauthorized")


def test_anonymous_key_routes(users_server):
    assert_error(users_server.get(KEYS), 401, "unauthorized")
    assert_error(users_server.post(KEYS, json={"name": "x"}), 401, "unauthorized")
    assert_error(users_server.delete(f"{KEYS}/01900000-0000-7000-8000-000000000000"),
                 401, "unauthorized")


# --------------------------------------------------------------------------
# write keys and books
# --------------------------------------------------------------------------

def test_write_key_limited_to_one_book(users_server):
    editor = make_user(users_server, "editor")
    book_a = users_server.create_book(title=uniq("A"))
    book_b = users_server.create_book(title=uniq("B"))
    ch_b = users_server.add_chapter(book_b["id"], title="B1")
    k = create_key(users_server, editor["headers"], scopes=["read", "write"], book_ids=[book_a["id"]])
    assert k["book_ids"] == [book_a["id"]]
    h = xkey(k)
    A, B = f"/api/v1/books/{book_a['id']}", f"/api/v1/books/{book_b['id']}"

    r = users_server.patch(A, json={"title": "A renamed"}, headers=h)
    assert r.status_code == 200, r.text
    r = users_server.post(f"{A}/chapters", json={"title": "A1", "content_markdown": "x"}, headers=h)
    assert r.status_code == 201, r.text
    ch_a = r.json()
    r = users_server.put(f"{A}/chapters/{ch_a['id']}", json={"title": "A1b", "content_markdown": "y"},
                         headers=h)
    assert r.status_code == 200, r.text

    before_b = users_server.get(B).json()
    refused = [
        users_server.patch(B, json={"title": "hijacked"}, headers=h),
        users_server.delete(B, headers=h),
        users_server.post(f"{B}/chapters", json={"title": "x", "content_markdown": "x"}, headers=h),
        users_server.put(f"{B}/chapters/{ch_b['id']}", json={"title": "x", "content_markdown": "x"},
                         headers=h),
        users_server.put(f"{B}/chapters/1", json={"title": "x", "content_markdown": "x"}, headers=h),
        users_server.delete(f"{B}/chapters/{ch_b['id']}", headers=h),
        users_server.post("/api/v1/books", json={"title": uniq("new")}, headers=h),
        # B's chapter addressed through book A's URL is not B's chapter
    ]
    for r in refused:
        assert_error(r, 403, "forbidden")
    r = users_server.delete(f"{A}/chapters/{ch_b['id']}", headers=h)
    assert r.status_code == 404, r.text
    assert users_server.get(B).json() == before_b
    assert users_server.get(f"{B}/chapters/{ch_b['id']}").json()["title"] == "B1"
    r = users_server.delete(f"{A}/chapters/{ch_a['id']}", headers=h)
    assert r.status_code == 204


def test_unrestricted_write_key_and_write_only_key(users_server):
    editor = make_user(users_server, "editor")
    k = create_key(users_server, editor["headers"], scopes=["read", "write"])
    r = users_server.post("/api/v1/books", json={"title": uniq("kw")}, headers=xkey(k))
    assert r.status_code == 201, r.text
    # a read-only key of the same editor cannot write
    ro = create_key(users_server, editor["headers"])
    assert_error(users_server.post("/api/v1/books", json={"title": uniq("ro")}, headers=xkey(ro)),
                 403, "forbidden")
    assert_error(users_server.delete(f"/api/v1/books/{r.json()['id']}", headers=xkey(ro)),
                 403, "forbidden")


def test_role_change_applies_to_existing_token_and_keys(users_server):
    u = make_user(users_server)
    h = u["headers"]
    assert_error(users_server.post("/api/v1/books", json={"title": uniq("r")}, headers=h),
                 403, "forbidden")
    p = cli_for(users_server, ["user", "set-role", "--email", u["email"], "--role", "editor"])
    assert p.returncode == 0, p.stderr
    r = users_server.post("/api/v1/books", json={"title": uniq("e")}, headers=h)
    assert r.status_code == 201, r.text
    assert users_server.get(ME, headers=h).json()["role"] == "editor"
    k = create_key(users_server, h, scopes=["read", "write"])
    assert users_server.post("/api/v1/books", json={"title": uniq("k")}, headers=xkey(k)).status_code == 201
    # demoted: the same token and the same write key can no longer write
    p = cli_for(users_server, ["user", "set-role", "--email", u["email"], "--role", "reader"])
    assert p.returncode == 0, p.stderr
    assert_error(users_server.post("/api/v1/books", json={"title": uniq("x")}, headers=h),
                 403, "forbidden")
    assert_error(users_server.post("/api/v1/books", json={"title": uniq("x")}, headers=xkey(k)),
                 403, "forbidden")
    assert users_server.get(ME, headers=xkey(k)).json()["scopes"] == "read"
    assert_error(users_server.patch(f"/api/v1/books/{r.json()['id']}", json={"title": "x"},
                                    headers=h), 403, "forbidden")


def test_master_key_identity_and_keys(users_server):
    m = users_server.get(ME, headers=ADMIN).json()
    k = create_key(users_server, ADMIN, scopes=["read", "write", "admin"])
    assert k["user_id"] == m["id"]
    me_k = users_server.get(ME, headers=xkey(k)).json()
    assert me_k["id"] == m["id"] and me_k["role"] == "admin" and me_k["auth"] == "api_key"
    assert users_server.post("/api/v1/books", json={"title": uniq("mk")},
                             headers=xkey(k)).status_code == 201
    assert k["id"] in [i["id"] for i in list_keys(users_server, ADMIN)]


def test_reserved_admin_email_cannot_be_registered_first(server_factory):
    """On a fresh server nobody has used the master key yet.  Registering the
    built-in administrator's address must not make that account the master
    key's identity (its keys and preferences)."""
    srv = server_factory(env=users_env())
    r = srv.post("/api/v1/auth/register", json={"email": "admin@bookd.local", "password": PASSWORD})
    squatter = r.json() if r.status_code == 201 else None
    m = srv.get(ME, headers=ADMIN)
    assert m.status_code == 200
    k = create_key(srv, ADMIN, scopes=["read", "write", "admin"])
    assert srv.put("/api/v1/users/me/preferences", json={"learning_goals": "operator notes"},
                   headers=ADMIN).status_code == 200
    problems = []
    if m.json()["role"] != "admin":
        problems.append(f"GET /auth/me with the master key says role {m.json()['role']!r}")
    if srv.get(ME, headers=xkey(k)).json()["scopes"] != "read write admin":
        problems.append("a read/write/admin key made with the master key is only "
                        f"{srv.get(ME, headers=xkey(k)).json()['scopes']!r}")
    if squatter is not None:
        sh = bearer(squatter["access_token"])
        if m.json()["id"] == squatter["user"]["id"]:
            problems.append("the master key's user is the account registered as admin@bookd.local")
        if k["id"] in [i["id"] for i in list_keys(srv, sh)]:
            problems.append("that account lists the master key's API keys")
        prefs = srv.get("/api/v1/users/me/preferences", headers=sh).json()
        if prefs["learning_goals"] == "operator notes":
            problems.append("that account reads the preferences written with the master key")
        if srv.delete(f"{KEYS}/{k['id']}", headers=sh).status_code == 204:
            problems.append("that account revoked the master key's API key")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# the CLI
# --------------------------------------------------------------------------

def test_cli_user_add_list_set_role(users_server):
    email = new_email("cliadmin")
    pw = "cli admin password " + uniq("")
    p = cli_for(users_server, ["user", "add", "--email", email, "--role", "admin"], stdin_text=pw + "\n")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip())
    assert set(out) == {"id", "email", "role"}
    assert out["email"] == email and out["role"] == "admin" and UUID7_RE.match(out["id"])
    assert pw not in p.stdout + p.stderr
    r = login(users_server, email, pw)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["id"] == out["id"] and r.json()["user"]["role"] == "admin"
    assert users_server.get(ME, headers=bearer(r.json()["access_token"])).json()["scopes"] == \
        "read write admin"
    # the newline is not part of the password
    assert_error(login(users_server, email, pw + "\n"), 401, "unauthorized")

    p = cli_for(users_server, ["user", "list"])
    assert p.returncode == 0
    line = [ln for ln in p.stdout.splitlines() if email in ln]
    assert len(line) == 1 and out["id"] in line[0] and re.search(r"\badmin\b", line[0])
    assert "argon2" not in p.stdout

    p = cli_for(users_server, ["user", "set-role", "--email", email, "--role", "editor"])
    assert p.returncode == 0, p.stderr
    r = login(users_server, email, pw)
    assert r.json()["user"]["role"] == "editor"


@pytest.mark.parametrize("args,stdin", [
    (["user", "add", "--email", "short@example.com"], "short\n"),
    (["user", "add", "--email", "nopw@example.com"], ""),
    (["user", "add", "--email", "not-an-email"], PASSWORD + "\n"),
    (["user", "add", "--email", "badrole@example.com", "--role", "root"], PASSWORD + "\n"),
    (["user", "set-role", "--email", "nobody-here@example.com", "--role", "admin"], None),
    (["user", "set-role", "--email", "x@example.com"], None),
    (["apikey", "create", "--user", "nobody-here@example.com"], None),
    (["apikey", "create", "--user", "x@example.com", "--scope", "root"], None),
])
def test_cli_errors(users_server, args, stdin):
    p = cli_for(users_server, args, stdin_text=stdin)
    assert p.returncode != 0, p.stdout
    assert "bk_" not in p.stdout
    assert p.stderr.strip(), "no explanation on stderr"


def test_cli_duplicate_user(users_server):
    a = make_user(users_server)
    p = cli_for(users_server, ["user", "add", "--email", a["email"]], stdin_text=PASSWORD + "\n")
    assert p.returncode != 0
    assert login(users_server, a["email"]).status_code == 200


def test_cli_apikey_create(users_server):
    editor = make_user(users_server, "editor")
    name = uniq("deploy")
    p = cli_for(users_server, ["apikey", "create", "--user", editor["email"], "--scope", "write",
                               "--name", name])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bk_"), p.stdout
    key = lines[0]
    assert key not in p.stderr
    r = users_server.post("/api/v1/books", json={"title": uniq("clikey")}, headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    items = list_keys(users_server, editor["headers"])
    mine = [i for i in items if i["name"] == name]
    assert len(mine) == 1 and set(mine[0]["scopes"]) == {"read", "write"}
    assert key.startswith(mine[0]["prefix"])
    # a reader cannot get a write key from the CLI either
    reader = make_user(users_server)
    p = cli_for(users_server, ["apikey", "create", "--user", reader["email"], "--scope", "write"])
    assert p.returncode != 0
    assert "bk_" not in p.stdout
    assert list_keys(users_server, reader["headers"]) == []


def test_api_key_header_wins_over_bearer(users_server):
    """Only X-API-Key is used when both are sent: a bad key is not rescued by
    a good token, and a reader's token does not narrow an editor's key."""
    reader = make_user(users_server)
    editor = make_user(users_server, "editor")
    wk = create_key(users_server, editor["headers"], scopes=["read", "write"])
    r = users_server.get(ME, headers=dict(reader["headers"], **{"X-API-Key": "bk_bogus_key"}))
    assert_error(r, 401, "unauthorized")
    r = users_server.get(ME, headers=dict(reader["headers"], **xkey(wk)))
    assert r.json()["id"] == editor["id"] and r.json()["auth"] == "api_key"
    rk = create_key(users_server, reader["headers"])
    r = users_server.post("/api/v1/books", json={"title": uniq("mix")},
                          headers=dict(editor["headers"], **xkey(rk)))
    assert_error(r, 403, "forbidden")
