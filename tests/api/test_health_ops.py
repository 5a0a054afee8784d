"""Health endpoints, request ids, structured logs, CORS, routing (404/405)."""
import json
import re

import pytest

from conftest import ADMIN, SANE_RID_RE, assert_error, uniq


# ---------------------------------------------------------------- health

def test_health(server):
    r = server.get("/health")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "healthy"}


def test_health_live(server):
    r = server.get("/health/live")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "ok"}


def test_health_ready(server):
    r = server.get("/health/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert isinstance(body["checks"], dict)
    assert body["checks"]["database"] == "ok"


# ------------------------------------------------------------ request ids

def test_request_id_echoed(server):
    rid = uniq("rid") + ".A_b"
    r = server.get("/health", headers={"X-Request-ID": rid})
    assert r.headers.get("X-Request-ID") == rid


def test_request_id_128_chars_is_accepted(server):
    rid = ("a1._-" * 30)[:128]
    r = server.get("/health", headers={"X-Request-ID": rid})
    assert r.headers.get("X-Request-ID") == rid


def test_request_id_generated_when_absent(server):
    r1 = server.get("/health")
    r2 = server.get("/health")
    for r in (r1, r2):
        rid = r.headers.get("X-Request-ID")
        assert rid and SANE_RID_RE.match(rid), rid
    assert r1.headers["X-Request-ID"] != r2.headers["X-Request-ID"]


@pytest.mark.parametrize("bad", [
    "has space",
    "semi;colon",
    "slash/inside",
    "x" * 129,
    "quote\"d",
])
def test_insane_request_id_replaced(server, bad):
    r = server.get("/health", headers={"X-Request-ID": bad})
    assert r.status_code == 200
    rid = r.headers.get("X-Request-ID")
    assert rid and rid != bad
    assert SANE_RID_RE.match(rid), rid


def test_request_id_on_errors_matches_body(server):
    rid = uniq("errrid")
    r = server.get("/no/such/route", headers={"X-Request-ID": rid})
    err = assert_error(r, 404, "not_found")
    assert err["request_id"] == rid


def test_generated_request_id_in_error_body(server):
    r = server.get("/api/v1/books/00000000-0000-7000-8000-000000000000")
    err = assert_error(r, 404, "not_found")
    assert err["request_id"] == r.headers["X-Request-ID"]


# ------------------------------------------------------------------ logs

def test_request_log_line(server):
    rid = uniq("logrid")
    r = server.get("/health/live", headers={"X-Request-ID": rid})
    assert r.status_code == 200
    recs = server.wait_log(lambda x: x.get("request_id") == rid)
    assert len(recs) == 1, f"expected exactly one log line for {rid}, got {recs}"
    rec = recs[0]
    for key in ("time", "level", "request_id", "method", "path", "status",
                "bytes", "duration_ms"):
        assert key in rec, f"log line lacks {key}: {rec}"
    assert rec["msg"] == "request"
    assert rec["method"] == "GET"
    assert rec["path"] == "/health/live"
    assert rec["status"] == 200
    assert rec["level"] == "info"
    assert isinstance(rec["bytes"], int) and rec["bytes"] > 0
    assert isinstance(rec["duration_ms"], (int, float)) and rec["duration_ms"] >= 0
    assert isinstance(rec["time"], str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", rec["time"])


def test_request_log_for_error_and_generated_id(server):
    r = server.delete("/api/v1/books/00000000-0000-7000-8000-000000000000",
                      headers=ADMIN)
    assert r.status_code == 404
    rid = r.headers["X-Request-ID"]
    recs = server.wait_log(lambda x: x.get("request_id") == rid)
    assert len(recs) == 1, recs
    assert recs[0]["status"] == 404
    assert recs[0]["method"] == "DELETE"
    assert recs[0]["path"] == "/api/v1/books/00000000-0000-7000-8000-000000000000"


def test_every_stderr_line_is_json(server):
    server.get("/health")
    # that request's line is written after its answer, maybe while we read:
    # judge complete lines only (the server writes each with one write())
    text = server.log_text()
    lines = [ln for ln in text[:text.rfind("\n") + 1].splitlines() if ln.strip()]
    assert lines, "server wrote nothing to stderr"
    for ln in lines:
        obj = json.loads(ln)
        assert isinstance(obj, dict) and "level" in obj and "time" in obj, ln


# ------------------------------------------------------------------ CORS

def test_cors_allowed_origin(server):
    r = server.get("/health", headers={"Origin": "http://localhost:3000"})
    assert r.status_code == 200
    assert r.headers.get("Access-Control-Allow-Origin") == "http://localhost:3000"
    vary = [v.strip().lower() for v in r.headers.get("Vary", "").split(",")]
    assert "origin" in vary


def test_cors_other_origin_gets_no_acao(server):
    r = server.get("/health", headers={"Origin": "http://evil.example"})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_no_origin_no_acao(server):
    r = server.get("/health")
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_preflight(server):
    r = server.request("OPTIONS", "/api/v1/books", headers={
        "Origin": "http://localhost:3000",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key",
    })
    assert r.status_code == 204, r.text
    assert r.headers.get("Access-Control-Allow-Origin") == "http://localhost:3000"
    methods = {m.strip().upper() for m in r.headers.get("Access-Control-Allow-Methods", "").split(",")}
    assert "POST" in methods, methods
    allowed = {h.strip().lower() for h in r.headers.get("Access-Control-Allow-Headers", "").split(",")}
    for h in ("content-type", "authorization", "x-api-key", "x-request-id", "idempotency-key"):
        assert h in allowed, f"{h} missing from Access-Control-Allow-Headers {allowed}"
    max_age = r.headers.get("Access-Control-Max-Age")
    assert max_age is not None and max_age.strip().isdigit() and int(max_age) > 0
    assert r.content == b""


def test_cors_custom_origins(server_factory):
    srv = server_factory(env={"BOOKD_CORS_ORIGINS": "https://a.example,https://b.example"})
    for origin in ("https://a.example", "https://b.example"):
        r = srv.get("/health", headers={"Origin": origin})
        assert r.headers.get("Access-Control-Allow-Origin") == origin
    r = srv.get("/health", headers={"Origin": "http://localhost:3000"})
    assert "Access-Control-Allow-Origin" not in r.headers


# --------------------------------------------------------------- routing

@pytest.mark.parametrize("path", [
    "/nope",
    "/api/v1/nope",
    "/api/v2/books",
    "/api/v1/books/00000000-0000-7000-8000-000000000000/whatever",
    "/healthz",
])
def test_unknown_route_404(server, path):
    assert_error(server.get(path), 404, "not_found")


def _allow(r):
    return {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}


def test_wrong_method_on_health_is_405(server):
    r = server.delete("/health")
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in _allow(r)


def test_wrong_method_on_live_is_405(server):
    r = server.post("/health/live", json={})
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in _allow(r)


def test_wrong_method_on_books_collection_is_405(server):
    r = server.put("/api/v1/books", json={"title": "x"}, headers=ADMIN)
    assert_error(r, 405, "method_not_allowed")
    assert {"GET", "POST"} <= _allow(r)


def test_wrong_method_on_book_is_405(server, book):
    r = server.post(f"/api/v1/books/{book['id']}", json={"title": "x"}, headers=ADMIN)
    assert_error(r, 405, "method_not_allowed")
    assert {"GET", "PATCH", "DELETE"} <= _allow(r)


# -------------------------------------------- X-Request-ID on every status

def test_request_id_on_every_kind_of_response(server, book):
    base = f"/api/v1/books/{book['id']}"
    c = server.add_chapter(book["id"])
    etag = server.get(f"{base}/chapters/{c['id']}").headers["ETag"]
    probes = [
        ("GET", "/health", {}, None, 200),
        ("POST", "/api/v1/books", ADMIN, {"title": uniq("rid probe")}, 201),
        ("GET", f"{base}/chapters/{c['id']}", {"If-None-Match": etag}, None, 304),
        ("DELETE", f"{base}/chapters/{c['id']}", ADMIN, None, 204),
        ("OPTIONS", "/api/v1/books", {"Origin": "http://localhost:3000",
                                      "Access-Control-Request-Method": "POST"}, None, 204),
        ("GET", "/nope", {}, None, 404),
        ("DELETE", "/health", {}, None, 405),
        ("POST", "/api/v1/books", {}, {"title": "x"}, 401),
        ("POST", "/api/v1/books", ADMIN, {"title": ""}, 422),
    ]
    for method, path, headers, body, status in probes:
        rid = uniq("probe")
        h = dict(headers, **{"X-Request-ID": rid})
        r = server.request(method, path, headers=h, json=body)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        assert r.headers.get("X-Request-ID") == rid, (method, path, dict(r.headers))
        recs = server.wait_log(lambda x, rid=rid: x.get("request_id") == rid)
        assert len(recs) == 1 and recs[0]["status"] == status, (method, path, recs)
        assert recs[0]["method"] == method


def test_ready_is_503_while_the_database_is_unusable(server_factory, tmp_path):
    """Break the schema under a running server: readiness must say so, then recover."""
    import sqlite3
    import pgtest
    data = tmp_path / "ready-data"
    srv = server_factory(data_dir=data)
    assert srv.get("/health/ready").status_code == 200

    if pgtest.enabled():
        db = pgtest.database_url_for(data).rsplit("/", 1)[1]
        def run(sql):
            pgtest.server().psql(sql, db=db)
    else:
        conn = sqlite3.connect(str(data / "bookd.db"), timeout=10)
        def run(sql):
            conn.execute(sql)
            conn.commit()
    run("ALTER TABLE schema_migrations RENAME TO schema_migrations_away")
    r = srv.get("/health/ready")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "unavailable"
    run("ALTER TABLE schema_migrations_away RENAME TO schema_migrations")
    assert srv.get("/health/ready").status_code == 200
