"""Anonymous chat (BOOKD_CHAT_ANONYMOUS) with its per-IP limit, and the daily
token budget (BOOKD_CHAT_DAILY_TOKENS)."""
from conftest import ADMIN, assert_error, make_user, users_env
from test_chat_common import QUERY, QUESTION, SESSIONS, SSE, ask, chat_server, llm_env
from test_chat_common import fake_llm  # noqa: F401 (fixture)


def assert_429(r):
    assert_error(r, 429, "rate_limited")
    ra = r.headers.get("Retry-After")
    assert ra is not None and ra.isdigit() and int(ra) >= 1, f"Retry-After {ra!r}"
    return int(ra)


def test_anonymous_chat_limited_per_ip(server_factory):
    srv, _ = chat_server(server_factory, env=users_env(BOOKD_CHAT_ANONYMOUS="true",
                                                       BOOKD_CHAT_ANON_PER_MINUTE="2"))
    user = make_user(srv, tag="chatter")
    # 1: a new anonymous session
    r = srv.post(QUERY, json={"question": QUESTION})
    assert r.status_code == 200, r.text
    sid = r.json()["session_id"]
    assert r.json()["provider"] == "extractive"
    # a signed-in user cannot reach an anonymous session (and is not limited per IP):
    # the same id names a new conversation of the user's own
    r = srv.post(QUERY, json={"question": "more?", "session_id": sid}, headers=user["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["session_id"] == sid
    mine = srv.get(f"{SESSIONS}/{sid}/messages", headers=user["headers"]).json()["items"]
    assert [m["content"] for m in mine if m["role"] == "user"] == ["more?"], mine
    # the session routes stay for signed-in users
    assert_error(srv.get(SESSIONS), 401, "unauthorized")
    assert_error(srv.get(f"{SESSIONS}/{sid}"), 401, "unauthorized")
    # 2: the anonymous conversation goes on
    r = srv.post(QUERY, json={"question": "Who introduced it?", "session_id": sid})
    assert r.status_code == 200, r.text
    assert r.json()["session_id"] == sid
    # 3, 4: the burst is twice the per-minute rate
    for q in ("What are actuators?", "What is a sensor?"):
        r = srv.post(QUERY, json={"question": q})
        assert r.status_code == 200, f"{q}: {r.status_code} {r.text[:200]}"
    # 5: refused, with a Retry-After within the refill time of one question
    ra = assert_429(srv.post(QUERY, json={"question": QUESTION}))
    assert ra <= 30, ra
    assert_429(srv.post("/chat", json={"message": QUESTION}))
    # signed-in users and the master key are not held by the anonymous limit
    assert ask(srv, headers=user["headers"])["provider"] == "extractive"
    assert ask(srv, headers=ADMIN)["provider"] == "extractive"
    srv.assert_alive()


def test_daily_token_budget(server_factory, fake_llm):
    """A question is let through when its worst case fits what is left of the
    day's budget: its prompt (one passage: at most about 380 tokens) and the
    longest answer (100)."""
    srv, _ = chat_server(server_factory, env=users_env(**llm_env(fake_llm, providers="p1:m1"),
                                                       BOOKD_CHAT_DAILY_TOKENS="1000",
                                                       BOOKD_CHAT_MAX_TOKENS="100"))
    fake_llm.set_default(text="The ZMP [1].", usage=(300, 100))
    u = make_user(srv, tag="budget")
    a = ask(srv, headers=u["headers"], top_k=1)
    assert a["provider"] == "p1"
    assert a["usage"] == {"prompt_tokens": 300, "completion_tokens": 100, "total_tokens": 400}, a["usage"]
    # 400 used of 1000: still room for one; this one brings it to 800
    assert ask(srv, "Who introduced it?", headers=u["headers"], top_k=1)["provider"] == "p1"
    n = len(fake_llm.calls())
    r = srv.post(QUERY, json={"question": "And the support polygon?", "top_k": 1}, headers=u["headers"])
    assert_429(r)
    assert len(fake_llm.calls()) == n, "a question over budget still reached the language model"
    # a streamed question over budget is refused too (as 429 or as an error event)
    s = SSE(srv, {"question": "And the support polygon?", "top_k": 1}, headers=u["headers"])
    if s.resp.status_code == 200:
        s.read_all()
        assert "done" not in s.names(), s.events
        errs = s.of("error")
        assert errs and errs[0][1]["error"]["code"] == "rate_limited", s.events
    else:
        assert_429(s.resp)
    assert len(fake_llm.calls()) == n
    # the budget is per user
    other = make_user(srv, tag="budget2")
    assert ask(srv, headers=other["headers"], top_k=1)["provider"] == "p1"
    srv.assert_alive()
