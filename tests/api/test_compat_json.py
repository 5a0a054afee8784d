"""The JSON chat dialect of existing book sites (src/api/compat.c): every
alias route with the request shapes their widgets send, answered with the
union reply; the selection and k reach retrieval and the model; the book is
chosen by book_id, ?book= or BOOKD_DEFAULT_BOOK."""
import time

import pytest

from conftest import ADMIN, SLOW, assert_error, start_server, users_env
from fake_llm import FakeLLM
from test_chat_common import import_indexed, llm_env
from test_compat_common import JSON_ROUTES, check_union
from test_search_common import hits

SELECTION = "the support polygon of a walking robot"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server with a fake model, anonymous chat at its default (on) with a
    per-address rate that the tests do not reach, the sample book indexed."""
    fake = FakeLLM().start()
    env = users_env(**llm_env(fake, providers="p1:m1"), BOOKD_CHAT_ANON_PER_MINUTE=100000)
    srv = start_server(tmp_path_factory.mktemp("compat-json"), env=env)
    book = import_indexed(srv)
    yield srv, book, fake
    rc = srv.stop()
    fake.stop()
    assert rc == 0, srv.log_tail()


# The bodies the widgets send, as they send them (no credentials: anonymous).
SHAPES = [
    ("/chat", {"message": "What is the zero moment point?", "session_id": None,
               "user_context": {"level": "beginner"}}),
    ("/api/chat", {"message": "What is the zero moment point?", "selected_text": SELECTION,
                   "user_id": "u-42", "book_id": "physical-ai-book", "history": []}),
    ("/api/ask", {"question": "What is the zero moment point?", "k": 2, "selection": SELECTION}),
    ("/api/query", {"query": "What is the zero moment point?", "top_k": 3, "mode": "hybrid",
                    "selected_context": SELECTION}),
    ("/chat/run", {"query_text": "What is the zero moment point?", "stream": False}),
    ("/api/ask-selection", {"question_text": "Explain this", "context": {"selectedText": SELECTION}}),
    ("/api/v1/chat", {"message": "What is the zero moment point?", "stream": False,
                      "history": [{"role": "user", "content": "hi"}]}),
]


@pytest.mark.parametrize("path,body", SHAPES, ids=[p for p, _ in SHAPES])
def test_json_dialect_answers_with_the_union_reply(site, path, body):
    srv, book, fake = site
    n = len(fake.calls(kind="answer"))
    r = srv.post(path, json=body, timeout=30 * SLOW)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
    a = check_union(r.json())
    assert a["citations"], a  # the fake's answer cites [1] and [2]
    for c in a["citations"]:
        assert c["book_id"] == book.id
    calls = fake.wait_calls(n + 1, kind="answer")
    rec = calls[-1]
    question = next(body[k] for k in ("message", "query", "question", "query_text", "question_text")
                    if k in body)
    assert rec.messages[-1]["content"] == question, rec.messages
    selected = any(k in body for k in ("selected_text", "selection", "selected_context", "context"))
    assert (SELECTION in rec.system) == selected, rec.system[-400:]
    k = body.get("top_k") or body.get("k")
    if k:
        assert len(rec.passages()) == k, rec.passages().keys()
    # the client's history is not the model's memory: the session is
    assert len(rec.messages) == 1, rec.messages


def test_every_alias_answers(site):
    srv, _, _ = site
    for path in JSON_ROUTES:
        r = srv.post(path, json={"message": "What are actuators?"}, timeout=30 * SLOW)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        check_union(r.json())


def test_citations_always_an_array(site):
    srv, _, fake = site
    fake.push(text="Nothing in the book says so.")
    r = srv.post("/api/chat", json={"message": "What is the zero moment point?"}, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    a = check_union(r.json())
    assert a["citations"] == [] and a["sources"] == [], a


def test_sources_name_the_cited_passages(site):
    srv, book, _ = site
    a = check_union(srv.post("/api/chat", json={"message": "What is the zero moment point?"},
                             timeout=30 * SLOW).json())
    for c, s in zip(a["citations"], a["sources"]):
        assert s["title"] == c["chapter_title"] and s["chapter"] == c["chapter_title"], (c, s)
        assert s["section"] == c["heading"] and s["chunk_text"] == c["quote"], (c, s)
        assert s["url"] == (f"#{c['anchor']}" if c["anchor"] else ""), (c, s)
        assert s["score"] == c["score"]


@pytest.mark.parametrize("body,field", [
    ({}, "message"),
    ({"session_id": "s1"}, "message"),
    ({"message": ""}, "message"),
    ({"query": 42}, "query"),
    ({"message": "q" * 2001}, "message"),
    ({"message": "ok?", "selected_text": "s" * 5001}, "selected_text"),
    ({"message": "ok?", "session_id": "s" * 129}, "session_id"),
    ({"message": "ok?", "session_id": "tab\there"}, "session_id"),
])
def test_json_dialect_validation(site, body, field):
    srv, _, _ = site
    err = assert_error(srv.post("/api/chat", json=body), 422, "validation_failed")
    assert field in [d.get("field") for d in err["details"]], err


def test_not_json_is_415(site):
    srv, _, _ = site
    r = srv.post("/api/chat", data="message=hi", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 415, "unsupported_media_type")


def _book_with(srv, title, text):
    b = srv.create_book(title=title)
    srv.add_chapter(b["id"], title=f"{title} chapter", content_markdown=text)
    return b["id"]


def _wait_indexed(srv, q, book_id):
    deadline = time.monotonic() + 15 * SLOW
    while not hits(srv, q=q, book_id=book_id):
        assert time.monotonic() < deadline, srv.log_tail()
        time.sleep(0.05)


def _books_cited(srv, path, body, **kw):
    r = srv.post(path, json=body, timeout=30 * SLOW, **kw)
    assert r.status_code == 200, r.text
    return {c["book_id"] for c in check_union(r.json())["citations"]}


def test_book_choice_body_query_and_default(server_factory, tmp_path):
    """book_id in the body, else ?book=, else BOOKD_DEFAULT_BOOK; a book_id
    that is no id (a site's slug) is passed over."""
    data = tmp_path / "books"
    srv = server_factory(data_dir=data, env=users_env())
    text = "Gyroscopes measure angular velocity. A gyroscope drifts over time without correction."
    b1 = _book_with(srv, "Gyro one", text)
    b2 = _book_with(srv, "Gyro two", text)
    _wait_indexed(srv, "gyroscope", b1)
    _wait_indexed(srv, "gyroscope", b2)
    q = {"message": "What does a gyroscope measure?"}
    assert _books_cited(srv, "/api/chat", q) == {b1, b2}  # no default: every book
    srv.stop()
    srv = server_factory(data_dir=data, env=users_env(BOOKD_DEFAULT_BOOK=b2))
    assert _books_cited(srv, "/api/chat", q) == {b2}
    assert _books_cited(srv, "/api/chat", {**q, "book_id": b1}) == {b1}
    assert _books_cited(srv, "/api/chat", q, params={"book": b1}) == {b1}
    assert _books_cited(srv, "/api/chat", {**q, "book_id": "gyro-book"}) == {b2}
    assert _books_cited(srv, "/api/ask", {"question": q["message"], "book_id": b1}, params={"book": b2}) == {b1}
    # the native API keeps its meaning: no book_id is every book
    r = srv.post("/api/v1/chatbot/query", json={"question": q["message"]}, headers=ADMIN, timeout=30 * SLOW)
    assert {c["book_id"] for c in r.json()["citations"]} == {b1, b2}


def test_default_book_must_be_a_book_id(tmp_path):
    from conftest import run_bookd
    p = run_bookd(["config"], data_dir=tmp_path, env={"BOOKD_DEFAULT_BOOK": "my-book"})
    assert p.returncode != 0 and "BOOKD_DEFAULT_BOOK" in p.stderr, (p.stdout, p.stderr)
