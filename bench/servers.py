"""Start and stop the servers under test: uvicorn subprocesses on free loopback ports.

    with app_server(scratch_database("sqlite"), workers=2) as server:   # our app, migrated scratch DB
        server.url, server.peak_rss_kib()
    with echo_server(workers=2) as server:                              # bench/echo_app.py
        ...

Each server runs in its own session (process group), is waited for on /health, and is stopped with
SIGTERM (SIGKILL after a grace period). Peak memory is VmHWM summed over the uvicorn supervisor and
every process below it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SRC = ROOT / "src"
VENV_BIN = Path(sys.executable).parent
SERVE_COMMAND = [sys.executable, str(SRC / "serve.py")]
HOST = "127.0.0.1"
POSTGRES_BENCH_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/joi_bench")


def cores() -> int:
    return len(os.sched_getaffinity(0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    env: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def pids(self) -> list[int]:
        """The supervisor and all its descendants."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def _status_kib(self, key: str) -> dict[int, int]:
        values = {}
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(key + ":"):
                        values[pid] = int(line.split()[1])
        return values

    def peak_rss_kib(self) -> int:
        """Peak resident memory (VmHWM) summed over the server's processes, KiB."""
        return sum(self._status_kib("VmHWM").values())

    def rss_kib(self) -> int:
        return sum(self._status_kib("VmRSS").values())

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: those without children of their own (uvicorn's or
        gunicorn's workers, not their supervisors nor serve.py)."""
        pids = self.pids()
        parents = set()
        for pid in pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents.add(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]))
        return [pid for pid in pids if pid not in parents]

    def wait_ready(self, workers: int, timeout: float = 60.0, marker: str = "Application startup complete") -> None:
        """Until every worker has started (else the first one up takes every keep-alive connection of
        the load run, and the run measures one core) and /health answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            started = self.log_path.read_text(errors="replace").count(marker)
            if started >= workers:
                try:
                    with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                        if response.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /health within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, grace: float = 15.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        # Workers that outlived their supervisor share its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _uvicorn(name: str, args: list[str], env: dict, workers: int, log_dir: Path, *, launcher: list[str]) -> Server:
    port = free_port()
    log_path = log_dir / f"{name}-{port}.log"
    command = [
        *launcher,
        *args,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "info",  # each worker logs "Application startup complete", which wait_ready counts
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, process, port, log_path, env)
    try:
        server.wait_ready(workers)
    except BaseException:
        server.stop()
        raise
    return server


def base_env(**extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "DSMR_"))}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", **extra})
    return env


@contextlib.contextmanager
def app_server(database_url: str, *, workers: int | None = None, log_dir: Path | None = None, **env_extra: str):
    """Our service as `make run` serves it (src/serve.py, without its queue worker) on a migrated database,
    stopped on exit."""
    env = base_env(DATABASE_URL=database_url, **env_extra)
    subprocess.run(
        [sys.executable, str(SRC / "cli.py"), "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    env.update(AUTO_MIGRATE="0", WORKER="0")
    server = _uvicorn(
        "app", [], env, workers or cores(), log_dir or Path(tempfile.gettempdir()), launcher=SERVE_COMMAND
    )
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def echo_server(*, workers: int | None = None, log_dir: Path | None = None, served_by: str = "gunicorn", **env: str):
    """bench/echo_app.py with our app's worker count: served by gunicorn (sync workers, how a plain Flask
    app is deployed; the reference) or like our app (ASGI via a2wsgi in uvicorn)."""
    log_dir = log_dir or Path(tempfile.gettempdir())
    if served_by == "a2wsgi":
        server = _uvicorn(
            "echo",
            ["--app-dir", str(BENCH), "echo_app:asgi"],
            base_env(**env),
            workers or cores(),
            log_dir,
            launcher=[str(VENV_BIN / "uvicorn")],
        )
    else:
        server = _gunicorn("echo-gunicorn", "echo_app:app", base_env(**env), workers or cores(), log_dir)
    try:
        yield server
    finally:
        server.stop()


def _gunicorn(name: str, app: str, env: dict, workers: int, log_dir: Path) -> Server:
    port = free_port()
    log_path = log_dir / f"{name}-{port}.log"
    command = [
        str(VENV_BIN / "gunicorn"),
        "--chdir",
        str(BENCH),
        "--worker-class",
        "sync",
        "--workers",
        str(workers),
        "--bind",
        f"{HOST}:{port}",
        "--log-level",
        "info",  # each worker logs "Booting worker", which wait_ready counts
        app,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, process, port, log_path, env)
    try:
        server.wait_ready(workers, marker="Booting worker")
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def scratch_database(kind: str = "sqlite", *, directory: Path | None = None):
    """A fresh, empty database URL: a SQLite file in a temporary directory, or the bench PostgreSQL
    database (BENCH_DATABASE_URL, default joi_bench) with its public schema dropped and recreated."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="joi-bench-", dir=directory) as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        return
    reset_postgres(POSTGRES_BENCH_URL)
    try:
        yield POSTGRES_BENCH_URL
    finally:
        reset_postgres(POSTGRES_BENCH_URL)


def reset_postgres(url: str) -> None:
    import psycopg2

    if url.rsplit("/", 1)[-1].split("?")[0] == "test":
        raise RuntimeError("refusing to use database 'test' (the test suite owns it)")
    _ensure_postgres_database(url)
    connection = psycopg2.connect(url, connect_timeout=5)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        connection.close()


def _ensure_postgres_database(url: str) -> None:
    import psycopg2

    base, name = url.rsplit("/", 1)
    name = name.split("?")[0]
    connection = psycopg2.connect(f"{base}/postgres", connect_timeout=5)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


def postgres_available() -> str | None:
    """None when the bench PostgreSQL answers, else the reason it does not."""
    try:
        _ensure_postgres_database(POSTGRES_BENCH_URL)
    except Exception as error:  # noqa: BLE001 - any failure means "skip section 6"
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    return None


def match_postgres_priority(url: str) -> int:
    """Give the PostgreSQL backends serving `url`'s database this process's priority; returns how many.

    run.py raises its own priority (and so its servers' and wrk's) as root, but PostgreSQL's backends are
    the server's children, at nice 0: on a busy machine SQLite's writes ran at the raised priority inside
    our server while PostgreSQL's ran at the other jobs' (section 6, 2026-12-01: the server 0.31 cores busy,
    p50 110 ms waiting on PostgreSQL). Called once the server's pools are warm; without the permission to
    raise a priority nothing changes."""
    import psycopg2

    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    name = url.rsplit("/", 1)[-1].split("?")[0]
    connection = psycopg2.connect(url, connect_timeout=5)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            pids = [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()
    changed = 0
    for pid in pids:
        with contextlib.suppress(OSError):  # not ours to change (not root), or gone meanwhile
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
            changed += 1
    return changed
