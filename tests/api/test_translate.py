"""Chapters translated section by section (issue: chapters for each reader):
structure protected, cached by section, single-flight, human translations
win, streamed sections, a whole-book job."""
import json
import threading
import time

import pytest
import requests

from conftest import ADMIN, assert_error, start_server, uniq
from fake_llm import FakeLLM
from test_jobs_common import wait_job

CHAPTER = """Intro paragraph UNIQ with `inline code` and a [link](https://example.com/x).

## Setup

Install the **robot** driver UNIQ:

```bash
sudo apt install ros-humble-desktop
echo "keep me"
```

## Running {#run-it}

Run the ROS node and watch the ZMP UNIQ.

:::note
An admonition.
:::

## Next steps

Read more about ROS UNIQ.
"""


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
    s = start_server(tmp_path_factory.mktemp("translate"), env=llm_env(fake))
    yield s
    s.stop()


@pytest.fixture
def llm(srv, fake):
    fake.reset()
    fake.set_default(transform="upper")
    yield srv, fake
    fake.reset()


def new_chapter(srv, content=None):
    """A book with one chapter; UNIQ in its text becomes a token unique to the
    test (the cache is keyed by content, whichever book holds it)."""
    tok = uniq("u")
    content = (content or CHAPTER).replace("UNIQ", tok)
    b = srv.create_book(title=uniq("tr book"))
    c = srv.add_chapter(b["id"], content_markdown=content)
    new_chapter.last = (content, tok)
    return b["id"], c["number"]


def translated(srv, book, n, lang="ur", expect=200, headers=ADMIN):
    r = srv.get(f"/api/v1/books/{book}/chapters/{n}/translated/{lang}", headers=headers, timeout=30)
    assert r.status_code == expect, r.text[:500]
    return r.json() if expect == 200 else r


def fence(text):
    start = text.index("```bash")
    return text[start:text.index("```", start + 7) + 3]


def test_translation_keeps_structure(llm):
    srv, fake = llm
    book, n = new_chapter(srv)
    t = translated(srv, book, n)
    assert t["method"] == "llm" and t["direction"] == "rtl" and t["language"] == "ur"
    anchors = [s["anchor"] for s in t["sections"]]
    assert anchors == ["_intro", "setup", "run-it", "next-steps"], anchors
    out = t["content_markdown"]
    assert fence(out) == fence(CHAPTER)                    # code byte-identical
    assert "`inline code`" in out and "(https://example.com/x)" in out
    assert ":::note" in out and "INSTALL THE **ROBOT** DRIVER" in out
    assert "## SETUP {#setup}" in out and "## RUNNING {#run-it}" in out
    assert "\u27e6" not in out                             # placeholders restored
    assert all(not s["fallback"] and s["origin"] == "machine" for s in t["sections"])
    assert len(fake.calls()) == 4


def test_cache_hit_and_only_changed_section_recomputed(llm):
    srv, fake = llm
    book, n = new_chapter(srv)
    translated(srv, book, n)
    assert len(fake.calls()) == 4
    t = translated(srv, book, n)
    assert len(fake.calls()) == 4, "second read must cost no model call"
    assert all(s["cached"] for s in t["sections"])
    edited = new_chapter.last[0].replace("Read more about ROS", "Read much more about ROS 2")
    r = srv.put(f"/api/v1/books/{book}/chapters/{n}", json={"title": "Edited", "content_markdown": edited}, headers=ADMIN)
    assert r.status_code == 200, r.text
    t = translated(srv, book, n)
    assert len(fake.calls()) == 5, "only the edited section is recomputed"
    assert "READ MUCH MORE ABOUT ROS 2" in t["content_markdown"]
    assert [s["cached"] for s in t["sections"]] == [True, True, True, False]


@pytest.mark.parametrize("brk", ["drop_placeholder", "dup_placeholder"])
def test_broken_output_rejected_not_cached(llm, brk):
    srv, fake = llm
    book, n = new_chapter(srv, "## Only\n\nUse `x` here UNIQ.\n")
    src, tok = new_chapter.last
    fake.set_default(transform="upper", **{"break": brk})
    t = translated(srv, book, n)
    s = t["sections"][0]
    assert s["fallback"] is True and s["reason"] and s["content_markdown"] == src
    assert len(fake.calls()) == 2, "retried once, then the source"
    fake.set_default(transform="upper")
    t = translated(srv, book, n)
    assert not t["sections"][0]["fallback"] and "USE `x` HERE" in t["content_markdown"]
    assert len(fake.calls()) == 3, "the broken output was not cached"


def test_glossary_terms_kept_and_translated(llm):
    srv, fake = llm
    book, n = new_chapter(srv, "## Intro\n\nThe ROS node talks to Gazebo and the robot UNIQ.\n")
    r = srv.put(f"/api/v1/books/{book}/glossary", headers=ADMIN,
                json={"terms": [{"term": "ROS"}, {"term": "Gazebo"},
                                {"term": "robot", "lang": "ur", "translation": "روبوٹ"}]})
    assert r.status_code == 200, r.text
    g = srv.get(f"/api/v1/books/{book}/glossary", headers=ADMIN).json()
    assert [x["term"] for x in g["terms"]] == ["ROS", "Gazebo", "robot"]
    t = translated(srv, book, n)
    out = t["content_markdown"]
    assert "Gazebo" in out and "GAZEBO" not in out and "روبوٹ" in out and "ROBOT" not in out, out
    bad = srv.put(f"/api/v1/books/{book}/glossary", headers=ADMIN, json={"terms": [{"lang": "ur"}]})
    assert bad.status_code == 422


def test_single_flight_under_50_concurrent(llm):
    srv, fake = llm
    book, n = new_chapter(srv, "## One\n\nA single section to translate UNIQ.\n")
    fake.set_default(transform="upper", delay=0.5)
    results = []

    def get():
        r = requests.get(srv.url(f"/api/v1/books/{book}/chapters/{n}/translated/ur"), headers=ADMIN, timeout=30)
        results.append(r.status_code)

    ts = [threading.Thread(target=get) for _ in range(50)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results.count(200) == 50, results
    assert len(fake.calls()) == 1, f"{len(fake.calls())} provider calls for one missing section"


def test_provider_failure_is_503_and_nothing_cached(llm):
    srv, fake = llm
    book, n = new_chapter(srv, "## One\n\nText UNIQ.\n")
    fake.set_default(status=500)
    r = translated(srv, book, n, expect=503)
    assert_error(r, 503, "unavailable")
    fake.set_default(transform="upper")
    t = translated(srv, book, n)
    assert not t["sections"][0]["cached"], "the failure must not have been cached"


def test_rtl_and_ltr_and_bad_language(llm):
    srv, fake = llm
    book, n = new_chapter(srv, "## One\n\nText UNIQ.\n")
    assert translated(srv, book, n, "ar")["direction"] == "rtl"
    assert translated(srv, book, n, "fr")["direction"] == "ltr"
    assert translated(srv, book, n, "x!", expect=422).status_code == 422
    assert translated(srv, book, 99, "fr", expect=404).status_code == 404
    r = srv.get(f"/api/v1/books/{book}/chapters/{n}/translated/ur")
    assert r.status_code == 401


def test_human_translation_wins_and_survives_refresh(llm):
    srv, fake = llm
    book, n = new_chapter(srv)
    r = srv.put(f"/api/v1/books/{book}/chapters/{n}/translations/ur", headers=ADMIN,
                json={"sections": [{"anchor": "setup", "content_markdown": "## سیٹ اپ {#setup}\n\nانسانی\n"}]})
    assert r.status_code == 200, r.text
    t = translated(srv, book, n)
    s = {x["anchor"]: x for x in t["sections"]}
    assert s["setup"]["origin"] == "human" and "انسانی" in s["setup"]["content_markdown"]
    r = srv.post(f"/api/v1/books/{book}/chapters/{n}/translations/ur/sections/setup/refresh", headers=ADMIN)
    assert r.status_code == 200, r.text
    t = translated(srv, book, n)
    s = {x["anchor"]: x for x in t["sections"]}
    assert s["setup"]["origin"] == "human", "human output survives a refresh"
    r = srv.put(f"/api/v1/books/{book}/chapters/{n}/translations/ur", headers=ADMIN,
                json={"sections": [{"anchor": "nope", "content_markdown": "x"}]})
    assert r.status_code == 422


def test_refresh_redoes_one_section(llm):
    srv, fake = llm
    book, n = new_chapter(srv)
    translated(srv, book, n)
    before = len(fake.calls())
    r = srv.post(f"/api/v1/books/{book}/chapters/{n}/translations/ur/sections/run-it/refresh", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["anchor"] == "run-it" and len(fake.calls()) == before + 1


def test_no_model_human_only(tmp_path):
    srv = start_server(tmp_path)
    try:
        book, n = new_chapter(srv)
        r = translated(srv, book, n, expect=404)
        assert_error(r, 404, "translation_unavailable")
        whole = new_chapter.last[0].replace("Read more", "مزید پڑھیں")
        r = srv.put(f"/api/v1/books/{book}/chapters/{n}/translations/ur", headers=ADMIN,
                    json={"content_markdown": whole})
        assert r.status_code == 200, r.text
        t = translated(srv, book, n)
        assert t["method"] == "human" and "مزید پڑھیں" in t["content_markdown"]
    finally:
        srv.stop()


def sse_events(resp):
    events, name = [], None
    for line in resp.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:]), time.monotonic()))
            if name in ("done", "error"):
                break
    return events


def test_sse_cached_first_then_computed_in_order(llm):
    srv, fake = llm
    book, n = new_chapter(srv)
    translated(srv, book, n)
    edited = new_chapter.last[0].replace("Install the", "Now install the")
    srv.put(f"/api/v1/books/{book}/chapters/{n}", json={"title": "Edited", "content_markdown": edited}, headers=ADMIN)
    fake.set_default(transform="upper", delay=0.3)
    with requests.get(srv.url(f"/api/v1/books/{book}/chapters/{n}/translated/ur"), stream=True, timeout=30,
                      headers=dict(ADMIN, Accept="text/event-stream")) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        ev = sse_events(r)
    names = [e[0] for e in ev]
    assert names == ["section"] * 4 + ["done"], names
    secs = [e[1] for e in ev[:4]]
    assert [s["anchor"] for s in secs] == ["_intro", "run-it", "next-steps", "setup"]
    assert [s["cached"] for s in secs] == [True, True, True, False]
    assert [s["index"] for s in secs] == [0, 2, 3, 1]


def test_sse_error_event_on_provider_failure(llm):
    srv, fake = llm
    book, n = new_chapter(srv, "## One\n\nText UNIQ.\n")
    fake.set_default(status=500)
    with requests.get(srv.url(f"/api/v1/books/{book}/chapters/{n}/translated/ur"), stream=True, timeout=30,
                      headers=dict(ADMIN, Accept="text/event-stream")) as r:
        ev = sse_events(r)
    assert ev[-1][0] == "error" and ev[-1][1]["error"]["code"] == "unavailable"


def test_book_translation_job(llm):
    srv, fake = llm
    b = srv.create_book(title=uniq("job book"))
    for i in range(3):
        srv.add_chapter(b["id"], content_markdown=f"## Part {i}\n\nText {i} {uniq()}.\n")
    r = srv.post(f"/api/v1/books/{b['id']}/translations/ur", headers=ADMIN)
    assert r.status_code == 202, r.text
    j = wait_job(srv, r.json()["job_id"], timeout=30)
    assert j["status"] == "completed", j
    assert j["progress"] == 100 and j["result"]["chapters"] == 3 and j["result"]["sections_computed"] == 3
    calls = len(fake.calls())
    t = translated(srv, b["id"], 1)
    assert all(s["cached"] for s in t["sections"]) and len(fake.calls()) == calls
