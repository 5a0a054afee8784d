"""CORS as a browser checks it: the exact headers of actual answers and of
preflights (for any path, the drop-in chat routes included, whether or not a
route exists), credentials only for listed origins, `Vary: Origin`, and
never a literal `*`."""
import pytest

from conftest import raw_http

SITE = "http://localhost:3000"  # the default BOOKD_CORS_ORIGINS

CHAT_ROUTES = [
    "/chat", "/api/chat", "/api/ask", "/api/query", "/chat/run", "/api/ask-selection",
    "/api/v1/chat", "/v1/chat/ask/stream", "/api/v1/sessions", "/api/v1/chat/session",
    "/api/feedback", "/api/v1/chatbot/query", "/no/such/route",
]
REQUESTED = "content-type,authorization,x-user-id,x-anonymous-session-id,x-api-key"


def request(port, method, path, headers, body=b""):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    for k, v in headers.items():
        head += f"{k}: {v}\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return raw_http(port, (head + "\r\n").encode(), body)


def tokens(value):
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


def preflight(port, path, origin=SITE, method="POST", req_headers=REQUESTED, extra=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if req_headers:
        h["Access-Control-Request-Headers"] = req_headers
    h.update(extra or {})
    return request(port, "OPTIONS", path, h)


# ---------------------------------------------------------------- actual answers

def test_listed_origin_gets_credentials(server):
    status, h, _ = request(server.port, "GET", "/health", {"Origin": SITE})
    assert status == 200
    assert h.get("access-control-allow-origin") == SITE
    assert h.get("access-control-allow-credentials") == "true"
    assert "origin" in tokens(h.get("vary"))
    assert "x-request-id" in tokens(h.get("access-control-expose-headers"))


def test_errors_carry_cors_too(server):
    """A browser shows a page the 401/404/413 only if it may read it."""
    status, h, _ = request(server.port, "GET", "/api/v1/auth/me", {"Origin": SITE})
    assert status == 401
    assert h.get("access-control-allow-origin") == SITE
    assert h.get("access-control-allow-credentials") == "true"
    status, h, _ = request(server.port, "GET", "/no/such/thing", {"Origin": SITE})
    assert status == 404
    assert h.get("access-control-allow-origin") == SITE
    # an answer given before the body is read
    status, h, _ = request(server.port, "POST", "/api/v1/books",
                           {"Origin": SITE, "Content-Type": "application/json"}, b"{}")
    assert status == 401
    assert h.get("access-control-allow-origin") == SITE


def test_unlisted_origin_gets_nothing_but_vary(server):
    status, h, _ = request(server.port, "GET", "/health", {"Origin": "https://evil.example"})
    assert status == 200
    assert "access-control-allow-origin" not in h
    assert "access-control-allow-credentials" not in h
    assert "origin" in tokens(h.get("vary"))


def test_vary_origin_without_an_origin(server):
    """A cache in between must not serve an answer without CORS headers to a
    page that needs them."""
    status, h, _ = request(server.port, "GET", "/health", {})
    assert status == 200
    assert "origin" in tokens(h.get("vary"))
    assert "access-control-allow-origin" not in h


# ---------------------------------------------------------------- preflight

@pytest.mark.parametrize("path", CHAT_ROUTES)
def test_preflight_for_chat_routes(server, path):
    status, h, body = preflight(server.port, path)
    assert status == 204, (path, status, body[:200])
    assert body == b""
    assert h.get("access-control-allow-origin") == SITE
    assert h.get("access-control-allow-credentials") == "true"
    assert "post" in tokens(h.get("access-control-allow-methods"))
    allowed = tokens(h.get("access-control-allow-headers"))
    assert "*" not in allowed  # means nothing to a credentialed request
    missing = tokens(REQUESTED) - allowed
    assert not missing, f"not allowed: {missing}"
    assert int(h.get("access-control-max-age", "0")) > 0
    assert "origin" in tokens(h.get("vary"))


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_preflight_methods(server, method):
    status, h, _ = preflight(server.port, "/api/v1/books/x", method=method, req_headers=None)
    assert status == 204
    assert method.lower() in tokens(h.get("access-control-allow-methods"))


def test_preflight_with_sse_headers(server):
    status, h, _ = preflight(server.port, "/api/v1/chat",
                             req_headers="accept,cache-control,last-event-id,content-type")
    assert status == 204
    assert {"accept", "cache-control", "last-event-id", "content-type"} <= tokens(
        h.get("access-control-allow-headers"))


def test_preflight_from_unlisted_origin_is_not_allowed(server):
    status, h, _ = preflight(server.port, "/api/chat", origin="https://evil.example")
    assert "access-control-allow-origin" not in h
    assert "access-control-allow-credentials" not in h


def test_preflight_private_network(server):
    status, h, _ = preflight(server.port, "/api/chat",
                             extra={"Access-Control-Request-Private-Network": "true"})
    assert status == 204
    assert h.get("access-control-allow-private-network") == "true"
    status, h, _ = preflight(server.port, "/api/chat")
    assert "access-control-allow-private-network" not in h


# ---------------------------------------------------------------- configuration

def test_wildcard_echoes_without_credentials(server_factory):
    """`*`: any page may read answers, but not with the visitor's
    credentials (the Fetch standard forbids `*` with credentials; echoing
    every origin with credentials would hand the visitor's session to any
    site)."""
    srv = server_factory(env={"BOOKD_CORS_ORIGINS": "*"})
    for origin in ("https://any.example", "http://localhost:5173"):
        status, h, _ = request(srv.port, "GET", "/health", {"Origin": origin})
        assert h.get("access-control-allow-origin") == origin  # never a literal *
        assert "access-control-allow-credentials" not in h
        status, h, _ = preflight(srv.port, "/api/chat", origin=origin)
        assert status == 204
        assert h.get("access-control-allow-origin") == origin
        assert "access-control-allow-credentials" not in h


def test_listed_and_wildcard(server_factory):
    srv = server_factory(env={"BOOKD_CORS_ORIGINS": "https://book.example.org, *"})
    _, h, _ = request(srv.port, "GET", "/health", {"Origin": "https://book.example.org"})
    assert h.get("access-control-allow-credentials") == "true"
    _, h, _ = request(srv.port, "GET", "/health", {"Origin": "https://other.example"})
    assert h.get("access-control-allow-origin") == "https://other.example"
    assert "access-control-allow-credentials" not in h


def test_configured_origin_case_and_slash(server_factory):
    srv = server_factory(env={"BOOKD_CORS_ORIGINS": "HTTPS://Book.Example.org/"})
    _, h, _ = request(srv.port, "GET", "/health", {"Origin": "https://book.example.org"})
    assert h.get("access-control-allow-origin") == "https://book.example.org"
    assert h.get("access-control-allow-credentials") == "true"


def test_no_origins_configured_no_cors(server_factory):
    srv = server_factory(env={"BOOKD_CORS_ORIGINS": ""})
    _, h, _ = request(srv.port, "GET", "/health", {"Origin": SITE})
    assert "access-control-allow-origin" not in h
    assert "vary" not in h
