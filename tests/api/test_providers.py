"""The provider layer and the config table: language-model settings read from
.env like every other setting, values too long refused, what counts against
a provider's circuit breaker, Retry-After as an HTTP-date, the response cap,
embedding answers checked before use, and a JWKS refetch that never holds up
tokens signed with keys already known."""
import concurrent.futures
import email.utils
import subprocess
import time

import pytest

from conftest import BOOKD, SLOW, bearer, clean_env, free_port, start_server, users_env
from fake_embed import FakeEmbed
from test_chat_common import ask, chat_server, fake_llm, import_indexed, llm_env  # noqa: F401 (fixture)
from test_search_common import hits, wait_jobs_idle
from test_users_jwks import AUDIENCE, ISSUER, IdP, claims, gen, token


def run_serve(tmp_path, env, timeout=20):
    e = clean_env()
    e.update({"BOOKD_DATA_DIR": str(tmp_path / "data"), "BOOKD_PORT": str(free_port()),
              "BOOKD_HOST": "127.0.0.1", "BOOKD_API_KEY": "k"})
    e.update(env)
    return subprocess.run([BOOKD, "serve"], env=e, cwd=str(tmp_path), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# the config table
# --------------------------------------------------------------------------

def test_llm_chain_from_dotenv(tmp_path, fake_llm):
    """BOOKD_LLM_PROVIDERS and the per-provider rows in .env are honoured,
    like BOOKD_PORT beside them."""
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    (data / ".env").write_text(
        f"BOOKD_PORT={port}\n"
        "BOOKD_LLM_PROVIDERS=p1:m1\n"
        f"BOOKD_LLM_P1_URL={fake_llm.url}\n"
        "BOOKD_LLM_P1_KEY='key-from-dotenv'\n")
    srv = start_server(data, set_port=False, port=port)
    try:
        import_indexed(srv)
        a = ask(srv)
        assert a["provider"] == "p1" and a["model"] == "m1", a
        calls = fake_llm.calls(model="m1", kind="answer")
        assert calls and calls[0].headers.get("authorization") == "Bearer key-from-dotenv"
        out = subprocess.run([BOOKD, "config"], env=srv.env, cwd=str(data), capture_output=True, timeout=20)
        text = out.stdout.decode()
        assert "BOOKD_LLM_P1_URL=" + fake_llm.url in text, text
        assert "BOOKD_LLM_P1_KEY=********" in text and "key-from-dotenv" not in text, text
    finally:
        assert srv.stop() == 0


def test_help_lists_the_patterned_llm_rows(tmp_path):
    p = subprocess.run([BOOKD, "--help"], env=clean_env(), cwd=str(tmp_path), capture_output=True, timeout=20)
    text = p.stdout.decode() + p.stderr.decode()
    for name in ("BOOKD_LLM_PROVIDERS", "BOOKD_LLM_TRIES", "BOOKD_LLM_<NAME>_URL", "BOOKD_LLM_<NAME>_KEY",
                 "BOOKD_LLM_<NAME>_API", "BOOKD_LLM_<NAME>_TIMEOUT"):
        assert name in text, name


def test_too_long_value_is_refused_naming_it(tmp_path):
    secret = "s" * 300
    p = run_serve(tmp_path, {"BOOKD_JWT_SECRET": secret})
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, "bookd started with a 300-byte BOOKD_JWT_SECRET (it would be cut)"
    assert "BOOKD_JWT_SECRET" in err and "255" in err, err
    assert secret not in err, "the secret was shown"


def test_dotenv_line_too_long_is_refused(tmp_path):
    long_value = "x" * 70000
    (tmp_path / ".env").write_text(f"BOOKD_CORS_ORIGINS={long_value}BOOKD_PORT=1\n")
    p = run_serve(tmp_path, {})
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, "a .env line longer than the line buffer was read in pieces"
    assert ".env line 1" in err, err


def test_every_bad_llm_value_named_at_once(tmp_path):
    p = run_serve(tmp_path, {"BOOKD_LLM_PROVIDERS": "p1:m1,p2:m2", "BOOKD_LLM_P1_API": "grpc",
                             "BOOKD_LLM_P2_URL": "http://127.0.0.1:9/v1", "BOOKD_LLM_P2_TIMEOUT": "soon",
                             "BOOKD_PORT": "0"})
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0
    for name in ("BOOKD_LLM_P1_URL", "BOOKD_LLM_P1_API", "BOOKD_LLM_P2_TIMEOUT", "BOOKD_PORT"):
        assert name in err, (name, err)


def test_unknown_name_in_dotenv_is_warned_about(tmp_path, fake_llm):
    data = tmp_path / "data"
    data.mkdir()
    (data / ".env").write_text("BOOKD_CHAT_TOP_KK=3\nBOOKD_LLM_P9_URL=http://127.0.0.1:9/v1\n")
    srv = start_server(data)
    try:
        log = srv.log_text()
        assert "BOOKD_CHAT_TOP_KK" in log and "BOOKD_CHAT_TOP_K" in log, log
        assert "BOOKD_LLM_P9_URL" in log, log
    finally:
        assert srv.stop() == 0


# --------------------------------------------------------------------------
# the provider HTTP client, seen through the language-model chain
# --------------------------------------------------------------------------

def test_refused_request_does_not_open_the_circuit(server_factory, fake_llm):
    """A 4xx answer is about our request, not the provider's health: with a
    breaker that opens after one failure, the next question still reaches it."""
    env = llm_env(fake_llm, providers="p1:m1", tries=1, BOOKD_LLM_BREAKER_FAILURES=1,
                  BOOKD_LLM_BREAKER_SECONDS=60)
    srv, _ = chat_server(server_factory, env=env)
    fake_llm.push(model="m1", status=400)
    a = ask(srv)
    assert a["provider"] == "extractive", a
    a = ask(srv)
    assert a["provider"] == "p1", f"the provider was skipped after a 400: {a['provider']}"
    assert len(fake_llm.calls(model="m1", kind="answer")) == 2


def test_retry_after_as_http_date(server_factory, fake_llm):
    srv, _ = chat_server(server_factory, env=llm_env(fake_llm, providers="p1:m1", tries=3))
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    fake_llm.push(model="m1", status=429, retry_after=when)
    a = ask(srv)
    assert a["provider"] == "p1", a
    calls = fake_llm.calls(model="m1", kind="answer")
    assert len(calls) == 2, calls
    gap = calls[1].t - calls[0].t
    assert gap >= 1.5, f"retried after {gap:.2f}s despite Retry-After: {when}"


def test_oversized_answer_is_a_clear_error(server_factory, fake_llm):
    srv, _ = chat_server(server_factory, env=llm_env(fake_llm, providers="p1:m1", tries=1))
    fake_llm.push(model="m1", text="word " * (1 << 20))  # 5 MiB, over the 4 MiB cap
    a = ask(srv)
    assert a["provider"] == "extractive", a
    log = srv.log_text()
    assert "larger than 4194304 bytes" in log, srv.log_tail()


# --------------------------------------------------------------------------
# embeddings
# --------------------------------------------------------------------------

@pytest.fixture
def efake():
    f = FakeEmbed(dim=32).start()
    yield f
    f.stop()


def vec_env(fake):
    return {"BOOKD_EMBED_URL": fake.url, "BOOKD_EMBED_MODEL": "fake-1", "BOOKD_EMBED_BATCH": "64"}


@pytest.mark.parametrize("kind", ["dup", "range"])
def test_embedding_index_is_checked_and_retried(server_factory, efake, kind):
    efake.bad_index_next(1, kind)
    srv = server_factory(env=vec_env(efake))
    import_indexed(srv)
    jobs = [j for j in wait_jobs_idle(srv, timeout=20) if j["type"] == "book.index"]
    assert jobs and all(j["status"] == "completed" for j in jobs), jobs
    log = efake.snapshot()
    bad = [i for i, r in enumerate(log) if r.get("bad_index")]
    assert len(bad) == 1, log
    i = bad[0]
    again = [r for r in log[i + 1:] if r["inputs"] == log[i]["inputs"] and r["status"] == 200]
    assert again, "an answer with bad `index` values was used instead of retried"
    assert hits(srv, q="zero moment point", mode="vector")


# --------------------------------------------------------------------------
# JWKS
# --------------------------------------------------------------------------

def test_jwks_refetch_does_not_block_known_keys(tmp_path):
    known, unknown = gen("ed", "known-1"), gen("ed", "not-served-1")
    idp = IdP([known])
    srv = start_server(tmp_path / "data", env=users_env(BOOKD_JWKS_URL=idp.url, BOOKD_JWT_ISSUER=ISSUER,
                                                        BOOKD_JWT_AUDIENCE=AUDIENCE))
    try:
        good = token(known, claims())
        assert srv.get("/api/v1/auth/me", headers=bearer(good)).status_code == 200
        time.sleep(10.5)  # past the refetch interval: an unknown kid fetches again
        idp.hang = 4.0
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            slow = pool.submit(srv.get, "/api/v1/auth/me", headers=bearer(token(unknown, claims())))
            deadline = time.monotonic() + 3
            while idp.hit_count() < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert idp.hit_count() == 2, "the unknown kid did not trigger a refetch"
            t = time.monotonic()
            r = srv.get("/api/v1/auth/me", headers=bearer(good))
            took = time.monotonic() - t
            assert r.status_code == 200, r.text
            assert took < 1.5 * SLOW, f"a known key waited {took:.2f}s on the JWKS refetch"
            assert slow.result().status_code == 401
    finally:
        idp.close()
        assert srv.stop() == 0
