"""Two "machines" on one host: two app instances (`python src/serve.py`, each with its own port, two web
worker processes and one queue worker) on one PostgreSQL and one Redis, the load split between them as a
load balancer would. Nothing answered 2xx is lost, the rollups equal a recomputation from the samples, one
worker holds the scheduler lease, and a mailing reaches each client exactly once.

PostgreSQL (TEST_DATABASE_URL) and Redis (TEST_REDIS_URL) only: SQLite is one machine's database."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import tasks
from repository import leases
from repository import mailings as mailings_repo
from repository import readings as readings_repo
from tests.support.send_server import Running, SendServer
from tests.support.workers import TEST_REDIS_URL, flush_queue

ROOT = Path(__file__).resolve().parent.parent.parent
GAP = 3600  # the default MAX_READING_GAP_SECONDS
SHARED_METERS = 6  # written through both instances, often at once
THREADS = 4
REQUESTS_PER_THREAD = 60
CLIENTS = 40


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Instance:
    """One "machine": src/serve.py (web workers and a queue worker) with its output in a log file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        command = [sys.executable, str(ROOT / "src" / "serve.py"), "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--workers", "2", "--no-access-log"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"instance exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if request(self.port, "GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"instance on port {self.port} did not come up:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def request(port: int, method: str, path: str, body: object | None = None) -> tuple[int, object]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, payload, {"Content-Type": "application/json"} if payload else {})
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


def readings_stored(port: int) -> float:
    """joi_readings_stored_total on the instance's /metrics (summed over its web workers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        page = connection.getresponse().read().decode()
    finally:
        connection.close()
    lines = [line for line in page.splitlines() if line.startswith("joi_readings_stored_total ")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture
def postgres_and_redis(database, database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("two machines share a PostgreSQL database; SQLite is one machine's")
    if not TEST_REDIS_URL:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("Redis (TEST_REDIS_URL) is required in CI")
        pytest.skip("TEST_REDIS_URL is not set")
    env = {"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL}
    flush_queue(env)
    yield env
    flush_queue(env)


def store_load(ports: list[int], base: int, thread: int, acknowledged: list, refused: list) -> None:
    """Requests alternate between the instances; every third one a 60-reading batch, else one reading.
    Each reading's time is unique to its (thread, request), its value says which it was."""
    for n in range(REQUESTS_PER_THREAD):
        port = ports[(n + thread) % len(ports)]
        meter = f"shared-{n % SHARED_METERS}"
        # An hour per request: the threads' n-th requests write adjacent hours of one meter, at about the
        # same moment, through different instances (their samples are neighbours within the gap rule).
        first = base + (n * THREADS + thread) * 3600
        count = 60 if n % 3 == 0 else 1
        readings = [{"time": first + i * 60, "reading": round(thread + n / 1000 + i / 1e6, 6)} for i in range(count)]
        status, _ = request(port, "POST", "/readings/store", {"smartMeterId": meter, "electricityReadings": readings})
        (acknowledged if 200 <= status < 300 else refused).append((meter, readings, status))


def test_two_instances_on_one_postgresql_and_redis_lose_nothing_and_run_one_scheduler_and_send_once(
    postgres_and_redis, tmp_path
):
    send = SendServer(delay=0.01)
    with Running(send) as running:
        env = {
            **postgres_and_redis,
            "AUTO_MIGRATE": "0",  # the database fixture migrated it, as a deploy step would
            "SEND_API_URL": running.url,
            "SEND_API_TOKEN": "two-instances",
            "MAILING_DISPATCH_SECONDS": "0.5",
            "SCHEDULER_LEASE_SECONDS": "3",
            "WORKER_THREADS": "2",
        }
        instances = [Instance(name, env, tmp_path) for name in ("a", "b")]
        try:
            for instance in instances:
                instance.wait_ready()
            ports = [instance.port for instance in instances]

            # Clients made through either instance; the mailing through one of them.
            for n in range(CLIENTS):
                client = {"phone": f"7911{n:07d}", "operator_code": "911", "tag": "two", "timezone": "UTC"}
                assert request(ports[n % 2], "POST", "/api/v1/clients/", client)[0] == 201
            start = datetime.now(UTC)
            status, mailing = request(
                ports[0],
                "POST",
                "/api/v1/mailings/",
                {
                    "start_time": start.isoformat(),
                    "end_time": (start + timedelta(minutes=2)).isoformat(),
                    "text": "two machines",
                    "client_tag_filter": "two",
                },
            )
            assert status == 201

            acknowledged: list = []
            refused: list = []
            base = int(time.time()) - 40 * 86_400
            base -= base % 3600
            threads = [
                threading.Thread(target=store_load, args=(ports, base, t, acknowledged, refused))
                for t in range(THREADS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)

            wait_for(lambda: mailings_repo.status_counts(mailing["id"]).get("SENT") == CLIENTS, seconds=60)
            holder = leases.holder_of(tasks.SCHEDULER_LEASE)
            stored_by = {port: readings_stored(port) for port in ports}
        finally:
            for instance in instances:
                instance.stop()
    logs = "".join(instance.log_path.read_text() for instance in instances)

    assert not refused, refused[:3]
    assert len(acknowledged) == THREADS * REQUESTS_PER_THREAD
    # Nothing answered 2xx is lost, whichever instance took it.
    wanted: dict[str, dict[int, float]] = {}
    for meter, readings, _ in acknowledged:
        wanted.setdefault(meter, {}).update((r["time"], r["reading"]) for r in readings)
    for meter, samples in wanted.items():
        assert dict(readings_repo.samples_between(meter)) == samples
        # The rollups equal a recomputation, though both instances wrote the meter at once.
        assert readings_repo.rollup_differences(meter, GAP) == []
    # Each instance committed its share of the readings (a load balancer's job, done here by the client).
    total = sum(len(readings) for _, readings, _ in acknowledged)
    assert sum(stored_by.values()) == total and min(stored_by.values()) >= total / 4, stored_by

    # One scheduler: one worker took the lease, and nobody lost it while both ran.
    assert logs.count("scheduler lease taken by") == 1, logs
    assert "scheduler lease lost" not in logs
    assert holder is not None and f"scheduler lease taken by {holder}" in logs
    # Every client was sent the text exactly once, by whichever worker dispatched it.
    accepted = Counter(int(received.body["phone"]) for received in send.sent_ok())
    assert len(accepted) == CLIENTS and set(accepted.values()) == {1}
    assert all(received.authorization == "Bearer two-instances" for received in send.received)
