"""The HTTP edge under hostile clients: request framing (smuggling), JSON for
every error, connection limits per address and in all, request deadlines
(slowloris), authorization before the body is read, UTF-8 at the boundary,
and client addresses behind trusted proxies.

Slow clients come from 127.0.0.2 (all of 127/8 is loopback on Linux), so the
server sees them as another address than the probes from 127.0.0.1."""
import json
import os
import socket
import time

import pytest

from conftest import ADMIN, API_KEY, SLOW, assert_error, uniq


# --------------------------------------------------------------------------
# raw sockets
# --------------------------------------------------------------------------

def connect(port, source="127.0.0.1", timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_all(s, timeout=5.0):
    """Everything the server sends until it closes (or the timeout)."""
    s.settimeout(0.2)
    buf = b""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


def exchange(port, raw: bytes, timeout=5.0):
    s = connect(port)
    try:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_all(s, timeout)
    finally:
        s.close()


def parse_one(data: bytes):
    """(status, headers, body) of the one response in data; asserts there is
    exactly one status line and one header block."""
    assert data.startswith(b"HTTP/1."), data[:200]
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        assert k.lower() not in headers or k.lower() in ("vary",), f"header {k} twice: {head!r}"
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", len(rest)))
    body, extra = rest[:n], rest[n:]
    assert b"HTTP/1." not in extra, f"a second response follows: {data!r}"
    return status, headers, body


def assert_json_error(data, status, code, rid=None):
    st, headers, body = parse_one(data)
    assert st == status, (st, data[:400])
    assert headers.get("content-type", "").startswith("application/json"), data[:400]
    err = json.loads(body)["error"]
    assert err["code"] == code, err
    assert err["message"], err
    assert err["request_id"] == headers.get("x-request-id"), (err, headers)
    if rid:
        assert err["request_id"] == rid
    return err, headers


def book_post(tag, extra_headers, body=None, host=True, version="HTTP/1.1"):
    payload = body if body is not None else json.dumps({"title": tag}).encode()
    h = f"POST /api/v1/books {version}\r\n"
    if host:
        h += "Host: 127.0.0.1\r\n"
    h += (f"Content-Type: application/json\r\nX-API-Key: {API_KEY}\r\n"
          f"X-Request-ID: {tag}\r\n{extra_headers}\r\n")
    return h.encode() + payload


# --------------------------------------------------------------------------
# framing
# --------------------------------------------------------------------------

def chunked(payload):
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"


FRAMING = {
    "two content-lengths": lambda p: (f"Content-Length: {len(p)}\r\nContent-Length: 0\r\n", p),
    "two equal content-lengths": lambda p: (f"Content-Length: {len(p)}\r\nContent-Length: {len(p)}\r\n", p),
    "two transfer-encodings": lambda p: ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked(p)),
    "space before colon": lambda p: ("Transfer-Encoding : chunked\r\n", chunked(p)),
    "identity, chunked": lambda p: ("Transfer-Encoding: identity, chunked\r\n", chunked(p)),
    "gzip": lambda p: ("Transfer-Encoding: gzip\r\n", chunked(p)),
    "chunked with length": lambda p: (f"Content-Length: {len(chunked(p))}\r\nTransfer-Encoding: chunked\r\n",
                                      chunked(p)),
    "two hosts": lambda p: (f"Host: evil.example\r\nContent-Length: {len(p)}\r\n", p),
}


@pytest.mark.parametrize("case", sorted(FRAMING))
def test_framing_400_json_one_header_block(server, case):
    tag = uniq("frame")
    payload = json.dumps({"title": tag}).encode()
    hdrs, body = FRAMING[case](payload)
    data = exchange(server.port, book_post(tag, hdrs, body))
    err, headers = assert_json_error(data, 400, "bad_request", rid=tag)
    assert headers.get("connection", "").lower() == "close", headers
    assert server.books_titled(tag) == []
    server.assert_alive()


@pytest.mark.parametrize("version", ["HTTP/1.1"])
def test_missing_host_400(server, version):
    tag = uniq("nohost")
    payload = json.dumps({"title": tag}).encode()
    data = exchange(server.port, book_post(tag, f"Content-Length: {len(payload)}\r\n", payload,
                                           host=False, version=version))
    assert_json_error(data, 400, "bad_request", rid=tag)
    assert server.books_titled(tag) == []


def test_http10_without_host_is_fine(server):
    data = exchange(server.port, b"GET /health/live HTTP/1.0\r\n\r\n")
    st, _, body = parse_one(data)
    assert st == 200 and json.loads(body) == {"status": "ok"}


def test_header_too_large_json_431(server):
    tag = uniq("bighead")
    data = exchange(server.port, (f"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: {tag}\r\n"
                                  f"X-Pad: {'a' * 20000}\r\n\r\n").encode())
    assert_json_error(data, 431, "headers_too_large", rid=tag)


# What libmicrohttpd 0.9.75 answers by itself, before any callback of ours
# runs (docs/DESIGN.md, "The HTTP edge"): an error status, one response, the
# connection closed, and the server alive.
MHD_OWN = {
    "content-length garbage": (b"POST /api/v1/books HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n", 400),
    "content-length negative": (b"POST /api/v1/books HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    "content-length overflow": (b"POST /api/v1/books HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Length: 99999999999999999999999\r\n\r\n", 413),
    "header line without colon": (b"GET /health/live HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400),
    "bad version": (b"GET /health/live HTTP/9.9\r\nHost: x\r\n\r\n", 505),
    "bad chunk size": (b"POST /api/v1/books HTTP/1.1\r\nHost: x\r\nX-API-Key: " + API_KEY.encode()
                       + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
}


@pytest.mark.parametrize("case", sorted(MHD_OWN))
def test_libmicrohttpd_own_answers_are_single_and_close(server, case):
    raw, status = MHD_OWN[case]
    data = exchange(server.port, raw)
    st, headers, _ = parse_one(data)
    assert st == status, data[:300]
    server.assert_alive()


# --------------------------------------------------------------------------
# Content-Length checked strictly, and bodies refused before they are read
# --------------------------------------------------------------------------

def test_anonymous_upload_refused_before_the_body(server):
    uploads = server.data_dir / "uploads"
    before = set(os.listdir(uploads)) if uploads.is_dir() else set()
    tag = uniq("anon-upload")
    s = connect(server.port)
    try:
        s.sendall((f"POST /api/v1/books/import HTTP/1.1\r\nHost: x\r\nX-Request-ID: {tag}\r\n"
                   f"Content-Type: text/markdown\r\nX-Filename: big.md\r\n"
                   f"Content-Length: {60 * 1024 * 1024}\r\n\r\n").encode() + b"# x\n" * 1024)
        t0 = time.monotonic()
        data = read_all(s, timeout=3)
        assert time.monotonic() - t0 < 2.5 * SLOW, "the answer waited for the body"
    finally:
        s.close()
    assert_json_error(data, 401, "unauthorized", rid=tag)
    after = set(os.listdir(uploads)) if uploads.is_dir() else set()
    assert after == before, f"files appeared in uploads/: {after - before}"


def test_reader_upload_refused_before_the_body(server_factory):
    from conftest import make_user, users_env
    server = server_factory(env=users_env())
    user = make_user(server, tag="edge-reader")
    auth = user["headers"]
    name, value = next(iter(auth.items()))
    tag = uniq("reader-upload")
    s = connect(server.port)
    try:
        s.sendall((f"POST /api/v1/books/import HTTP/1.1\r\nHost: x\r\nX-Request-ID: {tag}\r\n"
                   f"{name}: {value}\r\nContent-Type: text/markdown\r\n"
                   f"Content-Length: {10 * 1024 * 1024}\r\n\r\n").encode())
        data = read_all(s, timeout=3)
    finally:
        s.close()
    assert_json_error(data, 403, "forbidden", rid=tag)


def test_anonymous_json_write_refused_before_the_body(server):
    tag = uniq("anon-json")
    s = connect(server.port)
    try:
        s.sendall((f"POST /api/v1/books HTTP/1.1\r\nHost: x\r\nX-Request-ID: {tag}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {1000 * 1000}\r\n\r\n").encode())
        data = read_all(s, timeout=3)
    finally:
        s.close()
    assert_json_error(data, 401, "unauthorized", rid=tag)


# --------------------------------------------------------------------------
# UTF-8 at the boundary
# --------------------------------------------------------------------------

def multipart(fields, filename=b"book.md", content=b"# Title\n\nText.\n"):
    boundary = b"----bookdedge"
    out = b""
    for k, v in fields:
        out += (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + k + b"\"\r\n\r\n"
                + v + b"\r\n")
    out += (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
            + filename + b"\"\r\nContent-Type: text/markdown\r\n\r\n" + content + b"\r\n")
    out += b"--" + boundary + b"--\r\n"
    return b"multipart/form-data; boundary=" + boundary, out


def post_upload(port, ctype, body, extra=b""):
    tag = uniq("up")
    head = (b"POST /api/v1/books/import HTTP/1.1\r\nHost: x\r\nX-API-Key: " + API_KEY.encode()
            + b"\r\nX-Request-ID: " + tag.encode() + b"\r\nContent-Type: " + ctype + b"\r\n" + extra
            + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
    return exchange(port, head + body), tag


def test_upload_filename_invalid_utf8_400(server):
    ctype, body = multipart([], filename=b"caf\xe9.md")
    data, tag = post_upload(server.port, ctype, body)
    err, _ = assert_json_error(data, 400, "bad_request", rid=tag)
    assert [d["field"] for d in err["details"]] == ["filename"], err


@pytest.mark.parametrize("field", [b"title", b"author"])
def test_upload_form_field_invalid_utf8_400(server, field):
    ctype, body = multipart([(field, b"Caf\xe9 \xff")])
    data, tag = post_upload(server.port, ctype, body)
    err, _ = assert_json_error(data, 400, "bad_request", rid=tag)
    assert [d["field"] for d in err["details"]] == [field.decode()], err


def test_upload_too_many_form_fields_422(server):
    ctype, body = multipart([(f"f{i}".encode(), b"x") for i in range(9)])
    data, tag = post_upload(server.port, ctype, body)
    err, _ = assert_json_error(data, 422, "validation_failed", rid=tag)
    assert err["details"][0]["field"] == "form", err


def test_upload_form_field_too_long_422(server):
    ctype, body = multipart([(b"title", b"t" * 1500)])
    data, tag = post_upload(server.port, ctype, body)
    err, _ = assert_json_error(data, 422, "validation_failed", rid=tag)
    assert err["details"][0]["field"] == "title", err
    assert "1024" in err["message"], err


def test_upload_x_filename_invalid_utf8_400(server):
    data, tag = post_upload(server.port, b"text/markdown", b"# T\n\nx\n", extra=b"X-Filename: caf\xe9.md\r\n")
    err, _ = assert_json_error(data, 400, "bad_request", rid=tag)
    assert err["details"][0]["field"] == "X-Filename", err


def test_query_invalid_utf8_400(server):
    r = server.get("/api/v1/search?q=caf%E9")
    err = assert_error(r, 400, "bad_request")
    assert err["details"][0]["field"] == "q", err
    r = server.post("/api/v1/books/import?filename=caf%E9.md", data=b"# T\n\nx\n",
                    headers={**ADMIN, "Content-Type": "text/markdown"})
    err = assert_error(r, 400, "bad_request")
    assert err["details"][0]["field"] == "filename", err


def test_valid_utf8_upload_still_accepted(server):
    ctype, body = multipart([(b"title", "Café €".encode())], filename="café.md".encode())
    data, tag = post_upload(server.port, ctype, body)
    st, _, body = parse_one(data)
    assert st == 202, body[:300]


# --------------------------------------------------------------------------
# connection limits and deadlines (small limits: each test takes seconds)
# --------------------------------------------------------------------------

def test_over_connection_limit_gets_503(server_factory):
    srv = server_factory(env={"BOOKD_MAX_CONNECTIONS": "4", "BOOKD_REQUEST_TIMEOUT": "30"})
    idle = [connect(srv.port, source="127.0.0.2") for _ in range(4)]
    try:
        time.sleep(0.3)
        tag = uniq("full")
        data = exchange(srv.port, f"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: {tag}\r\n\r\n".encode(),
                        timeout=3)
        assert data, "no answer over the connection limit (the client hangs)"
        err, headers = assert_json_error(data, 503, "unavailable", rid=tag)
        assert headers.get("retry-after") == "1"
        assert headers.get("connection", "").lower() == "close"
    finally:
        for s in idle:
            s.close()
    time.sleep(0.3)
    srv.assert_alive()


def test_slowloris_from_one_address(server_factory):
    """One address opens 40 connections and trickles request heads. Beyond
    its limit it is refused at once; the rest are cut at the request deadline
    however often they send a byte; another address is served throughout."""
    srv = server_factory(env={"BOOKD_MAX_CONNECTIONS_PER_IP": "8", "BOOKD_REQUEST_TIMEOUT": "2",
                              "BOOKD_CONN_TIMEOUT": "30"})
    socks = []
    for _ in range(40):
        try:
            s = connect(srv.port, source="127.0.0.2", timeout=1)
            s.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            pass
    open_ = set(range(len(socks)))
    t0 = time.monotonic()
    probes = []
    early_closed = None
    while time.monotonic() - t0 < 4.0 * SLOW:
        for i in list(open_):
            try:
                socks[i].sendall(b"X")
                socks[i].setblocking(False)
                try:
                    if socks[i].recv(4096) == b"":
                        open_.discard(i)
                except BlockingIOError:
                    pass
                finally:
                    socks[i].setblocking(True)
            except OSError:
                open_.discard(i)
        if early_closed is None and time.monotonic() - t0 > 1.0:
            early_closed = len(socks) - len(open_)
        p0 = time.monotonic()
        r = srv.get("/health/live", timeout=2)
        probes.append((r.status_code, time.monotonic() - p0))
        time.sleep(0.25)
    for s in socks:
        s.close()
    assert all(st == 200 for st, _ in probes), probes
    assert max(d for _, d in probes) < 1.0 * SLOW, probes
    # 8 taken, a few more to be told 503 when they finish a head, the rest refused
    assert early_closed is not None and early_closed >= 40 - 8 - 4, early_closed
    # past the 2 s deadline, every trickling connection is closed
    assert not open_, f"{len(open_)} slow connection(s) still open after 4 s"
    srv.assert_alive()


def test_slow_body_is_cut_at_the_deadline(server_factory):
    srv = server_factory(env={"BOOKD_REQUEST_TIMEOUT": "2"})
    s = connect(srv.port)
    try:
        s.sendall((f"POST /api/v1/books HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode())
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 5 * SLOW:
            try:
                s.sendall(b" ")
            except OSError:
                closed = True
                break
            s.setblocking(False)
            try:
                if s.recv(4096) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            finally:
                s.setblocking(True)
            time.sleep(0.3)
        assert closed, "a body trickling a byte at a time outlived the request deadline"
        assert time.monotonic() - t0 < 4 * SLOW
    finally:
        s.close()
    srv.assert_alive()


# --------------------------------------------------------------------------
# trusted proxies
# --------------------------------------------------------------------------

def _ask(srv, xff=None, fwd=None):
    h = {}
    if xff:
        h["X-Forwarded-For"] = xff
    if fwd:
        h["Forwarded"] = fwd
    return srv.post("/api/v1/chatbot/query", json={"question": "What is a robot?"}, headers=h)


def test_forwarded_for_only_from_trusted_proxies(server_factory):
    srv = server_factory(env={"BOOKD_TRUSTED_PROXIES": "127.0.0.1/32, 10.9.0.0/16",
                              "BOOKD_CHAT_ANONYMOUS": "true", "BOOKD_CHAT_ANON_PER_MINUTE": "1"})
    # 203.0.113.5 spends its burst of 2 ...
    for _ in range(2):
        assert _ask(srv, xff="203.0.113.5").status_code != 429
    assert_error(_ask(srv, xff="203.0.113.5"), 429, "rate_limited")
    # ... which neither another client nor the proxy itself shares
    assert _ask(srv, xff="203.0.113.6").status_code != 429
    # the right-most untrusted address counts: what the client prepended does not
    assert_error(_ask(srv, xff="198.51.100.1, 203.0.113.5"), 429, "rate_limited")
    assert_error(_ask(srv, xff="198.51.100.1, 203.0.113.5, 10.9.1.1"), 429, "rate_limited")
    # only X-Forwarded-For (the default header): a Forwarded the proxy passed
    # through speaks for nobody, so this is the proxy's own address
    assert _ask(srv, fwd='for="203.0.113.5:4711";proto=https').status_code != 429


def _ask_from(port, source, headers):
    """A chat question over a socket bound to `source`; the status code."""
    body = json.dumps({"question": "What is a robot?"}).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    raw = (f"POST /api/v1/chatbot/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n{head}\r\n").encode() + body
    s = connect(port, source=source)
    try:
        s.sendall(raw)
        data = read_all(s)
    finally:
        s.close()
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize("header", ["forwarded", "x-real-ip"])
def test_only_the_configured_forwarding_header_counts(server_factory, header):
    srv = server_factory(env={"BOOKD_TRUSTED_PROXIES": "127.0.0.1/32", "BOOKD_FORWARDED_HEADER": header,
                              "BOOKD_CHAT_ANONYMOUS": "true", "BOOKD_CHAT_ANON_PER_MINUTE": "1"})
    name, value = ("Forwarded", 'for="203.0.113.5:4711";proto=https') if header == "forwarded" \
        else ("X-Real-IP", "203.0.113.5")
    # the proxy (127.0.0.1) sets the header; the client's own X-Forwarded-For,
    # passed through, changes nothing
    codes = [_ask_from(srv.port, "127.0.0.1", {name: value, "X-Forwarded-For": f"198.51.100.{i}"})
             for i in range(3)]
    assert codes[:2] != [429, 429] and codes[2] == 429, codes
    # another client behind the proxy has its own budget
    assert _ask_from(srv.port, "127.0.0.1", {name: value.replace("203.0.113.5", "203.0.113.6")}) != 429
    # an untrusted peer (127.0.0.2) is the client, whatever it claims
    codes = [_ask_from(srv.port, "127.0.0.2", {name: value.replace("203.0.113.5", f"192.0.2.{i}")})
             for i in range(3)]
    assert codes[2] == 429, codes


def test_ipv6_clients_are_limited_per_64(server_factory):
    srv = server_factory(env={"BOOKD_TRUSTED_PROXIES": "127.0.0.1/32",
                              "BOOKD_CHAT_ANONYMOUS": "true", "BOOKD_CHAT_ANON_PER_MINUTE": "1"})
    # three addresses of one /64 share one budget ...
    for i in range(2):
        assert _ask(srv, xff=f"2001:db8:1:2::{i + 1:x}").status_code != 429
    assert_error(_ask(srv, xff="2001:db8:1:2:ffff:ffff:ffff:ffff"), 429, "rate_limited")
    # ... another /64 has its own, and an IPv4-mapped address is IPv4
    assert _ask(srv, xff="2001:db8:1:3::1").status_code != 429
    assert _ask(srv, xff="::ffff:203.0.113.9").status_code != 429
    assert _ask(srv, xff="203.0.113.9").status_code != 429
    assert_error(_ask(srv, xff="203.0.113.9"), 429, "rate_limited")


def test_bad_forwarded_header_refused_at_start(tmp_path):
    from conftest import start_server
    srv = start_server(tmp_path / "d", env={"BOOKD_FORWARDED_HEADER": "via"}, wait=False)
    try:
        srv.proc.wait(timeout=10 * SLOW)
    except Exception:
        srv.proc.kill()
        raise
    assert srv.proc.returncode != 0
    assert "BOOKD_FORWARDED_HEADER" in srv.log_text()


def test_forwarded_for_ignored_from_untrusted_peers(server_factory):
    srv = server_factory(env={"BOOKD_CHAT_ANONYMOUS": "true", "BOOKD_CHAT_ANON_PER_MINUTE": "1"})
    for _ in range(2):
        assert _ask(srv, xff="203.0.113.5").status_code != 429
    # the peer (127.0.0.1) is the client, whatever the header claims
    assert_error(_ask(srv, xff="203.0.113.77"), 429, "rate_limited")


def test_bad_trusted_proxies_refused_at_start(tmp_path):
    from conftest import run_bookd, start_server
    srv = start_server(tmp_path / "d", env={"BOOKD_TRUSTED_PROXIES": "10.0.0.0/33"}, wait=False)
    try:
        srv.proc.wait(timeout=10 * SLOW)
    except Exception:
        srv.proc.kill()
        raise
    assert srv.proc.returncode != 0
    assert "BOOKD_TRUSTED_PROXIES" in srv.log_text()


# --------------------------------------------------------------------------
# shutdown: streams get their last event
# --------------------------------------------------------------------------

def test_sigterm_ends_job_watch_with_an_error_event(server_factory):
    import signal
    srv = server_factory(env={"BOOKD_WORKERS": "0", "BOOKD_TEST_JOBS": "1",
                              "BOOKD_SHUTDOWN_TIMEOUT": "20"})
    r = srv.post("/api/v1/jobs", json={"type": "test.noop"}, headers=ADMIN)
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    s = connect(srv.port)
    try:
        s.sendall((f"GET /api/v1/jobs/{job}/events HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
                   f"Accept: text/event-stream\r\n\r\n").encode())
        s.settimeout(5 * SLOW)
        first = b""
        while b"event: progress" not in first:  # the head and the event may come apart
            chunk = s.recv(65536)
            assert chunk, first
            first += chunk
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        rest = read_all(s, timeout=10)
    finally:
        s.close()
    assert b"event: error" in rest, rest
    line = [ln for ln in rest.split(b"\n") if ln.startswith(b"data: ")][-1]
    assert json.loads(line[6:])["error"]["code"] == "unavailable", rest
    rc = srv.proc.wait(timeout=15 * SLOW)
    assert rc == 0
    # a watch does not hold the shutdown for its timeout
    assert time.monotonic() - t0 < 5 * SLOW
