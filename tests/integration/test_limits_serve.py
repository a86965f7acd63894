"""The limits (src/limits.py) on real servers started by src/serve.py, spoken to with raw sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.test_serve import ROOT, free_port, wait_exit

BOUND = 4096
STORE_HEAD = b"POST /readings/store HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
ONE_READING = b'{"smartMeterId":"limits-1","electricityReadings":[{"time":1700000000,"reading":1.5}]}'


def serve(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int]:
    """src/serve.py with one web process and no queue worker, not yet waited for."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "src" / "serve.py"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "REDIS_URL": "", "WORKER": "0", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the web server did not come up")


@pytest.fixture(scope="module")
def ports(tmp_path_factory):
    """Two servers started side by side: one with short bounds, so that the cut-offs come quickly, and one
    with the defaults (10 s for headers, 30 s for a body)."""
    strict = serve(
        tmp_path_factory.mktemp("strict"),
        MAX_BODY_BYTES=str(BOUND),
        BODY_TIMEOUT_SECONDS="1",
        HEADER_TIMEOUT_SECONDS="1",
    )
    default = serve(tmp_path_factory.mktemp("default"))
    try:
        wait_up(strict[1])
        wait_up(default[1])
        yield {"strict": strict[1], "default": default[1]}
    finally:
        for process, _port in (strict, default):
            process.send_signal(signal.SIGTERM)
        for process, _port in (strict, default):
            wait_exit(process)


@pytest.fixture
def strict_port(ports):
    return ports["strict"]


@pytest.fixture
def default_port(ports):
    return ports["default"]


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names) and the body its Content-Length announces."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""  # data: still open (never expected here)
    except BlockingIOError:
        return True  # nothing to read and not closed
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_a_body_declared_over_the_bound_answers_413_and_the_connection_is_closed(strict_port):
    with connect(strict_port) as sock:
        sock.sendall(STORE_HEAD + f"Content-Length: {100 * BOUND}\r\n\r\n".encode())
        status, headers, body = answer(sock)
        assert status == 413
        assert headers["content-type"] == "application/problem+json"
        assert f"larger than {BOUND} bytes".encode() in body
        assert closed_by_server(sock)


def test_a_chunked_body_is_cut_off_at_the_bound_with_413(strict_port):
    with connect(strict_port) as sock:
        sock.sendall(STORE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(BOUND // 1024 + 1):  # 1 KiB chunks of JSON whitespace, one past the bound, never ending
            sock.sendall(b"400\r\n" + b" " * 1024 + b"\r\n")
        status, headers, _body = answer(sock)
        assert status == 413
        assert headers["connection"] == "close"


def test_a_dsmr_v1_refusal_is_plain_text_as_dsmr_reader_answers(strict_port):
    with connect(strict_port) as sock:
        sock.sendall(
            b"POST /api/v1/datalogger/dsmrreading HTTP/1.1\r\nHost: t\r\n"
            + b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {BOUND + 1}\r\n\r\n".encode()
        )
        status, headers, body = answer(sock)
        assert (status, headers["content-type"]) == (413, "text/plain; charset=utf-8")
        assert body == f"the request body is larger than {BOUND} bytes".encode()


def test_a_trickled_body_is_cut_off_with_408(strict_port):
    with connect(strict_port) as sock:
        sock.sendall(STORE_HEAD + f"Content-Length: {len(ONE_READING)}\r\n\r\n".encode() + ONE_READING[:10])
        status, headers, _body = answer(sock)  # the rest never comes
        assert status == 408
        assert closed_by_server(sock)


def test_trickled_headers_are_cut_off_with_408_and_an_idle_connection_is_closed(strict_port):
    with connect(strict_port) as trickling, connect(strict_port) as idle:
        trickling.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        status, _headers, body = answer(trickling)
        assert (status, body) == (408, b"the request headers did not arrive in time")
        assert closed_by_server(trickling)
        assert closed_by_server(idle)


def test_a_whole_request_within_the_bounds_is_stored(strict_port):
    with connect(strict_port) as sock:
        sock.sendall(STORE_HEAD + f"Content-Length: {len(ONE_READING)}\r\n\r\n".encode() + ONE_READING)
        status, _headers, body = answer(sock)
        assert status == 200, body


def test_two_hundred_slow_clients_do_not_keep_a_normal_request_from_its_answer(default_port):
    """100 clients stuck in their headers and 100 in their bodies (the default 10 s and 30 s bounds are
    far off): requests on other connections are still answered, while the slow ones are still open."""
    slow = []
    try:
        for n in range(100):
            headers_only = connect(default_port)
            headers_only.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: " + str(n).encode())
            body_half = connect(default_port)
            body_half.sendall(STORE_HEAD + f"Content-Length: {len(ONE_READING)}\r\n\r\n".encode() + ONE_READING[:5])
            slow += [headers_only, body_half]
        for _ in range(3):
            with connect(default_port) as sock:
                sock.sendall(STORE_HEAD + f"Content-Length: {len(ONE_READING)}\r\n\r\n".encode() + ONE_READING)
                assert answer(sock)[0] == 200
                sock.sendall(b"GET /readings/read/limits-1 HTTP/1.1\r\nHost: t\r\n\r\n")
                assert answer(sock)[0] == 200
        assert all(still_open(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()
