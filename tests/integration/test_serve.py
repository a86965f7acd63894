"""`make run`'s supervisor (src/serve.py): the web server and a worker, started and stopped together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.service import descendants

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "src" / "serve.py"), "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "REDIS_URL": "", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the web server did not come up")


def children(pid: int) -> list[tuple[int, str]]:
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in out.splitlines() if line.strip()]


def wait_exit(process: subprocess.Popen, seconds: float = 20) -> int:
    return process.wait(timeout=seconds)


def test_run_starts_the_web_server_and_a_worker_and_sigterm_stops_both(tmp_path):
    process, _port = start(tmp_path)
    kids = children(process.pid)
    assert any("uvicorn" in args for _pid, args in kids)
    assert any("worker.py" in args for _pid, args in kids)
    process.send_signal(signal.SIGTERM)
    wait_exit(process)
    assert all(subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0 for pid, _ in kids)


def test_when_the_worker_dies_the_web_server_is_stopped_too(tmp_path):
    process, port = start(tmp_path)
    worker = next(pid for pid, args in children(process.pid) if "worker.py" in args)
    os.kill(worker, signal.SIGKILL)
    assert wait_exit(process) != 0
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
        raise AssertionError("the web server still answers")
    except OSError:
        pass


def test_worker_0_runs_the_web_server_alone(tmp_path):
    process, _port = start(tmp_path, WORKER="0")
    try:
        assert [args for _pid, args in children(process.pid) if "worker.py" in args] == []
    finally:
        process.send_signal(signal.SIGINT)
        wait_exit(process)


def health_requests_counted(port: int) -> float:
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    served = [line for line in page.splitlines() if line.startswith("joi_http_requests_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in served if 'operation="controllers.health.check"' in line)


def test_the_metrics_page_counts_requests_of_every_web_worker(tmp_path):
    metrics_dir = tmp_path / "metrics"
    process, port = start(tmp_path, WORKER="0", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    try:
        for _ in range(20):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
        # the probe that found the server up and the 20; a request is counted once its answer is sent, so
        # the last one may land just after the client has it
        deadline = time.monotonic() + 5
        while health_requests_counted(port) < 21 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health_requests_counted(port) == 21
        assert any(metrics_dir.glob("*.db"))
    finally:
        process.send_signal(signal.SIGTERM)
        wait_exit(process)


def _wait_for_workers(process: subprocess.Popen, log_path: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 60
    while log_path.read_text(errors="replace").count("Application startup complete") < count:
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
        time.sleep(0.1)
    return [pid for pid, args in descendants(process.pid) if "spawn_main" in args]


def test_the_web_workers_run_on_libuv_accepting_one_connection_at_a_time(tmp_path):
    """uvicorn's workers share one listening socket; the first to wake accepted every waiting connection
    (a load generator's 8 keep-alive connections all on one worker, measured in bench section 9), unless
    libuv is told to accept one at a time."""
    port, log_path = free_port(), tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "src" / "serve.py"), "--host", "127.0.0.1", "--port", str(port)]
            + ["--workers", "2"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "WORKER": "0", "REDIS_URL": ""},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        workers = _wait_for_workers(process, log_path, 2)
        assert len(workers) == 2
        for pid in workers:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert b"UV_TCP_SINGLE_ACCEPT=1" in environment
            assert "uvloop/loop" in Path(f"/proc/{pid}/maps").read_text()  # the variable is libuv's
    finally:
        process.send_signal(signal.SIGTERM)
        wait_exit(process)


def test_a_served_app_freezes_its_start_up_objects_and_switches_threads_every_half_millisecond(tmp_path):
    probe = (
        "import gc, sys; sys.path.insert(0, 'src'); from app import create_served_app; create_served_app(); "
        "print(gc.get_freeze_count(), sys.getswitchinterval())"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "REDIS_URL": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    frozen, interval = done.stdout.split()
    assert int(frozen) > 10_000
    assert float(interval) == 0.0005
