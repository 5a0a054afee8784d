"""Graceful shutdown: SIGTERM/SIGINT exit 0, in-flight request completes,
data persists across restarts."""
import json
import signal
import socket
import time

import pytest

from conftest import API_KEY, SLOW, uniq


def send_head_in_flight(s, head):
    """Send a request head with Expect: 100-continue and wait for bookd's
    "100 Continue": it has read the head and holds the request in flight.
    (A fixed sleep would assume a busy machine got that far in time; a
    SIGTERM before it would rightly refuse the request.)"""
    assert head.endswith(b"\r\n\r\n")
    s.sendall(head[:-2] + b"Expect: 100-continue\r\n\r\n")
    interim = b""
    while b"\r\n\r\n" not in interim:
        chunk = s.recv(1)
        assert chunk, f"connection closed before 100 Continue: {interim!r}"
        interim += chunk
    assert interim.startswith(b"HTTP/1.1 100"), interim


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero_and_data_persists(server_factory, tmp_path, sig):
    data = tmp_path / "persist"
    srv = server_factory(data_dir=data)
    b = srv.create_book(title=uniq("persisted"), author="Durable")
    c = srv.add_chapter(b["id"], title="Kept", content_markdown="## Part\n\nstill here")
    book_before = srv.get(f"/api/v1/books/{b['id']}").json()

    t0 = time.monotonic()
    rc = srv.stop(sig, timeout=5)
    assert rc == 0, f"exit code {rc} after {sig!r}:\n{srv.log_tail()}"
    assert time.monotonic() - t0 < 5 * SLOW

    srv2 = server_factory(data_dir=data)
    ready = srv2.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["checks"]["database"] == "ok"
    assert srv2.get(f"/api/v1/books/{b['id']}").json() == book_before
    assert srv2.get(f"/api/v1/books/{b['id']}/chapters/{c['id']}").json() == c
    # and the database is writable after restart
    b2 = srv2.create_book(title=uniq("after restart"))
    ids = [x["id"] for x in srv2.all_books()]
    assert ids == [b["id"], b2["id"]]


def test_shutdown_logs_are_json(server_factory):
    srv = server_factory()
    srv.get("/health")
    assert srv.stop() == 0
    for ln in srv.log_text().splitlines():
        if ln.strip():
            assert isinstance(json.loads(ln), dict), ln


def test_in_flight_request_completes(server_factory):
    srv = server_factory()
    tag = uniq("inflight")
    body = json.dumps({"title": tag}).encode()
    head = (f"POST /api/v1/books HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nX-API-Key: {API_KEY}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        # headers and half the body are on the wire before the signal
        send_head_in_flight(s, head)
        s.sendall(body[:5])
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        s.sendall(body[5:])
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    assert buf.startswith(b"HTTP/1.1 201"), buf[:300]
    payload = json.loads(buf.split(b"\r\n\r\n", 1)[1])
    assert payload["title"] == tag
    srv.proc.wait(timeout=5 * SLOW)
    assert srv.proc.returncode == 0


def test_in_flight_write_persists(server_factory, tmp_path):
    data = tmp_path / "inflight-data"
    srv = server_factory(data_dir=data)
    tag = uniq("inflight-persist")
    body = json.dumps({"title": tag}).encode()
    head = (f"POST /api/v1/books HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nX-API-Key: {API_KEY}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        send_head_in_flight(s, head)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        s.sendall(body)
        resp = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
    finally:
        s.close()
    assert resp.startswith(b"HTTP/1.1 201"), resp[:300]
    srv.proc.wait(timeout=5 * SLOW)
    assert srv.proc.returncode == 0
    srv2 = server_factory(data_dir=data)
    assert [b["title"] for b in srv2.all_books()] == [tag]
