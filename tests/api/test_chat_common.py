"""Shared helpers for the test_chat_*.py modules (the book chatbot).
This module holds no tests; pytest collects it only because of its name.
Everything here talks to bookd over HTTP, runs the binary, or plays a
language model (fake_llm.FakeLLM)."""
import json
import socket
import time

import pytest
import requests

from conftest import ADMIN, SLOW, UUID7_RE, TS_RE, start_server
from fake_llm import FakeLLM
from test_search_common import chapters_of, hits, import_sample

QUERY = "/api/v1/chatbot/query"
CONTEXT = "/api/v1/chatbot/context"
SESSIONS = "/api/v1/chat/sessions"
QUESTION = "What is the zero moment point?"
ANSWER_KEYS = {"answer", "session_id", "message_id", "citations", "provider", "model", "usage",
               "timestamp", "latency_ms"}
CITATION_KEYS = {"n", "chunk_id", "book_id", "chapter_id", "chapter_title", "heading", "anchor",
                 "quote", "score"}


@pytest.fixture
def fake_llm():
    fake = FakeLLM().start()
    yield fake
    fake.stop()


def llm_env(fake, providers="p1:m1,p2:m2", tries=2, **extra):
    """p1 speaks OpenAI, p2 Anthropic, both on the fake."""
    env = {"BOOKD_LLM_PROVIDERS": providers,
           "BOOKD_LLM_P1_URL": fake.url, "BOOKD_LLM_P1_KEY": "key-one",
           "BOOKD_LLM_P2_URL": fake.url, "BOOKD_LLM_P2_KEY": "key-two",
           "BOOKD_LLM_P2_API": "anthropic",
           "BOOKD_LLM_TRIES": str(tries)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Book:
    def __init__(self, srv, book_id):
        self.srv = srv
        self.id = book_id
        self._chapters = None

    @property
    def chapters(self):
        if self._chapters is None:
            self._chapters = {c["id"]: c for c in chapters_of(self.srv, self.id)}
        return self._chapters


def import_indexed(srv):
    """Import the sample book and wait until its chunks are searchable."""
    book_id = import_sample(srv)
    deadline = time.monotonic() + 15 * SLOW
    while not hits(srv, q="zero moment point", book_id=book_id):
        if time.monotonic() > deadline:
            raise AssertionError(f"the sample book was not indexed in 15 s\n{srv.log_tail()}")
        time.sleep(0.05)
    return Book(srv, book_id)


def chat_server(factory_or_dir, env=None, **kw):
    """(server, book): a server (from server_factory or a directory) with the
    sample book imported and indexed."""
    if callable(factory_or_dir):
        srv = factory_or_dir(env=env, **kw)
    else:
        srv = start_server(factory_or_dir, env=env, **kw)
    return srv, import_indexed(srv)


def ask(srv, question=QUESTION, headers=ADMIN, expect=200, **fields):
    body = {"question": question}
    body.update(fields)
    r = srv.post(QUERY, json=body, headers=headers, timeout=30 * SLOW)
    assert r.status_code == expect, f"query: {r.status_code} {r.text[:800]}"
    return r.json() if expect == 200 else r


def check_answer_shape(a):
    assert set(a) == ANSWER_KEYS, f"answer keys differ: {set(a) ^ ANSWER_KEYS}"
    assert isinstance(a["answer"], str) and a["answer"], a
    assert UUID7_RE.match(a["session_id"]), a
    assert UUID7_RE.match(a["message_id"]), a
    assert TS_RE.match(a["timestamp"]), a
    assert isinstance(a["citations"], list)
    for c in a["citations"]:
        assert set(c) == CITATION_KEYS, f"citation keys differ: {set(c) ^ CITATION_KEYS}"
        assert isinstance(c["n"], int) and c["n"] >= 1, c
        for k in ("chunk_id", "book_id", "chapter_id"):
            assert UUID7_RE.match(c[k]), (k, c)
    u = a["usage"]
    assert set(u) == {"prompt_tokens", "completion_tokens", "total_tokens"}, u
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
    assert isinstance(a["latency_ms"], int) and a["latency_ms"] >= 0


def check_citation_in_book(book, c):
    """The quote is verbatim in the chapter, and heading/anchor are a real
    section of that chapter (or the chapter itself for a chunk without one)."""
    ch = book.chapters.get(c["chapter_id"])
    assert ch is not None, f"citation names a chapter not in the book: {c}"
    assert c["book_id"] == book.id
    assert c["chapter_title"] == ch["title"], (c, ch["title"])
    assert c["quote"], c
    assert c["quote"] in ch["content_markdown"], f"quote not verbatim in the chapter: {c['quote']!r}"
    sections = {(s["anchor"], s["heading"]) for s in ch["sections"]}
    if c["anchor"] is None:
        assert c["heading"] == ch["title"], c
    else:
        assert (c["anchor"], c["heading"]) in sections, (
            f"anchor/heading {c['anchor']!r}/{c['heading']!r} not among the sections {sections}")


# ---- Server-Sent Events -----------------------------------------------------------

class SSE:
    """A streamed query read event by event, with arrival times."""

    def __init__(self, srv, body, headers=None, accept=True, timeout=30):
        h = dict(ADMIN if headers is None else headers)
        if accept:
            h["Accept"] = "text/event-stream"
        self.t0 = time.monotonic()
        self.resp = requests.post(srv.url(QUERY), json=body, headers=h, stream=True,
                                  timeout=timeout * SLOW)
        self.events = []   # (name, data, t)
        self.comments = []  # (text, t): keep-alive lines
        self._lines = None

    def __iter__(self):
        if self._lines is None:
            self._lines = self.resp.iter_lines(chunk_size=1, decode_unicode=False)
        name, data = None, []
        for raw in self._lines:
            line = raw.decode("utf-8")
            if line == "":
                if name is not None or data:
                    ev = (name or "message", json.loads("\n".join(data)), time.monotonic() - self.t0)
                    self.events.append(ev)
                    yield ev
                name, data = None, []
                continue
            if line.startswith(":"):
                self.comments.append((line[1:].strip(), time.monotonic() - self.t0))
                continue
            key, _, val = line.partition(":")
            val = val[1:] if val.startswith(" ") else val
            if key == "event":
                name = val
            elif key == "data":
                data.append(val)

    def read_all(self):
        for _ in self:
            pass
        self.resp.close()
        return self.events

    def close(self):
        # drop the socket at once (not back to a pool)
        try:
            self.resp.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            pass
        self.resp.close()

    def names(self):
        return [e[0] for e in self.events]

    def of(self, name):
        return [e for e in self.events if e[0] == name]


def stream(srv, question=QUESTION, headers=None, accept=True, **fields):
    body = {"question": question}
    body.update(fields)
    s = SSE(srv, body, headers=headers, accept=accept)
    assert s.resp.status_code == 200, f"stream: {s.resp.status_code} {s.resp.text[:500]}"
    s.read_all()
    return s
