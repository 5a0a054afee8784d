"""Translated text is searchable and grounds the chatbot in the reader's
language: a section's translation (a human one saved with PUT …/translations,
or a machine one cached by the transform service) is indexed as chunks of
that language, replacing the section's earlier ones; GET /api/v1/search
?language=ur searches them (with the Arabic-script search form), the
original text stays apart; POST /api/v1/chatbot/query (and the compat
routes) with `language` (default: the signed-in reader's preferred_language)
gives the model that language's passages, falling back to the book's text,
and asks it to answer in that language. With the fake model. Both backends
(BOOKD_TEST_DB=postgres for PostgreSQL)."""
import pytest

from conftest import ADMIN, SLOW, make_user, start_server, uniq, users_env
from fake_llm import FakeLLM
from test_search_common import hits, wait_jobs_idle, wait_search

QUERY = "/api/v1/chatbot/query"

CHAPTER = """Robots are machines that sense and act.

## Balance {#balance}

Robots keep their balance with the zero moment point TOKEN.

## Walking

Walking robots shift their weight from foot to foot TOKEN.
"""

URDU_BALANCE = """## توازن {#balance}

روبوٹ زیرو مومنٹ پوائنٹ کی مدد سے اپنا توازن برقرار رکھتے ہیں TOKEN ۔
"""

URDU_BALANCE_2 = """## توازن {#balance}

مشین اپنے پاؤں پر مستحکم کھڑی رہتی ہے TOKEN ۔
"""


def llm_env(fake):
    return users_env(BOOKD_LLM_PROVIDERS="p1:m1", BOOKD_LLM_P1_URL=fake.url, BOOKD_LLM_P1_KEY="k",
                     BOOKD_LLM_TRIES="1", BOOKD_LLM_BREAKER_FAILURES="1000", BOOKD_JOB_BACKOFF_MS="50")


@pytest.fixture(scope="module")
def fake():
    f = FakeLLM().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, fake):
    s = start_server(tmp_path_factory.mktemp("search-translated"), env=llm_env(fake))
    yield s
    rc = s.stop()
    assert rc == 0, f"server exited with {rc}:\n{s.log_tail()}"


@pytest.fixture
def llm(srv, fake):
    fake.reset()
    yield srv, fake
    fake.reset()


def new_book(srv):
    """A book with one indexed English chapter; TOKEN becomes a word unique
    to the test. Returns (book id, chapter, token)."""
    tok = uniq("tok").replace("-", "").replace("_", "")
    b = srv.create_book(title=uniq("translated"))
    c = srv.add_chapter(b["id"], title="Robots", content_markdown=CHAPTER.replace("TOKEN", tok))
    wait_jobs_idle(srv)
    wait_search(srv, lambda r: len(r) > 0, q=tok, book_id=b["id"], mode="keyword")
    return b["id"], c, tok


def put_human(srv, book, number, text, tok):
    r = srv.put(f"/api/v1/books/{book}/chapters/{number}/translations/ur", headers=ADMIN,
                json={"sections": [{"anchor": "balance", "content_markdown": text.replace("TOKEN", tok)}]})
    assert r.status_code in (200, 201), r.text


def test_human_translation_is_searchable_in_its_language(llm):
    srv, _ = llm
    book, ch, tok = new_book(srv)
    assert hits(srv, q="توازن", book_id=book, language="ur", mode="keyword") == []
    put_human(srv, book, ch["number"], URDU_BALANCE, tok)
    # as written, and with harakat / Arabic letter forms (the search form)
    for q in ("توازن", "تَوازُن", "برقرار", "مدد"):
        res = hits(srv, q=q, book_id=book, language="ur", mode="keyword")
        assert len(res) == 1, (q, res)
        h = res[0]
        assert h["language"] == "ur" and h["chapter_id"] == ch["id"] and h["anchor"] == "balance", h
        assert "برقرار" in h["text"], h
    # the original text and the translation stay apart
    assert hits(srv, q="توازن", book_id=book, mode="keyword") == []
    orig = hits(srv, q=tok, book_id=book, mode="keyword")
    assert orig and all(h["language"] is None for h in orig), orig
    assert [h["anchor"] for h in hits(srv, q=tok, book_id=book, language="ur", mode="keyword")] == ["balance"]
    # a new version of the section replaces the old one
    put_human(srv, book, ch["number"], URDU_BALANCE_2, tok)
    assert hits(srv, q="برقرار", book_id=book, language="ur", mode="keyword") == []
    res = hits(srv, q="مستحکم", book_id=book, language="ur", mode="keyword")
    assert len(res) == 1 and res[0]["anchor"] == "balance", res
    assert len(hits(srv, q=tok, book_id=book, language="ur", mode="keyword")) == 1
    # an edit of the chapter re-indexes its own text and leaves the translation's
    r = srv.put(f"/api/v1/books/{book}/chapters/{ch['number']}", headers=ADMIN,
                json={"title": "Robots", "content_markdown": CHAPTER.replace("TOKEN", tok) + "\nMore.\n"})
    assert r.status_code == 200, r.text
    wait_jobs_idle(srv)
    assert len(hits(srv, q="مستحکم", book_id=book, language="ur", mode="keyword")) == 1


def test_search_language_validated(llm):
    srv, _ = llm
    r = srv.get("/api/v1/search", params={"q": "x", "language": "not a tag!"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "language", r.text


def test_machine_translation_is_indexed_once_per_section(llm):
    srv, fake = llm
    fake.set_default(transform="upper")
    book, ch, tok = new_book(srv)
    r = srv.get(f"/api/v1/books/{book}/chapters/{ch['number']}/translated/ur", headers=ADMIN, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    res = hits(srv, q=tok, book_id=book, language="ur", mode="keyword", limit=50)
    assert sorted(h["anchor"] for h in res) == ["balance", "walking"], res
    assert all(h["language"] == "ur" and tok.upper() in h["text"] for h in res), res
    intro = hits(srv, q="sense", book_id=book, language="ur", mode="keyword")
    assert [h["anchor"] for h in intro] == ["_intro"] and "SENSE" in intro[0]["text"], intro
    # redone: the section's chunks are replaced, not added to
    r = srv.post(f"/api/v1/books/{book}/chapters/{ch['number']}/translations/ur/sections/walking/refresh",
                 headers=ADMIN, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    res = hits(srv, q=tok, book_id=book, language="ur", mode="keyword", limit=50)
    assert sorted(h["anchor"] for h in res) == ["balance", "walking"], res
    # another language is another set
    assert hits(srv, q=tok, book_id=book, language="fr", mode="keyword") == []


# ---- the chatbot in the reader's language ------------------------------------------------

URDU_QUESTION = "روبوٹ اپنا توازن کیسے برقرار رکھتے ہیں؟"


def answer_call(fake):
    calls = fake.wait_calls(1, kind="answer")
    assert calls, "the model was not asked"
    return calls[-1]


def is_urdu(text):
    return any("\u0600" <= ch <= "\u06ff" for ch in text)


def test_chat_in_urdu_uses_the_urdu_passages(llm):
    srv, fake = llm
    book, ch, tok = new_book(srv)
    put_human(srv, book, ch["number"], URDU_BALANCE, tok)
    fake.reset()
    r = srv.post(QUERY, json={"question": URDU_QUESTION, "book_id": book, "language": "ur"}, headers=ADMIN,
                 timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    call = answer_call(fake)
    passages = list(call.passages().values())
    assert passages and all(is_urdu(p) for p in passages), passages
    assert any("برقرار" in p for p in passages), passages
    assert "Answer in Urdu" in call.system, call.system
    for c in r.json()["citations"]:
        assert c["anchor"] == "balance" and c["chapter_id"] == ch["id"], c


def test_chat_without_language_uses_the_book_text(llm):
    srv, fake = llm
    book, ch, tok = new_book(srv)
    put_human(srv, book, ch["number"], URDU_BALANCE, tok)
    fake.reset()
    r = srv.post(QUERY, json={"question": f"How do robots keep their balance {tok}?", "book_id": book},
                 headers=ADMIN, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    call = answer_call(fake)
    passages = list(call.passages().values())
    assert passages and not any(is_urdu(p) for p in passages), passages
    assert "Answer in" not in call.system, call.system


def test_chat_language_without_translation_falls_back_to_the_book(llm):
    srv, fake = llm
    book, ch, tok = new_book(srv)
    fake.reset()
    r = srv.post(QUERY, json={"question": f"balance {tok}", "book_id": book, "language": "ur"}, headers=ADMIN,
                 timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    call = answer_call(fake)
    passages = list(call.passages().values())
    assert passages and any(tok in p for p in passages), passages
    assert "Answer in Urdu" in call.system, call.system


def test_chat_language_defaults_to_the_readers_preference(llm):
    srv, fake = llm
    book, ch, tok = new_book(srv)
    put_human(srv, book, ch["number"], URDU_BALANCE, tok)
    u = make_user(srv)
    r = srv.put("/api/v1/users/me/preferences", json={"preferred_language": "ur"}, headers=u["headers"])
    assert r.status_code == 200, r.text
    fake.reset()
    r = srv.post(QUERY, json={"question": URDU_QUESTION, "book_id": book}, headers=u["headers"], timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    call = answer_call(fake)
    passages = list(call.passages().values())
    assert passages and all(is_urdu(p) for p in passages), passages
    assert "Answer in Urdu" in call.system, call.system
    # an explicit language wins over the preference
    fake.reset()
    r = srv.post(QUERY, json={"question": f"balance {tok}", "book_id": book, "language": "en"},
                 headers=u["headers"], timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    call = answer_call(fake)
    assert "Answer in English" in call.system, call.system


def test_chat_language_validated(llm):
    srv, _ = llm
    r = srv.post(QUERY, json={"question": "hello", "language": "no such tag"}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert any(d["field"] == "language" for d in r.json()["error"]["details"]), r.text


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/ask/stream"])
def test_compat_chat_routes_take_language(llm, path):
    srv, fake = llm
    book, ch, tok = new_book(srv)
    put_human(srv, book, ch["number"], URDU_BALANCE, tok)
    fake.reset()
    r = srv.post(path, json={"message": URDU_QUESTION, "book_id": book, "language": "ur"}, headers=ADMIN,
                 timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    call = answer_call(fake)
    passages = list(call.passages().values())
    assert passages and all(is_urdu(p) for p in passages), passages
    assert "Answer in Urdu" in call.system, call.system
