"""Crash test: the real service (`src/serve.py`: two uvicorn workers and a queue worker) under sustained mixed
load is SIGKILLed at random moments, a uvicorn worker alone or every process at once, and started again.
The load generator records every answer; afterwards every write answered 2xx is there as sent, none answered
otherwise (or cut off) is there in part, the rollups and statistics equal a recomputation from the stored
readings (`cli.py verify-statistics`), and every client of the running mailing got its message, sent again
at most for the requests in flight when a queue worker died.

SQLite with SQLITE_SYNCHRONOUS=FULL and its SQLite queue; PostgreSQL with Redis when TEST_REDIS_URL is set.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import httpx

from repository import mailings as mailings_repo
from tests.support import ledger
from tests.support.load import Load, first_mailing
from tests.support.send_server import Running, SendServer
from tests.support.service import ROOT, Service
from tests.support.workers import flush_queue, queue_settings

DSMR_KEY = "crash-test-key"
SEND_CONCURRENCY = 5
# A uvicorn worker alone (its supervisor replaces it) or the whole service (restarted by the test), in turn.
KILLS = ("web", "all", "web")
SETTLE_SECONDS = 60  # bound for the queue worker to send every message once the load has stopped


def service_env(database_url: str, tmp_path, send_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SQLITE_SYNCHRONOUS": "FULL",
        "AUTO_MIGRATE": "0",
        "DEMO": "0",
        "DSMR_API_ENABLED": "1",
        "DSMR_API_KEY": DSMR_KEY,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "SEND_API_URL": send_url,
        "SEND_CONCURRENCY": str(SEND_CONCURRENCY),
        "SEND_TIMEOUT_SECONDS": "2",
        "SEND_RETRY_BASE_SECONDS": "0.2",
        "SEND_RETRY_MAX_SECONDS": "0.5",
        "MAILING_DISPATCH_SECONDS": "0.3",
        "SCHEDULER_LEASE_SECONDS": "2",
        **queue_settings(database_url, tmp_path),
    }


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s")
        time.sleep(0.1)


def all_sent(mailing_id: int, clients: int) -> bool:
    counts = mailings_repo.status_counts(mailing_id)
    return counts.get("SENT", 0) == clients and sum(counts.values()) == clients


def test_writes_answered_2xx_survive_repeated_sigkills_and_nothing_else_is_half_there(database, database_url, tmp_path):
    rng = random.Random(16)
    server = SendServer(delay=0.05)
    with Running(server) as sending:
        env = service_env(database_url, tmp_path, sending.url)
        flush_queue(env)
        service = Service(env, tmp_path / "service.log").start()
        load = None
        try:
            mailing = httpx.post(f"{service.url}/api/v1/mailings/", json=first_mailing(datetime.now(UTC)))
            assert mailing.status_code == 201
            load = Load(service.url, dsmr_key=DSMR_KEY, threads=4, seed=1).start()
            for kill in KILLS:
                load.wait_for_acknowledged(rng.randint(20, 80), seconds=60)
                if kill == "web":
                    service.kill_web_worker(rng)
                else:
                    service.kill_all()
                    service.start()
            load.wait_for_acknowledged(50, seconds=60)
        except BaseException:
            service.kill_all()
            raise
        finally:
            if load:
                load.stop()
        try:
            acks = load.acks
            print("answers:", ledger.summary(acks), "kills:", KILLS)
            assert not [ack for ack in acks if ack.status is not None and ack.status >= 500 and ack.status != 503]
            assert ledger.problems(acks) == []

            stored_clients = mailings_repo.ClientRow.select().count()
            wait_for(
                lambda: all_sent(mailing.json()["id"], stored_clients),
                SETTLE_SECONDS,
                "every stored client was not sent its message",
            )
        finally:
            service.stop()
            flush_queue(env)

    verified = subprocess.run(
        [sys.executable, str(ROOT / "src" / "cli.py"), "verify-statistics"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    accepted = Counter(request.message_id for request in server.sent_ok())
    messages = {row.id for row in mailings_repo.MessageRow.select(mailings_repo.MessageRow.id)}
    assert set(accepted) == messages  # every message the database calls SENT reached the send API
    repeats = sum(times - 1 for times in accepted.values())
    assert repeats <= SEND_CONCURRENCY * KILLS.count("all")  # only what was in flight when a worker died
    assert load.count(acknowledged=True) > 100
    assert {ack.status for ack in acks if ack.status is not None and ack.status >= 400} <= {400, 503}
    assert any(ack.status == 400 for ack in acks)  # the refused batches were tried, and left nothing
