"""`make soak`: mixed load at a steady, sustainable rate against `src/serve.py` for 10 minutes.

    .venv/bin/python bench/soak.py [--minutes 10] [--database sqlite|postgres] [--output bench/results-soak.md]

The service runs as `make run` runs it (serve.py: uvicorn with WORKERS web processes and one queue worker) on a
scratch database (SQLite in a temporary folder, or SOAK_DATABASE_URL / postgresql://…/joi_soak emptied first).
tests/support/mixed_load.py sends JOI single stores, DSMR v1 telegrams, OMS commits and reads, each stream at
its own rate on one keep-alive connection. Every 5 s the RSS of each process of the service is read from /proc.

The report (printed, and written with --output): per minute the requests, errors (any answer that is not 2xx,
or none) and p50/p99 latency; the RSS of each process per minute and its growth from the end of minute 1 (warm)
to the end; and whether the statistics still agree with a recomputation (cli.py verify-statistics).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.support.mixed_load import MixedLoad  # noqa: E402

RATES = {"joi": 30, "dsmr": 10, "oms": 10, "read": 20}
SAMPLE_SECONDS = 5
POSTGRES_SOAK_URL = os.environ.get("SOAK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/joi_soak")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[parent].append(int(entry))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += children.get(current, [])
    return found


def process_label(pid: int) -> str | None:
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    text = " ".join(part.decode(errors="replace") for part in arguments)
    if "serve.py" in text:
        return "serve.py (supervisor)"
    if "worker.py" in text:
        return "worker.py (queue)"
    if "resource_tracker" in text:
        return "resource tracker"
    if "multiprocessing" in text:
        return "uvicorn web process"
    if "uvicorn" in text:
        return "uvicorn (parent)"
    return text[:40]


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    def __init__(self, root_pid: int, started: float) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.started = root_pid, started
        self.samples: list[tuple[float, int, str, int]] = []  # (seconds since start, pid, label, rss KiB)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_SECONDS):
            elapsed = time.monotonic() - self.started
            for pid in descendants(self.root_pid):
                label, rss = process_label(pid), rss_kib(pid)
                if label is not None and rss is not None:
                    self.samples.append((elapsed, pid, label, rss))


def prepare_database(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'soak.sqlite3'}"
    import psycopg2

    admin_url = POSTGRES_SOAK_URL.rsplit("/", 1)[0] + "/postgres"
    name = POSTGRES_SOAK_URL.rsplit("/", 1)[1]
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return POSTGRES_SOAK_URL


def start_service(database_url: str, port: int, workers: int, dsmr_key: str, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DSMR_API_ENABLED": "1",
        "DSMR_API_KEY": dsmr_key,
        "ACCESS_LOG": "0",
        "REDIS_URL": "",
        "MODBUS_POLL_SECONDS": "0",
    }
    command = [sys.executable, str(ROOT / "src" / "serve.py"), "--host", "127.0.0.1", "--port", str(port)]
    log = log_path.open("w")
    process = subprocess.Popen([*command, "--workers", str(workers)], cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"the service did not come up; see {log_path}")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(load: MixedLoad, sampler: RssSampler, started: float, minutes: int, verified: str, facts: list[str]) -> str:
    lines = ["# Soak", "", *facts, ""]
    lines += [
        "| minute | requests | req/s | errors | p50 ms | p99 ms | p99 by stream (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    by_minute: dict[int, list] = defaultdict(list)
    for answer in load.answers:
        by_minute[int((answer.answered_at - answer.seconds - started) // 60)].append(answer)
    total_errors = 0
    for minute in range(minutes):
        answers = by_minute.get(minute, [])
        errors = [a for a in answers if a.status // 100 != 2]
        total_errors += len(errors)
        latencies = [a.seconds * 1000 for a in answers]
        per_stream = ", ".join(
            f"{kind} {percentile([a.seconds * 1000 for a in answers if a.kind == kind], 0.99):.1f}" for kind in RATES
        )
        lines.append(
            f"| {minute + 1} | {len(answers)} | {len(answers) / 60:.1f} | {len(errors)} | "
            f"{percentile(latencies, 0.5):.1f} | {percentile(latencies, 0.99):.1f} | {per_stream} |"
        )
    statuses = defaultdict(int)
    for answer in load.answers:
        if answer.status // 100 != 2:
            statuses[(answer.kind, answer.status)] += 1
    lines += ["", f"Errors in all: {total_errors}" + (f" ({dict(statuses)})" if statuses else ""), ""]
    lines += rss_table(sampler, minutes)
    lines += ["", f"Statistics after the run: {verified}"]
    return "\n".join(lines) + "\n"


def rss_table(sampler: RssSampler, minutes: int) -> list[str]:
    per_process: dict[tuple[str, int], dict[int, int]] = defaultdict(dict)
    for elapsed, pid, label, rss in sampler.samples:
        per_process[(label, pid)][int(elapsed // 60)] = rss  # the last sample of each minute
    header = (
        "| process | "
        + " | ".join(f"min {m + 1}" for m in range(minutes))
        + " | growth after min 1 | in the 2nd half |"
    )
    lines = ["RSS (MiB) at the end of each minute:", "", header, "|---" * (minutes + 3) + "|"]
    for (label, pid), by_minute in sorted(per_process.items()):
        cells = [f"{by_minute[m] / 1024:.1f}" if m in by_minute else "-" for m in range(minutes)]
        known = [by_minute[m] for m in range(minutes) if m in by_minute]
        growth = f"{(known[-1] - known[0]) / 1024:+.1f} MiB" if len(known) > 1 else "-"
        half = by_minute.get(minutes // 2 - 1)
        late = f"{(known[-1] - half) / 1024:+.1f} MiB" if half is not None and minutes >= 4 else "-"
        lines.append(f"| {label} {pid} | " + " | ".join(cells) + f" | {growth} | {late} |")
    return lines


def machine_facts(workers: int, database: str) -> list[str]:
    load_average = Path("/proc/loadavg").read_text().split()[:3]
    return [
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, shared with other "
        f"engineers' work (load average at the end {', '.join(load_average)}): absolute latencies are inflated.",
        f"- service: src/serve.py, {workers} uvicorn web processes and one queue worker, {database} database",
        "- load: "
        + ", ".join(f"{kind} {rate}/s" for kind, rate in RATES.items())
        + " (one keep-alive connection each)",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--output", type=Path, help="also write the report here (markdown)")
    args = parser.parse_args(argv)
    dsmr_key = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="joi-soak-") as folder:
        database_url = prepare_database(args.database, Path(folder))
        port = free_port()
        service = start_service(database_url, port, args.workers, dsmr_key, Path(folder) / "service.log")
        load = MixedLoad(f"http://127.0.0.1:{port}", rates=RATES, dsmr_key=dsmr_key, prefix="soak-")
        started = time.monotonic()
        sampler = RssSampler(service.pid, started)
        sampler.start()
        load.start()
        try:
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(min(10.0, args.minutes * 60 - (time.monotonic() - started) + 0.01))
                done = time.monotonic() - started
                errors = sum(1 for answer in load.answers if answer.status // 100 != 2)
                print(f"{done:6.0f} s: {len(load.answers)} answers, {errors} errors", file=sys.stderr, flush=True)
        finally:
            load.stop()
            sampler.stopping.set()
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=60)
        verified = subprocess.run(
            [sys.executable, str(ROOT / "src" / "cli.py"), "verify-statistics"],
            env={**os.environ, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
        )
        outcome = verified.stdout.strip().splitlines()[-1] if verified.stdout.strip() else verified.stderr.strip()
        text = report(load, sampler, started, args.minutes, outcome, machine_facts(args.workers, args.database))
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0 if verified.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
