"""The reading routes existing book sites call (api/compat_reading.c), in
their request and reply shapes: POST /api/translate, POST /api/personalize and
/api/content/personalize. With the fake model (its "upper" transformation),
a repeat is served from the cache (no second model call); without a model,
translation is 503 translation_unavailable with success false and
personalisation selects audience blocks. Caps (413), validation (422) and the
anonymous rate limit (429) keep the same shape."""
import pytest

from conftest import start_server, uniq
from fake_llm import FakeLLM


def llm_env(fake, **extra):
    env = {"BOOKD_LLM_PROVIDERS": "p1:m1", "BOOKD_LLM_P1_URL": fake.url, "BOOKD_LLM_P1_KEY": "k",
           "BOOKD_LLM_TRIES": "1", "BOOKD_LLM_BREAKER_FAILURES": "1000"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def fake():
    f = FakeLLM().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake):
    s = start_server(tmp_path_factory.mktemp("compat-reading"), env=llm_env(fake))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("compat-reading-nollm"),
                     env={"BOOKD_CHAT_ANON_PER_MINUTE": "3"})
    yield s
    s.stop()


@pytest.fixture
def llm(srv, fake):
    fake.reset()
    fake.set_default(transform="upper")
    yield srv, fake
    fake.reset()


@pytest.mark.parametrize("body_keys", [("text", "target_lang"), ("content", "target_language")])
def test_translate_shape_and_cache(llm, body_keys):
    srv, fake = llm
    text_key, lang_key = body_keys
    text = f"Robots keep their balance {uniq('w')}.\n\nUse `zmp()` here."
    r = srv.post("/api/translate", json={text_key: text, lang_key: "ur", "chapter_id": "module-1/chapter-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["translated_text"] == body["translated_content"]
    assert "ROBOTS KEEP THEIR BALANCE" in body["translated_text"], body
    assert "`zmp()`" in body["translated_text"], "inline code must survive"
    assert body["metadata"]["target_language"] == "ur"
    assert body["metadata"]["cached"] is False
    calls = len(fake.calls())
    r = srv.post("/api/translate", json={text_key: text, lang_key: "ur"})
    assert r.status_code == 200, r.text
    assert r.json()["translated_text"] == body["translated_text"]
    assert r.json()["metadata"]["cached"] is True
    assert len(fake.calls()) == calls, "a repeat must be served from the cache"


@pytest.mark.parametrize("path", ["/api/personalize", "/api/content/personalize"])
def test_personalize_shape(llm, path):
    srv, fake = llm
    content = f"Balance is hard {uniq('w')}."
    r = srv.post(path, json={"content": content, "chapter_id": "intro", "title": "Intro", "context": {}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert "BALANCE IS HARD" in body["personalized_content"], body
    assert isinstance(body["metadata"], dict)


def test_caps_and_validation(llm):
    srv, _ = llm
    r = srv.post("/api/translate", json={"text": "x" * (33 * 1024), "target_lang": "ur"})
    assert r.status_code == 413, r.text
    assert r.json()["success"] is False
    r = srv.post("/api/translate", json={"target_lang": "ur"})
    assert r.status_code == 422, r.text
    assert r.json()["success"] is False
    r = srv.post("/api/translate", json={"text": "hello", "target_lang": "not a tag!"})
    assert r.status_code == 422, r.text
    r = srv.post("/api/personalize", json={"content": ""})
    assert r.status_code == 422 and r.json()["success"] is False, r.text


def test_without_a_model(bare):
    r = bare.post("/api/translate", json={"text": "Robots balance.", "target_lang": "ur"})
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["success"] is False
    assert body["error"]["code"] == "translation_unavailable"
    content = (":::audience{level=\"beginner\"}\nStart slowly.\n:::\n\n"
               ":::audience{level=\"advanced\"}\nUse the ZMP.\n:::\n")
    r = bare.post("/api/content/personalize", json={"content": content})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["metadata"]["method"] == "audience_blocks"
    assert ":::audience" not in body["personalized_content"], body


def test_anonymous_rate_limit(bare):
    statuses = [bare.post("/api/personalize", json={"content": "x"}).status_code for _ in range(12)]
    assert 429 in statuses, statuses
