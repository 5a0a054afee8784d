"""A local fake of a Better-Auth server's session endpoint, for black-box tests.

    fake = FakeBetterAuth().start()
    token = fake.add_session(user_id="u1", email="a@example.com", name="A")
    env = {"BOOKD_BETTER_AUTH_URL": fake.url}
    ...
    fake.stop()

GET /api/auth/get-session answers as Better-Auth does: 200 with
{"session": {"id", "token", "userId", "expiresAt", ...}, "user": {"id",
"email", "name", "emailVerified", ...}} for a live session, 200 `null`
otherwise (unknown token, bad signature, expired session).

The token is read the way Better-Auth reads it:
  - the session cookie, `better-auth.session_token` (or, with
    secure_cookies=True, only `__Secure-better-auth.session_token`), whose
    value is `token.signature` URL-encoded, the signature being base64
    HMAC-SHA256(secret, token): a wrong signature is no session;
  - with bearer=True (the bearer plugin), `Authorization: Bearer <token>`:
    a bare token is signed by the server itself, a signed one checked.

Controls: hang_seconds (every request sleeps first), fail_status (every
request answers it), stale=True (an expired session is still returned, as a
server with a cookie cache might: the client must check expiresAt).
Counters: calls, log (one record per request: cookie names seen, whether an
Authorization header came).
"""
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

COOKIE = "better-auth.session_token"
SECURE_COOKIE = "__Secure-" + COOKIE


def iso(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{int(ts * 1000) % 1000:03d}Z"


class FakeBetterAuth:
    def __init__(self, secret="better-auth-secret", bearer=True, secure_cookies=False):
        self.secret = secret.encode()
        self.bearer = bearer
        self.secure_cookies = secure_cookies
        self.sessions = {}  # token -> (user dict, expires_at seconds)
        self.hang_seconds = 0.0
        self.fail_status = None
        self.stale = False
        self.calls = 0
        self.log = []
        self.lock = threading.Lock()
        self.httpd = None

    # ---- sessions
    def add_session(self, user_id=None, email=None, name="Reader", ttl=3600.0):
        token = uuid.uuid4().hex  # 32 characters, like Better-Auth's ids
        user = {"id": user_id or uuid.uuid4().hex, "email": email, "name": name,
                "emailVerified": True, "image": None,
                "createdAt": iso(time.time()), "updatedAt": iso(time.time())}
        self.sessions[token] = (user, time.time() + ttl)
        return token

    def sign(self, token):
        mac = hmac.new(self.secret, token.encode(), hashlib.sha256).digest()
        return token + "." + base64.b64encode(mac).decode()

    def cookie_value(self, token):
        """What a browser holds: the signed token, URL-encoded."""
        return quote(self.sign(token), safe="")

    def _unsign(self, value):
        if "." not in value:
            return None
        token, sig = value.rsplit(".", 1)
        return token if hmac.compare_digest(self.sign(token), token + "." + sig) else None

    def _token(self, headers):
        rec = {"cookies": [], "authorization": bool(headers.get("Authorization"))}
        value = None
        auth = headers.get("Authorization", "")
        if self.bearer and auth.startswith("Bearer "):
            t = auth[7:].strip()
            value = t if "." in unquote(t) else self.sign(t)
        raw = headers.get("Cookie")
        if raw:
            jar = SimpleCookie()
            try:
                jar.load(raw)
            except Exception:
                jar = {}
            rec["cookies"] = sorted(jar.keys())
            name = SECURE_COOKIE if self.secure_cookies else COOKIE
            if name in jar and value is None:
                value = jar[name].value
        with self.lock:
            self.log.append(rec)
        if value is None:
            return None
        return self._unsign(unquote(value))

    def answer(self, headers):
        token = self._token(headers)
        hit = self.sessions.get(token) if token else None
        if not hit:
            return None
        user, expires = hit
        if expires <= time.time() and not self.stale:
            return None
        return {
            "session": {"id": "s-" + token[:8], "token": token, "userId": user["id"],
                        "expiresAt": iso(expires), "createdAt": iso(expires - 3600),
                        "updatedAt": iso(time.time()), "ipAddress": "", "userAgent": ""},
            "user": user,
        }

    # ---- server
    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                with fake.lock:
                    fake.calls += 1
                if fake.hang_seconds:
                    time.sleep(fake.hang_seconds)
                if self.path.split("?")[0] != "/api/auth/get-session":
                    self._send(404, {"message": "not found"})
                    return
                if fake.fail_status:
                    self._send(fake.fail_status, {"message": "failure"})
                    return
                self._send(200, fake.answer(self.headers))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
