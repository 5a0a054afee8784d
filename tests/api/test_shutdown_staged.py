"""The staged shutdown of the runtime (src/app.c): SIGTERM while a chat waits
on a hung model, while a streamed answer is mid-way, while another stream
waits on a hung model and while a job step outlives the timeout. bookd exits
0 (no abort, no sanitizer report), every client gets its finished answer or
a clean error, the job's lease is handed back and another process finishes
it. Also: a job killed (-9) during an import's index step still reports the
book it imported once it is resumed."""
import signal
import threading
import time

import requests

from conftest import ADMIN, SLOW, start_server
from fake_embed import fake_embed_server
from fake_llm import FakeLLM
from test_chat_common import QUERY, QUESTION, SSE, chat_server, llm_env
from test_jobs_common import get_job, jobs_env, submit_ok, wait_job

TIMEOUT_S = 3


def _post_json(srv, out):
    try:
        r = requests.post(srv.url(QUERY), json={"question": QUESTION}, headers=ADMIN, timeout=60 * SLOW)
        out["status"] = r.status_code
        out["body"] = r.json()
    except Exception as ex:  # recorded and asserted on below
        out["exc"] = repr(ex)


def _stream(srv, out):
    try:
        s = SSE(srv, {"question": QUESTION}, timeout=60)
        out["status"] = s.resp.status_code
        s.read_all()
        out["events"] = s.events
    except Exception as ex:
        out["exc"] = repr(ex)


def test_sigterm_with_hung_model_streams_and_a_job_past_the_timeout(tmp_path):
    fake = FakeLLM().start()
    try:
        env = llm_env(fake, providers="p1:m1", tries=1, BOOKD_LLM_BREAKER_FAILURES=1000)
        env.update(jobs_env(BOOKD_SHUTDOWN_TIMEOUT=TIMEOUT_S, BOOKD_CHAT_DEADLINE=120))
        data = tmp_path / "data"
        srv, _book = chat_server(data, env=env)
        fake.reset()
        fake.set_default(hang=120)  # every call not scripted below hangs

        # a job whose step ignores job_should_stop: only cancellation ends it
        record = tmp_path / "hang-record"
        jid = submit_ok(srv, "test.hang", {"record": str(record)})
        wait_job(srv, jid, lambda j: j["status"] == "processing" and record.exists(),
                 what="its hanging step")

        # a streamed answer that takes ~2 s: it finishes within the timeout
        finishing, hung_json, hung_stream = {}, {}, {}
        fake.push(chunks=8, delay=0.25, text="The ZMP is where the net moment vanishes [1].")
        threads = [threading.Thread(target=_stream, args=(srv, finishing))]
        threads[0].start()
        assert len(fake.wait_calls(1, timeout=10 * SLOW)) >= 1
        # a plain question and a streamed one, both on a model that hangs
        threads.append(threading.Thread(target=_post_json, args=(srv, hung_json)))
        threads[-1].start()
        assert len(fake.wait_calls(2, timeout=10 * SLOW)) >= 2
        threads.append(threading.Thread(target=_stream, args=(srv, hung_stream)))
        threads[-1].start()
        assert len(fake.wait_calls(3, timeout=10 * SLOW)) >= 3

        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=30 * SLOW)
            assert not t.is_alive(), "a client was left waiting after shutdown"
        rc = srv.stop(timeout=30)
        took = time.monotonic() - t0
        assert rc == 0, f"exit code {rc}\n{srv.log_tail()}"
        assert "suspended connections" not in srv.log_text()
        assert took < (TIMEOUT_S + 10) * SLOW, f"shutdown took {took:.1f} s"

        # the answer that could finish did, with its `done` event
        assert "exc" not in finishing, finishing
        names = [e[0] for e in finishing["events"]]
        assert names[-1] == "done", names
        assert finishing["events"][-1][1]["answer"].startswith("The ZMP"), finishing["events"][-1]

        # the hung ones got a clean error, not a cut connection
        assert "exc" not in hung_json, hung_json
        assert hung_json["status"] == 503, hung_json
        assert hung_json["body"]["error"]["code"] == "unavailable", hung_json
        assert "shutting down" in hung_json["body"]["error"]["message"], hung_json
        assert "exc" not in hung_stream, hung_stream
        last = hung_stream["events"][-1]
        assert last[0] == "error", hung_stream["events"]
        assert last[1]["error"]["code"] == "unavailable", last

        # the job was handed back, and another process finishes it
        srv2 = start_server(data, env=env)
        try:
            j = wait_job(srv2, jid, timeout=20)
            assert j["status"] == "completed", j
            assert j["result"] == {"resumed_by": "another run"}, j
        finally:
            assert srv2.stop() == 0, srv2.log_tail()
    finally:
        fake.stop()


def test_import_killed_during_index_resumes_with_its_result(tmp_path):
    """The import step's result (the book id) is kept with the checkpoint: a
    job resumed after kill -9 in a later step still reports it."""
    with fake_embed_server(dim=32) as emb:
        env = jobs_env(BOOKD_EMBED_URL=emb.url, BOOKD_EMBED_MODEL="fake-1", BOOKD_EMBED_TIMEOUT=60,
                       BOOKD_JOB_LEASE=1)
        data = tmp_path / "data"
        srv = start_server(data, env=env)
        emb.hang_all(60)
        md = "# One\n\nFirst chapter text about balance.\n\n# Two\n\nSecond chapter about walking.\n"
        r = srv.post("/api/v1/books/import", files={"file": ("book.md", md.encode(), "text/markdown")},
                     data={"title": "Killed mid-index"}, headers=ADMIN)
        assert r.status_code == 202, r.text
        jid = r.json()["job_id"]
        wait_job(srv, jid, lambda j: j["step"] == "index" and j["status"] == "processing",
                 what="the index step")
        srv.proc.kill()
        srv.proc.wait()
        emb.hang_all(0)
        srv2 = start_server(data, env=env)
        try:
            j = wait_job(srv2, jid, timeout=30)
            assert j["status"] == "completed", j
            assert j["result"] and j["result"].get("title") == "Killed mid-index", j
            book = srv2.get(f"/api/v1/books/{j['result']['book_id']}")
            assert book.status_code == 200, book.text
        finally:
            assert srv2.stop() == 0, srv2.log_tail()


def test_a_step_finishes_during_the_drain(tmp_path):
    """SIGTERM does not cut a running step: it goes on until it ends or the
    drain's deadline passes; the job is then handed back at the step's end,
    the finished step kept and the attempt not counted."""
    data = tmp_path / "data"
    srv = start_server(data, env=jobs_env(BOOKD_SHUTDOWN_TIMEOUT=10))
    jid = submit_ok(srv, "test.steps", {"steps": 1, "sleep_ms": 1500})
    wait_job(srv, jid, lambda j: j["status"] == "processing", what="its step")
    t0 = time.monotonic()
    assert srv.stop() == 0, srv.log_tail()
    assert time.monotonic() - t0 < 8 * SLOW
    srv2 = start_server(data, env=jobs_env(BOOKD_WORKERS=0))
    try:
        j = get_job(srv2, jid)
        assert j["steps_done"] == 1 and j["status"] == "pending" and j["attempts"] == 0, j
    finally:
        assert srv2.stop() == 0
