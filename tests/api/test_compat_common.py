"""Shared helpers for the test_compat_*.py modules (the chat dialects of
existing book sites, src/api/compat.c). This module holds no tests."""
import json

import requests

from conftest import SLOW, TS_RE, UUID7_RE

# Every name a widget reads from a JSON answer.
UNION_KEYS = {"answer", "response", "response_text", "message", "session_id", "message_id",
              "citations", "sources", "timestamp"}
SOURCE_KEYS = {"title", "section", "url", "chapter", "chunk_text", "score"}
JSON_ROUTES = ["/chat", "/api/chat", "/api/ask", "/api/query", "/chat/run", "/api/ask-selection",
               "/api/v1/chat"]


def check_union(body, session_id=None):
    assert UNION_KEYS <= set(body), f"missing {UNION_KEYS - set(body)}: {body}"
    text = body["answer"]
    assert isinstance(text, str) and text, body
    assert body["response"] == text and body["response_text"] == text and body["message"] == text
    assert isinstance(body["citations"], list), body
    assert isinstance(body["sources"], list) and len(body["sources"]) == len(body["citations"]), body
    for s in body["sources"]:
        assert set(s) == SOURCE_KEYS, s
        assert isinstance(s["url"], str) and isinstance(s["chunk_text"], str), s
    assert UUID7_RE.match(body["message_id"]), body
    assert TS_RE.match(body["timestamp"]), body
    if session_id is not None:
        assert body["session_id"] == session_id, body
    return body


def post_raw_stream(srv, path, body, headers=None, timeout=30):
    """POST and read the whole response body as bytes (an SSE stream ends
    when bookd closes it)."""
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    r = requests.post(srv.url(path), data=json.dumps(body), headers=h, stream=True,
                      timeout=timeout * SLOW)
    raw = b"".join(r.iter_content(chunk_size=None))
    return r, raw


def sse_blocks(raw):
    """The events of an SSE body: each a list of its lines, keep-alive
    comments dropped. Every event must end with a blank line."""
    assert raw.endswith(b"\n\n"), raw[-200:]
    out = []
    for block in raw[:-2].split(b"\n\n"):
        lines = [ln for ln in block.split(b"\n") if not ln.startswith(b":")]
        if lines:
            out.append(lines)
    return out


def named_events(raw):
    """[(name, data)] of a stream of named events: exactly `event:` then `data:`."""
    out = []
    for lines in sse_blocks(raw):
        assert len(lines) == 2 and lines[0].startswith(b"event: ") and lines[1].startswith(b"data: "), lines
        out.append((lines[0][7:].decode(), json.loads(lines[1][6:])))
    return out


def data_events(raw):
    """[data] of a stream of unnamed events: exactly one `data:` line each."""
    out = []
    for lines in sse_blocks(raw):
        assert len(lines) == 1 and lines[0].startswith(b"data: "), lines
        out.append(json.loads(lines[0][6:]))
    return out
