"""A local fake of two language-model APIs, for black-box tests of the chatbot.

    fake = FakeLLM().start()
    env = {"BOOKD_LLM_PROVIDERS": "p1:m1,p2:m2",
           "BOOKD_LLM_P1_URL": fake.url,                     # …/v1
           "BOOKD_LLM_P2_URL": fake.url, "BOOKD_LLM_P2_API": "anthropic"}
    ...
    fake.stop()

Speaks
  * OpenAI chat completions: POST /v1/chat/completions. Non-streamed
    {"choices":[{"message":{"content":..}}],"usage":{..}}; streamed (body
    "stream": true) as SSE `data: {"choices":[{"delta":{"content":".."}}]}`
    lines, a usage chunk, then `data: [DONE]`.
  * Anthropic Messages: POST /v1/messages (x-api-key, anthropic-version).
    Non-streamed {"content":[{"type":"text","text":..}],"usage":{..}};
    streamed as the events message_start, content_block_start,
    content_block_delta…, content_block_stop, message_delta, message_stop.

Behaviour (a dict; every key optional):
    text         the answer (default DEFAULT_ANSWER), or a function of the
                 Record that returns it (answers that depend on the prompt)
    chunks       streamed answers: split the text into this many deltas
    delay        seconds before each streamed delta (and before a whole answer)
    status       an error status to answer instead (500, 429, ...)
    retry_after  with status: a Retry-After header (seconds)
    malformed    True: 200 with a body that is not JSON
    cut_after    streamed answers: close the connection after this many
                 deltas, without the end of the stream
    hang         seconds to wait before answering at all
    usage        (prompt_tokens, completion_tokens); default (11, 7)
    transform    answer a transformation of the last user message instead of
                 `text`: "upper" (everything outside ⟦N⟧ placeholders
                 uppercased), "echo" (as given), "prefix:<s>" (each line of
                 prose — not a heading, list marker or placeholder — starts
                 with <s>)
    break        then break its structure: "drop_placeholder" (the first
                 ⟦N⟧ removed), "dup_placeholder" (the first one twice),
                 "drop_heading" (the first heading's #s removed),
                 "add_fence" (an unclosed ``` appended)

Which behaviour a request gets:
  1. a follow-up rewrite call (system prompt mentions "standalone") answers
     `rewrite_text` (default: the "Last question:" of its prompt), unless the
     model has a failing persistent behaviour (then it fails the same way);
  2. otherwise the first one-shot behaviour queued with push() for that model
     (or for any model), consumed;
  3. else the persistent behaviour of the model (set_model());
  4. else `default`.

Every request is recorded (see Record) in `records`; every mutation is done
under a lock, so tests may script and inspect from any thread.
"""
import json
import re
import select
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_ANSWER = "The ZMP is the point where the net moment vanishes [1]. Also [2]."
DEFAULT_USAGE = (11, 7)


class Record:
    """One request the fake received."""

    def __init__(self, path, headers, raw):
        self.t = time.monotonic()
        self.t_end = None
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = raw
        try:
            self.body = json.loads(raw.decode("utf-8"))
        except ValueError:
            self.body = None
        b = self.body if isinstance(self.body, dict) else {}
        self.wire = "anthropic" if path.endswith("/messages") else "openai"
        self.model = b.get("model")
        self.stream = bool(b.get("stream"))
        msgs = list(b.get("messages") or [])
        if self.wire == "openai" and msgs and msgs[0].get("role") == "system":
            self.system = msgs[0].get("content") or ""
            self.messages = msgs[1:]
        else:
            self.system = b.get("system") or ""
            self.messages = msgs
        self.kind = "rewrite" if "standalone" in self.system else "answer"
        self.status = None          # what the fake answered
        self.behaviour = None
        self.deltas_sent = 0        # streamed deltas written successfully
        self.disconnected = False   # bookd closed the connection before the end
        self.t_disconnect = None
        self.finished = threading.Event()

    def passages(self):
        """{n: text} of the numbered passages in the system prompt."""
        out = {}
        parts = re.split(r"\n\[(\d+)\] \([^\n]*\)\n", self.system)
        # parts = [preamble, n1, text1, n2, text2, ...]
        for i in range(1, len(parts) - 1, 2):
            text = parts[i + 1]
            cut = text.find("\nThe reader selected this text:")
            if cut >= 0:
                text = text[:cut]
            out[int(parts[i])] = text.rstrip("\n")
        return out

    def __repr__(self):
        return (f"<Record {self.wire} {self.model} {self.kind} stream={self.stream} "
                f"status={self.status} deltas={self.deltas_sent} disc={self.disconnected}>")


def split_text(text, n):
    n = max(1, min(int(n), len(text) or 1))
    size, rem = divmod(len(text), n)
    out, at = [], 0
    for i in range(n):
        k = size + (1 if i < rem else 0)
        out.append(text[at:at + k])
        at += k
    return [p for p in out if p] or [text]


PLACEHOLDER_RE = re.compile("(\u27e6[^\u27e7]*\u27e7)")


def transform_text(src, how, breaks=None):
    """The fake's transformation of a section (see `transform` above)."""
    if how == "upper":
        out = "".join(p if PLACEHOLDER_RE.fullmatch(p) else p.upper() for p in PLACEHOLDER_RE.split(src))
    elif how.startswith("prefix:"):
        pre = how[len("prefix:"):]
        lines = []
        for line in src.split("\n"):
            bare = line.lstrip()
            if bare and not bare.startswith(("#", "-", "*", "|", ">", "\u27e6")) and not bare[0].isdigit():
                line = pre + line
            lines.append(line)
        out = "\n".join(lines)
    else:
        out = src
    if breaks == "drop_placeholder":
        out = PLACEHOLDER_RE.sub("", out, count=1)
    elif breaks == "dup_placeholder":
        m = PLACEHOLDER_RE.search(out)
        if m:
            out = out[:m.end()] + m.group(1) + out[m.end():]
    elif breaks == "drop_heading":
        out = re.sub(r"(?m)^#+ ", "", out, count=1)
    elif breaks == "add_fence":
        out = out + "\n```\nbroken\n"
    return out


class FakeLLM:
    def __init__(self):
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.default = {}
        self.models = {}
        self.queue = []            # [(model or None, behaviour)]
        self.rewrite_text = None
        self.records = []
        self.httpd = None
        self.thread = None

    # ---- scripting ------------------------------------------------------------
    def reset(self):
        with self.lock:
            self.default = {}
            self.models = {}
            self.queue = []
            self.rewrite_text = None
            self.records = []

    def set_default(self, **b):
        with self.lock:
            self.default = dict(b)

    def set_model(self, model, **b):
        """Persistent behaviour of one model (no arguments: back to default)."""
        with self.lock:
            if b:
                self.models[model] = dict(b)
            else:
                self.models.pop(model, None)

    def push(self, model=None, **b):
        """A one-shot behaviour for the next answer call (of `model`, or any)."""
        with self.lock:
            self.queue.append((model, dict(b)))

    def set_rewrite(self, text):
        with self.lock:
            self.rewrite_text = text

    def _choose(self, rec):
        with self.lock:
            persistent = self.models.get(rec.model)
            if rec.kind == "rewrite":
                failing = persistent and any(persistent.get(k) for k in
                                             ("status", "malformed", "hang", "cut_after"))
                if failing:
                    return dict(persistent)
                text = self.rewrite_text
                if text is None:
                    m = re.search(r"Last question: (.*)", rec.messages[-1]["content"]
                                  if rec.messages else "")
                    text = m.group(1).strip() if m else "rewritten question"
                return {"text": text}
            for i, (model, b) in enumerate(self.queue):
                if model is None or model == rec.model:
                    del self.queue[i]
                    return dict(b)
            if persistent is not None:
                return dict(persistent)
            return dict(self.default)

    # ---- inspection --------------------------------------------------------------
    def calls(self, model=None, kind=None, wire=None):
        with self.lock:
            return [r for r in self.records
                    if (model is None or r.model == model) and (kind is None or r.kind == kind)
                    and (wire is None or r.wire == wire)]

    def wait_calls(self, n, timeout=5.0, **kw):
        deadline = time.monotonic() + timeout
        while True:
            c = self.calls(**kw)
            if len(c) >= n or time.monotonic() > deadline:
                return c
            time.sleep(0.02)

    # ---- lifecycle -----------------------------------------------------------------
    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection; streams end at close

            def log_message(self, *a):
                pass

            # -- helpers --------------------------------------------------------
            def _peer_closed(self):
                """True when bookd has closed its end (EOF readable)."""
                try:
                    r, _, _ = select.select([self.connection], [], [], 0)
                    if not r:
                        return False
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def _wait(self, seconds, rec):
                """Sleep, noticing bookd going away; False if it did."""
                end = time.monotonic() + seconds
                while True:
                    if self._peer_closed():
                        self._gone(rec)
                        return False
                    left = end - time.monotonic()
                    if left <= 0 or fake._stop.is_set():
                        return True
                    time.sleep(min(left, 0.02))

            def _gone(self, rec):
                with fake.lock:
                    if not rec.disconnected:
                        rec.disconnected = True
                        rec.t_disconnect = time.monotonic()

            def _write(self, data, rec):
                try:
                    self.wfile.write(data)
                    self.wfile.flush()
                    return True
                except OSError:  # BrokenPipe, ConnectionReset
                    self._gone(rec)
                    return False

            def _head(self, status, ctype, rec, length=None, extra=None):
                with fake.lock:
                    rec.status = status
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    if length is not None:
                        self.send_header("Content-Length", str(length))
                    for k, v in (extra or {}).items():
                        self.send_header(k, v)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    return True
                except OSError:
                    self._gone(rec)
                    return False

            def _whole(self, status, body, rec, extra=None, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                if self._head(status, ctype, rec, len(data), extra):
                    self._write(data, rec)

            # -- the request -------------------------------------------------------
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                rec = Record(self.path, dict(self.headers), raw)
                with fake.lock:
                    fake.records.append(rec)
                try:
                    self._serve(rec)
                finally:
                    rec.t_end = time.monotonic()
                    rec.finished.set()
                    self.close_connection = True

            def _serve(self, rec):
                if self.path not in ("/v1/chat/completions", "/v1/messages") or rec.body is None:
                    self._whole(404 if rec.body is not None else 400,
                                {"error": {"message": "unknown path or bad JSON"}}, rec)
                    return
                b = fake._choose(rec)
                with fake.lock:
                    rec.behaviour = b
                if b.get("hang"):
                    if not self._wait(float(b["hang"]), rec):
                        return
                if b.get("status"):
                    extra = {}
                    if b.get("retry_after") is not None:
                        extra["Retry-After"] = str(b["retry_after"])
                    self._whole(int(b["status"]), {"error": {"message": "scripted failure"}}, rec, extra)
                    return
                if b.get("malformed"):
                    self._whole(200, b'{"choices": [{"message": {"content": "trunc', rec)
                    return
                text = b.get("text", DEFAULT_ANSWER)
                if callable(text):
                    text = text(rec)
                if b.get("transform"):
                    src = rec.messages[-1].get("content", "") if rec.messages else ""
                    text = transform_text(src, b["transform"], b.get("break"))
                pt, ct = b.get("usage", DEFAULT_USAGE)
                delay = float(b.get("delay", 0))
                if not rec.stream:
                    if delay and not self._wait(delay, rec):
                        return
                    if rec.wire == "openai":
                        body = {"id": "chatcmpl-fake", "object": "chat.completion", "model": rec.model,
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": text}}],
                                "usage": {"prompt_tokens": pt, "completion_tokens": ct,
                                          "total_tokens": pt + ct}}
                    else:
                        body = {"id": "msg_fake", "type": "message", "role": "assistant",
                                "model": rec.model, "stop_reason": "end_turn",
                                "content": [{"type": "text", "text": text}],
                                "usage": {"input_tokens": pt, "output_tokens": ct}}
                    self._whole(200, body, rec)
                    return
                self._stream(rec, b, text, pt, ct, delay)

            def _stream(self, rec, b, text, pt, ct, delay):
                if not self._head(200, "text/event-stream", rec, extra={"Cache-Control": "no-cache"}):
                    return
                pieces = split_text(text, b.get("chunks", 1))
                cut = b.get("cut_after")
                anth = rec.wire == "anthropic"

                def ev(name, data):
                    if anth:
                        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                    return f"data: {json.dumps(data)}\n\n".encode()

                if anth:
                    if not self._write(ev("message_start", {
                            "type": "message_start",
                            "message": {"id": "msg_fake", "type": "message", "role": "assistant",
                                        "model": rec.model, "content": [],
                                        "usage": {"input_tokens": pt, "output_tokens": 1}}}), rec):
                        return
                    if not self._write(ev("content_block_start", {
                            "type": "content_block_start", "index": 0,
                            "content_block": {"type": "text", "text": ""}}), rec):
                        return
                for i, piece in enumerate(pieces):
                    if cut is not None and i >= cut:
                        return  # the connection closes without the end of the stream
                    if delay and not self._wait(delay, rec):
                        return
                    if anth:
                        data = ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                          "delta": {"type": "text_delta", "text": piece}})
                    else:
                        data = ev(None, {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                         "choices": [{"index": 0, "delta": {"content": piece}}]})
                    if not self._write(data, rec):
                        return
                    with fake.lock:
                        rec.deltas_sent += 1
                # after the last delta: notice bookd leaving if it did
                if self._peer_closed():
                    self._gone(rec)
                    return
                if anth:
                    tail = (ev("content_block_stop", {"type": "content_block_stop", "index": 0}) +
                            ev("message_delta", {"type": "message_delta",
                                                 "delta": {"stop_reason": "end_turn"},
                                                 "usage": {"output_tokens": ct}}) +
                            ev("message_stop", {"type": "message_stop"}))
                else:
                    tail = (ev(None, {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                      "choices": [],
                                      "usage": {"prompt_tokens": pt, "completion_tokens": ct,
                                                "total_tokens": pt + ct}}) +
                            b"data: [DONE]\n\n")
                self._write(tail, rec)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


@contextmanager
def fake_llm_server():
    fake = FakeLLM().start()
    try:
        yield fake
    finally:
        fake.stop()
