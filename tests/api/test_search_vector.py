"""Vector and hybrid search with the fake OpenAI-compatible provider
(tests/api/fake_embed.py): default mode, cosine scores, reciprocal rank
fusion, re-embedding only changed chunks, batching and concurrency, 429 /
500 / malformed / hanging providers, API keys, model and dimension changes."""
import math
import threading
import time

import pytest

from conftest import ADMIN, start_server, uniq
from fake_embed import FakeEmbed, cosine, embed_text
from test_search_common import (RRF_MAX, chapter_chunks, chapters_of, check_hit, get_chapter, get_job,
                                hits, import_sample, reindex_api, reindex_cli, search,
                                wait_job, wait_jobs_idle, wait_search)

RRF_K = 60


def vec_env(fake, model="fake-1", **extra):
    env = {"BOOKD_EMBED_URL": fake.url, "BOOKD_EMBED_MODEL": model, "BOOKD_EMBED_DIM": "0",
           "BOOKD_JOB_BACKOFF_MS": "50"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def fake():
    f = FakeEmbed(dim=64, dims={"fake-2": 32, "huge": 9000}).start()
    yield f
    f.stop()


def index_jobs(jobs):
    return [j for j in jobs if j["type"] == "book.index"]


def input_for(fake, model, text):
    """The text the provider was given for a chunk (it contains the chunk text)."""
    cands = [t for t in fake.embedded_inputs(model) if t.endswith(text)]
    assert cands, f"the provider never embedded a text for chunk {text[:60]!r}"
    return cands[-1]


def small_book(srv, title_word="Zqvec", sections=4):
    b = srv.create_book(title=uniq("vector book"))
    words = ["gyroscope", "hydraulic", "lidar", "tendon", "servo", "encoder"][:sections]
    md = "\n".join(f"## Part {w.title()}\n\nThe {w} sentence about {w} {w} parts, number {i}.\n"
                   for i, w in enumerate(words))
    c = srv.add_chapter(b["id"], title=f"Chapter {title_word}", content_markdown=md)
    return b, c, md


# --------------------------------------------------------------------------
# one server with the sample book, shared by the first tests
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vfake():
    f = FakeEmbed(dim=64).start()
    yield f
    f.stop()


# What the fake provider had seen when the sample book's indexing ended (the
# module's other tests ask it more, in whatever order they run).
AT_INDEX = {}


@pytest.fixture(scope="module")
def vsrv(tmp_path_factory, vfake):
    srv = start_server(tmp_path_factory.mktemp("search-vec"), env=vec_env(vfake))
    book_id = import_sample(srv)
    jobs = index_jobs(wait_jobs_idle(srv))
    AT_INDEX["texts"] = vfake.texts("fake-1")
    AT_INDEX["requests"] = vfake.snapshot()
    yield srv, book_id, jobs
    rc = srv.stop()
    assert rc == 0, f"server exited with {rc}:\n{srv.log_tail()}"


def test_sample_embedded_and_hybrid_by_default(vsrv, vfake):
    srv, book_id, jobs = vsrv
    assert len(jobs) == 1 and jobs[0]["status"] == "completed", jobs
    res = jobs[0]["result"]
    assert res["chunks"] > 10 and res["added"] == res["chunks"] and res["embedded"] == res["chunks"], res
    # every chunk text went to the provider (the first one twice: the dimension probe)
    assert AT_INDEX["texts"] == res["chunks"] + 1
    assert all(r["dimensions"] is None for r in AT_INDEX["requests"]), "BOOKD_EMBED_DIM=0 must not ask for dimensions"
    body = search(srv, q="zero moment point")
    assert body["mode"] == "hybrid", body
    assert body["results"]


def test_vector_scores_are_exact_cosines(vsrv, vfake):
    srv, book_id, _ = vsrv
    wait_search(srv, lambda r: len(r) > 0, q="robot", mode="vector")
    q = "how do humanoid robots keep their balance while walking"
    body = search(srv, q=q, mode="vector", limit=10, book_id=book_id)
    assert body["mode"] == "vector"
    res = body["results"]
    assert len(res) == 10
    qv = embed_text(q, 64)
    cache = {}
    for h in res:
        check_hit(srv, h, cache)
        assert -1.0 <= h["score"] <= 1.0, h["score"]
        want = cosine(qv, embed_text(input_for(vfake, "fake-1", h["text"]), 64))
        assert abs(h["score"] - want) < 1e-4, (h["score"], want)
    scores = [h["score"] for h in res]
    assert scores == sorted(scores, reverse=True)
    # exact search: the ten best cosines over all the book's chunks, in order
    chunk_texts = [h["text"] for ch in chapters_of(srv, book_id) for h in chapter_chunks(srv, ch)]
    best = sorted((cosine(qv, embed_text(input_for(vfake, "fake-1", t), 64)) for t in chunk_texts),
                  reverse=True)[:10]
    assert all(abs(a - b) < 1e-4 for a, b in zip(scores, best)), (scores, best)
    # filters apply to vectors too
    ch_id = res[0]["chapter_id"]
    byc = hits(srv, q=q, mode="vector", chapter_id=ch_id, limit=50)
    assert byc and all(h["chapter_id"] == ch_id for h in byc)
    assert hits(srv, q=q, mode="vector", book_id="01900000-0000-7000-8000-000000000000") == []


def test_hybrid_is_reciprocal_rank_fusion(vsrv):
    srv, book_id, _ = vsrv
    for q, limit in [("zero moment point", 10), ("reward shaping for walking policies", 5),
                     ("sensors", 3)]:
        depth = limit * 3
        kw = hits(srv, q=q, mode="keyword", limit=depth)
        vec = hits(srv, q=q, mode="vector", limit=depth)
        fused = {}
        for lst in (kw, vec):
            for i, h in enumerate(lst):
                fused[h["chunk_id"]] = fused.get(h["chunk_id"], 0.0) + 1.0 / (RRF_K + i + 1)
        want = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        body = search(srv, q=q, mode="hybrid", limit=limit)
        got = body["results"]
        assert body["mode"] == "hybrid"
        assert [h["chunk_id"] for h in got] == [k for k, _ in want], q
        for h, (_, s) in zip(got, want):
            assert 0 < h["score"] <= RRF_MAX + 1e-12
            assert abs(h["score"] - s) < 1e-9, (h["score"], s)


def test_only_changed_chunks_are_reembedded(vsrv, vfake):
    srv, _, _ = vsrv
    b, c, md = small_book(srv, "Zqreemb")
    wait_jobs_idle(srv)
    before = {h["chunk_id"]: h for h in chapter_chunks(srv, get_chapter(srv, b["id"], c["id"]))}
    assert len(before) == 4
    n0 = vfake.texts("fake-1")
    # change one section's text and make it longer: later sections move
    new_md = md.replace("The hydraulic sentence", "The rewritten, rather longer hydraulic sentence")
    r = srv.put(f"/api/v1/books/{b['id']}/chapters/{c['id']}",
                json={"title": c["title"], "content_markdown": new_md}, headers=ADMIN)
    assert r.status_code == 200
    jobs = index_jobs(wait_jobs_idle(srv))
    job = [j for j in jobs if j["status"] == "completed"][0]  # newest first
    assert job["result"]["embedded"] == 1 and job["result"]["added"] == 1, job["result"]
    assert vfake.texts("fake-1") - n0 == 1, "unchanged or moved chunks were embedded again"
    assert "rewritten, rather longer hydraulic" in vfake.embedded_inputs("fake-1")[-1]
    after = chapter_chunks(srv, get_chapter(srv, b["id"], c["id"]))
    assert len(set(h["chunk_id"] for h in after) & set(before)) == 3
    # the new chunk is found by vector search, the old one is gone
    wait_search(srv, lambda r: r and "rewritten" in r[0]["text"], q="rewritten longer hydraulic",
                      mode="vector", book_id=b["id"])
    assert all("The hydraulic sentence" not in h["text"] for h in
               wait_search(srv, lambda r: len(r) == 4, q="hydraulic sentence", mode="vector",
                           book_id=b["id"], limit=10))


def test_deleted_chapter_vanishes_from_vector_search(vsrv):
    srv, _, _ = vsrv
    b, c, _ = small_book(srv, "Zqdelvec")
    wait_jobs_idle(srv)
    wait_search(srv, lambda r: len(r) == 4, q="gyroscope servo", mode="vector", book_id=b["id"])
    r = srv.delete(f"/api/v1/books/{b['id']}/chapters/{c['id']}", headers=ADMIN)
    assert r.status_code == 204
    assert hits(srv, q="gyroscope servo", mode="vector", book_id=b["id"]) == []
    assert hits(srv, q="gyroscope servo", mode="hybrid", book_id=b["id"]) == []


# --------------------------------------------------------------------------
# fresh servers for batching and faults
# --------------------------------------------------------------------------

def test_batching_and_concurrency(server_factory, fake):
    fake.hang_all(0.05)  # let requests overlap so concurrency shows
    srv = server_factory(env=vec_env(fake, BOOKD_EMBED_BATCH=8, BOOKD_EMBED_CONCURRENCY=2))
    import_sample(srv)
    job = index_jobs(wait_jobs_idle(srv))[0]
    assert job["status"] == "completed", job
    n = job["result"]["chunks"]
    assert job["result"]["embedded"] == n
    log = [r for r in fake.snapshot() if r["status"] == 200]
    assert len(log) == 1 + math.ceil(n / 8), f"{len(log)} requests for {n} chunks in batches of 8"
    assert len(log[0]["inputs"]) == 1, "the first request should be the one-text dimension probe"
    assert all(1 <= len(r["inputs"]) <= 8 for r in log)
    assert sum(len(r["inputs"]) for r in log) == n + 1
    assert fake.max_inflight == 2, f"BOOKD_EMBED_CONCURRENCY=2 but {fake.max_inflight} requests at once"


def test_429_with_retry_after_is_honoured(server_factory, fake):
    fake.fail_next(2, 429, retry_after=1)
    srv = server_factory(env=vec_env(fake))
    import_sample(srv)
    job = index_jobs(wait_jobs_idle(srv, timeout=20))[0]
    assert job["status"] == "completed" and job["attempts"] == 1, job
    n = job["result"]["chunks"]
    assert job["result"]["embedded"] == n
    log = fake.snapshot()
    assert [r["status"] for r in log[:3]] == [429, 429, 200], [r["status"] for r in log[:3]]
    for a, b in zip(log, log[1:3]):
        assert b["t"] - a["t"] >= 0.7, f"retried after {b['t'] - a['t']:.2f}s despite Retry-After: 1"
    # every chunk has its vector: a reindex has nothing left to embed
    out = reindex_cli(srv)
    assert out["embedded"] == 0 and out["added"] == 0, out


def test_malformed_answer_is_retried(server_factory, fake):
    fake.malformed_next(1)
    srv = server_factory(env=vec_env(fake))
    b, c, _ = small_book(srv)
    job = index_jobs(wait_jobs_idle(srv))[0]
    assert job["status"] == "completed" and job["result"]["embedded"] == 4, job


def test_500s_fail_the_job_and_reindex_resumes(server_factory, fake):
    srv = server_factory(env=vec_env(fake))
    # four 500s: the provider call gives up (3 retries), the job retries and succeeds
    fake.fail_next(4, 500, retry_after=None)
    b, c, md = small_book(srv, "Zqfail")
    job = index_jobs(wait_jobs_idle(srv, timeout=20))[0]
    assert job["status"] == "completed" and job["attempts"] == 2, job
    assert job["result"]["embedded"] == 4, job
    # 500s for good: the job fails after its attempts; keyword search still finds the edit
    fake.fail_next(1000, 500, retry_after=None)
    new_md = md.replace("The lidar sentence", "The replaced lidar sentence")
    r = srv.put(f"/api/v1/books/{b['id']}/chapters/{c['id']}",
                json={"title": c["title"], "content_markdown": new_md}, headers=ADMIN)
    assert r.status_code == 200
    jobs = index_jobs(wait_jobs_idle(srv, timeout=30))
    failed = [j for j in jobs if j["status"] == "failed"]
    assert len(failed) == 1, jobs
    assert failed[0]["attempts"] == failed[0]["max_attempts"], failed[0]
    assert "500" in (failed[0]["error"] or ""), failed[0]
    assert hits(srv, q="replaced lidar", mode="keyword", book_id=b["id"])
    # provider back: a reindex embeds only the missing chunk
    fake.clear_faults()
    n0 = fake.texts("fake-1")
    jid = reindex_api(srv, b["id"])
    j = wait_job(srv, jid)
    assert j["status"] == "completed" and j["result"]["embedded"] == 1, j
    assert fake.texts("fake-1") - n0 == 1
    res = wait_search(srv, lambda r: r and "replaced lidar" in r[0]["text"], q="replaced lidar sentence",
                      mode="vector", book_id=b["id"])
    assert res[0]["score"] > 0.5


def test_hanging_provider_degrades_to_keywords(server_factory, fake):
    srv = server_factory(env=vec_env(fake, BOOKD_EMBED_TIMEOUT=1))
    b, c, _ = small_book(srv, "Zqhang")
    wait_jobs_idle(srv)
    wait_search(srv, lambda r: len(r) > 0, q="tendon", mode="vector", book_id=b["id"])
    fake.hang_all(30)
    box = {}

    def hybrid():
        t = time.monotonic()
        r = srv.get("/api/v1/search", params={"q": "tendon parts", "book_id": b["id"]}, timeout=60)
        box["hybrid"] = (r, time.monotonic() - t)

    th = threading.Thread(target=hybrid)
    th.start()
    time.sleep(0.2)
    # meanwhile keyword search is not held up
    t = time.monotonic()
    assert hits(srv, q="tendon", mode="keyword", book_id=b["id"])
    assert time.monotonic() - t < 0.5
    t = time.monotonic()
    r = srv.get("/api/v1/search", params={"q": "tendon", "mode": "vector"}, timeout=60)
    vec_s = time.monotonic() - t
    th.join(60)
    r_h, hyb_s = box["hybrid"]
    assert r_h.status_code == 200, r_h.text
    body = r_h.json()
    assert body["mode"] == "hybrid" and body["results"], body
    assert "tendon" in body["results"][0]["text"]
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"
    # a 1 s provider timeout should bound a query's wait to about a second or two
    assert hyb_s < 3.0 and vec_s < 3.0, (
        f"with BOOKD_EMBED_TIMEOUT=1 a hybrid search took {hyb_s:.1f}s and a vector search "
        f"{vec_s:.1f}s to give up on the provider")


def test_api_key_is_sent_and_a_wrong_key_fails_the_job(server_factory, fake):
    fake.key = "sekrit-embed-key"
    srv = server_factory(env=vec_env(fake, BOOKD_EMBED_KEY="sekrit-embed-key"))
    small_book(srv)
    job = index_jobs(wait_jobs_idle(srv))[0]
    assert job["status"] == "completed", job
    assert all(r["auth"] == "Bearer sekrit-embed-key" for r in fake.snapshot())
    srv.stop()
    srv2 = server_factory(data_dir=srv.data_dir, env=vec_env(fake, BOOKD_EMBED_KEY="wrong-key-123"))
    small_book(srv2)
    jobs = index_jobs(wait_jobs_idle(srv2))
    bad = [j for j in jobs if j["status"] != "completed"]
    assert len(bad) == 1 and bad[0]["status"] == "failed", jobs
    assert bad[0]["attempts"] == 1, "a 401 is not transient: no retries"
    assert "401" in bad[0]["error"], bad[0]
    assert "wrong-key-123" not in srv2.log_text() and "wrong-key-123" not in bad[0]["error"]


def test_model_change_reembeds_and_search_keeps_working(server_factory, fake):
    s1 = server_factory(env=vec_env(fake, model="fake-1"))
    b, c, _ = small_book(s1, "Zqmodel")
    b2, c2, _ = small_book(s1, "Zqmodeltwo")
    wait_jobs_idle(s1)
    wait_search(s1, lambda r: len(r) == 4, q="servo encoder", mode="vector", book_id=b["id"])
    assert s1.stop() == 0
    # another model, of another dimension
    s2 = server_factory(data_dir=s1.data_dir, env=vec_env(fake, model="fake-2"))
    body = search(s2, q="servo parts", book_id=b["id"])
    assert body["mode"] == "hybrid" and body["results"], "hybrid must still answer from keywords"
    n0 = fake.texts("fake-2")
    jid = reindex_api(s2, b["id"])
    while get_job(s2, jid)["status"] not in ("completed", "failed", "cancelled"):
        r = s2.get("/api/v1/search", params={"q": "servo parts", "book_id": b["id"]})
        assert r.status_code == 200 and r.json()["results"], r.text
    j = wait_job(s2, jid)
    assert j["status"] == "completed" and j["result"]["embedded"] == 4, j
    assert fake.texts("fake-2") - n0 >= 4
    res = wait_search(s2, lambda r: len(r) == 4, q="servo parts", mode="vector", book_id=b["id"])
    qv = embed_text("servo parts", 32)
    for h in res:
        want = cosine(qv, embed_text(input_for(fake, "fake-2", h["text"]), 32))
        assert abs(h["score"] - want) < 1e-4, (h["score"], want)
    # the other book has no fake-2 vectors yet: vector search finds nothing there, hybrid still does
    assert hits(s2, q="servo parts", mode="vector", book_id=b2["id"]) == []
    assert hits(s2, q="servo parts", book_id=b2["id"])
    assert s2.stop() == 0
    # back to the first model: its vectors are still there, nothing to embed
    s3 = server_factory(data_dir=s1.data_dir, env=vec_env(fake, model="fake-1"))
    wait_search(s3, lambda r: len(r) == 4, q="servo encoder", mode="vector", book_id=b["id"])
    jid = reindex_api(s3, b["id"])
    j = wait_job(s3, jid)
    assert j["status"] == "completed" and j["result"]["embedded"] == 0, j


def test_dimension_change_of_the_same_model_reembeds(server_factory, fake):
    """BOOKD_EMBED_DIM changed (same model name): the stored 64-dimension
    vectors cannot be compared with 32-dimension queries, so a reindex must
    embed again and vector search must work afterwards."""
    s1 = server_factory(env=vec_env(fake))
    b, c, _ = small_book(s1, "Zqdim")
    wait_jobs_idle(s1)
    wait_search(s1, lambda r: len(r) == 4, q="lidar tendon", mode="vector", book_id=b["id"])
    assert s1.stop() == 0
    s2 = server_factory(data_dir=s1.data_dir, env=vec_env(fake, BOOKD_EMBED_DIM=32))
    jid = reindex_api(s2, b["id"])
    j = wait_job(s2, jid)
    assert j["status"] == "completed", j
    res = hits(s2, q="lidar tendon", mode="vector", book_id=b["id"])
    assert any(r["dimensions"] == 32 for r in fake.snapshot()), "BOOKD_EMBED_DIM not sent as dimensions"
    assert j["result"]["embedded"] == 4, (
        f"the 64-dimension vectors were kept after BOOKD_EMBED_DIM=32: {j['result']}; "
        f"vector search now gives {len(res)} results")
    res = wait_search(s2, lambda r: len(r) == 4, q="lidar tendon", mode="vector", book_id=b["id"],
                      timeout=5, what="vector results after the dimension change and a reindex")
    assert all(-1 <= h["score"] <= 1 for h in res)


def test_oversized_embedding_dimension_is_refused_cleanly(server_factory, fake):
    """A provider answering with more dimensions than bookd supports (8192)
    must fail the job with a clear error, not write past a buffer."""
    srv = server_factory(env=vec_env(fake, model="huge"))
    small_book(srv, "Zqhuge", sections=1)
    job = index_jobs(wait_jobs_idle(srv))[0]
    assert job["status"] == "failed", job
    assert "dimension" in (job["error"] or ""), job
    srv.assert_alive()
    r = srv.get("/api/v1/search", params={"q": "gyroscope", "mode": "vector"})
    assert r.status_code in (422, 503), r.text
    assert hits(srv, q="gyroscope", mode="keyword")
    srv.assert_alive()


def test_answer_order_follows_index_field(server_factory, fake):
    """Providers may answer items in any order; "index" says which is which."""
    fake.shuffle = True
    srv = server_factory(env=vec_env(fake, BOOKD_EMBED_BATCH=3))
    b, c, _ = small_book(srv, "Zqshuf", sections=6)
    job = index_jobs(wait_jobs_idle(srv))[0]
    assert job["status"] == "completed" and job["result"]["embedded"] == 6, job
    for q in ("gyroscope", "servo parts"):
        res = wait_search(srv, lambda r: len(r) == 6, q=q, mode="vector", book_id=b["id"])
        qv = embed_text(q, 64)
        for h in res:
            want = cosine(qv, embed_text(input_for(fake, "fake-1", h["text"]), 64))
            assert abs(h["score"] - want) < 1e-4, f"vector stored for the wrong chunk: {h['score']} vs {want}"
        assert q.split()[0] in res[0]["text"]


def test_upload_import_indexes_and_embeds_in_its_own_job(server_factory, fake):
    """POST /api/v1/books/import with a provider: the book.import job's own
    index step chunks and embeds (and the server survives it)."""
    srv = server_factory(env=vec_env(fake))
    md = "# Pneumatics\n\nZqupload pneumatic muscles contract when inflated.\n\n# Hydraulics\n\nZqupload hydraulic pistons push hard.\n"
    r = srv.post("/api/v1/books/import", params={"filename": "up.md", "title": uniq("upload book")},
                 data=md.encode(), headers={**ADMIN, "Content-Type": "text/markdown"})
    assert r.status_code == 202, r.text
    j = wait_job(srv, r.json()["job_id"])
    assert j["status"] == "completed", j
    book_id = j["result"]["book_id"]
    # searchable as soon as the import job is done: its own index step chunked and embedded
    res = hits(srv, q="zqupload pneumatic", mode="keyword", book_id=book_id)
    assert len(res) == 2 and "pneumatic" in res[0]["text"]
    assert fake.texts("fake-1") >= 2
    res = wait_search(srv, lambda r: len(r) == 2, q="pneumatic muscles", mode="vector", book_id=book_id, timeout=3)
    assert "pneumatic" in res[0]["text"]
