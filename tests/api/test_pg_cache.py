"""Caches in front of PostgreSQL (src/store/changes.h).

A node caches what it read (chapter lookups, users, API keys, preferences)
and trusts it until PostgreSQL notifies `bookd_changes` of a change to it:
triggers send those notifications on every commit, whoever writes.  These
tests write behind bookd's back with the triggers switched off
(session_replication_role = replica), which shows that a cached read really
asks the database nothing, and then send the notification by hand, which
shows that it is what makes the node read again.  With
BOOKD_CACHE_NOTIFIED=false every read asks the database."""
import time

import requests

from conftest import ADMIN, SLOW, bearer, login, new_email, register, uniq
from test_pg_common import db_name, fresh_db, node_env, shared_pg, wait_listening

PREFS = "/api/v1/users/me/preferences"


def quiet_sql(url, sql):
    """Runs sql with the triggers off: no notification is sent."""
    shared_pg().psql(f"SET session_replication_role = replica; {sql}", db=db_name(url))


def notify(url, payload):
    shared_pg().psql(f"SELECT pg_notify('bookd_changes', '{payload}')", db=db_name(url))


def eventually(fn, what, timeout=5):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.02)


def start(server_factory, tmp_path, name, **env):
    url = fresh_db(name)
    srv = server_factory(tmp_path / name, env=node_env(url, **env))
    if env.get("BOOKD_CACHE_NOTIFIED") != "false":
        wait_listening(shared_pg(), url, channel="bookd_changes")
    return srv, url


def counter_of(key):
    """Which of a node's 1,024 change counters a key bumps (FNV-1a, as in
    src/store/changes.c): keys sharing one rightly invalidate each other."""
    h = 1469598103934665603
    for c in key.encode():
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h & 1023


def heard_so_far(srv, url):
    """Wait until the node has heard every notification sent so far: those of
    the test's own writes through bookd arrive a moment after each commit, and
    one arriving after a read meant to fill a cache (rightly) empties it again.
    PostgreSQL delivers notifications in order, so: a new user (registering
    sends none) is read, so cached; changed behind bookd's back and notified;
    once the node shows the change it has heard everything sent before."""
    probe = register(srv, new_email("probe"), display_name="probe before")
    uid, h = probe["user"]["id"], bearer(probe["access_token"])

    def name():
        r = srv.get("/api/v1/auth/me", headers=h)
        assert r.status_code == 200, r.text
        return r.json()["display_name"]
    assert name() == "probe before"
    quiet_sql(url, f"UPDATE users SET display_name = 'probe after' WHERE id = '{uid}'")
    notify(url, f"user:{uid}")
    eventually(lambda: name() == "probe after", "the probe's notification")


def chapter_text(srv, book_id, ref=1):
    r = srv.get(f"/api/v1/books/{book_id}/chapters/{ref}")
    assert r.status_code == 200, r.text
    return r.json()["content_markdown"]


def test_chapter_served_from_cache_until_notified(server_factory, tmp_path):
    srv, url = start(server_factory, tmp_path, "cache-chapter")
    book = srv.create_book(title=uniq("cached"))
    ch = srv.add_chapter(book["id"], content_markdown="version one")
    # Another book whose counter is not this one's, made before anything is
    # cached: a book made later is a write of this node, which rightly moves
    # its own counter, and so this book's when they share one.
    other = srv.create_book(title=uniq("other"))
    while counter_of(f"book:{other['id']}") == counter_of(f"book:{book['id']}"):
        other = srv.create_book(title=uniq("other"))
    heard_so_far(srv, url)
    assert chapter_text(srv, book["id"]) == "version one"
    assert chapter_text(srv, book["id"], ch["id"]) == "version one"

    quiet_sql(url, "UPDATE chapters SET content_markdown = 'version two', rev = rev + 1 "
                   f"WHERE id = '{ch['id']}'")
    # nothing told the node: it answers from its cache, by number and by id
    assert chapter_text(srv, book["id"]) == "version one"
    assert chapter_text(srv, book["id"], ch["id"]) == "version one"
    # another book's notification changes nothing for this one (one that
    # shares its counter would, rightly)
    notify(url, f"book:{other['id']}")
    time.sleep(0.2)
    assert chapter_text(srv, book["id"]) == "version one"

    notify(url, f"book:{book['id']}")
    eventually(lambda: chapter_text(srv, book["id"]) == "version two", "the notified change")
    assert chapter_text(srv, book["id"], ch["id"]) == "version two"


def test_own_writes_are_read_at_once(server_factory, tmp_path):
    srv, url = start(server_factory, tmp_path, "cache-own")
    book = srv.create_book(title=uniq("own"))
    srv.add_chapter(book["id"], content_markdown="first")
    for i in range(20):
        assert chapter_text(srv, book["id"]).startswith("first" if i == 0 else f"edit {i - 1}")
        r = srv.put(f"/api/v1/books/{book['id']}/chapters/1", headers=ADMIN,
                    json={"title": "t", "content_markdown": f"edit {i}"})
        assert r.status_code == 200, r.text
        assert chapter_text(srv, book["id"]) == f"edit {i}"
    email = new_email("own")
    tok = register(srv, email)["access_token"]
    for lang in ("en", "ur", "fr"):
        r = srv.patch(PREFS, headers=bearer(tok), json={"preferred_language": lang})
        assert r.status_code == 200, r.text
        r = srv.get(PREFS, headers=bearer(tok))
        assert r.status_code == 200 and r.json()["preferred_language"] == lang, r.text


def test_another_writer_is_heard(server_factory, tmp_path):
    """A write by another process (here psql, with the triggers on) reaches
    the node through PostgreSQL alone."""
    srv, url = start(server_factory, tmp_path, "cache-heard")
    book = srv.create_book(title=uniq("heard"))
    ch = srv.add_chapter(book["id"], content_markdown="before")
    assert chapter_text(srv, book["id"]) == "before"
    shared_pg().psql("UPDATE chapters SET content_markdown = 'after', rev = rev + 1 "
                     f"WHERE id = '{ch['id']}'", db=db_name(url))
    eventually(lambda: chapter_text(srv, book["id"]) == "after", "another process's write")


def test_users_keys_and_preferences_cached_until_notified(server_factory, tmp_path):
    srv, url = start(server_factory, tmp_path, "cache-users")
    email = new_email("cached")
    body = register(srv, email)
    uid, tok = body["user"]["id"], body["access_token"]
    r = srv.put(PREFS, headers=bearer(tok), json={"experience_level": "beginner"})
    assert r.status_code == 200, r.text
    heard_so_far(srv, url)
    assert srv.get(PREFS, headers=bearer(tok)).json()["experience_level"] == "beginner"

    # preferences
    quiet_sql(url, "UPDATE preferences SET data = '{\"experience_level\":\"advanced\"}' "
                   f"WHERE user_id = '{uid}'")
    assert srv.get(PREFS, headers=bearer(tok)).json()["experience_level"] == "beginner"
    notify(url, f"user:{uid}")
    eventually(lambda: srv.get(PREFS, headers=bearer(tok)).json()["experience_level"] == "advanced",
               "the notified preferences")

    # the user row: a reader may not create books; made editor behind bookd's back
    def create_status():
        return srv.post("/api/v1/books", headers=bearer(tok), json={"title": uniq("by reader")}).status_code
    assert create_status() == 403
    quiet_sql(url, f"UPDATE users SET role = 'editor' WHERE id = '{uid}'")
    assert create_status() == 403
    notify(url, f"user:{uid}")
    eventually(lambda: create_status() == 201, "the notified role")

    # API keys: revoked behind bookd's back, the key works until "keys" is heard
    r = srv.post("/api/v1/auth/api-keys", headers=bearer(tok), json={"name": "k", "scopes": ["read"]})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert srv.get(PREFS, headers={"X-API-Key": key}).status_code == 200
    quiet_sql(url, f"DELETE FROM api_keys WHERE user_id = '{uid}'")
    assert srv.get(PREFS, headers={"X-API-Key": key}).status_code == 200
    notify(url, "keys")
    eventually(lambda: srv.get(PREFS, headers={"X-API-Key": key}).status_code == 401, "the notified revocation")


def test_revoking_a_key_through_the_api_takes_effect_at_once(server_factory, tmp_path):
    srv, url = start(server_factory, tmp_path, "cache-revoke")
    tok = register(srv, new_email("revoke"))["access_token"]
    r = srv.post("/api/v1/auth/api-keys", headers=bearer(tok), json={"name": "k", "scopes": ["read"]})
    assert r.status_code == 201, r.text
    key, kid = r.json()["key"], r.json()["id"]
    assert srv.get(PREFS, headers={"X-API-Key": key}).status_code == 200
    assert srv.delete(f"/api/v1/auth/api-keys/{kid}", headers=bearer(tok)).status_code == 204
    assert srv.get(PREFS, headers={"X-API-Key": key}).status_code == 401


def test_lost_listener_drops_what_was_cached(server_factory, tmp_path):
    """Notifications sent while the listener is away are lost: when it is
    back, nothing cached before is trusted."""
    srv, url = start(server_factory, tmp_path, "cache-lost")
    book = srv.create_book(title=uniq("lost"))
    ch = srv.add_chapter(book["id"], content_markdown="old")
    assert chapter_text(srv, book["id"]) == "old"
    pg = shared_pg()
    listening = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                 "AND query ILIKE 'LISTEN bookd_changes%'")
    pids = pg.psql(listening, db=db_name(url)).split()
    assert len(pids) == 1, pids
    quiet_sql(url, f"SELECT pg_terminate_backend({pids[0]}); "
                   f"UPDATE chapters SET content_markdown = 'new', rev = rev + 1 WHERE id = '{ch['id']}'")
    # once a new listener session exists, the node has seen the old one go
    eventually(lambda: pg.psql(listening, db=db_name(url)).split() not in ([], pids), "the listener's return")
    assert chapter_text(srv, book["id"]) == "new"


def test_strict_mode_asks_the_database_every_time(server_factory, tmp_path):
    srv, url = start(server_factory, tmp_path, "cache-strict", BOOKD_CACHE_NOTIFIED="false")
    book = srv.create_book(title=uniq("strict"))
    ch = srv.add_chapter(book["id"], content_markdown="one")
    tok = register(srv, new_email("strict"))["access_token"]
    assert chapter_text(srv, book["id"]) == "one"
    assert srv.get(PREFS, headers=bearer(tok)).status_code == 200
    quiet_sql(url, f"UPDATE chapters SET content_markdown = 'two', rev = rev + 1 WHERE id = '{ch['id']}'")
    assert chapter_text(srv, book["id"]) == "two"
