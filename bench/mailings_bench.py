"""Mailing throughput: one mailing to N clients (default 10,000), sent by one real queue worker
(`python src/worker.py`, SEND_CONCURRENCY 20) to a local send API that answers every request in 20 ms.

Measures the time from the mailing's creation until every message is recorded SENT, and messages per
second; then checks that the send API received each message exactly once.

    .venv/bin/python bench/mailings_bench.py [--clients 10000] [--delay 0.02] [--database-url URL]

BENCH_WORKER_ARGS passes consumer options to the worker, e.g. "-k process -w 2" for two dispatching
processes (each with its own HTTP client and SEND_CONCURRENCY).

Target: >= 200 messages/s on this machine (the API's latency allows SEND_CONCURRENCY / 20 ms = 1,000/s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _path in (str(ROOT / "src"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from app import prepare_database  # noqa: E402
from config import Config  # noqa: E402
from domain.mailings import Client, Mailing  # noqa: E402
from repository import db  # noqa: E402
from repository import mailings as repo  # noqa: E402
from tests.support.send_server import Running, SendServer  # noqa: E402

TARGET_PER_SECOND = 200


def measure(clients: int = 10_000, delay: float = 0.02, database_url: str | None = None, timeout: float = 300) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="joi-mailings-bench-"))
    url = database_url or f"sqlite:///{scratch}/bench.sqlite3"
    config = Config(database_url=url)
    prepare_database(config)
    db.connect()
    try:
        repo.create_clients(Client(f"79{n:09d}", "900", "UTC") for n in range(clients))
    finally:
        db.close()
    server = SendServer(delay=delay)
    concurrency = int(os.environ.get("SEND_CONCURRENCY", "20"))
    with Running(server) as running:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": "",
            "QUEUE_SQLITE_PATH": str(scratch / "huey.sqlite3"),
            "SEND_API_URL": running.url,
            "SEND_CONCURRENCY": str(concurrency),
            "AUTO_MIGRATE": "0",
        }
        log = open(scratch / "worker.log", "w")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "src" / "worker.py"), *os.environ.get("BENCH_WORKER_ARGS", "").split()],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(2)  # the worker is up and holds the scheduler lease
            db.connect()
            started_at = datetime.now(UTC)
            started = time.monotonic()
            mailing = repo.create_mailing(Mailing(started_at, started_at + timedelta(hours=1), "bench"), started_at)
            first_sent = None
            while True:
                sent = repo.status_counts(mailing.id).get("SENT", 0)
                if sent and first_sent is None:
                    first_sent = time.monotonic() - started
                if sent >= clients:
                    break
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"only {sent} of {clients} sent in {timeout} s")
                db.close()
                time.sleep(0.1)
                db.connect()
            elapsed = time.monotonic() - started
            worker_cpu = _cpu_seconds(worker.pid)
        finally:
            db.close()
            worker.terminate()
            worker.wait(timeout=30)
            log.close()
    per_message = Counter(r.message_id for r in server.sent_ok())
    return {
        "clients": clients,
        "send_api_delay_ms": delay * 1000,
        "send_concurrency": concurrency,
        "database": url.split(":", 1)[0],
        "seconds_until_all_sent": round(elapsed, 2),
        "seconds_until_first_sent": round(first_sent or 0, 2),
        "messages_per_second": round(clients / elapsed, 1),
        "worker_cpu_seconds": worker_cpu,
        "requests_received": len(server.received),
        "exactly_once": len(per_message) == clients and set(per_message.values()) == {1},
    }


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, IndexError, ValueError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=0.02, help="the send API's answer time, seconds")
    parser.add_argument("--database-url", help="default: a scratch SQLite file")
    args = parser.parse_args()
    result = measure(args.clients, args.delay, args.database_url)
    print(json.dumps(result, indent=2))
    ok = result["exactly_once"] and result["messages_per_second"] >= TARGET_PER_SECOND
    print(f"target >= {TARGET_PER_SECOND} messages/s, each exactly once: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
