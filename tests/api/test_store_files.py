"""The embedded database holds password and key hashes and chats: its
files are the service account's alone (0600), in a data directory of its
own (0700), and an older database readable by others is made private."""
import os
import stat

import pytest

import pgtest
from conftest import start_server, uniq

pytestmark = pytest.mark.skipif(pgtest.enabled(), reason="the SQLite files (BOOKD_TEST_DB=postgres)")


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def db_files(data):
    return [data / n for n in ("bookd.db", "bookd.db-wal", "bookd.db-shm")]


def test_fresh_data_dir_is_private(tmp_path):
    home = tmp_path / "home"  # the harness's own directory (logs, cwd)
    data = tmp_path / "fresh" / "data"  # made by bookd itself
    old = os.umask(0o022)  # a permissive parent: bookd must not inherit it
    try:
        srv = start_server(home, env={"BOOKD_DATA_DIR": str(data)})
    finally:
        os.umask(old)
    try:
        srv.create_book(title=uniq("private"))
        assert mode(data) == 0o700, oct(mode(data))
        for p in db_files(data):
            assert p.exists(), p
            assert mode(p) == 0o600, f"{p.name} is {oct(mode(p))}"
    finally:
        assert srv.stop() == 0


def test_database_readable_by_others_is_made_private(tmp_path):
    data = tmp_path / "data"
    srv = start_server(data)
    srv.create_book(title=uniq("before"))
    assert srv.stop() == 0
    for p in db_files(data):
        if p.exists():
            os.chmod(p, 0o644)
    srv = start_server(data)
    try:
        srv.create_book(title=uniq("after"))
        for p in db_files(data):
            if p.exists():
                assert mode(p) == 0o600, f"{p.name} is still {oct(mode(p))}"
        assert "readable by others" in srv.log_text()
    finally:
        assert srv.stop() == 0


def test_existing_data_dir_of_ours_is_made_private(tmp_path):
    """An older install's data directory (and its uploads/) open to others
    is made 0700 at start; the files were never the issue alone."""
    home = tmp_path / "home"
    data = tmp_path / "older" / "data"
    (data / "uploads").mkdir(parents=True)
    os.chmod(data, 0o755)
    os.chmod(data / "uploads", 0o755)
    srv = start_server(home, env={"BOOKD_DATA_DIR": str(data)})
    try:
        assert mode(data) == 0o700, oct(mode(data))
        assert mode(data / "uploads") == 0o700, oct(mode(data / "uploads"))
    finally:
        assert srv.stop() == 0
