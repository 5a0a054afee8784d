"""What the chatbot stores and answers stays whole: citation clean-up that
makes the text longer, text cut on character boundaries, invalid UTF-8 from
clients refused with 400 naming the field, and the daily token budget
reserved before the model is asked and settled after, so concurrent questions
cannot overspend it."""
import concurrent.futures
import json
import time

import pytest
import requests

from conftest import ADMIN, SLOW, assert_error, make_user, users_env
from fake_embed import fake_embed_server
from fake_llm import FakeLLM
from test_chat_common import QUERY, QUESTION, SESSIONS, ask, chat_server, llm_env, stream


@pytest.fixture(scope="module")
def mod_fake():
    fake = FakeLLM().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def llm_srv(tmp_path_factory, mod_fake):
    env = users_env(**llm_env(mod_fake, providers="p1:m1", tries=1, BOOKD_LLM_BREAKER_FAILURES=1000))
    srv, book = chat_server(tmp_path_factory.mktemp("chat-integrity"), env=env)
    yield srv, book
    rc = srv.stop()
    assert rc == 0, srv.log_tail()


@pytest.fixture
def llm(llm_srv, mod_fake):
    mod_fake.reset()
    yield llm_srv[0], llm_srv[1], mod_fake
    mod_fake.reset()


# "[1,2,3]" becomes "[1][2][3]": two bytes longer than the model's text.
GROWING = "Zéro [1,2,3] moment, [1, 2] point: " + "ünïcödé " * 20 + "fin é"
GROWN = "Zéro [1][2][3] moment, [1][2] point: " + "ünïcödé " * 20 + "fin é"


def test_markers_that_lengthen_the_answer_keep_all_of_it(llm):
    srv, _, fake = llm
    user = make_user(srv, tag="grow")
    fake.set_default(text=GROWING)
    a = ask(srv, headers=user["headers"], top_k=5)
    assert a["answer"] == GROWN, a["answer"]
    assert [c["n"] for c in a["citations"]] == [1, 2, 3], a["citations"]
    # what was stored is what was answered
    r = srv.get(f"{SESSIONS}/{a['session_id']}/messages", headers=user["headers"])
    assert r.status_code == 200, r.text
    assert [m["content"] for m in r.json()["items"]] == [QUESTION, GROWN]
    # streamed: the stream ends with `done` carrying the whole answer
    fake.set_default(text=GROWING, chunks=4)
    s = stream(srv, headers=user["headers"], top_k=5)
    assert s.names()[-1] == "done", s.events
    assert s.of("done")[0][1]["answer"] == GROWN
    srv.assert_alive()


def test_selection_is_cut_on_a_character_boundary(server_factory, mod_fake):
    """The selection goes into the retrieval query cut to 300 bytes: a cut
    in the middle of a character made the query invalid UTF-8, and its
    embedding was never asked for (hybrid search fell back to keywords)."""
    mod_fake.reset()
    with fake_embed_server() as emb:
        env = users_env(**llm_env(mod_fake, providers="p1:m1", tries=1), BOOKD_EMBED_URL=emb.url,
                        BOOKD_EMBED_MODEL="fake-1")
        srv, _ = chat_server(server_factory, env=env)
        head = "zero moment points "  # 19 bytes: byte 300 is the second of an é
        mod_fake.set_default(text="The ZMP [1].")
        a = ask(srv, selected_text=head + "é" * 400)
        assert a["provider"] == "p1", a
        want = f"{QUESTION} {head}" + "é" * 140  # 299 bytes of the selection
        assert want in emb.embedded_inputs(), (
            f"the query was not embedded whole: {[t[:60] for t in emb.embedded_inputs()[-3:]]}\n"
            f"{srv.log_tail()}")
        srv.assert_alive()
    mod_fake.reset()


def raw_post(srv, path, body: bytes, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or ADMIN)
    return requests.post(srv.url(path), data=body, headers=h, timeout=10 * SLOW)


@pytest.mark.parametrize("path,field", [
    (QUERY, "question"), (QUERY, "selected_text"), ("/chat", "message"),
    ("/api/v1/chatbot/context", "text"),
])
def test_invalid_utf8_in_a_field_is_400_naming_it(llm, path, field):
    srv, _, _ = llm
    body = {"question": "What is it?", "message": "What is it?", "text": "some text"}
    raw = json.dumps(body)[:-1].encode() + b', "' + field.encode() + b'": "caf\xe9 au lait"}'
    r = raw_post(srv, path, raw)
    assert_error(r, 400, "bad_request")
    err = r.json()["error"]
    assert [d["field"] for d in err["details"]] == [field], err
    assert err["message"].startswith(field + " "), err
    srv.assert_alive()


def test_invalid_utf8_in_search_query_string_is_400(llm):
    srv, book, _ = llm
    for q in ("caf%E9", "%C3", "%ED%A0%80"):  # a lone byte, a cut character, a surrogate
        r = requests.get(srv.url(f"/api/v1/search?q={q}&book_id={book.id}"), headers=ADMIN,
                         timeout=10 * SLOW)
        assert_error(r, 400, "bad_request")
        assert [d["field"] for d in r.json()["error"]["details"]] == ["q"], r.text
    srv.assert_alive()


# ---- the daily token budget ----------------------------------------------------------

def budget_env(fake, budget):
    return users_env(**llm_env(fake, providers="p1:m1", tries=1, BOOKD_LLM_BREAKER_FAILURES=1000),
                     BOOKD_CHAT_DAILY_TOKENS=str(budget), BOOKD_CHAT_MAX_TOKENS="100",
                     BOOKD_CHAT_THREADS="16")


def test_concurrent_questions_cannot_overspend_the_budget(server_factory, mod_fake):
    """Eight questions at once against a budget of 1000 tokens, each costing
    200: the check-then-add budget let all eight through (1600 spent). One
    passage (top_k 1, at most 256 tokens) keeps each reservation (prompt
    estimate + 100) between about 230 and 480 tokens."""
    fake = mod_fake
    fake.reset()
    budget = 1000
    srv, _ = chat_server(server_factory, env=budget_env(fake, budget))
    user = make_user(srv, tag="spender")
    fake.set_default(text="The ZMP [1].", usage=(150, 50), delay=1.0)

    def one(i):
        return srv.post(QUERY, json={"question": f"{QUESTION} ({i})", "top_k": 1},
                        headers=user["headers"], timeout=30 * SLOW)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(one, range(8)))
    ok = [r for r in rs if r.status_code == 200]
    refused = [r for r in rs if r.status_code == 429]
    assert len(ok) + len(refused) == 8, [(r.status_code, r.text[:200]) for r in rs]
    assert ok, "no question fitted the budget"
    assert refused, "every question was answered: the budget was not reserved"
    spent = sum(r.json()["usage"]["total_tokens"] for r in ok)
    assert spent <= budget, f"{spent} tokens spent of a {budget} budget"
    assert len(fake.calls(kind="answer")) == len(ok), "a refused question reached the model"
    for r in refused:
        assert r.headers.get("Retry-After")

    # Settled: the reservations of the answered questions were corrected to
    # what they cost, so questions go on until the real spending fills the day.
    fake.set_default(text="The ZMP [1].", usage=(150, 50))
    more = 0
    while more < 10:
        r = srv.post(QUERY, json={"question": QUESTION, "top_k": 1}, headers=user["headers"],
                     timeout=30 * SLOW)
        if r.status_code == 429:
            break
        assert r.status_code == 200, r.text
        spent += r.json()["usage"]["total_tokens"]
        more += 1
    assert spent <= budget, f"{spent} tokens spent of a {budget} budget"
    assert spent + 480 + 200 > budget, f"only {spent} of {budget} spent: reservations were not released"

    # A failed model call releases its whole reservation (the answer is extractive, free).
    other = make_user(srv, tag="failing")
    fake.set_default(status=500)
    for _ in range(6):
        a = ask(srv, headers=other["headers"], top_k=1)
        assert a["provider"] == "extractive", a
    fake.set_default(text="The ZMP [1].", usage=(150, 50))
    assert ask(srv, headers=other["headers"], top_k=1)["provider"] == "p1"
    srv.assert_alive()
    fake.reset()


def test_leaving_a_streamed_answer_still_spends_the_budget(server_factory, mod_fake):
    """A reader who reads part of a streamed answer and leaves has had the
    model's work: the reservation is settled to the prompt and the words
    delivered, not refunded. (It was refunded whole: leaving before the end
    made every question free.)"""
    fake = mod_fake
    fake.reset()
    srv, _ = chat_server(server_factory, env=budget_env(fake, 3000))
    user = make_user(srv, tag="leaver")
    long_text = " ".join(["The zero moment point keeps the robot balanced [1]."] * 40)
    fake.set_default(text=long_text, chunks=40, delay=0.05, usage=(500, 400))
    refused = None
    for i in range(15):
        r = srv.post(QUERY, json={"question": f"{QUESTION} ({i})", "top_k": 1, "stream": True},
                     headers=dict(user["headers"], Accept="text/event-stream"), stream=True,
                     timeout=30 * SLOW)
        assert r.status_code == 200, r.text
        deltas, limited = 0, False
        for line in r.iter_lines(chunk_size=1):
            if line.startswith(b"event: delta"):
                deltas += 1
                if deltas == 10:
                    break
            limited |= line.startswith(b"data: ") and b'"rate_limited"' in line
        r.close()  # the reader leaves mid-answer
        if limited:  # a stream is refused in its `error` event
            refused = i
            break
        deadline = time.monotonic() + 5 * SLOW
        while len(fake.calls(kind="answer")) <= i and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # bookd notices at its next write, then settles
    assert refused is not None, "15 answers read in part and left cost nothing: the budget was refunded"
    assert refused >= 2, f"refused after {refused} questions: the budget was charged more than spent"
    srv.assert_alive()
    fake.reset()
