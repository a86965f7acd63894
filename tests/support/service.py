"""The real service for fault tests: `python src/serve.py` (uvicorn workers and a queue worker) in a session
of its own, so it can be SIGKILLed whole, or one uvicorn worker at a time, and started again on its port."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
START_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes() -> dict[int, list[tuple[int, str]]]:
    """Children per parent pid, from /proc (ps would cut long command lines to the terminal's width)."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append((int(entry.name), args))
    return children


def descendants(pid: int) -> list[tuple[int, str]]:
    children = _processes()
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


class Service:
    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 2, port: int | None = None):
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> Service:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "src" / "serve.py"), "--host", "127.0.0.1", "--port", str(self.port)]
                + ["--workers", str(self.workers), "--timeout-graceful-shutdown", "5"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self.wait_until_up()
        return self

    def wait_until_up(self, seconds: float = START_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the service did not come up in {seconds} s; see {self.log_path}")

    def web_workers(self) -> list[int]:
        """The uvicorn worker processes (multiprocessing children of uvicorn's supervisor)."""
        return [pid for pid, args in descendants(self.process.pid) if "spawn_main" in args]

    def kill_web_worker(self, rng: random.Random) -> int:
        """SIGKILL one uvicorn worker; uvicorn's supervisor starts another in its place."""
        victim = rng.choice(self.web_workers())
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while victim in self.web_workers():  # the other serves meanwhile; the load finds the new one ready
            if time.monotonic() > deadline:
                raise AssertionError("the killed uvicorn worker is still there")
            time.sleep(0.05)
        return victim

    def kill_all(self) -> None:
        """SIGKILL every process of the service at once (serve, uvicorn, its workers, the queue worker)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill_all()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
