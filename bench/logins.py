"""bench/run.sh's login burst: CONCURRENCY clients POST /api/v1/auth/login
back to back (each waits for its answer, then asks again) for SECONDS, so
that the password-hashing threads (argon2id) stay busy while wrk reads a
chapter. Standard library only (http.client, threads, keep-alive).

Usage:
  python3 bench/logins.py register URL EMAIL
  python3 bench/logins.py burst URL EMAIL SECONDS CONCURRENCY OUT_JSON

The password comes from the environment (BENCH_LOGIN_PASSWORD), not argv.
`burst` writes the counts, the rate of successful logins and their latency
to OUT_JSON; exit status 1 if any answer was not 200 (the server must be
started with login limits high enough not to interfere).
"""
import http.client
import json
import os
import sys
import threading
import time
from urllib.parse import urlsplit

PASSWORD = os.environ.get("BENCH_LOGIN_PASSWORD", "")


def connect(url):
    u = urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def post(conn, path, body):
    conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def register(url, email):
    status, body = post(connect(url), "/api/v1/auth/register", {"email": email, "password": PASSWORD})
    if status != 201:
        print(f"bench: register {email}: {status} {body[:200]!r}", file=sys.stderr)
        return 1
    return 0


def burst(url, email, seconds, concurrency, out):
    lock = threading.Lock()
    statuses, latencies, errors = {}, [], []
    deadline = [0.0]

    def client():
        conn = connect(url)
        while time.monotonic() < deadline[0]:
            t0 = time.monotonic()
            try:
                status, _ = post(conn, "/api/v1/auth/login", {"email": email, "password": PASSWORD})
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                conn = connect(url)
                with lock:
                    errors.append(repr(exc))
                continue
            dt = time.monotonic() - t0
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(dt)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.monotonic()
    deadline[0] = t0 + seconds
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0  # includes the last logins, answered after the deadline
    latencies.sort()
    ok = statuses.get(200, 0)
    res = {"concurrency": concurrency, "seconds": round(elapsed, 3), "requests": sum(statuses.values()),
           "ok": ok, "statuses": {str(k): v for k, v in sorted(statuses.items())}, "errors": len(errors),
           "logins_per_sec": round(ok / elapsed, 1) if elapsed > 0 else None,
           "latency_p50_ms": round(1000 * pct(latencies, 50), 1) if latencies else None,
           "latency_p99_ms": round(1000 * pct(latencies, 99), 1) if latencies else None}
    with open(out, "w") as f:
        json.dump(res, f)
    if errors or ok != res["requests"] or not ok:
        print(f"bench: login burst: statuses {res['statuses']}, {len(errors)} errors "
              f"{errors[:3]}", file=sys.stderr)
        return 1
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "register":
        return register(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 7 and sys.argv[1] == "burst":
        return burst(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
