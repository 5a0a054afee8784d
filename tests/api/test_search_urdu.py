"""Keyword search of Arabic-script text (core/normalize.h): an Urdu chapter is
found by queries typed with the Arabic or Persian letter forms (yeh, kaf, heh,
teh marbuta, hamza carriers), with harakat or tatweel, and Arabic text with
harakat is found by Urdu spelling; what comes back is the text as written.
Both backends (BOOKD_TEST_DB=postgres for PostgreSQL)."""
import pytest

from conftest import ADMIN, start_server, uniq, users_env
from test_search_common import hits, wait_jobs_idle, wait_search

URDU = """# روبوٹ اور توازن

روبوٹ کو چلتے وقت اپنا توازن برقرار رکھنا ہوتا ہے۔ انسان یہ کام بغیر سوچے کرتا ہے، لیکن ایک
مشین کے لیے یہ ایک مشکل مسئلہ ہے۔

## زمین سے رابطہ

جب روبوٹ کا پاؤں زمین پر آتا ہے تو قوت کا مرکز بدل جاتا ہے۔ اگر یہ مرکز پاؤں کے دائرے سے باہر
چلا جائے تو روبوٹ گر سکتا ہے۔

## آئندہ کی راہ

سائنسدان نئے طریقوں سے روبوٹوں کو زیادہ مستحکم بنانے کی کوشش کر رہے ہیں۔ سن ۲۰۲۴ میں کئی تجربے ہوئے۔
"""

# Arabic spelling with harakat: Arabic kaf and yeh, alef with hamza.
ARABIC = """# الآلة

الرُّوبُوتُ كَبِيرٌ وَمُتَوَازِنٌ، وَيَمْشِي عَلَى أَرْضٍ صُلْبَةٍ.
"""


@pytest.fixture(scope="module")
def ur(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("search-ur"), env=users_env(BOOKD_JOB_BACKOFF_MS="50"))
    b = srv.create_book(title=uniq("urdu book"), language="ur")
    c1 = srv.add_chapter(b["id"], title="روبوٹ اور توازن", content_markdown=URDU)
    c2 = srv.add_chapter(b["id"], title="الآلة", content_markdown=ARABIC)
    wait_jobs_idle(srv)
    wait_search(srv, lambda r: len(r) > 0, q="روبوٹ", book_id=b["id"])
    yield srv, b["id"], c1["id"], c2["id"]
    rc = srv.stop()
    assert rc == 0, f"server exited with {rc}:\n{srv.log_tail()}"


def chapters(srv, book_id, q):
    """The chapters of the hits, each once, in rank order."""
    out = []
    for h in hits(srv, q=q, book_id=book_id, mode="keyword"):
        if h["chapter_id"] not in out:
            out.append(h["chapter_id"])
    return out


@pytest.mark.parametrize("q, why", [
    ("مشکل", "as written"),
    ("مشكل", "Arabic kaf U+0643 for keheh"),
    ("كوشش", "Arabic kaf"),
    ("زيادة", "Arabic yeh U+064A and teh marbuta for Urdu yeh and heh goal"),
    ("زىادہ", "alef maksura U+0649 for yeh"),
    ("تَوازُن", "harakat"),
    ("تـــوازن", "tatweel"),
    ("ائندہ", "bare alef for alef madda"),
    ("رابطه", "Arabic heh U+0647 for heh goal (a heading word)"),
    ("2024", "ASCII digits for Extended Arabic-Indic ones"),
])
def test_urdu_found_by_variant_spelling(ur, q, why):
    srv, book_id, urdu, _ = ur
    assert chapters(srv, book_id, q) == [urdu], why


def test_hit_text_is_the_text_as_written(ur):
    srv, book_id, urdu, arabic = ur
    res = hits(srv, q="مشكل زيادة", book_id=book_id, mode="keyword")
    assert res and res[0]["chapter_id"] == urdu
    text = " ".join(h["text"] for h in res)
    assert "مشکل" in text or "زیادہ" in text, text
    assert "مشكل" not in text and "زيادة" not in text, "the index form leaked into the text"
    # Arabic with harakat, found by Urdu spelling; the quote keeps its harakat
    res = hits(srv, q="کبیر", book_id=book_id, mode="keyword")
    assert {h["chapter_id"] for h in res} == {arabic}, res
    assert "كَبِيرٌ" in res[0]["text"], res[0]["text"]
    assert chapters(srv, book_id, "ارض") == [arabic]  # alef with hamza and a tanween


def test_do_chashmi_heh_stays_a_letter(ur):
    srv, book_id, urdu, _ = ur
    # رکھنا (with do-chashmi heh) is in the text; رکہنا is another spelling, not merged
    assert chapters(srv, book_id, "رکھنا") == [urdu]
    assert chapters(srv, book_id, "رکہنا") == []


def test_edit_reindexes_the_search_form(ur):
    srv, book_id, urdu, _ = ur
    c = srv.add_chapter(book_id, title="ترمیم", content_markdown="# ترمیم\n\nپہلا لفظ گھڑی ہے۔\n")
    wait_jobs_idle(srv)
    wait_search(srv, lambda r: {h["chapter_id"] for h in r} == {c["id"]}, q="گھڑي", book_id=book_id)
    r = srv.put(f"/api/v1/books/{book_id}/chapters/{c['id']}", headers=ADMIN,
                json={"title": "ترمیم", "content_markdown": "# ترمیم\n\nدوسرا لفظ کتاب ہے۔\n"})
    assert r.status_code == 200, r.text
    wait_jobs_idle(srv)
    wait_search(srv, lambda r: {h["chapter_id"] for h in r} == {c["id"]}, q="كتاب", book_id=book_id)
    assert chapters(srv, book_id, "گھڑي") == []
