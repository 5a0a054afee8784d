"""Answers from a language model: citation checking, streaming (SSE),
conversation memory and the follow-up rewrite, selected text and stored
reading context."""
import re
import time

import pytest

from conftest import ADMIN, SLOW, assert_error, make_user, users_env
from fake_llm import FakeLLM
from test_chat_common import (CONTEXT, QUESTION, SESSIONS, SSE, ask, chat_server,
                              check_answer_shape, check_citation_in_book, llm_env, stream)


@pytest.fixture(scope="module")
def mod_fake():
    fake = FakeLLM().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def llm_srv(tmp_path_factory, mod_fake):
    """One OpenAI-wire provider p1 on the fake, one try, no breaker trouble."""
    env = users_env(**llm_env(mod_fake, providers="p1:m1", tries=1, BOOKD_LLM_BREAKER_FAILURES=1000))
    srv, book = chat_server(tmp_path_factory.mktemp("chat-answers"), env=env)
    yield srv, book
    rc = srv.stop()
    assert rc == 0, srv.log_tail()


@pytest.fixture
def llm(llm_srv, mod_fake):
    mod_fake.reset()
    yield llm_srv[0], llm_srv[1], mod_fake
    mod_fake.reset()


def answer_calls(fake):
    return fake.calls(kind="answer")


def tokens(s):
    return (len(s.encode("utf-8")) + 3) // 4


# ---- citations -------------------------------------------------------------------------

def test_citation_markers_are_checked(llm):
    srv, book, fake = llm
    fake.set_default(text="The ZMP is the point where the net moment vanishes [1]. Also [7] and [2].")
    a = ask(srv, top_k=5)
    check_answer_shape(a)
    assert a["provider"] == "p1"
    ans = a["answer"]
    assert "[7]" not in ans, ans
    assert "[1]" in ans and "[2]" in ans, ans
    assert "  " not in ans, f"a dropped marker left a double space: {ans!r}"
    assert ans.startswith("The ZMP is the point where the net moment vanishes [1]."), ans
    assert [c["n"] for c in a["citations"]] == [1, 2], a["citations"]
    passages = answer_calls(fake)[0].passages()
    assert sorted(passages) == [1, 2, 3, 4, 5]
    for c in a["citations"]:
        check_citation_in_book(book, c)
        assert c["quote"] in passages[c["n"]], (
            f"quote of [{c['n']}] is not verbatim in passage {c['n']}: {c['quote']!r}")
        assert c["heading"], c


def test_odd_citation_markers(llm):
    srv, book, fake = llm
    fake.set_default(text="Alpha [1]. Beta [0]. Gamma [3, 9]. Delta [4294967298]. "
                          "Epsilon [99999999999]. Zeta [5].")
    a = ask(srv, top_k=5)
    ans = a["answer"]
    for bad in ("[0]", "[9]", "[4294967298]", "[99999999999]"):
        assert bad not in ans, (bad, ans)
    assert [c["n"] for c in a["citations"]] == [1, 3, 5], (
        f"only [1], [3] and [5] point at passages; got citations "
        f"{[c['n'] for c in a['citations']]} for the answer {ans!r}")
    assert re.findall(r"\[(\d+)\]", ans) == ["1", "3", "5"], ans


# ---- streaming -------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["accept", "body"])
def test_streamed_answer(llm, how):
    srv, book, fake = llm
    text = "The zero moment point [1] keeps a walking robot upright [2]."
    fake.set_default(text=text, chunks=5, delay=0.3)
    body = {"question": QUESTION, "top_k": 4}
    if how == "body":
        body["stream"] = True
    s = SSE(srv, body, accept=(how == "accept"))
    assert s.resp.status_code == 200, s.resp.text[:300]
    assert s.resp.headers["Content-Type"].startswith("text/event-stream"), s.resp.headers
    assert s.resp.headers.get("X-Accel-Buffering") == "no", s.resp.headers
    s.read_all()
    names = s.names()
    assert names[0] == "citations", names
    assert names[-1] == "done" and names.count("done") == 1, names
    assert set(names[1:-1]) == {"delta"}, names
    deltas = s.of("delta")
    assert len(deltas) == 5, names
    assert "".join(d[1]["text"] for d in deltas) == text
    done = s.of("done")[0][1]
    check_answer_shape(done)
    assert done["answer"] == text and done["provider"] == "p1"
    # tokens leave bookd as they arrive: the first well before the last
    first, last = deltas[0][2], deltas[-1][2]
    # (counted from the model call, not from the request: retrieval before
    # it is no part of this and can be slow on a busy machine)
    since_call = s.t0 + first - answer_calls(fake)[0].t
    assert since_call < 0.9, f"first delta {since_call:.2f}s after the model was asked"
    assert last - first >= 0.9, f"deltas arrived together ({first:.2f}s .. {last:.2f}s): buffered?"
    # the citations event lists the passages given to the model
    passages = s.of("citations")[0][1]["passages"]
    assert [p["n"] for p in passages] == [1, 2, 3, 4]
    prompt = answer_calls(fake)[0].passages()
    assert sorted(prompt) == [1, 2, 3, 4]
    for c in done["citations"]:
        assert c["chunk_id"] == passages[c["n"] - 1]["chunk_id"], (c, passages)
        assert c["quote"] in prompt[c["n"]]
    assert answer_calls(fake)[0].stream


def test_stream_cut_by_the_provider_ends_in_error(llm):
    srv, book, fake = llm
    fake.set_default(text="One two three four five six seven eight [1].", chunks=6, cut_after=2)
    s = stream(srv)
    names = s.names()
    assert names[0] == "citations", names
    assert "done" not in names, names
    assert names[-1] == "error", names
    assert names.count("delta") == 2, names
    err = s.of("error")[0][1]["error"]
    assert err["code"] and err["message"], err
    assert len(answer_calls(fake)) == 1, "a broken stream the reader saw part of was retried"


def test_history_after_a_broken_stream_has_no_empty_answer(llm):
    """After a streamed answer broke off, the next question of the session
    must not send the model an empty assistant message (Anthropic, for one,
    rejects empty content)."""
    srv, book, fake = llm
    fake.push(text="Partial answer that breaks [1].", chunks=4, cut_after=2)
    s = stream(srv)
    assert s.names()[-1] == "error", s.names()
    sid = None
    # the session id is not in an error event: find it in the session list
    items = srv.get(SESSIONS, headers=ADMIN).json()["items"]
    sid = items[0]["id"]
    fake.set_default(text="Fine now [1].")
    a = ask(srv, "Who introduced it?", session_id=sid)
    assert a["session_id"] == sid
    msgs = answer_calls(fake)[-1].body["messages"]
    empty = [m for m in msgs if not (m.get("content") or "").strip()]
    assert not empty, f"messages sent to the model include empty ones: {msgs}"


def test_client_disconnect_cancels_the_model_call(llm):
    srv, book, fake = llm
    fake.set_default(text=" ".join(f"w{i}" for i in range(20)), chunks=20, delay=0.3)
    s = SSE(srv, {"question": QUESTION})
    assert s.resp.status_code == 200
    for ev in s:
        if ev[0] == "delta":
            break
    t_close = time.monotonic()
    s.close()
    rec = fake.wait_calls(1, kind="answer")[0]
    assert rec.finished.wait(8 * SLOW), "the model call went on for the whole answer"
    assert rec.disconnected, f"bookd read the whole stream after the client left: {rec}"
    assert rec.t_disconnect - t_close < 2.0 * SLOW, f"cancelled {rec.t_disconnect - t_close:.2f}s later"
    assert rec.deltas_sent < 10, rec
    srv.assert_alive()


def test_client_disconnect_before_the_first_token_cancels_the_model_call(llm):
    """The reader leaves while the model is still thinking (no token yet):
    the call should be cancelled too, not left running until the model
    answers."""
    srv, book, fake = llm
    fake.set_default(hang=5, text="Late answer [1].")
    s = SSE(srv, {"question": QUESTION})
    assert s.resp.status_code == 200
    for ev in s:
        assert ev[0] == "citations"
        break
    rec = fake.wait_calls(1, kind="answer")[0]
    t_close = time.monotonic()
    s.close()
    rec.finished.wait(3 * SLOW)
    assert rec.disconnected and rec.t_disconnect - t_close < 3.0 * SLOW, (
        f"the model call was still open {time.monotonic() - t_close:.1f}s after the client left: {rec}")


def test_a_thinking_model_keeps_the_stream_alive_once_a_second(llm):
    """No token for three seconds: the reader gets a comment line about once a
    second (so that a proxy keeps the connection, and a gone reader shows up),
    not a flood of them, and then the answer."""
    srv, book, fake = llm
    fake.set_default(hang=3, text="Slow answer [1].")
    s = SSE(srv, {"question": QUESTION})
    names = [ev[0] for ev in s.read_all()]
    assert names[0] == "citations" and names[-1] == "done", names
    waits = [t for text, t in s.comments if text == "waiting"]
    assert 2 <= len(waits) <= 4, s.comments
    gaps = [b - a for a, b in zip(waits, waits[1:])]
    # a flood would be 0.1 s apart (a tick); the reader's own delays blur the rest
    assert all(0.5 <= g <= 1.5 * SLOW for g in gaps), gaps


# ---- memory -------------------------------------------------------------------------

def test_second_question_sends_history_and_rewrites(llm):
    srv, book, fake = llm
    fake.push(text="The ZMP is where the moment vanishes [1].")
    a1 = ask(srv)
    sid = a1["session_id"]
    assert answer_calls(fake)[0].body["messages"][1:] == [{"role": "user", "content": QUESTION}]
    assert not fake.calls(kind="rewrite"), "a rewrite call for a first question"
    fake.set_rewrite("tactile sensing skin")
    fake.push(text="Tactile skins help [1].")
    a2 = ask(srv, "Tell me more.", session_id=sid)
    assert a2["session_id"] == sid and a2["provider"] == "p1"
    rw = fake.calls(kind="rewrite")
    ans = answer_calls(fake)
    assert len(rw) == 1 and len(ans) == 2, fake.calls()
    assert rw[0].t < ans[1].t, "the rewrite came after the answer call"
    assert "standalone" in rw[0].system
    rw_prompt = rw[0].messages[-1]["content"]
    assert QUESTION in rw_prompt and a1["answer"] in rw_prompt and "Tell me more." in rw_prompt, rw_prompt
    assert ans[1].body["messages"][1:] == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": a1["answer"]},
        {"role": "user", "content": "Tell me more."},
    ], ans[1].body["messages"]
    # retrieval used the rewritten query
    p = ans[1].passages()
    assert "tactile" in p[1].lower(), p[1][:300]


def test_history_window_is_ten_messages(llm):
    srv, book, fake = llm
    sid = None
    qs = [f"Question {i} about the zero moment point?" for i in range(7)]
    for i in range(6):
        fake.push(text=f"Answer {i} [1].")
        a = ask(srv, qs[i], **({"session_id": sid} if sid else {}))
        sid = a["session_id"]
    fake.push(text="Answer 6 [1].")
    ask(srv, qs[6], session_id=sid)
    msgs = answer_calls(fake)[-1].body["messages"][1:]
    expected = []
    for i in range(1, 6):
        expected += [{"role": "user", "content": qs[i]}, {"role": "assistant", "content": f"Answer {i} [1]."}]
    expected.append({"role": "user", "content": qs[6]})
    assert msgs == expected, msgs
    m = srv.get(f"{SESSIONS}/{sid}/messages", headers=ADMIN, params={"limit": 100}).json()["items"]
    assert len(m) == 14


def test_history_window_is_two_thousand_tokens(llm):
    srv, book, fake = llm
    long = "The robot keeps its balance. " * 103  # 2987 bytes: 747 estimated tokens
    sid = None
    for i in range(3):
        fake.push(text=f"{i}: {long}[1].")
        a = ask(srv, f"Question {i} about balance?", **({"session_id": sid} if sid else {}))
        sid = a["session_id"]
    fake.push(text="Short [1].")
    ask(srv, "And now?", session_id=sid)
    msgs = answer_calls(fake)[-1].body["messages"][1:]
    hist = msgs[:-1]
    assert msgs[-1] == {"role": "user", "content": "And now?"}
    stored = srv.get(f"{SESSIONS}/{sid}/messages", headers=ADMIN).json()["items"]
    stored = [{"role": x["role"], "content": x["content"]} for x in stored][:-2]
    assert hist == stored[len(stored) - len(hist):], "the history is not the newest messages"
    used = sum(tokens(m["content"]) for m in hist)
    assert used <= 2000, f"history of {used} tokens sent"
    older = stored[:len(stored) - len(hist)]
    assert older and used + tokens(older[-1]["content"]) > 2000, (
        f"{len(hist)} messages ({used} tokens) sent; the next older one would still fit")


def test_rewrite_with_non_ascii_history(llm):
    """History longer than the rewrite's 500-byte excerpt with a multi-byte
    character at the cut: the follow-up rewrite must still reach the model."""
    srv, book, fake = llm
    fake.push(text="x" + "é" * 300 + " [1].")
    a = ask(srv)
    fake.set_rewrite("zero moment point")
    fake.push(text="Second [1].")
    t = time.monotonic()
    a2 = ask(srv, "Who introduced it?", session_id=a["session_id"])
    took = time.monotonic() - t
    assert a2["provider"] == "p1"
    rw = fake.calls(kind="rewrite")
    assert len(rw) == 1, f"no rewrite request reached the model (answer took {took:.2f}s)"
    users = [m for m in rw[0].messages if m.get("role") == "user"]
    assert users, f"the rewrite request carries no conversation at all: {rw[0].raw[-400:]!r}"
    conv = users[-1]["content"]
    assert "Last question: Who introduced it?" in conv and QUESTION in conv, conv[-300:]
    assert "xéé" in conv, conv[:200]


# ---- selected text and reading context ------------------------------------------------------

def test_selected_text_reaches_the_prompt_verbatim(llm):
    srv, book, fake = llm
    sel = ('The key concept here is the "zero moment point" — ZMP\n'
           "with <tags> & symbols \\ and a second line: 100% é ü 日本")
    fake.set_default(text="About the selection [1].")
    a = ask(srv, "What does this mean?", selected_text=sel)
    rec = answer_calls(fake)[0]
    assert sel in rec.system, rec.system[-600:]
    assert rec.body["messages"][-1] == {"role": "user", "content": "What does this mean?"}
    assert sel not in rec.body["messages"][-1]["content"]
    msgs = srv.get(f"{SESSIONS}/{a['session_id']}/messages", headers=ADMIN).json()["items"]
    assert msgs[0]["selected_text"] == sel
    # retrieval follows the selection: a question without content words finds the ZMP
    assert any("zero moment point" in t.lower() for t in rec.passages().values())


def test_reading_context_focuses_retrieval(llm):
    srv, book, fake = llm
    sensors = next(c for c in book.chapters.values() if c["title"] == "Sensors and Perception")
    text = "Proprioception tells the robot where its own limbs are."
    r = srv.post(CONTEXT, json={"text": text, "book_id": book.id, "chapter_id": sensors["id"]}, headers=ADMIN)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"session_id", "context_id"}, body
    sid = body["session_id"]
    # a second context in the same session keeps the session
    r2 = srv.post(CONTEXT, json={"text": text, "session_id": sid, "book_id": book.id,
                                 "chapter_id": sensors["id"]}, headers=ADMIN)
    assert r2.status_code == 201, r2.text
    assert r2.json()["session_id"] == sid and r2.json()["context_id"] != body["context_id"]
    fake.set_default(text="Balance needs sensing [1].")
    # a question about another chapter's topic: passages still come from the context's chapter
    s = stream(srv, QUESTION, session_id=sid)
    passages = s.of("citations")[0][1]["passages"]
    assert passages, s.events
    assert {p["chapter_id"] for p in passages} == {sensors["id"]}, [p["chapter_title"] for p in passages]
    assert s.of("done")[0][1]["session_id"] == sid
    assert text in answer_calls(fake)[0].system


def test_context_validation_and_ownership(llm):
    srv, book, fake = llm
    u1, u2 = make_user(srv, tag="ctx1"), make_user(srv, tag="ctx2")
    err = assert_error(srv.post(CONTEXT, json={"book_id": book.id}, headers=u1["headers"]),
                       422, "validation_failed")
    assert "text" in [d.get("field") for d in err["details"]]
    err = assert_error(srv.post(CONTEXT, json={"text": "t" * 5001}, headers=u1["headers"]),
                       422, "validation_failed")
    assert "text" in [d.get("field") for d in err["details"]]
    err = assert_error(srv.post(CONTEXT, json={"text": "x", "book_id": "zzz", "chapter_id": "not-a-uuid"},
                                headers=u1["headers"]), 422, "validation_failed")
    assert {"book_id", "chapter_id"} <= {d.get("field") for d in err["details"]}, err
    # an id the client minted names a new session, kept
    r = srv.post(CONTEXT, json={"text": "x", "session_id": "nope"}, headers=u1["headers"])
    assert r.status_code == 201 and r.json()["session_id"] == "nope", r.text
    assert_error(srv.post(CONTEXT, json={"text": "x", "session_id": "bad\u0001id"}, headers=u1["headers"]),
                 422, "validation_failed")
    r = srv.post(CONTEXT, json={"text": "mine"}, headers=u1["headers"])
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    # another user's id names a session of u2's own
    r = srv.post(CONTEXT, json={"text": "theirs", "session_id": sid}, headers=u2["headers"])
    assert r.status_code == 201 and r.json()["session_id"] == sid, r.text
    assert srv.get(f"{SESSIONS}/{sid}", headers=u2["headers"]).json()["id"] != sid
    s = srv.get(f"{SESSIONS}/{sid}", headers=u1["headers"])
    assert s.status_code == 200, s.text
