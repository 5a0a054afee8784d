"""The reading routes existing book sites call (api/compat_reading.c), in
their request and reply shapes: POST /api/translate, POST /api/personalize and
/api/content/personalize. With the fake model (its "upper" transformation),
a repeat is served from the cache (no second model call); without a model,
translation is 503 translation_unavailable with success false and
personalisation selects audience blocks. Caps (413), validation (422) and the
rate limits (429, anonymous and per caller) keep the same shape. Text that is
a known chapter's (chapter_id) is served from the section cache the chapter
routes share: provider calls are counted both ways."""
import pytest

from conftest import ADMIN, make_user, start_server, uniq, users_env
from fake_llm import FakeLLM

CHAPTER = """Intro paragraph UNIQ with `inline code`.

## Setup

Install the **robot** driver UNIQ:

```bash
sudo apt install ros-humble-desktop
```

## Running {#run-it}

Run the ROS node UNIQ.

## Next steps

Read more about ROS UNIQ.
"""
SECTIONS = 4


def llm_env(fake, **extra):
    env = {**users_env(), "BOOKD_LLM_PROVIDERS": "p1:m1", "BOOKD_LLM_P1_URL": fake.url, "BOOKD_LLM_P1_KEY": "k",
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
                     env=users_env(BOOKD_CHAT_ANON_PER_MINUTE=3, BOOKD_TRANSFORM_TEXT_PER_MINUTE=3))
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


# ---- known chapters: the section cache shared with the chapter routes ----------------

def new_chapter(srv):
    tok = uniq("u")
    content = CHAPTER.replace("UNIQ", tok)
    b = srv.create_book(title=uniq("compat book"))
    c = srv.add_chapter(b["id"], content_markdown=content)
    return b["id"], c, content


def get_translated(srv, book, n):
    r = srv.get(f"/api/v1/books/{book}/chapters/{n}/translated/ur", headers=ADMIN, timeout=30)
    assert r.status_code == 200, r.text[:500]
    return r.json()


def test_translate_chapter_fills_the_section_cache(llm):
    srv, fake = llm
    book, ch, content = new_chapter(srv)
    r = srv.post("/api/translate", json={"text": content, "chapter_id": ch["id"], "target_lang": "ur"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(fake.calls()) == SECTIONS, "one call per section"
    assert body["success"] is True and body["metadata"]["cached"] is False
    assert body["metadata"]["chapter_id"] == ch["id"]
    t = get_translated(srv, book, ch["number"])
    assert len(fake.calls()) == SECTIONS, "the chapter route must be served from the same cache"
    assert all(s["cached"] for s in t["sections"])
    assert body["translated_text"] == t["content_markdown"]


def test_chapter_route_fills_the_cache_for_translate(llm):
    srv, fake = llm
    book, ch, content = new_chapter(srv)
    t = get_translated(srv, book, ch["number"])
    assert len(fake.calls()) == SECTIONS
    # a number, with the book as the chat routes take it (book_id, then ?book=)
    r = srv.post("/api/translate", json={"content": content, "chapter_id": str(ch["number"]),
                                         "book_id": book, "target_language": "ur"})
    assert r.status_code == 200, r.text
    assert r.json()["translated_content"] == t["content_markdown"]
    assert r.json()["metadata"]["cached"] is True
    r = srv.post(f"/api/translate?book={book}", json={"text": "\n" + content + "\n\n", "chapter_id": ch["number"],
                                                      "target_lang": "ur"})
    assert r.status_code == 200, r.text
    assert r.json()["translated_text"] == t["content_markdown"]
    assert len(fake.calls()) == SECTIONS, "no model call for a chapter already translated"


def test_translate_one_section_computes_only_it(llm):
    srv, fake = llm
    book, ch, content = new_chapter(srv)
    section = content[content.index("## Running"):content.index("## Next steps")]
    r = srv.post("/api/translate", json={"text": section, "chapter_id": ch["id"], "target_lang": "ur"})
    assert r.status_code == 200, r.text
    assert "RUN THE ROS NODE" in r.json()["translated_text"]
    assert len(fake.calls()) == 1
    t = get_translated(srv, book, ch["number"])
    assert len(fake.calls()) == SECTIONS, "the section sent is cached; the others are computed"
    assert [s["cached"] for s in t["sections"]] == [False, False, True, False]


def test_text_not_the_chapters_is_translated_by_hash(llm):
    srv, fake = llm
    book, ch, content = new_chapter(srv)
    edited = content.replace("Read more", "Read a great deal more")
    r = srv.post("/api/translate", json={"text": edited, "chapter_id": ch["id"], "target_lang": "ur"})
    assert r.status_code == 200, r.text
    assert "READ A GREAT DEAL MORE" in r.json()["translated_text"]
    assert len(fake.calls()) == 1, "text the site edited goes to the model whole, as text"
    r = srv.post("/api/translate", json={"text": edited, "chapter_id": ch["id"], "target_lang": "ur"})
    assert r.json()["metadata"]["cached"] is True and len(fake.calls()) == 1
    # an unknown chapter is no error: the text is translated as text
    r = srv.post("/api/translate", json={"text": content, "chapter_id": "no-such/chapter", "target_lang": "ur"})
    assert r.status_code == 200, r.text
    assert len(fake.calls()) == 2


@pytest.mark.parametrize("path", ["/api/personalize", "/api/content/personalize"])
def test_personalize_chapter_shares_the_cache(llm, path):
    srv, fake = llm
    user = make_user(srv)
    r = srv.put("/api/v1/users/me/preferences", json={"experience_level": "beginner",
                                                      "software_background": uniq("py")},
                headers=user["headers"])
    assert r.status_code in (200, 201), r.text
    book, ch, content = new_chapter(srv)
    r = srv.post(path, json={"content": content, "chapter_id": ch["id"], "title": "T"}, headers=user["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and len(fake.calls()) == SECTIONS
    p = srv.get(f"/api/v1/books/{book}/chapters/{ch['number']}/personalized", headers=user["headers"], timeout=30)
    assert p.status_code == 200, p.text
    assert len(fake.calls()) == SECTIONS, "the chapter route must be served from the same cache"
    assert body["personalized_content"] == p.json()["content_markdown"]
    # and the other way round, for a second chapter
    book, ch, content = new_chapter(srv)
    p = srv.get(f"/api/v1/books/{book}/chapters/{ch['number']}/personalized", headers=user["headers"], timeout=30)
    assert p.status_code == 200 and len(fake.calls()) == 2 * SECTIONS
    r = srv.post(path, json={"content": content, "chapter_id": ch["id"]}, headers=user["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["personalized_content"] == p.json()["content_markdown"]
    assert r.json()["metadata"]["cached"] is True
    assert len(fake.calls()) == 2 * SECTIONS


def test_content_chapter_by_its_id(llm):
    srv, _ = llm
    book, ch, content = new_chapter(srv)
    r = srv.get(f"/api/content/chapters/{ch['id']}", headers={"Accept": "text/markdown"})
    assert r.status_code == 200, r.text
    assert r.text == content


# ---- the per-caller limit on arbitrary text -------------------------------------------------

def test_signed_in_callers_are_limited_for_arbitrary_text(bare):
    user = make_user(bare)
    statuses = []
    for i in range(5):
        r = bare.post("/api/personalize", json={"content": f"Text {i} {uniq('w')}"}, headers=user["headers"])
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
    assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429, statuses
    assert int(r.headers["Retry-After"]) >= 1
    body = r.json()
    assert body["success"] is False and body["error"]["code"] == "rate_limited", body
    assert body["error"]["message"]
    # another user has a bucket of their own
    other = make_user(bare)
    r = bare.post("/api/content/personalize", json={"content": "Hello"}, headers=other["headers"])
    assert r.status_code == 200, r.text
    # a known chapter's text is served from its sections and is not counted
    b = bare.create_book(title=uniq("limit book"))
    content = ":::audience{level=\"advanced\"}\nUse the ZMP.\n:::\n\nBalance.\n"
    c = bare.add_chapter(b["id"], content_markdown=content)
    for _ in range(3):
        r = bare.post("/api/personalize", json={"content": content, "chapter_id": c["id"]},
                      headers=user["headers"])
        assert r.status_code == 200, r.text
        assert "Use the ZMP" not in r.json()["personalized_content"]


def test_anonymous_limit_keeps_their_shape(bare):
    for _ in range(30):
        r = bare.post("/api/personalize", json={"content": "x"})
        if r.status_code == 429:
            break
    assert r.status_code == 429, r.text
    assert r.headers.get("Retry-After")
    assert r.json()["success"] is False and r.json()["error"]["code"] == "rate_limited"
