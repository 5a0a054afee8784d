"""`bookd serve --site DIR`: a built static site (a Docusaurus build/ folder)
served beside the API on the same origin.  Paths and index.html fallbacks,
the site's 404.html, `..` and its encodings, symbolic links out of the
directory, dotfiles, content types, caching headers (immutable on hashed
assets only), 304s on ETag and on date, HEAD, ranges, API routes first, the
BOOKD_SITE_BASE_URL prefix, and the command line."""
import os
import subprocess
import time
import urllib.parse
from email.utils import formatdate, parsedate_to_datetime

import pytest

from conftest import (BOOKD, Server, _wait_listening, assert_error, clean_env,
                      free_port, raw_http, require_binary, run_bookd)

JS = "assets/js/main.3f2a1b9c.js"
CSS = "assets/css/styles.abcd1234.css"
WOFF2 = "assets/fonts/inter-0a1b2c3d4e5f.woff2"
SECRET = "TOP-SECRET-7f3a"
UTF8_NAME = "docs/mit Leerzeichen ü.html"

FILES = {
    "index.html": "<!doctype html><title>home</title>HOME-PAGE",
    "404.html": "<!doctype html><title>404</title>SITE-NOT-FOUND",
    "docs/intro/index.html": "<!doctype html>INTRO-PAGE",
    "docs/flat.html": "<!doctype html>FLAT-PAGE",
    JS: "console.log('main');\n" * 200,
    CSS: "body{color:#123}\n",
    WOFF2: "wOF2 not really a font",
    "img/logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
    "img/photo.webp": "RIFF....WEBP",
    "data/x.json": '{"a":1}',
    "robots.txt": "User-agent: *\n",
    "blob.unknownext": "??",
    "sitemap.xml": "<urlset/>",
    UTF8_NAME: "<!doctype html>UTF8-PAGE",
    ".env": SECRET,
    ".git/config": SECRET,
    "docs/.hidden.html": SECRET,
    # a file where an API route lives: the API must still answer
    "health/live": "SITE-HEALTH",
    "api/v1/books/index.html": "SITE-BOOKS",
}

ALL_SECRET_PATHS = ["/.env", "/.git/config", "/docs/.hidden.html", "/escape/secret.txt",
                    "/secret-link.txt", "/inside-link.html"]


def make_site(root):
    site = root / "build"
    for rel, text in FILES.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    os.symlink(outside, site / "escape")
    os.symlink(outside / "secret.txt", site / "secret-link.txt")
    os.symlink("index.html", site / "inside-link.html")
    return site


def serve(data_dir, args=(), env=None):
    """`bookd serve ARGS` on a free port, waited for (the conftest's
    start_server runs plain `bookd serve`)."""
    require_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    e = clean_env()
    e.update({"BOOKD_HOST": "127.0.0.1", "BOOKD_PORT": str(port), "BOOKD_DATA_DIR": str(data_dir),
              "BOOKD_API_KEY": "test-admin-key", "BOOKD_LOG_LEVEL": "info", "BOOKD_WORKERS": "0"})
    e.update(env or {})
    log_path = data_dir / "server.stderr"
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen([BOOKD, "serve", *map(str, args)], cwd=str(data_dir), env=e,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf)
    srv = Server(proc, port, data_dir, log_path, e, data_dir)
    _wait_listening(srv, retry_if_taken=False)
    return srv


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def site(site_dir, tmp_path_factory):
    srv = serve(tmp_path_factory.mktemp("site-data"), ["--site", site_dir])
    yield srv
    assert srv.stop() == 0


def raw_get(srv, target, method="GET"):
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    return raw_http(srv.port, head.encode("utf-8"))


# ---------------------------------------------------------- paths and fallbacks

@pytest.mark.parametrize("path,marker", [
    ("/", "HOME-PAGE"),
    ("/index.html", "HOME-PAGE"),
    ("/docs/intro", "INTRO-PAGE"),           # a directory without its slash
    ("/docs/intro/", "INTRO-PAGE"),
    ("/docs/intro/index.html", "INTRO-PAGE"),
    ("/docs/flat", "FLAT-PAGE"),             # PATH.html
    ("/docs/flat/", "FLAT-PAGE"),
    ("/" + urllib.parse.quote(UTF8_NAME), "UTF8-PAGE"),
])
def test_pages_and_index_fallbacks(site, path, marker):
    r = site.get(path, allow_redirects=False)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    assert marker in r.text
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("path", ["/docs/nope", "/nope.js", "/docs/intro/deeper", "/img"])
def test_unknown_path_is_the_sites_404(site, path):
    r = site.get(path)
    assert r.status_code == 404
    assert "SITE-NOT-FOUND" in r.text
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.headers["Cache-Control"] == "no-cache"


def test_no_404_page_gives_the_json_404(tmp_path):
    site_dir = make_site(tmp_path)
    (site_dir / "404.html").unlink()
    srv = serve(tmp_path / "data", env={"BOOKD_SITE_DIR": str(site_dir)})
    try:
        assert "HOME-PAGE" in srv.get("/").text
        assert_error(srv.get("/docs/nope"), 404, "not_found")
    finally:
        assert srv.stop() == 0


# ---------------------------------------------------------- escaping the directory

@pytest.mark.parametrize("target", [
    "/docs/../index.html",
    "/../outside/secret.txt",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2E/%2e%2e/etc/passwd",
    "/docs/%2e%2e/%2e%2e/outside/secret.txt",
    "/..%2foutside%2fsecret.txt",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/docs/./intro",
    "/%2e/index.html",
    "/a%5c..%5c..%5coutside%5csecret.txt",
    "/docs\\..\\index.html",
    "//etc/passwd",
    "/docs//intro",
])
def test_dot_segments_and_backslashes_are_refused(site, target):
    status, headers, body = raw_get(site, target)
    assert status == 400, (target, status, body[:200])
    assert SECRET.encode() not in body and b"root:" not in body
    assert headers["content-type"].startswith("application/json")


def test_encoded_nul_ends_the_path(site):
    """libmicrohttpd decodes the path and stops it at an encoded NUL: what is
    left is checked like any path, so nothing after the NUL is reached."""
    for target, status, marker in (("/index.html%00/../../outside/secret.txt", 200, b"HOME-PAGE"),
                                   ("/escape%00/secret.txt", 404, b"SITE-NOT-FOUND"),
                                   ("/%00", 200, b"HOME-PAGE")):
        got, _, body = raw_get(site, target)
        assert SECRET.encode() not in body, target
        assert got == status and marker in body, (target, got, body[:200])


@pytest.mark.parametrize("path", ALL_SECRET_PATHS)
def test_dotfiles_and_symlinks_are_not_served(site, path):
    r = site.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert SECRET not in r.text and "HOME-PAGE" not in r.text
    assert "SITE-NOT-FOUND" in r.text
    h = site.request("HEAD", path)
    assert h.status_code == 404


def test_a_symlinked_site_directory_is_fine(tmp_path):
    """The directory itself may be a link (a deploy that swaps `current`)."""
    site_dir = make_site(tmp_path)
    link = tmp_path / "current"
    os.symlink(site_dir, link)
    srv = serve(tmp_path / "data", ["--site", link])
    try:
        assert "INTRO-PAGE" in srv.get("/docs/intro").text
        assert srv.get("/escape/secret.txt").status_code == 404
    finally:
        assert srv.stop() == 0


# ---------------------------------------------------------- types and caching

@pytest.mark.parametrize("path,ctype", [
    ("/" + JS, "text/javascript; charset=utf-8"),
    ("/" + CSS, "text/css; charset=utf-8"),
    ("/" + WOFF2, "font/woff2"),
    ("/img/logo.svg", "image/svg+xml"),
    ("/img/photo.webp", "image/webp"),
    ("/data/x.json", "application/json"),
    ("/robots.txt", "text/plain; charset=utf-8"),
    ("/sitemap.xml", "application/xml"),
    ("/blob.unknownext", "application/octet-stream"),
    ("/docs/intro", "text/html; charset=utf-8"),
])
def test_content_types(site, path, ctype):
    r = site.get(path)
    assert r.status_code == 200, path
    assert r.headers["Content-Type"] == ctype
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    rel = path.lstrip("/")
    if rel in FILES:
        assert r.content == FILES[rel].encode()


@pytest.mark.parametrize("path,cache", [
    ("/" + JS, "public, max-age=31536000, immutable"),
    ("/" + CSS, "public, max-age=31536000, immutable"),
    ("/" + WOFF2, "public, max-age=31536000, immutable"),
    ("/", "no-cache"),
    ("/docs/intro", "no-cache"),
    ("/docs/flat", "no-cache"),
])
def test_cache_control(site, path, cache):
    r = site.get(path)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == cache


@pytest.mark.parametrize("path", ["/img/logo.svg", "/robots.txt", "/data/x.json"])
def test_unhashed_assets_get_a_short_max_age(site, path):
    cc = site.get(path).headers["Cache-Control"]
    assert "immutable" not in cc and "max-age=" in cc
    assert 0 < int(cc.split("max-age=")[1].split(",")[0]) <= 3600


def test_validators_and_304(site):
    r = site.get("/" + JS)
    etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    assert etag.startswith('"') and etag.endswith('"'), etag  # strong
    assert parsedate_to_datetime(modified)
    assert r.headers["Accept-Ranges"] == "bytes"
    assert site.get("/" + JS).headers["ETag"] == etag
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"nope", W/{etag}'},
                    {"If-None-Match": "*"}, {"If-Modified-Since": modified},
                    {"If-Modified-Since": formatdate(time.time() + 3600, usegmt=True)}):
        c = site.get("/" + JS, headers=headers)
        assert c.status_code == 304, headers
        assert c.content == b""
        assert c.headers["ETag"] == etag
        assert c.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for headers in ({"If-None-Match": '"other"'}, {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
                    {"If-Modified-Since": "not a date"},
                    # If-None-Match wins over a matching date
                    {"If-None-Match": '"other"', "If-Modified-Since": modified}):
        c = site.get("/" + JS, headers=headers)
        assert c.status_code == 200, headers
        assert c.content == FILES[JS].encode()
    h = site.get("/docs/intro", headers={"If-None-Match": site.get("/docs/intro").headers["ETag"]})
    assert h.status_code == 304


def test_etag_changes_with_the_file(tmp_path):
    site_dir = make_site(tmp_path)
    srv = serve(tmp_path / "data", env={"BOOKD_SITE_DIR": str(site_dir)})
    try:
        first = srv.get("/robots.txt").headers["ETag"]
        p = site_dir / "robots.txt"
        p.write_text("User-agent: *\nDisallow: /x\n")
        os.utime(p, (time.time() + 5, time.time() + 5))
        r = srv.get("/robots.txt", headers={"If-None-Match": first})
        assert r.status_code == 200 and "Disallow" in r.text
        assert r.headers["ETag"] != first
    finally:
        assert srv.stop() == 0


def test_head(site):
    g = site.get("/" + JS)
    status, headers, body = raw_get(site, "/" + JS, method="HEAD")
    assert status == 200
    assert body == b""
    assert int(headers["content-length"]) == len(FILES[JS].encode())
    assert headers["etag"] == g.headers["ETag"]
    assert headers["content-type"] == "text/javascript; charset=utf-8"


def test_ranges(site):
    data = FILES[JS].encode()
    r = site.get("/" + JS, headers={"Range": "bytes=0-9"})
    assert r.status_code == 206
    assert r.content == data[:10]
    assert r.headers["Content-Range"] == f"bytes 0-9/{len(data)}"
    r = site.get("/" + JS, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = site.get("/" + JS, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(data)}"
    etag = site.get("/" + JS).headers["ETag"]
    assert site.get("/" + JS, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    r = site.get("/" + JS, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == data


# ---------------------------------------------------------- the API first

def test_api_routes_win(site):
    assert "HOME-PAGE" in site.get("/").text
    r = site.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = site.get("/api/v1/books")
    assert r.status_code == 200 and "items" in r.json()
    # an API path with another method is still the API's 405, not a page
    assert_error(site.get("/chat"), 405, "method_not_allowed")
    # only GET and HEAD reach the site
    assert_error(site.delete("/docs/intro"), 404, "not_found")
    assert_error(site.post("/index.html", json={}), 404, "not_found")


# ---------------------------------------------------------- base URL

def test_base_url_prefix(site_dir, tmp_path):
    srv = serve(tmp_path / "data", ["--site", site_dir],
                env={"BOOKD_SITE_BASE_URL": "/my-book/"})
    try:
        assert "HOME-PAGE" in srv.get("/my-book/").text
        assert "INTRO-PAGE" in srv.get("/my-book/docs/intro").text
        r = srv.get("/my-book/" + JS)
        assert r.status_code == 200
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        r = srv.get("/my-book", allow_redirects=False)
        assert r.status_code == 301 and r.headers["Location"] == "/my-book/"
        r = srv.get("/", allow_redirects=False)
        assert r.status_code == 301 and r.headers["Location"] == "/my-book/"
        # inside the prefix, the site's 404; outside it, the API's
        r = srv.get("/my-book/nope")
        assert r.status_code == 404 and "SITE-NOT-FOUND" in r.text
        assert_error(srv.get("/docs/intro"), 404, "not_found")
        assert_error(srv.get("/my-bookx/docs/intro"), 404, "not_found")
        assert srv.get("/health/live").json() == {"status": "ok"}
    finally:
        assert srv.stop() == 0


def test_base_url_flag_and_missing_slash(site_dir, tmp_path):
    srv = serve(tmp_path / "data", ["--site", site_dir, "--site-base-url", "/book"])
    try:
        assert "INTRO-PAGE" in srv.get("/book/docs/intro").text
        assert srv.get("/book", allow_redirects=False).headers["Location"] == "/book/"
    finally:
        assert srv.stop() == 0


# ---------------------------------------------------------- configuration and CLI

def test_site_dir_from_the_environment(site_dir, tmp_path):
    srv = serve(tmp_path / "data", env={"BOOKD_SITE_DIR": str(site_dir)})
    try:
        assert "INTRO-PAGE" in srv.get("/docs/intro").text
        rec = [x for x in srv.log_records() if x.get("msg") == "listening"]
        assert rec and rec[0].get("site") == str(site_dir)
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("value", ["my-book/", "/a/../b/", "/a//b/", "/.hidden/", "/a?b"])
def test_bad_base_url_is_refused(tmp_path, value):
    p = run_bookd(["serve"], data_dir=tmp_path, env={"BOOKD_SITE_BASE_URL": value,
                                                    "BOOKD_PORT": str(free_port())}, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "BOOKD_SITE_BASE_URL" in p.stderr


def test_missing_site_dir_fails_at_start(tmp_path):
    missing = tmp_path / "no-such-build"
    p = run_bookd(["serve", "--site", missing], data_dir=tmp_path,
                  env={"BOOKD_PORT": str(free_port())}, timeout=10)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert str(missing) in p.stderr


@pytest.mark.parametrize("args", [["--sites", "x"], ["extra"], ["--site"]])
def test_serve_refuses_unknown_arguments(tmp_path, args):
    p = run_bookd(["serve", *args], data_dir=tmp_path, env={"BOOKD_PORT": str(free_port())}, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stderr.strip()


def test_help_and_config_mention_the_site(tmp_path):
    p = run_bookd(["--help"])
    assert "--site" in p.stdout and "BOOKD_SITE_DIR" in p.stdout and "BOOKD_SITE_BASE_URL" in p.stdout
    p = run_bookd(["config"], data_dir=tmp_path)
    assert "BOOKD_SITE_DIR=" in p.stdout and "BOOKD_SITE_BASE_URL=/" in p.stdout


def test_a_rebuilt_site_is_served(tmp_path):
    """`npm run build` removes build/ and writes a new one while bookd runs."""
    site_dir = make_site(tmp_path)
    srv = serve(tmp_path / "data", ["--site", site_dir])
    try:
        assert "HOME-PAGE" in srv.get("/").text
        site_dir.rename(tmp_path / "old-build")
        subprocess.run(["rm", "-rf", str(tmp_path / "old-build")], check=True)
        (site_dir / "docs" / "new").mkdir(parents=True)
        (site_dir / "docs" / "new" / "index.html").write_text("NEW-PAGE")
        (site_dir / "index.html").write_text("NEW-HOME")
        assert "NEW-PAGE" in srv.get("/docs/new").text
        assert "NEW-HOME" in srv.get("/").text
    finally:
        assert srv.stop() == 0
