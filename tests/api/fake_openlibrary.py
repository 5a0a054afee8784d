"""Local fakes of Open Library and Google Books, serving their real JSON shapes.

    fake = FakeMetadata().start()
    env = {"BOOKD_OPENLIBRARY_URL": fake.url + "/ok", "BOOKD_GOOGLE_BOOKS_URL": fake.url + "/ok"}
    ...
    fake.counts["ol_edition"]  # requests seen, by kind
    fake.stop()

Or as a process (unit tests): `python3 fake_openlibrary.py --port N` prints
"ready <port>" on stdout once it listens.

One server, both APIs. The first path segment chooses how it behaves, so one
process serves every case and a base URL says which:
  /ok/...         the real shapes (below)
  /500/...        every request answers 500
  /hang/...       every request sleeps `hang_seconds` (default 30) first
  /malformed/...  200 with a body that is not JSON
Open Library, under the prefix:
  GET /isbn/{isbn}.json   302 to /books/{edition}.json (as the real server
                          does), or 404 {"error": "notfound"}
  GET /books/{id}.json    the edition: title, subtitle?, publishers[],
                          publish_date, number_of_pages, covers[],
                          languages[{key: "/languages/eng"}], works[{key}],
                          authors[{key}] (absent for some books), isbn_10[],
                          isbn_13[]
  GET /works/{id}.json    description (a string, or {type, value}),
                          subjects[], covers[], authors[{author: {key}, type}]
  GET /authors/{id}.json  name, personal_name
Google Books, under the prefix:
  GET /books/v1/volumes?q=isbn:{isbn}  {"kind", "totalItems", "items"?}:
                          `items` is ABSENT when nothing is found.
Counters (`counts`, and GET /_stats as JSON): ol_isbn, ol_edition, ol_work,
ol_author, gb, by mode too ("500:ol_isbn"), and `keys` (the key= values
Google Books requests carried).
"""
import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def isbn13_check(d12):
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(d12))
    return str((10 - s % 10) % 10)


def isbn10_of(isbn13):
    d9 = isbn13[3:12]
    s = sum(int(c) * (10 - i) for i, c in enumerate(d9))
    c = (11 - s % 11) % 11
    return d9 + ("X" if c == 10 else str(c))


# The books every fake knows. Open Library ids are made up but shaped right.
OL_FOX = "9780140328721"        # edition -> work {type,value} description, edition authors [{key}]
OL_URDU = "9789694460088"       # edition without authors: the work's [{author:{key}}]; urd; string description
OL_FOX_2E = "9780140328738"     # a newer English edition of the same work (2nd ed., 2001)
GB_ONLY = "9781491950357"       # not in Open Library; Google Books has it (among an unrelated volume)
NOWHERE = "9780000000002"       # known to neither


def _fix(isbn12):
    return isbn12 + isbn13_check(isbn12)


assert _fix(OL_FOX[:12]) == OL_FOX
OL_URDU = _fix(OL_URDU[:12])
OL_FOX_2E = _fix(OL_FOX_2E[:12])
GB_ONLY = _fix(GB_ONLY[:12])
NOWHERE = _fix(NOWHERE[:12])


def default_data():
    editions = {
        "OL7353617M": {
            "key": "/books/OL7353617M", "type": {"key": "/type/edition"},
            "title": "Fantastic Mr. Fox", "publishers": ["Puffin"],
            "publish_date": "October 1, 1988", "number_of_pages": 96,
            "covers": [-1, 8739161], "languages": [{"key": "/languages/eng"}],
            "works": [{"key": "/works/OL45804W"}], "authors": [{"key": "/authors/OL34184A"}],
            "isbn_10": [isbn10_of(OL_FOX)], "isbn_13": [OL_FOX],
        },
        "OL9000001M": {
            "key": "/books/OL9000001M", "type": {"key": "/type/edition"},
            "title": "Fantastic Mr. Fox", "subtitle": "Second edition", "edition_name": "2nd ed.",
            "publishers": ["Puffin"], "publish_date": "2001", "number_of_pages": 112,
            "languages": [{"key": "/languages/eng"}],
            "works": [{"key": "/works/OL45804W"}], "authors": [{"key": "/authors/OL34184A"}],
            "isbn_13": [OL_FOX_2E],
        },
        "OL9000002M": {
            "key": "/books/OL9000002M", "type": {"key": "/type/edition"},
            "title": "Raja Gidh", "publishers": ["Sang-e-Meel"], "publish_date": "Mar 2011",
            "number_of_pages": 488, "covers": [12345],
            "languages": [{"key": "/languages/urd"}], "works": [{"key": "/works/OL9000003W"}],
            "isbn_13": [OL_URDU],
        },
    }
    by_isbn = {OL_FOX: "OL7353617M", OL_FOX_2E: "OL9000001M", OL_URDU: "OL9000002M"}
    works = {
        "OL45804W": {
            "key": "/works/OL45804W", "title": "Fantastic Mr Fox",
            "description": {"type": "/type/text", "value": "Mr. Fox outwits three farmers."},
            "subjects": ["Foxes", "Fiction", "Farmers"], "covers": [8739161],
            "authors": [{"author": {"key": "/authors/OL34184A"}, "type": {"key": "/type/author_role"}}],
        },
        "OL9000003W": {
            "key": "/works/OL9000003W", "title": "Raja Gidh",
            "description": "A novel of the vulture king.", "subjects": ["Urdu fiction"],
            "authors": [{"author": {"key": "/authors/OL9000004A"}, "type": {"key": "/type/author_role"}}],
        },
    }
    authors = {
        "OL34184A": {"key": "/authors/OL34184A", "name": "Roald Dahl", "personal_name": "Roald Dahl"},
        "OL9000004A": {"key": "/authors/OL9000004A", "name": "Bano Qudsia"},
    }
    volumes = {
        GB_ONLY: [
            {"kind": "books#volume", "id": "unrelated", "volumeInfo": {
                "title": "Something Else", "industryIdentifiers": [
                    {"type": "ISBN_13", "identifier": "9780000000019"}]}},
            {"kind": "books#volume", "id": "zyTCAlFPjgYC", "volumeInfo": {
                "title": "Designing Data-Intensive Applications",
                "subtitle": "The Big Ideas Behind Reliable, Scalable, and Maintainable Systems",
                "authors": ["Martin Kleppmann"], "publisher": "O'Reilly Media",
                "publishedDate": "2017-03-16", "pageCount": 616,
                "description": "Data is at the center of many challenges in system design today.",
                "categories": ["Computers"], "language": "en",
                "imageLinks": {"smallThumbnail": "http://books.google.com/books/content?id=zyTCAlFPjgYC&zoom=5",
                               "thumbnail": "http://books.google.com/books/content?id=zyTCAlFPjgYC&zoom=1"},
                "industryIdentifiers": [{"type": "ISBN_10", "identifier": isbn10_of(GB_ONLY)},
                                        {"type": "ISBN_13", "identifier": GB_ONLY}]}},
        ],
    }
    return {"editions": editions, "by_isbn": by_isbn, "works": works, "authors": authors,
            "volumes": volumes}


class FakeMetadata:
    def __init__(self, hang_seconds=30.0):
        self.data = default_data()
        self.hang_seconds = hang_seconds
        self.counts = {}
        self.keys = []
        self.lock = threading.Lock()
        self.httpd = None
        self.url = None

    def add_edition(self, isbn13, edition, work=None, authors=None):
        """Adds an Open Library edition (a dict in the real shape) for isbn13;
        `work` and `authors` (dicts keyed by their id) go with it."""
        eid = edition["key"].rsplit("/", 1)[1]
        self.data["editions"][eid] = edition
        self.data["by_isbn"][isbn13] = eid
        if work:
            self.data["works"][work["key"].rsplit("/", 1)[1]] = work
        for a in authors or []:
            self.data["authors"][a["key"].rsplit("/", 1)[1]] = a

    def add_volume(self, isbn13, volume_info):
        self.data["volumes"].setdefault(isbn13, []).append(
            {"kind": "books#volume", "id": "v" + isbn13, "volumeInfo": volume_info})

    def count(self, kind, mode):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.counts[mode + ":" + kind] = self.counts.get(mode + ":" + kind, 0) + 1

    def start(self, port=0):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send(self, status, body, ctype="application/json", headers=()):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers:
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                u = urlsplit(self.path)
                if u.path == "/_stats":
                    with fake.lock:
                        self.send(200, {"counts": fake.counts, "keys": fake.keys})
                    return
                m = re.match(r"^/(ok|500|hang|malformed)(/.*)$", u.path)
                if not m:
                    self.send(404, {"error": "notfound"})
                    return
                mode, path = m.group(1), m.group(2)
                kind = self.kind(path)
                fake.count(kind, mode)
                if kind == "gb":
                    key = parse_qs(u.query).get("key")
                    if key:
                        with fake.lock:
                            fake.keys.append(key[0])
                if mode == "500":
                    self.send(500, b"<html>Internal Server Error</html>", "text/html")
                    return
                if mode == "hang":
                    time.sleep(fake.hang_seconds)
                    self.send(503, {"error": "slow"})
                    return
                if mode == "malformed":
                    self.send(200, b'{"title": "trunc', "application/json")
                    return
                self.answer(kind, path, u.query, "/" + mode)

            def kind(self, path):
                if path.startswith("/isbn/"):
                    return "ol_isbn"
                if path.startswith("/books/v1/volumes"):
                    return "gb"
                if path.startswith("/books/"):
                    return "ol_edition"
                if path.startswith("/works/"):
                    return "ol_work"
                if path.startswith("/authors/"):
                    return "ol_author"
                return "other"

            def answer(self, kind, path, query, prefix):
                d = fake.data
                m = re.match(r"^/(isbn|books|works|authors)/([A-Za-z0-9]+)\.json$", path)
                if kind == "ol_isbn" and m:
                    eid = d["by_isbn"].get(m.group(2))
                    if not eid:
                        self.send(404, {"error": "notfound", "key": "/isbn/" + m.group(2)})
                        return
                    self.send(302, b"", "text/plain", [("Location", prefix + "/books/" + eid + ".json")])
                    return
                table = {"ol_edition": "editions", "ol_work": "works", "ol_author": "authors"}.get(kind)
                if table and m:
                    doc = d[table].get(m.group(2))
                    if doc is None:
                        self.send(404, {"error": "notfound", "key": path[:-5]})
                    else:
                        self.send(200, doc)
                    return
                if kind == "gb":
                    q = parse_qs(query).get("q", [""])[0]
                    isbn = q[5:] if q.startswith("isbn:") else ""
                    items = d["volumes"].get(isbn)
                    body = {"kind": "books#volumes", "totalItems": len(items or [])}
                    if items:
                        body["items"] = items
                    self.send(200, body)
                    return
                self.send(404, {"error": "notfound"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--hang-seconds", type=float, default=30.0)
    args = ap.parse_args()
    fake = FakeMetadata(hang_seconds=args.hang_seconds).start(args.port)
    print("ready %d" % fake.httpd.server_address[1], flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    except KeyboardInterrupt:
        pass
    fake.stop()


if __name__ == "__main__":
    main()
