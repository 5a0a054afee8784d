"""bench/chat.sh's client: CLIENTS threads, each with its own keep-alive
connection to bookd, POST /api/v1/chatbot/query back to back (each waits for
its whole answer, then asks again) for WARMUP + DURATION seconds; then the
records of the fake model (bench/chat_fake.py, GET /records) are joined to
the client's own, by the id each question carries (`bench-id:ID`).

Usage:
  python3 bench/chat_client.py MODE BOOKD_URL FAKE_URL CLIENTS WARMUP_S DURATION_S OUT_JSON
    MODE  stream: `Accept: text/event-stream`, the answer read as Server-Sent
                  Events, each with the time it arrived
          whole:  the answer as one JSON document

  python3 bench/chat_client.py report OUT_JSON META_JSON DIR KEY...
    the phases (DIR/KEY.json) side by side, the issue's targets; META_JSON +
    the phases + the verdicts -> OUT_JSON (bench/out/chat.json)

The master key comes from the environment (BENCH_API_KEY), not argv.
HTTP/1.1 is spoken over plain sockets (chunked bodies decoded here) so that
every recvmsg() can also return the kernel's receive timestamp
(SO_TIMESTAMPNS): the "kernel" figures below are free of the time this
Python client took to get around to reading (50 threads share one GIL, and
the machine's cores with bookd and the fake).

Per answer (ms; only answers asked after the warm-up count):
  total        client: just before sending the request -> the last byte of the
               response read (time.monotonic_ns)
  provider     the fake's own time: its request arrived -> its last byte sent
  added        total - provider: what bookd adds (auth, session, retrieval,
               prompt, the model call's connection, citations, storing the
               exchange, the response). added_kernel uses the kernel's receive
               timestamp of the last bytes instead of the client's read time
  first_token  (stream) the client read the first `delta` event -> minus the
               fake's send of its first chunk (the same clock on the same
               machine: time.monotonic_ns in both processes);
               first_token_kernel: the kernel's receive timestamp of the
               bytes that held it -> minus the fake's send (CLOCK_REALTIME)
  before/after_model  request sent -> the request reached the fake; the
               fake's last byte -> the response's last bytes reached the client
Requests/s counts answers completed within the measured DURATION_S.
Errors: any answer other than 200 with a `done` event (stream) or an answer
(whole) from the fake model ("provider":"fake"; bookd falls back to an
extractive answer when the model fails), a socket error, or an answer the
fake has no record of. Exit status 1 if there was any error.
"""
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
from urllib.parse import urlsplit

KEY = os.environ.get("BENCH_API_KEY", "")
QUERY = "/api/v1/chatbot/query"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
CMSG_LEN = socket.CMSG_SPACE(16)
QUESTION = "What is the zero moment point and why does it matter for walking robots?"


class Closed(Exception):
    pass


class Reader:
    """Buffered reads from a socket; after each recvmsg() remembers when the
    bytes were read (monotonic and realtime) and when the kernel received
    them (realtime, SO_TIMESTAMPNS: the newest segment of the read)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = bytearray()
        self.pos = 0
        self.mono = self.rt = self.k = 0

    def fill(self):
        data, anc, _, _ = self.s.recvmsg(65536, CMSG_LEN)
        mono, rt = time.monotonic_ns(), time.time_ns()
        if not data:
            raise Closed("bookd closed the connection")
        k = 0
        for level, typ, d in anc:
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(d) >= 16:
                sec, ns = struct.unpack("qq", d[:16])
                k = sec * 1000000000 + ns
        self.mono, self.rt, self.k = mono, rt, k or rt
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return out
            if len(self.buf) - self.pos > 65536:
                raise ValueError("line too long")
            self.fill()

    def exact(self, n):
        while len(self.buf) - self.pos < n:
            self.fill()
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def stamps(self):
        return self.mono, self.rt, self.k


def read_head(rd):
    status_line = rd.line()
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
    status = int(parts[1])
    headers = {}
    while True:
        line = rd.line()
        if not line:
            break
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return status, headers


def read_body(rd, headers, on_data=None):
    """The whole body (chunked or Content-Length); on_data(bytes) per piece."""
    out = bytearray()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(rd.line().split(b";")[0], 16)
            if size == 0:
                while rd.line():  # trailers
                    pass
                break
            data = rd.exact(size)
            if rd.exact(2) != b"\r\n":
                raise ValueError("bad chunk framing")
            if on_data:
                on_data(data)
            else:
                out += data
    else:
        data = rd.exact(int(headers.get("content-length", "0")))
        if on_data:
            on_data(data)
        else:
            out += data
    return bytes(out)


class SSE:
    """Server-Sent Events from the decoded body; the first `delta`'s stamps."""

    def __init__(self, rd):
        self.rd = rd
        self.buf = bytearray()
        self.first = None
        self.done = None
        self.error = None
        self.deltas = 0

    def feed(self, data):
        self.buf += data
        while True:
            i = self.buf.find(b"\n\n")
            if i < 0:
                return
            ev = bytes(self.buf[:i])
            del self.buf[:i + 2]
            name, payload = b"message", b""
            for line in ev.split(b"\n"):
                if line.startswith(b"event:"):
                    name = line[6:].strip()
                elif line.startswith(b"data:"):
                    payload = line[5:].strip()
            if name == b"delta":
                self.deltas += 1
                if self.first is None:
                    self.first = self.rd.stamps()
            elif name == b"done":
                self.done = payload
            elif name == b"error":
                self.error = payload


def connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.settimeout(60)
    s.connect((host, port))
    return s


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def summary(ns_values):
    v = sorted(x / 1e6 for x in ns_values)
    if not v:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    r3 = lambda x: round(x, 3)  # noqa: E731
    return {"n": len(v), "p50": r3(pct(v, 50)), "p90": r3(pct(v, 90)), "p99": r3(pct(v, 99)),
            "max": r3(v[-1]), "mean": r3(sum(v) / len(v))}


def run(mode, bookd_url, fake_url, clients, warmup, duration, out_path):
    u = urlsplit(bookd_url)
    host, port = u.hostname, u.port
    stream = mode == "stream"
    lock = threading.Lock()
    results = []  # (id, t0_mono, t0_rt, end_mono, end_rt, end_k, first_mono, first_rt, first_k)
    errors = {}
    t_start = time.monotonic_ns()
    warm_end = t_start + int(warmup * 1e9)
    deadline = warm_end + int(duration * 1e9)
    tag = "s" if stream else "w"

    def error(kind):
        with lock:
            errors[kind] = errors.get(kind, 0) + 1

    def client(w):
        sock, rd, seq, mine = None, None, 0, []
        while time.monotonic_ns() < deadline:
            seq += 1
            rid = f"{tag}{w}x{seq}"
            body = json.dumps({"question": f"{QUESTION} bench-id:{rid}"}).encode()
            req = (f"POST {QUERY} HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {KEY}\r\n"
                   f"Content-Type: application/json\r\n"
                   + ("Accept: text/event-stream\r\n" if stream else "")
                   + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            try:
                if sock is None:
                    sock = connect(host, port)
                    rd = Reader(sock)
                t0m, t0r = time.monotonic_ns(), time.time_ns()
                sock.sendall(req)
                status, headers = read_head(rd)
                if stream and status == 200:
                    sse = SSE(rd)
                    read_body(rd, headers, sse.feed)
                    end = rd.stamps()
                    if sse.error is not None:
                        error("error event: " + sse.error.decode("utf-8", "replace")[:120])
                    elif sse.done is None:
                        error("stream ended without a done event")
                    elif b'"provider":"fake"' not in sse.done:
                        error("answered without the model (extractive fallback)")
                    elif sse.first is None:
                        error("no delta event")
                    else:
                        mine.append((rid, t0m, t0r) + end + sse.first)
                else:
                    data = read_body(rd, headers)
                    end = rd.stamps()
                    if status != 200:
                        error(f"status {status}: {data[:120].decode('utf-8', 'replace')}")
                    elif b'"provider":"fake"' not in data:
                        error("answered without the model (extractive fallback)")
                    else:
                        mine.append((rid, t0m, t0r) + end + (0, 0, 0))
                if headers.get("connection", "").lower() == "close":
                    sock.close()
                    sock = None
            except (OSError, Closed, ValueError) as exc:
                error(f"{type(exc).__name__}: {exc}"[:120])
                if sock is not None:
                    sock.close()
                sock = None
        if sock is not None:
            sock.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    fu = urlsplit(fake_url)
    fc = http.client.HTTPConnection(fu.hostname, fu.port, timeout=30)
    fc.request("GET", "/records")
    resp = fc.getresponse()
    fake = json.loads(resp.read())
    fc.close()
    records = fake["records"]

    total, provider, added, added_k, first, first_k, before, after = [], [], [], [], [], [], [], []
    completed_in_window = 0
    no_record = 0
    for (rid, t0m, t0r, em, er, ek, fm, fr, fk) in results:
        if warm_end <= em <= deadline:
            completed_in_window += 1
        if t0m < warm_end:
            continue
        rec = records.get(rid)
        if not rec or "last_rt" not in rec or rec.get("failed"):
            no_record += 1
            continue
        prov = rec["last_rt"] - rec["req_k"]
        total.append(em - t0m)
        provider.append(prov)
        added.append((em - t0m) - prov)
        added_k.append((ek - t0r) - prov)
        before.append(rec["req_k"] - t0r)
        after.append(ek - rec["last_rt"])
        if stream:
            first.append(fm - rec["first_mono"])
            first_k.append(fk - rec["first_rt"])
    if no_record:
        errors["answers the fake has no record of"] = no_record
    nerr = sum(errors.values())
    out = {
        "mode": mode,
        "clients": clients,
        "warmup_s": warmup,
        "duration_s": duration,
        "answers_measured": len(total),
        "requests_per_sec": round(completed_in_window / duration, 2),
        "errors": nerr,
        "error_kinds": errors,
        "model_calls_without_id": fake.get("unmatched", 0),
        "added_latency_ms": summary(added),
        "added_latency_kernel_ms": summary(added_k),
        "total_ms": summary(total),
        "provider_ms": summary(provider),
        "before_model_ms": summary(before),
        "after_model_ms": summary(after),
    }
    if stream:
        out["first_token_ms"] = summary(first)
        out["first_token_kernel_ms"] = summary(first_k)
    with open(out_path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")

    def fmt(s):
        if not s["n"]:
            return "n/a"
        return f"p50 {s['p50']:.3f}  p99 {s['p99']:.3f}  max {s['max']:.3f} ms"

    label = "streamed (SSE)" if stream else "not streamed (JSON)"
    print(f"{label}, {clients} clients: {len(total)} answers measured in {duration:g} s, "
          f"{out['requests_per_sec']:.1f} answers/s, errors {nerr}")
    print(f"  added latency          {fmt(out['added_latency_ms'])}")
    print(f"    kernel-stamped end   {fmt(out['added_latency_kernel_ms'])}")
    if stream:
        print(f"  first token            {fmt(out['first_token_ms'])}")
        print(f"    kernel-stamped       {fmt(out['first_token_kernel_ms'])}")
    print(f"  total                  {fmt(out['total_ms'])}")
    print(f"  provider (fake)        {fmt(out['provider_ms'])}")
    print(f"  before / after model   p99 {out['before_model_ms']['p99']} / {out['after_model_ms']['p99']} ms"
          if total else "  before / after model   n/a")
    for kind, n in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  error x{n}: {kind}", file=sys.stderr)
    return 1 if nerr or not total else 0


PHASES = [  # key, label
    ("stream", "streamed, instant fake"),
    ("whole", "not streamed, instant fake"),
    ("stream_paced", "streamed, paced fake"),
    ("whole_paced", "not streamed, paced fake"),
]
TARGET_ADDED_P99_MS = 5.0
TARGET_FIRST_P99_MS = 2.0


def report(out_path, meta_path, folder, keys):
    """bench/chat.sh's summary: the phases side by side, the issue's targets,
    and bench/out/chat.json (META_JSON's keys, then the phases)."""
    with open(meta_path) as f:
        out = json.load(f)
    phases = {}
    for key in keys:
        try:
            with open(os.path.join(folder, key + ".json")) as f:
                phases[key] = json.load(f)
        except (OSError, ValueError):
            phases[key] = None
    out["phases"] = phases

    def v(d, *keys):
        for k in keys:
            d = d.get(k) if isinstance(d, dict) else None
        return d

    def num(x, w=10):
        return f"{x:>{w}.2f}" if isinstance(x, (int, float)) else f"{'-':>{w}}"

    print(f"{str(out.get('clients')) + ' concurrent chats':<28} {'answers/s':>10} {'added p50':>10} "
          f"{'added p99':>10} {'1st tok p50':>12} {'1st tok p99':>12} {'errors':>7}")
    for key, label in PHASES:
        if key not in phases:
            continue
        d = phases[key] or {}
        print(f"{label:<28} {num(d.get('requests_per_sec'))} {num(v(d, 'added_latency_ms', 'p50'))} "
              f"{num(v(d, 'added_latency_ms', 'p99'))} {num(v(d, 'first_token_ms', 'p50'), 12)} "
              f"{num(v(d, 'first_token_ms', 'p99'), 12)} {d.get('errors', '-'):>7}")
    print("(ms; added = total - the fake's own time; 1st tok = client got the first delta - the fake sent it)")
    targets = {}
    for key in ("stream", "stream_paced"):
        d = phases.get(key)
        if not d:
            continue
        a, ak = v(d, "added_latency_ms", "p99"), v(d, "added_latency_kernel_ms", "p99")
        f1, fk = v(d, "first_token_ms", "p99"), v(d, "first_token_kernel_ms", "p99")
        t = {"added_p99_ms": a, "added_p99_ok": a is not None and a < TARGET_ADDED_P99_MS,
             "added_kernel_p99_ms": ak, "first_token_p99_ms": f1,
             "first_token_p99_ok": f1 is not None and f1 < TARGET_FIRST_P99_MS,
             "first_token_kernel_p99_ms": fk}
        targets[key] = t
        verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
        label = dict(PHASES)[key]
        print(f"target, {label}: added p99 {num(a, 0)} ms (< {TARGET_ADDED_P99_MS:g}: "
              f"{verdict(t['added_p99_ok'])}), first token p99 {num(f1, 0)} ms "
              f"(< {TARGET_FIRST_P99_MS:g}: {verdict(t['first_token_p99_ok'])}); kernel-stamped: "
              f"{num(ak, 0)} / {num(fk, 0)} ms")
    out["target"] = {"added_p99_ms_max": TARGET_ADDED_P99_MS, "first_token_p99_ms_max": TARGET_FIRST_P99_MS,
                     "phases": targets}
    out["valid"] = not out.get("problems") and all(
        d is not None and d.get("errors") == 0 for d in phases.values())
    with open(out_path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    return 0


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "report":
        return report(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    if len(sys.argv) != 8 or sys.argv[1] not in ("stream", "whole"):
        print(__doc__, file=sys.stderr)
        return 2
    sys.setswitchinterval(0.0005)  # a woken reader waits less for the GIL
    mode, bookd_url, fake_url = sys.argv[1:4]
    clients, warmup, duration = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    return run(mode, bookd_url, fake_url, clients, warmup, duration, sys.argv[7])


if __name__ == "__main__":
    sys.exit(main())
