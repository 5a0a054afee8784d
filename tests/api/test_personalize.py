"""Chapters personalised for the caller's preferences: audience blocks
without a model, a rewrite per section with one (same cache)."""
import pytest

from conftest import ADMIN, make_user, start_server, uniq, users_env
from fake_llm import FakeLLM

CHAPTER = """## Motors UNIQ

Every robot has motors.

:::audience{level="beginner"}
A motor turns electricity into motion.
:::

:::audience{level="advanced"}
Consider the torque-speed curve.
:::

:::audience{software="python, rust"}
```python
motor.spin(10)
```
:::

:::audience{hardware="jetson"}
On a Jetson, use the GPIO header.
:::

:::note
Kept for everyone.
:::
"""


def chapter(srv):
    b = srv.create_book(title=uniq("p book"))
    c = srv.add_chapter(b["id"], content_markdown=CHAPTER.replace("UNIQ", uniq("u")))
    return b["id"], c["number"]


def prefs(srv, user, **p):
    r = srv.put("/api/v1/users/me/preferences", json=p, headers=user["headers"])
    assert r.status_code == 200, r.text


def personalized(srv, user, book, n, expect=200):
    r = srv.get(f"/api/v1/books/{book}/chapters/{n}/personalized", headers=user["headers"], timeout=30)
    assert r.status_code == expect, r.text[:400]
    return r.json()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("pers"), env=users_env())
    yield s
    s.stop()


def test_audience_blocks_per_level_without_llm(plain):
    book, n = chapter(plain)
    beg, adv = make_user(plain), make_user(plain)
    prefs(plain, beg, experience_level="beginner", software_background="Python scripts")
    prefs(plain, adv, experience_level="advanced", hardware_background="Jetson Orin")
    a = personalized(plain, beg, book, n)
    assert a["method"] == "audience_blocks"
    md = a["content_markdown"]
    assert "electricity into motion" in md and "torque-speed" not in md
    assert "motor.spin(10)" in md and "GPIO header" not in md
    assert ":::audience" not in md and ":::note" in md and "Kept for everyone." in md
    assert a["persona_applied"]["experience_level"] == "beginner"
    assert a["word_count"] > 0 and a["reading_time_minutes"] >= 1
    assert [s["anchor"] for s in a["sections"]][0].startswith("motors-")
    b = personalized(plain, adv, book, n)["content_markdown"]
    assert "torque-speed" in b and "electricity into motion" not in b
    assert "GPIO header" in b and "motor.spin" not in b


def test_personalized_needs_auth(plain):
    book, n = chapter(plain)
    r = plain.get(f"/api/v1/books/{book}/chapters/{n}/personalized")
    assert r.status_code == 401


@pytest.fixture(scope="module")
def fake():
    f = FakeLLM().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def llm_srv(tmp_path_factory, fake):
    env = users_env(BOOKD_LLM_PROVIDERS="p1:m1", BOOKD_LLM_P1_URL=fake.url, BOOKD_LLM_P1_KEY="k",
                    BOOKD_LLM_TRIES="1")
    s = start_server(tmp_path_factory.mktemp("pers-llm"), env=env)
    yield s
    s.stop()


def test_llm_rewrite_cached_per_profile(llm_srv, fake):
    fake.reset()
    fake.set_default(transform="prefix:>> ")
    book, n = chapter(llm_srv)
    u1, u2 = make_user(llm_srv), make_user(llm_srv)
    prefs(llm_srv, u1, experience_level="beginner")
    prefs(llm_srv, u2, experience_level="beginner")
    a = personalized(llm_srv, u1, book, n)
    assert a["method"] == "llm" and not a["sections"][0]["cached"]
    assert ">> Every robot has motors." in a["content_markdown"]
    assert "motor.spin(10)" not in a["content_markdown"]          # not a Python reader
    assert "experience level beginner" in fake.calls()[0].system
    calls = len(fake.calls())
    b = personalized(llm_srv, u2, book, n)                         # the same profile: cached
    assert len(fake.calls()) == calls and b["sections"][0]["cached"]
    assert b["content_markdown"] == a["content_markdown"]
    prefs(llm_srv, u2, experience_level="advanced")
    personalized(llm_srv, u2, book, n)
    assert len(fake.calls()) == calls + 1
