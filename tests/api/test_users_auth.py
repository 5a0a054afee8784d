"""Users and auth: register, login, tokens, refresh rotation, logout, /me,
HS256 verification, the JWT secret file and secret rotation."""
import concurrent.futures
import json
import os
import stat
import time

import pytest

from conftest import (
    ADMIN, JWT_SECRET, PASSWORD, TS_RE, UUID7_RE, assert_error, bearer, b64url,
    hs256_sign, hs256_token, jwt_encode, jwt_parts, login, new_email,
    register, run_bookd, start_server, uniq, users_env,
)

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
INVALID_TOKEN = "invalid or expired token"


def assert_token_response(body, email=None):
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}, body
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] >= 30
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 32
    u = body["user"]
    assert set(u) == {"id", "email", "display_name", "role", "created_at"}, u
    assert UUID7_RE.match(u["id"]), u
    assert TS_RE.match(u["created_at"]), u
    if email is not None:
        assert u["email"] == email
    return u


def assert_invalid_token(resp):
    """401, the uniform envelope, no details, the fixed message."""
    err = assert_error(resp, 401, "unauthorized")
    assert err["details"] == [], err
    assert err["message"] == INVALID_TOKEN, err
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("bearer")
    return err


def claims_for(user_id, **over):
    now = int(time.time())
    c = {"iss": "bookd", "sub": user_id, "iat": now, "exp": now + 600,
         "jti": uniq("jti"), "scope": "read", "role": "reader"}
    c.update(over)
    return c


# --------------------------------------------------------------------------
# register
# --------------------------------------------------------------------------

def test_register_returns_tokens_and_reader(users_server):
    email = new_email("reg")
    body = register(users_server, email, display_name="Ayesha")
    u = assert_token_response(body, email)
    assert u["role"] == "reader"
    assert u["display_name"] == "Ayesha"
    text = json.dumps(body)
    assert PASSWORD not in text and "argon2" not in text and "hash" not in text
    me = users_server.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    m = me.json()
    assert m["id"] == u["id"] and m["email"] == email and m["role"] == "reader"
    assert m["auth"] == "token"
    assert m["scopes"] == "read"


def test_register_cannot_choose_role(users_server):
    body = users_server.post(REGISTER, json={"email": new_email("mass"), "password": PASSWORD,
                                             "role": "admin", "scopes": "read write admin"})
    assert body.status_code == 201, body.text
    assert body.json()["user"]["role"] == "reader"
    tok = body.json()["access_token"]
    assert users_server.get(ME, headers=bearer(tok)).json()["role"] == "reader"
    r = users_server.post("/api/v1/books", json={"title": uniq("nope")}, headers=bearer(tok))
    assert_error(r, 403, "forbidden")


def test_register_email_normalised_and_duplicate(users_server):
    local = uniq("Mixed.Case")
    r = users_server.post(REGISTER, json={"email": f"  {local}@Example.COM \t",
                                          "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["email"] == f"{local}@example.com"
    for variant in (f"{local}@example.com", f"{local}@EXAMPLE.COM", f" {local}@example.Com "):
        d = users_server.post(REGISTER, json={"email": variant, "password": "another password"})
        assert_error(d, 409, "conflict")
    # login with a differently written domain finds the account
    lr = login(users_server, f" {local}@EXAMPLE.com ")
    assert lr.status_code == 200, lr.text
    assert lr.json()["user"]["id"] == r.json()["user"]["id"]


@pytest.mark.parametrize("email", [
    "", "plainaddress", "@example.com", "user@", "user@localhost", "a@b@example.com",
    "user name@example.com", "user@exa mple.com", "<user@example.com>", "user@example,com",
    "x" * 250 + "@example.com",
])
def test_register_bad_email(users_server, email):
    r = users_server.post(REGISTER, json={"email": email, "password": PASSWORD})
    err = assert_error(r, 422, "validation_failed")
    assert [d["field"] for d in err["details"]] == ["email"], err


@pytest.mark.parametrize("password,ok", [
    ("", False), ("1234567", False), ("12345678", True),
    ("p" * 1024, True), ("p" * 1025, False),
    ("\u00e9" * 512, True),           # 1024 bytes
    ("\u00e9" * 513, False),          # 1026 bytes, 513 characters: bytes count
])
def test_register_password_length(users_server, password, ok):
    r = users_server.post(REGISTER, json={"email": new_email("pw"), "password": password})
    if ok:
        assert r.status_code == 201, r.text
    else:
        err = assert_error(r, 422, "validation_failed")
        assert [d["field"] for d in err["details"]] == ["password"], err


def test_register_missing_fields_and_bad_body(users_server):
    err = assert_error(users_server.post(REGISTER, json={}), 422, "validation_failed")
    assert {d["field"] for d in err["details"]} == {"email", "password"}
    assert_error(users_server.post(REGISTER, data="email=a@b.c&password=12345678",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"}),
                 415, "unsupported_media_type")
    err = assert_error(users_server.post(REGISTER, json={"email": new_email(), "password": 12345678}),
                       422, "validation_failed")
    assert [d["field"] for d in err["details"]] == ["password"]
    # a NUL inside the password must not silently truncate it
    email = new_email("nul")
    r = users_server.post(REGISTER, json={"email": email, "password": "abcdefgh\u0000tail"})
    assert r.status_code in (400, 422), r.text
    assert_error(login(users_server, email, "abcdefgh"), 401, "unauthorized")


# --------------------------------------------------------------------------
# login
# --------------------------------------------------------------------------

def test_login_success_and_uniform_failures(users_server):
    email = new_email("login")
    reg = register(users_server, email)
    ok = login(users_server, email)
    assert ok.status_code == 200, ok.text
    u = assert_token_response(ok.json(), email)
    assert u["id"] == reg["user"]["id"]
    assert ok.json()["refresh_token"] != reg["refresh_token"]

    wrong = login(users_server, email, "not the password")
    unknown = login(users_server, new_email("ghost"), "not the password")
    e1 = assert_error(wrong, 401, "unauthorized")
    e2 = assert_error(unknown, 401, "unauthorized")
    assert e1["message"] == e2["message"] == "invalid email or password"
    e1.pop("request_id")
    e2.pop("request_id")
    assert e1 == e2
    assert wrong.headers.get("WWW-Authenticate") == unknown.headers.get("WWW-Authenticate")
    # the master key's local administrator has no password: signing in with
    # its address never works (refused as invalid, or the same 401)
    m = users_server.get(ME, headers=ADMIN)
    assert m.status_code == 200
    r3 = login(users_server, m.json()["email"], "anything at all")
    assert r3.status_code in (401, 422), r3.text
    if r3.status_code == 401:
        e3 = r3.json()["error"]
        e3.pop("request_id")
        assert e3 == e1


def test_login_validation(users_server):
    err = assert_error(users_server.post(LOGIN, json={"email": "nope", "password": "x"}),
                       422, "validation_failed")
    assert [d["field"] for d in err["details"]] == ["email"]
    err = assert_error(users_server.post(LOGIN, json={"email": new_email()}), 422, "validation_failed")
    assert [d["field"] for d in err["details"]] == ["password"]


def test_password_is_case_and_whitespace_sensitive(users_server):
    email = new_email("exact")
    register(users_server, email, password="Exact Password 1")
    assert login(users_server, email, "Exact Password 1").status_code == 200
    for bad in ("exact password 1", "Exact Password 1 ", " Exact Password 1", "Exact Password"):
        assert_error(login(users_server, email, bad), 401, "unauthorized")


# --------------------------------------------------------------------------
# access tokens
# --------------------------------------------------------------------------

def test_access_token_claims(users_server):
    body = register(users_server)
    tok = body["access_token"]
    header, claims, sig = jwt_parts(tok)
    assert header["alg"] == "HS256"
    assert claims["iss"] == "bookd"
    assert claims["sub"] == body["user"]["id"]
    assert claims["role"] == "reader"
    assert claims["scope"] == "read"
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert isinstance(claims["iat"], int) and abs(claims["iat"] - time.time()) < 60
    assert claims["exp"] - claims["iat"] == body["expires_in"] == 900
    # HS256 with the configured secret
    h, c, _ = tok.split(".")
    assert hs256_sign(JWT_SECRET)(f"{h}.{c}".encode()) == sig
    # every token has its own jti
    again = login(users_server, body["user"]["email"]).json()["access_token"]
    assert jwt_parts(again)[1]["jti"] != claims["jti"]


def test_jwt_ttl_setting(server_factory):
    srv = server_factory(env=users_env(BOOKD_JWT_TTL="45"))
    body = register(srv)
    _, claims, _ = jwt_parts(body["access_token"])
    assert body["expires_in"] == 45
    assert claims["exp"] - claims["iat"] == 45
    # below the minimum of 30 s the configuration is refused
    p = run_bookd(["config"], data_dir=srv.data_dir, env=users_env(BOOKD_JWT_TTL="29"))
    assert p.returncode != 0
    assert "BOOKD_JWT_TTL" in p.stderr


def test_crafted_token_with_known_secret_is_accepted(users_server):
    """Sanity check for the tests below: our HS256 signer matches the server."""
    u = register(users_server)["user"]
    r = users_server.get(ME, headers=bearer(hs256_token(claims_for(u["id"]))))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == u["id"]


def test_role_and_scope_claims_are_not_trusted(users_server):
    """The role is read from the database, not from the token."""
    u = register(users_server)["user"]
    tok = hs256_token(claims_for(u["id"], role="admin", scope="read write admin"))
    me = users_server.get(ME, headers=bearer(tok))
    assert me.status_code == 200
    assert me.json()["role"] == "reader" and me.json()["scopes"] == "read"
    r = users_server.post("/api/v1/books", json={"title": uniq("forged")}, headers=bearer(tok))
    assert_error(r, 403, "forbidden")
    r = users_server.get("/api/v1/auth/api-keys", params={"all": "true"}, headers=bearer(tok))
    assert_error(r, 403, "forbidden")


def _bad_tokens(user_id):
    now = int(time.time())
    good = hs256_token(claims_for(user_id))
    h, c, s = good.split(".")
    tampered_claims = b64url(
        json.dumps(claims_for(user_id, sub="00000000-0000-7000-8000-000000000000"),
                   separators=(",", ":")).encode())
    return {
        "empty_sig": f"{h}.{c}.",
        "bad_base64": f"{h}.{c}.!!!!",
        "flipped_sig": f"{h}.{c}.{s[:-2]}{'AA' if s[-2:] != 'AA' else 'BB'}",
        "tampered_payload": f"{h}.{tampered_claims}.{s}",
        "wrong_secret": hs256_token(claims_for(user_id), secret="x" * 40),
        "expired": hs256_token(claims_for(user_id, iat=now - 7200, exp=now - 3600)),
        "expired_past_leeway": hs256_token(claims_for(user_id, iat=now - 1000, exp=now - 120)),
        "no_exp": hs256_token({k: v for k, v in claims_for(user_id).items() if k != "exp"}),
        "exp_string": hs256_token(claims_for(user_id, exp=str(now + 600))),
        "not_before_future": hs256_token(claims_for(user_id, nbf=now + 3600)),
        "wrong_issuer": hs256_token(claims_for(user_id, iss="evil")),
        "no_issuer": hs256_token({k: v for k, v in claims_for(user_id).items() if k != "iss"}),
        "no_sub": hs256_token({k: v for k, v in claims_for(user_id).items() if k != "sub"}),
        "unknown_user": hs256_token(claims_for(user_id, sub="01900000-0000-7000-8000-000000000000")),
        "alg_none": jwt_encode({"alg": "none", "typ": "JWT"}, claims_for(user_id), None),
        "alg_None": jwt_encode({"alg": "None"}, claims_for(user_id), None),
        "alg_none_with_sig": jwt_encode({"alg": "none"}, claims_for(user_id), hs256_sign(JWT_SECRET)),
        "alg_missing": jwt_encode({"typ": "JWT"}, claims_for(user_id), hs256_sign(JWT_SECRET)),
        "alg_hs512": jwt_encode({"alg": "HS512"}, claims_for(user_id), hs256_sign(JWT_SECRET)),
        "alg_rs256_no_jwks": jwt_encode({"alg": "RS256"}, claims_for(user_id), hs256_sign(JWT_SECRET)),
        "payload_not_object": jwt_encode({"alg": "HS256"}, [], hs256_sign(JWT_SECRET)),
    }


def test_bad_tokens_are_401_without_detail(users_server):
    u = register(users_server)["user"]
    failures = []
    for name, tok in _bad_tokens(u["id"]).items():
        for path in (ME, "/api/v1/users/me/preferences"):
            r = users_server.get(path, headers=bearer(tok))
            try:
                assert_invalid_token(r)
            except AssertionError as exc:
                failures.append(f"{name} on {path}: {exc}")
        # a bad token never writes either
        r = users_server.post("/api/v1/books", json={"title": uniq("badtok")}, headers=bearer(tok))
        if r.status_code != 401:
            failures.append(f"{name} on POST /books: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("token", [
    "not-a-jwt", "a.b", "a.b.c.d", "x" * 9000 + ".y.z", "....", "%%%.%%%.%%%",
], ids=["no_dots", "two_parts", "four_parts", "over_8k", "only_dots", "three_bad_parts"])
def test_structurally_malformed_token_same_answer(users_server, token):
    """A token that is not even three dot-separated parts gets the same 401
    as any other bad token (no hint about why it was refused)."""
    for path in (ME, "/api/v1/users/me/preferences"):
        assert_invalid_token(users_server.get(path, headers=bearer(token)))


@pytest.mark.parametrize("value", [
    "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer.x.y",
])
def test_malformed_authorization_header(users_server, value):
    r = users_server.get(ME, headers={"Authorization": value})
    err = assert_error(r, 401, "unauthorized")
    assert err["details"] == []


def test_missing_token_is_401(users_server):
    for path in (ME, "/api/v1/users/me/preferences", "/api/v1/auth/api-keys"):
        err = assert_error(users_server.get(path), 401, "unauthorized")
        assert err["details"] == []


def test_bearer_scheme_case_insensitive(users_server):
    tok = register(users_server)["access_token"]
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert users_server.get(ME, headers={"Authorization": f"{scheme} {tok}"}).status_code == 200


# --------------------------------------------------------------------------
# refresh and logout
# --------------------------------------------------------------------------

def test_refresh_rotates(users_server):
    reg = register(users_server)
    r = users_server.post(REFRESH, json={"refresh_token": reg["refresh_token"]})
    assert r.status_code == 200, r.text
    t = r.json()
    assert {"access_token", "token_type", "expires_in", "refresh_token"} <= set(t)
    assert t["token_type"] == "bearer"
    assert t["refresh_token"] != reg["refresh_token"]
    assert t["access_token"] != reg["access_token"]
    me = users_server.get(ME, headers=bearer(t["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == reg["user"]["id"]
    # the new refresh token works once more
    r2 = users_server.post(REFRESH, json={"refresh_token": t["refresh_token"]})
    assert r2.status_code == 200, r2.text


def test_refresh_reuse_revokes_family_only(users_server):
    email = new_email("reuse")
    reg = register(users_server, email)
    other_session = login(users_server, email).json()["refresh_token"]

    old = reg["refresh_token"]
    r1 = users_server.post(REFRESH, json={"refresh_token": old})
    assert r1.status_code == 200
    newest = r1.json()["refresh_token"]

    # replaying the spent token: refused, and the family is revoked
    replay = users_server.post(REFRESH, json={"refresh_token": old})
    err = assert_error(replay, 401, "unauthorized")
    assert err["details"] == []
    assert_error(users_server.post(REFRESH, json={"refresh_token": newest}), 401, "unauthorized")
    assert_error(users_server.post(REFRESH, json={"refresh_token": old}), 401, "unauthorized")
    # another login of the same user is its own family and still works
    r = users_server.post(REFRESH, json={"refresh_token": other_session})
    assert r.status_code == 200, r.text


def test_concurrent_refresh_has_at_most_one_winner(users_server):
    tok = register(users_server)["refresh_token"]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        import requests
        codes = list(ex.map(
            lambda _: requests.post(users_server.url(REFRESH), json={"refresh_token": tok},
                                    timeout=10).status_code, range(8)))
    assert codes.count(200) <= 1, codes
    assert set(codes) <= {200, 401}, codes


def test_logout(users_server):
    email = new_email("logout")
    reg = register(users_server, email)
    rt = reg["refresh_token"]
    r = users_server.post(LOGOUT, json={"refresh_token": rt})
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(users_server.post(REFRESH, json={"refresh_token": rt}), 401, "unauthorized")
    # logging out twice or with an unknown token is not an error
    assert users_server.post(LOGOUT, json={"refresh_token": rt}).status_code == 204
    assert users_server.post(LOGOUT, json={"refresh_token": "x" * 43}).status_code == 204
    # logout after a rotation ends the rotated token too
    s = login(users_server, email).json()
    nxt = users_server.post(REFRESH, json={"refresh_token": s["refresh_token"]}).json()["refresh_token"]
    assert users_server.post(LOGOUT, json={"refresh_token": nxt}).status_code == 204
    assert_error(users_server.post(REFRESH, json={"refresh_token": nxt}), 401, "unauthorized")


@pytest.mark.parametrize("body,status", [
    ({"refresh_token": "garbage"}, 401),
    ({"refresh_token": "A" * 43}, 401),
    ({"refresh_token": ""}, 422),
    ({}, 422),
    ({"refresh_token": 42}, 422),
])
def test_refresh_bad_input(users_server, body, status):
    r = users_server.post(REFRESH, json=body)
    err = assert_error(r, status, "unauthorized" if status == 401 else "validation_failed")
    if status == 422:
        assert [d["field"] for d in err["details"]] == ["refresh_token"]


def test_access_token_is_not_a_refresh_token(users_server):
    reg = register(users_server)
    assert_error(users_server.post(REFRESH, json={"refresh_token": reg["access_token"][:200]}),
                 401, "unauthorized")
    # and a refresh token is not an access token
    err = assert_error(users_server.get(ME, headers=bearer(reg["refresh_token"])), 401, "unauthorized")
    assert err["details"] == []


# --------------------------------------------------------------------------
# /me for each kind of credential
# --------------------------------------------------------------------------

def test_me_master_key(users_server):
    r = users_server.get(ME, headers=ADMIN)
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["auth"] == "master_key"
    assert m["role"] == "admin"
    assert m["scopes"] == "read write admin"
    assert users_server.get(ME, headers=ADMIN).json()["id"] == m["id"]


def test_me_wrong_master_key(users_server):
    for k in ("test-admin-ke", "TEST-ADMIN-KEY", "test-admin-key ", "bk_test-admin-key"):
        assert_error(users_server.get(ME, headers={"X-API-Key": k}), 401, "unauthorized")


# --------------------------------------------------------------------------
# the JWT secret: generated file, and rotation
# --------------------------------------------------------------------------

def test_generated_secret_file(server_factory, tmp_path):
    data = tmp_path / "gen"
    srv = server_factory(data_dir=data, env=users_env(BOOKD_JWT_SECRET=""))
    path = data / "jwt.secret"
    assert path.is_file()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    secret = path.read_text().strip()
    assert len(secret) >= 32
    reg = register(srv)
    h, c, s = reg["access_token"].split(".")
    assert b64url(hs256_sign(secret)(f"{h}.{c}".encode())) == s
    assert secret not in srv.log_text()
    assert srv.stop() == 0
    # the same secret is used again after a restart: old tokens stay valid
    srv2 = server_factory(data_dir=data, env=users_env(BOOKD_JWT_SECRET=""))
    assert path.read_text().strip() == secret
    assert srv2.get(ME, headers=bearer(reg["access_token"])).status_code == 200
    # a secret of another data dir is different
    other = server_factory(env=users_env(BOOKD_JWT_SECRET=""))
    assert (other.data_dir / "jwt.secret").read_text().strip() != secret
    assert_invalid_token(other.get(ME, headers=bearer(reg["access_token"])))


def test_short_secret_refused(tmp_path):
    p = run_bookd(["config"], data_dir=tmp_path, env={"BOOKD_JWT_SECRET": "x" * 31})
    assert p.returncode != 0
    assert "BOOKD_JWT_SECRET" in p.stderr
    assert "x" * 31 not in p.stderr + p.stdout
    p = run_bookd(["config"], data_dir=tmp_path, env={"BOOKD_JWT_SECRET": JWT_SECRET})
    assert p.returncode == 0
    assert JWT_SECRET not in p.stdout + p.stderr


def test_secret_rotation(server_factory, tmp_path):
    old, new = "old-secret-" + "o" * 32, "new-secret-" + "n" * 32
    data = tmp_path / "rot"
    srv = server_factory(data_dir=data, env=users_env(BOOKD_JWT_SECRET=old))
    reg = register(srv)
    old_tok = reg["access_token"]
    assert srv.stop() == 0

    srv = server_factory(data_dir=data, env=users_env(BOOKD_JWT_SECRET=new,
                                                      BOOKD_JWT_SECRET_PREVIOUS=old))
    r = srv.get(ME, headers=bearer(old_tok))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == reg["user"]["id"]
    # new tokens are signed with the new secret
    fresh = login(srv, reg["user"]["email"]).json()["access_token"]
    h, c, s = fresh.split(".")
    assert b64url(hs256_sign(new)(f"{h}.{c}".encode())) == s
    assert srv.stop() == 0

    srv = server_factory(data_dir=data, env=users_env(BOOKD_JWT_SECRET=new))
    assert_invalid_token(srv.get(ME, headers=bearer(old_tok)))
    assert srv.get(ME, headers=bearer(fresh)).status_code == 200
    # refresh tokens do not depend on the secret
    r = srv.post(REFRESH, json={"refresh_token": reg["refresh_token"]})
    assert r.status_code == 200, r.text


def _start_expecting_exit(data, env):
    srv = start_server(data, env=env, wait=False)
    try:
        rc = srv.proc.wait(timeout=10)
    except Exception:
        srv.stop()
        raise AssertionError("bookd serve started although its jwt.secret is unusable")
    return rc, srv.log_text()


def test_unusable_secret_file_is_a_clean_error(tmp_path):
    """A jwt.secret that is too short: refuse to start, saying why."""
    data = tmp_path / "short"
    data.mkdir()
    (data / "jwt.secret").write_text("too short\n")
    os.chmod(data / "jwt.secret", 0o600)
    rc, log = _start_expecting_exit(data, users_env(BOOKD_JWT_SECRET=""))
    assert rc == 1, (rc, log)
    assert "jwt.secret" in log


def test_symlinked_secret_file_is_a_clean_error(tmp_path):
    """jwt.secret is opened with O_NOFOLLOW; a symlink there (dangling or
    not) must make bookd refuse to start with an error, not crash."""
    failures = []
    for dangling in (False, True):
        data = tmp_path / f"link-{dangling}"
        data.mkdir()
        target = tmp_path / f"target-{dangling}.secret"
        if not dangling:
            target.write_text("s" * 48)
        (data / "jwt.secret").symlink_to(target)
        rc, log = _start_expecting_exit(data, users_env(BOOKD_JWT_SECRET=""))
        if rc != 1 or "jwt.secret" not in log:
            failures.append(f"dangling={dangling}: bookd serve exited {rc} "
                            f"({'signal ' + str(-rc) if rc < 0 else 'status'}); log: {log[-300:]!r}")
    assert not failures, "\n".join(failures)
