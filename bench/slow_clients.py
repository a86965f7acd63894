"""The slow-client and overload experiment behind README "Limits", against `src/serve.py` (2 web processes).

    .venv/bin/python bench/slow_clients.py [--slow 200] [--burst 400] [--plain-uvicorn]

1. 50 normal requests one after another (a JOI store, then a read, on a fresh connection each): latency.
2. The same while --slow clients hold connections: half stopped in their headers, half in their bodies.
   Then: are the slow ones still open after the normal requests (they held their connections meanwhile), and
   how long until the server cut them off (HEADER_TIMEOUT_SECONDS / BODY_TIMEOUT_SECONDS, set to 5 s here).
3. A burst of --burst connections each sending one JOI store at once: the answers by status (503s are the
   MAX_CONCURRENT_REQUESTS bound at work) and each web process's RSS before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from soak import descendants, free_port, process_label, rss_kib  # noqa: E402

CUT_OFF_SECONDS = 5
HEAD = b"POST /readings/store HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def store_body(n: int) -> bytes:
    return b'{"smartMeterId":"slow-%d","electricityReadings":[{"time":%d,"reading":1.5}]}' % (n % 10, 1767225600 + n)


def exchange(port: int, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                return 0
            answer += chunk
        return int(answer.split()[1])


def normal_requests(port: int, count: int = 50) -> list[float]:
    latencies = []
    for n in range(count):
        body = store_body(n)
        started = time.perf_counter()
        assert exchange(port, HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body) == 200
        assert exchange(port, b"GET /readings/read/slow-%d HTTP/1.1\r\nHost: x\r\n\r\n" % (n % 10)) == 200
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50, p99 = ordered[len(ordered) // 2], ordered[int(0.99 * len(ordered))]
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms"


def open_slow_clients(port: int, count: int) -> list[socket.socket]:
    slow = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        if n % 2:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: %d" % n)
        else:
            sock.sendall(HEAD + b"Content-Length: 100\r\n\r\n{")
        slow.append(sock)
    return slow


def still_open(sock: socket.socket) -> bool:
    """Nothing was answered and the connection is not closed (an answer, the 408, means it was cut off)."""
    sock.setblocking(False)
    try:
        sock.recv(65536)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def seconds_until_closed(slow: list[socket.socket], opened_at: float) -> list[float]:
    closed_at = {}
    deadline = time.monotonic() + 30
    while len(closed_at) < len(slow) and time.monotonic() < deadline:
        for index, sock in enumerate(slow):
            if index not in closed_at and not still_open(sock):
                closed_at[index] = time.monotonic() - opened_at
        time.sleep(0.05)
    return sorted(closed_at.values())


def web_rss(service_pid: int) -> dict[int, float]:
    return {
        pid: rss_kib(pid) / 1024
        for pid in descendants(service_pid)
        if process_label(pid) == "uvicorn web process" and rss_kib(pid)
    }


def burst(port: int, count: int) -> Counter:
    statuses: Counter = Counter()
    barrier = threading.Barrier(count)

    def one(n: int) -> None:
        body = store_body(1000 + n)
        request = HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError:
            barrier.abort()
            statuses["connect error"] += 1
            return
        with sock:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=60)
            sock.sendall(request)
            answer = sock.recv(4096)
            statuses[int(answer.split()[1]) if answer else "closed"] += 1

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--burst", type=int, default=400)
    parser.add_argument("--plain-uvicorn", action="store_true", help="uvicorn's own protocol: no header timeout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="joi-slow-") as folder:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3",
            "WORKER": "0",
            "ACCESS_LOG": "0",
            "HEADER_TIMEOUT_SECONDS": str(CUT_OFF_SECONDS),
            "BODY_TIMEOUT_SECONDS": str(CUT_OFF_SECONDS),
        }
        command = [sys.executable, str(ROOT / "src" / "serve.py"), "--port", str(port), "--workers", "2"]
        command += ["--http", "httptools"] if args.plain_uvicorn else []
        service = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the service did not come up"
                    time.sleep(0.5)
            normal_requests(port, 10)  # warm
            print(f"normal requests alone: {summary(normal_requests(port))}")
            opened_at = time.monotonic()
            slow = open_slow_clients(port, args.slow)
            during = normal_requests(port)
            open_after = sum(still_open(sock) for sock in slow)
            print(f"with {args.slow} slow clients connected: {summary(during)}; {open_after} of them still open after")
            closed = seconds_until_closed(slow, opened_at)
            span = f", after {closed[0]:.1f}-{closed[-1]:.1f} s" if closed else ""
            print(f"cut off by the server within 30 s: {len(closed)} of {args.slow}{span} (bounds {CUT_OFF_SECONDS} s)")
            for sock in slow:
                sock.close()
            before = web_rss(service.pid)
            statuses = burst(port, args.burst)
            after = web_rss(service.pid)
            print(f"burst of {args.burst} stores at once: {dict(statuses)}")
            print(
                "web process RSS before/after the burst: "
                + ", ".join(f"{before[pid]:.1f} -> {after.get(pid, 0):.1f} MiB" for pid in before)
            )
        finally:
            service.terminate()
            service.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
