"""External identity provider: JWTs signed with keys from BOOKD_JWKS_URL
(EdDSA, RS256, ES256), issuer/audience checks, key selection by kid, algorithm
confusion, users made on first sight, and picking up a key added later."""
import concurrent.futures
import http.server
import json
import threading
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from conftest import (
    ADMIN, JWT_SECRET, assert_error, b64url, bearer, hs256_sign, hs256_token, jwt_encode, new_email,
    register, start_server, uniq, users_env,
)

ME = "/api/v1/auth/me"
ISSUER = "https://idp.example.test/"
AUDIENCE = "bookd-api"
REFETCH_INTERVAL = 10.0  # seconds between JWKS refetches (server side)


# --------------------------------------------------------------------------
# a tiny identity provider
# --------------------------------------------------------------------------

def _int_bytes(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return n.to_bytes(length, "big")


class Key:
    def __init__(self, kind, kid, private, use=None, alg_name=None):
        self.kind, self.kid, self.private, self.use = kind, kid, private, use
        self.alg = alg_name or {"ed": "EdDSA", "rsa": "RS256", "ec": "ES256"}[kind]

    def jwk(self):
        pub = self.private.public_key()
        if self.kind == "ed":
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            d = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        elif self.kind == "rsa":
            nums = pub.public_numbers()
            d = {"kty": "RSA", "n": b64url(_int_bytes(nums.n)), "e": b64url(_int_bytes(nums.e))}
        else:
            nums = pub.public_numbers()
            d = {"kty": "EC", "crv": "P-256", "x": b64url(_int_bytes(nums.x, 32)),
                 "y": b64url(_int_bytes(nums.y, 32))}
        d["kid"] = self.kid
        if self.use:
            d["use"] = self.use
        return d

    def sign(self, msg: bytes) -> bytes:
        if self.kind == "ed":
            return self.private.sign(msg)
        if self.kind == "rsa":
            return self.private.sign(msg, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(msg, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def public_pem(self):
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def public_der(self):
        return self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def gen(kind, kid, **kw):
    if kind == "ed":
        return Key(kind, kid, ed25519.Ed25519PrivateKey.generate(), **kw)
    if kind == "rsa":
        return Key(kind, kid, rsa.generate_private_key(65537, kw.pop("bits", 2048)), **kw)
    return Key(kind, kid, ec.generate_private_key(ec.SECP256R1()), **kw)


class IdP:
    """Serves {"keys": [...]} on 127.0.0.1 and counts the fetches (each after
    `hang` seconds, when set)."""

    def __init__(self, keys):
        self.keys = list(keys)
        self.hits = []
        self.hang = 0.0  # seconds each fetch waits before answering
        self.lock = threading.Lock()
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with idp.lock:
                    idp.hits.append(time.monotonic())
                    hang = idp.hang
                if hang:
                    time.sleep(hang)
                with idp.lock:
                    body = json.dumps({"keys": [k.jwk() for k in idp.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def add(self, key):
        with self.lock:
            self.keys.append(key)

    def hit_count(self):
        with self.lock:
            return len(self.hits)

    def last_hit(self):
        with self.lock:
            return self.hits[-1] if self.hits else None

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def claims(sub=..., **over):
    """Standard claims; sub=None or X=None leaves that claim out."""
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": uniq("ext-sub") if sub is ... else sub, "iat": now,
         "exp": now + 600}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def token(key, c, **hdr):
    header = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
    header.update(hdr)
    header = {k: v for k, v in header.items() if v is not None}
    return jwt_encode(header, c, key.sign)


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys():
    return {
        "ed": gen("ed", "ed-1"),
        "rsa": gen("rsa", "rsa-1"),
        "ec": gen("ec", "ec-1"),
        "enc": gen("ed", "enc-1", use="enc"),         # not a signing key: ignored
        "weak": gen("rsa", "rsa-weak", bits=1024),    # under 2048 bits: refused
    }


@pytest.fixture(scope="module")
def idp(keys):
    p = IdP(keys.values())
    yield p
    p.close()


@pytest.fixture(scope="module")
def ext(idp, tmp_path_factory):
    data = tmp_path_factory.mktemp("jwks-data")
    srv = start_server(data, env=users_env(BOOKD_JWKS_URL=idp.url, BOOKD_JWT_ISSUER=ISSUER,
                                           BOOKD_JWT_AUDIENCE=AUDIENCE))
    yield srv
    rc = srv.stop()
    assert rc == 0, srv.log_tail()


def me(srv, tok):
    return srv.get(ME, headers=bearer(tok))


def assert_refused(resp):
    err = assert_error(resp, 401, "unauthorized")
    assert err["details"] == [], err
    assert err["message"] == "invalid or expired token", err


# --------------------------------------------------------------------------
# tests (order matters only for the last one, which waits for a refetch)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ed", "rsa", "ec"])
def test_each_algorithm_accepted_and_user_made_once(ext, keys, kind):
    sub = uniq(f"sub-{kind}")
    email = new_email(f"ext-{kind}")
    r1 = me(ext, token(keys[kind], claims(sub, email=email, name="Ext User")))
    assert r1.status_code == 200, r1.text
    u = r1.json()
    assert u["auth"] == "token"
    assert u["role"] == "reader" and u["scopes"] == "read"
    assert u["email"] == email
    assert u["display_name"] == "Ext User"
    # a second token for the same subject (any of the provider's keys) is the same user
    other = keys["ed" if kind != "ed" else "ec"]
    r2 = me(ext, token(other, claims(sub)))
    assert r2.status_code == 200, r2.text
    assert r2.json()["id"] == u["id"]
    # the external user can use user features but not write content
    p = ext.get("/api/v1/users/me/preferences", headers=bearer(token(keys[kind], claims(sub))))
    assert p.status_code == 200, p.text
    w = ext.post("/api/v1/books", json={"title": uniq("ext")},
                 headers=bearer(token(keys[kind], claims(sub))))
    assert_error(w, 403, "forbidden")


def test_audience_as_list(ext, keys):
    assert me(ext, token(keys["ed"], claims(aud=["other", AUDIENCE]))).status_code == 200
    assert_refused(me(ext, token(keys["ed"], claims(aud=["other", "more"]))))


def test_refused_tokens(ext, keys):
    now = int(time.time())
    ed, rs, eck = keys["ed"], keys["rsa"], keys["ec"]
    stranger = gen("ed", "ed-1")  # same kid, a key the provider never published
    cases = {
        "unknown_kid": token(ed, claims(), kid="no-such-kid"),
        "wrong_key_same_kid": token(stranger, claims()),
        "rs256_header_ed_kid": jwt_encode({"alg": "RS256", "kid": "ed-1"}, claims(), rs.sign),
        "eddsa_header_rsa_kid": jwt_encode({"alg": "EdDSA", "kid": "rsa-1"}, claims(), ed.sign),
        "es256_header_rsa_kid": jwt_encode({"alg": "ES256", "kid": "rsa-1"}, claims(), eck.sign),
        "rs256_header_ec_kid": jwt_encode({"alg": "RS256", "kid": "ec-1"}, claims(), rs.sign),
        "no_kid_several_keys": token(ed, claims(), kid=None),
        "expired": token(ed, claims(iat=now - 7200, exp=now - 3600)),
        "no_exp": token(ed, claims(exp=None)),
        "not_yet_valid": token(ed, claims(nbf=now + 3600)),
        "wrong_issuer": token(ed, claims(iss="https://evil.example/")),
        "issuer_prefix": token(ed, claims(iss=ISSUER.rstrip("/"))),
        "no_issuer": token(ed, claims(iss=None)),
        "bookd_issuer": token(ed, claims(iss="bookd")),
        "wrong_audience": token(ed, claims(aud="someone-else")),
        "no_audience": token(ed, claims(aud=None)),
        "no_sub": token(ed, claims(sub=None)),
        "sub_not_string": token(ed, claims(sub=12345)),
        "sub_too_long": token(ed, claims(sub="s" * 300)),
        "empty_sub": token(ed, claims(sub="")),
        "use_enc_key": token(keys["enc"], claims()),
        "rsa_1024": token(keys["weak"], claims()),
        "alg_none": jwt_encode({"alg": "none", "kid": "ed-1"}, claims(), None),
        "alg_none_signed": jwt_encode({"alg": "none", "kid": "ed-1"}, claims(), ed.sign),
        "tampered": (lambda t: t.split(".")[0] + "." + b64url(json.dumps(claims(sub="admin")).encode())
                     + "." + t.split(".")[2])(token(ed, claims())),
        "es256_der_signature": jwt_encode(
            {"alg": "ES256", "kid": "ec-1"}, claims(),
            lambda m: eck.private.sign(m, ec.ECDSA(hashes.SHA256()))),
    }
    failures = []
    for name, tok in cases.items():
        r = me(ext, tok)
        if r.status_code != 401 or r.json()["error"]["message"] != "invalid or expired token":
            failures.append(f"{name}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)


def test_algorithm_confusion_with_public_keys(ext, keys):
    """HS256 tokens MACed with the provider's public key material."""
    secrets = {
        "rsa_pem": keys["rsa"].public_pem(),
        "rsa_der": keys["rsa"].public_der(),
        "ec_pem": keys["ec"].public_pem(),
        "ed_raw": keys["ed"].private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        "ed_pem": keys["ed"].public_pem(),
        "ed_x_b64": keys["ed"].jwk()["x"].encode(),
        "rsa_jwk_json": json.dumps(keys["rsa"].jwk()).encode(),
        "rsa_n_b64": keys["rsa"].jwk()["n"].encode(),
    }
    failures = []
    for name, secret in secrets.items():
        for kid in ("rsa-1", "ed-1", "ec-1", None):
            hdr = {"alg": "HS256", "typ": "JWT"}
            if kid:
                hdr["kid"] = kid
            for iss in (ISSUER, "bookd"):
                tok = jwt_encode(hdr, claims(iss=iss), hs256_sign(secret))
                r = me(ext, tok)
                if r.status_code != 401:
                    failures.append(f"{name} kid={kid} iss={iss}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)


def test_external_subject_cannot_become_a_local_user(ext, keys):
    local = register(ext)
    lu = local["user"]
    # sub = the local user's id, email = the local user's email, role claim admin
    tok = token(keys["ed"], claims(sub=lu["id"], email=lu["email"], role="admin",
                                   scope="read write admin"))
    r = me(ext, tok)
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["id"] != lu["id"]
    assert u["email"] != lu["email"]
    assert u["role"] == "reader" and u["scopes"] == "read"
    # the local account is untouched and still logs in with its password
    r = ext.get(ME, headers=bearer(local["access_token"]))
    assert r.json()["id"] == lu["id"] and r.json()["email"] == lu["email"]
    lr = ext.post("/api/v1/auth/login", json={"email": lu["email"],
                                              "password": "correct horse battery staple"})
    assert lr.status_code == 200 and lr.json()["user"]["id"] == lu["id"]
    # the external user has no password: login by its email is refused
    w = ext.post("/api/v1/auth/login", json={"email": u["email"], "password": ""})
    assert w.status_code in (401, 422)


def test_external_claim_of_admin_email(idp, keys, tmp_path):
    """The master key's built-in administrator (admin@bookd.local) must not
    be claimable by an external token's email on a fresh server."""
    srv = start_server(tmp_path / "fresh", env=users_env(
        BOOKD_JWKS_URL=idp.url, BOOKD_JWT_ISSUER=ISSUER, BOOKD_JWT_AUDIENCE=AUDIENCE))
    try:
        tok = token(keys["ed"], claims(email="admin@bookd.local"))
        r = me(srv, tok)
        assert r.status_code == 200
        assert r.json()["role"] == "reader"
        m = srv.get(ME, headers=ADMIN)
        assert m.status_code == 200
        problems = []
        if m.json()["id"] == r.json()["id"]:
            problems.append("the master key's user is the external account that claimed "
                            "admin@bookd.local")
        if m.json()["role"] != "admin":
            problems.append(f"GET /auth/me with the master key says role {m.json()['role']!r}")
        assert not problems, "\n".join(problems)
    finally:
        assert srv.stop() == 0


def test_local_registration_cannot_block_an_external_subject(ext, keys):
    """Someone registering the address bookd would synthesise for an external
    subject ("<sub>@external.invalid"), or the address the provider claims,
    must not lock that subject out, nor become it."""
    problems = []
    for with_email in (False, True):
        sub = uniq("known-sub")
        claimed = new_email("claimed") if with_email else None
        squats = []
        # the synthetic address may be refused outright (a reserved domain)
        sq = ext.post("/api/v1/auth/register",
                      json={"email": f"{sub}@external.invalid", "password": "squatter password"})
        if sq.status_code == 201:
            squats.append(sq.json()["user"]["id"])
        if claimed:
            squats.append(register(ext, claimed)["user"]["id"])
        r = me(ext, token(keys["ed"], claims(sub, email=claimed)))
        if r.status_code != 200:
            problems.append(f"email claim {claimed!r}, '<sub>@external.invalid' registered: "
                            f"GET /auth/me -> {r.status_code} {r.text[:150]}")
            continue
        if r.json()["id"] in squats:
            problems.append("the external subject became the squatter's account")
        again = me(ext, token(keys["rsa"], claims(sub)))
        if again.status_code != 200 or again.json()["id"] != r.json()["id"]:
            problems.append(f"second sign-in: {again.status_code} {again.text[:150]}")
    assert not problems, "\n".join(problems)


def test_external_subject_cannot_be_the_master_key_user(ext, keys):
    m = ext.get(ME, headers=ADMIN)
    assert m.status_code == 200
    for sub in ("bookd:master-key", m.json()["id"], "admin@bookd.local"):
        r = me(ext, token(keys["ed"], claims(sub, email=m.json()["email"])))
        if r.status_code == 200:
            assert r.json()["id"] != m.json()["id"], sub
            assert r.json()["role"] == "reader", sub
        else:
            assert_refused(r)
    w = ext.post("/api/v1/books", json={"title": uniq("ext-master")},
                 headers=bearer(token(keys["ed"], claims("bookd:master-key"))))
    assert w.status_code in (401, 403), w.text


def test_first_sight_concurrently(ext, keys):
    sub = uniq("race")
    toks = [token(keys[k], claims(sub, email=new_email("race"))) for k in ("ed", "rsa", "ec") * 3]
    with concurrent.futures.ThreadPoolExecutor(len(toks)) as ex:
        rs = list(ex.map(lambda t: requests.get(ext.url(ME), headers=bearer(t), timeout=10), toks))
    codes = [r.status_code for r in rs]
    assert codes == [200] * len(toks), [(r.status_code, r.text[:120]) for r in rs]
    assert len({r.json()["id"] for r in rs}) == 1


def test_local_tokens_still_work_with_jwks(ext):
    reg = register(ext)
    assert me(ext, reg["access_token"]).status_code == 200
    # a local token must carry the local issuer
    now = int(time.time())
    bad = hs256_token({"iss": ISSUER, "aud": AUDIENCE, "sub": reg["user"]["id"],
                       "iat": now, "exp": now + 600}, secret=JWT_SECRET)
    assert_refused(me(ext, bad))


def test_unknown_kid_refetch_is_rate_limited(ext, idp, keys):
    me(ext, token(keys["ed"], claims()))  # make sure the first fetch happened
    before = idp.hit_count()
    for i in range(6):
        assert_refused(me(ext, token(keys["ed"], claims(), kid=f"unknown-{i}")))
    assert idp.hit_count() - before <= 1, idp.hits


def test_zz_key_added_later_is_picked_up(ext, idp, keys):
    """Last in the module: a key the provider adds later is used once the
    server refetches the JWKS for an unknown kid (at most every 10 s)."""
    # the first fetch: under pytest-xdist this server need not have seen
    # the module's other tests
    assert me(ext, token(keys["ed"], claims())).status_code == 200
    assert idp.hit_count() >= 1
    late = gen("ed", "ed-late")
    idp.add(late)
    sub = uniq("late")
    wait = idp.last_hit() + REFETCH_INTERVAL + 0.3 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    before = idp.hit_count()
    r = me(ext, token(late, claims(sub)))
    assert r.status_code == 200, r.text
    assert idp.hit_count() == before + 1
    # known now: no further fetch
    assert me(ext, token(late, claims(sub))).status_code == 200
    assert idp.hit_count() == before + 1
    # the old keys are still in the refreshed set
    assert ext.assert_alive() is None
