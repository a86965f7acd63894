"""The API fuzz run: schemathesis over every operation of the served spec, against a live server.

Starts uvicorn on a free loopback port with a scratch SQLite database (or FUZZ_DATABASE_URL), the DSMR
API enabled with a known key, then runs schemathesis with the checks CI requires:
not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance.
Bounded: FUZZ_MAX_EXAMPLES examples per operation (default 40). Exits with schemathesis' status.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FUZZ_KEY = "fuzz-key"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not come up at {url}")


def main() -> int:
    scratch = tempfile.mkdtemp(prefix="joi-fuzz-")
    port = free_port()
    server_log = open(Path(scratch) / "server.log", "w")  # noqa: SIM115 - closed with the server
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("FUZZ_DATABASE_URL") or f"sqlite:///{scratch}/fuzz.sqlite3",
        "DSMR_API_ENABLED": "1",
        "DSMR_API_KEY": FUZZ_KEY,
        "VALIDATE_RESPONSES": "0",
    }
    server = subprocess.Popen(
        [str(BIN / "uvicorn"), "--app-dir", "src", "--factory", "app:create_app", "--port", str(port)]
        + ["--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/health")
        command = [
            str(BIN / "schemathesis"),
            "run",
            f"{base}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            os.environ.get("FUZZ_MAX_EXAMPLES", "40"),
            "--header",
            f"X-AUTHKEY: {FUZZ_KEY}",
            "--request-timeout",
            "30",
            "--seed",
            os.environ.get("FUZZ_SEED", "20261121"),
            "--generation-database",
            "none",
        ]
        return subprocess.call(command, cwd=ROOT, env=env)
    finally:
        server.terminate()
        server.wait(timeout=15)
        server_log.close()


if __name__ == "__main__":
    sys.exit(main())
