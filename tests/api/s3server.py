"""A real S3-compatible server on loopback for the storage tests.

Starts @20minutes/s3rver 4.0.4 (tests/s3, installed by scripts/deps.sh; Node
>= 20) on a free port with a fresh directory and one bucket. Unlike plain
s3rver 3.x it checks SigV4 signatures (the Authorization header and presigned
URLs, their expiry included), so it tests bookd's signing. Credentials are
s3rver's fixed pair S3RVER / S3RVER.

    from s3server import s3server   # the fixture
    def test_x(s3server):
        env = s3server.bookd_env()  # BOOKD_STORAGE=s3, BOOKD_S3_* for bookd

Note: s3rver signs a virtual-hosted request's canonical URI as /bucket/key,
unlike AWS (/key), so the server tests use path-style addressing.
"""
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

S3_DIR = Path(__file__).resolve().parents[1] / "s3"
ACCESS_KEY = SECRET_KEY = "S3RVER"
REGION = "us-east-1"


class S3Server:
    def __init__(self, bucket="bookd-test"):
        self.bucket = bucket
        self.proc = None
        self.dir = None
        self.port = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=20):
        module = S3_DIR / "node_modules" / "@20minutes" / "s3rver" / "package.json"
        if not module.is_file():
            pytest.fail(f"{module} is missing: run scripts/deps.sh "
                        "(npm @20minutes/s3rver 4.0.4)")
        if shutil.which("node") is None:
            pytest.fail("node (>= 20) is needed to run the S3 test server")
        self.dir = tempfile.mkdtemp(prefix="bookd-s3rver-")
        args = ["node", "s3rver", "-d", self.dir, "-a", "127.0.0.1", "-p", "0", "-s",
                "--configure-bucket", self.bucket]
        script = ("require('@20minutes/s3rver/lib/cli.js').parseAsync(%s)"
                  ".catch(e=>{console.error(e);process.exit(1)})" % repr(args).replace("'", '"'))
        self.proc = subprocess.Popen(["node", "-e", script], cwd=S3_DIR,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
                m = re.search(rb"listening on 127\.0\.0\.1:(\d+)\n", out)
                if m:
                    self.port = int(m.group(1))
                    return self
            elif self.proc.poll() is not None:
                break
        self.stop()
        pytest.fail("s3rver did not start: " + out.decode(errors="replace")[-2000:])

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def bookd_env(self, **over):
        env = {
            "BOOKD_STORAGE": "s3",
            "BOOKD_S3_ENDPOINT": self.endpoint,
            "BOOKD_S3_BUCKET": self.bucket,
            "BOOKD_S3_REGION": REGION,
            "BOOKD_S3_ACCESS_KEY": ACCESS_KEY,
            "BOOKD_S3_SECRET_KEY": SECRET_KEY,
            "BOOKD_S3_PATH_STYLE": "true",
        }
        env.update(over)
        return env


@pytest.fixture
def s3server():
    srv = S3Server().start()
    try:
        yield srv
    finally:
        srv.stop()
