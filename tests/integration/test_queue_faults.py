"""The task queue under faults: a Redis of the test's own is crashed (SIGKILL, no persistence: the queued
tasks are lost with it) and started again while a real worker process sends a mailing; then, in a second
outage, the worker is SIGKILLed too and both come back. Mailing messages live in the database, so none is
lost with the queue: every client gets its message, exactly once across the broker outage, and again only
for the requests in flight when the worker died (README "Dispatch"); the worker outlives the broker.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from app import prepare_database
from config import Config
from domain.mailings import Client
from repository import db
from repository import mailings as repo
from tests.support.redis_server import RedisServer
from tests.support.send_server import Running, SendServer
from tests.support.workers import Worker

CLIENTS = 200
SEND_CONCURRENCY = 5
OUTAGE_TICKS = 15
SEND = {
    "SEND_CONCURRENCY": str(SEND_CONCURRENCY),
    "SEND_TIMEOUT_SECONDS": "2",
    "SEND_RETRY_BASE_SECONDS": "0.2",
    "SEND_RETRY_MAX_SECONDS": "0.5",
    "MAILING_DISPATCH_SECONDS": "0.3",
    "SCHEDULER_LEASE_SECONDS": "2",
}


@pytest.fixture
def broker():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailing_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'joi.sqlite3'}"
    prepare_database(Config(database_url=url))
    db.connect()
    yield url
    db.close_all()


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s")
        time.sleep(0.05)


def phone(n: int) -> str:
    return f"7901{n:07d}"


def test_mailing_messages_outlive_broker_crashes_and_a_worker_kill_sent_once_but_for_what_was_in_flight(
    broker, mailing_database, tmp_path
):
    server = SendServer(delay=0.1)  # 5 in flight: about 50 a second
    repo.create_clients([Client(phone(n), "900", "UTC") for n in range(CLIENTS)])
    start = datetime.now(UTC)
    mailing = repo.create_mailing(
        repo.Mailing(start_time=start, end_time=start + timedelta(minutes=10), text="q"), start
    )
    with Running(server) as sending:
        env = {"DATABASE_URL": mailing_database, "REDIS_URL": broker.url, "SEND_API_URL": sending.url, **SEND}
        log = tmp_path / "worker.log"
        worker = Worker(env, log)
        try:
            wait_for(lambda: len(server.received) >= CLIENTS // 5, 60, "the worker did not start sending")
            logged = len(log.read_text())
            broker.crash()
            crashed_at = time.time()
            # the outage lasts until the scheduler failed to enqueue OUTAGE_TICKS dispatch rounds
            wait_for(
                lambda: log.read_text()[logged:].count("scheduler tick failed") >= OUTAGE_TICKS,
                30,
                "the worker's scheduler did not notice the broker was gone",
            )
            broker.start()
            restarted_at = time.time()
            wait_for(lambda: len(server.received) >= CLIENTS // 2, 60, "sending did not resume after the outage")
            assert worker.process.poll() is None  # it outlived the broker

            sent_before_kill = {m.id for m in repo.messages(mailing.id, 1000, 0, status="SENT")[0]}
            assert len(sent_before_kill) < CLIENTS  # the kill comes mid-mailing
            broker.crash()
            worker.kill()
            killed_at = time.time()
            broker.start()
            worker = Worker(env, log)
            wait_for(lambda: repo.status_counts(mailing.id).get("SENT") == CLIENTS, 60, "not every message was sent")
        finally:
            worker.stop()

    accepted = Counter(request.message_id for request in server.sent_ok())
    assert set(accepted) == {m.id for m in repo.messages(mailing.id, 1000, 0)[0]}  # none lost
    before_kill = Counter(r.message_id for r in server.sent_ok() if r.at < killed_at)
    assert set(before_kill.values()) == {1}  # exactly once through the broker outage
    repeats = {message_id for message_id, times in accepted.items() if times > 1}
    assert len(repeats) <= SEND_CONCURRENCY and all(times <= 2 for times in accepted.values())
    assert repeats.isdisjoint(sent_before_kill)  # recorded SENT is never sent again
    print(
        f"{CLIENTS} messages; broker down {restarted_at - crashed_at:.1f} s, then crashed with the worker; "
        f"{len(repeats)} sent twice (in flight at the kill)"
    )
