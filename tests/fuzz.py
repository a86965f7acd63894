"""The API fuzz run: schemathesis over every operation of the served spec, against a live server.

Starts uvicorn on a free loopback port with a scratch SQLite database (or FUZZ_DATABASE_URL), the DSMR
API enabled with a known key, then runs schemathesis with the checks CI requires:
not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance.
Bounded: FUZZ_MAX_EXAMPLES examples per operation (default 40). Exits with schemathesis' status.

The SilesiaSolar operations need a token: an admin is made with `cli.py create-admin` (as `make admin`
does), logs in, and gets a location and a host with measurements, so the fuzzer reaches real objects; its
token goes with every request. POST /auth/logout would end that token for the rest of the run, so it is
fuzzed last, on its own, with the token of a user registered for it.
"""

from __future__ import annotations

import json
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
FUZZ_ADMIN, FUZZ_PASSWORD = "fuzz-admin", "schemathesis-run-passphrase-7"
LOGOUT = "controllers.accounts.logout"


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


def post_json(url: str, body: dict, token: str | None = None) -> dict | list:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def create_admin(env: dict) -> None:
    subprocess.run(
        [sys.executable, "src/cli.py", "create-admin", "--username", FUZZ_ADMIN, "--email", "fuzz-admin@example.com"],
        cwd=ROOT,
        env={**env, "ADMIN_PASSWORD": FUZZ_PASSWORD},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def admin_with_a_site(base: str) -> str:
    """The admin's token, after giving the admin a location and a host with assigned measurements."""
    login = post_json(f"{base}/auth/login", {"username": FUZZ_ADMIN, "password": FUZZ_PASSWORD})
    token, admin_id = login["token"], login["user"]["id"]
    site = {"street": "SunnyStreet", "number": "62", "city": "SilliconCity", "zip_code": "11-420"}
    location = post_json(f"{base}/user/locations", site, token)["id"]
    host = {"ip": "127.0.0.1", "port": 2137, "slave_address": 1, "user": admin_id, "location": location, "meter": 1}
    host_id = post_json(f"{base}/admin/hosts", host, token)["id"]
    post_json(f"{base}/user/hosts/{host_id}/measurements", {"measurements": ["active_power", "voltage_ac"]}, token)
    return token


def schemathesis(base: str, env: dict, token: str, *selection: str) -> int:
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
        "--header",
        f"Authorization: Token {token}",
        "--request-timeout",
        "30",
        "--seed",
        os.environ.get("FUZZ_SEED", "20261121"),
        "--generation-database",
        "none",
        *selection,
    ]
    return subprocess.call(command, cwd=ROOT, env=env)


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
    create_admin(env)
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
        status = schemathesis(base, env, admin_with_a_site(base), "--exclude-operation-id", LOGOUT)
        user = {"username": "fuzz-user", "email": "fuzz-user@example.com", "password": FUZZ_PASSWORD}
        user_token = post_json(f"{base}/auth/register", user)["token"]
        return status or schemathesis(base, env, user_token, "--include-operation-id", LOGOUT)
    finally:
        server.terminate()
        server.wait(timeout=15)
        server_log.close()


if __name__ == "__main__":
    sys.exit(main())
