"""Multiprocess metrics: two uvicorn workers share PROMETHEUS_MULTIPROC_DIR and the page adds them up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import metrics
from tests.support.observed import value

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


def test_two_workers_count_into_one_page(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"")  # a previous run's file: prepare removes it
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'mp.sqlite3'}"}
    environment.pop(metrics.MULTIPROC_ENV, None)
    prepare = "import metrics, sys; metrics.prepare_multiprocess_dir(sys.argv[1])"
    # What a supervisor does: prepare the directory, then start the workers with the variable set.
    subprocess.run([sys.executable, "-c", prepare, str(metrics_dir)], cwd=ROOT / "src", check=True, env=environment)
    assert not list(metrics_dir.iterdir())
    subprocess.run(
        [sys.executable, "src/cli.py", "migrate"], cwd=ROOT, env=environment, check=True, capture_output=True
    )
    environment[metrics.MULTIPROC_ENV] = str(metrics_dir)
    server = subprocess.Popen(
        [str(BIN / "uvicorn"), "--app-dir", "src", "--factory", "app:create_app", "--host", "127.0.0.1"]
        + ["--port", str(port), "--workers", "2", "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env={**environment, "AUTO_MIGRATE": "0", "ACCESS_LOG": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/health")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.2)
        requests = 40
        for _ in range(requests):
            get(f"{base}/health")
        # the probe that found the server up, and the 40 (refused probes never reached a worker); a request
        # is counted once its answer is sent, so the last one may land a moment after the client has it
        health = {"operation": "controllers.health.check", "status": "200"}
        deadline = time.monotonic() + 5
        page = get(f"{base}/metrics")
        while value(page, "joi_http_requests_total", **health) < requests + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
            page = get(f"{base}/metrics")
        assert value(page, "joi_http_requests_total", **health) == requests + 1
        per_worker = [_count(path, "joi_http_requests_total", health) for path in metrics_dir.glob("counter_*.db")]
        assert sum(per_worker) == requests + 1
        assert value(page, "joi_build_info", version=metrics._project_version(), python=_python()) == 1
        assert value(page, "joi_db_pool_max_connections") >= 32
        second = get(f"{base}/metrics")
        assert value(second, "joi_http_requests_total", operation="controllers.metrics.scrape", status="200") >= 1
        # one file of counters per worker process, both added up in the page
        assert len(list(metrics_dir.glob("counter_*.db"))) == 2
    finally:
        server.terminate()
        server.wait(20)


def _count(path: Path, name: str, labels: dict) -> float:
    """One worker's own count, read from its file alone."""
    from prometheus_client.multiprocess import MultiProcessCollector

    for family in MultiProcessCollector.merge([str(path)], accumulate=True):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def _python() -> str:
    return ".".join(map(str, sys.version_info[:3]))
