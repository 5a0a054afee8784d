"""The language-model chain: provider order, wire formats (OpenAI chat
completions, Anthropic Messages), retries with backoff and Retry-After,
failover, the circuit breaker, per-provider timeouts and the chat deadline."""
import subprocess
import threading
import time

import pytest

from conftest import BOOKD, SLOW, clean_env, free_port
from test_chat_common import QUESTION, ask, chat_server, check_answer_shape, llm_env, stream
from test_chat_common import fake_llm  # noqa: F401 (fixture)
from fake_llm import FakeLLM


@pytest.fixture(scope="module")
def mod_fake():
    fake = FakeLLM().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def chain_srv(tmp_path_factory, mod_fake):
    """p1 (OpenAI wire) then p2 (Anthropic wire), 2 tries each, a breaker that
    never opens in these tests."""
    srv, book = chat_server(tmp_path_factory.mktemp("chat-chain"),
                            env=llm_env(mod_fake, tries=2, BOOKD_LLM_BREAKER_FAILURES=1000))
    yield srv, book
    rc = srv.stop()
    assert rc == 0, srv.log_tail()


@pytest.fixture
def chain(chain_srv, mod_fake):
    mod_fake.reset()
    yield chain_srv[0], mod_fake
    mod_fake.reset()


def test_first_provider_answers_openai_wire(chain):
    srv, fake = chain
    fake.set_default(text="The ZMP is where the moment vanishes [1].", usage=(123, 45))
    a = ask(srv)
    check_answer_shape(a)
    assert (a["provider"], a["model"]) == ("p1", "m1"), a
    assert a["usage"] == {"prompt_tokens": 123, "completion_tokens": 45, "total_tokens": 168}
    assert a["answer"] == "The ZMP is where the moment vanishes [1]."
    calls = fake.calls()
    assert len(calls) == 1, calls
    c = calls[0]
    assert c.path == "/v1/chat/completions" and c.model == "m1"
    assert c.headers.get("authorization") == "Bearer key-one", c.headers
    assert c.headers.get("content-type", "").startswith("application/json")
    b = c.body
    assert b["stream"] is False
    assert isinstance(b["max_tokens"], int) and b["max_tokens"] > 0
    assert b["messages"][0]["role"] == "system"
    assert b["messages"][-1] == {"role": "user", "content": QUESTION}
    assert [m["role"] for m in b["messages"]] == ["system", "user"], b["messages"]
    # the system prompt carries numbered passages (default top_k 5)
    assert sorted(c.passages()) == [1, 2, 3, 4, 5], c.system[:500]
    assert any("zero moment point" in t.lower() for t in c.passages().values())


def test_failover_to_second_provider_after_retries(chain):
    srv, fake = chain
    fake.set_model("m1", status=500)
    fake.set_model("m2", text="Anthropic says [2].", usage=(50, 5))
    a = ask(srv)
    assert (a["provider"], a["model"]) == ("p2", "m2"), a
    assert a["answer"] == "Anthropic says [2]."
    assert a["usage"]["prompt_tokens"] == 50 and a["usage"]["completion_tokens"] == 5
    p1 = fake.calls(model="m1")
    assert len(p1) == 2, f"p1 should be tried BOOKD_LLM_TRIES=2 times: {p1}"
    gap = p1[1].t - p1[0].t
    assert 0.18 <= gap <= 1.0, f"backoff between the tries of p1 was {gap:.3f}s (250 ms +-25% expected)"
    p2 = fake.calls(model="m2")
    assert len(p2) == 1, p2
    c = p2[0]
    assert p2[0].t > p1[1].t
    assert c.path == "/v1/messages" and c.wire == "anthropic"
    assert c.headers.get("x-api-key") == "key-two", c.headers
    assert c.headers.get("anthropic-version"), c.headers
    assert "authorization" not in c.headers
    assert isinstance(c.body.get("system"), str) and "[1]" in c.body["system"]
    assert all(m["role"] != "system" for m in c.body["messages"]), c.body["messages"]
    assert c.body["messages"][-1] == {"role": "user", "content": QUESTION}
    assert isinstance(c.body["max_tokens"], int)


def test_failover_streamed_over_anthropic(chain):
    srv, fake = chain
    fake.set_model("m1", status=503)
    fake.set_model("m2", text="Streamed from the second provider [1].", chunks=4)
    s = stream(srv)
    assert s.names()[0] == "citations" and s.names()[-1] == "done", s.names()
    done = s.of("done")[0][1]
    assert done["provider"] == "p2", done
    assert "".join(e[1]["text"] for e in s.of("delta")) == done["answer"]
    assert done["answer"] == "Streamed from the second provider [1]."
    assert len(s.of("delta")) == 4
    assert done["usage"]["completion_tokens"] == 7, done["usage"]  # from message_delta
    assert done["usage"]["prompt_tokens"] == 11, done["usage"]     # from message_start
    c = fake.calls(model="m2")[0]
    assert c.stream and c.headers.get("accept") == "text/event-stream"


def test_every_provider_failing_gives_extractive(chain):
    srv, fake = chain
    fake.set_model("m1", status=500)
    fake.set_model("m2", status=529)
    a = ask(srv)
    assert a["provider"] == "extractive", a
    assert a["citations"], a
    assert len(fake.calls(model="m1")) == 2 and len(fake.calls(model="m2")) == 2, fake.calls()


def test_client_errors_are_not_retried(chain):
    srv, fake = chain
    fake.set_model("m1", status=401)
    a = ask(srv)
    assert a["provider"] == "p2", a
    assert len(fake.calls(model="m1")) == 1, "a 4xx answer should not be retried"


def test_malformed_answer_fails_over(chain):
    srv, fake = chain
    fake.set_model("m1", malformed=True)
    a = ask(srv)
    assert a["provider"] == "p2", a
    assert len(fake.calls(model="m1")) >= 1
    # streamed: a malformed answer before any delta also fails over
    s = stream(srv)
    done = s.of("done")
    assert done and done[0][1]["provider"] == "p2", s.events


def test_retry_after_is_honoured(server_factory, fake_llm):
    srv, _ = chat_server(server_factory, env=llm_env(fake_llm, providers="p1:m1", tries=5))
    for _ in range(4):
        fake_llm.push(model="m1", status=429, retry_after=1)
    a = ask(srv)
    assert a["provider"] == "p1", a
    calls = fake_llm.calls(model="m1")
    assert len(calls) == 5, calls
    gaps = [round(b.t - a_.t, 3) for a_, b in zip(calls, calls[1:])]
    # Retry-After: 1 means "not before one second"; each retry must wait that long
    assert all(g >= 0.99 for g in gaps), f"retried before Retry-After (1 s) elapsed: gaps {gaps}"
    assert all(g < 2.5 for g in gaps), gaps


def test_retry_after_beyond_the_deadline_fails_over_at_once(server_factory, fake_llm):
    """A provider that says "come back in 30 s" cannot answer within a 3 s
    deadline: the next provider should be asked right away, not after
    sleeping the deadline away."""
    srv, _ = chat_server(server_factory, env=llm_env(fake_llm, tries=3, BOOKD_CHAT_DEADLINE=3))
    fake_llm.set_model("m1", status=429, retry_after=30)
    t = time.monotonic()
    a = ask(srv)
    took = time.monotonic() - t
    assert a["provider"] == "p2", f"{a['provider']} after {took:.1f}s"
    assert took < 1.5, f"the answer took {took:.1f}s"


def test_circuit_breaker(server_factory, fake_llm):
    env = llm_env(fake_llm, tries=1, BOOKD_LLM_BREAKER_FAILURES=2, BOOKD_LLM_BREAKER_SECONDS=2)
    srv, _ = chat_server(server_factory, env=env)

    def ready_llm():
        r = srv.get("/health/ready")
        assert r.status_code == 200, r.text
        return r.json()["checks"]["llm"]

    assert "circuit open" not in ready_llm()
    assert "p1:m1" in ready_llm() and "p2:m2" in ready_llm(), ready_llm()
    fake_llm.set_model("m1", status=500)
    assert ask(srv)["provider"] == "p2"
    assert "circuit open" not in ready_llm(), "one failure of two opened the circuit"
    assert ask(srv)["provider"] == "p2"
    t_open = time.monotonic()
    assert len(fake_llm.calls(model="m1")) == 2
    llm = ready_llm()
    assert "p1:m1 (circuit open)" in llm and "p2:m2 (circuit open)" not in llm, llm
    # open: p1 is not asked at all
    assert ask(srv)["provider"] == "p2"
    assert ask(srv)["provider"] == "p2"
    assert len(fake_llm.calls(model="m1")) == 2, "p1 was called while its circuit was open"

    # half-open after 2 s: exactly one probe; it fails, so the circuit opens again
    time.sleep(max(0, t_open + 2.2 - time.monotonic()))
    assert "circuit open" not in ready_llm(), "still reported open after BOOKD_LLM_BREAKER_SECONDS"
    assert ask(srv)["provider"] == "p2"
    t_reopen = time.monotonic()
    assert len(fake_llm.calls(model="m1")) == 3, "the half-open probe did not reach p1"
    assert ask(srv)["provider"] == "p2"
    assert len(fake_llm.calls(model="m1")) == 3, "a failed probe did not open the circuit again"
    assert "p1:m1 (circuit open)" in ready_llm()

    # half-open again, p1 healthy but slow: of three concurrent questions only
    # one probes p1; the others go to p2; the successful probe closes the circuit
    fake_llm.set_model("m1", text="Recovered [1].", delay=1.0)
    time.sleep(max(0, t_reopen + 2.2 - time.monotonic()))
    results = []

    def one(i):
        results.append(ask(srv, f"Concurrent question {i} about the zero moment point?")["provider"])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
        time.sleep(0.05)
    for th in threads:
        th.join(15)
    assert sorted(results) == ["p1", "p2", "p2"], results
    assert len(fake_llm.calls(model="m1")) == 4, fake_llm.calls(model="m1")
    assert "circuit open" not in ready_llm()
    fake_llm.set_model("m1", text="Closed again [1].")
    assert ask(srv)["provider"] == "p1"
    assert ask(srv)["provider"] == "p1"
    assert len(fake_llm.calls(model="m1")) == 6


def test_hanging_provider_times_out(server_factory, fake_llm):
    env = llm_env(fake_llm, tries=1, BOOKD_LLM_P1_TIMEOUT=1)
    srv, _ = chat_server(server_factory, env=env)
    fake_llm.set_model("m1", hang=10)
    t = time.monotonic()
    a = ask(srv)
    took = time.monotonic() - t
    assert a["provider"] == "p2", a
    assert 0.9 <= took < 3.0 * SLOW, f"took {took:.2f}s with BOOKD_LLM_P1_TIMEOUT=1"
    c = fake_llm.calls(model="m1")[0]
    assert c.finished.wait(5)
    assert c.disconnected, "bookd did not drop the hanging provider's connection"


def test_chat_deadline_bounds_the_request(server_factory, fake_llm):
    env = llm_env(fake_llm, tries=3, BOOKD_CHAT_DEADLINE=2)
    srv, _ = chat_server(server_factory, env=env)
    fake_llm.set_default(hang=20)
    t = time.monotonic()
    a = ask(srv)
    took = time.monotonic() - t
    assert a["provider"] == "extractive", a
    assert took < 3.0 * SLOW, f"took {took:.2f}s with BOOKD_CHAT_DEADLINE=2"
    assert took >= 1.8, f"gave up after {took:.2f}s, before the deadline"
    # streamed: the same bound, and the extractive answer still arrives
    t = time.monotonic()
    s = stream(srv)
    took = time.monotonic() - t
    assert s.names()[-1] == "done" and s.of("done")[0][1]["provider"] == "extractive", s.names()
    assert took < 3.0 * SLOW, f"streamed answer took {took:.2f}s"


@pytest.mark.parametrize("providers,extra,needle", [
    ("nocolon", {}, "BOOKD_LLM_PROVIDERS"),
    ("p1:m1", {}, "BOOKD_LLM_P1_URL"),
    ("p1:m1", {"BOOKD_LLM_P1_URL": "http://127.0.0.1:9/v1", "BOOKD_LLM_P1_API": "grpc"},
     "BOOKD_LLM_P1_API"),
    ("p1:m1", {"BOOKD_LLM_P1_URL": "http://127.0.0.1:9/v1", "BOOKD_LLM_TRIES": "0"}, "BOOKD_LLM_TRIES"),
])
def test_invalid_llm_configuration_refuses_to_start(tmp_path, providers, extra, needle):
    env = clean_env()
    env.update({"BOOKD_DATA_DIR": str(tmp_path), "BOOKD_PORT": str(free_port()), "BOOKD_HOST": "127.0.0.1",
                "BOOKD_API_KEY": "k", "BOOKD_LLM_PROVIDERS": providers, **extra})
    import pgtest
    url = pgtest.database_url_for(tmp_path)
    if url:
        env["DATABASE_URL"] = url
    p = subprocess.run([BOOKD, "serve"], env=env, cwd=str(tmp_path), capture_output=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0, "bookd started with an invalid LLM configuration"
    assert needle in p.stderr.decode(errors="replace"), p.stderr
