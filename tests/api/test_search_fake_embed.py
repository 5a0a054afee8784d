"""The fake embedding provider itself (tests/api/fake_embed.py): vectors are
deterministic, unit length and meaningful; the fault controls work.  The
other test_search_* modules rely on it."""
import math
import time

import requests

from fake_embed import cosine, embed_text, fake_embed_server, stems


def post(fake, body, key=None, timeout=5):
    h = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(fake.url + "/embeddings", json=body, headers=h, timeout=timeout)


def test_vectors_are_deterministic_normalised_and_meaningful():
    a = embed_text("The robot is walking on rough terrain", 64)
    assert a == embed_text("The robot is walking on rough terrain", 64)
    assert len(a) == 64 and abs(math.sqrt(sum(x * x for x in a)) - 1) < 1e-9
    assert stems("Walking walks WALKED naïve") == ["walk", "walk", "walk", "naive"]
    near = cosine(a, embed_text("robots walk over rough ground", 64))
    far = cosine(a, embed_text("Reward shaping in reinforcement learning", 64))
    assert near > far + 0.2, (near, far)
    assert len(embed_text("x", 32)) == 32
    assert embed_text("", 8) == [1.0] + [0.0] * 7


def test_openai_shape_models_and_dims():
    with fake_embed_server(dim=16, dims={"other": 8}) as fake:
        r = post(fake, {"model": "m", "input": ["a b", "c"]})
        assert r.status_code == 200
        body = r.json()
        assert body["object"] == "list" and body["model"] == "m"
        assert [d["index"] for d in body["data"]] == [0, 1]
        assert all(d["object"] == "embedding" and len(d["embedding"]) == 16 for d in body["data"])
        assert body["usage"]["prompt_tokens"] == 3
        assert len(post(fake, {"model": "other", "input": "x"}).json()["data"][0]["embedding"]) == 8
        assert len(post(fake, {"model": "m", "input": ["x"], "dimensions": 4}).json()["data"][0]["embedding"]) == 4
        assert fake.texts("m") == 3 and fake.texts("other") == 1 and fake.requests == 3
        assert post(fake, {"model": "m"}).status_code == 400
        assert requests.post(fake.url + "/nothing", json={}, timeout=5).status_code == 404


def test_fault_controls():
    with fake_embed_server(key="k1") as fake:
        assert post(fake, {"model": "m", "input": ["a"]}).status_code == 401
        assert post(fake, {"model": "m", "input": ["a"]}, key="k2").status_code == 401
        assert post(fake, {"model": "m", "input": ["a"]}, key="k1").status_code == 200
        fake.fail_next(2, 429, retry_after=1)
        r = post(fake, {"model": "m", "input": ["a"]}, key="k1")
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert post(fake, {"model": "m", "input": ["a"]}, key="k1").status_code == 429
        fake.fail_next(1, 500, retry_after=None)
        r = post(fake, {"model": "m", "input": ["a"]}, key="k1")
        assert r.status_code == 500 and "Retry-After" not in r.headers
        fake.malformed_next(1)
        r = post(fake, {"model": "m", "input": ["a"]}, key="k1")
        assert r.status_code == 200
        try:
            r.json()
            raise AssertionError("malformed answer parsed")
        except ValueError:
            pass
        fake.hang_next(1, 0.5)
        t = time.monotonic()
        assert post(fake, {"model": "m", "input": ["a"]}, key="k1").status_code == 200
        assert time.monotonic() - t >= 0.45
        assert post(fake, {"model": "m", "input": ["a"]}, key="k1").status_code == 200
        assert fake.texts("m") == 3  # only the successful ones
        fake.reset_counters()
        assert fake.requests == 0 and fake.texts() == 0
