"""Real worker processes (`python src/worker.py`) on the test's database and queue (SQLite file; Redis
at TEST_REDIS_URL beside PostgreSQL when given)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import tasks
from config import Config
from repository import leases
from tests.support.queue_jobs import write_marker
from tests.support.workers import Worker, flush_queue, queue_settings


@pytest.fixture
def queue_env(database, database_url, tmp_path):
    env = {"DATABASE_URL": database_url, **queue_settings(database_url, tmp_path)}
    flush_queue(env)
    yield env
    flush_queue(env)


def wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def enqueue(env: dict[str, str], task, *args) -> None:
    """Enqueue as a web process with these settings would: tasks.huey on the test's queue storage."""
    config = Config(
        database_url=env["DATABASE_URL"],
        redis_url=env.get("REDIS_URL") or None,
        queue_sqlite_path=env.get("QUEUE_SQLITE_PATH"),
    )
    storage, tasks.huey.storage = tasks.huey.storage, tasks.build_huey(config).storage
    try:
        task(*args)
    finally:
        tasks.huey.storage = storage


def ticks(path: Path) -> list[tuple[int, float]]:
    if not path.exists():
        return []
    return [(int(pid), float(at)) for pid, at in (line.split() for line in path.read_text().splitlines())]


def test_a_worker_process_runs_an_enqueued_task(queue_env, tmp_path):
    worker = Worker(queue_env, tmp_path / "worker.log", "tests.support.queue_jobs")
    try:
        marker = tmp_path / "marker"
        enqueue(queue_env, write_marker, str(marker), "done")
        wait_for(marker.exists)
        assert marker.read_text() == "done"
    finally:
        worker.stop()


def test_two_workers_run_a_periodic_job_once_per_interval_and_a_survivor_takes_over(queue_env, tmp_path):
    log = tmp_path / "ticks"
    env = {**queue_env, "QUEUE_TEST_LOG": str(log), "QUEUE_TEST_SECONDS": "1", "SCHEDULER_LEASE_SECONDS": "2"}
    workers = [Worker(env, tmp_path / f"worker-{n}.log", "tests.support.queue_jobs") for n in range(2)]
    try:
        wait_for(lambda: len(ticks(log)) >= 1)
        first = ticks(log)[0][1]
        time.sleep(4)
        window = [at for _pid, at in ticks(log) if first <= at < first + 4]
        assert 3 <= len(window) <= 5  # one run a second; two schedulers would give about 8

        holder = leases.holder_of(tasks.SCHEDULER_LEASE)
        dead = next(worker for worker in workers if holder and f":{worker.pid}:" in holder)
        dead.kill()
        killed_at = time.time()
        survivor = next(worker for worker in workers if worker is not dead)
        wait_for(lambda: any(at > killed_at + 0.5 for _pid, at in ticks(log)), seconds=10)
        later = [pid for pid, at in ticks(log) if at > killed_at + 0.5]
        assert set(later) == {survivor.pid}
        assert f":{survivor.pid}:" in (leases.holder_of(tasks.SCHEDULER_LEASE) or "")
    finally:
        for worker in workers:
            worker.stop()
