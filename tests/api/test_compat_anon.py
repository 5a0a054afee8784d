"""Anonymous chat is on by default (a book site's widget works with no
sign-in), bounded per address: the questions-per-minute limit and a daily
token budget of its own (BOOKD_CHAT_ANON_DAILY_TOKENS); `bookd serve` says
so at start."""
from conftest import SLOW, assert_error, make_user, users_env
from test_chat_common import chat_server, llm_env
from test_chat_common import fake_llm  # noqa: F401 (fixture)


def test_anonymous_chat_is_on_by_default_and_logged(server_factory):
    srv = server_factory(env=users_env())
    r = srv.post("/api/chat", json={"message": "What is a robot?"}, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    r = srv.post("/api/v1/chatbot/query", json={"question": "What is a robot?"}, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    on = [x for x in srv.log_records() if str(x.get("msg", "")).startswith("anonymous chat is on")]
    assert len(on) == 1, srv.log_tail()
    assert on[0]["questions_per_minute_per_ip"] == 10 and on[0]["daily_tokens_per_ip"] == 200000, on


def test_anonymous_chat_off_is_401_and_not_logged(server_factory):
    srv = server_factory(env=users_env(BOOKD_CHAT_ANONYMOUS="false"))
    assert_error(srv.post("/api/chat", json={"message": "What is a robot?"}), 401, "unauthorized")
    assert_error(srv.post("/v1/chat/ask/stream", json={"message": "What is a robot?"}), 401, "unauthorized")
    assert_error(srv.get("/api/history/abc"), 401, "unauthorized")
    assert not [x for x in srv.log_records() if str(x.get("msg", "")).startswith("anonymous chat is on")]


def test_anonymous_daily_budget_per_address(server_factory, fake_llm):
    """Anonymous questions have their own daily budget, apart from users'."""
    srv, _ = chat_server(server_factory, env=users_env(**llm_env(fake_llm, providers="p1:m1"),
                                                       BOOKD_CHAT_ANON_DAILY_TOKENS="1000",
                                                       BOOKD_CHAT_MAX_TOKENS="100"))
    fake_llm.set_default(text="The ZMP [1].", usage=(300, 100))
    q = {"message": "What is the zero moment point?", "top_k": 1}
    for _ in range(2):
        r = srv.post("/api/chat", json=q, timeout=30 * SLOW)
        assert r.status_code == 200 and r.json()["provider"] == "p1", r.text
    n = len(fake_llm.calls(kind="answer"))
    r = srv.post("/api/chat", json=q, timeout=30 * SLOW)
    assert_error(r, 429, "rate_limited")
    assert len(fake_llm.calls(kind="answer")) == n
    # a signed-in user is held by BOOKD_CHAT_DAILY_TOKENS (unlimited here), not the address's
    u = make_user(srv, tag="anonbudget")
    r = srv.post("/api/chat", json=q, headers=u["headers"], timeout=30 * SLOW)
    assert r.status_code == 200, r.text
