"""The streamed dialects of existing book sites on bookd's one SSE producer
(src/api/chat.c, writers in src/api/compat.c), read as raw bytes: named
events token / done / error on POST /api/v1/chat, unnamed data lines
{"type": delta|done|error} on POST /v1/chat/ask/stream; errors, and the last
event of a stream cut by shutdown, in each dialect's own shape."""
import signal
import threading
import time

import pytest

from conftest import SLOW, UUID7_RE, start_server, users_env
from fake_llm import FakeLLM
from test_chat_common import import_indexed, llm_env
from test_compat_common import data_events, named_events, post_raw_stream

TEXT = "The ZMP is where the net moment vanishes [1]. It matters [2]."


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    fake = FakeLLM().start()
    env = users_env(**llm_env(fake, providers="p1:m1", tries=1), BOOKD_CHAT_ANON_PER_MINUTE=100000)
    srv = start_server(tmp_path_factory.mktemp("compat-sse"), env=env)
    book = import_indexed(srv)
    yield srv, book, fake
    rc = srv.stop()
    fake.stop()
    assert rc == 0, srv.log_tail()


@pytest.mark.parametrize("how", ["accept", "stream_true"])
def test_named_events_on_api_v1_chat(site, how):
    srv, _, fake = site
    fake.push(text=TEXT, chunks=4)
    body = {"message": "What is the zero moment point?", "session_id": "widget-sse-1"}
    headers = {}
    if how == "accept":
        headers["Accept"] = "text/event-stream"
    else:
        body["stream"] = True
    r, raw = post_raw_stream(srv, "/api/v1/chat", body, headers)
    assert r.status_code == 200, raw[:300]
    assert r.headers["Content-Type"].startswith("text/event-stream")
    ev = named_events(raw)
    names = [n for n, _ in ev]
    assert names[-1] == "done" and set(names[:-1]) == {"token"}, names
    assert all(set(d) == {"content"} for n, d in ev[:-1]), ev
    assert "".join(d["content"] for _, d in ev[:-1]) == TEXT
    done = ev[-1][1]
    assert set(done) == {"session_id", "message_id", "citations"}, done
    assert done["session_id"] == "widget-sse-1" and UUID7_RE.match(done["message_id"])
    assert isinstance(done["citations"], list) and [c["n"] for c in done["citations"]] == [1, 2]


def test_api_v1_chat_without_stream_is_json(site):
    srv, _, _ = site
    r = srv.post("/api/v1/chat", json={"message": "What is the zero moment point?", "stream": False},
                 timeout=30 * SLOW)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json"), r.text


def test_typed_data_lines_on_ask_stream(site):
    srv, _, fake = site
    fake.push(text=TEXT, chunks=3)
    r, raw = post_raw_stream(srv, "/v1/chat/ask/stream", {"question": "What is the zero moment point?"})
    assert r.status_code == 200, raw[:300]
    assert r.headers["Content-Type"].startswith("text/event-stream")
    assert b"event:" not in raw, raw[:300]
    ev = data_events(raw)
    assert [e["type"] for e in ev] == ["delta"] * (len(ev) - 1) + ["done"], ev
    assert "".join(e["data"] for e in ev[:-1]) == TEXT
    assert ev[-1]["type"] == "done" and UUID7_RE.match(ev[-1]["message_id"]), ev[-1]


def test_errors_in_each_dialect(site):
    """An answer that breaks off after its first token ends with the
    dialect's error event."""
    srv, _, fake = site
    fake.push(text=TEXT, chunks=4, cut_after=1)
    r, raw = post_raw_stream(srv, "/api/v1/chat", {"message": "What is the zero moment point?"},
                             {"Accept": "text/event-stream"})
    ev = named_events(raw)
    assert [n for n, _ in ev] == ["token", "error"], ev
    assert set(ev[-1][1]) == {"code", "message"} and ev[-1][1]["code"] == "unavailable", ev
    fake.push(text=TEXT, chunks=4, cut_after=1)
    r, raw = post_raw_stream(srv, "/v1/chat/ask/stream", {"message": "What is the zero moment point?"})
    ev = data_events(raw)
    assert [e["type"] for e in ev] == ["delta", "error"], ev
    assert isinstance(ev[-1]["data"], str) and ev[-1]["data"], ev


def test_shutdown_ends_each_dialect_with_its_own_error(tmp_path):
    fake = FakeLLM().start()
    try:
        env = users_env(**llm_env(fake, providers="p1:m1", tries=1), BOOKD_SHUTDOWN_TIMEOUT=1,
                        BOOKD_CHAT_DEADLINE=120)
        srv = start_server(tmp_path / "data", env=env)
        import_indexed(srv)
        fake.reset()
        fake.set_default(text=TEXT, chunks=40, delay=0.5)  # each answer takes 20 s
        out = {}

        def run(key, path, body, headers):
            try:
                out[key] = post_raw_stream(srv, path, body, headers, timeout=60)
            except Exception as ex:  # asserted on below
                out[key] = ex

        threads = [threading.Thread(target=run, args=("named", "/api/v1/chat", {"message": "What is the ZMP?"},
                                                      {"Accept": "text/event-stream"})),
                   threading.Thread(target=run, args=("typed", "/v1/chat/ask/stream",
                                                      {"message": "What is the ZMP?"}, {}))]
        for t in threads:
            t.start()
        assert len(fake.wait_calls(2, timeout=10 * SLOW, kind="answer")) >= 2
        time.sleep(1.2)  # a few tokens out
        srv.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=30 * SLOW)
        assert srv.stop(timeout=30) == 0, srv.log_tail()
        r, raw = out["named"]
        ev = named_events(raw)
        assert ev[0][0] == "token" and ev[-1][0] == "error", ev
        assert set(ev[-1][1]) == {"code", "message"} and ev[-1][1]["code"] == "unavailable", ev[-1]
        r, raw = out["typed"]
        ev = data_events(raw)
        assert ev[0]["type"] == "delta" and ev[-1]["type"] == "error", ev
        assert ev[-1]["code"] == "unavailable" and isinstance(ev[-1]["data"], str), ev[-1]
    finally:
        fake.stop()
