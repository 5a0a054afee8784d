"""An uploaded book.json whose ISBN another book already holds: the import
fails with a message that names the ISBN and that book, and no path of the
server's."""
import json

import pytest

from conftest import ADMIN, random_isbn13, start_server, uniq
from test_jobs_common import jobs_env
from test_jobs_import import import_job, upload, zip_bytes


@pytest.fixture(scope="module")
def isrv(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("import-isbn"), env=jobs_env())
    yield srv
    rc = srv.stop()
    assert rc == 0, f"server exited with {rc}; log:\n{srv.log_tail()}"


def test_isbn_conflict_names_the_isbn_and_the_book_not_a_path(isrv):
    isbn = random_isbn13()
    holder = isrv.create_book(title=uniq("Holder"), isbns=[isbn])
    entries = {"book.json": json.dumps({"title": uniq("Newcomer"), "isbns": [isbn]}),
               "one.md": "# One\n\nfirst chapter\n"}
    j = import_job(isrv, upload(isrv, "newcomer.zip", zip_bytes(entries), "application/zip"))
    assert j["status"] == "failed", j
    msg = j["error"]
    assert isinstance(msg, str), j
    assert isbn in msg.replace("-", ""), f"the ISBN is not named: {msg!r}"
    assert holder["id"] in msg or holder["title"] in msg, f"the conflicting book is not named: {msg!r}"
    assert str(isrv.data_dir) not in msg and "/tmp" not in msg and "uploads/" not in msg, \
        f"a server path leaked: {msg!r}"
    assert msg.isprintable(), f"garbled message: {msg!r}"
    # the book already holding the ISBN is untouched, and no second book came
    assert isrv.get(f"/api/v1/books/isbn/{isbn}", headers=ADMIN).json()["id"] == holder["id"]
