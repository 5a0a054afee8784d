"""The chatbot without a language model (extractive answers), its sessions,
the /chat compatibility route and request validation."""
import re
import time
import uuid

import pytest

from conftest import ADMIN, UUID7_RE, TS_RE, assert_error, make_user, start_server, users_env
from test_chat_common import (QUERY, QUESTION, SESSIONS, ask, check_answer_shape,
                              check_citation_in_book, import_indexed, stream)
from test_search_common import chapter_chunks, hits

MARKER_RE = re.compile(r"\[(\d+)\]")


@pytest.fixture(scope="module")
def ext(tmp_path_factory):
    """A server without BOOKD_LLM_PROVIDERS, the sample book indexed, anonymous
    chat turned off (it is on by default)."""
    srv = start_server(tmp_path_factory.mktemp("chat-extractive"),
                       env=users_env(BOOKD_CHAT_ANONYMOUS="false"))
    book = import_indexed(srv)
    yield srv, book
    rc = srv.stop()
    assert rc == 0, srv.log_tail()


@pytest.fixture(scope="module")
def alice(ext):
    return make_user(ext[0], tag="alice")


@pytest.fixture(scope="module")
def bob(ext):
    return make_user(ext[0], tag="bob")


# ---- extractive answers ---------------------------------------------------------------

def test_extractive_answer_shape_and_verbatim_citations(ext, alice):
    srv, book = ext
    a = ask(srv, headers=alice["headers"])
    check_answer_shape(a)
    assert a["provider"] == "extractive", a
    assert isinstance(a["model"], str) and a["model"]
    assert a["citations"], f"an extractive answer about the ZMP cites nothing: {a}"
    assert "zero moment point" in a["answer"].lower(), a["answer"]
    chunk_cache = {}
    for c in a["citations"]:
        check_citation_in_book(book, c)
        # the quote is verbatim in the cited chunk itself, not just somewhere in the chapter
        if c["chapter_id"] not in chunk_cache:
            chunk_cache[c["chapter_id"]] = {h["chunk_id"]: h for h in
                                            chapter_chunks(srv, book.chapters[c["chapter_id"]])}
        chunk = chunk_cache[c["chapter_id"]].get(c["chunk_id"])
        assert chunk is not None, f"citation names chunk {c['chunk_id']} not in its chapter"
        assert c["quote"] in chunk["text"], (c["quote"], chunk["text"][:300])
        assert c["heading"] == chunk["heading"] and c["anchor"] == chunk["anchor"], (c, chunk)
        # the answer's sentence for this citation is the quoted text
        assert c["quote"][:60] in a["answer"], (c["quote"], a["answer"])
    markers = {int(n) for n in MARKER_RE.findall(a["answer"])}
    cited = [c["n"] for c in a["citations"]]
    assert len(cited) == len(set(cited)), f"a passage cited twice: {cited}"
    assert markers == set(cited), f"answer markers {markers} vs citations {cited}"


def test_extractive_answer_streamed(ext):
    srv, book = ext
    s = stream(srv)
    assert s.resp.headers["Content-Type"].startswith("text/event-stream")
    names = s.names()
    assert names[0] == "citations" and names[-1] == "done", names
    assert names.count("done") == 1 and "error" not in names, names
    deltas = "".join(e[1]["text"] for e in s.of("delta"))
    done = s.of("done")[0][1]
    assert done["provider"] == "extractive"
    assert deltas == done["answer"], (deltas, done["answer"])
    passages = s.of("citations")[0][1]["passages"]
    assert [p["n"] for p in passages] == list(range(1, len(passages) + 1)), passages
    for c in done["citations"]:
        p = passages[c["n"] - 1]
        assert p["chunk_id"] == c["chunk_id"], (p, c)


def _chapter(book, title):
    for c in book.chapters.values():
        if c["title"] == title:
            return c
    raise AssertionError(f"no chapter {title!r}")


def test_extractive_citations_survive_non_ascii_text_at_the_cut(ext):
    """A sentence longer than the quote limit whose multi-byte character
    straddles the cut: the citation must still be given (a verbatim, valid
    UTF-8 quote), and an answer sentence cut at its limit must stay valid
    UTF-8 (not a 500)."""
    srv, _ = ext
    b = srv.create_book(title="Unicode wombats")
    # byte 240 of the sentence falls inside "é" (2 bytes at offsets 239-240)
    s240 = "Wombats " + "x" * 231 + "é" + " dig burrows with their strong claws."
    # byte 600 of the sentence falls inside "é" (2 bytes at offsets 599-600)
    s600 = "Quokkas " + "y" * 591 + "é" + " smile at tourists on the island."
    srv.add_chapter(b["id"], title="Wombats", content_markdown="# Wombat facts\n\n" + s240 + "\n")
    srv.add_chapter(b["id"], title="Quokkas", content_markdown="# Quokka facts\n\n" + s600 + "\n")
    deadline = time.monotonic() + 10
    while not (hits(srv, q="wombats", book_id=b["id"]) and hits(srv, q="quokkas", book_id=b["id"])):
        assert time.monotonic() < deadline, "the new chapters were not indexed"
        time.sleep(0.05)
    problems = []
    a = ask(srv, "Tell me about wombats", book_id=b["id"])
    markers = {int(n) for n in MARKER_RE.findall(a["answer"])}
    if markers != {c["n"] for c in a["citations"]}:
        problems.append(f"wombats: the answer cites {sorted(markers)} but the citations list has "
                        f"{[c['n'] for c in a['citations']]} (quote cut inside a UTF-8 character?)")
    for c in a["citations"]:
        if c["quote"] not in s240:
            problems.append(f"wombats: quote not verbatim: {c['quote']!r}")
    r = srv.post(QUERY, json={"question": "Tell me about quokkas", "book_id": b["id"]}, headers=ADMIN)
    if r.status_code != 200:
        problems.append(f"quokkas: {r.status_code} {r.text[:200]} (answer sentence cut inside a "
                        f"UTF-8 character at 600 bytes?)")
    else:
        for c in r.json()["citations"]:
            if c["quote"] not in s600:
                problems.append(f"quokkas: quote not verbatim: {c['quote']!r}")
    srv.assert_alive()
    assert not problems, "\n".join(problems)


# ---- sessions ------------------------------------------------------------------------

def test_sessions_messages_and_isolation(ext):
    srv, book = ext
    # users of this test alone: it counts their sessions
    alice, bob = make_user(srv, tag="alice-iso"), make_user(srv, tag="bob-iso")
    a = ask(srv, headers=alice["headers"])
    sid = a["session_id"]
    # a follow-up in the same session
    a2 = ask(srv, "Who introduced it?", headers=alice["headers"], session_id=sid)
    assert a2["session_id"] == sid

    r = srv.get(SESSIONS, headers=alice["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "next_cursor"}
    mine = [s for s in body["items"] if s["id"] == sid]
    assert len(mine) == 1, body
    s = mine[0]
    assert set(s) == {"id", "title", "book_id", "message_count", "created_at", "updated_at"}, s
    assert s["message_count"] == 4, s
    assert TS_RE.match(s["created_at"]) and TS_RE.match(s["updated_at"]), s
    assert s["title"] in (QUESTION, "Who introduced it?"), s

    # bob sees none of alice's sessions
    ask(srv, "What are actuators?", headers=bob["headers"])
    rb = srv.get(SESSIONS, headers=bob["headers"])
    assert rb.status_code == 200
    assert sid not in [x["id"] for x in rb.json()["items"]]
    assert len(rb.json()["items"]) == 1, rb.json()

    g = srv.get(f"{SESSIONS}/{sid}", headers=alice["headers"])
    assert g.status_code == 200, g.text
    assert g.json()["id"] == sid and g.json()["message_count"] == 4

    m = srv.get(f"{SESSIONS}/{sid}/messages", headers=alice["headers"])
    assert m.status_code == 200, m.text
    items = m.json()["items"]
    assert [x["role"] for x in items] == ["user", "assistant", "user", "assistant"], items
    assert items[0]["content"] == QUESTION
    assert items[1]["content"] == a["answer"]
    assert items[1]["id"] == a["message_id"]
    assert items[3]["id"] == a2["message_id"]
    assert items[1]["citations"] == a["citations"]
    for x in items:
        assert {"id", "role", "content", "citations", "selected_text", "provider", "model", "usage",
                "latency_ms", "created_at"} <= set(x), x
        assert UUID7_RE.match(x["id"])
    for x in items[1::2]:
        assert x["provider"] == "extractive" and x["model"] == a["model"], x
        assert set(x["usage"]) >= {"prompt_tokens", "completion_tokens"}, x
        assert isinstance(x["latency_ms"], int) and x["latency_ms"] >= 0

    # bob: 404 for everything of alice's, and cannot continue her conversation: her id
    # names a new one of his own
    for method, path in (("GET", f"{SESSIONS}/{sid}"), ("GET", f"{SESSIONS}/{sid}/messages"),
                         ("DELETE", f"{SESSIONS}/{sid}")):
        assert_error(srv.request(method, path, headers=bob["headers"]), 404, "not_found")
    r = srv.post(QUERY, json={"question": "And then?", "session_id": sid}, headers=bob["headers"])
    assert r.status_code == 200 and r.json()["session_id"] == sid, r.text
    theirs = srv.get(f"{SESSIONS}/{sid}/messages", headers=bob["headers"]).json()["items"]
    assert [x["content"] for x in theirs if x["role"] == "user"] == ["And then?"], theirs
    # ... nor can the master key (another principal)
    assert_error(srv.get(f"{SESSIONS}/{sid}", headers=ADMIN), 404, "not_found")
    m = srv.get(f"{SESSIONS}/{sid}/messages", headers=alice["headers"])
    assert len(m.json()["items"]) == 4, "bob's attempt changed alice's session"

    # unknown / malformed ids
    assert_error(srv.get(f"{SESSIONS}/{uuid.uuid4()}", headers=alice["headers"]), 404, "not_found")
    assert_error(srv.get(f"{SESSIONS}/not-a-uuid", headers=alice["headers"]), 404, "not_found")
    minted = str(uuid.uuid4())
    r = srv.post(QUERY, json={"question": "x?", "session_id": minted}, headers=alice["headers"])
    assert r.status_code == 200 and r.json()["session_id"] == minted, r.text

    # delete
    d = srv.delete(f"{SESSIONS}/{sid}", headers=alice["headers"])
    assert d.status_code == 204, d.text
    assert_error(srv.get(f"{SESSIONS}/{sid}", headers=alice["headers"]), 404, "not_found")
    assert_error(srv.get(f"{SESSIONS}/{sid}/messages", headers=alice["headers"]), 404, "not_found")
    assert_error(srv.delete(f"{SESSIONS}/{sid}", headers=alice["headers"]), 404, "not_found")
    assert sid not in [x["id"] for x in srv.get(SESSIONS, headers=alice["headers"]).json()["items"]]


def test_session_list_paginates(ext):
    srv, _ = ext
    u = make_user(srv, tag="pager")
    made = [ask(srv, f"Question {i} about sensors?", headers=u["headers"])["session_id"] for i in range(3)]
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = srv.get(SESSIONS, params=params, headers=u["headers"])
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) <= 2
        seen += [s["id"] for s in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(made), (seen, made)
    assert seen == sorted(made, reverse=True), "sessions are not listed newest first"


def test_session_title_is_a_whole_character_prefix(ext):
    """The title is the question cut to 80 bytes: never inside a character."""
    srv, _ = ext
    u = make_user(srv, tag="titles")
    q = "x" + "Ü" * 60 + " zero moment point?"
    a = ask(srv, q, headers=u["headers"])
    r = srv.get(f"{SESSIONS}/{a['session_id']}", headers=u["headers"])
    assert r.status_code == 200, r.text[:300]
    title = r.json()["title"]
    assert title and q.startswith(title), title
    assert len(title.encode()) <= 80 and len(title) >= 30, title
    r = srv.get(SESSIONS, headers=u["headers"])
    assert r.status_code == 200, r.text[:300]
    assert [s["title"] for s in r.json()["items"]] == [title]


def test_anonymous_is_refused_when_off(ext):
    srv, _ = ext
    assert_error(srv.post(QUERY, json={"question": QUESTION}), 401, "unauthorized")
    assert_error(srv.post("/chat", json={"message": QUESTION}), 401, "unauthorized")
    assert_error(srv.post("/api/v1/chatbot/context", json={"text": "x"}), 401, "unauthorized")
    assert_error(srv.get(SESSIONS), 401, "unauthorized")


def test_compat_chat_route(ext, alice, bob):
    srv, _ = ext
    r = srv.post("/chat", json={"message": QUESTION}, headers=alice["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"response", "session_id", "timestamp"} <= set(body), body
    assert body["response"] and UUID7_RE.match(body["session_id"]) and TS_RE.match(body["timestamp"])
    sid = body["session_id"]
    r2 = srv.post("/chat", json={"message": "Who introduced it?", "session_id": sid,
                                 "selected_text": "zero moment point"}, headers=alice["headers"])
    assert r2.status_code == 200, r2.text
    assert r2.json()["session_id"] == sid
    msgs = srv.get(f"{SESSIONS}/{sid}/messages", headers=alice["headers"]).json()["items"]
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 2
    assert msgs[2]["selected_text"] == "zero moment point"
    # an unknown session id is a key the client minted: a new session, kept under that id
    ghost = str(uuid.uuid4())
    r3 = srv.post("/chat", json={"message": QUESTION, "session_id": ghost}, headers=alice["headers"])
    assert r3.status_code == 200, r3.text
    assert r3.json()["session_id"] == ghost
    assert len(srv.get(f"{SESSIONS}/{ghost}/messages", headers=alice["headers"]).json()["items"]) == 2
    # someone else's session id is unknown to bob: a new session of his own, alice's untouched
    r4 = srv.post("/chat", json={"message": QUESTION, "session_id": sid}, headers=bob["headers"])
    assert r4.status_code == 200, r4.text
    assert r4.json()["session_id"] == sid
    assert len(srv.get(f"{SESSIONS}/{sid}/messages", headers=alice["headers"]).json()["items"]) == 4
    assert len(srv.get(f"{SESSIONS}/{sid}/messages", headers=bob["headers"]).json()["items"]) == 2
    # a question is required, under any of the names the route reads
    err = assert_error(srv.post("/chat", json={"session_id": sid}, headers=alice["headers"]),
                       422, "validation_failed")
    assert "message" in [d.get("field") for d in err["details"]], err


# ---- validation ------------------------------------------------------------------------

def _fields(err):
    return [d.get("field") for d in err["details"]]


@pytest.mark.parametrize("body,field", [
    ({"question": "q" * 2001}, "question"),
    ({"question": "é" * 2001}, "question"),
    ({"question": ""}, "question"),
    ({}, "question"),
    ({"question": 42}, "question"),
    ({"question": "ok?", "selected_text": "s" * 5001}, "selected_text"),
    ({"question": "ok?", "top_k": 0}, "top_k"),
    ({"question": "ok?", "top_k": 21}, "top_k"),
    ({"question": "ok?", "top_k": "5"}, "top_k"),
    ({"question": "ok?", "book_id": "not-a-uuid"}, "book_id"),
    ({"question": "ok?", "stream": "yes"}, "stream"),
])
def test_query_validation(ext, body, field):
    srv, _ = ext
    err = assert_error(srv.post(QUERY, json=body, headers=ADMIN), 422, "validation_failed")
    assert field in _fields(err), err


def test_query_limits_are_inclusive(ext):
    srv, _ = ext
    a = ask(srv, "é" * 1999 + "?", selected_text="s" * 5000, top_k=20)
    check_answer_shape(a)
    a = ask(srv, top_k=1)
    assert all(c["n"] == 1 for c in a["citations"]), a["citations"]


def test_query_not_json(ext):
    srv, _ = ext
    r = srv.post(QUERY, data="question=hi", headers={**ADMIN, "Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")
    r = srv.post(QUERY, data="{not json", headers={**ADMIN, "Content-Type": "application/json"})
    assert_error(r, 400, "bad_request")
    r = srv.post(QUERY, data="[1, 2]", headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
