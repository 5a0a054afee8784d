"""bench/jobs.sh's client: queue test.noop jobs as fast as it can, wait
until the queue is empty, then read every job back (GET /api/v1/jobs, every
page) and work out the rates from the jobs' own timestamps. Standard library
only (http.client, threads, one keep-alive connection per thread).

Usage:
  python3 bench/jobs.py live  URL N CONCURRENCY TIMEOUT_S OUT_JSON
      queue N jobs while the server's workers run; wait until all are done
  python3 bench/jobs.py queue URL N CONCURRENCY OUT_JSON
      only queue N jobs (a server with BOOKD_WORKERS=0); OUT_JSON keeps the ids
  python3 bench/jobs.py drain URL QUEUE_JSON TIMEOUT_S OUT_JSON
      wait until the jobs of QUEUE_JSON are done (a server with workers)

The master key comes from the environment (BENCH_API_KEY), not argv, so it
does not show in `ps`. Prints its figures on stdout and writes them to
OUT_JSON. Exit status 1 when the run is not valid (an unexpected answer, a
job that did not complete, a timeout).
"""
import http.client
import json
import os
import sys
import threading
import time
from datetime import datetime
from urllib.parse import urlsplit

KEY = os.environ.get("BENCH_API_KEY", "")
RETRIES_503 = 50  # a 503 (database busy) is retried after Retry-After; counted


class Client:
    """One keep-alive connection; reconnects once if the server closed it."""

    def __init__(self, url):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port

    def request(self, method, path, body=None):
        headers = {"X-API-Key": KEY}
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn = getattr(self, "conn", None) or http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.conn = conn
            try:
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    self.conn = None
                return r.status, r.getheader("Retry-After"), data
            except (http.client.HTTPException, OSError):
                conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def submit_all(url, n, concurrency):
    """Queue n jobs from `concurrency` threads; returns (ids, stats)."""
    lock = threading.Lock()
    next_i = [0]
    ids, unexpected, retried, latencies = [], [], [0], []

    def worker():
        c = Client(url)
        while True:
            with lock:
                if next_i[0] >= n:
                    return
                next_i[0] += 1
            for _ in range(RETRIES_503):
                t0 = time.perf_counter()
                try:
                    status, retry_after, body = c.request("POST", "/api/v1/jobs", {"type": "test.noop"})
                except (http.client.HTTPException, OSError) as exc:
                    with lock:
                        unexpected.append(f"POST /api/v1/jobs: {exc!r}")
                    break
                dt = time.perf_counter() - t0
                if status == 503:
                    with lock:
                        retried[0] += 1
                    time.sleep(float(retry_after or 1) / 10)  # a tenth of the hint: measure, do not idle
                    continue
                with lock:
                    latencies.append(dt)
                    if status == 202:
                        ids.append(json.loads(body)["job_id"])
                    else:
                        unexpected.append(f"POST /api/v1/jobs: {status} {body[:200]!r}")
                break
            else:
                with lock:
                    unexpected.append(f"POST /api/v1/jobs: still 503 after {RETRIES_503} tries")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    latencies.sort()
    return ids, {"started": t0, "seconds": elapsed, "retried_503": retried[0], "unexpected": unexpected,
                 "latency_p50_ms": 1000 * pct(latencies, 50) if latencies else None,
                 "latency_p99_ms": 1000 * pct(latencies, 99) if latencies else None}


def count_open(c):
    """Whether any job is still pending or processing."""
    for status in ("pending", "processing"):
        code, _, body = c.request("GET", f"/api/v1/jobs?status={status}&limit=1")
        if code != 200:
            raise RuntimeError(f"GET /api/v1/jobs?status={status}: {code} {body[:200]!r}")
        if json.loads(body)["items"]:
            return True
    return False


def all_jobs(c):
    items, cursor, pages = [], None, 0
    while True:
        path = "/api/v1/jobs?limit=100" + (f"&cursor={cursor}" if cursor else "")
        code, _, body = c.request("GET", path)
        if code != 200:
            raise RuntimeError(f"GET {path}: {code} {body[:200]!r}")
        page = json.loads(body)
        items += page["items"]
        cursor, pages = page["next_cursor"], pages + 1
        if not cursor:
            return items, pages


def wait_empty(c, timeout, problems):
    """Polls until no job is pending or processing; returns the number of polls."""
    t0, polls = time.time(), 0
    while True:
        polls += 1
        if not count_open(c):
            return polls
        if time.time() - t0 > timeout:
            problems.append(f"jobs still pending or processing after {timeout:.0f} s")
            return polls
        time.sleep(0.02)


def read_back(c, ids, problems):
    """The queued jobs as the server lists them (every page), and a count by status."""
    jobs, pages = all_jobs(c)
    idset = set(ids)
    mine = [j for j in jobs if j["id"] in idset]
    by_status = {}
    for j in mine:
        by_status[j["status"]] = by_status.get(j["status"], 0) + 1
    if len(mine) != len(ids):
        problems.append(f"{len(ids) - len(mine)} queued jobs are missing from GET /api/v1/jobs")
    if by_status.get("completed", 0) != len(ids):
        problems.append(f"not every job completed: {by_status}")
    return [j for j in mine if j["status"] == "completed"], by_status, pages


def completion(done):
    """Rates from the jobs' own timestamps: first claim to last completion."""
    started = min(ts(j["started_at"]) for j in done)
    finished = max(ts(j["finished_at"]) for j in done)
    window = finished - started
    wait = sorted(ts(j["started_at"]) - ts(j["created_at"]) for j in done)
    total = sorted(ts(j["finished_at"]) - ts(j["created_at"]) for j in done)
    return {
        "seconds": round(window, 3),
        "jobs_per_sec": round(len(done) / window, 1) if window > 0 else None,
        "queue_wait_p50_ms": round(1000 * pct(wait, 50), 1),
        "queue_wait_p99_ms": round(1000 * pct(wait, 99), 1),
        "created_to_finished_p50_ms": round(1000 * pct(total, 50), 1),
        "created_to_finished_p99_ms": round(1000 * pct(total, 99), 1),
        "completed_after_retry": sum(1 for j in done if j["attempts"] != 1),
    }, started, finished


def submit_summary(ids, sub):
    return {"jobs_queued": len(ids), "seconds": round(sub["seconds"], 3),
            "jobs_per_sec": round(len(ids) / sub["seconds"], 1) if sub["seconds"] else None,
            "latency_p50_ms": round(sub["latency_p50_ms"], 3) if sub["latency_p50_ms"] else None,
            "latency_p99_ms": round(sub["latency_p99_ms"], 3) if sub["latency_p99_ms"] else None,
            "retried_503": sub["retried_503"]}


def submitted(url, n, concurrency, problems):
    ids, sub = submit_all(url, n, concurrency)
    problems += sub["unexpected"][:5]
    if len(sub["unexpected"]) > 5:
        problems.append(f"... and {len(sub['unexpected']) - 5} more unexpected answers")
    return ids, sub


def row(label, text):
    print(f"  {label:32} {text}")


def cmd_live(url, n, concurrency, timeout):
    """Queue n jobs while the workers run, wait until all are done."""
    problems = []
    ids, sub = submitted(url, n, concurrency, problems)
    c = Client(url)
    polls = wait_empty(c, timeout, problems)
    done, by_status, pages = read_back(c, ids, problems)
    res = {"jobs_requested": n, "submit_concurrency": concurrency, "submit": submit_summary(ids, sub),
           "jobs_by_status": by_status, "polls_until_empty": polls, "list_pages_read": pages}
    s = res["submit"]
    row("submit rate", f"{s['jobs_per_sec']} jobs/s   ({len(ids)} jobs in {s['seconds']} s; POST p50 "
        f"{s['latency_p50_ms']} ms, p99 {s['latency_p99_ms']} ms; 503s retried: {s['retried_503']})")
    if done:
        cpl, _, finished = completion(done)
        res["completion"] = cpl
        res["total_seconds"] = round(finished - sub["started"], 3)
        row("completion throughput", f"{cpl['jobs_per_sec']} jobs/s   (first claim to last completion: "
            f"{cpl['seconds']} s; bounded by the submit rate when the workers keep up)")
        row("queue wait p50 / p99", f"{cpl['queue_wait_p50_ms']} / {cpl['queue_wait_p99_ms']} ms (created -> started)")
        row("total time", f"{res['total_seconds']} s   (first submit to last completion)")
    return res, problems


def cmd_queue(url, n, concurrency):
    """Queue n jobs on a server that runs none (BOOKD_WORKERS=0)."""
    problems = []
    ids, sub = submitted(url, n, concurrency, problems)
    res = {"jobs_requested": n, "submit_concurrency": concurrency, "submit": submit_summary(ids, sub),
           "ids": ids}
    s = res["submit"]
    row("submit rate, no workers", f"{s['jobs_per_sec']} jobs/s   ({len(ids)} jobs in {s['seconds']} s; "
        f"POST p50 {s['latency_p50_ms']} ms, p99 {s['latency_p99_ms']} ms; 503s retried: {s['retried_503']})")
    return res, problems


def cmd_drain(url, queued_json, timeout):
    """Wait until the workers have worked off the queue made by `queue`."""
    problems = []
    with open(queued_json) as f:
        queued = json.load(f)
    ids = queued["ids"]
    c = Client(url)
    t0 = time.time()
    polls = wait_empty(c, timeout, problems)
    client_s = time.time() - t0
    done, by_status, pages = read_back(c, ids, problems)
    res = {"jobs": len(ids), "submit_no_workers": queued["submit"], "jobs_by_status": by_status,
           "polls_until_empty": polls, "list_pages_read": pages,
           "client_seconds_until_empty": round(client_s, 3)}
    if done:
        cpl, _, _ = completion(done)
        res["completion"] = cpl
        row("completion throughput (backlog)", f"{cpl['jobs_per_sec']} jobs/s   ({len(done)} jobs, first claim "
            f"to last completion: {cpl['seconds']} s)")
    return res, problems


def main():
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "live":
        res, problems = cmd_live(url, int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "queue":
        res, problems = cmd_queue(url, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "drain":
        res, problems = cmd_drain(url, sys.argv[3], float(sys.argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    res["valid"] = not problems
    res["problems"] = "; ".join(problems)
    with open(sys.argv[-1], "w") as f:
        json.dump(res, f, indent=2)
    if problems:
        print(f"bench: jobs: {mode}: " + res["problems"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
