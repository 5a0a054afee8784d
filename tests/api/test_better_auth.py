"""Better-Auth session tokens (BOOKD_BETTER_AUTH_URL) checked against a fake
Better-Auth server speaking its get-session shape: the Bearer and cookie
forms (plain and __Secure- prefixed), the cache (a hit asks the server
nothing, a refused token is remembered too), expired and unknown sessions,
a server down or hanging (fail closed: 503, never anonymous), the mapping to
one bookd user, and the trusted-header mode (X-User-ID from a trusted proxy
only, behind BOOKD_TRUST_USER_HEADER)."""
import http.client
import json
import time

import pytest

from conftest import ADMIN, assert_error, bearer, register, start_server, users_env
from fake_better_auth import COOKIE, SECURE_COOKIE, FakeBetterAuth

ME = "/api/v1/auth/me"
SITE = "http://localhost:3000"  # the default BOOKD_CORS_ORIGINS


@pytest.fixture
def fake():
    f = FakeBetterAuth().start()
    yield f
    f.stop()


@pytest.fixture
def ba_server(tmp_path, fake):
    # A generous timeout: these tests are about answers, not a slow server
    # (a loaded machine can keep the fake's thread waiting past the default).
    srv = start_server(tmp_path / "data", env=users_env(BOOKD_BETTER_AUTH_URL=fake.url,
                                                        BOOKD_BETTER_AUTH_TIMEOUT_MS=10000))
    yield srv
    srv.stop()


def cookie(name, value):
    return {"Cookie": f"theme=dark; {name}={value}; other=1"}


# ---------------------------------------------------------------- valid

def test_bearer_token_is_a_user(ba_server, fake):
    token = fake.add_session(email="reader@example.com", name="Ada")
    r = ba_server.get(ME, headers=bearer(token))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["email"] == "reader@example.com"
    assert me["role"] == "reader"
    # the token reached the server as the bearer plugin reads it
    assert fake.log[-1]["authorization"] is True


def test_signed_bearer_token_without_bearer_plugin(tmp_path):
    """A signed token (token.signature) given as Bearer also goes as the
    session cookie, which any Better-Auth server reads."""
    f = FakeBetterAuth(bearer=False).start()
    try:
        srv = start_server(tmp_path / "d", env=users_env(BOOKD_BETTER_AUTH_URL=f.url))
        try:
            token = f.add_session(email="signed@example.com")
            r = srv.get(ME, headers=bearer(f.sign(token)))
            assert r.status_code == 200, r.text
            assert r.json()["email"] == "signed@example.com"
            assert COOKIE in f.log[-1]["cookies"]
        finally:
            srv.stop()
    finally:
        f.stop()


def test_cookie_token_is_the_same_user(ba_server, fake):
    token = fake.add_session(email="cookie@example.com")
    a = ba_server.get(ME, headers=cookie(COOKIE, fake.cookie_value(token)))
    assert a.status_code == 200, a.text
    b = ba_server.get(ME, headers=bearer(token))
    assert b.status_code == 200, b.text
    assert a.json()["id"] == b.json()["id"]
    assert a.json()["email"] == "cookie@example.com"


def test_secure_prefixed_cookie(tmp_path):
    f = FakeBetterAuth(secure_cookies=True).start()
    try:
        srv = start_server(tmp_path / "d", env=users_env(BOOKD_BETTER_AUTH_URL=f.url))
        try:
            token = f.add_session(email="secure@example.com")
            r = srv.get(ME, headers=cookie(SECURE_COOKIE, f.cookie_value(token)))
            assert r.status_code == 200, r.text
            assert r.json()["email"] == "secure@example.com"
        finally:
            srv.stop()
    finally:
        f.stop()


def test_a_tampered_cookie_is_refused(ba_server, fake):
    token = fake.add_session()
    bad = fake.cookie_value(token)[:-6] + "AAAA%3D"
    assert_error(ba_server.get(ME, headers=cookie(COOKIE, bad)), 401, "unauthorized")


# ---------------------------------------------------------------- cache

def test_cache_hit_asks_the_server_once(ba_server, fake):
    token = fake.add_session(email="cached@example.com")
    ids = set()
    for _ in range(5):
        r = ba_server.get(ME, headers=bearer(token))
        assert r.status_code == 200, r.text
        ids.add(r.json()["id"])
    assert len(ids) == 1
    assert fake.calls == 1


def test_unknown_token_is_401_and_remembered(ba_server, fake):
    for _ in range(3):
        assert_error(ba_server.get(ME, headers=bearer("no-such-session-token")), 401, "unauthorized")
    assert fake.calls == 1


def test_expired_session_is_401(ba_server, fake):
    token = fake.add_session(ttl=-5)
    assert_error(ba_server.get(ME, headers=bearer(token)), 401, "unauthorized")


def test_stale_session_returned_by_server_is_still_expired(ba_server, fake):
    fake.stale = True  # the server hands back a session past its expiresAt
    token = fake.add_session(ttl=-5)
    assert_error(ba_server.get(ME, headers=bearer(token)), 401, "unauthorized")


def test_session_expiring_soon_is_not_cached_past_its_end(ba_server, fake):
    token = fake.add_session(ttl=1.5)
    assert ba_server.get(ME, headers=bearer(token)).status_code == 200
    time.sleep(2.0)
    assert_error(ba_server.get(ME, headers=bearer(token)), 401, "unauthorized")
    assert fake.calls == 2


# ---------------------------------------------------------------- mapping

def test_one_better_auth_user_is_one_bookd_user(ba_server, fake):
    t1 = fake.add_session(user_id="ba-user-42", email="same@example.com")
    t2 = fake.add_session(user_id="ba-user-42", email="same@example.com")
    other = fake.add_session(user_id="ba-user-43", email="other@example.com")
    a = ba_server.get(ME, headers=bearer(t1)).json()
    b = ba_server.get(ME, headers=bearer(t2)).json()
    c = ba_server.get(ME, headers=bearer(other)).json()
    assert a["id"] == b["id"] != c["id"]


def test_a_local_address_is_not_taken_over(ba_server, fake):
    """A Better-Auth user claiming a local account's address gets a user of
    its own, never the local account."""
    local = register(ba_server)
    token = fake.add_session(email=local["user"]["email"])
    r = ba_server.get(ME, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["id"] != local["user"]["id"]


def test_our_own_jwt_still_works(ba_server, fake):
    reg = register(ba_server)
    r = ba_server.get(ME, headers=bearer(reg["access_token"]))
    assert r.status_code == 200, r.text
    assert fake.calls == 0


# ---------------------------------------------------------------- fail closed

def test_server_down_is_503_not_anonymous(tmp_path):
    f = FakeBetterAuth().start()
    url = f.url
    f.stop()  # nothing listens there now
    srv = start_server(tmp_path / "d", env=users_env(BOOKD_BETTER_AUTH_URL=url))
    try:
        r = srv.get(ME, headers=bearer("some-session-token"))
        err = assert_error(r, 503, "unavailable")
        assert "some-session-token" not in err["message"]
        assert r.headers.get("Retry-After")
        # a write route: refused, not treated as anonymous (which would be 401)
        r = srv.post("/api/v1/books", json={"title": "x"}, headers=bearer("some-session-token"))
        assert_error(r, 503, "unavailable")
        assert "some-session-token" not in srv.log_text()
    finally:
        srv.stop()


def test_server_error_is_503(ba_server, fake):
    fake.fail_status = 500
    assert_error(ba_server.get(ME, headers=bearer("tok-500")), 503, "unavailable")


def test_hanging_server_is_503_within_the_timeout(tmp_path):
    f = FakeBetterAuth().start()
    f.hang_seconds = 10
    try:
        srv = start_server(tmp_path / "d", env=users_env(BOOKD_BETTER_AUTH_URL=f.url,
                                                         BOOKD_BETTER_AUTH_TIMEOUT_MS=500))
        try:
            t0 = time.monotonic()
            r = srv.get(ME, headers=bearer("hanging-token"))
            took = time.monotonic() - t0
            assert_error(r, 503, "unavailable")
            assert took < 3.0, took
        finally:
            srv.stop()
    finally:
        f.stop()


def test_token_never_logged(ba_server, fake):
    token = fake.add_session()
    ba_server.get(ME, headers=bearer(token))
    ba_server.get(ME, headers=bearer("unknown-" + token))
    assert token not in ba_server.log_text()


# ---------------------------------------------------------------- when cookies count

def test_cookie_ignored_without_better_auth(tmp_path, fake):
    srv = start_server(tmp_path / "d", env=users_env())
    try:
        token = fake.add_session()
        assert_error(srv.get(ME, headers=cookie(COOKIE, fake.cookie_value(token))), 401, "unauthorized")
        assert fake.calls == 0
    finally:
        srv.stop()


def test_cookie_from_a_foreign_page_is_ignored(ba_server, fake):
    token = fake.add_session()
    h = cookie(COOKIE, fake.cookie_value(token))
    h["Origin"] = "https://evil.example"
    assert_error(ba_server.get(ME, headers=h), 401, "unauthorized")
    assert fake.calls == 0
    # from a listed origin, or the server's own, it counts
    h["Origin"] = SITE
    assert ba_server.get(ME, headers=h).status_code == 200
    h["Origin"] = f"http://127.0.0.1:{ba_server.port}"
    assert ba_server.get(ME, headers=h).status_code == 200


# ---------------------------------------------------------------- trusted header

def get_from(srv, source_ip, path, headers):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10, source_address=(source_ip, 0))
    try:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


def test_user_header_ignored_without_the_flag(tmp_path):
    srv = start_server(tmp_path / "d", env=users_env(BOOKD_TRUSTED_PROXIES="127.0.0.1/32"))
    try:
        status, _ = get_from(srv, "127.0.0.1", ME, {"X-User-ID": "proxy-user-1"})
        assert status == 401
    finally:
        srv.stop()


def test_user_header_only_from_a_trusted_proxy(tmp_path):
    srv = start_server(tmp_path / "d", env=users_env(BOOKD_TRUSTED_PROXIES="127.0.0.1/32",
                                                     BOOKD_TRUST_USER_HEADER="true"))
    try:
        # a client that is not the proxy: ignored, anonymous
        status, _ = get_from(srv, "127.0.0.2", ME, {"X-User-ID": "proxy-user-1"})
        assert status == 401
        # the proxy: honoured, one user per id, made on first sight
        status, a = get_from(srv, "127.0.0.1", ME, {"X-User-ID": "proxy-user-1"})
        assert status == 200, a
        status, b = get_from(srv, "127.0.0.1", ME, {"X-User-ID": "proxy-user-1"})
        status2, c = get_from(srv, "127.0.0.1", ME, {"X-User-ID": "proxy-user-2"})
        assert status == status2 == 200
        assert a["id"] == b["id"] != c["id"]
        assert a["role"] == "reader"
        # an id in bookd's own namespace is refused
        status, _ = get_from(srv, "127.0.0.1", ME, {"X-User-ID": "bookd:master-key"})
        assert status == 401
    finally:
        srv.stop()


def test_user_header_without_trusted_proxies(tmp_path):
    srv = start_server(tmp_path / "d", env=users_env(BOOKD_TRUST_USER_HEADER="true"))
    try:
        status, _ = get_from(srv, "127.0.0.1", ME, {"X-User-ID": "proxy-user-1"})
        assert status == 401
    finally:
        srv.stop()
