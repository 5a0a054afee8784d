"""End to end in a real browser: Debian's Chromium, driven by playwright-core
(npm, tests/browser/), loads a page with two chat widgets written the way
existing book sites write them (tests/browser/site/widget.html): one posts
JSON to /api/chat, the other reads Server-Sent Events from /api/v1/chat.
The page is served twice: by `bookd serve` itself (BOOKD_SITE_DIR, same
origin) and by another server on another port (cross-origin: CORS with
credentials, and a preflight for the widget's X-User-ID header). In both,
the answers must be rendered and the widget's own session id kept."""
import functools
import json
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import SLOW, free_port
from test_chat_common import chat_server

BROWSER_DIR = Path(__file__).resolve().parent.parent / "browser"
SITE_DIR = BROWSER_DIR / "site"


def _other_origin():
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(SITE_DIR))
    handler.log_message = lambda *a: None
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def test_widgets_answer_in_a_real_browser(tmp_path):
    assert (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(), \
        "playwright-core is not installed: run `make deps` (scripts/deps.sh)"
    other = _other_origin()
    origin = f"http://127.0.0.1:{other.server_address[1]}"
    try:
        srv, _book = chat_server(tmp_path / "data", env={"BOOKD_SITE_DIR": str(SITE_DIR),
                                                         "BOOKD_CORS_ORIGINS": origin})
        api = f"http://127.0.0.1:{srv.port}"
        pages = [f"{api}/widget.html", f"{origin}/widget.html?api={api}"]
        p = subprocess.run(["node", str(BROWSER_DIR / "widgets.mjs"), *pages], capture_output=True,
                           text=True, timeout=120 * SLOW, cwd=str(BROWSER_DIR))
        assert p.returncode == 0, f"browser run failed:\n{p.stdout}\n{p.stderr}\n{srv.log_tail()}"
        results = json.loads(p.stdout.strip().splitlines()[-1])
        assert len(results) == 2, results
        for r in results:
            where = r["url"]
            assert not r["failed"], (where, r["failed"])
            for k in ("json1", "json2", "sse1", "sse2"):
                text = r[k]["text"]
                assert text and not text.startswith(("HTTP", "error")), (where, k, text)
                assert "moment" in text.lower(), (where, k, text)
                # the widget's own id is the conversation's, turn after turn
                assert r[k]["session"] == r["minted"], (where, k, r[k], r["minted"])
            assert r["cites"] >= 1, (where, r)
        assert srv.stop() == 0, srv.log_tail()
    finally:
        other.shutdown()
