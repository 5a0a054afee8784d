"""Client-minted session ids (a key: created on first use, kept, never
replaced, never 404), bound to their creator; the session-first routes; the
history routes; feedback on answers (src/api/compat.c, services/chat.c)."""
import uuid

import pytest

from conftest import ADMIN, SLOW, TS_RE, UUID7_RE, assert_error, make_user, start_server, users_env
from fake_llm import FakeLLM
from test_chat_common import SESSIONS, import_indexed, llm_env
from test_compat_common import check_union

Q1 = "What is the zero moment point?"
Q2 = "Who introduced it?"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    fake = FakeLLM().start()
    env = users_env(**llm_env(fake, providers="p1:m1"), BOOKD_CHAT_ANON_PER_MINUTE=100000)
    srv = start_server(tmp_path_factory.mktemp("compat-sessions"), env=env)
    book = import_indexed(srv)
    yield srv, book, fake
    rc = srv.stop()
    fake.stop()
    assert rc == 0, srv.log_tail()


@pytest.fixture(scope="module")
def alice(site):
    return make_user(site[0], tag="alice")


@pytest.fixture(scope="module")
def bob(site):
    return make_user(site[0], tag="bob")


def chat(srv, path, body, headers=None):
    r = srv.post(path, json=body, headers=headers or {}, timeout=30 * SLOW)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
    return check_union(r.json())


def last_answer_call(fake, n_before):
    return fake.wait_calls(n_before + 1, kind="answer")[-1]


def memory_of(rec):
    """The conversation the model was given before the question."""
    return [(m["role"], m["content"]) for m in rec.messages[:-1]]


def minted():
    return f"session_{uuid.uuid4().hex[:10]}_widget"


def test_a_minted_id_threads_the_conversation(site):
    srv, _, fake = site
    sid = minted()
    a1 = chat(srv, "/api/chat", {"message": Q1, "session_id": sid}, )
    assert a1["session_id"] == sid
    n = len(fake.calls(kind="answer"))
    a2 = chat(srv, "/api/chat", {"message": Q2, "session_id": sid})
    assert a2["session_id"] == sid, "the client's id was replaced"
    rec = last_answer_call(fake, n)
    assert memory_of(rec) == [("user", Q1), ("assistant", a1["answer"])], rec.messages
    # the same key through another dialect is the same conversation
    n = len(fake.calls(kind="answer"))
    chat(srv, "/api/ask", {"question": "And the support polygon?", "session_id": sid})
    assert memory_of(last_answer_call(fake, n))[-2:] == [("user", Q2), ("assistant", a2["answer"])]


def test_native_query_takes_minted_ids(site, alice):
    srv, _, fake = site
    sid = str(uuid.uuid4())  # a v4 the client made: bookd never minted it
    r = srv.post("/api/v1/chatbot/query", json={"question": Q1, "session_id": sid},
                 headers=alice["headers"], timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    assert r.json()["session_id"] == sid
    n = len(fake.calls(kind="answer"))
    r = srv.post("/api/v1/chatbot/query", json={"question": Q2, "session_id": sid},
                 headers=alice["headers"], timeout=30 * SLOW)
    assert r.status_code == 200 and r.json()["session_id"] == sid, r.text
    assert memory_of(last_answer_call(fake, n))[0] == ("user", Q1)
    # the session routes find it by the client's id too
    g = srv.get(f"{SESSIONS}/{sid}/messages", headers=alice["headers"])
    assert g.status_code == 200 and len(g.json()["items"]) == 4, g.text


def test_two_users_with_the_same_id_are_two_conversations(site, alice, bob):
    srv, _, fake = site
    sid = minted()
    a = chat(srv, "/api/chat", {"message": Q1, "session_id": sid}, alice["headers"])
    n = len(fake.calls(kind="answer"))
    b = chat(srv, "/api/chat", {"message": "What are actuators?", "session_id": sid}, bob["headers"])
    assert b["session_id"] == sid
    assert memory_of(last_answer_call(fake, n)) == [], "bob was given alice's conversation"
    # an anonymous caller presenting a user's id gets a conversation of its own too
    n = len(fake.calls(kind="answer"))
    chat(srv, "/api/chat", {"message": "What is a sensor?", "session_id": sid})
    assert memory_of(last_answer_call(fake, n)) == []
    # ... and alice's goes on untouched
    n = len(fake.calls(kind="answer"))
    chat(srv, "/api/chat", {"message": Q2, "session_id": sid}, alice["headers"])
    assert memory_of(last_answer_call(fake, n)) == [("user", Q1), ("assistant", a["answer"])]
    hist = srv.get(f"/api/history/{sid}", headers=alice["headers"]).json()["messages"]
    assert [m["content"] for m in hist if m["role"] == "user"] == [Q1, Q2]
    hist = srv.get(f"/api/history/{sid}", headers=bob["headers"]).json()["messages"]
    assert [m["content"] for m in hist if m["role"] == "user"] == ["What are actuators?"]
    hist = srv.get(f"/api/history/{sid}").json()["messages"]
    assert [m["content"] for m in hist if m["role"] == "user"] == ["What is a sensor?"]


def test_bookd_minted_ids_stay_with_their_owner(site, alice, bob):
    srv, _, fake = site
    a = chat(srv, "/chat", {"message": Q1}, alice["headers"])
    sid = a["session_id"]
    assert UUID7_RE.match(sid)
    n = len(fake.calls(kind="answer"))
    chat(srv, "/chat", {"message": Q2, "session_id": sid}, bob["headers"])
    assert memory_of(last_answer_call(fake, n)) == []
    assert len(srv.get(f"{SESSIONS}/{sid}/messages", headers=alice["headers"]).json()["items"]) == 2


def test_anonymous_minted_ids_are_bearer_keys(site):
    """Among anonymous callers the key alone names the conversation (whoever
    holds it continues it); a different key is a different conversation."""
    srv, _, fake = site
    sid, other = minted(), minted()
    a = chat(srv, "/api/chat", {"message": Q1, "session_id": sid})
    n = len(fake.calls(kind="answer"))
    chat(srv, "/api/chat", {"message": Q2, "session_id": other})
    assert memory_of(last_answer_call(fake, n)) == []
    n = len(fake.calls(kind="answer"))
    chat(srv, "/api/chat", {"message": Q2, "session_id": sid})
    assert memory_of(last_answer_call(fake, n)) == [("user", Q1), ("assistant", a["answer"])]


def test_session_first_routes(site, alice):
    srv, _, fake = site
    for path, body in (("/api/v1/sessions", {"user_id": "someone-else"}), ("/api/v1/chat/session", {})):
        r = srv.post(path, json=body)
        assert r.status_code == 201, r.text
        sid = r.json()["session_id"]
        assert UUID7_RE.match(sid), r.json()
        # a new session has no messages (and is not a 404)
        g = srv.get(f"/api/v1/sessions/{sid}")
        assert g.status_code == 200 and g.json()["messages"] == [], g.text
        a = chat(srv, "/api/v1/chat", {"message": Q1, "session_id": sid})
        assert a["session_id"] == sid and isinstance(a["message"], str) and a["message"]
        msgs = srv.get(f"/api/v1/sessions/{sid}").json()["messages"]
        assert [(m["role"], m["content"]) for m in msgs] == [("user", Q1), ("assistant", a["answer"])]
        for m in msgs:
            assert TS_RE.match(m["timestamp"]), m
    # without a body, and for a signed-in user
    r = srv.post("/api/v1/sessions", headers=alice["headers"])
    assert r.status_code == 201, r.text


def test_history_routes(site, alice):
    srv, _, _ = site
    sid = minted()
    a1 = chat(srv, "/chat", {"message": Q1, "session_id": sid}, alice["headers"])
    a2 = chat(srv, "/chat", {"message": Q2, "session_id": sid}, alice["headers"])
    for path in (f"/chat/history/{sid}", f"/api/history/{sid}"):
        r = srv.get(path, headers=alice["headers"])
        assert r.status_code == 200, r.text
        msgs = r.json()["messages"]
        assert [(m["role"], m["sender"], m["content"]) for m in msgs] == [
            ("user", "user", Q1), ("assistant", "bot", a1["answer"]),
            ("user", "user", Q2), ("assistant", "bot", a2["answer"])], msgs
        for m in msgs:
            assert {"id", "role", "sender", "content", "timestamp"} <= set(m), m
            assert UUID7_RE.match(m["id"]) and TS_RE.match(m["timestamp"]), m
        assert msgs[1]["id"] == a1["message_id"] and msgs[3]["id"] == a2["message_id"]
    # a key never used: an empty conversation, not a 404
    r = srv.get(f"/chat/history/{minted()}")
    assert r.status_code == 200 and r.json()["messages"] == [], r.text


def test_feedback_stored_and_listed(site, alice, bob):
    srv, _, _ = site
    editor = make_user(srv, role="editor", tag="editor")
    a = chat(srv, "/api/chat", {"message": Q1, "session_id": minted()}, alice["headers"])
    r = srv.post("/api/feedback", json={"message_id": a["message_id"], "rating": "up",
                                        "comment": "clear answer"}, headers=alice["headers"])
    assert r.status_code == 201, r.text
    assert r.json()["rating"] == 1
    # a second rating by the same reader replaces the first
    r = srv.post("/api/feedback", json={"message_id": a["message_id"], "rating": 4}, headers=alice["headers"])
    assert r.status_code == 201, r.text
    anon = chat(srv, "/api/chat", {"message": Q2, "session_id": minted()})
    r = srv.post("/api/feedback", json={"message_id": anon["message_id"], "rating": "down"})
    assert r.status_code == 201, r.text
    # someone else's answer, a question, an unknown id: 404
    assert_error(srv.post("/api/feedback", json={"message_id": a["message_id"], "rating": 1},
                          headers=bob["headers"]), 404, "not_found")
    assert_error(srv.post("/api/feedback", json={"message_id": a["message_id"], "rating": 1}), 404, "not_found")
    hist = srv.get(f"/api/history/{a['session_id']}", headers=alice["headers"]).json()["messages"]
    assert_error(srv.post("/api/feedback", json={"message_id": hist[0]["id"], "rating": 1},
                          headers=alice["headers"]), 404, "not_found")
    assert_error(srv.post("/api/feedback", json={"message_id": str(uuid.uuid4()), "rating": 1}),
                 404, "not_found")
    # validation
    for body, field in (({"rating": 1}, "message_id"), ({"message_id": a["message_id"]}, "rating"),
                        ({"message_id": a["message_id"], "rating": 6}, "rating"),
                        ({"message_id": a["message_id"], "rating": "meh"}, "rating"),
                        ({"message_id": a["message_id"], "rating": 1, "comment": "c" * 2001}, "comment")):
        err = assert_error(srv.post("/api/feedback", json=body, headers=alice["headers"]),
                           422, "validation_failed")
        assert field in [d.get("field") for d in err["details"]], (body, err)
    # the report: editors and admins only
    assert_error(srv.get("/api/v1/feedback"), 401, "unauthorized")
    assert_error(srv.get("/api/v1/feedback", headers=alice["headers"]), 403, "forbidden")
    items, cursor = [], None
    for _ in range(20):
        r = srv.get("/api/v1/feedback", params={"limit": 1, **({"cursor": cursor} if cursor else {})},
                    headers=editor["headers"])
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    mine = [f for f in items if f["message_id"] == a["message_id"]]
    assert len(mine) == 1, items
    assert mine[0]["rating"] == 4 and mine[0]["comment"] is None, mine
    assert mine[0]["user_id"] == alice["id"] and mine[0]["answer"] == a["answer"], mine
    theirs = [f for f in items if f["message_id"] == anon["message_id"]]
    assert len(theirs) == 1 and theirs[0]["rating"] == -1 and theirs[0]["user_id"] is None, theirs
    assert srv.get("/api/v1/feedback", headers=ADMIN).status_code == 200
