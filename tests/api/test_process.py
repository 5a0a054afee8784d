"""The BookBytes pipeline end to end: POST /api/v1/books/process → the
book.process job (metadata, chapters, summaries, audio) → chapter audio
(Range), word timings (JSON, WebVTT), voices; bad input; idempotency; a
kill -9 mid-audio resumes at the next chapter without speaking one twice;
cancel leaves finished chapters playable; Urdu."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ADMIN, random_isbn13, start_server, uniq
from fake_openlibrary import FakeMetadata

MPG123 = shutil.which("mpg123")

WORDS = ("river lantern harbour compass voyage island merchant storm sailor chart "
         "anchor tide beacon cargo keel mast rope cabin deck horizon").split()


@pytest.fixture(scope="module")
def meta():
    m = FakeMetadata().start()
    yield m
    m.stop()


def env_for(meta):
    return {"BOOKD_OPENLIBRARY_URL": meta.url + "/ok", "BOOKD_GOOGLE_BOOKS_URL": meta.url + "/ok",
            "BOOKD_METADATA_TRIES": "1", "BOOKD_JOB_BACKOFF_MS": "100"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory, meta):
    s = start_server(tmp_path_factory.mktemp("process"), env=env_for(meta))
    yield s
    assert s.stop() == 0, s.log_tail()


def paragraph(seed, sentences=6):
    out = []
    for i in range(sentences):
        w = [WORDS[(seed * 7 + i * 3 + k) % len(WORDS)] for k in range(9)]
        out.append(f"The {w[0]} and the {w[1]} met by the {w[2]} near the {w[3]}, "
                   f"where a {w[4]} kept the {w[5]} of the {w[6]} {w[7]} {w[8]}.")
    return " ".join(out)


def book_with_chapters(s, n, paras=2, language=None, text=None):
    isbn = random_isbn13()
    fields = {"title": uniq("Voyage"), "author": "A. Writer", "isbns": [isbn]}
    if language:
        fields["language"] = language
    b = s.create_book(**fields)
    for i in range(1, n + 1):
        body = text or "\n\n".join(paragraph(i * 10 + p) for p in range(paras))
        s.add_chapter(b["id"], title=f"Chapter {i}", number=i,
                      content_markdown=f"# Chapter {i}\n\n{body}\n")
    return b, isbn


def process(s, isbn, **kw):
    body = {"isbn": isbn, **kw}
    headers = dict(ADMIN)
    r = s.post("/api/v1/books/process", json=body, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()


def wait_job(s, job_id, timeout=120, until=("completed", "failed", "cancelled")):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = s.get(f"/api/v1/jobs/{job_id}", headers=ADMIN)
        assert r.status_code == 200, r.text
        j = r.json()
        if j["status"] in until:
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {j['status']} after {timeout}s: {j}")


def decode_seconds(mp3_bytes, tmp_path):
    """Decodes with mpg123 to raw PCM: (seconds, peak sample)."""
    path = tmp_path / f"{uniq('a')}.mp3"
    path.write_bytes(mp3_bytes)
    out = subprocess.run([MPG123, "-q", "-s", "-m", "-r", "22050", str(path)], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pcm = out.stdout
    samples = [int.from_bytes(pcm[i:i + 2], "little", signed=True) for i in range(0, len(pcm) - 1, 2)]
    return len(samples) / 22050.0, max((abs(x) for x in samples), default=0)


# ------------------------------------------------------------------- tests

@pytest.mark.skipif(not MPG123, reason="mpg123 not installed")
def test_end_to_end_audio_timings_range(srv, tmp_path):
    b, isbn = book_with_chapters(srv, 3)
    acc = process(srv, isbn)
    assert set(acc) >= {"job_id", "status"}
    j = wait_job(srv, acc["job_id"])
    assert j["status"] == "completed", j
    res = j["result"]
    assert res["book_id"] == b["id"] and res["chapters_source"] == "imported" and res["chapters"] == 3, res
    assert any("metadata" in w for w in res.get("warnings", [])), res  # sources know nothing: best effort
    assert res["syntheses"] == {"1": 1, "2": 1, "3": 1}, res

    ch = srv.get(f"/api/v1/books/{b['id']}/chapters/2").json()
    assert ch["summary"] and ch["summary_source"] == "extractive", ch
    assert ch["audio_url"].endswith(f"/books/{b['id']}/chapters/2/audio"), ch

    r = srv.get(f"/api/v1/books/{b['id']}/chapters/2/audio")
    assert r.status_code == 200 and r.headers["Content-Type"] == "audio/mpeg", r.text[:200]
    assert r.headers["Accept-Ranges"] == "bytes" and r.headers.get("ETag")
    audio = r.content
    secs, peak = decode_seconds(audio, tmp_path)
    assert secs > 1 and peak > 1000, (secs, peak)

    t = srv.get(f"/api/v1/books/{b['id']}/chapters/2/audio/timings")
    assert t.status_code == 200, t.text
    words = t.json()
    assert len(words) >= len(ch["summary"].split()) * 0.9
    assert set(words[0]) == {"word", "start_ms", "end_ms", "char_start", "char_end"}
    starts = [w["start_ms"] for w in words]
    assert starts == sorted(starts) and all(w["end_ms"] >= w["start_ms"] for w in words)
    assert abs(words[-1]["end_ms"] / 1000.0 - secs) <= 0.1 * secs, (words[-1], secs)
    assert ch["summary"][words[0]["char_start"]:words[0]["char_end"]] == words[0]["word"]

    v = srv.get(f"/api/v1/books/{b['id']}/chapters/2/audio/timings", headers={"Accept": "text/vtt"})
    assert v.status_code == 200 and v.headers["Content-Type"].startswith("text/vtt"), v.text[:200]
    assert v.text.startswith("WEBVTT") and " --> " in v.text

    n = len(audio)
    r = srv.get(f"/api/v1/books/{b['id']}/chapters/2/audio", headers={"Range": "bytes=10-109"})
    assert r.status_code == 206 and r.content == audio[10:110], r.status_code
    assert r.headers["Content-Range"] == f"bytes 10-109/{n}"
    r = srv.get(f"/api/v1/books/{b['id']}/chapters/2/audio", headers={"Range": f"bytes=-50"})
    assert r.status_code == 206 and r.content == audio[-50:]
    r = srv.get(f"/api/v1/books/{b['id']}/chapters/2/audio", headers={"Range": f"bytes={n}-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{n}"
    r = srv.get(f"/api/v1/books/{b['id']}/chapters/2/audio?kind=chapter")
    assert r.status_code == 404 and "narrate" in r.json()["error"]["message"]

    # Deleting the book deletes its files.
    files = srv.data_dir / "files" / "books" / b["id"]
    assert files.exists()
    assert srv.delete(f"/api/v1/books/{b['id']}", headers=ADMIN).status_code == 204
    assert not any(files.rglob("*.mp3")) if files.exists() else True


def test_bad_input(srv):
    r = srv.post("/api/v1/books/process", json={"isbn": "978-0-306-40615-6"}, headers=ADMIN)
    assert r.status_code == 422 and "checksum" in r.json()["error"]["message"], r.text
    r = srv.post("/api/v1/books/process", json={"isbn": "12345"}, headers=ADMIN)
    assert r.status_code == 422 and "length" in r.json()["error"]["message"], r.text
    r = srv.post("/api/v1/books/process", json={"isbn": random_isbn13(), "voice": "klingon-x"}, headers=ADMIN)
    assert r.status_code == 422 and "/api/v1/voices" in r.json()["error"]["message"], r.text
    r = srv.post("/api/v1/books/process", json={}, headers=ADMIN)
    assert r.status_code == 422
    r = srv.post("/api/v1/books/process", json={"isbn": random_isbn13()})
    assert r.status_code in (401, 403)


def test_unknown_isbn_fails_clearly(srv):
    acc = process(srv, random_isbn13())
    j = wait_job(srv, acc["job_id"])
    assert j["status"] == "failed", j
    assert "no metadata source knows it" in j["error"] and "import" in j["error"], j


def test_book_without_text_fails_clearly(srv):
    isbn = random_isbn13()
    srv.create_book(title=uniq("Empty"), isbns=[isbn])
    j = wait_job(srv, process(srv, isbn)["job_id"])
    assert j["status"] == "failed" and "must be imported first" in j["error"], j


def test_voices(srv):
    r = srv.get("/api/v1/voices")
    assert r.status_code == 200
    names = {v["name"] for v in r.json()["voices"]}
    assert "ur" in names and any(n.startswith("en") for n in names), sorted(names)[:20]


def test_idempotency_and_in_progress(srv):
    b, isbn = book_with_chapters(srv, 2)
    key = uniq("idem")
    h = dict(ADMIN, **{"Idempotency-Key": key})
    r1 = srv.post("/api/v1/books/process", json={"isbn": isbn}, headers=h)
    r2 = srv.post("/api/v1/books/process", json={"isbn": isbn}, headers=h)
    assert r1.status_code == r2.status_code == 202
    assert r1.json()["job_id"] == r2.json()["job_id"]
    assert r2.headers.get("Idempotent-Replayed") == "true"
    # The same ISBN while its job is in progress: the same job.
    r3 = srv.post("/api/v1/books/process", json={"isbn": isbn}, headers=ADMIN)
    j = srv.get(f"/api/v1/jobs/{r1.json()['job_id']}", headers=ADMIN).json()
    if j["status"] in ("pending", "processing"):
        assert r3.json()["job_id"] == r1.json()["job_id"]
    wait_job(srv, r1.json()["job_id"])
    wait_job(srv, r3.json()["job_id"])


@pytest.mark.skipif(not MPG123, reason="mpg123 not installed")
def test_urdu(srv, tmp_path):
    text = ("یہ ایک کہانی ہے جو دریا کے کنارے ایک چھوٹے سے گاؤں میں شروع ہوتی ہے۔ "
            "گاؤں کے لوگ ہر صبح دریا پر جاتے ہیں اور مچھلیاں پکڑتے ہیں۔ "
            "ایک دن ایک بوڑھا ملاح دریا کے کنارے ایک پرانی کشتی لے کر آیا۔ "
            "اس نے بچوں کو دریا اور سمندر کی کہانیاں سنائیں۔ ")
    b, isbn = book_with_chapters(srv, 1, language="ur", text=text * 2)
    j = wait_job(srv, process(srv, isbn, voice="ur")["job_id"])
    assert j["status"] == "completed" and j["result"]["voice"] == "ur", j
    r = srv.get(f"/api/v1/books/{b['id']}/chapters/1/audio")
    secs, peak = decode_seconds(r.content, tmp_path)
    assert secs > 1 and peak > 1000
    words = srv.get(f"/api/v1/books/{b['id']}/chapters/1/audio/timings").json()
    assert any("دریا" in w["word"] for w in words), words[:5]


def test_kill9_resumes_at_next_chapter(tmp_path, meta):
    env = dict(env_for(meta), BOOKD_JOB_LEASE="2")
    s = start_server(tmp_path / "k9", env=env)
    try:
        b, isbn = book_with_chapters(s, 6, paras=12)
        job = process(s, isbn, narrate=True)["job_id"]
        # Kill once the first chapter is spoken and the rest is not.
        deadline = time.time() + 120
        while time.time() < deadline:
            c1 = s.get(f"/api/v1/books/{b['id']}/chapters/1").json()
            if c1.get("audio_url"):
                break
            time.sleep(0.02)
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait()
    finally:
        pass
    s2 = start_server(tmp_path / "k9", env=env)
    try:
        j = wait_job(s2, job, timeout=180)
        assert j["status"] == "completed", j
        syn = j["result"]["syntheses"]
        assert syn == {str(i): 2 for i in range(1, 7)}, syn  # summary + chapter, each once
        for i in range(1, 7):
            assert s2.get(f"/api/v1/books/{b['id']}/chapters/{i}/audio?kind=chapter").status_code == 200
    finally:
        assert s2.stop() == 0


def test_cancel_leaves_finished_chapters(srv):
    b, isbn = book_with_chapters(srv, 8, paras=10)
    job = process(srv, isbn, narrate=True)["job_id"]
    deadline = time.time() + 120
    while time.time() < deadline:
        if srv.get(f"/api/v1/books/{b['id']}/chapters/1").json().get("audio_url"):
            break
        time.sleep(0.02)
    r = srv.post(f"/api/v1/jobs/{job}/cancel", headers=ADMIN)
    assert r.status_code in (200, 202), r.text
    j = wait_job(srv, job)
    r = srv.get(f"/api/v1/books/{b['id']}/chapters/1/audio")
    assert r.status_code == 200 and len(r.content) > 1000
    if j["status"] == "cancelled":
        spoken = [(i, k) for i in range(1, 9) for k in ("summary", "chapter")
                  if srv.get(f"/api/v1/books/{b['id']}/chapters/{i}/audio?kind={k}").status_code == 200]
        assert (1, "summary") in spoken and len(spoken) < 16, (j, spoken)
