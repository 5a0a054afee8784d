"""Login rate limits (per account and per IP) and login timing."""
import statistics
import time

from conftest import PASSWORD, assert_error, login, new_email, register, users_env

LIMITED = users_env(BOOKD_LOGIN_BURST=3, BOOKD_LOGIN_PER_MINUTE=60)


def assert_429(resp):
    err = assert_error(resp, 429, "rate_limited")
    ra = resp.headers.get("Retry-After")
    assert ra is not None and ra.isdigit(), f"Retry-After {ra!r}"
    assert 1 <= int(ra) <= 60, ra
    # no tokens in a refused answer
    assert "access_token" not in resp.text
    return int(ra)


def test_account_limit_then_refill(server_factory):
    srv = server_factory(env=LIMITED)
    email = new_email("victim")
    uid = register(srv, email)["user"]["id"]
    for _ in range(3):
        assert_error(login(srv, email, "wrong password"), 401, "unauthorized")
    # the 4th attempt is refused even with the right password
    ra = assert_429(login(srv, email, PASSWORD))
    assert ra <= 2  # one token regained per second at 60/minute
    # another spelling of the same account is the same account
    assert_429(login(srv, "  " + email.replace("example.com", "EXAMPLE.Com") + " ", PASSWORD))
    # ... while another account from the same IP is not locked (this is the
    # 6th attempt from this IP, whose limit is 2 x 3)
    other = new_email("bystander")
    register(srv, other)
    assert login(srv, other).status_code == 200
    # not locked forever: after the refill time the right password works
    time.sleep(ra + 0.2)
    r = login(srv, email, PASSWORD)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["id"] == uid
    srv.assert_alive()


def test_unknown_account_is_limited_the_same_way(server_factory):
    """Rate limiting must not reveal whether an account exists."""
    srv = server_factory(env=LIMITED)
    ghost = new_email("ghost")
    codes = [login(srv, ghost, "whatever pw").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429], codes


def test_ip_limit_is_twice_the_account_limit(server_factory):
    srv = server_factory(env=LIMITED)
    # six failures spread over six accounts: no account is spent, the IP is
    emails = [new_email(f"ip{i}") for i in range(7)]
    for e in emails[:6]:
        assert_error(login(srv, e, "wrong password",), 401, "unauthorized")
    register(srv, emails[6])
    # a fresh account, its right password, and a spoofed client address:
    # still refused, because the IP bucket is empty
    r = srv.post("/api/v1/auth/login", json={"email": emails[6], "password": PASSWORD},
                 headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9",
                          "Forwarded": "for=203.0.113.9"})
    assert_429(r)
    time.sleep(1.1)  # the IP regains two tokens a second
    assert login(srv, emails[6]).status_code == 200


def test_successful_logins_do_not_spend_the_account(server_factory):
    srv = server_factory(env=users_env(BOOKD_LOGIN_BURST=3, BOOKD_LOGIN_PER_MINUTE=60))
    email = new_email("good")
    register(srv, email)
    # 2 failures, then successes: the account bucket only counts failures
    for _ in range(2):
        assert_error(login(srv, email, "wrong password"), 401, "unauthorized")
    for _ in range(3):
        assert login(srv, email).status_code == 200


def test_login_timing_unknown_vs_wrong_password(server_factory):
    srv = server_factory(env=users_env(BOOKD_LOGIN_BURST=100000))
    email = new_email("timing")
    register(srv, email)
    login(srv, email, "warm up password")
    unknown, wrong = [], []
    for i in range(6):
        for kind in ((0, 1) if i % 2 else (1, 0)):
            t0 = time.perf_counter()
            if kind == 0:
                r = login(srv, new_email("nobody"), "wrong password")
            else:
                r = login(srv, email, "wrong password")
            dt = time.perf_counter() - t0
            assert r.status_code == 401
            (unknown if kind == 0 else wrong).append(dt)
    mu, mw = statistics.median(unknown), statistics.median(wrong)
    ratio = max(mu, mw) / min(mu, mw)
    assert ratio < 1.5, (
        f"unknown-email median {mu * 1000:.1f} ms vs wrong-password median "
        f"{mw * 1000:.1f} ms (ratio {ratio:.2f})")
    # and both actually verify a password hash (argon2id: not instant)
    assert min(mu, mw) > 0.005, (mu, mw)
