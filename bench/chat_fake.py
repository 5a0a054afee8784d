"""bench/chat.sh's language model: an instant fake of the OpenAI chat
completions API (POST /v1/chat/completions) that records, per request, when
the request reached it and when it sent its first and last chunk. Standard
library only; one thread, non-blocking sockets on an epoll loop (bookd's
libcurl opens one connection per model call, so this accepts hundreds of
connections a second without a thread each).

Usage:
  python3 bench/chat_fake.py PORT [CHUNKS [CHUNK_DELAY_MS]]

Answers
  * streamed (body "stream": true): 200 text/event-stream, the fixed ANSWER in
    CHUNKS `data: {"choices":[{"delta":{"content":..}}]}` events (default 4),
    each written with its own send() (TCP_NODELAY), then a usage chunk and
    `data: [DONE]`, then the connection is closed. CHUNK_DELAY_MS (default 0
    = instant) waits that long before each delta: a provider that takes time.
  * not streamed: the whole answer as one JSON body (after CHUNKS x
    CHUNK_DELAY_MS).
  * GET /health: 200 (for the script's wait loop).
  * GET /config?chunks=N&delay_ms=M: changes CHUNKS and CHUNK_DELAY_MS.
  * GET /records: the records (JSON), which are then forgotten.

Records are keyed by the id in the marker `bench-id:ID` of the request (the
question the client asked contains it, and bookd passes the question on
verbatim as the last user message). Times, in ns:
  req_k   when the last bytes of the request reached the fake's socket: the
          kernel's receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME); the
          user-space time if the kernel gave none
  first   just before the send() of the first delta (monotonic and realtime)
  last    just after the send() of the last bytes, before close (both clocks)
The provider's own time is last - req_k (realtime): parsing, the delays and
the writes; how long the fake took to get to a request it had already
received counts as the provider's, not bookd's.
"""
import heapq
import json
import re
import selectors
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
CMSG_LEN = socket.CMSG_SPACE(16)
ID_RE = re.compile(rb"bench-id:([A-Za-z0-9_-]{1,64})")
ANSWER = ("The zero moment point is the point on the ground where the net moment of gravity and "
          "inertia has no horizontal component [1]. A walking robot keeps it inside its support "
          "polygon [2].")
MAX_REQUEST = 4 << 20


def chunk_event(piece):
    return ("data: " + json.dumps({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                                   "choices": [{"index": 0, "delta": {"content": piece}}]},
                                  separators=(",", ":")) + "\n\n").encode()


def split(text, n):
    n = max(1, min(n, len(text)))
    size, rem = divmod(len(text), n)
    out, at = [], 0
    for i in range(n):
        k = size + (1 if i < rem else 0)
        out.append(text[at:at + k])
        at += k
    return out


class Fake:
    def __init__(self, port, chunks, delay_ms):
        self.sel = selectors.DefaultSelector()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(1024)
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.configure(chunks, delay_ms)
        self.head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Connection: close\r\n\r\n")
        self.tail = (b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[],'
                     b'"usage":{"prompt_tokens":900,"completion_tokens":40,"total_tokens":940}}\n\n'
                     b"data: [DONE]\n\n")
        body = json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": ANSWER}}],
                           "usage": {"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940}},
                          separators=(",", ":")).encode()
        self.whole = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.records = {}
        self.unmatched = 0
        self.timers = []  # (due_ns monotonic, seq, conn)
        self.seq = 0

    def configure(self, chunks, delay_ms):
        self.chunks = max(1, min(int(chunks), 100))
        self.delay_ms = max(0.0, min(float(delay_ms), 10000.0))
        self.delay_ns = int(self.delay_ms * 1e6)
        self.deltas = [chunk_event(p) for p in split(ANSWER, self.chunks)]

    # ---- sockets ------------------------------------------------------------------
    def accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            conn = {"s": s, "buf": bytearray(), "k": 0, "continued": False}
            self.sel.register(s, selectors.EVENT_READ, conn)

    def close(self, conn):
        try:
            self.sel.unregister(conn["s"])
        except (KeyError, ValueError):
            pass
        conn["s"].close()

    def send(self, conn, data):
        """Small writes into a fresh socket: they fit; else block for the rest."""
        s = conn["s"]
        try:
            n = s.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n < len(data):
            s.setblocking(True)
            s.sendall(data[n:])
            s.setblocking(False)

    def readable(self, conn):
        s = conn["s"]
        try:
            data, anc, _, _ = s.recvmsg(65536, CMSG_LEN)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        if not data:
            self.close(conn)
            return
        k = 0
        for level, typ, d in anc:
            if level == socket.SOL_SOCKET and typ == SCM_TIMESTAMPNS and len(d) >= 16:
                sec, ns = struct.unpack("qq", d[:16])
                k = sec * 1000000000 + ns
        conn["k"] = k or time.time_ns()
        buf = conn["buf"]
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_REQUEST:
                self.close(conn)
            return
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        method, path = (head[0].split(" ") + ["", ""])[:2]
        length, expect = 0, False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip() or 0)
            elif name == "expect" and "100-continue" in value.lower():
                expect = True
        if len(buf) < end + 4 + length:
            if expect and not conn["continued"]:
                conn["continued"] = True
                self.send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self.sel.unregister(s)
        body = bytes(buf[end + 4:end + 4 + length])
        try:
            self.request(conn, method, path, body)
        except OSError:  # bookd went away
            if conn.get("rec") is not None:
                conn["rec"]["failed"] = True
            conn["s"].close()

    # ---- requests -----------------------------------------------------------------
    def simple(self, conn, status, ctype, body):
        self.send(conn, b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                  % (status, ctype, len(body)) + body)
        self.close(conn)

    def request(self, conn, method, path, body):
        if method == "GET" and path == "/health":
            self.simple(conn, 200, b"text/plain", b"ok\n")
            return
        if method == "GET" and path == "/records":
            out = json.dumps({"records": self.records, "unmatched": self.unmatched}).encode()
            self.records, self.unmatched = {}, 0
            self.simple(conn, 200, b"application/json", out)
            return
        if method == "GET" and path.startswith("/config?"):
            q = dict(kv.partition("=")[::2] for kv in path.split("?", 1)[1].split("&"))
            try:
                self.configure(q.get("chunks", self.chunks), q.get("delay_ms", self.delay_ms))
            except ValueError:
                self.simple(conn, 400, b"text/plain", b"chunks and delay_ms must be numbers\n")
                return
            self.simple(conn, 200, b"application/json",
                        json.dumps({"chunks": self.chunks, "delay_ms": self.delay_ms}).encode())
            return
        if method != "POST" or path != "/v1/chat/completions":
            self.simple(conn, 404, b"application/json", b'{"error":{"message":"unknown path"}}')
            return
        try:
            req = json.loads(body)
            msgs = req.get("messages") or []
            last = (msgs[-1].get("content") or "") if msgs else ""
            stream = bool(req.get("stream"))
        except (ValueError, AttributeError):
            self.simple(conn, 400, b"application/json", b'{"error":{"message":"bad JSON"}}')
            return
        m = ID_RE.search(last.encode())
        rec = None
        if m:
            rec = {"stream": stream, "req_k": conn["k"]}
            self.records[m.group(1).decode()] = rec
        else:
            self.unmatched += 1
        conn["rec"] = rec
        conn["stream"], conn["deltas"], conn["delay"] = stream, self.deltas, self.delay_ns
        conn["next"] = 0
        if not stream:
            if conn["delay"]:  # the whole answer after as long as its deltas would take
                self.later(conn, conn["delay"] * len(conn["deltas"]))
            else:
                self.step(conn)
            return
        self.send(conn, self.head)
        if conn["delay"]:
            self.later(conn, conn["delay"])
        else:
            while conn["next"] is not None:
                self.step(conn)

    def stamp(self, rec, name):
        if rec is not None:
            rec[name + "_mono"] = time.monotonic_ns()
            rec[name + "_rt"] = time.time_ns()

    def later(self, conn, ns):
        self.seq += 1
        heapq.heappush(self.timers, (time.monotonic_ns() + ns, self.seq, conn))

    def step(self, conn):
        """Writes the next delta (the tail after the last), or the whole
        answer, then closes."""
        i, rec = conn["next"], conn["rec"]
        try:
            if not conn["stream"]:
                self.stamp(rec, "first")
                self.send(conn, self.whole)
                self.stamp(rec, "last")
                conn["next"] = None
                conn["s"].close()
                return
            if i == 0:
                self.stamp(rec, "first")
            self.send(conn, conn["deltas"][i])
            if i + 1 < len(conn["deltas"]):
                conn["next"] = i + 1
                if conn["delay"]:
                    self.later(conn, conn["delay"])
                return
            self.send(conn, self.tail)
            self.stamp(rec, "last")
        except OSError:
            if rec is not None:
                rec["failed"] = True
        conn["next"] = None
        conn["s"].close()

    # ---- the loop -------------------------------------------------------------------
    def run(self):
        while True:
            timeout = None
            if self.timers:
                timeout = max(0.0, (self.timers[0][0] - time.monotonic_ns()) / 1e9)
            for key, _ in self.sel.select(timeout):
                if key.data is None:
                    self.accept()
                else:
                    self.readable(key.data)
            now = time.monotonic_ns()
            while self.timers and self.timers[0][0] <= now:
                _, _, conn = heapq.heappop(self.timers)
                self.step(conn)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    chunks = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    delay_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    try:
        fake = Fake(port, chunks, delay_ms)
    except OSError as exc:
        print(f"bench: chat_fake: cannot listen on 127.0.0.1:{port}: {exc}", file=sys.stderr)
        return 1
    try:
        fake.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
