"""Real queue worker processes for end-to-end tests: `python src/worker.py` with a test's settings."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")


def queue_settings(database_url: str, scratch: Path) -> dict[str, str]:
    """The queue for a test: Redis (TEST_REDIS_URL) beside PostgreSQL when given, else a SQLite file."""
    if database_url.startswith("postgres") and TEST_REDIS_URL:
        return {"REDIS_URL": TEST_REDIS_URL}
    return {"REDIS_URL": "", "QUEUE_SQLITE_PATH": str(scratch / "huey.sqlite3")}


def flush_queue(env: dict[str, str]) -> None:
    """Empty the test's queue (a Redis database outlives the test)."""
    if env.get("REDIS_URL"):
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path, *modules: str, threads: int = 2):
        self.log = open(log_path, "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "src" / "worker.py"), "-w", str(threads), *modules],
            cwd=ROOT,
            env={**os.environ, **env, "AUTO_MIGRATE": "0"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(Exception):
            self.log.close()
